"""Round 3, last idea: SCAN's clustering step with the network fine-tuned (Van Gansbeke et al.
2020), on a saved SimCLR trunk. Per coarse class: 20 nearest neighbours mined on the trunk's
L2-normalised features; a fresh copy of the trunk + 5 linear softmax heads trained with Adam
(lr 1e-4) for 30 epochs, batch 128, so that a SimCLR view of an image and a SimCLR view of one
of its neighbours get the same cluster (-log <p_a, p_n>) minus 5 x the entropy of the mean
prediction; the head with the lowest loss on the clean images gives the clusters (SCAN's rule).
All settings fixed before the first run (SCAN's own, scaled down to 30 epochs for the CPU).
usage: python scan_ft.py SETUP TRUNK_TAG [auto]   (cache/trunk_<setup>_<tag>.weights.h5)
auto: at the k round 2's rule picks on the same features (the highest views agreement of the
k-means clusters with the patch view, from heads_views_<setup>_<tag>.jsonl), where that k is
not the true one."""
import json, os, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.neighbors import NearestNeighbors
import lab
from lg_tf import simclr

HEADS, NEIGHBOURS, EPOCHS, BATCH, LR, ENTROPY = 5, 20, 30, 128, 1e-4, 5.0


def scan_class(path, x, k, seed=0):
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    trunk, _ = simclr._models(simclr.WIDTH)
    trunk.load_weights(path)
    f = simclr.extract(trunk, x)["features"]
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    nb = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(f).kneighbors(f, return_distance=False)[:, 1:]
    head = keras.layers.Dense(HEADS * k, dtype="float32")
    head.build((None, trunk.output.shape[-1]))
    variables = trunk.trainable_variables + head.trainable_variables
    opt = keras.optimizers.Adam(LR)
    opt.build(variables)

    def probs(h):
        return tf.nn.softmax(tf.reshape(head(tf.cast(h, tf.float32)), [-1, HEADS, k]), -1)

    def loss_of(pa, pn):
        consistency = -tf.reduce_mean(tf.math.log(tf.reduce_sum(pa * pn, -1) + 1e-8), 0)  # [H]
        mean = tf.reduce_mean(pa, 0)
        entropy = -tf.reduce_sum(mean * tf.math.log(mean + 1e-8), -1)
        return consistency - ENTROPY * entropy

    @tf.function(reduce_retracing=True)
    def step(a, n, s):
        va = simclr.augment(tf.cast(a, tf.float32), s)
        vn = simclr.augment(tf.cast(n, tf.float32), s + [0, 1 << 40])
        with tf.GradientTape() as tape:
            p = probs(trunk(tf.concat([va, vn], 0), training=True))
            b = tf.shape(a)[0]
            total = tf.reduce_sum(loss_of(p[:b], p[b:]))
        opt.apply_gradients(zip(tape.gradient(total, variables), variables))
        return total

    rng = np.random.default_rng(seed)
    n = len(x)
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        for i, s in enumerate(range(0, n - BATCH + 1, BATCH)):
            ia = order[s:s + BATCH]
            ja = nb[ia, rng.integers(0, NEIGHBOURS, len(ia))]
            last = step(tf.constant(x[ia]), tf.constant(x[ja]),
                        tf.constant([seed, epoch * 1000 + i], tf.int64))
    clean = np.concatenate([probs(trunk(tf.cast(x[i:i + 500], tf.float32), training=False)).numpy()
                            for i in range(0, n, 500)])                       # [n, H, k]
    p = np.transpose(clean, (1, 0, 2))                                          # [H, n, k]
    consistency = -np.log((p[:, :, None, :] * p[:, nb]).sum(-1) + 1e-8).mean((1, 2))
    mean = p.mean(1)
    loss = consistency - ENTROPY * (-(mean * np.log(mean + 1e-8)).sum(-1))
    best = int(np.argmin(loss))
    return p.argmax(-1), best, float(last)


def auto_k(setup, tag, cname):
    path = os.path.join(lab.HERE, f"heads_views_{setup}_{tag}.jsonl")
    if not os.path.exists(path):  # h1-h3: the s4000m networks are round 2s, bitwise
        path = os.path.join(lab.HERE, f"heads_views_{setup}_s4000.jsonl")
    rows = [json.loads(l) for l in open(path)]
    rows = [r for r in rows if r["coarse"] == cname]
    return max(rows, key=lambda r: (r["views_km"], -r["k"]))["k"]


def main(setup, tag, mode="true"):
    x, coarse, fine, names, _ = lab.load_setup(setup)
    path = os.path.join(lab.HERE, "cache", f"trunk_{setup}_{tag}.weights.h5")
    for ci, cname in enumerate(names):
        m = coarse == ci
        k = len(np.unique(fine[m]))
        if mode == "auto":
            if auto_k(setup, tag, cname) == k:
                continue
            k = auto_k(setup, tag, cname)
        t = time.time()
        labels, best, last = scan_class(path, x[m], k)
        row = {"setup": setup, "tag": tag, "coarse": cname, "k": k, "mode": mode,
               "ari_best": ari(fine[m], labels[best]),
               "ari_heads": [ari(fine[m], l) for l in labels],
               "sizes": np.bincount(labels[best], minlength=k).tolist(),
               "last_loss": last, "seconds": time.time() - t}
        np.save(os.path.join(lab.HERE, "cache", f"scan_{setup}_{tag}_{cname}_k{k}.npy"), labels[best])
        print(json.dumps(row), flush=True)
        with open(os.path.join(lab.HERE, "scan_ft.jsonl"), "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
