"""Round 3, rejected on dev: SimCLR with every batch inside one coarse class (negatives only
from the coarse class that discovery has to split), 4,000 steps, everything else as round 2
(lg_tf.simclr's network, views, loss, schedule). Evaluated like ssl_exp.py (k-means and
SCAN at the true k) and cached as ssl_<setup>_s4000c_w16.npz (heads_dev.py, ssl_views.py).
With `mixed`, round 2's batches through the same loop (another seed of the default).
usage: python ssl_cond.py SETUP [seed] [mixed]
"""
import os, sys, time
import numpy as np
import lab, ssl_exp
from lg_tf import simclr


def grouped_views(images, groups, batch, seed):
    """tf.data: one epoch = every coarse class's shuffled batches once, interleaved at random;
    each batch holds images of one coarse class only."""
    import tensorflow as tf
    values = [g for g in np.unique(groups) if np.sum(groups == g) >= 2]
    parts, weights = [], []
    for i, g in enumerate(values):
        x = images[groups == g]
        size = min(batch, len(x))
        parts.append(tf.data.Dataset.from_tensor_slices(x).shuffle(
            len(x), seed=seed + i, reshuffle_each_iteration=True).batch(size, drop_remainder=True))
        weights.append(float(len(x) // size))
    ds = tf.data.Dataset.sample_from_datasets(parts, weights=weights, seed=seed,
                                              rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter()))

    def views(x, i):
        x = tf.cast(x, tf.float32)
        pair = tf.stack([tf.cast(seed, tf.int64), i])
        return simclr.augment(x, pair), simclr.augment(x, pair + [0, 1 << 40])
    return ds.map(views, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2), int(sum(weights))


def train(x, groups, seed, total_steps=4000):
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    trunk, projection = simclr._models(simclr.WIDTH)
    variables = trunk.trainable_variables + projection.trainable_variables
    if groups is None:
        data, per_epoch = simclr.two_views_dataset(x, simclr.BATCH, seed), len(x) // simclr.BATCH
    else:
        data, per_epoch = grouped_views(x, groups, simclr.BATCH, seed)
    epochs = max(1, round(total_steps / per_epoch))
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [per_epoch * round(epochs * 2 / 3)], [simclr.LEARNING_RATE, simclr.LEARNING_RATE * 0.1])
    opt = keras.optimizers.SGD(schedule, momentum=simclr.MOMENTUM)
    opt.build(variables)

    @tf.function(reduce_retracing=True)
    def step(v1, v2):
        with tf.GradientTape() as tape:
            z = projection(trunk(tf.concat([v1, v2], 0), training=True), training=True)
            loss = simclr.nt_xent(z[:tf.shape(v1)[0]], z[tf.shape(v1)[0]:])
        grads = tape.gradient(loss, variables)
        grads = [g + simclr.WEIGHT_DECAY * tf.cast(v, g.dtype) for g, v in zip(grads, variables)]
        opt.apply_gradients(zip(grads, variables))
        return loss
    print(f"{len(x)} images, {epochs} epochs x {per_epoch} steps", flush=True)
    for epoch in range(epochs):
        loss = [step(a, b) for a, b in data][-1]
        print(f"epoch {epoch + 1}/{epochs} loss {float(loss):.3f}", flush=True)
    return trunk


def tta(trunk, x, n=10, seed=0, batch=500):
    """Augmentation-averaged features: the mean pooled features of n SimCLR views (simclr.augment,
    the training distribution) of each image. Fixed before any result: n = 10."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(b, s):
        return tf.cast(trunk(simclr.augment(tf.cast(b, tf.float32), s), training=False), tf.float32)
    out = []
    for i in range(0, len(x), batch):
        b = tf.constant(x[i:i + batch])
        out.append(np.mean([forward(b, tf.constant([seed, 7919 * j + i], tf.int64)).numpy()
                            for j in range(n)], 0))
    return np.concatenate(out)


def main(setup, seed=0, batches="coarse"):
    x, coarse, fine, names, _ = lab.load_setup(setup)
    t = time.time()
    trunk = train(x, coarse if batches == "coarse" else None, seed)
    tag = ("c" if batches == "coarse" else "m") + ("" if seed == 0 else f"_seed{seed}")
    feats = ssl_exp.evaluate(trunk, x, coarse, fine, names, setup + tag, 0, 16, time.time() - t,
                             os.path.join(lab.HERE, f"ssl_cond_{setup}.jsonl"))
    np.savez(os.path.join(lab.HERE, "cache", f"ssl_{setup}_s4000{tag}_w16.npz"),
             features=feats["features"], mirror=feats["mirror"], coarse=coarse, fine=fine)
    trunk.save_weights(os.path.join(lab.HERE, "cache", f"trunk_{setup}_s4000{tag}.weights.h5"))
    np.savez(os.path.join(lab.HERE, "cache", f"ssl_{setup}_s4000{tag}tta_w16.npz"),
             features=tta(trunk, x, seed=1), mirror=tta(trunk, x[:, :, ::-1], seed=2),
             coarse=coarse, fine=fine)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) if a.isdigit() else a for a in sys.argv[2:]))
