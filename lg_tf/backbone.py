"""Features of a network trained elsewhere: `lg_tf.discover --features=backbone --backbone=F`.

F is a Keras 3 model file (`.keras`) that maps float32 RGB images in [0, 255], at its own
input size, to one feature vector per image. Put any preprocessing the network needs
inside the model; a 4-D output (a feature map) is average-pooled. An ImageNet model, e.g.:

    base = keras.applications.EfficientNetB0(include_top=False, pooling="avg")
    base.save("effnet_b0.keras")          # EfficientNet normalises [0, 255] inputs itself

or the `features` layer of an lg_tf run trained on images you did label (see
docs/discover.md). No label of the images being clustered is read. Images are read through
lg_tf's evaluation pipeline (no augmentation, in order) and resized to the model's input
size when it has one; each image's mirror image is encoded too (for the clustering's
augmentation-consistency embedding).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from lg_tf.errors import ConfigError

SUFFIX = ".keras"


def check_path(path: str) -> str:
    """The absolute path of a readable `.keras` file, or a ConfigError saying what to give."""
    if not path:
        raise ConfigError("--features=backbone needs --backbone=FILE: a Keras model file "
                          f"({SUFFIX}) that maps [0, 255] RGB images to feature vectors")
    if not path.endswith(SUFFIX):
        raise ConfigError(f"--backbone={path} is not a {SUFFIX} file; save the network with "
                          f"model.save('name{SUFFIX}') (Keras 3)")
    if not os.path.isfile(path):
        raise ConfigError(f"--backbone={path} does not exist; give the path of a {SUFFIX} file")
    return os.path.abspath(path)


def fingerprint(path: str) -> str:
    """sha256 of the file: the discovered labels depend on its contents, not on its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str):
    """The model in `path`, checked to take RGB images and give a vector (or a map) each."""
    import keras

    from lg_tf.models import batch_norm  # noqa: F401  registers lg_tf's layer: runs' networks load
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # any reason Keras cannot rebuild it; say which file and why
        raise ConfigError(f"--backbone={path} could not be loaded by Keras "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); save it with "
                          f"Keras 3 and register any custom layers") from None
    shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else ()
    if len(shape) != 4 or shape[-1] != 3:
        raise ConfigError(f"--backbone={path} must take one batch of RGB images "
                          f"[batch, height, width, 3]; its inputs are "
                          f"{[tuple(i.shape) for i in model.inputs]}")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) not in (2, 4):
        raise ConfigError(f"--backbone={path} must give one feature vector [batch, dims] (or "
                          f"a feature map [batch, h, w, dims]) per image; its outputs are "
                          f"{[tuple(o.shape) for o in model.outputs]}")
    return model


def extract(model, split, spec, batch_size: int = 200) -> dict[str, np.ndarray]:
    """{"features", "mirror"}: float32 [N, D] for every image of `split` and its mirror."""
    import tensorflow as tf

    from lg_tf.data import pipeline
    size = tuple(model.inputs[0].shape[1:3])

    @tf.function(reduce_retracing=True)
    def forward(images):
        x = tf.cast(images, tf.float32)
        if x.shape[-1] == 1:
            x = tf.image.grayscale_to_rgb(x)
        if None not in size and tuple(x.shape[1:3]) != size:
            x = tf.image.resize(x, size, antialias=True)
        out = []
        for view in (x, tf.image.flip_left_right(x)):
            y = tf.cast(model(view, training=False), tf.float32)
            out.append(tf.reduce_mean(y, [1, 2]) if len(y.shape) == 4 else y)
        return out

    ds = pipeline.make_dataset(split, spec, training=False, batch_size=batch_size, seed=0)
    parts: tuple[list, list] = ([], [])
    for images, _ in ds:
        for part, value in zip(parts, forward(images)):
            part.append(value.numpy())
    if not parts[0]:
        dims = model.outputs[0].shape[-1]
        return {"features": np.zeros((0, dims), np.float32),
                "mirror": np.zeros((0, dims), np.float32)}
    return {"features": np.concatenate(parts[0]), "mirror": np.concatenate(parts[1])}
