"""SCAN's clustering step (Van Gansbeke et al. 2020) on FROZEN features, one coarse class.

Neighbours: the K nearest (cosine) in the embedding. A linear softmax head per trial is
trained to give a point and its neighbours the same cluster (-log <p_i, p_j>) while keeping
the clusters used (minus entropy of the mean prediction, weight 5 as in SCAN). Several heads
from different inits; SCAN keeps the one with the lowest loss.
"""
import numpy as np


def scan_cluster(z, k, seed=0, knn=20, heads=5, epochs=60, batch=256, entropy_weight=5.0, z_aug=None, lr=1e-2):
    import tensorflow as tf
    from sklearn.neighbors import NearestNeighbors
    z = np.asarray(z, np.float32)
    nb = NearestNeighbors(n_neighbors=knn + 1).fit(z).kneighbors(z, return_distance=False)[:, 1:]
    n, d = z.shape
    rng = np.random.default_rng(seed)
    tf.random.set_seed(seed)
    W = tf.Variable(tf.random.normal([heads, d, k], stddev=0.01, seed=seed))
    b = tf.Variable(tf.zeros([heads, k]))
    opt = tf.keras.optimizers.Adam(lr)
    zt = tf.constant(z)
    za = tf.constant(np.asarray(z_aug, np.float32)) if z_aug is not None else zt

    @tf.function(autograph=False)
    def step(ia, ja, use_aug):
        with tf.GradientTape() as tape:
            xa = tf.where(use_aug[:, None], tf.gather(za, ia), tf.gather(zt, ia))
            pa = tf.nn.softmax(tf.einsum("nd,hdk->hnk", xa, W) + b[:, None], -1)
            pn = tf.nn.softmax(tf.einsum("nd,hdk->hnk", tf.gather(zt, ja), W) + b[:, None], -1)
            cons = -tf.reduce_mean(tf.math.log(tf.reduce_sum(pa * pn, -1) + 1e-8), 1)      # [H]
            pm = tf.reduce_mean(pa, 1)
            ent = -tf.reduce_sum(pm * tf.math.log(pm + 1e-8), -1)                             # [H]
            loss = cons - entropy_weight * ent
            total = tf.reduce_sum(loss)
        g = tape.gradient(total, [W, b])
        opt.apply_gradients(zip(g, [W, b]))
        return cons, ent

    for ep in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            ia = order[s:s + batch]
            ja = nb[ia, rng.integers(0, knn, len(ia))]
            step(tf.constant(ia), tf.constant(ja), tf.constant(rng.random(len(ia)) < 0.5))
    # final loss per head on all points
    logits = np.einsum("nd,hdk->hnk", z, W.numpy()) + b.numpy()[:, None]
    p = np.exp(logits - logits.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
    pn = p[:, nb]                                                     # [H, n, knn, k]
    cons = -np.log((p[:, :, None, :] * pn).sum(-1) + 1e-8).mean((1, 2))
    pm = p.mean(1)
    ent = -(pm * np.log(pm + 1e-8)).sum(-1)
    loss = cons - entropy_weight * ent
    best = int(np.argmin(loss))
    return p.argmax(-1), best, loss, p
