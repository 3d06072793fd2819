"""Image features: from a trained lg_tf model, or label-free from pixels.

`SOURCES` are what `lg_tf.discover --features` offers (`DESCRIPTIONS` says what each is).
`patches` and `simclr` are label-free and computed by `lg_tf.patch_features` and
`lg_tf.simclr` on the images at 32x32 (`images_32`), `backbone` by `lg_tf.backbone` (a
network the user trained elsewhere; no label of these images); `extract` computes the others (and
a model's `logits`) for every image of a split in one pass through the evaluation pipeline
(no augmentation, images in order). It is the one feature path: discovery's clustering,
the Embedding Projector and the t-SNE maps (lg_tf.analysis) all read features through it.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import numpy as np

from lg_tf.errors import ConfigError

SOURCES = ("simclr", "patches", "backbone", "penultimate", "block", "pixels")
# Need no coarse run, are computed by their own modules (not extract()) and can be judged
# by a second view (--agreement).
STANDALONE = ("simclr", "patches", "backbone")
# What pipelines.discovery compares by default: the features its coarse runs give, and pixels.
COARSE_RUN_SOURCES = ("penultimate", "block", "pixels")
DESCRIPTIONS = {
    "simclr": "label-free, the default: a PreAct ResNet-18 (width 16) trained by lg_tf "
              "with SimCLR for --ssl_steps=4000 updates on these images, its pooled features "
              "clustered by k-means and judged by the patch clusters (--agreement=views). "
              "The best measured on real CIFAR-10: ARI 0.49 on the development pairs, 0.21 "
              "on three other groupings (ship/truck 0.56, cat/deer 0.10); 10,000 images in "
              "~16 min on 2 cores (docs/results/discovery/cifar10.md)",
    "patches": "label-free, no network: single-layer k-means patch features (Coates et al. "
               "2011; 6x6 patches, ZCA, --patch_centroids=1600 centroids, triangle code, "
               "4 quadrants), clustered by SCAN heads. Finds colour and background more than "
               "object classes: ARI ~0.1 on held-out CIFAR-10 pairs",
    "backbone": "the features of a network trained elsewhere (--backbone=FILE.keras, e.g. an "
                "ImageNet model, or an lg_tf run trained on images you did label); k-means, "
                "judged by the patch clusters (--agreement=views), never 'supported' by them. On "
                "real CIFAR-10 a width-16 network lg_tf trained on the other classes gave ARI "
                "0.17 on two held-out groupings (SimCLR: 0.24); an ImageNet model was not "
                "measured (docs/results/discovery/cifar10.md, round 5)",
    "penultimate": "the pooled features of a coarse-trained lg_tf run that discover trains "
                   "first; k-means. At chance (ARI ~0) on real CIFAR-10: coarse training "
                   "discards what separates the fine classes",
    "block": "the pooled output of that model's last block one resolution earlier; "
             "k-means. Near chance on real CIFAR-10",
    "pixels": "the images at 32x32, L2 + PCA + k-means; a label-free baseline, near chance "
              "on real CIFAR-10",
}
LOGITS = "logits"  # not a feature source for users: the model's first output, for extract()
PIXEL_SIZE = 32
MIN_TSNE_SAMPLES = 10


def needs_model(source: str) -> bool:
    return source not in ("pixels",) + STANDALONE


def images_32(split, spec, batch_size: int = 200) -> np.ndarray:
    """Every image of `split` as uint8 [N, 32, 32, 3], in order (antialiased resize when
    the images are of another size)."""
    import tensorflow as tf

    from lg_tf.data import pipeline
    ds = pipeline.make_dataset(split, spec, training=False, batch_size=batch_size, seed=0)
    parts = []
    for images, _ in ds:
        if images.shape[1:3] != (PIXEL_SIZE, PIXEL_SIZE):
            images = tf.image.resize(tf.cast(images, tf.float32), (PIXEL_SIZE, PIXEL_SIZE),
                                     antialias=True)
        parts.append(np.clip(np.round(np.asarray(images, np.float32)), 0, 255).astype(np.uint8))
    if not parts:
        return np.zeros((0, PIXEL_SIZE, PIXEL_SIZE, 3), np.uint8)
    return np.concatenate(parts)


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"--features={source} is unknown; choose one of: "
                          f"{', '.join(SOURCES)}")
    return source


def check_tsne_samples(max_samples: int) -> int:
    """Refuses a t-SNE sample too small to draw; checked before anything is trained or read."""
    if max_samples < MIN_TSNE_SAMPLES:
        raise ConfigError(f"--max_samples={max_samples} is too few for t-SNE; use at least "
                          f"{MIN_TSNE_SAMPLES}")
    return max_samples


def extract(model, split, spec, sources, batch_size: int = 200) -> dict[str, np.ndarray]:
    """{source: float32 [N, D]} for every image of `split`, in order, in one pass.

    `sources` are SOURCES and/or LOGITS (the model's first output, [N, K]).
    """
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
        elif source == LOGITS:
            outputs[source] = model.outputs[0]
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
