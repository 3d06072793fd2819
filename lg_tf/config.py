"""One frozen `Config`; every field described once, next to its default.

A field's description (`Spec`: help text, group, allowed values or bounds, and whether
changing it changes what is trained) is the single source for the absl flags, `--help`,
validation, the resume check of `lg_tf.train`, the run identity of pipelines and the
TensorBoard HParams. This module imports neither TensorFlow nor TFDS, so `--help` and a
bad flag answer at once.

Nothing below the entry points reads FLAGS: tests, notebooks and pipelines build a
`Config` directly (`Config(dataset="embedded", ...)` or `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from lg_tf import hierarchy as hier_lib
from lg_tf.data.registry import DATASETS
from lg_tf.errors import ConfigError  # noqa: F401 - raised here, re-exported

GROUPS = ("Data", "Model", "Training", "Analysis", "System")


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one Config field is described, checked and compared between runs."""
    help: str
    group: str
    trained: bool = True          # a different value trains a different model
    scores: bool = False          # not trained differently, but the reported numbers differ
    choices: tuple = ()           # allowed values (strings)
    lo: float | None = None       # bounds; lo_open/hi_open make them exclusive
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def bounds_text(self) -> str:
        def num(x):
            return str(int(x)) if float(x).is_integer() else f"{x:g}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        lo = "-inf" if self.lo is None else num(self.lo)
        hi = "inf" if self.hi is None else num(self.hi)
        return f"{left}{lo}, {hi}{right}"


def _f(default, help: str, group: str, **spec) -> Any:  # noqa: A002 - absl's word
    return dataclasses.field(default=default, metadata={"spec": Spec(help, group, **spec)})


_POS = dict(lo=1)           # a positive integer
_NONNEG = dict(lo=0)
_UNIT_OPEN = dict(lo=0, hi=1, hi_open=True)      # [0, 1)
MAX_SEED = 2**32 - 1        # numpy and TensorFlow seeds are 32-bit
# Training targets (--granularity); every one but coarse trains on fine labels and has fine
# outputs (so fine accuracy, a fine confusion matrix and ACR).
GRANULARITIES = ("fine", "coarse", "joint", "soft_labels", "hxe")
# The fields that only their own target reads: another target refuses a non-default value.
TARGET_FIELDS = {"coarse_loss_weight": "joint", "soft_beta": "soft_labels",
                 "hxe_alpha": "hxe"}


def fine_outputs(granularity: str) -> bool:
    """Whether a target trains on fine labels and has fine outputs (all but coarse)."""
    return granularity != "coarse"


@dataclasses.dataclass(frozen=True)
class Config:
    # data
    dataset: str = _f("embedded", "Image source.", "Data", choices=tuple(DATASETS))
    hierarchy: str = _f("", "Named fine->coarse hierarchy (default: the dataset's own), one "
                        "of " + ", ".join(hier_lib.NAMED_HIERARCHIES) + ".", "Data")
    coarse_zero: str = _f("", "CIFAR-10 digits forming coarse class 0, e.g. 01289 (Table VI); "
                          "for --dataset=cifar10 or a folder of the ten CIFAR-10 classes.",
                          "Data")
    hierarchy_file: str = _f("", "JSON {fine: coarse} or CSV fine,coarse file defining the "
                             "hierarchy.", "Data")
    labels_file: str = _f("", "CSV path,coarse,fine giving every image its fine label (e.g. "
                          "the labels.csv written by lg_tf.discover); the hierarchy is its "
                          "fine->coarse pairs, and each row's coarse must match the "
                          "image's own.", "Data")
    data_dir: str = _f("", "TFDS data_dir, or the image folder root for --dataset=folder. The "
                       "data itself is identified by a fingerprint, so a moved folder "
                       "resumes.", "Data", trained=False)
    train_fraction: float = _f(1.0, "Fraction r of training images kept per fine class; "
                               "epochs and LR milestones scale by 1/r.", "Data",
                               lo=0, hi=1, lo_open=True)
    label_noise: float = _f(0.0, "Randomness factor p: fine labels resampled within their "
                            "coarse class.", "Data", lo=0, hi=1)
    fine_label_fraction: float = _f(1.0, "Fraction q of the training images of each fine "
                                    "class that keep their fine label (a fixed-seed subset); "
                                    "the others keep only their coarse label, as if only q of "
                                    "the images had been labelled finely.", "Data", lo=0, hi=1)
    holdout_fraction: float = _f(0.2, "Test share per class for folders without train/ and "
                                 "test/.", "Data", lo=0, hi=1, lo_open=True, hi_open=True)
    image_size: int = _f(0, "Model input size (0: the dataset's default, 32 or 224).", "Data",
                         lo=0, hi=1024)
    skip_corrupt: bool = _f(False, "Skip (and count) unreadable image files instead of "
                            "stopping.", "Data", trained=False)
    # model
    model: str = _f("preact_resnet18", "Architecture.", "Model",
                    choices=("preact_resnet18", "wide_resnet"))
    width: int = _f(64, "PreAct ResNet-18 base width (64 for CIFAR, 16 for the thin ImageNet "
                    "model).", "Model", lo=1, hi=1024)
    wrn_depth: int = _f(28, "Wide ResNet depth (6n+4: 10, 16, 22, 28, ...).", "Model",
                        lo=10, hi=1000)
    wrn_widen: int = _f(10, "Wide ResNet widening factor.", "Model", lo=1, hi=64)
    block_dropout: float = _f(0.3, "Dropout inside each Wide ResNet block.", "Model",
                              **_UNIT_OPEN)
    dropout: float = _f(0.0, "Dropout on the pooled features before the classifier "
                        "(Table V).", "Model", **_UNIT_OPEN)
    extra_layer: bool = _f(False, "Coarse ablation: features -> n_fine units -> n_coarse "
                           "(Table IV).", "Model")
    # training
    granularity: str = _f("fine", "Training target: coarse or fine labels, joint (a fine and "
                          "a coarse head), soft_labels (fine targets smoothed by hierarchy "
                          "distance) or hxe (hierarchical cross-entropy); coarse accuracy is "
                          "reported for all.", "Training", choices=GRANULARITIES)
    coarse_loss_weight: float = _f(1.0, "--granularity=joint: loss = CE_fine + this x "
                                   "CE_coarse.", "Training", lo=0)
    soft_beta: float = _f(4.0, "--granularity=soft_labels: target_i proportional to "
                          "exp(-beta * d(i, y)), d = 0 itself, 1 a sibling, 2 another coarse "
                          "class (larger: closer to one-hot).", "Training", lo=0, lo_open=True)
    hxe_alpha: float = _f(0.5, "--granularity=hxe: loss = -log P(coarse) - exp(-alpha) log "
                          "P(fine | coarse) (0: fine cross-entropy; larger: more weight on "
                          "the coarse decision).", "Training", lo=0)
    epochs: int = _f(200, "Epochs at fraction 1 (scaled by 1/train_fraction). May be raised "
                     "on resume to train longer.", "Training", trained=False, scores=True, **_POS)
    batch_size: int = _f(128, "Global training batch size (split evenly across replicas).",
                         "Training", lo=1, hi=2**20)
    eval_batch_size: int = _f(100, "Global evaluation batch size.", "Training", trained=False,
                              lo=1, hi=2**20)
    learning_rate: float = _f(0.1, "Initial SGD learning rate.", "Training", lo=0,
                              lo_open=True)
    lr_schedule: str = _f("step", "step (x lr_decay at lr_milestones), plateau, or constant.",
                          "Training", choices=("step", "plateau", "constant"))
    lr_milestones: tuple[int, ...] = _f((60, 120, 160), "Comma-separated epochs (at fraction "
                                        "1) where the step schedule decays.", "Training")
    lr_decay: float = _f(0.2, "Factor applied at each milestone (or plateau).", "Training",
                         lo=0, hi=1, lo_open=True)
    plateau_patience: int = _f(10, "Epochs without test-loss improvement before a plateau "
                               "decay.", "Training", **_NONNEG)
    momentum: float = _f(0.9, "SGD momentum.", "Training", **_UNIT_OPEN)
    weight_decay: float = _f(5e-4, "Coupled L2 (PyTorch SGD weight_decay) on all parameters.",
                             "Training", lo=0)
    coarse_metric: str = _f("map_argmax", "Fine->coarse rule: map_argmax (published) or "
                            "sum_probs.", "Training", choices=("map_argmax", "sum_probs"))
    train_eval: bool = _f(False, "Also evaluate the un-augmented training split each epoch.",
                          "Training", trained=False)
    eval_every: int = _f(1, "Evaluate the test split every N epochs (and always at the end).",
                         "Training", trained=False, **_POS)
    steps_per_epoch: int = _f(0, "Limit steps per epoch (0: one pass over the training "
                              "split).", "Training", **_NONNEG)
    eval_steps: int = _f(0, "Limit evaluation steps (0: the whole split).", "Training",
                         trained=False, scores=True, **_NONNEG)
    seed: int = _f(0, "Seed for subsets, noise, shuffling, augmentation and initialisation.",
                   "Training", lo=0, hi=MAX_SEED)
    deterministic: bool = _f(False, "Bit-identical reruns: deterministic TensorFlow ops "
                             "(slower).", "Training", trained=False)
    on_nan: str = _f("stop", "Non-finite loss: stop (keep the last good checkpoint) or "
                     "skip_batch.", "Training", trained=False, choices=("stop", "skip_batch"))
    # analysis
    acr_every: int = _f(0, "Compute ACR on the test split every N epochs of a fine run (0: "
                        "end only).", "Analysis", trained=False, **_NONNEG)
    # system
    export_dir: str = _f("", "SavedModel directory (default: <model_dir>/export); must be new, "
                         "empty or an earlier lg_tf export.", "System", trained=False)
    strategy: str = _f("auto", "auto (multi-worker from TF_CONFIG, else mirrored), mirrored, "
                       "multi_worker, one_device.", "System", trained=False,
                       choices=("auto", "mirrored", "multi_worker", "one_device"))
    cpu_devices: int = _f(0, "Split the CPU into N logical devices (testing "
                          "MirroredStrategy).", "System", trained=False, lo=0, hi=64)
    mixed_precision: str = _f("none", "none, float16 or bfloat16 compute.", "System",
                              choices=("none", "float16", "bfloat16"))
    jit_compile: bool = _f(False, "Compile the train step with XLA.", "System", trained=False)
    overwrite: bool = _f(False, "Discard the lg_tf run in model_dir and start afresh (never "
                         "touches files lg_tf did not write).", "System", trained=False)

    @property
    def scaled_epochs(self) -> int:
        """Epochs at fraction r are epochs / r, so the number of weight updates stays constant."""
        return max(1, round(self.epochs / self.train_fraction))

    @property
    def scaled_milestones(self) -> tuple[int, ...]:
        return tuple(round(m / self.train_fraction) for m in self.lr_milestones)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def specs() -> dict[str, Spec]:
    """{field name: Spec} in declaration order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(Config)}


def trained_fields() -> tuple[str, ...]:
    """The fields that define what is trained: a run's identity."""
    return tuple(name for name, s in specs().items() if s.trained)


def result_fields() -> tuple[str, ...]:
    """The fields that define a run's reported numbers (pipelines reuse a run only if equal)."""
    return tuple(name for name, s in specs().items() if s.trained or s.scores)


# Flags that belong to a command, not to a run; shown in --help with the System group.
RUN_FLAGS = {
    "model_dir": ("", "Where checkpoints, TensorBoard logs, results.json and the export go."),
    "export_only": (False, "Export a SavedModel from model_dir's run (its config.json) and "
                           "exit."),
}


def help_groups(extra: dict | None = None) -> dict[str, dict[str, str]]:
    """{group: {flag: help}} for --help, with `choices`/bounds appended to the text."""
    out: dict[str, dict[str, str]] = {g: {} for g in GROUPS}
    for name, s in specs().items():
        text = s.help
        if s.choices:
            text += f" One of: {', '.join(s.choices)}."
        out[s.group][name] = text
    for name, (_, text) in (extra if extra is not None else RUN_FLAGS).items():
        out["System"][name] = text
    return out


# --------------------------------------------------------------------------- validation

def validate(c: Config) -> Config:
    """Raises ConfigError naming the flag; returns the config unchanged when it is usable.

    Imports no TensorFlow: the CLIs call it before loading anything.
    """
    for name, s in specs().items():
        _check_field(name, getattr(c, name), s)
    if sum(bool(x) for x in (c.hierarchy, c.coarse_zero, c.hierarchy_file)) > 1:
        _fail("give only one of --hierarchy, --coarse_zero and --hierarchy_file")
    if c.hierarchy and c.hierarchy not in hier_lib.NAMED_HIERARCHIES:
        _fail(f"--hierarchy='{c.hierarchy}' is unknown; choose one of: "
              f"{', '.join(hier_lib.NAMED_HIERARCHIES)} (or use --hierarchy_file)")
    if c.coarse_zero and c.dataset not in ("cifar10", "folder"):
        _fail("--coarse_zero only applies to CIFAR-10: --dataset=cifar10, or --dataset=folder "
              "whose class folders are the CIFAR-10 names (airplane, automobile, ...)")
    if (c.wrn_depth - 4) % 6:
        _fail(f"--wrn_depth={c.wrn_depth} must be 6n+4 (10, 16, 22, 28, 34, 40, ...)")
    if list(c.lr_milestones) != sorted(set(c.lr_milestones)) or any(
            not isinstance(m, int) or m <= 0 for m in c.lr_milestones):
        _fail(f"--lr_milestones={','.join(map(str, c.lr_milestones))} must be increasing "
              "positive epochs, e.g. 60,120,160")
    if c.extra_layer and c.granularity != "coarse":
        _fail("--extra_layer is the coarse-training ablation (Table IV); use it with "
              "--granularity=coarse")
    _check_target_fields(c)
    if c.hierarchy_file and os.path.isdir(c.hierarchy_file):
        _fail(f"--hierarchy_file='{c.hierarchy_file}' is a folder; pass a file of fine,coarse "
              "pairs (JSON or CSV) instead")
    if c.hierarchy_file and not os.path.isfile(c.hierarchy_file):
        _fail(f"--hierarchy_file='{c.hierarchy_file}' does not exist")
    if c.labels_file and os.path.isdir(c.labels_file):
        _fail(f"--labels_file='{c.labels_file}' is a folder; pass the labels.csv file written "
              "by lg_tf.discover (columns path,coarse,fine) instead")
    if c.labels_file and not os.path.isfile(c.labels_file):
        _fail(f"--labels_file='{c.labels_file}' does not exist; pass the labels.csv written "
              "by lg_tf.discover (columns path,coarse,fine)")
    if c.fine_label_fraction < 1 and c.granularity != "fine":
        _fail(f"--fine_label_fraction={c.fine_label_fraction:g} leaves some images with a "
              "coarse label only, which --granularity=fine learns from; "
              + ("coarse training uses no fine label, so drop the flag" if
                 c.granularity == "coarse" else
                 f"--granularity={c.granularity} needs every fine label"))
    if c.labels_file and c.coarse_zero:
        _fail("--labels_file brings its own fine->coarse pairs; drop --coarse_zero")
    _check_memory(c)
    return c


def _check_target_fields(c: Config) -> None:
    """A target's own setting given to another target would be silently unused (and would
    set the run apart in resume checks and run names): refused instead."""
    defaults = Config()
    for name, target in TARGET_FIELDS.items():
        if c.granularity != target and getattr(c, name) != getattr(defaults, name):
            _fail(f"--{name} only applies to --granularity={target} (this run trains "
                  f"--granularity={c.granularity}); drop it or change the target")


def _check_field(name: str, value, s: Spec) -> None:
    if s.choices:
        if value not in s.choices:
            _fail(f"--{name}='{value}' is not allowed; choose one of: {', '.join(s.choices)}")
        return
    if s.lo is None and s.hi is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"--{name}={value!r} must be a number in {s.bounds_text()}")
    if isinstance(value, float) and not math.isfinite(value):
        _fail(f"--{name}={value} must be a finite number in {s.bounds_text()}")
    low_bad = s.lo is not None and (value <= s.lo if s.lo_open else value < s.lo)
    high_bad = s.hi is not None and (value >= s.hi if s.hi_open else value > s.hi)
    if low_bad or high_bad:
        _fail(f"--{name}={value} must be in {s.bounds_text()}")


# Parameters of the published models at their published size, scaled quadratically with
# width (PreAct ResNet-18 width 64; WRN-28-10, linear in the number of blocks).
_PREACT_W64_PARAMS = 11.17e6
_WRN_28_10_PARAMS = 36.5e6


def estimated_parameters(c: Config) -> float:
    if c.model == "wide_resnet":
        return _WRN_28_10_PARAMS * (c.wrn_widen / 10) ** 2 * (c.wrn_depth - 4) / 24
    return _PREACT_W64_PARAMS * (c.width / 64) ** 2


def _check_memory(c: Config) -> None:
    """A model whose weights, gradients and momentum cannot fit in memory is refused now,
    not after the data has loaded (or by the kernel's out-of-memory killer)."""
    needed = estimated_parameters(c) * 4 * 4   # float32 weights, gradients, momentum, slack
    total = _memory_bytes()
    if total and needed > total:
        _fail(f"a {c.model} of this size has about {estimated_parameters(c) / 1e6:,.0f}M "
              f"parameters and needs about {needed / 2**30:,.0f} GiB for training, more than "
              f"this machine's {total / 2**30:,.0f} GiB; lower --width (or --wrn_widen)")


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _fail(message: str):
    raise ConfigError(message)


def check_outside_data(c: Config, path: str, flag: str) -> None:
    """Refuses an output folder at or below an image folder's --data_dir: everything lg_tf
    writes there would be read back as classes by the next run, whose error then tells the
    user to remove their own run (docs/reliability_inputs.md, D3). Checked before anything
    is written."""
    if c.dataset != "folder" or not c.data_dir or not path or "://" in path + c.data_dir:
        return
    data, out = os.path.realpath(c.data_dir), os.path.realpath(path)
    if os.path.commonpath([data, out]) == data:
        _fail(f"{flag}={path} lies inside --data_dir={c.data_dir}, so lg_tf's files would be "
              "read as image classes by the next run; choose a folder outside the data")


# --------------------------------------------------------------------------- resume rules

def differences(saved: dict, cfg: Config, fields=None) -> dict[str, tuple]:
    """{field: (saved value, new value)} over `fields` (default: all), JSON-normalised."""
    wanted = cfg.to_json()
    out = {}
    for key in fields if fields is not None else wanted:
        if key not in saved:
            continue
        old, new = saved[key], wanted[key]
        if isinstance(new, tuple):
            old, new = list(old), list(new)
        if old != new:
            out[key] = (saved[key], wanted[key])
    return out


def training_changes(saved: dict, cfg: Config) -> dict[str, tuple]:
    """The changes that would make a resumed run train something else."""
    return differences(saved, cfg, trained_fields())


def describe_changes(changes: dict[str, tuple]) -> str:
    def show(v):
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return ", ".join(f"--{k}={show(a)} -> {show(b)}" for k, (a, b) in changes.items())


# --------------------------------------------------------------------------- absl flags

def define_flags(flag_values=None, extra: dict | None = None) -> None:
    """Defines one flag per Config field plus the run flags (called by entry points only).
    Not define_tool_flags: a field's kind comes from its default, its help from its spec."""
    from absl import flags
    flag_values = flag_values if flag_values is not None else flags.FLAGS
    defaults = Config()
    items = [(n, getattr(defaults, n), s.help, s.group) for n, s in specs().items()]
    items += [(n, d, t, "System") for n, (d, t) in (extra if extra is not None
                                                      else RUN_FLAGS).items()]
    for name, value, text, group in items:
        module = f"lg_tf {group.lower()} flags"  # groups --helpfull by purpose
        kind = ("bool" if isinstance(value, bool) else "integer" if isinstance(value, int)
                else "float" if isinstance(value, float) else "list"
                if isinstance(value, tuple) else "string")
        if kind == "list":
            value = [str(v) for v in value]
        getattr(flags, f"DEFINE_{kind}")(name, value, text, module_name=module,
                                         flag_values=flag_values)


def define_tool_flags(specs: dict, flag_values=None, group: str = "tool") -> None:
    """Defines a tool's own flags, each given as name: (kind, default, help) with kind an
    absl DEFINE_ suffix ("string", "integer", "float", "bool", "list")."""
    from absl import flags
    flag_values = flag_values if flag_values is not None else flags.FLAGS
    for name, (kind, default, text) in specs.items():
        getattr(flags, f"DEFINE_{kind}")(name, default, text, flag_values=flag_values,
                                         module_name=f"lg_tf {group} flags")


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


def to_flags(cfg: Config) -> list[str]:
    """The flags that give `cfg` back through `define_flags`/`from_flags`: one per field that
    differs from its default (lists comma-joined, bools as --name/--noname, floats exact)."""
    defaults = Config()
    return [_flag(f.name, getattr(cfg, f.name)) for f in dataclasses.fields(Config)
            if getattr(cfg, f.name) != getattr(defaults, f.name)]


def _flag(name: str, value) -> str:
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if isinstance(value, (tuple, list)):
        return f"--{name}={','.join(map(str, value))}"
    if isinstance(value, float):
        return f"--{name}={value!r}"   # repr: the shortest text that reads back equal
    return f"--{name}={value}"


def from_json(d: dict) -> Config:
    """A Config from config.json (unknown keys of other versions ignored), validated."""
    d = dict(d)
    d["lr_milestones"] = tuple(d.get("lr_milestones", ()))
    known = {f.name for f in dataclasses.fields(Config)}
    try:
        return validate(Config(**{k: v for k, v in d.items() if k in known}))
    except TypeError as e:
        raise ConfigError(f"config.json does not describe an lg_tf run ({e})") from None


def read_saved(model_dir: str) -> dict | None:
    """model_dir/config.json as a dict; None when absent; ConfigError when unreadable."""
    from lg_tf import files
    path = os.path.join(model_dir, "config.json")
    if not files.exists(path):
        return None
    try:
        d = json.loads(files.read_text(path))
    except ValueError as e:
        raise ConfigError(f"{path} is damaged ({e}); restore it from a backup, or pass "
                          "--overwrite to start the run afresh") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path} is not an lg_tf config (not a JSON object)")
    return d


def load_saved(model_dir: str) -> Config | None:
    saved = read_saved(model_dir)
    return None if saved is None else from_json(saved)
