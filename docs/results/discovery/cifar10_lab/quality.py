"""Label-free quality signals for a clustering of one coarse class."""
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score as A


def subsample_stability(z, k, seed=0, pairs=10, frac=0.8, n_init=3):
    """Ben-Hur/Lange-style stability: cluster two random 80% subsamples (k-means, different
    seeds), ARI of the two labelings on the points they share; mean over `pairs`."""
    rng = np.random.default_rng(seed)
    n, m = len(z), int(frac * len(z))
    out = []
    for p in range(pairs):
        a, b = rng.choice(n, m, replace=False), rng.choice(n, m, replace=False)
        la = KMeans(k, n_init=n_init, random_state=seed + 2 * p).fit(z[a]).predict(z)
        lb = KMeans(k, n_init=n_init, random_state=seed + 2 * p + 1).fit(z[b]).predict(z)
        both = np.intersect1d(a, b)
        out.append(A(la[both], lb[both]))
    return float(np.mean(out)), float(np.std(out))


def view_agreement(labels_a, labels_b):
    """ARI between clusterings of the same images made from two different representations."""
    return float(A(labels_a, labels_b))
