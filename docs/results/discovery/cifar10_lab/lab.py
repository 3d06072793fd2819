"""Shared helpers for the discovery lab (setups, data, model, augmentation, metrics).

Self-contained (no lg_tf import): a PreAct ResNet-18 as in lg_tf.models.preact_resnet, the
pad+crop+flip augmentation as in lg_tf.data.pipeline.
"""
import json, os, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# Fixed before any result was seen (2 coarse classes each). "dev" is the only one tuned on.
SETUPS = {
    "dev": {"vehicle": ["airplane", "automobile"], "animal": ["frog", "horse"]},
    "h1": {"vehicle": ["ship", "truck"], "animal": ["cat", "deer"]},
    "h2": {"vehicle": ["airplane", "automobile", "ship"], "animal": ["bird", "dog", "horse"]},
    "h3": {"group_a": ["airplane", "automobile", "ship", "truck", "bird"],
           "group_b": ["cat", "deer", "dog", "frog", "horse"]},
}


def load_setup(name, split="train", n=1000):
    """(x uint8 [N,32,32,3], coarse [N], fine [N] (hidden; 0..F-1 in setup order), names)."""
    d = np.load(os.path.join(HERE, "cache", f"cifar_{split}1000.npz"))
    x, y = d["x"], d["y"]
    xs, cs, fs, fine_names = [], [], [], []
    for ci, (coarse, fines) in enumerate(SETUPS[name].items()):
        for f in fines:
            rows = np.flatnonzero(y == CLASSES.index(f))[:n]
            xs.append(x[rows]); cs.append(np.full(len(rows), ci)); fs.append(np.full(len(rows), len(fine_names)))
            fine_names.append(f)
    return np.concatenate(xs), np.concatenate(cs), np.concatenate(fs), list(SETUPS[name]), fine_names


# ----------------------------------------------------------------------------- model
def preact_resnet18(num_outputs, width=16, name="net"):
    """PreAct ResNet-18 trunk + linear head. Returns a model with outputs
    {"logits", "features" (pooled 8w), "stage3" (pooled 4w), "stage2" (pooled 2w)}."""
    import keras
    from keras import layers
    def bn_relu(x, n):
        return layers.ReLU(name=n + "_relu")(layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=n + "_bn")(x))
    def conv(x, f, k, s, n):
        return layers.Conv2D(f, k, strides=s, padding="same", use_bias=False, kernel_initializer="he_normal", name=n)(x)
    inp = keras.Input((32, 32, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = conv(x, width, 3, 1, "stem")
    taps, cin = {}, width
    for st, (m, s0) in enumerate(zip((1, 2, 4, 8), (1, 2, 2, 2)), 1):
        for b, s in enumerate((s0, 1), 1):
            n = f"s{st}b{b}"
            a = bn_relu(x, n + "_pre")
            sc = conv(a, width * m, 1, s, n + "_sc") if (s != 1 or cin != width * m) else x
            h = conv(a, width * m, 3, s, n + "_c1")
            h = conv(bn_relu(h, n + "_mid"), width * m, 3, 1, n + "_c2")
            x = layers.Add(name=n + "_add")([h, sc]); cin = width * m
        taps[f"stage{st}"] = x
    feats = layers.GlobalAveragePooling2D(name="features")(x)  # as lg_tf: no final BN-ReLU
    logits = layers.Dense(num_outputs, dtype="float32", name="logits")(feats)
    outs = {"logits": logits, "features": layers.Activation("linear", dtype="float32")(feats),
            "stage3": layers.Activation("linear", dtype="float32")(layers.GlobalAveragePooling2D()(taps["stage3"])),
            "stage2": layers.Activation("linear", dtype="float32")(layers.GlobalAveragePooling2D()(taps["stage2"]))}
    return keras.Model(inp, outs, name=name)


def pad_crop_flip(images, seed, pad=4):
    """Zero-pad by `pad`, random crop, random horizontal flip (float images, one batch)."""
    import tensorflow as tf
    b, w = tf.shape(images)[0], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shift = tf.cast(tf.random.stateless_uniform([b, 2], seeds[0], -pad, pad + 1, dtype=tf.int32), tf.float32)
    flip = tf.random.stateless_uniform([b], seeds[1]) < 0.5
    zeros, ones = tf.zeros([b]), tf.ones([b])
    sx = tf.where(flip, -ones, ones)
    x0 = tf.where(flip, float(w - 1) * ones, zeros)
    t = tf.stack([sx, zeros, x0 + shift[:, 0], zeros, ones, shift[:, 1], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=t, output_shape=tf.shape(images)[1:3],
                                                 fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")


# ----------------------------------------------------------------------------- metrics
def agreement(pred, true):
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    return float(adjusted_rand_score(true, pred)), float(normalized_mutual_info_score(true, pred))


def log_result(row, path=os.path.join(HERE, "results", "results.jsonl")):
    row = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), **row}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


class Timer:
    def __enter__(self):
        self.t0, self.c0 = time.time(), time.process_time(); return self
    def __exit__(self, *a):
        self.wall, self.cpu = time.time() - self.t0, time.process_time() - self.c0


def simclr_augment(images, seed, min_scale=0.2, jitter=0.4, gray_p=0.2, jitter_p=0.8):
    """SimCLR-style view for 32x32 float images in [0,255], one batch, vectorised:
    random resized crop (area min_scale..1, aspect 3/4..4/3) + flip, colour jitter
    (brightness, contrast, saturation) with prob jitter_p, grayscale with prob gray_p."""
    import tensorflow as tf
    b = tf.shape(images)[0]
    s = tf.random.experimental.stateless_split(seed, 8)
    area = tf.random.stateless_uniform([b], s[0], min_scale, 1.0)
    logr = tf.random.stateless_uniform([b], s[1], np.log(3 / 4), np.log(4 / 3))
    ratio = tf.exp(logr)
    h = tf.minimum(tf.sqrt(area / ratio), 1.0)
    w = tf.minimum(tf.sqrt(area * ratio), 1.0)
    y0 = tf.random.stateless_uniform([b], s[2]) * (1 - h)
    x0 = tf.random.stateless_uniform([b], s[3]) * (1 - w)
    flip = tf.random.stateless_uniform([b], s[4]) < 0.5
    boxes = tf.stack([y0, tf.where(flip, x0 + w, x0), y0 + h, tf.where(flip, x0, x0 + w)], 1)
    out = tf.image.crop_and_resize(images, boxes, tf.range(b), (32, 32))
    f = tf.random.stateless_uniform([b, 3], s[5], 1 - jitter, 1 + jitter)
    apply = tf.cast(tf.random.stateless_uniform([b, 1, 1, 1], s[6]) < jitter_p, tf.float32)
    gray = tf.reduce_mean(out, -1, keepdims=True)
    j = out * f[:, 0, None, None, None]                                     # brightness
    m = tf.reduce_mean(gray, [1, 2, 3], keepdims=True)
    j = (j - m) * f[:, 1, None, None, None] + m                             # contrast
    g = tf.reduce_mean(j, -1, keepdims=True)
    j = g + (j - g) * f[:, 2, None, None, None]                             # saturation
    out = apply * j + (1 - apply) * out
    to_gray = tf.cast(tf.random.stateless_uniform([b, 1, 1, 1], s[7]) < gray_p, tf.float32)
    out = to_gray * tf.reduce_mean(out, -1, keepdims=True) + (1 - to_gray) * out
    return tf.clip_by_value(out, 0.0, 255.0)
