"""Image features for clustering: from a trained lg_tf model, or label-free from pixels.

`SOURCES` are what `lg_tf.discover --features` offers; `extract` computes any of them for
every image of a split in one pass through the evaluation pipeline (no augmentation,
images in order).
"""

from __future__ import annotations

import numpy as np

from lg_tf.errors import ConfigError

SOURCES = ("penultimate", "block", "pixels")
SOURCE_HELP = {
    "penultimate": "the coarse-trained model's pooled `features` layer (the input of its "
                   "classifier)",
    "block": "the coarse-trained model's last residual block one resolution before the "
             "end, average-pooled (earlier, less coarse-specific features)",
    "pixels": "the raw pixels resized to 32x32 (label-free baseline: no model)",
}
PIXEL_SIZE = 32


def needs_model(source: str) -> bool:
    return source != "pixels"


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"--features={source} is unknown; choose one of: "
                          f"{', '.join(SOURCES)}")
    return source


def extract(model, split, spec, sources, batch_size: int = 200) -> dict[str, np.ndarray]:
    """{source: float32 [N, D]} for every image of `split`, in order, in one pass."""
    import tensorflow as tf

    from lg_tf.data import pipeline
    probe = _probe(model, [s for s in sources if needs_model(s)]) if model is not None else None

    @tf.function(reduce_retracing=True)
    def forward(images):
        out = {}
        if probe is not None:
            out.update({k: tf.cast(v, tf.float32)
                        for k, v in probe(images, training=False).items()})
        if "pixels" in sources:
            small = tf.image.resize(tf.cast(images, tf.float32) / 255.0,
                                    (PIXEL_SIZE, PIXEL_SIZE), antialias=True)
            out["pixels"] = tf.reshape(small, (tf.shape(small)[0], -1))
        return out

    ds = pipeline.make_dataset(split, spec, training=False, batch_size=batch_size, seed=0)
    parts: dict[str, list] = {s: [] for s in sources}
    for images, _ in ds:
        for key, value in forward(images).items():
            parts[key].append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def _probe(model, sources):
    import keras
    outputs = {}
    for source in sources:
        if source == "penultimate":
            outputs[source] = model.get_layer("features").output
        elif source == "block":
            outputs[source] = keras.layers.GlobalAveragePooling2D(name="block_features")(
                _earlier_block(model).output)
    return keras.Model(model.inputs, outputs) if outputs else None


def _earlier_block(model):
    """The last residual Add layer whose resolution is above the final stage's."""
    import keras
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    final = adds[-1].output.shape[1]
    earlier = [layer for layer in adds if layer.output.shape[1] > final]
    return earlier[-1] if earlier else adds[-1]
