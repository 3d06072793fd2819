"""What each --dataset means: its default hierarchy, image size, augmentation and statistics,
and how its images are listed, loaded and identified (one small class per kind of source).

Kept free of TensorFlow so that flag parsing, `--help` and validation never import it: the
methods that touch data import `lg_tf.data.sources` when they are called.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, ClassVar

from lg_tf import hierarchy as hier_lib
from lg_tf.errors import DataError

if TYPE_CHECKING:
    from lg_tf.data.split import Split

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Per-channel statistics of the embedded `lg_shapes` training split (lg_tf/data/embedded.py).
EMBEDDED_MEAN: tuple[float, float, float] = (0.3770, 0.3759, 0.3758)
EMBEDDED_STD: tuple[float, float, float] = (0.2304, 0.2295, 0.2303)
SPLITS = ("train", "test")


def _sources():
    from lg_tf.data import sources
    return sources


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """One --dataset value. The defaults below are those of an in-memory TFDS source."""
    name: str                   # the --dataset value
    default_hierarchy: str      # '' = must be given (or comes from the folder tree)
    image_size: int
    augment: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # --labels_file names its images by folder path or by "<split>/<index>"
    takes_labels_file: ClassVar[bool] = True
    # Training images per fine class (0: not known before the data is read)
    train_per_class: int = 0

    def augment_for(self, size: int) -> str:
        """The augmentation of images resized to `size`."""
        return self.augment

    def root(self, cfg) -> str | None:
        """The image folder (what --labels_file paths are relative to); None in memory."""
        return None

    def hierarchy_from_tree(self, cfg) -> bool:
        """The hierarchy is the images' own folder tree (no other one is given)."""
        return False

    def tree_hierarchy(self, cfg) -> hier_lib.Hierarchy:
        raise NotImplementedError(f"--dataset={self.name} has no folder tree")

    def check(self, cfg, h: hier_lib.Hierarchy) -> None:
        """Refuses a source that cannot give `h`'s classes, before any image is read."""

    def train_images(self, cfg, h: hier_lib.Hierarchy) -> int | None:
        """Training images before --train_fraction, without reading an image (for the cost
        estimate of a grid); None where unknown."""
        return h.num_fine * self.train_per_class or None

    def classes(self, cfg) -> tuple[list[str], str] | None:
        """(the dataset's fine class names, how to call the dataset), where known before
        loading; None otherwise."""
        return None

    def load(self, cfg, h: hier_lib.Hierarchy) -> dict[str, Split]:
        """{"train": ..., "test": ...} with `h`'s dense fine labels."""
        raise NotImplementedError

    def identity(self, cfg, h: hier_lib.Hierarchy) -> tuple[dict, list[tuple[str, int]]]:
        """What `datasets.fingerprint` hashes besides the hierarchy: (entries for its
        header, sorted (relative path, size) of every image file, [] for in-memory data)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class EmbeddedData(DatasetInfo):
    """The procedural `lg_shapes` dataset, generated into TFDS on first use."""

    def classes(self, cfg):
        return list(hier_lib.SHAPES_FINE), f"--dataset={self.name}"

    def load(self, cfg, h):
        return {s: _sources().load_embedded(h, s, cfg.data_dir or None) for s in SPLITS}

    def train_images(self, cfg, h):
        from lg_tf.data import embedded
        return h.num_fine * embedded.NUM_TRAIN_PER_CLASS

    def identity(self, cfg, h):
        from lg_tf.data import embedded  # registers the TFDS builder
        return {"tfds": _sources().tfds_identity(embedded.LgShapes.name,
                                                 cfg.data_dir or None)}, []


@dataclasses.dataclass(frozen=True)
class CifarData(DatasetInfo):
    """CIFAR-10 or CIFAR-100 through TFDS (the TFDS name is the --dataset value)."""
    fine_names: tuple[str, ...] = ()   # in TFDS label order

    def classes(self, cfg):
        return list(self.fine_names), f"--dataset={self.name}"

    def load(self, cfg, h):
        return {s: _sources().load_cifar(self.name, h, s, cfg.data_dir or None)
                for s in SPLITS}

    def identity(self, cfg, h):
        return {"tfds": _sources().tfds_identity(self.name, cfg.data_dir or None)}, []


@dataclasses.dataclass(frozen=True)
class ImagenetData(DatasetInfo):
    """A hierarchy's classes of TFDS imagenet2012, extracted once into a JPEG folder cache."""
    takes_labels_file: ClassVar[bool] = False

    def load(self, cfg, h):
        skip = getattr(cfg, "skip_corrupt", False)
        return {s: _sources().load_imagenet_tfds(h, s, cfg.data_dir or None, skip)
                for s in SPLITS}

    def identity(self, cfg, h):
        sources, data_dir = _sources(), cfg.data_dir or None
        files = []
        for split in SPLITS:
            if not sources.imagenet_cache_complete(h, split, data_dir):
                raise DataError(f"the imagenet2012 {split} images of hierarchy '{h.name}' are "
                                f"not extracted yet under --data_dir={cfg.data_dir or '~'}, so "
                                "they have no fingerprint; run datasets.prepare (or a "
                                "training run) once to extract them")
            cache = sources.imagenet_cache_dir(h, split, data_dir)
            files += [(f"{split}/{p}", n) for p, n in sources.folder_files(cache, h)]
        return {}, files


@dataclasses.dataclass(frozen=True)
class FolderData(DatasetInfo):
    """An image folder: root/<coarse>/<fine>/<images> or root/<fine>/<images>, split into
    root/train and root/test or held out per class."""

    def augment_for(self, size):
        return "cifar" if size <= 64 else "imagenet"

    def root(self, cfg):
        if not cfg.data_dir:
            raise DataError("--dataset=folder needs --data_dir pointing at the image folder "
                            "root")
        return cfg.data_dir

    def hierarchy_from_tree(self, cfg):
        return not (cfg.coarse_zero or cfg.hierarchy_file or cfg.hierarchy
                    or self.default_hierarchy)

    def tree_hierarchy(self, cfg):
        root = self.root(cfg)
        return hier_lib.from_folder_tree(_sources().folder_tree_root(root),
                                         name=os.path.basename(os.path.normpath(root)))

    def check(self, cfg, h):
        used = None if self.hierarchy_from_tree(cfg) else set(h.fine_names)
        _sources().check_split_classes(self.root(cfg), used)

    def classes(self, cfg):
        if self.hierarchy_from_tree(cfg):
            return None
        root = self.root(cfg)
        sources = _sources()
        return (sources.folder_class_names(sources.folder_tree_root(root)),
                f"the image folder '{root}'")

    def load(self, cfg, h):
        return _sources().load_folder(self.root(cfg), h, cfg.holdout_fraction, cfg.seed,
                                      getattr(cfg, "skip_corrupt", False))

    def identity(self, cfg, h):
        return {}, _sources().folder_files(self.root(cfg), h)

    def train_images(self, cfg, h):
        """Counted from the listing (no decoding): train/ when split, else the share that
        --holdout_fraction leaves for training."""
        sources = _sources()
        files = sources.folder_files(self.root(cfg), h)
        if sources.folder_split_dirs(cfg.data_dir):
            return sum(1 for path, _ in files if path.startswith("train/"))
        return int(len(files) * (1 - cfg.holdout_fraction))


DATASETS = {d.name: d for d in (
    EmbeddedData("embedded", "shapes", 32, "cifar", EMBEDDED_MEAN, EMBEDDED_STD),
    CifarData("cifar10", "cifar10", 32, "cifar", (0.4914, 0.4822, 0.4465),
              (0.2023, 0.1994, 0.2010), train_per_class=5000,
              fine_names=hier_lib.CIFAR10_CLASSES),
    CifarData("cifar100", "cifar100", 32, "cifar", (0.5071, 0.4867, 0.4408),
              (0.2675, 0.2565, 0.2761), train_per_class=500,
              fine_names=hier_lib.CIFAR100_FINE),
    # ImageNet classes hold 732-1300 training images: 1300 is an upper bound
    ImagenetData("imagenet2012", "", 224, "imagenet", IMAGENET_MEAN, IMAGENET_STD,
                 train_per_class=1300),
    FolderData("folder", "", 32, "cifar", IMAGENET_MEAN, IMAGENET_STD),
)}
