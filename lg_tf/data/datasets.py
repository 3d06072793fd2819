"""`prepare()`: a config turned into data, through the --dataset's entry in `registry`.

`prepare` resolves the hierarchy, loads both splits through the dataset's source, applies
the training fraction and label noise (numpy, once, before the tf.data graph is built) and
reports the counts they produced. What differs between datasets lives in
`registry.DATASETS`; nothing here branches on the dataset's name.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os

import numpy as np

from lg_tf import hierarchy as hier_lib
from lg_tf.data import labels_file, pipeline, sources
# The registry lives in a TensorFlow-free module so that flag parsing never imports TF.
from lg_tf.data.registry import DATASETS, IMAGENET_MEAN, IMAGENET_STD, DatasetInfo  # noqa: F401
from lg_tf.data.split import Split
from lg_tf.errors import DataError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Data:
    hierarchy: hier_lib.Hierarchy
    spec: pipeline.ImageSpec
    train: Split
    test: Split
    stats: dict


def resolve_hierarchy(cfg) -> hier_lib.Hierarchy:
    """The run's hierarchy: --labels_file's pairs when given, else `source_hierarchy`."""
    h = source_hierarchy(cfg)
    if cfg.labels_file:
        return labels_file.hierarchy_for(_labels(cfg.labels_file), h)
    return h


def source_hierarchy(cfg) -> hier_lib.Hierarchy:
    """The hierarchy the images are loaded with (their own classes; --labels_file aside);
    refused (HierarchyError) when it has fewer than 2 coarse classes."""
    h = _resolve_hierarchy(cfg)
    check_coarse_classes(cfg, h)
    return h


def _labels(path: str) -> labels_file.LabelsFile:
    """The parsed labels file, read again only when it changed on disk."""
    st = os.stat(path)
    return _read_labels(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _read_labels(path: str, mtime_ns: int, size: int) -> labels_file.LabelsFile:
    del mtime_ns, size  # the cache key: a rewritten file is read again
    return labels_file.read(path)


def _resolve_hierarchy(cfg) -> hier_lib.Hierarchy:
    if cfg.coarse_zero:
        return hier_lib.from_digit_string(cfg.coarse_zero)
    if cfg.hierarchy_file:
        return hier_lib.from_file(cfg.hierarchy_file)
    info = DATASETS[cfg.dataset]
    name = cfg.hierarchy or info.default_hierarchy
    if name:
        return hier_lib.named(name)
    if info.hierarchy_from_tree(cfg):
        return info.tree_hierarchy(cfg)
    raise DataError(f"--dataset={cfg.dataset} needs a hierarchy: pass --hierarchy "
                    "(e.g. imagenet_dog_cat) or --hierarchy_file")


def check_coarse_classes(cfg, h: hier_lib.Hierarchy) -> None:
    """Refuses a hierarchy with one coarse class: the model would have one output and be
    100% accurate whatever it learns. Checked before any data is loaded."""
    if h.num_coarse >= 2:
        return
    kids = [h.fine_names[f] for f in h.children(0)]
    shown = ", ".join(kids[:5]) + (", ..." if len(kids) > 5 else "")
    what = (f"1 coarse class ('{h.coarse_names[0]}', with {len(kids)} fine "
            f"class{'' if len(kids) == 1 else 'es'}: {shown})")
    info = DATASETS[cfg.dataset]
    if info.hierarchy_from_tree(cfg):
        tree = sources.folder_tree_root(info.root(cfg))
        where = f"the image folder '{tree}'"
        fix = (f"add a second coarse folder ({os.path.join(tree, '<coarse>', '<fine>')}/"
               "<images>) or pass a --hierarchy_file grouping the fine classes into 2 or more "
               "coarse classes")
    elif cfg.hierarchy_file:
        where, fix = (f"--hierarchy_file='{cfg.hierarchy_file}'",
                      "map the fine classes to 2 or more coarse classes in it")
    else:
        where, fix = (f"hierarchy '{h.name}'", "choose a hierarchy with 2 or more coarse classes")
    raise hier_lib.HierarchyError(
        f"{where} has only {what}, but lg_tf trains a classifier over coarse classes, which "
        f"needs at least 2; {fix}")


def image_spec(cfg) -> pipeline.ImageSpec:
    info = DATASETS[cfg.dataset]
    size = cfg.image_size or info.image_size
    return pipeline.ImageSpec(size, info.augment_for(size), info.mean, info.std)


def check_classes(cfg, h: hier_lib.Hierarchy) -> int:
    """Refuses a hierarchy naming classes the dataset lacks; logs the classes it leaves out.

    Returns how many of the dataset's classes the hierarchy does not use (0 if unknown:
    imagenet2012's 1000 names come with the TFDS builder, and a folder whose hierarchy is
    its own tree uses all of its classes).
    """
    known = DATASETS[cfg.dataset].classes(cfg)
    if known is None:
        return 0
    names, what = known
    if cfg.coarse_zero:
        _check_cifar10_names(names, what)
    table = h.source_to_fine(names, what)
    unused = [n for n, fine in zip(names, table) if fine < 0]
    if unused:
        log.info("hierarchy '%s' uses %d of the %d classes of %s; the other %d are left out "
                 "of train and test (%s%s)", h.name, h.num_fine, len(names), what, len(unused),
                 ", ".join(unused[:5]), ", ..." if len(unused) > 5 else "")
    return len(unused)


def _check_cifar10_names(names: list[str], what: str) -> None:
    """--coarse_zero numbers the CIFAR-10 classes: the dataset (CIFAR-10 itself, or a folder
    of its classes) must have all ten of them."""
    missing = [n for n in hier_lib.CIFAR10_CLASSES if n not in names]
    if missing:
        raise DataError(
            f"--coarse_zero groups the ten CIFAR-10 classes by their digits, but {what} lacks "
            f"{len(missing)} of their folders ({', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}); name the class folders airplane, "
            "automobile, bird, cat, deer, dog, frog, horse, ship, truck, or group other classes "
            "with --hierarchy_file")


def fingerprint(cfg, h: hier_lib.Hierarchy | None = None) -> str:
    """16 hex digits (of a sha256) identifying the data `cfg` selects, without loading it.

    What is hashed: the hierarchy (fine names, coarse names, parents; not its name) and
    the dataset's source, never pixels:

    * image folder: the sorted (path relative to --data_dir, size in bytes) of every
      image of the hierarchy's classes in train/ and test/ (or the single tree) -- folders
      are listed and files stat'ed, about a second for 50,000 files;
    * cifar10 / cifar100 / embedded: the TFDS builder's full name, version and split
      sizes, read from its metadata (a builder that is not prepared yet is a DataError:
      `prepare` prepares it, then has the fingerprint in `Data.stats`);
    * imagenet2012: the listing of its extracted JPEG cache (as for a folder), which
      `prepare` writes on first use (a DataError before that).

    The absolute --data_dir is not part of it (a moved folder keeps its fingerprint), and
    neither are --train_fraction, --label_noise, --holdout_fraction or --seed: they are
    config, applied after the source. Renaming, adding, removing or resizing one image,
    or a class swapped for another, changes it. `prepare` stores it as
    `Data.stats["fingerprint"]`.
    """
    h = source_hierarchy(cfg) if h is None else h
    digest = hashlib.sha256()
    head = {"format": 1, "dataset": cfg.dataset, "fine": list(h.fine_names),
            "coarse": list(h.coarse_names), "parent": list(h.parent)}
    if cfg.labels_file:  # other fine labels are other data; its path is not part of it
        head["labels_file"] = _labels(cfg.labels_file).digest
    extra, files = DATASETS[cfg.dataset].identity(cfg, h)
    head.update(extra)
    digest.update(json.dumps(head, sort_keys=True).encode())
    for path, size in files:
        digest.update(f"\n{path}\t{size}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def prepare(cfg) -> Data:
    info = DATASETS[cfg.dataset]
    source_h = source_hierarchy(cfg)
    info.check(cfg, source_h)
    unused_classes = check_classes(cfg, source_h)
    splits = info.load(cfg, source_h)
    h = source_h
    if cfg.labels_file:
        h, splits = _apply_labels_file(cfg, source_h, splits)
    train, test = splits["train"], splits["test"]
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"the {name} split of --dataset={cfg.dataset} has no images of "
                            f"hierarchy '{h.name}'")
    kept = pipeline.fraction_indices(train.labels, cfg.train_fraction, cfg.seed)
    train = train.take(kept)
    if len(train) == 0:
        raise DataError(f"--train_fraction={cfg.train_fraction} keeps no training image "
                        f"(the largest class has {np.bincount(splits['train'].labels).max()}); "
                        "raise it")
    _check_partial(cfg, h, train)
    labels, resampled, changed = pipeline.noisy_fine_labels(
        train.labels, h.parent_array(), cfg.label_noise, cfg.seed)
    labels = pipeline.partial_fine_labels(labels, h.parent_array(), cfg.fine_label_fraction,
                                          cfg.seed)
    train = train.relabel(labels)
    fine_known = train.labels < h.num_fine
    stats = {
        "train_examples": len(train), "test_examples": len(test),
        "train_examples_before_fraction": len(splits["train"]),
        "train_fraction": cfg.train_fraction,
        "label_noise": cfg.label_noise, "noise_resampled": resampled, "noise_changed": changed,
        "train_per_fine_class": np.bincount(train.labels[fine_known],
                                            minlength=h.num_fine).tolist(),
        "fine_label_fraction": cfg.fine_label_fraction,
        "train_fine_labelled": int(fine_known.sum()),
        "train_coarse_only": int((~fine_known).sum()),
        "dataset_classes_unused": unused_classes,
        "fingerprint": fingerprint(cfg, source_h),  # of the source, before fraction and noise
    }
    skipped = {kind: sum(len(s.skipped.get(kind, ())) for s in splits.values())
               for kind in ("unreadable", "not_image")}
    stats.update(skipped_files=sum(skipped.values()), skipped_unreadable=skipped["unreadable"],
                 skipped_not_image=skipped["not_image"])
    if stats["skipped_files"]:
        log.info("--skip_corrupt: %d file(s) skipped in all (%d unreadable images, %d non-image "
                 "files)", stats["skipped_files"], skipped["unreadable"], skipped["not_image"])
    log.info("%s: train %d images (fraction %.2f of %d), test %d; label noise p=%.3f "
             "resampled %d labels, %d changed", h.name, len(train), cfg.train_fraction,
             len(splits["train"]), len(test), cfg.label_noise, resampled, changed)
    if stats["train_coarse_only"]:
        log.info("partial fine labels: %d of %d training images have a fine label, %d only "
                 "their coarse one", stats["train_fine_labelled"], len(train),
                 stats["train_coarse_only"])
    return Data(h, image_spec(cfg), train, test, stats)


def _check_partial(cfg, h: hier_lib.Hierarchy, train: Split) -> None:
    """Refuses what partial fine labels cannot be combined with, before anything is written:
    a second way of leaving fine labels out, label noise (it resamples fine labels), and a
    target that needs every fine label."""
    coarse_only = int(np.sum(train.labels >= h.num_fine))
    if not coarse_only:
        return
    where = ("--labels_file leaves the fine label of some images empty" if cfg.labels_file
             else "some training images sit in <coarse>/ without a fine folder")
    if cfg.fine_label_fraction < 1:
        raise DataError(f"--fine_label_fraction={cfg.fine_label_fraction:g} would leave out "
                        f"fine labels, but {where} already ({coarse_only} images); drop "
                        "--fine_label_fraction or give every image its fine label")
    if cfg.label_noise:
        raise DataError(f"--label_noise={cfg.label_noise:g} resamples fine labels, but {where} "
                        f"({coarse_only} images have none); drop --label_noise")
    if cfg.granularity not in ("fine", "coarse"):
        raise DataError(f"{where} ({coarse_only} images have no fine label); "
                        f"--granularity={cfg.granularity} needs every fine label, fine and "
                        "coarse training take partial ones")


def _apply_labels_file(cfg, source_h: hier_lib.Hierarchy, splits: dict[str, Split]):
    """(the labels file's hierarchy, the splits relabelled with its fine classes)."""
    info = DATASETS[cfg.dataset]
    if not info.takes_labels_file:
        raise DataError("--labels_file works with image folders, embedded, cifar10 and "
                        "cifar100; for ImageNet classes, point --dataset=folder at the images")
    labels = _labels(cfg.labels_file)
    root = info.root(cfg)
    out = {name: labels_file.apply(labels, split, name, root, source_h)
           for name, split in splits.items()}
    h = labels_file.hierarchy_for(labels, source_h)
    log.info("--labels_file=%s: %d fine classes under %d coarse classes replace the images' "
             "own labels", cfg.labels_file, h.num_fine, h.num_coarse)
    return h, out
