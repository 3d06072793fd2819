"""Clustering variants on cached features (numpy + scikit-learn only)."""
import numpy as np
from sklearn.cluster import KMeans, SpectralClustering, AgglomerativeClustering
from sklearn.decomposition import PCA


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embed(x, how="lgtf", dims=32, seed=0):
    """Feature transforms, fitted on the rows of ONE coarse class."""
    x = np.asarray(x, np.float64)
    if how == "lgtf":           # lg_tf today: L2 normalise, PCA 32
        z = l2n(x)
        return PCA(min(dims, z.shape[1]), random_state=seed).fit_transform(z)
    if how == "pca":            # centre + PCA (no normalisation)
        return PCA(min(dims, x.shape[1]), random_state=seed).fit_transform(x)
    if how == "white":          # centre, PCA-whiten to dims, L2 normalise (spherical k-means)
        z = PCA(min(dims, x.shape[1]), whiten=True, random_state=seed).fit_transform(x)
        return l2n(z)
    if how == "l2white":        # L2 normalise, then centre + PCA-whiten, then L2 normalise
        z = PCA(min(dims, x.shape[1]), whiten=True, random_state=seed).fit_transform(l2n(x))
        return l2n(z)
    if how == "l2center":       # L2 normalise, centre on the class mean, L2 normalise again
        z = l2n(x)
        return l2n(z - z.mean(0))
    raise ValueError(how)


def knn_graph(z, k=10):
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    return nn.kneighbors(z, return_distance=False)[:, 1:]


def cluster(z, k, how="kmeans", seed=0, n_neighbors=10):
    if how == "kmeans":
        return KMeans(k, n_init=10, random_state=seed).fit_predict(z)
    if how == "spectral":
        return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=n_neighbors,
                                  assign_labels="cluster_qr", random_state=seed).fit_predict(z)
    if how == "ward":
        return AgglomerativeClustering(k, linkage="ward").fit_predict(z)
    if how == "overkm":         # over-cluster into 10k k-means cells, merge cells by Ward
        m = min(10 * k, len(z) // 10)
        km = KMeans(m, n_init=3, random_state=seed).fit(z)
        merge = AgglomerativeClustering(k, linkage="ward").fit_predict(km.cluster_centers_)
        return merge[km.labels_]
    raise ValueError(how)


def knn_purity(z, fine, k=10):
    """Diagnostic only (uses hidden labels): share of each point's k NNs with its fine label."""
    nb = knn_graph(z, k)
    return float((fine[nb] == fine[:, None]).mean())


def linear_probe(x, fine, seed=0):
    """Diagnostic only: 3-fold CV accuracy of logistic regression for the hidden fine labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return float(cross_val_score(clf, x, fine, cv=3).mean())
