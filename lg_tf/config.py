"""Flags, grouped by purpose, read once into one frozen `Config` and validated up front.

Nothing below `lg_tf.train` reads FLAGS: tests and pipelines build a `Config` directly
(`Config(dataset="embedded", ...)` or `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import flags

from lg_tf.data import datasets
from lg_tf import hierarchy as hier_lib


from lg_tf.errors import ConfigError  # noqa: F401 - raised here, re-exported


@dataclasses.dataclass(frozen=True)
class Config:
    # data
    dataset: str = "embedded"
    hierarchy: str = ""
    coarse_zero: str = ""
    hierarchy_file: str = ""
    data_dir: str = ""
    train_fraction: float = 1.0
    label_noise: float = 0.0
    holdout_fraction: float = 0.2
    image_size: int = 0
    skip_corrupt: bool = False
    # model
    model: str = "preact_resnet18"
    width: int = 64
    wrn_depth: int = 28
    wrn_widen: int = 10
    block_dropout: float = 0.3
    dropout: float = 0.0
    extra_layer: bool = False
    # training
    granularity: str = "fine"
    epochs: int = 200
    batch_size: int = 128
    eval_batch_size: int = 100
    learning_rate: float = 0.1
    lr_schedule: str = "step"
    lr_milestones: tuple[int, ...] = (60, 120, 160)
    lr_decay: float = 0.2
    plateau_patience: int = 10
    momentum: float = 0.9
    weight_decay: float = 5e-4
    coarse_metric: str = "map_argmax"
    train_eval: bool = False
    eval_every: int = 1
    steps_per_epoch: int = 0
    eval_steps: int = 0
    seed: int = 0
    deterministic: bool = False
    on_nan: str = "stop"
    # analysis
    acr_every: int = 0
    # system
    export_dir: str = ""
    strategy: str = "auto"
    cpu_devices: int = 0
    mixed_precision: str = "none"
    jit_compile: bool = False
    overwrite: bool = False

    @property
    def scaled_epochs(self) -> int:
        """Epochs at fraction r are epochs / r, so the number of weight updates stays constant."""
        return max(1, round(self.epochs / self.train_fraction))

    @property
    def scaled_milestones(self) -> tuple[int, ...]:
        return tuple(round(m / self.train_fraction) for m in self.lr_milestones)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    # Flags that change what is trained; a model_dir holding a run with other values is
    # refused unless --overwrite.
    IDENTITY = ("dataset", "hierarchy", "coarse_zero", "hierarchy_file", "train_fraction",
                "label_noise", "model", "width", "wrn_depth", "wrn_widen", "granularity",
                "extra_layer", "dropout", "seed")


CHOICES = {
    "granularity": ("fine", "coarse"),
    "model": ("preact_resnet18", "wide_resnet"),
    "lr_schedule": ("step", "plateau", "constant"),
    "coarse_metric": ("map_argmax", "sum_probs"),
    "strategy": ("auto", "mirrored", "multi_worker", "one_device"),
    "mixed_precision": ("none", "float16", "bfloat16"),
    "on_nan": ("stop", "skip_batch"),
}


def validate(c: Config) -> Config:
    """Raises ConfigError naming the flag; returns the config unchanged when it is usable."""
    if c.dataset not in datasets.DATASETS:
        _fail(f"--dataset='{c.dataset}' is unknown; choose one of: {', '.join(datasets.DATASETS)}")
    for name, allowed in CHOICES.items():
        if getattr(c, name) not in allowed:
            _fail(f"--{name}='{getattr(c, name)}' is not allowed; choose one of: {', '.join(allowed)}")
    if sum(bool(x) for x in (c.hierarchy, c.coarse_zero, c.hierarchy_file)) > 1:
        _fail("give only one of --hierarchy, --coarse_zero and --hierarchy_file")
    if c.hierarchy and c.hierarchy not in hier_lib.NAMED_HIERARCHIES:
        _fail(f"--hierarchy='{c.hierarchy}' is unknown; choose one of: "
              f"{', '.join(hier_lib.NAMED_HIERARCHIES)} (or use --hierarchy_file)")
    if c.coarse_zero and c.dataset != "cifar10":
        _fail("--coarse_zero only applies to --dataset=cifar10")
    if not 0 < c.train_fraction <= 1:
        _fail(f"--train_fraction={c.train_fraction} must be in (0, 1], e.g. 0.2 for 20%")
    if not 0 <= c.label_noise <= 1:
        _fail(f"--label_noise={c.label_noise} must be in [0, 1]")
    if not 0 < c.holdout_fraction < 1:
        _fail(f"--holdout_fraction={c.holdout_fraction} must be in (0, 1)")
    for name in ("dropout", "block_dropout"):
        if not 0 <= getattr(c, name) < 1:
            _fail(f"--{name}={getattr(c, name)} must be in [0, 1)")
    for name in ("epochs", "batch_size", "eval_batch_size", "width", "eval_every"):
        if getattr(c, name) < 1:
            _fail(f"--{name}={getattr(c, name)} must be a positive integer")
    for name in ("steps_per_epoch", "eval_steps", "acr_every", "cpu_devices", "image_size",
                 "seed"):
        if getattr(c, name) < 0:
            _fail(f"--{name}={getattr(c, name)} must be >= 0")
    if c.learning_rate <= 0:
        _fail(f"--learning_rate={c.learning_rate} must be > 0")
    if not 0 <= c.momentum < 1:
        _fail(f"--momentum={c.momentum} must be in [0, 1)")
    if c.weight_decay < 0:
        _fail(f"--weight_decay={c.weight_decay} must be >= 0")
    if not 0 < c.lr_decay <= 1:
        _fail(f"--lr_decay={c.lr_decay} must be in (0, 1]")
    if list(c.lr_milestones) != sorted(set(c.lr_milestones)) or any(m <= 0 for m in c.lr_milestones):
        _fail(f"--lr_milestones={','.join(map(str, c.lr_milestones))} must be increasing "
              "positive epochs, e.g. 60,120,160")
    if c.extra_layer and c.granularity != "coarse":
        _fail("--extra_layer is the coarse-training ablation (Table IV); use it with "
              "--granularity=coarse")
    if c.hierarchy_file and not os.path.isfile(c.hierarchy_file):
        _fail(f"--hierarchy_file='{c.hierarchy_file}' does not exist")
    return c


def _fail(message: str):
    raise ConfigError(message)


# --------------------------------------------------------------------------- absl flags

HELP = {
    "Data": {
        "dataset": "Image source: " + ", ".join(datasets.DATASETS) + ".",
        "hierarchy": "Named fine->coarse hierarchy (default: the dataset's own), one of "
                     + ", ".join(hier_lib.NAMED_HIERARCHIES) + ".",
        "coarse_zero": "CIFAR-10 digits forming coarse class 0, e.g. 01289 (Table VI).",
        "hierarchy_file": "JSON {fine: coarse} or CSV fine,coarse file defining the hierarchy.",
        "data_dir": "TFDS data_dir, or the image folder root for --dataset=folder.",
        "train_fraction": "Fraction r of training images kept per fine class; epochs and "
                          "LR milestones scale by 1/r.",
        "label_noise": "Randomness factor p: fine labels resampled within their coarse class.",
        "holdout_fraction": "Test share per class for folders without train/ and test/.",
        "image_size": "Model input size (0: the dataset's default, 32 or 224).",
        "skip_corrupt": "Skip (and count) unreadable image files instead of stopping.",
    },
    "Model": {
        "model": "Architecture: preact_resnet18 or wide_resnet.",
        "width": "PreAct ResNet-18 base width (64 for CIFAR, 16 for the thin ImageNet model).",
        "wrn_depth": "Wide ResNet depth (6n+4).",
        "wrn_widen": "Wide ResNet widening factor.",
        "block_dropout": "Dropout inside each Wide ResNet block.",
        "dropout": "Dropout on the pooled features before the classifier (Table V).",
        "extra_layer": "Coarse ablation: features -> n_fine units -> n_coarse (Table IV).",
    },
    "Training": {
        "granularity": "Train on fine or coarse labels (coarse accuracy is reported for both).",
        "epochs": "Epochs at fraction 1 (scaled by 1/train_fraction).",
        "batch_size": "Global training batch size (split evenly across replicas).",
        "eval_batch_size": "Global evaluation batch size.",
        "learning_rate": "Initial SGD learning rate.",
        "lr_schedule": "step (x lr_decay at lr_milestones), plateau, or constant.",
        "lr_milestones": "Comma-separated epochs (at fraction 1) where the step schedule decays.",
        "lr_decay": "Factor applied at each milestone (or plateau).",
        "plateau_patience": "Epochs without test-loss improvement before a plateau decay.",
        "momentum": "SGD momentum.",
        "weight_decay": "Coupled L2 (PyTorch SGD weight_decay) on all parameters.",
        "coarse_metric": "Fine->coarse rule: map_argmax (published) or sum_probs.",
        "train_eval": "Also evaluate the un-augmented training split each epoch.",
        "eval_every": "Evaluate the test split every N epochs (and always at the end).",
        "steps_per_epoch": "Limit steps per epoch (0: one pass over the training split).",
        "eval_steps": "Limit evaluation steps (0: the whole split).",
        "seed": "Seed for subsets, noise, shuffling, augmentation and initialisation.",
        "deterministic": "Bit-identical reruns: deterministic TensorFlow ops (slower).",
        "on_nan": "Non-finite loss: stop (keep the last good checkpoint) or skip_batch.",
    },
    "Analysis": {
        "acr_every": "Compute ACR on the test split every N epochs of a fine run (0: end only).",
    },
    "System": {
        "model_dir": "Where checkpoints, TensorBoard logs, results.json and the export go.",
        "export_only": "Export a SavedModel from model_dir's last checkpoint and exit.",
        "export_dir": "SavedModel directory (default: <model_dir>/export).",
        "strategy": "auto (multi-worker from TF_CONFIG, else mirrored), mirrored, "
                    "multi_worker, one_device.",
        "cpu_devices": "Split the CPU into N logical devices (testing MirroredStrategy).",
        "mixed_precision": "none, float16 or bfloat16 compute.",
        "jit_compile": "Compile the train step with XLA.",
        "overwrite": "Start afresh even if model_dir holds a run with other flags.",
    },
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines one flag per Config field (called by the entry point, never at import)."""
    defaults = Config()
    extra = {"model_dir": "", "export_only": False}  # run-level, not part of Config
    for group, helps in HELP.items():
        for name, text in helps.items():
            value = extra[name] if name in extra else getattr(defaults, name)
            module = f"lg_tf {group.lower()} flags"  # groups --helpfull by purpose
            if isinstance(value, bool):
                flags.DEFINE_bool(name, value, text, module_name=module,
                                  flag_values=flag_values)
            elif isinstance(value, int):
                flags.DEFINE_integer(name, value, text, module_name=module,
                                  flag_values=flag_values)
            elif isinstance(value, float):
                flags.DEFINE_float(name, value, text, module_name=module,
                                  flag_values=flag_values)
            elif isinstance(value, tuple):
                flags.DEFINE_list(name, [str(v) for v in value], text, module_name=module,
                                  flag_values=flag_values)
            else:
                flags.DEFINE_string(name, value, text, module_name=module,
                                  flag_values=flag_values)


def from_flags(values) -> Config:
    kwargs = {}
    for f in dataclasses.fields(Config):
        value = getattr(values, f.name)
        if f.name == "lr_milestones":
            try:
                value = tuple(int(v) for v in value)
            except ValueError:
                _fail(f"--lr_milestones={','.join(value)} must be integers, e.g. 60,120,160")
        kwargs[f.name] = value
    return validate(Config(**kwargs))


def load_saved(model_dir: str) -> Config | None:
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        d = json.load(f)
    d["lr_milestones"] = tuple(d.get("lr_milestones", ()))
    known = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in d.items() if k in known})
