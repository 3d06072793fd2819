"""Longer SimCLR (lg_tf.simclr's network, views and loss) with checkpoints evaluated as it
trains: per coarse class at the true k, ARI of (a) L2+PCA32+k-means, (b) SCAN heads on
PCA-whitened features (+ mirror). Settings fixed before any result:
epochs E (lr x0.1 after 2/3 of them, as lg_tf.simclr), evaluation every EVAL epochs.

usage: python ssl_exp.py SETUP STEPS EVAL_EVERY_EPOCHS(0 = end only) [width]
(epochs = round(STEPS / steps per epoch): the same number of updates for every setup size)
"""
import json, os, sys, time
import numpy as np

import lab
from lg_tf import simclr, cluster_heads, clustering


def evaluate(trunk, x, coarse, fine, names, setup, epoch, width, elapsed, out):
    from sklearn.metrics import adjusted_rand_score as ari
    feats = simclr.extract(trunk, x)
    rows = []
    for ci, cname in enumerate(names):
        m = coarse == ci
        f, fm, truth = feats["features"][m], feats["mirror"][m], fine[m]
        k = len(np.unique(truth))
        _, pts = clustering.embed(f, 0)
        km = clustering.kmeans(pts, k, 0).labels_
        emb = cluster_heads.Embedding.fit(f, fm, 0)
        heads = cluster_heads.train_heads(emb(f), k, 0, mirror=emb(fm))
        avg = clustering.kmeans(clustering.embed((f + fm) / 2, 0)[1], k, 0).labels_
        rows.append({"setup": setup, "coarse": cname, "k": k, "epoch": epoch, "width": width,
                     "ari_kmeans": ari(truth, km), "ari_kmeans_mirroravg": ari(truth, avg),
                     "ari_scan": ari(truth, heads.labels[heads.best]),
                     "heads_agreement": heads.agreement(), "train_s": elapsed})
    with open(out, "a") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    print(f"[{setup} e{epoch}] " + "  ".join(
        f"{r['coarse']}: km {r['ari_kmeans']:.3f} avg {r['ari_kmeans_mirroravg']:.3f} "
        f"scan {r['ari_scan']:.3f} (heads {r['heads_agreement']:.2f})" for r in rows)
        + f"  train {elapsed:.0f}s", flush=True)
    return feats


def main(setup, total_steps, every, width=16):
    import keras
    import tensorflow as tf
    x, coarse, fine, names, _ = lab.load_setup(setup)
    keras.utils.set_random_seed(0)
    trunk, projection = simclr._models(width)
    variables = trunk.trainable_variables + projection.trainable_variables
    steps = len(x) // simclr.BATCH
    epochs = max(1, round(total_steps / steps))
    every = every or epochs
    print(f"{setup}: {len(x)} images, {epochs} epochs x {steps} steps", flush=True)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps * round(epochs * 2 / 3)], [simclr.LEARNING_RATE, simclr.LEARNING_RATE * 0.1])
    opt = keras.optimizers.SGD(schedule, momentum=simclr.MOMENTUM)
    opt.build(variables)

    @tf.function(reduce_retracing=True)
    def step(v1, v2):
        with tf.GradientTape() as tape:
            h = trunk(tf.concat([v1, v2], 0), training=True)
            z = projection(h, training=True)
            loss = simclr.nt_xent(z[:tf.shape(v1)[0]], z[tf.shape(v1)[0]:])
        grads = tape.gradient(loss, variables)
        grads = [g + simclr.WEIGHT_DECAY * tf.cast(v, g.dtype) for g, v in zip(grads, variables)]
        opt.apply_gradients(zip(grads, variables))
        return loss

    data = simclr.two_views_dataset(x, simclr.BATCH, 0)
    out = os.path.join(lab.HERE, f"ssl_{setup}.jsonl")
    train_s = 0.0
    for epoch in range(1, epochs + 1):
        t = time.time()
        loss = [step(a, b) for a, b in data][-1]
        train_s += time.time() - t
        print(f"epoch {epoch}/{epochs} loss {float(loss):.3f} {train_s:.0f}s", flush=True)
        if epoch % every == 0 or epoch == epochs:
            feats = evaluate(trunk, x, coarse, fine, names, setup, epoch, width, train_s, out)
    np.savez(os.path.join(lab.HERE, "cache", f"ssl_{setup}_s{total_steps}_w{width}.npz"),
             features=feats["features"], mirror=feats["mirror"], coarse=coarse, fine=fine)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *(int(a) for a in sys.argv[4:]))
