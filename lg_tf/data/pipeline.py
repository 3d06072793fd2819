"""The input pipeline: one function, fixed stage order, emits (image, fine) or (image, coarse).

Stage order (uncertainty-baselines style): source -> shard -> decode (files) -> cache ->
shuffle -> batch -> augment (vectorised per batch) -> fine->coarse lookup -> prefetch.
Images stay uint8: the model's first layer normalises them on the accelerator, which
quarters the bytes sent to it and keeps the host's two cores for augmentation. Random ops
are stateless and seeded from `Dataset.random`, so a pipeline is
deterministic for its seed yet augments differently every epoch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from lg_tf.data.split import Split

AUTOTUNE = tf.data.AUTOTUNE
# Batches prepared ahead of the training step (the pipeline is far faster than the model).
PREFETCH_BATCHES = 2


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    size: int                       # square model input size
    augment: str                    # 'cifar' (pad-4 crop + flip) or 'imagenet' (RRC + flip)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# --------------------------------------------------------------------------- label surgery

def fraction_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Per fine class, a fixed-seed shuffle keeps the first int(n * fraction) examples.

    Each class has its own generator, so the kept images depend only on (seed, class) and
    coarse and fine runs always see the same images.
    """
    if fraction >= 1.0:
        return np.arange(len(labels))
    kept = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c)]).permutation(idx)
        kept.append(perm[: int(len(idx) * fraction)])
    return np.sort(np.concatenate(kept))


def noisy_fine_labels(labels: np.ndarray, parent: np.ndarray, p: float,
                      seed: int) -> tuple[np.ndarray, int, int]:
    """With probability p an example takes the fine label of a random example of its coarse class.

    Coarse labels never change. Returns (new labels, #resampled, #actually changed).
    """
    if p <= 0:
        return labels.copy(), 0, 0
    rng = np.random.default_rng([seed, 1_000_003])
    coarse = parent[labels]
    out = labels.copy()
    hit = rng.random(len(labels)) < p
    for c in np.unique(coarse):
        members = np.flatnonzero(coarse == c)
        targets = members[hit[members]]
        out[targets] = labels[rng.choice(members, size=len(targets))]
    return out, int(hit.sum()), int(np.sum(out != labels))


def partial_fine_labels(labels: np.ndarray, parent: np.ndarray, q: float,
                        seed: int) -> np.ndarray:
    """Keeps the fine label of a fixed-seed share q of each fine class (int(n * q) images);
    the others become coarse-only labels num_fine + parent[label] (Hierarchy.extended_parent).

    Each class has its own generator, so the images keeping their fine label depend only on
    (seed, class): a larger q keeps a superset of a smaller q's images.
    """
    if q >= 1:
        return labels.copy()
    num_fine = len(parent)
    out = labels.copy()
    for c in np.unique(labels[labels < num_fine]):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c), 2_000_003]).permutation(idx)
        out[perm[int(len(idx) * q):]] = num_fine + parent[c]
    return out


# --------------------------------------------------------------------------- augmentation

def pad_crop_flip(images: tf.Tensor, seed: tf.Tensor, pad: int = 4) -> tf.Tensor:
    """Zero-pad by `pad`, random crop back to size, random horizontal flip: a whole batch.

    Done as one nearest-neighbour projective transform per image (an integer shift plus
    an optional mirror, zero fill outside), which is exactly pad+crop+flip and ~1.5x
    faster here than gathering the crops.
    """
    b, w = tf.shape(images)[0], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shift = tf.random.stateless_uniform([b, 2], seeds[0], -pad, pad + 1, dtype=tf.int32)
    shift = tf.cast(shift, tf.float32)
    flip = tf.random.stateless_uniform([b], seeds[1]) < 0.5
    zeros, ones = tf.zeros([b]), tf.ones([b])
    # Output pixel (x, y) reads input (sx * x + x0 + dx, y + dy).
    sx = tf.where(flip, -ones, ones)
    x0 = tf.where(flip, float(w - 1) * ones, zeros)
    transforms = tf.stack([sx, zeros, x0 + shift[:, 0], zeros, ones, shift[:, 1], zeros, zeros],
                          axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")


def random_resized_crop(image: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    """Inception-style crop (area 8-100%, aspect 3/4-4/3) resized to size, plus flip."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([1, 0, 4]), seed=seeds[0], min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, extent)
    crop = tf.image.resize(crop, [size, size], antialias=False)
    crop = tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8)
    return tf.image.stateless_random_flip_left_right(crop, seeds[1])


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resize the shorter side to size*8/7 and take the central size x size (ImageNet eval)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size * 8 / 7) / tf.reduce_min(shape)
    resized = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    crop = tf.image.resize_with_crop_or_pad(resized, size, size)
    return tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8)


def decode(path: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_exact(image: tf.Tensor, size: int) -> tf.Tensor:
    image = tf.image.resize(image, [size, size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


# --------------------------------------------------------------------------- the pipeline

def make_dataset(split: Split, spec: ImageSpec, *, training: bool, batch_size: int,
                 seed: int, parent: np.ndarray | None = None,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Batched (uint8 image, int32 label) pairs; labels are coarse when `parent` is given.

    `batch_size` is the global batch; with an `input_context` each input pipeline gets its
    shard (every num_input_pipelines-th example, before anything is read or augmented) and
    the per-replica batch; an evaluation pipeline then yields the same number of batches on
    every worker, none empty (`eval_batch_sizes`).
    """
    shard, sizes = (1, 0), None
    if input_context is not None:
        shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
        if not training:
            sizes = eval_batch_sizes(len(split), batch_size, input_context)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        seed = seed + 7919 * input_context.input_pipeline_id
    if split.is_files or split.images.shape[1:3] != (spec.size, spec.size):
        ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).shard(*shard)
        if split.is_files and spec.augment == "imagenet":
            ds = _decode_full_size(ds, spec, training, seed)
        else:
            ds = _decode_small(ds, split, spec)
            if training:
                ds = ds.shuffle(len(split) // shard[0] + 1, seed=seed,
                                reshuffle_each_iteration=True)
        ds = _rebatch(ds.batch(batch_size, drop_remainder=training,
                               num_parallel_calls=AUTOTUNE, deterministic=True),
                      sizes, batch_size)
    else:
        ds = _batched_from_memory(split, training, batch_size, seed, shard, sizes)
    crop = training and spec.augment == "cifar"
    flip_only = training and spec.augment == "imagenet" and not split.is_files
    table = None if parent is None else tf.constant(parent, tf.int32)

    def finish(seed_pair, batch):
        images, labels = batch
        if crop:
            images = pad_crop_flip(images, seed_pair)
        elif flip_only:
            images = tf.image.stateless_random_flip_left_right(images, seed_pair)
        labels = tf.cast(labels, tf.int32)
        if table is not None:
            labels = tf.gather(table, labels)
        return images, labels

    ds = _zip_seeds(ds, seed + 2).map(finish, num_parallel_calls=AUTOTUNE, deterministic=True)
    if input_context is not None and not training:
        # Every pipeline says it has the same number of batches, so a consumer (Keras runs
        # exactly `cardinality` steps when it is known) steps in lockstep on every worker.
        # Without a layout the shards' lengths differ: unknown, so it stops on tf.distribute's
        # end of data, which comes when every shard is done (short ones get empty batches).
        ds = (ds.filter(lambda images, labels: True) if sizes is None else
              ds.apply(tf.data.experimental.assert_cardinality(len(sizes))))
    options = tf.data.Options()
    options.deterministic = True
    # No autotuning: in TF 2.21 deleting an autotuned iterator waits for the tuning
    # thread's sleep, up to a minute, so `fit` returned 20-60 s after its last epoch
    # (59.7 s -> 0.3 s measured; BUILD.md, "fit's return after the last epoch"). Parallel
    # maps then use every core.
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA)
    return ds.with_options(options).prefetch(PREFETCH_BATCHES)


def eval_batch_sizes(n: int, batch_size: int,
                     context: tf.distribute.InputContext) -> np.ndarray | None:
    """The batch sizes of one evaluation pipeline: one batch of at least one image per local
    replica for each of ceil(n / batch_size) steps (the one-pipeline count), full batches
    first. None when a shard has fewer images than that (a test split about as small as the
    number of replicas).

    Under tf.distribute the pipelines run in lockstep. Plain batching can leave a shard a
    step short (65 images on 2 workers, global batch 32: shards of 33 and 32, batches
    16+16+1 and 16+16); tf.distribute would then hand its replicas empty batches, and
    TensorFlow's oneDNN CPU convolution returns an empty batch with the wrong number of
    channels (the run fails). Such a shard ends with smaller batches instead (16+15+1).
    Every image is still read once; the metrics are sums over images, so the numbers do
    not change.
    """
    pipelines, index = context.num_input_pipelines, context.input_pipeline_id
    per_replica = context.get_per_replica_batch_size(batch_size)
    slots = -(-n // batch_size) * (context.num_replicas_in_sync // pipelines)
    if n // pipelines < slots:  # the smallest shard: every pipeline decides alike
        return None
    count = len(range(index, n, pipelines))  # this pipeline's shard
    j = np.arange(slots)  # full batches while every later slot can still get one image
    return np.clip(count - j * per_replica - (slots - 1 - j), 1, per_replica).astype(np.int64)


def _rebatch(ds: tf.data.Dataset, sizes: np.ndarray | None, batch_size: int) -> tf.data.Dataset:
    """Re-cuts plain batches of `batch_size` into `sizes`, where they differ."""
    if sizes is None or -(-int(sizes.sum()) // batch_size) == len(sizes):
        return ds
    return ds.rebatch(tf.constant(sizes, tf.int64))


def _zip_seeds(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Pairs every element with a fresh [2] stateless seed; new values every epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(seeds, ds)


def _decode_full_size(ds, spec: ImageSpec, training: bool, seed: int):
    """Large images: shuffle the paths (cheap), then decode and crop per example."""
    if not training:
        return ds.map(lambda p, y: (center_crop(decode(p), spec.size), y),
                      num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.shuffle(ds.cardinality(), seed=seed, reshuffle_each_iteration=True)
    return _zip_seeds(ds, seed + 1).map(
        lambda s, xy: (random_resized_crop(decode(xy[0]), s, spec.size), xy[1]),
        num_parallel_calls=AUTOTUNE, deterministic=True)


def _batched_from_memory(split: Split, training: bool, batch_size: int, seed: int,
                         shard: tuple[int, int],
                         sizes: np.ndarray | None = None) -> tf.data.Dataset:
    """Shuffles and batches example *indices*, then gathers whole batches of pixels.

    Moving one int64 per example through shuffle/batch instead of a 3 KB image is what
    lets this stage run at tens of thousands of images/s on two cores.
    """
    images, labels = tf.constant(split.images), tf.constant(split.labels)
    ds = tf.data.Dataset.range(len(split)).shard(*shard)
    if training:
        ds = ds.shuffle(len(split) // shard[0] + 1, seed=seed, reshuffle_each_iteration=True)
    ds = _rebatch(ds.batch(batch_size, drop_remainder=training), sizes, batch_size)
    return ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
                  num_parallel_calls=AUTOTUNE, deterministic=True)


def _decode_small(ds, split: Split, spec: ImageSpec):
    """Small images are decoded/resized once and cached, so augmentation runs per batch."""
    if split.is_files:
        ds = ds.map(lambda p, y: (decode(p), y), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.map(lambda x, y: (resize_exact(x, spec.size), y), num_parallel_calls=AUTOTUNE,
                  deterministic=True).cache()
