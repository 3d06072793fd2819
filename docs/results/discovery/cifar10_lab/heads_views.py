"""Round 3: SCAN heads on SimCLR features embedded like lg_tf's k-means recipe (L2, PCA 32,
no whitening), judged by the patch view (patch-SCAN, lg_tf's `patches` recipe), per coarse
class and k in 2..6. Rows (heads_views_<setup>.jsonl):
  ari_heads     SimCLR heads vs hidden fine      ari_km     SimCLR k-means (round 2)
  ari_patch     patch-SCAN                       views      ARI(patch-SCAN, SimCLR heads)
  views_km      ARI(patch-SCAN, SimCLR k-means)  heads      mean ARI between the 5 SimCLR heads
Rules fixed before running: auto k = argmax views (ties: fewer), thresholds 0.12 / 0.17.
usage: python heads_views.py SETUP [CACHE_TAG=s4000]"""
import json, os, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score as ari
import lab
from lg_tf import cluster_heads, clustering, patch_features


def patch_view(setup, x):
    path = os.path.join(lab.HERE, "cache", f"patchfeat_{setup}.npz")
    if os.path.exists(path):
        d = np.load(path); return {"features": d["features"], "mirror": d["mirror"]}
    ext = patch_features.PatchFeatures(1600, seed=0).fit(x)
    pf = patch_features.image_features(ext, x)
    np.savez(path, **pf)
    return pf


def main(setup, tag="s4000"):
    d = np.load(os.path.join(lab.HERE, "cache", f"ssl_{setup}_{tag}_w16.npz"))
    x, coarse, fine, names, _ = lab.load_setup(setup)
    assert (fine == d["fine"]).all()
    pf = patch_view(setup, x)
    out = os.path.join(lab.HERE, f"heads_views_{setup}_{tag}.jsonl")
    for ci, cname in enumerate(names):
        m = coarse == ci
        truth = fine[m]
        emb = cluster_heads.Embedding.fit(pf["features"][m], pf["mirror"][m], 0)
        pz, pzm = emb(pf["features"][m]), emb(pf["mirror"][m])
        t, z = clustering.embed(d["features"][m], 0)
        zm = t(d["mirror"][m])
        for k in range(2, 7):
            c0 = time.process_time()
            ph = cluster_heads.train_heads(pz, k, 0, mirror=pzm)
            patch = ph.labels[ph.best]
            sh = cluster_heads.train_heads(z, k, 0, mirror=zm)
            heads = sh.labels[sh.best]
            km = clustering.kmeans(z, k, 0).labels_
            row = {"setup": setup, "tag": tag, "coarse": cname, "k_true": len(np.unique(truth)),
                   "k": k, "ari_heads": ari(truth, heads), "ari_km": ari(truth, km),
                   "ari_patch": ari(truth, patch), "views": ari(patch, heads),
                   "views_km": ari(patch, km), "heads": sh.agreement(),
                   "sizes": sorted(np.bincount(heads, minlength=k).tolist(), reverse=True),
                   "cpu_s": time.process_time() - c0}
            print(json.dumps({a: (round(b, 3) if isinstance(b, float) else b)
                              for a, b in row.items()}), flush=True)
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
