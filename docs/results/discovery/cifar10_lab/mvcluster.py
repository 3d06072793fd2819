"""Per-coarse-class clustering on two label-free views, with auto k and a quality signal.

Views (rows = images of one coarse class): each standardised per feature, rows L2-normalised.
  cluster:   concatenate the views (equal weight), PCA to 32 dims (no whitening), rows
             L2-normalised, k-means (n_init=10).
  agreement: the same recipe on each view alone; ARI between the two single-view clusterings.
             Two representations with different nuisance factors (patch statistics vs. an
             augmentation-invariant network) agree only on structure they share.
  auto k:    the k in 2..k_max with the highest agreement (ties: smaller k).
"""
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

DIMS = 32


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prepare(views):
    return [l2n(StandardScaler().fit_transform(np.asarray(v, np.float64))) for v in views]


def embed(views, seed=0):
    x = np.concatenate(views, 1) / np.sqrt(len(views))
    return l2n(PCA(min(DIMS, x.shape[1], len(x) - 1), random_state=seed).fit_transform(x))


def kmeans(z, k, seed=0):
    return KMeans(k, n_init=10, random_state=seed).fit_predict(z)


def cluster_all(views, k, seed=0):
    """(labels of the concatenated views, labels of each view alone)."""
    joint = kmeans(embed(views, seed), k, seed)
    single = [kmeans(embed([v], seed), k, seed) for v in views]
    return joint, single


def signals(joint, single):
    pairs = [adjusted_rand_score(single[i], single[j]) for i in range(len(single)) for j in range(i + 1, len(single))]
    support = [adjusted_rand_score(joint, s) for s in single]
    return {"agreement": float(np.mean(pairs)), "support": float(np.mean(support))}


def discover(views, k="auto", k_max=6, seed=0):
    """views: list of [n, d_v] arrays for one coarse class. Returns (labels, k, info)."""
    views = prepare(views)
    ks = range(2, k_max + 1) if k == "auto" else [int(k)]
    tried = {}
    for kk in ks:
        joint, single = cluster_all(views, kk, seed)
        tried[kk] = (joint, signals(joint, single))
    best = max(tried, key=lambda kk: (tried[kk][1]["agreement"], -kk))
    return tried[best][0], best, {kk: s for kk, (_, s) in tried.items()}
