"""Pseudo-fine classes: each coarse class clustered on its images' features.

Two recipes (`METHODS`); `lg_tf.discover` picks the one that goes with its features:

* `heads` (features `patches`): `lg_tf.cluster_heads` -- PCA-whitening to 32 dimensions,
  L2, SCAN clustering heads trained on each image, its mirror image and its nearest
  neighbours; `--k=auto` takes the k with the highest agreement: with a second view
  (`check`, SimCLR features), the ARI between the clusters and that view's k-means
  clusters, else the agreement between 5 independently started heads. Needs TensorFlow.
* `kmeans` (features `simclr`, `penultimate`, `block`, `pixels`), with a fixed seed:

1. the training features are L2-normalised (CNN features differ in scale from image to
   image; their direction carries the content) and reduced by PCA to at most `dims`
   components fitted on that class alone;
2. k-means (scikit-learn, `n_init=10`) splits them into k clusters; with k = 'auto' and no
   second view, k is the candidate in 2..k_max with the highest mean silhouette
   coefficient (computed on up to 2,000 points);
3. test images are assigned to the nearest cluster centre after the same transform;
4. agreement: with a second view (`check`: patch features and their mirror images, for
   `simclr`), the ARI between the k-means clusters and SCAN-head clusters of that view at
   the same k, and `--k=auto` takes the k with the highest agreement instead of the
   silhouette. Without one, the mean ARI between k-means runs from 5 seeds (n_init=1): on
   real CIFAR-10 it is 0.94-1.0 for clusters at chance (ARI <= 0.05), so it says only
   that k-means is reproducible and the verdict never calls such clusters supported.

Every per-coarse result carries `agreement` ({k: mean ARI between independent
clusterings}) and a `verdict` in words (`cluster_heads.verdict`).

Clusters are named `<coarse>_<j>`, j = 1 for the largest, so names are stable for a seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lg_tf.errors import ConfigError, DataError

PCA_DIMS = 32
SILHOUETTE_SAMPLES = 2000
AGREEMENT_SEEDS = 5
AUTO = "auto"
METHODS = ("heads", "kmeans")


@dataclasses.dataclass
class CoarseClusters:
    coarse: str
    k: int
    sizes: list[int]                    # training images per cluster, largest first
    silhouette: dict[int, float]        # k -> mean silhouette (kmeans; the clusters'
                                        # shape, not their correctness)
    names: list[str]                    # cluster names, index = cluster id
    agreement: dict = dataclasses.field(default_factory=dict)  # k -> mean ARI between
                                        # independent clusterings (label-free signal)
    verdict: str = ""                   # the chosen k's agreement in words


@dataclasses.dataclass
class Clustering:
    names: list[str]                    # every pseudo-fine class name
    parent: list[int]                   # coarse index of each pseudo-fine class
    train: np.ndarray                   # pseudo-fine id per training image
    test: np.ndarray                    # pseudo-fine id per test image
    per_coarse: list[CoarseClusters]

    def hierarchy_dict(self, coarse_names) -> dict:
        return {n: coarse_names[p] for n, p in zip(self.names, self.parent)}


def parse_k(text: str) -> int | str:
    """'auto' or an integer >= 2 (ConfigError otherwise)."""
    if str(text).strip().lower() == AUTO:
        return AUTO
    try:
        k = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--k={text} must be 'auto' or a whole number of pseudo-fine "
                          "classes per coarse class, e.g. --k=3") from None
    if k < 2:
        raise ConfigError(f"--k={k} must be at least 2: one cluster per coarse class is the "
                          "coarse label itself")
    return k


def embed(features: np.ndarray, seed: int, dims: int = PCA_DIMS):
    """(a function mapping features to the clustering space, the training points in it)."""
    from sklearn.decomposition import PCA
    x = _normalise(features)
    n_components = max(1, min(dims, x.shape[1], len(x) - 1))
    pca = PCA(n_components=n_components, random_state=seed).fit(x)
    return (lambda f: pca.transform(_normalise(f))), pca.transform(x)


def _normalise(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def kmeans(points: np.ndarray, k: int, seed: int):
    from sklearn.cluster import KMeans
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points)


def silhouette(points: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.metrics import silhouette_score
    n = min(len(points), SILHOUETTE_SAMPLES)
    return float(silhouette_score(points, labels, sample_size=n, random_state=seed))


def choose_k(points: np.ndarray, k_max: int, seed: int) -> tuple[int, dict, object]:
    """(k with the highest silhouette in 2..k_max, {k: silhouette}, its fitted k-means)."""
    scores, fits = {}, {}
    for k in range(2, min(k_max, len(points) - 1) + 1):
        fits[k] = kmeans(points, k, seed)
        scores[k] = silhouette(points, fits[k].labels_, seed)
    best = max(scores, key=lambda k: (scores[k], -k))  # ties: fewer clusters
    return best, scores, fits[best]


def check_sizes(coarse_names, counts, k) -> None:
    """Refuses a coarse class with too few training images for k clusters."""
    need = 3 if k == AUTO else k  # a silhouette needs 2 <= k <= n - 1
    for name, n in zip(coarse_names, counts):
        if n == 0:
            raise DataError(f"coarse class '{name}' has no training images; add images or "
                            "remove the class")
        if n < need:
            what = ("--k=auto needs at least 3 to compare k=2 with another" if k == AUTO
                    else f"fewer than --k={k}")
            raise DataError(f"coarse class '{name}' has {n} training image"
                            f"{'' if n == 1 else 's'}, {what}; lower --k or add images")


def check_distinct(coarse: str, features: np.ndarray, k: int | str) -> int:
    """The number of distinct training images of a coarse class as the features see them;
    refuses fewer than k (k-means cannot split copies of one image: duplicates, blank
    scans). Compared after the L2 normalisation `embed` applies, to 6 decimals."""
    x = np.round(_normalise(features), 6)
    distinct = len(np.unique(x, axis=0))
    need = 2 if k == AUTO else k
    if distinct < need:
        what = ("all the same" if distinct == 1 else
                f"only {distinct} different ones, fewer than --k={k}")
        raise DataError(f"the {len(features)} training images of coarse class '{coarse}' are "
                        f"{what} as their features see them (duplicates or blank images), so "
                        "they cannot be split into pseudo-fine classes; "
                        + ("remove the duplicates or add varied images" if k == AUTO
                           or distinct == 1 else "remove the duplicates, add varied images, "
                           f"or use --k={distinct}"))
    return distinct


def seed_agreement(points: np.ndarray, k: int, seed: int) -> float:
    """Mean ARI between k-means runs from AGREEMENT_SEEDS seeds (n_init=1 each)."""
    from sklearn.cluster import KMeans

    from lg_tf import cluster_heads
    runs = [KMeans(n_clusters=k, n_init=1, random_state=seed + i).fit_predict(points)
            for i in range(AGREEMENT_SEEDS)]
    return cluster_heads.agreement(runs)


KMEANS_VERDICT = ("k-means on these features: agreement {a:.2f} says only that k-means is "
                  "reproducible (on real CIFAR-10 it was 0.94-1.0 for clusters at chance); "
                  "not a sign of real fine classes")


def discover(train_features: np.ndarray, train_coarse: np.ndarray,
             test_features: np.ndarray, test_coarse: np.ndarray, coarse_names,
             k: int | str, seed: int, k_max: int = 6, method: str = "kmeans",
             train_mirror: np.ndarray | None = None, check: np.ndarray | None = None,
             log=None, views: str = "views") -> Clustering:
    """Clusters every coarse class; returns pseudo-fine ids for both splits.

    `train_mirror`: features of the mirrored training images (`heads` uses them to fit the
    embedding and as a second view of each image). `check`: {"features", and for
    `kmeans` "mirror"} of an independent second view of the training images; the
    agreement is then the ARI between the clusters and that view's clusters at the same k
    ("views": k-means of it for `heads`, SCAN heads on it for `kmeans`), else the agreement
    of the heads or of k-means seeds. `views`: the key of cluster_heads.THRESHOLDS that
    judges k-means clusters against a second view ("backbone_views" for a user's backbone)."""
    if method not in METHODS:
        raise ConfigError(f"clustering method {method!r} is unknown; one of {METHODS}")
    counts = np.bincount(train_coarse, minlength=len(coarse_names))
    check_sizes(coarse_names, counts, k)
    train = np.empty(len(train_coarse), np.int64)
    test = np.empty(len(test_coarse), np.int64)
    names, parent, per_coarse = [], [], []
    for c, coarse in enumerate(coarse_names):
        rows, test_rows = np.flatnonzero(train_coarse == c), np.flatnonzero(test_coarse == c)
        distinct = check_distinct(coarse, train_features[rows], k)
        mirror = None if train_mirror is None else train_mirror[rows]
        check_rows = None if check is None else {
            n: v[rows] for n, v in check.items() if v is not None}
        if method == "heads":
            chosen, labels, predict, agree = _heads(
                train_features[rows], mirror, k, min(k_max, distinct), seed,
                None if check_rows is None else check_rows["features"])
            scores, text = {}, None
            kind = "heads" if check is None else "views"
        elif check_rows is not None:       # k-means clusters judged by a second view
            chosen, labels, predict, agree = _kmeans_views(
                train_features[rows], k, min(k_max, distinct), seed, check_rows)
            scores, text, kind = {}, None, views
        else:
            transform, points = embed(train_features[rows], seed)
            if k == AUTO:
                chosen, scores, fit = choose_k(points, min(k_max, distinct), seed)
            else:
                fit = kmeans(points, k, seed)
                chosen = k
                scores = {k: silhouette(points, fit.labels_, seed)} if k < len(rows) else {}
            labels = fit.labels_

            def predict(f, fit=fit, transform=transform):
                return fit.predict(transform(f))
            agree = {chosen: seed_agreement(points, chosen, seed)}
            text, kind = KMEANS_VERDICT.format(a=agree[chosen]), "heads"
        from lg_tf import cluster_heads
        order = _largest_first(labels, chosen)     # cluster id -> rank by size
        first = len(names)
        cluster_names = [f"{coarse}_{j + 1}" for j in range(chosen)]
        names += cluster_names
        parent += [c] * chosen
        train[rows] = first + order[labels]
        if len(test_rows):
            test[test_rows] = first + order[predict(test_features[test_rows])]
        sizes = np.bincount(order[labels], minlength=chosen).tolist()
        verdict = text or cluster_heads.verdict(agree[chosen], kind)
        per_coarse.append(CoarseClusters(coarse, chosen, sizes, scores, cluster_names,
                                         agree, verdict))
        if log is not None:
            log.info("coarse class '%s': k=%d, sizes %s, agreement %.3f: %s", coarse, chosen,
                     sizes, agree[chosen], verdict)
    return Clustering(names, parent, train, test, per_coarse)


def _heads(features, mirror, k, k_max: int, seed: int, check=None):
    """(k, training labels, test predictor, {k: agreement}) with cluster_heads."""
    from sklearn.metrics import adjusted_rand_score

    from lg_tf import cluster_heads
    emb = cluster_heads.Embedding.fit(features, mirror, seed)
    points = emb(features)
    mirrored = None if mirror is None else emb(mirror)
    ks = range(2, min(k_max, len(points) - 1) + 1) if k == AUTO else [k]
    fits = {kk: cluster_heads.train_heads(points, kk, seed, mirrored) for kk in ks}
    if check is None:
        agree = {kk: round(f.agreement(), 4) for kk, f in fits.items()}
    else:   # the second view, clustered by the k-means recipe at the same k
        _, check_points = embed(check, seed)
        agree = {kk: round(float(adjusted_rand_score(
            f.labels[f.best], kmeans(check_points, kk, seed).labels_)), 4)
            for kk, f in fits.items()}
    chosen = max(agree, key=lambda kk: (agree[kk], -kk))    # ties: fewer clusters
    best = fits[chosen]
    return chosen, best.labels[best.best], (lambda f: best.predict(emb(f))), agree


def _kmeans_views(features, k, k_max: int, seed: int, check: dict):
    """(k, training labels, test predictor, {k: agreement}): k-means clusters, judged by
    their ARI with SCAN-head clusters of the second view (`check`) at the same k."""
    from sklearn.metrics import adjusted_rand_score

    from lg_tf import cluster_heads
    transform, points = embed(features, seed)
    emb = cluster_heads.Embedding.fit(check["features"], check.get("mirror"), seed)
    view = emb(check["features"])
    view_mirror = None if check.get("mirror") is None else emb(check["mirror"])
    ks = range(2, min(k_max, len(points) - 1) + 1) if k == AUTO else [k]
    fits = {kk: kmeans(points, kk, seed) for kk in ks}
    agree = {}
    for kk, fit in fits.items():
        heads = cluster_heads.train_heads(view, kk, seed, view_mirror)
        agree[kk] = round(float(adjusted_rand_score(fit.labels_, heads.labels[heads.best])), 4)
    chosen = max(agree, key=lambda kk: (agree[kk], -kk))    # ties: fewer clusters
    fit = fits[chosen]
    return chosen, fit.labels_, (lambda f: fit.predict(transform(f))), agree


def _largest_first(labels: np.ndarray, k: int) -> np.ndarray:
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    return rank


def agreement(pseudo: np.ndarray, true_fine: np.ndarray) -> dict:
    """NMI and ARI of the pseudo-fine labels against the true fine labels (sklearn)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    return {"nmi": float(normalized_mutual_info_score(true_fine, pseudo)),
            "ari": float(adjusted_rand_score(true_fine, pseudo))}
