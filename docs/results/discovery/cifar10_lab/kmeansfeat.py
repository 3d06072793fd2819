"""Label-free single-layer k-means features (Coates, Lee & Ng, AISTATS 2011).

Settings from the paper, not tuned here: 6x6 receptive fields, stride 1, per-patch
brightness/contrast normalisation (var + 10 on a 0-255 scale), ZCA whitening (eps 0.1),
K centroids by k-means on 100k random whitened patches, "triangle" encoding
f_k = max(0, mean_j(z_j) - z_k) with z_k the distance to centroid k, sum-pooled over the
four image quadrants -> 4K features. The encoder runs in TensorFlow (float32).
"""
import numpy as np

RF, EPS_NORM, EPS_ZCA = 6, 10.0, 0.1


def _patches(imgs):
    """[n,32,32,3] -> [n, 27, 27, 108] (row, column, channel order), float32."""
    import tensorflow as tf
    return tf.image.extract_patches(tf.cast(imgs, tf.float32), [1, RF, RF, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")


def _normalise(p):
    import tensorflow as tf
    m, v = tf.nn.moments(p, axes=[-1], keepdims=True)
    return (p - m) / tf.sqrt(v + EPS_NORM)


class KMeansFeatures:
    def __init__(self, k=400, n_patches=100_000, seed=0):
        self.k, self.n_patches, self.seed = k, n_patches, seed

    def fit(self, images):
        import tensorflow as tf
        from sklearn.cluster import MiniBatchKMeans
        rng = np.random.default_rng(self.seed)
        i = rng.integers(0, len(images), self.n_patches)
        r, c = rng.integers(0, 32 - RF + 1, self.n_patches), rng.integers(0, 32 - RF + 1, self.n_patches)
        P = []
        for s in range(0, len(images), 500):   # patches of the sampled positions, image batch by batch
            pt = _patches(images[s:s + 500]).numpy()
            sel = (i >= s) & (i < s + 500)
            P.append(pt[i[sel] - s, r[sel], c[sel]])
        P = _normalise(tf.constant(np.concatenate(P))).numpy().astype(np.float64)
        self.mean = P.mean(0)
        d, V = np.linalg.eigh(np.cov(P - self.mean, rowvar=False))
        self.zca = (V * (1.0 / np.sqrt(d + EPS_ZCA))) @ V.T
        Pw = (P - self.mean) @ self.zca
        km = MiniBatchKMeans(self.k, batch_size=4096, n_init=3, random_state=self.seed, max_iter=50).fit(Pw)
        self.centroids = km.cluster_centers_.astype(np.float32)
        self._encode = None
        return self

    def _encoder(self):
        import tensorflow as tf
        mean = tf.constant(self.mean, tf.float32); zca = tf.constant(self.zca, tf.float32)
        cen = tf.constant(self.centroids); cc = tf.reduce_sum(cen ** 2, 1)

        @tf.function(autograph=False, reduce_retracing=True)
        def encode(imgs):
            p = tf.tensordot(_normalise(_patches(imgs)) - mean, zca, 1)
            d2 = tf.reduce_sum(p ** 2, -1, keepdims=True) - 2 * tf.tensordot(p, cen, [[3], [1]]) + cc
            z = tf.sqrt(tf.maximum(d2, 0.0))
            f = tf.nn.relu(tf.reduce_mean(z, -1, keepdims=True) - z)
            h = (32 - RF + 1) // 2   # quadrants 13/14 rows, as the paper's halves
            return tf.concat([tf.reduce_sum(f[:, :h, :h], [1, 2]), tf.reduce_sum(f[:, :h, h:], [1, 2]),
                              tf.reduce_sum(f[:, h:, :h], [1, 2]), tf.reduce_sum(f[:, h:, h:], [1, 2])], 1)
        return encode

    def transform(self, images, batch=250):
        if getattr(self, "_encode", None) is None:
            self._encode = self._encoder()
        return np.concatenate([self._encode(images[s:s + batch]).numpy() for s in range(0, len(images), batch)])
