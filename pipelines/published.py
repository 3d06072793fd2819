"""The paper's published numbers, as data (its tables; settings from its published code).

Accuracies are test (or training) coarse accuracy in percent; ACR is unitless. Everything is
keyed by the hierarchy name lg_tf uses (`cifar10`, `cifar100`, `cifar100_animals`,
`cifar100_5`, `cifar100_15`, `imagenet_dog_cat`, `imagenet_fruit_veg`); `key(cfg)` finds the
key of a run's config, or None when the paper has no number for it (the embedded dataset, a
user's hierarchy file, a folder of other classes).
"""

from __future__ import annotations

NOT_IN_PAPER = "n/a (not in the paper)"

# Display names of the datasets as the paper writes them.
NAMES = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "cifar100_animals": "CIFAR-100 animals",
    "cifar100_5": "CIFAR-100-5",
    "cifar100_15": "CIFAR-100-15",
    "imagenet_dog_cat": "ImageNet dog vs. cat",
    "imagenet_fruit_veg": "ImageNet fruit vs. vege",
}

# The published model and epochs behind each dataset's numbers (Table III + settings table).
SETUP = {
    "cifar10": {"model": "preact_resnet18", "width": 64, "epochs": 200,
                "text": "PreAct ResNet-18 width 64 (11.17M parameters), 200 epochs"},
    "cifar100": {"model": "wide_resnet", "wrn_depth": 28, "wrn_widen": 10, "epochs": 200,
                 "text": "WRN-28-10 (36.5M parameters), 200 epochs"},
    "imagenet": {"model": "preact_resnet18", "width": 16, "epochs": 225,
                 "text": "thin PreAct ResNet-18 width 16 (0.70M parameters), 225 epochs at "
                         "224x224"},
}


def setup_for(key_: str | None) -> dict | None:
    if key_ is None:
        return None
    if key_.startswith("cifar100"):
        return SETUP["cifar100"]
    if key_.startswith("cifar10"):
        return SETUP["cifar10"]
    if key_.startswith("imagenet"):
        return SETUP["imagenet"]
    return None


# Table I: training and testing accuracy at 100% of the data; ACR of the fine run (Fig. 2 table).
TABLE1 = {
    "cifar10": {"coarse": {"train": 99.9, "test": 98.42},
                "fine": {"train": 100.0, "test": 99.20, "acr": 0.123}},
    "cifar100": {"coarse": {"train": 100.0, "test": 85.04},
                 "fine": {"train": 100.0, "test": 85.05, "acr": 0.0671}},
    "cifar100_animals": {"coarse": {"train": 100.0, "test": 81.42},
                         "fine": {"train": 100.0, "test": 83.44, "acr": 0.152}},
    "imagenet_dog_cat": {"coarse": {"train": 94.1, "test": 92.68},
                         "fine": {"train": 95.3, "test": 94.67, "acr": 0.233}},
    "imagenet_fruit_veg": {"coarse": {"train": 91.8, "test": 89.65},
                           "fine": {"train": 95.4, "test": 93.15, "acr": 0.435}},
}

# Fig. 2: test accuracy by fraction r of the training data.
FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)
FIG2 = {
    "cifar10": {"fine": (97.78, 98.62, 98.97, 99.04, 99.20),
                "coarse": (96.65, 97.96, 98.33, 98.39, 98.42)},
    "cifar100": {"fine": (71.51, 79.11, 81.92, 83.24, 85.05),
                 "coarse": (68.99, 77.90, 81.74, 83.33, 85.04)},
    "cifar100_animals": {"fine": (65.06, 73.40, 78.33, 80.72, 83.44),
                         "coarse": (61.98, 71.92, 77.56, 79.49, 81.42)},
    "imagenet_dog_cat": {"fine": (90.68, 93.08, 93.44, 93.84, 94.67),
                         "coarse": (87.92, 91.04, 92.00, 92.76, 92.68)},
    "imagenet_fruit_veg": {"fine": (88.40, 91.46, 91.88, 92.96, 93.15),
                           "coarse": (84.42, 87.46, 88.62, 88.72, 89.65)},
}


def fig2(key_: str | None, series: str, fraction: float) -> float | None:
    table = FIG2.get(key_ or "", {}).get(series)
    for r, value in zip(FRACTIONS, table or ()):
        if abs(r - fraction) < 1e-9:
            return value
    return None


# Table IV: baseline fine-trained CNN and coarse-trained CNN with the extra layer (train, test).
# (The paper's Table IV prints 94.87 for dog/cat FC test; its Table I prints 94.67.)
TABLE4 = {
    "cifar10": {"fine": (100.0, 99.20), "coarse_extra": (99.9, 98.50)},
    "cifar100": {"fine": (100.0, 85.05), "coarse_extra": (100.0, 86.33)},
    "cifar100_animals": {"fine": (100.0, 83.44), "coarse_extra": (100.0, 80.73)},
    "imagenet_dog_cat": {"fine": (95.3, 94.87), "coarse_extra": (93.8, 92.2)},
    "imagenet_fruit_veg": {"fine": (95.4, 93.15), "coarse_extra": (91.7, 89.67)},
}

# Table V: dropout on the pooled features; (granularity, dropout) -> (train, test).
TABLE5 = {
    "cifar10": {("fine", 0.3): (100.0, 99.10), ("coarse", 0.3): (99.9, 98.48),
                ("fine", 0.0): (100.0, 99.20), ("coarse", 0.0): (99.9, 98.42)},
    "imagenet_dog_cat": {("fine", 0.3): (94.8, 95.00), ("coarse", 0.3): (94.3, 92.80),
                         ("fine", 0.0): (95.3, 94.87), ("coarse", 0.0): (94.1, 92.68)},
    "imagenet_fruit_veg": {("fine", 0.3): (95.0, 93.86), ("coarse", 0.3): (91.7, 89.93),
                           ("fine", 0.0): (95.4, 93.15), ("coarse", 0.0): (91.8, 89.65)},
}
# The dropout rate of the paper's dropout ablation (0.4 for CIFAR-100 animals).
DROPOUT_RATE = {"cifar100_animals": 0.4}
DEFAULT_DROPOUT_RATE = 0.3

# Table VI: custom CIFAR-10 coarse mappings (coarse-0 set): id -> (set, ratio, CC, FC, ACR).
TABLE6 = (
    (1, "0189", "6:4", 98.42, 99.20, 0.132),
    (2, "1689", "6:4", 97.68, 98.64, 0.279),
    (3, "0129", "6:4", 96.95, 98.02, 0.568),
    (4, "0135", "6:4", 95.26, 97.20, 0.984),
    (5, "0134", "6:4", 93.44, 96.22, 2.279),
    (6, "01289", "5:5", 97.60, 98.51, 0.305),
    (7, "01389", "5:5", 95.90, 97.59, 0.763),
    (8, "02489", "5:5", 96.17, 97.54, 0.721),
    (9, "01346", "5:5", 94.15, 96.28, 2.142),
    (10, "12348", "5:5", 94.19, 96.16, 1.999),
)
CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Table VII: CIFAR-10 noisy fine labels, randomness factor p -> (FC, delta vs CC, ACR).
TABLE7_CC = 98.42
TABLE7 = {
    "cifar10": {0.0: (99.20, +0.78, 0.132), 0.01: (98.94, +0.52, 0.112),
                0.03: (98.55, +0.13, 0.096), 0.1: (98.12, -0.30, 0.048),
                0.3: (97.72, -0.70, 0.027)},
}
NOISE_LEVELS = (0.0, 0.01, 0.03, 0.1, 0.3)

# Table VIII: CIFAR-100 with 5/10/15/20 coarse classes: hierarchy -> (n coarse, CC, FC, ACR).
TABLE8 = {
    "cifar100_5": (5, 80.53, 83.22, 0.362),
    "cifar100_animals": (10, 81.42, 83.44, 0.152),
    "cifar100_15": (15, 85.14, 85.30, 0.083),
    "cifar100": (20, 85.04, 85.05, 0.067),
}

# Fig. 6: (ACR, delta A_test) of the Table I datasets and CIFAR-100-5/-15 (Table VIII).
FIG6 = (
    ("CIFAR-10", 0.123, 99.20 - 98.42),
    ("CIFAR-100", 0.0671, 85.05 - 85.04),
    ("CIFAR-100 animals", 0.152, 83.44 - 81.42),
    ("dog vs. cat", 0.233, 94.67 - 92.68),
    ("fruit vs. vege", 0.435, 93.15 - 89.65),
    ("CIFAR-100-5", 0.362, 83.22 - 80.53),
    ("CIFAR-100-15", 0.083, 85.30 - 85.14),
)


def key(cfg) -> str | None:
    """The published-table key of a config, or None when the paper has no number for it."""
    if cfg.hierarchy_file or cfg.dataset in ("embedded",):
        return None
    if cfg.coarse_zero:
        digits = "".join(sorted(cfg.coarse_zero))
        return "cifar10" if digits == "0189" else f"cifar10_{digits}"
    from lg_tf.data import datasets
    name = cfg.hierarchy or datasets.DATASETS[cfg.dataset].default_hierarchy
    # A folder of the CIFAR-10 images (e.g. a JPEG copy) is the same data as TFDS cifar10.
    allowed = {"cifar10": ("cifar10", "folder"), "cifar100": ("cifar100",),
               "imagenet": ("imagenet2012", "folder")}
    family = "imagenet" if name.startswith("imagenet") else (
        "cifar100" if name.startswith("cifar100") else "cifar10")
    if name not in NAMES or cfg.dataset not in allowed[family]:
        return None
    return name


def name(key_: str | None, fallback: str = "") -> str:
    return NAMES.get(key_ or "", fallback)
