"""Clustering variants on cached SimCLR features, DEV ONLY, at the true k (ARI vs hidden fine).
usage: python feat_cluster_dev.py CACHE_TAG  (e.g. dev_s4000, dev_s4000c)"""
import sys, json, numpy as np
from sklearn.metrics import adjusted_rand_score as ari
import clusterkit as ck
d = np.load(f"cache/ssl_{sys.argv[1]}_w16.npz")
f, fm, coarse, fine = d["features"], d["mirror"], d["coarse"], d["fine"]
res = {}
for emb in ("lgtf", "white", "l2white", "l2center"):
    for how in ("kmeans", "spectral", "ward", "overkm"):
        a = []
        for c in np.unique(coarse):
            m = coarse == c
            k = len(np.unique(fine[m]))
            z = ck.embed(f[m], emb) if emb != "l2center" else ck.embed(f[m], emb)
            a.append(ari(fine[m], ck.cluster(z, k, how)))
        res[f"{emb}/{how}"] = a
        print(f"{emb:9s} {how:9s} " + " ".join(f"{x:.3f}" for x in a) + f"  mean {np.mean(a):.3f}", flush=True)
