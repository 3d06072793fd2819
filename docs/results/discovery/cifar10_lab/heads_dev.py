"""SCAN heads on cached SimCLR features with other embeddings, DEV ONLY, true k.
usage: python heads_dev.py TAG"""
import sys, numpy as np
from sklearn.metrics import adjusted_rand_score as ari
from lg_tf import cluster_heads, clustering
d = np.load(f"cache/ssl_{sys.argv[1]}_w16.npz")
f, fm, coarse, fine = d["features"], d["mirror"], d["coarse"], d["fine"]
for name in ("whiten32 (round 2)", "L2+PCA32 (k-means recipe)", "L2 128-d"):
    a, h = [], []
    for c in np.unique(coarse):
        m = coarse == c
        k = len(np.unique(fine[m]))
        if name.startswith("whiten"):
            e = cluster_heads.Embedding.fit(f[m], fm[m], 0); z, zm = e(f[m]), e(fm[m])
        elif name.startswith("L2+PCA"):
            t, z = clustering.embed(f[m], 0); zm = t(fm[m])
        else:
            z, zm = cluster_heads.l2n(f[m]), cluster_heads.l2n(fm[m])
        heads = cluster_heads.train_heads(z, k, 0, mirror=zm)
        a.append(ari(fine[m], heads.labels[heads.best])); h.append(heads.agreement())
    print(f"{name:28s} " + " ".join(f"{x:.3f}" for x in a) + f"  mean {np.mean(a):.3f}  heads agreement " + " ".join(f"{x:.2f}" for x in h), flush=True)
