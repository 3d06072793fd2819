"""The multi-run engine: a grid of named runs, trained resumably, split across machines.

A grid is a list of `RunSpec`s (a name plus `Config` overrides) run for `--seeds` seeds
through `train_lib.train_and_evaluate`, each in `<runs_root>/<name>/seed_<k>`. The library's
`lg_tf.advise` and every paper experiment in `pipelines/` are such grids plus a report:

* run names are canonical (`fine`, `coarse`, `fine_r0.4`, `fine_p0.01`, `coarse_extra`,
  `fine_dropout0.3`, `fine_cz0135`, `fine_h-cifar100_5`), derived from the run's config, so
  grids sharing an --out_dir share their runs (Table I's `fine` is Fig. 2's r=1.0 and
  Table VII's p=0);
* a finished run (results.json with a non-empty `final`) is skipped, an interrupted one
  resumes from its last checkpoint (train_and_evaluate does that), and a folder holding a
  run with other settings or other data is refused in one sentence;
* `--epochs_scale` multiplies the epochs and the LR milestones; the report says so;
* `--shard=I/N` runs the grid entries whose index (position in the full, seed-major planned
  list) is I mod N, so N machines sharing --out_dir split the grid; the report is written
  once every run is finished, by the last shard or by `--report_only`; `--print_commands`
  prints one `python -m lg_tf.train` line per pending run instead (Slurm arrays, Kubernetes
  indexed jobs).

`entry_point` is the command-line skeleton of every grid (flags, one-sentence errors, exit
code 75 when a signal stopped it). How the runs are judged is `lg_tf.stats`.
"""

from __future__ import annotations
import dataclasses
import functools
import logging
import math
import os
import shlex
import sys
import time
from typing import Callable, Iterable, Sequence

from lg_tf import config as config_lib
from lg_tf import files, run_dir
from lg_tf.errors import EXIT_PREEMPTED, LgTfError
from lg_tf.errors import PipelineError  # noqa: F401 - re-exported

log = logging.getLogger("lg_tf.grid")


class Stopped(LgTfError):
    """A signal stopped the grid between or inside runs; everything finished is kept."""

    exit_code = EXIT_PREEMPTED


# --------------------------------------------------------------------------- context

@dataclasses.dataclass
class Context:
    """Where a pipeline writes and how it repeats runs (the pipeline flags, as one object)."""
    out_dir: str
    seeds: int = 1
    epochs_scale: float = 1.0
    dry_run: bool = False
    command: str = ""
    report_dir: str = ""    # report.md, CSV, PNGs (default: out_dir)
    runs_root: str = ""     # the run folders (default: out_dir/runs)
    hparams_dir: str = ""   # TensorBoard HParams view (default: out_dir/hparams/<pipeline>)
    planned: list = dataclasses.field(default_factory=list, repr=False)  # dry runs add here
    shard: tuple = (0, 1)         # (I, N): run the grid entries whose index % N == I
    report_only: bool = False     # train nothing; report if every run is finished
    print_commands: bool = False  # print one lg_tf.train line per pending run; train nothing
    # Set by pipelines.all, not by flags: the runs of this shard over several grids (their
    # shared runs must have one owner), and a planning pass that adds to `planned` only.
    shard_dirs: frozenset | None = None
    collect_only: bool = False

    def __post_init__(self):
        if not self.out_dir:
            raise PipelineError("--out_dir is required: the folder for the runs and the report")
        if self.seeds < 1:
            raise PipelineError(f"--seeds={self.seeds} must be at least 1")
        if not (self.epochs_scale > 0 and math.isfinite(self.epochs_scale)):
            raise PipelineError(f"--epochs_scale={self.epochs_scale} must be a positive number, "
                                "e.g. 0.1 for a tenth of the epochs")
        if isinstance(self.shard, str):
            self.shard = parse_shard(self.shard)
        self.shard = tuple(self.shard)
        _check_modes(self)
        self.report_dir = self.report_dir or self.out_dir
        self.runs_root = self.runs_root or os.path.join(self.out_dir, "runs")

    @property
    def sharded(self) -> bool:
        return self.shard[1] > 1 or self.shard_dirs is not None

    def in_shard(self, p: Planned) -> bool:
        if self.shard_dirs is not None:
            return p.model_dir in self.shard_dirs
        return p.index % self.shard[1] == self.shard[0]

    def hparams_for(self, pipeline: str) -> str:
        return self.hparams_dir or os.path.join(self.out_dir, "hparams", pipeline)

    def seed_list(self, base: config_lib.Config) -> list[int]:
        return list(range(base.seed, base.seed + self.seeds))


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' as (I, N); '' is the whole grid, (0, 1)."""
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:   # not two parts, or not integers
        i, n = -1, 0
    if not 0 <= i < n:
        raise PipelineError(f"--shard={text} must be I/N with 0 <= I < N, e.g. 0/4 (the "
                            "first of 4 machines)")
    return (i, n)


def _check_modes(ctx: Context) -> None:
    i, n = ctx.shard
    if not (isinstance(i, int) and isinstance(n, int) and 0 <= i < n):
        raise PipelineError(f"--shard={i}/{n} must be I/N with 0 <= I < N, e.g. 0/4")
    modes = [name for name, on in (("--dry_run", ctx.dry_run), ("--report_only",
                                   ctx.report_only), ("--print_commands", ctx.print_commands))
             if on]
    if len(modes) > 1:
        raise PipelineError(f"{' and '.join(modes)} exclude each other; give only one")
    if ctx.report_only and ctx.shard != (0, 1):
        raise PipelineError("--report_only reads the whole grid; drop --shard")


def command_line() -> str:
    """The command that started this process, as one copy-pasteable line."""
    module = sys.modules["__main__"].__spec__
    head = f"python -m {module.name}" if module else f"python {sys.argv[0]}"
    return " ".join([head] + [shlex.quote(a) for a in sys.argv[1:]])


# --------------------------------------------------------------------------- the grid

@dataclasses.dataclass(frozen=True)
class RunSpec:
    name: str                     # folder name under runs_root, canonical (see run_name)
    label: str                    # for progress lines and reports, e.g. "fine r=0.4"
    overrides: tuple = ()         # ((Config field, value), ...) applied to the base config
    tags: tuple = ()              # ((key, value), ...) the report's row keys

    @property
    def tag(self) -> dict:
        return dict(self.tags)

    @property
    def granularity(self) -> str:
        return dict(self.overrides).get("granularity", "fine")


def scale_epochs(cfg: config_lib.Config, scale: float) -> config_lib.Config:
    """Epochs and LR milestones times `scale` (at least 1 epoch; milestones stay increasing)."""
    if scale == 1:
        return cfg
    epochs = max(1, round(cfg.epochs * scale))
    milestones = sorted({max(1, round(m * scale)) for m in cfg.lr_milestones})
    return dataclasses.replace(cfg, epochs=epochs, lr_milestones=tuple(milestones))


def make_config(base: config_lib.Config, spec: RunSpec, seed: int,
                epochs_scale: float = 1.0) -> config_lib.Config:
    cfg = dataclasses.replace(scale_epochs(base, epochs_scale), **dict(spec.overrides),
                              seed=seed, overwrite=False, export_dir="")
    return config_lib.validate(cfg)


def run_name(cfg: config_lib.Config) -> str:
    """Canonical folder name: granularity plus what sets the run apart from a plain one."""
    from lg_tf.data import datasets
    parts = [cfg.granularity]
    # A target's own setting is always named (a later change of its default renames nothing).
    setting = {"joint": ("lw", cfg.coarse_loss_weight), "soft_labels": ("beta", cfg.soft_beta),
               "hxe": ("alpha", cfg.hxe_alpha)}.get(cfg.granularity)
    if setting:
        parts.append(f"{setting[0]}{setting[1]:g}")
    if cfg.hierarchy and cfg.hierarchy != datasets.DATASETS[cfg.dataset].default_hierarchy:
        parts.append(f"h-{cfg.hierarchy}")
    if cfg.hierarchy_file:
        parts.append(f"hf-{os.path.splitext(os.path.basename(cfg.hierarchy_file))[0]}")
    if cfg.labels_file:
        parts.append(f"lf-{os.path.splitext(os.path.basename(cfg.labels_file))[0]}")
    if cfg.coarse_zero:
        parts.append(f"cz{cfg.coarse_zero}")
    if cfg.train_fraction != 1:
        parts.append(f"r{cfg.train_fraction:g}")
    if cfg.label_noise:
        parts.append(f"p{cfg.label_noise:g}")
    if cfg.fine_label_fraction != 1:
        parts.append(f"q{cfg.fine_label_fraction:g}")
    if cfg.dropout:
        parts.append(f"dropout{cfg.dropout:g}")
    if cfg.extra_layer:
        parts.append("extra")
    return "_".join(parts)


def spec(base: config_lib.Config, label: str, tags: dict | None = None,
         **overrides) -> RunSpec:
    """A run of the grid: `base` with `overrides`, named canonically from the result."""
    cfg = config_lib.validate(dataclasses.replace(base, **overrides))
    return RunSpec(run_name(cfg), label, tuple(sorted(overrides.items())),
                   tuple((tags or {}).items()))


# The hierarchies a multi-grouping pipeline (discovery, targets) compares by default: on the
def model_dir(ctx: Context, spec_: RunSpec, seed: int) -> str:
    return os.path.join(ctx.runs_root, spec_.name, f"seed_{seed}")


# --------------------------------------------------------------------------- run state

def result_changes(saved: dict, cfg: config_lib.Config) -> dict:
    """The differences that change a run's numbers (config.result_fields); more --epochs
    than a run has is not one (the run is extended)."""
    diff = config_lib.differences(saved, cfg, config_lib.result_fields())
    if "epochs" in diff and diff["epochs"][0] < diff["epochs"][1]:
        del diff["epochs"]
    return diff


# What selects the images and their classes (the fingerprint, the image count); seeds,
# fractions and training settings do not.
DATA_FIELDS = ("dataset", "data_dir", "hierarchy", "coarse_zero", "hierarchy_file",
               "labels_file", "holdout_fraction")


def _data_only(cfg: config_lib.Config) -> config_lib.Config:
    """`cfg` with every field but DATA_FIELDS at its default: one cache key per source."""
    return dataclasses.replace(config_lib.Config(),
                               **{f: getattr(cfg, f) for f in DATA_FIELDS})


@functools.lru_cache(maxsize=32)
def _fingerprint(data_cfg: config_lib.Config) -> str | None:
    from lg_tf.data import datasets
    try:
        return datasets.fingerprint(data_cfg)
    except Exception:  # noqa: BLE001 - unknown (e.g. TFDS not prepared): the run checks it
        return None


def data_fingerprint(cfg: config_lib.Config) -> str | None:
    """The fingerprint of the data `cfg` selects (datasets.fingerprint), computed once per
    source; None where it cannot be known without preparing the data."""
    return _fingerprint(_data_only(cfg))


def run_status(path: str, cfg: config_lib.Config) -> str:
    """'done', 'partial' (will resume) or 'todo'; raises when the folder holds another run:
    other settings, or the same settings trained on other data.

    Not run_dir.inspect_model_dir: a grid plans hundreds of runs without loading data, so it
    reads results.json alone and never takes a lock; lg_tf.train re-checks each run fully."""
    saved = files.read_json(os.path.join(path, "config.json"))
    if saved is None:
        results = files.read_json(os.path.join(path, "results.json"))
        saved = results.get("config") if results else None
    if saved is None:
        return "todo"
    diff = result_changes(saved, cfg)
    if diff:
        raise PipelineError(
            f"{path} holds a run with other settings ({config_lib.describe_changes(diff)}); "
            "use another --out_dir (or delete that folder) to run with these settings")
    _check_same_data(path, cfg)
    results = run_dir.finished_results(path)
    if results and results.get("config", {}).get("epochs", cfg.epochs) >= cfg.epochs:
        return "done"
    return "partial"


def _check_same_data(path: str, cfg: config_lib.Config) -> None:
    # Not run_dir.check_same_data: planning compares fingerprints without loading the data
    # and refuses with a PipelineError that names --out_dir.
    old = run_dir.read_marker(path).get("data_fingerprint")
    new = data_fingerprint(cfg) if old else None
    if old and new and old != new:
        where = f" --data_dir={cfg.data_dir}" if cfg.data_dir else ""
        raise PipelineError(
            f"{path} holds a run trained on other data than --dataset={cfg.dataset}{where} "
            f"(fingerprint {old}, now {new}: other classes or files); use another --out_dir "
            "for this data, or point --data_dir at the data those runs used")


# --------------------------------------------------------------------------- cost estimate

@functools.lru_cache(maxsize=32)
def _train_images(data_cfg: config_lib.Config) -> int | None:
    """Training images before --train_fraction (DatasetInfo.train_images: no decoding)."""
    from lg_tf.data import datasets
    try:  # the images' own classes: a --labels_file relabels them, it adds none
        h = datasets.source_hierarchy(data_cfg)
        return datasets.DATASETS[data_cfg.dataset].train_images(data_cfg, h)
    except Exception:  # noqa: BLE001 - a folder that is not there yet: the cost is unknown
        return None


def planned_work(cfg: config_lib.Config) -> dict:
    """Epochs, steps and images of one run, computed from the config (no data is loaded)."""
    total = _train_images(_data_only(cfg))
    train = int(total * cfg.train_fraction) if total else None
    steps = cfg.steps_per_epoch or (train // cfg.batch_size if train else None)
    epochs = cfg.scaled_epochs
    return {"epochs": epochs, "steps": steps, "train_images": train,
            "images": epochs * steps * cfg.batch_size if steps else None}


def speed_key(cfg) -> tuple:
    c = cfg if isinstance(cfg, dict) else cfg.to_json()
    return (c["dataset"], c["model"], c["width"], c["wrn_depth"], c["wrn_widen"],
            c["image_size"], c["batch_size"])


def measured_speed(roots: Iterable[str]) -> dict:
    """{speed_key: (seconds per training image, evaluation included; finished runs)}."""
    found: dict = {}
    for root in roots:
        if not os.path.isdir(root):
            continue
        for folder, _, names in os.walk(root):
            if "results.json" not in names:
                continue
            res = run_dir.finished_results(folder)
            if not res or not res.get("wall_time_s"):
                continue
            cfg = res["config"]
            steps = cfg.get("steps_per_epoch") or (
                res.get("data", {}).get("train_examples", 0) // cfg["batch_size"])
            images = res.get("epochs_scaled", 0) * steps * cfg["batch_size"]
            if images:
                found.setdefault(speed_key(cfg), []).append(res["wall_time_s"] / images)
    return {k: (sum(v) / len(v), len(v)) for k, v in found.items()}


# --------------------------------------------------------------------------- the runner

@dataclasses.dataclass
class Planned:
    spec: RunSpec
    seed: int
    cfg: config_lib.Config
    model_dir: str
    status: str
    index: int = 0      # position in the full planned list: what --shard splits on


def plan(base: config_lib.Config, specs: Sequence[RunSpec], ctx: Context) -> list[Planned]:
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PipelineError(f"the grid names run(s) {', '.join(dupes)} twice")
    out = []
    for seed in ctx.seed_list(base):       # seed-major: a stopped grid has whole seeds
        for s in specs:
            cfg = make_config(base, s, seed, ctx.epochs_scale)
            path = model_dir(ctx, s, seed)
            out.append(Planned(s, seed, cfg, path, run_status(path, cfg), len(out)))
    return out


def describe_plan(title: str, planned: Sequence[Planned], ctx: Context) -> str:
    """The dry-run listing: one line per run, then totals and the estimated time."""
    speeds = measured_speed([ctx.runs_root])
    lines = [f"{title}: {len({p.spec.name for p in planned})} runs x {ctx.seeds} seed(s) = "
             f"{len(planned)} trainings (epochs_scale {ctx.epochs_scale:g}); runs in "
             f"{ctx.runs_root}",
             f"  {'#':>3}  {'run':<28} {'label':<26} {'seed':>4} {'epochs':>6} {'steps':>6} "
             f"{'batch':>5} {'images':>11}  status"]
    todo_images, unknown, seconds, rate_runs = 0, 0, 0.0, 0
    for p in planned:
        work = planned_work(p.cfg)
        images = work["images"]
        lines.append(f"  {p.index + 1:>3}  {p.spec.name:<28} {p.spec.label:<26} {p.seed:>4} "
                     f"{work['epochs']:>6} {work['steps'] or '?':>6} {p.cfg.batch_size:>5} "
                     f"{images if images is not None else '?':>11}  {p.status}")
        if p.status == "done":
            continue
        if images is None:
            unknown += 1
            continue
        todo_images += images
        rate, count = speeds.get(speed_key(p.cfg), (None, 0))
        if rate is None:
            unknown += 1
        else:
            seconds += rate * images
            rate_runs = max(rate_runs, count)
    todo = sum(p.status != "done" for p in planned)
    lines.append(f"  to train: {todo} of {len(planned)} runs, {todo_images:,} training images")
    if todo == 0:
        lines.append("  estimated time: 0 s (every run is finished; the report is rebuilt)")
    elif unknown:
        lines.append(f"  estimated time: unknown ({unknown} run(s) without a measured speed: no "
                     "finished run with this dataset, model and batch size in "
                     f"{ctx.runs_root} yet)" + (f"; the others ~{_duration(seconds)}"
                                                 if seconds else ""))
    else:
        lines.append(f"  estimated time: ~{_duration(seconds)} (speed measured on {rate_runs} "
                     "finished run(s) of the same dataset, model and batch size, evaluation "
                     "included; setup and export add some seconds per run)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def execute(name: str, base, specs, ctx, write) -> dict:
    """Runs a pipeline's grid (or lists it, or prints its commands), then writes its report
    via `write` once every run of the grid is finished."""
    runs = run_grid(name, base, specs, ctx)
    report = None if runs is None else write(base, ctx, specs, runs)
    return {"specs": specs, "runs": runs, "report": report}


def print_report(out: dict) -> None:
    if out["report"]:
        print(f"report: {out['report']}")


def run_grid(title: str, base: config_lib.Config, specs: Sequence[RunSpec],
             ctx: Context) -> dict[str, list[dict]] | None:
    """Trains this shard's unfinished runs; returns {run name: [results per seed]} once every
    run of the grid is finished, else None (--dry_run, --print_commands, runs left to other
    shards). --report_only trains nothing and raises while runs are missing."""
    for flag, path in (("--out_dir", ctx.out_dir), ("--report_dir", ctx.report_dir)):
        config_lib.check_outside_data(base, path, flag)
    planned = plan(base, specs, ctx)
    mine = [p for p in planned if ctx.in_shard(p)]
    if ctx.collect_only:
        ctx.planned.extend(planned)
        return None
    if ctx.dry_run:
        print(describe_plan(title + shard_note(ctx, mine, planned), mine, ctx), flush=True)
        ctx.planned.extend(mine)
        return None
    if ctx.print_commands:
        print_commands(title, mine, ctx)
        return None
    if ctx.report_only:
        require_finished(title, planned)
        return collect(specs, planned, {})
    done = train_share(mine)
    missing = [p for p in planned if p.model_dir not in done and not is_done(p)]
    if missing:
        log.info("%s: shard %d/%d has trained its %d run(s); %s; the report is written by the "
                 "shard that finishes last, or by the same command with --report_only",
                 title, *ctx.shard, len(mine), missing_text(missing, len(planned)))
        return None
    return collect(specs, planned, done)


def shard_note(ctx: Context, mine: Sequence[Planned], planned: Sequence[Planned]) -> str:
    if not ctx.sharded:
        return ""
    return f" (shard {ctx.shard[0]}/{ctx.shard[1]}: {len(mine)} of {len(planned)} trainings)"


def train_share(planned: Sequence[Planned]) -> dict[str, dict]:
    """Trains (or skips, when finished) each planned run in order: {model_dir: results}."""
    from lg_tf import interrupt, train_lib
    out: dict[str, dict] = {}
    total = len(planned)
    for i, p in enumerate(planned, 1):
        head = f"run {i}/{total} {p.spec.label} seed {p.seed}"
        if interrupt.requested():
            raise Stopped(f"{interrupt.requested()} received before {head}; re-run the same "
                          "command to resume the grid")
        if p.status == "done":
            results = run_dir.finished_results(p.model_dir)
            log.info("%s: finished earlier, skipped (%s) [%s]", head, headline(results),
                     p.model_dir)
        else:
            work = planned_work(p.cfg)
            log.info("%s: %s %d epochs x %s steps -> %s", head,
                     "resuming" if p.status == "partial" else "training", work["epochs"],
                     work["steps"] or "?", p.model_dir)
            start = time.perf_counter()
            results = train_lib.train_and_evaluate(p.cfg, p.model_dir)
            if results.get("stopped"):
                raise Stopped(f"{head}: {results['stopped']}; re-run the same command to "
                              "resume the grid")
            log.info("%s: done in %.0f s (%s)", head, time.perf_counter() - start,
                     headline(results))
        out[p.model_dir] = {**results, "model_dir": p.model_dir}
    return out


def is_done(p: Planned) -> bool:
    """Finished now: another shard may have finished it since it was planned."""
    return run_status(p.model_dir, p.cfg) == "done"


def collect(specs: Sequence[RunSpec], planned: Sequence[Planned],
            results: dict[str, dict]) -> dict[str, list[dict]]:
    """{run name: [results per seed]}, from `results` or else from the finished run folders."""
    out: dict[str, list[dict]] = {s.name: [] for s in specs}
    for p in planned:
        out[p.spec.name].append(results.get(p.model_dir) or run_dir.finished_results(p.model_dir))
    return out


def missing_text(missing: Sequence[Planned], total: int, show: int = 3) -> str:
    """'2 of 8 runs are not finished (dir, dir)': the count and the first few folders."""
    more = f" and {len(missing) - show} more" if len(missing) > show else ""
    return (f"{len(missing)} of {total} runs are not finished "
            f"({', '.join(p.model_dir for p in missing[:show])}{more})")


def require_finished(title: str, planned: Sequence[Planned]) -> None:
    """--report_only: every run must be finished, else one sentence saying what to run."""
    missing = [p for p in planned if p.status != "done"]
    if missing:
        raise PipelineError(f"{title}: {missing_text(missing, len(planned))}; run the shards "
                            "(--shard=I/N on each machine) or the same command without "
                            "--report_only first, then --report_only again")


def train_command(p: Planned) -> str:
    """The lg_tf.train command line that trains exactly this run into its folder."""
    args = ["python", "-m", "lg_tf.train", *config_lib.to_flags(p.cfg),
            f"--model_dir={p.model_dir}"]
    return " ".join(shlex.quote(a) for a in args)


def print_commands(title: str, planned: Sequence[Planned], ctx: Context) -> None:
    """One line per unfinished run on stdout, nothing else (logs go to stderr)."""
    pending = [p for p in planned if p.status != "done"]
    for p in pending:
        print(train_command(p), flush=True)
    where = f" of shard {ctx.shard[0]}/{ctx.shard[1]}" if ctx.sharded else ""
    log.info("%s: printed the commands of the %d unfinished of %d run(s)%s; once they are "
             "finished, the same command with --report_only writes the report", title,
             len(pending), len(planned), where)


def by_seed(results: Sequence[dict], key: str = "test/coarse_accuracy",
            scale: float = 100.0) -> dict[int, float]:
    """{seed: final metric x scale} of one run's seeds (accuracies in percent by default),
    for pairing runs seed by seed; runs without the metric are left out."""
    return {r["config"]["seed"]: scale * r["final"][key] for r in results
            if r and r.get("final", {}).get(key) is not None}


def float_list(values: Sequence[str], flag: str, example: str, low: float = 0.0,
               high: float = 1.0, low_open: bool = True) -> list[float]:
    """A list flag of numbers in [low, high] ((low, high] with low_open), e.g. --fractions;
    refused in one sentence naming the flag otherwise."""
    try:
        out = [float(v) for v in values]
    except ValueError:
        out = None
    ok = bool(out) and all(math.isfinite(v) and (v > low if low_open else v >= low)
                           and v <= high for v in out)
    if not ok:
        left = "(" if low_open else "["
        raise PipelineError(f"--{flag}={','.join(map(str, values))} must be numbers in "
                            f"{left}{low:g}, {high:g}], e.g. {example}")
    return sorted(set(out))


def headline(results: dict) -> str:
    final = results.get("final", {})
    parts = [f"test coarse {final['test/coarse_accuracy']:.4f}"]
    if final.get("test/acr") is not None:
        parts.append(f"ACR {final['test/acr']:.3g}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- flags and main

PIPELINE_HELP = {
    "out_dir": "Folder for the runs (<out_dir>/runs/<run>/seed_<k>), the HParams view "
               "(<out_dir>/hparams/<pipeline>) and, unless --report_dir, the report.",
    "report_dir": "Folder for report.md, the CSV and the PNGs (default: --out_dir).",
    "seeds": "Seeds per run: --seed, --seed+1, ... (default 0..N-1); the report shows "
             "mean [95% CI] and paired FC − CC intervals.",
    "epochs_scale": "Multiplies --epochs and the LR milestones (0.1: a tenth); the report "
                    "says so, and below 1 calls it a scaled run.",
    "dry_run": "Print the grid and an estimated cost; train nothing.",
    "shard": "I/N: run only the grid entries whose index is I mod N (0/4 ... 3/4 on four "
             "machines sharing --out_dir); the shard that finishes last writes the report.",
    "report_only": "Train nothing; write the report if every run of the grid is finished, "
                   "else name the missing runs (after the shards).",
    "print_commands": "Print one `python -m lg_tf.train ... --model_dir=...` line per "
                      "unfinished run (of --shard) and nothing else on stdout; train nothing.",
}


# The flags every pipeline has: name: (kind, default, help), as config.define_tool_flags takes.
PIPELINE_FLAGS = {name: (kind, default, PIPELINE_HELP[name]) for name, kind, default in (
    ("out_dir", "string", ""), ("report_dir", "string", ""), ("seeds", "integer", 1),
    ("epochs_scale", "float", 1.0), ("dry_run", "bool", False), ("shard", "string", ""),
    ("report_only", "bool", False), ("print_commands", "bool", False))}


def define_flags(extra: dict | None = None, flag_values=None) -> None:
    """lg_tf's flags plus the pipeline flags (call once, from the entry point)."""
    from absl import flags
    values = flag_values if flag_values is not None else flags.FLAGS
    config_lib.define_flags(values)  # --model_dir too: flagfiles set it; pipelines ignore it
    config_lib.define_tool_flags({**PIPELINE_FLAGS, **(extra or {})}, values, "pipeline")


def help_groups(extra: dict | None = None) -> dict:
    pipeline = dict(PIPELINE_HELP)
    pipeline.update({k: v[2] for k, v in (extra or {}).items()})
    return {"Pipeline": pipeline, **config_lib.help_groups()}


def base_config(values) -> config_lib.Config:
    """The flags' Config, with what a pipeline decides itself refused up front."""
    if values["export_dir"].present and values.export_dir:
        raise PipelineError("--export_dir does not apply to pipelines: every run exports into "
                            "its own folder (<out_dir>/runs/<run>/seed_<k>/export)")
    if values.overwrite:
        raise PipelineError("--overwrite does not apply to pipelines: finished runs are reused; "
                            "use a new --out_dir (or delete a run's folder) to train it again")
    return config_lib.from_flags(values)


def context_from_flags(values, **kwargs) -> Context:
    """The pipeline flags as a Context; a bad --shard is refused here, before TensorFlow."""
    return Context(out_dir=values.out_dir, seeds=values.seeds, epochs_scale=values.epochs_scale,
                   dry_run=values.dry_run, command=command_line(),
                   report_dir=values.report_dir, shard=parse_shard(values.shard),
                   report_only=values.report_only, print_commands=values.print_commands,
                   **kwargs)


def setup_logging(ctx: Context, command: str) -> None:
    """The CLI's logging; with --print_commands stdout holds the commands only, so the
    progress lines move to stderr."""
    from lg_tf import cli
    cli.setup_logging(command)
    if ctx.print_commands:
        for handler in logging.getLogger("lg_tf").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)


def entry_point(doc: str, body: Callable, extra_flags: dict | None = None,
                argv: list[str] | None = None, defaults: dict | None = None) -> None:
    """Defines the flags, parses them (one-sentence errors) and calls body(FLAGS, base, ctx).

    Exits 75 (errors.EXIT_PREEMPTED) when a signal stopped the grid: re-run to resume.
    """
    from absl import flags

    from lg_tf import cli, interrupt
    from lg_tf.errors import EXIT_PREEMPTED

    define_flags(extra_flags)
    for name, value in (defaults or {}).items():
        flags.FLAGS.set_default(name, value)

    def main(rest):
        cli.check_no_arguments(rest)
        values = flags.FLAGS
        base = base_config(values)      # validated before TensorFlow is imported
        ctx = context_from_flags(values)
        setup_logging(ctx, "pipelines")
        with interrupt.stop_on_signals():
            body(values, base, ctx)
            return EXIT_PREEMPTED if interrupt.requested() else 0

    cli.run(main, lambda a: cli.parse_flags(a, help_groups(extra_flags), doc), argv)
