"""Data sources: each returns a `Split` (images + dense fine labels) for one hierarchy.

Small datasets (CIFAR, the embedded one) come back as uint8 pixel arrays held in memory;
image folders (and ImageNet subsets) come back as file paths decoded in the tf.data graph.
Labels are always the hierarchy's dense fine ids, so everything downstream (subsets,
noise, the fine->coarse table) works on one label space.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket

import numpy as np

from lg_tf import hierarchy as hier_lib
from lg_tf.hierarchy import Hierarchy

log = logging.getLogger(__name__)


class DataError(RuntimeError):
    """Data that cannot be loaded; the message says what to do."""


@dataclasses.dataclass
class Split:
    images: np.ndarray  # uint8 [N, H, W, 3] pixels, or str [N] file paths
    labels: np.ndarray  # int32 [N] dense fine labels

    @property
    def is_files(self) -> bool:
        return self.images.ndim == 1

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray, labels: np.ndarray | None = None) -> "Split":
        return Split(self.images[index], self.labels[index] if labels is None else labels)


# Hosts TFDS downloads CIFAR from: checked first so an offline machine fails in a second
# instead of after minutes of retries.
_DOWNLOAD_HOSTS = {"cifar10": "www.cs.toronto.edu", "cifar100": "www.cs.toronto.edu"}
TFDS_SPLITS = {"train": "train", "test": "test"}


def _prepare_builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds
    builder = tfds.builder(name, data_dir=data_dir)
    where = data_dir or "the TFDS default (~/tensorflow_datasets)"
    if builder.is_prepared():
        return builder
    host = _DOWNLOAD_HOSTS.get(name)
    manual = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                          "downloads", "manual")
    has_manual = os.path.isdir(manual) and bool(os.listdir(manual))
    if host and not has_manual and not _resolves(host):
        raise DataError(
            f"TFDS dataset '{name}' is not prepared in --data_dir={where} and this machine "
            f"cannot reach {host} to download it; run `tfds build {name} --data_dir=DIR` on a "
            f"machine with network and copy DIR here, or put the archive in {manual}.")
    try:
        builder.download_and_prepare()
    except Exception as e:  # TFDS raises many types (ConnectionError, AssertionError, ...)
        raise DataError(
            f"could not prepare TFDS dataset '{name}' in --data_dir={where} "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); prepare it elsewhere with "
            f"`tfds build {name} --data_dir=DIR` and point --data_dir at DIR.") from None
    return builder


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def _tfds_arrays(name: str, split: str, data_dir: str | None) -> dict:
    import tensorflow_datasets as tfds
    builder = _prepare_builder(name, data_dir)
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))


def _relabel(images: np.ndarray, source_labels: np.ndarray, table: np.ndarray) -> Split:
    fine = table[source_labels]
    keep = fine >= 0
    return Split(images[keep], fine[keep].astype(np.int32))


def load_cifar(name: str, h: Hierarchy, split: str, data_dir: str | None) -> Split:
    names = hier_lib.CIFAR10_CLASSES if name == "cifar10" else hier_lib.CIFAR100_FINE
    arrays = _tfds_arrays(name, TFDS_SPLITS[split], data_dir)
    labels = arrays["label"].astype(np.int64)
    if name == "cifar100" and "coarse_label" in arrays:
        check_cifar100_coarse(labels, arrays["coarse_label"])
    return _relabel(arrays["image"], labels, h.source_to_fine(names))


def check_cifar100_coarse(fine: np.ndarray, coarse: np.ndarray) -> None:
    """TFDS ships CIFAR-100's coarse labels; they must agree with our superclass table."""
    table = hier_lib.named("cifar100").parent_array()
    bad = int(np.sum(table[fine] != coarse))
    if bad:
        raise DataError(f"TFDS cifar100 `coarse_label` disagrees with lg_tf's superclass table "
                        f"for {bad} of {len(fine)} examples; the prepared data or the table is "
                        "wrong: re-prepare the dataset with `tfds build cifar100`.")


def load_embedded(h: Hierarchy, split: str, data_dir: str | None) -> Split:
    from lg_tf.data import embedded
    arrays = _tfds_arrays(embedded.LgShapes.name, split, data_dir)
    return _relabel(arrays["image"], arrays["label"].astype(np.int64),
                    h.source_to_fine(embedded.FINE_NAMES))


# --------------------------------------------------------------------------- image folders

def folder_split_dirs(root: str) -> dict[str, str] | None:
    """root/train + root/test (or val) when the tree is split; None for a single tree."""
    train = os.path.join(root, "train")
    for test_name in ("test", "val", "validation"):
        test = os.path.join(root, test_name)
        if os.path.isdir(train) and os.path.isdir(test):
            return {"train": train, "test": test}
    return None


def folder_tree_root(root: str) -> str:
    """The folder whose subfolders are the classes (root/train for split trees)."""
    dirs = folder_split_dirs(root)
    return dirs["train"] if dirs else root


def list_class_files(root: str, h: Hierarchy) -> Split:
    """Image files of each fine class, from root/<coarse>/<fine>/ or root/<fine>/."""
    if not os.path.isdir(root):
        raise DataError(f"image folder '{root}' does not exist; pass --data_dir pointing at "
                        "root/<coarse>/<fine>/<images> (or root/train and root/test)")
    paths, labels, skipped = [], [], 0
    for fine, name in enumerate(h.fine_names):
        d = _class_dir(root, h.coarse_names[h.parent[fine]], name)
        files = sorted(os.listdir(d))
        images = [f for f in files if f.lower().endswith(hier_lib.IMAGE_EXTENSIONS)]
        skipped += len(files) - len(images)
        if not images:
            raise DataError(f"class folder '{d}' holds no images (.jpg, .jpeg, .png, .bmp, "
                            ".gif); add images or remove the folder")
        paths += [os.path.join(d, f) for f in images]
        labels += [fine] * len(images)
    if skipped:
        log.warning("ignored %d file(s) without an image extension under %s", skipped, root)
    return Split(np.asarray(paths), np.asarray(labels, dtype=np.int32))


def _class_dir(root: str, coarse: str, fine: str) -> str:
    for d in (os.path.join(root, coarse, fine), os.path.join(root, fine)):
        if os.path.isdir(d):
            return d
    raise DataError(f"no folder for fine class '{fine}' under '{root}' (looked for "
                    f"{coarse}/{fine}/ and {fine}/)")


def holdout_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Per-class fixed-seed holdout for trees without train/test folders."""
    test = np.zeros(len(split), dtype=bool)
    for c in np.unique(split.labels):
        idx = np.flatnonzero(split.labels == c)
        rng = np.random.default_rng([seed, int(c), 7])
        n = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        test[rng.permutation(idx)[:n]] = True
    return split.take(~test), split.take(test)


def load_folder(root: str, h: Hierarchy, holdout: float, seed: int) -> dict[str, Split]:
    dirs = folder_split_dirs(root)
    if dirs:
        return {s: list_class_files(d, h) for s, d in dirs.items()}
    train, test = holdout_split(list_class_files(root, h), holdout, seed)
    log.info("no train/ and test/ folders under %s: held out %d of %d images per class "
             "(fraction %.2f, seed %d) as the test split", root, len(test),
             len(train) + len(test), holdout, seed)
    return {"train": train, "test": test}


# --------------------------------------------------------------------------- ImageNet

def load_imagenet_tfds(h: Hierarchy, split: str, data_dir: str | None) -> Split:
    """Extracts a hierarchy's wnids from TFDS imagenet2012 into a JPEG folder cache once.

    Reading 1.28M records for a few thousand images is slow, so it is done a single time
    and the result is an ordinary folder tree (<data_dir>/lg_tf_cache/...).
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds
    tfds_split = {"train": "train", "test": "validation"}[split]
    base = data_dir or os.path.expanduser("~/tensorflow_datasets")
    cache = os.path.join(base, "lg_tf_cache", f"imagenet2012_{h.name}", split)
    if not os.path.exists(os.path.join(cache, "_COMPLETE")):
        builder = _prepare_builder("imagenet2012", data_dir)
        table = h.source_to_fine(builder.info.features["label"].names)
        ds = builder.as_dataset(split=tfds_split,
                                decoders={"image": tfds.decode.SkipDecoding()})
        tf_table = tf.constant(table)
        ds = ds.filter(lambda ex: tf.gather(tf_table, ex["label"]) >= 0)
        counts = np.zeros(h.num_fine, dtype=int)
        for ex in tfds.as_numpy(ds.prefetch(64)):
            fine = int(table[ex["label"]])
            d = os.path.join(cache, h.fine_names[fine])
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{counts[fine]:06d}.JPEG"), "wb") as f:
                f.write(ex["image"])
            counts[fine] += 1
        open(os.path.join(cache, "_COMPLETE"), "w").close()
        log.info("cached %d imagenet2012/%s images of %s in %s", counts.sum(), tfds_split,
                 h.name, cache)
    return list_class_files(cache, h)
