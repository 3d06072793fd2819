"""Round 3 idea, DEV ONLY: before clustering coarse class c, project out the top m principal
directions of the OTHER coarse classes' centred (L2-normalised) features: variation shared
by every coarse class (colour, brightness, background) rather than what splits c.
Then lg_tf's k-means recipe (L2, PCA 32, k-means) at the true k.
usage: python nuisance_dev.py TAG [TAG ...]"""
import sys, numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score as ari
from lg_tf import clustering


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


for tag in sys.argv[1:]:
    d = np.load(f"cache/ssl_{tag}_w16.npz")
    f, coarse, fine = l2n(d["features"].astype(np.float64)), d["coarse"], d["fine"]
    out = {}
    for m in (0, 4, 8, 16):
        a = []
        for c in np.unique(coarse):
            sel = coarse == c
            x = f[sel]
            if m:
                other = f[~sel] - f[~sel].mean(0)
                u = PCA(m, random_state=0).fit(other).components_
                x = x - (x - x.mean(0)) @ u.T @ u
            _, pts = clustering.embed(x, 0)
            a.append(ari(fine[sel], clustering.kmeans(pts, len(np.unique(fine[sel])), 0).labels_))
        out[m] = a
    print(tag, "  ".join(f"m={m}: {a[0]:.3f}/{a[1]:.3f} ({np.mean(a):.3f})" for m, a in out.items()), flush=True)
