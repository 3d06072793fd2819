"""Fine-label discovery from a coarse-only image folder: two label-free views + per-coarse
k-means, automatic k and a cross-view agreement signal. A prototype to port into lg_tf.

    python discover_mv.py --data_dir=DIR --out_dir=OUT [--k=auto|N] [--k_max=6]
                          [--ssl_epochs=15] [--score_prefix]

DIR/<coarse>/*.{jpg,png}; images are resized to 32x32. Writes OUT/labels.csv
(path,coarse,fine), OUT/clusters.json (k, sizes, per-k signals, timings; with --score_prefix
also ARI/NMI against the fine class encoded as '<fine>__' in each file name, lab use only).

Method (settings fixed from the literature, see README.md in this folder):
 1. view A, no training: single-layer k-means features (Coates, Lee & Ng 2011): 6x6 patches,
    per-patch normalisation, ZCA (eps 0.1), K=1600 centroids, triangle code, 4-quadrant sum
    pooling (6,400 dims), sqrt;
 2. view B, self-supervised: SimCLR (Chen et al. 2020) on ALL images, no labels: PreAct
    ResNet-18 width 16, two views (random resized crop 0.2-1, flip, colour jitter 0.4 p=0.8,
    grayscale p=0.2), NT-Xent tau=0.2, 2-layer projection head, SGD 0.1 momentum 0.9, L2 5e-4,
    batch 128, LR x0.1 after 2/3 of the epochs; penultimate (pooled) features;
    both views averaged over the image and its mirror image;
 3. per coarse class: standardise each view, L2-normalise rows, concatenate, PCA 32,
    L2-normalise, k-means (n_init 10);
 4. quality signal = ARI between the k-means clusterings of the two views alone (same recipe);
    --k=auto takes the k in 2..k_max with the highest agreement.
"""
import argparse, csv, json, os, time
import numpy as np

import lab
import mvcluster
from kmeansfeat import KMeansFeatures

TRUST = 0.35     # agreement at or above: clusters are supported by both views
DOUBT = 0.15     # below: do not trust (see README.md for the calibration)


def load_folder(root):
    from PIL import Image
    coarse_names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    paths, coarse, imgs = [], [], []
    for ci, c in enumerate(coarse_names):
        for f in sorted(os.listdir(os.path.join(root, c))):
            if f.lower().endswith((".jpg", ".jpeg", ".png")):
                p = os.path.join(root, c, f)
                im = Image.open(p).convert("RGB")
                if im.size != (32, 32):
                    im = im.resize((32, 32), Image.BILINEAR)
                imgs.append(np.asarray(im)); paths.append(os.path.join(c, f)); coarse.append(ci)
    return np.stack(imgs), np.array(coarse), coarse_names, paths


def simclr_features(x, epochs=15, batch=128, width=16, temp=0.2, lr=0.1, seed=0):
    """Trains a PreAct ResNet-18 with SimCLR on x (uint8 [N,32,32,3]); returns pooled
    penultimate features averaged over each image and its mirror image."""
    import tensorflow as tf
    import keras
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(seed)
    net = lab.preact_resnet18(1, width)          # its 1-unit head is unused
    trunk = keras.Model(net.input, net.get_layer("features").output)
    proj = keras.Sequential([keras.layers.Dense(128, activation="relu"), keras.layers.Dense(64, dtype="float32")])
    proj.build((None, 8 * width))
    variables = trunk.trainable_variables + proj.trainable_variables
    steps = int(np.ceil(len(x) / batch))
    sched = keras.optimizers.schedules.PiecewiseConstantDecay([steps * round(epochs * 2 / 3)], [lr, lr * 0.1])
    opt = keras.optimizers.SGD(sched, momentum=0.9)
    opt.build(variables)

    @tf.function(autograph=False)
    def step(images, s):
        xf = tf.cast(images, tf.float32)
        v = tf.concat([lab.simclr_augment(xf, s), lab.simclr_augment(xf, s + 7)], 0)
        n = tf.shape(images)[0]
        with tf.GradientTape() as tape:
            z = tf.math.l2_normalize(tf.cast(proj(trunk(v, training=True), training=True), tf.float32), 1)
            sim = tf.matmul(z, z, transpose_b=True) / temp - 1e9 * tf.eye(2 * n)
            target = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(target, sim))
        grads = tape.gradient(loss, variables)
        grads = [g + 5e-4 * tf.cast(w, g.dtype) for g, w in zip(grads, variables)]  # coupled L2
        opt.apply_gradients(zip(grads, variables))
        return loss

    rng = np.random.default_rng(seed)
    xt, it = tf.constant(x), 0
    for ep in range(epochs):
        order, losses = rng.permutation(len(x)), []
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            if len(idx) < batch // 2:
                continue
            losses.append(float(step(tf.gather(xt, idx), tf.constant([seed, it], tf.int32)))); it += 1
        print(f"  simclr epoch {ep + 1}/{epochs} loss {np.mean(losses):.3f}", flush=True)

    @tf.function(autograph=False)
    def fwd(images):
        return tf.cast(trunk(tf.cast(images, tf.float32), training=False), tf.float32)
    feats = lambda a: np.concatenate([fwd(tf.constant(a[i:i + 500])).numpy() for i in range(0, len(a), 500)])
    return (feats(x) + feats(x[:, :, ::-1])) / 2


def verdict(agreement):
    if agreement >= TRUST:
        return "supported by both views"
    if agreement >= DOUBT:
        return "weak: check the previews before training on these labels"
    return "not supported: the two views disagree; do not trust these clusters"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--out_dir", required=True)
    ap.add_argument("--k", default="auto")
    ap.add_argument("--k_max", type=int, default=6)
    ap.add_argument("--ssl_epochs", type=int, default=15)
    ap.add_argument("--kmf_k", type=int, default=1600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score_prefix", action="store_true", help="lab only: score against '<fine>__' file-name prefixes")
    ap.add_argument("--cache", action="store_true", help="reuse OUT/views.npz if present")
    a = ap.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    os.makedirs(a.out_dir, exist_ok=True)
    times = {}
    t = (time.time(), time.process_time())
    x, coarse, coarse_names, paths = load_folder(a.data_dir)
    times["load"] = (time.time() - t[0], time.process_time() - t[1])
    cache = os.path.join(a.out_dir, "views.npz")
    if a.cache and os.path.exists(cache):
        v = np.load(cache); view_a, view_b = v["a"], v["b"]
    else:
        t = (time.time(), time.process_time())
        km = KMeansFeatures(a.kmf_k, seed=a.seed).fit(x)
        view_a = np.sqrt((km.transform(x) + km.transform(x[:, :, ::-1])) / 2)
        times["view_a_kmeans_features"] = (time.time() - t[0], time.process_time() - t[1])
        t = (time.time(), time.process_time())
        view_b = simclr_features(x, epochs=a.ssl_epochs, seed=a.seed)
        times["view_b_simclr"] = (time.time() - t[0], time.process_time() - t[1])
        np.savez(cache, a=view_a, b=view_b)
    t = (time.time(), time.process_time())
    fine_names, fine_ids, per = [], np.empty(len(x), np.int64), []
    for ci, cname in enumerate(coarse_names):
        rows = np.flatnonzero(coarse == ci)
        labels, k, info = mvcluster.discover([view_a[rows], view_b[rows]], a.k, a.k_max, a.seed)
        order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
        rank = np.empty(k, np.int64); rank[order] = np.arange(k)
        fine_ids[rows] = len(fine_names) + rank[labels]
        fine_names += [f"{cname}_{j + 1}" for j in range(k)]
        agreement = info[k]["agreement"]
        entry = {"coarse": cname, "k": int(k), "sizes": np.bincount(rank[labels], minlength=k).tolist(),
                 "agreement": round(agreement, 3), "verdict": verdict(agreement),
                 "signals_by_k": {str(kk): {s: round(v, 3) for s, v in d.items()} for kk, d in info.items()}}
        if a.score_prefix:
            truth = np.array([os.path.basename(paths[i]).split("__")[0] for i in rows])
            ari, nmi = lab.agreement(labels, truth)
            entry.update({"ari": round(ari, 3), "nmi": round(nmi, 3)})
        per.append(entry)
        print(json.dumps(entry), flush=True)
    times["cluster"] = (time.time() - t[0], time.process_time() - t[1])
    with open(os.path.join(a.out_dir, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f); w.writerow(["path", "coarse", "fine"])
        for p, ci, fi in zip(paths, coarse, fine_ids):
            w.writerow([p, coarse_names[ci], fine_names[fi]])
    summary = {"settings": vars(a), "per_coarse": per,
               "seconds": {k: {"wall": round(v[0], 1), "cpu": round(v[1], 1)} for k, v in times.items()}}
    with open(os.path.join(a.out_dir, "clusters.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary["seconds"]))


if __name__ == "__main__":
    main()
