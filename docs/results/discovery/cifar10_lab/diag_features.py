"""Diagnostic only (reads the hidden fine labels; chooses nothing): how much of the fine split
the cached SimCLR features hold, per coarse class: 10-NN purity (chance = sum of squared
class shares) and 3-fold linear-probe accuracy (chance = majority share).
usage: python diag_features.py TAG [TAG ...]   (cache/ssl_<TAG>_w16.npz)"""
import sys, numpy as np
import clusterkit as ck
for tag in sys.argv[1:]:
    d = np.load(f"cache/ssl_{tag}_w16.npz")
    for c in np.unique(d["coarse"]):
        m = d["coarse"] == c
        f, fine = d["features"][m], d["fine"][m]
        share = np.bincount(fine)[np.unique(fine)] / len(fine)
        z = ck.embed(f, "lgtf")
        print(f"{tag:12s} coarse {c}: k {len(share)}  10-NN purity {ck.knn_purity(z, fine):.3f} "
              f"(chance {np.sum(share ** 2):.3f})  linear probe {ck.linear_probe(f, fine):.3f} "
              f"(chance {share.max():.3f})", flush=True)
