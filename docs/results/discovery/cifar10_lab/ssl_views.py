"""Long-SimCLR k-means clusters (lg_tf's k-means recipe) with the patch-SCAN clusters as the
second view, per coarse class and k in 2..6, all with lg_tf's own components:
  ari_ssl_km    ARI of SimCLR k-means vs the hidden fine classes
  ari_patch     ARI of patch-SCAN (lg_tf's default today)
  views         ARI(patch-SCAN, SimCLR k-means) = lg_tf's "views" agreement
  silhouette    of the SimCLR k-means clusters (lg_tf's auto-k rule for k-means features)
Rules fixed before running: auto k = argmax views (as lg_tf today), verdict thresholds
unchanged (0.12 / 0.17, calibrated on dev last session).
usage: python ssl_views.py SETUP STEPS
"""
import json, os, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score as ari

import lab
from lg_tf import cluster_heads, clustering, patch_features


def main(setup, steps):
    d = np.load(os.path.join(lab.HERE, "cache", f"ssl_{setup}_s{steps}_w16.npz"))
    x, coarse, fine, names, _ = lab.load_setup(setup)
    assert (fine == d["fine"]).all()
    t, c0 = time.time(), time.process_time()
    ext = patch_features.PatchFeatures(1600, seed=0).fit(x)
    pf = patch_features.image_features(ext, x)
    patch_cpu = time.process_time() - c0
    print(f"{setup}: patch features {time.time() - t:.0f} s ({patch_cpu:.0f} s CPU)", flush=True)
    out = os.path.join(lab.HERE, f"views_{setup}.jsonl" if steps == "4000" else f"views_{setup}_s{steps}.jsonl")
    for ci, cname in enumerate(names):
        m = coarse == ci
        truth = fine[m]
        emb = cluster_heads.Embedding.fit(pf["features"][m], pf["mirror"][m], 0)
        z, zm = emb(pf["features"][m]), emb(pf["mirror"][m])
        _, pts = clustering.embed(d["features"][m], 0)
        for k in range(2, 7):
            heads = cluster_heads.train_heads(z, k, 0, mirror=zm)
            patch = heads.labels[heads.best]
            km = clustering.kmeans(pts, k, 0).labels_
            row = {"setup": setup, "coarse": cname, "k_true": len(np.unique(truth)), "k": k,
                   "ari_ssl_km": ari(truth, km), "ari_patch": ari(truth, patch),
                   "views": ari(patch, km), "silhouette": clustering.silhouette(pts, km, 0),
                   "sizes": sorted(np.bincount(km, minlength=k).tolist(), reverse=True),
                   "patch_cpu_s": patch_cpu}
            print(json.dumps({a: (round(b, 3) if isinstance(b, float) else b)
                              for a, b in row.items()}), flush=True)
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
