"""Round 3: the views agreement of the SCAN fine-tuned clusters (scan_ft.py, cache/scan_*.npy):
ARI between them and the patch view's SCAN heads (lg_tf's patches recipe) at the same k,
beside their ARI against the hidden fine classes. usage: python scan_views.py SETUP TAG"""
import glob, json, os, sys
import numpy as np
from sklearn.metrics import adjusted_rand_score as ari
import lab
from lg_tf import cluster_heads

setup, tag = sys.argv[1:3]
x, coarse, fine, names, _ = lab.load_setup(setup)
pf = np.load(os.path.join(lab.HERE, "cache", f"patchfeat_{setup}.npz"))
for ci, cname in enumerate(names):
    m = coarse == ci
    emb = cluster_heads.Embedding.fit(pf["features"][m], pf["mirror"][m], 0)
    z, zm = emb(pf["features"][m]), emb(pf["mirror"][m])
    for path in sorted(glob.glob(os.path.join(lab.HERE, "cache", f"scan_{setup}_{tag}_{cname}_k*.npy"))):
        labels = np.load(path)
        k = int(path.rsplit("_k", 1)[1].split(".")[0])
        heads = cluster_heads.train_heads(z, k, 0, mirror=zm)
        row = {"setup": setup, "tag": tag, "coarse": cname, "k": k, "k_true": len(np.unique(fine[m])),
               "ari_scan": ari(fine[m], labels), "views": ari(heads.labels[heads.best], labels)}
        print(json.dumps(row), flush=True)
        with open(os.path.join(lab.HERE, "scan_views.jsonl"), "a") as fh:
            fh.write(json.dumps(row) + "\n")
