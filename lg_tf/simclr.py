"""Self-supervised image features: SimCLR (Chen et al., ICML 2020) trained inside lg_tf.

`lg_tf.discover --features=simclr` (the default). No label is read. Settings fixed before any
measurement (docs/results/discovery/cifar10.md):

* network: lg_tf's PreAct ResNet-18, width 16 (`WIDTH`), bfloat16 mixed precision;
  features = its pooled penultimate layer (128 dims at width 16);
* two views per image, made in the tf.data pipeline in TensorFlow ops on whole batches
  (no Python per image): random resized crop (area 0.2-1, aspect 3/4-4/3) + horizontal
  flip, colour jitter (brightness, contrast, saturation +-0.4) with probability 0.8,
  grayscale with probability 0.2;
* a 2-layer projection head (128 ReLU -> 64), NT-Xent loss with temperature 0.2;
* SGD lr 0.1, momentum 0.9, coupled L2 5e-4, batch 128, lr x0.1 after 2/3 of the epochs;
* a budget of weight updates, not epochs (`--ssl_steps`, 4,000 = 1.02 M augmented views,
  about 10 minutes on 2 CPU cores whatever the number of images): epochs = steps / steps
  per epoch, so a small folder is seen more often. 15 epochs (the first setting) left the
  features near chance on most real CIFAR-10 pairs; 4,000 steps was fixed on the development
  pair before the held-out ones were run (docs/results/discovery/cifar10.md);
* progress: one line per epoch (and every 30 s within long epochs) with loss, images/s,
  elapsed time and the estimated time left.

`train_and_extract` returns {name: {"features", "mirror"}} for the arrays it is given:
the pooled features of each image and of its mirror image.
"""

from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger("lg_tf")

WIDTH = 16
STEPS = 4000
BATCH = 128
TEMPERATURE = 0.2
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
PROJECTION = (128, 64)
MIN_SCALE, JITTER, JITTER_P, GRAY_P = 0.2, 0.4, 0.8, 0.2
PROGRESS_SECONDS = 30.0


def augment(images, seed):
    """A SimCLR view of a batch of float [b, 32, 32, 3] images in [0, 255] (stateless)."""
    import tensorflow as tf
    b = tf.shape(images)[0]
    size = images.shape[1:3]
    s = tf.random.experimental.stateless_split(seed, 8)
    area = tf.random.stateless_uniform([b], s[0], MIN_SCALE, 1.0)
    ratio = tf.exp(tf.random.stateless_uniform([b], s[1], np.log(3 / 4), np.log(4 / 3)))
    h = tf.minimum(tf.sqrt(area / ratio), 1.0)
    w = tf.minimum(tf.sqrt(area * ratio), 1.0)
    y0 = tf.random.stateless_uniform([b], s[2]) * (1 - h)
    x0 = tf.random.stateless_uniform([b], s[3]) * (1 - w)
    flip = tf.random.stateless_uniform([b], s[4]) < 0.5
    boxes = tf.stack([y0, tf.where(flip, x0 + w, x0), y0 + h, tf.where(flip, x0, x0 + w)], 1)
    out = tf.image.crop_and_resize(images, boxes, tf.range(b), size)
    f = tf.random.stateless_uniform([b, 3], s[5], 1 - JITTER, 1 + JITTER)
    apply = tf.cast(tf.random.stateless_uniform([b, 1, 1, 1], s[6]) < JITTER_P, tf.float32)
    jittered = out * f[:, None, None, 0:1]                                    # brightness
    mean = tf.reduce_mean(jittered, [1, 2, 3], keepdims=True)
    jittered = (jittered - mean) * f[:, None, None, 1:2] + mean               # contrast
    g = tf.reduce_mean(jittered, -1, keepdims=True)
    jittered = (jittered - g) * f[:, None, None, 2:3] + g                     # saturation
    out = apply * jittered + (1 - apply) * out
    to_gray = tf.cast(tf.random.stateless_uniform([b, 1, 1, 1], s[7]) < GRAY_P, tf.float32)
    out = to_gray * tf.reduce_mean(out, -1, keepdims=True) + (1 - to_gray) * out
    return tf.clip_by_value(out, 0.0, 255.0)


def two_views_dataset(images: np.ndarray, batch: int, seed: int):
    """tf.data: shuffled batches of uint8 images -> (view 1, view 2), float32, per epoch."""
    import tensorflow as tf
    n = len(images)
    size = min(batch, n)
    ds = tf.data.Dataset.from_tensor_slices(images).shuffle(
        n, seed=seed, reshuffle_each_iteration=True).batch(size, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter()))

    def views(x, i):
        x = tf.cast(x, tf.float32)
        pair = tf.stack([tf.cast(seed, tf.int64), i])
        return augment(x, pair), augment(x, pair + [0, 1 << 40])
    return ds.map(views, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)


def _models(width: int):
    import keras

    from lg_tf.models import preact_resnet
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        net = preact_resnet.preact_resnet18(1, width=width,
                                            normalization=((0.5,) * 3, (0.5,) * 3),
                                            name="simclr_trunk")
        trunk = keras.Model(net.inputs, net.get_layer("features").output, name="simclr")
        projection = keras.Sequential([keras.layers.Dense(PROJECTION[0], activation="relu"),
                                       keras.layers.Dense(PROJECTION[1], dtype="float32")],
                                      name="projection")
        projection.build((None, trunk.output.shape[-1]))
    finally:
        keras.config.set_dtype_policy(previous)
    return trunk, projection


def nt_xent(z1, z2, temperature: float = TEMPERATURE):
    """SimCLR's loss for two batches of projections (row i of z1 and of z2: one image)."""
    import tensorflow as tf
    z = tf.math.l2_normalize(tf.cast(tf.concat([z1, z2], 0), tf.float32), 1)
    n = tf.shape(z1)[0]
    sim = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * tf.eye(2 * n)
    target = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(target, sim))


def epochs_for(n_images: int, steps: int = STEPS, batch: int = BATCH) -> int:
    """Whole epochs closest to `steps` weight updates (at least 1)."""
    return max(1, round(steps / max(1, n_images // min(batch, n_images))))


def train(images: np.ndarray, steps: int = STEPS, batch: int = BATCH, width: int = WIDTH,
          seed: int = 0, stop=None):
    """Trains the trunk with SimCLR on uint8 [n, 32, 32, 3] images for about `steps` updates
    (whole epochs); returns the trunk (a Keras model: uint8/float images -> pooled
    features), or None when `stop()` said so."""
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    trunk, projection = _models(width)
    variables = trunk.trainable_variables + projection.trainable_variables
    epochs = epochs_for(len(images), steps, batch)
    per_epoch = max(1, len(images) // min(batch, len(images)))
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [max(1, per_epoch * round(epochs * 2 / 3))], [LEARNING_RATE, LEARNING_RATE * 0.1])
    opt = keras.optimizers.SGD(schedule, momentum=MOMENTUM)
    opt.build(variables)

    @tf.function(reduce_retracing=True)
    def step(v1, v2):
        with tf.GradientTape() as tape:
            h = trunk(tf.concat([v1, v2], 0), training=True)
            z = projection(h, training=True)
            b = tf.shape(v1)[0]
            loss = nt_xent(z[:b], z[b:])
        grads = tape.gradient(loss, variables)
        grads = [g + WEIGHT_DECAY * tf.cast(v, g.dtype) for g, v in zip(grads, variables)]
        opt.apply_gradients(zip(grads, variables))
        return loss

    data = two_views_dataset(images, batch, seed)
    total = per_epoch * epochs
    start = last = time.time()
    done = 0
    log.info("simclr: %d images, %d epochs x %d steps of %d, PreAct ResNet-18 width %d",
             len(images), epochs, per_epoch, min(batch, len(images)), width)
    for epoch in range(epochs):
        losses = []
        for v1, v2 in data:
            losses.append(step(v1, v2))  # a tensor: read only when progress is printed
            done += 1
            now = time.time()
            if stop is not None and stop():
                return None
            if now - last >= PROGRESS_SECONDS and done < total:
                _progress(epoch, epochs, done, total, now - start, _mean(losses), batch)
                last = now
        _progress(epoch, epochs, done, total, time.time() - start, _mean(losses), batch,
                  end=True)
        last = time.time()
    return trunk


def _mean(losses) -> float:
    return float(np.mean([float(x) for x in losses]))


def _progress(epoch, epochs, done, total, elapsed, loss, batch, end=False) -> None:
    eta = elapsed / max(done, 1) * (total - done)
    what = f"epoch {epoch + 1}/{epochs}" + ("" if end else f" (step {done}/{total})")
    log.info("simclr %s  loss %.3f  %.0f img/s  elapsed %s  ETA %s", what, loss,
             done * batch / max(elapsed, 1e-9), _clock(elapsed), _clock(eta))


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def extract(trunk, images: np.ndarray, batch: int = 500) -> dict[str, np.ndarray]:
    """{"features", "mirror"}: pooled features of the images and of their mirror images."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(x):
        return tf.cast(trunk(tf.cast(x, tf.float32), training=False), tf.float32)

    def run(arr):
        if len(arr) == 0:
            return np.zeros((0, trunk.output.shape[-1]), np.float32)
        return np.concatenate([forward(tf.constant(arr[i:i + batch])).numpy()
                               for i in range(0, len(arr), batch)])
    return {"features": run(images), "mirror": run(images[:, :, ::-1])}
