"""Features of a network trained elsewhere: `lg_tf.discover --features=backbone --backbone=F`.

F is a Keras 3 model file (`.keras`) that maps float32 RGB images in [0, 255] to one
feature vector per image. Put any preprocessing the network needs inside the model; a 4-D
output (a feature map) is average-pooled. An ImageNet model, e.g.:

    base = keras.applications.EfficientNetB0(include_top=False, pooling="avg")
    base.save("effnet_b0.keras")          # EfficientNet normalises [0, 255] inputs itself

(run discover with --image_size=224 for it: images are read at --image_size), or the
`features` layer of an lg_tf run trained on images you did label (docs/discover.md). No
label of the images being clustered is read. Images come through lg_tf's evaluation
pipeline (no augmentation, in order) at --image_size and are resized to the model's input
size when it fixes one.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np

from lg_tf.errors import ConfigError

SUFFIX = ".keras"
PROBE_SIZE = 32   # the dry run's image size for a model that takes any size


def check_path(path: str) -> str:
    """The absolute path of a `.keras` file, or a ConfigError saying what to give."""
    if not path:
        raise ConfigError("--features=backbone needs --backbone=FILE: a Keras model file "
                          f"({SUFFIX}) that maps [0, 255] RGB images to feature vectors")
    if not path.endswith(SUFFIX):
        raise ConfigError(f"--backbone={path} is not a {SUFFIX} file; save the network with "
                          f"model.save('name{SUFFIX}') (Keras 3)")
    if os.path.isdir(path):
        raise ConfigError(f"--backbone={path} is a folder; give the {SUFFIX} file that "
                          "model.save() writes")
    if not os.path.isfile(path):
        raise ConfigError(f"--backbone={path} does not exist; give the path of a {SUFFIX} file")
    return os.path.abspath(path)


def fingerprint(path: str) -> str:
    """sha256 of the file: the discovered labels depend on its contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str):
    """The model in `path`, checked by a dry run on two blank images: it takes one batch of
    RGB images and gives a vector (or a map) per image. Every failure is a ConfigError.
    Loaded once per process while the file is unchanged (the flags' check and the feature
    pass share it)."""
    stat = os.stat(path)
    return _load(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, size: int):
    from lg_tf import logs
    logs.import_tensorflow_quietly()
    import keras

    from lg_tf.models import batch_norm  # noqa: F401  registers lg_tf's layer: runs' networks load
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # any reason Keras cannot rebuild it; say which file and why
        raise ConfigError(f"--backbone={path} could not be loaded by Keras ({_why(e)}); save "
                          "it with Keras 3 and register any custom layers") from None
    try:
        shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else ()
    except Exception:   # a subclassed or unbuilt model has no symbolic inputs
        shape = ()
    if len(shape) != 4 or shape[-1] != 3:
        raise ConfigError(f"--backbone={path} must be a functional model taking one batch of "
                          "RGB images [batch, height, width, 3]; build it with keras.Input")
    try:
        out = model(np.zeros((2,) + _probe_size(model) + (3,), np.float32), training=False)
    except Exception as e:
        raise ConfigError(f"--backbone={path} failed on two blank images ({_why(e)}); give a "
                          "model that takes float [batch, height, width, 3] images") from None
    if not hasattr(out, "shape") or len(out.shape) not in (2, 4) or out.shape[0] != 2:
        raise ConfigError(f"--backbone={path} must give one feature vector [batch, dims] (or "
                          "a feature map [batch, h, w, dims]) per image; it gave "
                          f"{_shapes(out)}")
    return model


def _why(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def _shapes(out) -> str:
    if isinstance(out, (list, tuple, dict)):
        values = out.values() if isinstance(out, dict) else out
        return f"{len(out)} outputs {[tuple(getattr(v, 'shape', ())) for v in values]}"
    return str(tuple(getattr(out, "shape", ())))


def _probe_size(model) -> tuple[int, int]:
    h, w = model.inputs[0].shape[1:3]
    return (h or PROBE_SIZE, w or PROBE_SIZE)


def extract(model, split, spec, batch_size: int = 200) -> np.ndarray:
    """float32 [N, D] features of every image of `split`, in order."""
    import tensorflow as tf

    from lg_tf.data import pipeline
    h, w = model.inputs[0].shape[1:3]

    @tf.function(reduce_retracing=True)
    def forward(images):
        x = tf.cast(images, tf.float32)
        if h is not None or w is not None:    # the size the model fixes (either side)
            x = tf.image.resize(x, (h or tf.shape(x)[1], w or tf.shape(x)[2]), antialias=True)
        y = tf.cast(model(x, training=False), tf.float32)
        return tf.reduce_mean(y, [1, 2]) if len(y.shape) == 4 else y

    ds = pipeline.make_dataset(split, spec, training=False, batch_size=batch_size, seed=0)
    parts = [forward(images).numpy() for images, _ in ds]
    if not parts:
        return np.zeros((0, model.outputs[0].shape[-1] or 0), np.float32)
    return np.concatenate(parts)
