"""Panel of feature x transform x clusterer on one cached feature file, at the true k.
Prints ARI per coarse class and diagnostics (linear probe, 10-NN purity: hidden labels,
diagnosis only). Usage: python eval_feats.py cache/feats_TAG.npz [quick]"""
import sys, time, json
import numpy as np
import clusterkit as ck, lab

f = np.load(sys.argv[1])
tag = sys.argv[1].split("feats_")[-1][:-4]
coarse, fine = f["coarse"], f["fine"]
sources = {
    "pen": f["features"],
    "pen_flipavg": (f["features"] + f["features_flip"]) / 2,
    "stage3": (f["stage3"] + f["stage3_flip"]) / 2,
    "stage2": (f["stage2"] + f["stage2_flip"]) / 2,
    "cat_l2": np.concatenate([ck.l2n((f[s] + f[s + "_flip"]) / 2) for s in ("features", "stage3", "stage2")], 1),
}
if f["logits"].shape[1] > 2:
    sources["sublogits"] = (f["logits"] + f["logits_flip"]) / 2
embeds = ["lgtf", "pca", "white", "l2white"]
clusterers = ["kmeans", "spectral"]
for sname, X in sources.items():
    for c in np.unique(coarse):
        r = coarse == c
        kt = len(np.unique(fine[r]))
        diag = {"probe": round(ck.linear_probe(X[r], fine[r]), 3)}
        line = []
        for e in embeds:
            z = ck.embed(X[r], e)
            diag[f"pur_{e}"] = round(ck.knn_purity(z, fine[r]), 3)
            for cl in clusterers:
                t = time.time()
                lbl = ck.cluster(z, kt, cl)
                ari, nmi = lab.agreement(lbl, fine[r])
                sizes = sorted(np.bincount(lbl).tolist(), reverse=True)
                line.append(f"{e}/{cl}={ari:.2f}")
                lab.log_result({"kind": "panel", "tag": tag, "source": sname, "coarse": int(c), "embed": e,
                                "clusterer": cl, "k": kt, "ari": round(ari, 4), "nmi": round(nmi, 4),
                                "sizes": sizes, "sec": round(time.time() - t, 2)},
                               path=lab.os.path.join(lab.HERE, "results", "panel.jsonl")) if False else None
                with open(lab.os.path.join(lab.HERE, "results", "panel.jsonl"), "a") as fh:
                    fh.write(json.dumps({"tag": tag, "source": sname, "coarse": int(c), "embed": e, "clusterer": cl,
                                         "k": kt, "ari": round(ari, 4), "nmi": round(nmi, 4), "sizes": sizes,
                                         "sec": round(time.time() - t, 2), **diag}) + "\n")
        print(f"{tag} {sname:12s} c{c} {diag} | " + " ".join(line), flush=True)
