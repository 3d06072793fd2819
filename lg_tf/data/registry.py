"""What each --dataset means: names, default hierarchy, image size, augmentation, statistics.

Kept free of TensorFlow so that flag parsing, `--help` and validation never import it.
"""

from __future__ import annotations

import dataclasses

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Per-channel statistics of the embedded `lg_shapes` training split (lg_tf/data/embedded.py).
EMBEDDED_MEAN: tuple[float, float, float] = (0.3770, 0.3759, 0.3758)
EMBEDDED_STD: tuple[float, float, float] = (0.2304, 0.2295, 0.2303)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    default_hierarchy: str      # '' = must be given (or comes from the folder tree)
    image_size: int
    augment: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


DATASETS = {
    "embedded": DatasetInfo("shapes", 32, "cifar", EMBEDDED_MEAN, EMBEDDED_STD),
    "cifar10": DatasetInfo("cifar10", 32, "cifar", (0.4914, 0.4822, 0.4465),
                           (0.2023, 0.1994, 0.2010)),
    "cifar100": DatasetInfo("cifar100", 32, "cifar", (0.5071, 0.4867, 0.4408),
                            (0.2675, 0.2565, 0.2761)),
    "imagenet2012": DatasetInfo("", 224, "imagenet", IMAGENET_MEAN, IMAGENET_STD),
    "folder": DatasetInfo("", 32, "cifar", IMAGENET_MEAN, IMAGENET_STD),
}
