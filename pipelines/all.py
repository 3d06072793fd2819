"""Every experiment of the paper, for every dataset this machine has.

usage: python -m pipelines.all --out_dir=DIR [--only=embedded,cifar10,...] [--data_dir=DIR]
           [--seeds=N] [--epochs_scale=S] [--dry_run] [--report_dir=DIR]
           [--shard=I/N | --print_commands | --report_only]
           [lg_tf flags, applied on top of every dataset's flagfile]

Datasets: the embedded one always (flags/quickstart.cfg); CIFAR-10, CIFAR-100 (+ animals)
and the two ImageNet subsets only when TFDS has them prepared in --data_dir. Each dataset
runs the experiments the paper ran on it:

  embedded            table1 data_efficiency extra_layer dropout label_noise tsne
  cifar10             table1 data_efficiency extra_layer dropout custom_coarse label_noise tsne
  cifar100            table1 data_efficiency extra_layer num_coarse
  cifar100_animals    table1 data_efficiency extra_layer dropout
  imagenet_dog_cat    table1 data_efficiency extra_layer dropout
  imagenet_fruit_veg  table1 data_efficiency extra_layer dropout

then acr_vs_gain over all the runs (Fig. 6). Runs of one TFDS dataset share
<out_dir>/runs/<dataset>/, so a run two experiments need (Table I's fine run is Fig. 2's
r=1 and Table VII's p=0) trains once; reports go to <report_dir>/<dataset>/<experiment>/
and an index to <report_dir>/index.md. Interrupted? Run the same command again.

--shard=I/N numbers the distinct runs of all experiments (in the order above, each shared
run once) and trains those numbered I mod N; an experiment's report is written once its
runs are finished, acr_vs_gain and the index by the shard that finishes last (or by
--report_only). --print_commands prints each distinct unfinished run once.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from lg_tf import files
from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import (acr_vs_gain, custom_coarse, data_efficiency, dropout, extra_layer,
                       label_noise, num_coarse, table1, tsne)


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    flagfile: str
    tfds: str | None          # TFDS name that must be prepared (None: always available)
    experiments: tuple


PIPELINES = {"table1": table1, "data_efficiency": data_efficiency, "extra_layer": extra_layer,
             "dropout": dropout, "custom_coarse": custom_coarse, "label_noise": label_noise,
             "num_coarse": num_coarse, "tsne": tsne}

DATASETS = (
    Entry("embedded", "flags/quickstart.cfg", None,
          ("table1", "data_efficiency", "extra_layer", "dropout", "label_noise", "tsne")),
    Entry("cifar10", "flags/cifar10.cfg", "cifar10",
          ("table1", "data_efficiency", "extra_layer", "dropout", "custom_coarse",
           "label_noise", "tsne")),
    Entry("cifar100", "flags/cifar100.cfg", "cifar100",
          ("table1", "data_efficiency", "extra_layer", "num_coarse")),
    Entry("cifar100_animals", "flags/cifar100_animals.cfg", "cifar100",
          ("table1", "data_efficiency", "extra_layer", "dropout")),
    Entry("imagenet_dog_cat", "flags/imagenet_dog_cat.cfg", "imagenet2012",
          ("table1", "data_efficiency", "extra_layer", "dropout")),
    Entry("imagenet_fruit_veg", "flags/imagenet_fruit_veg.cfg", "imagenet2012",
          ("table1", "data_efficiency", "extra_layer", "dropout")),
)


def is_prepared(name: str | None, data_dir: str = "") -> bool:
    if name is None:
        return True
    import tensorflow_datasets as tfds
    try:
        return bool(tfds.builder(name, data_dir=data_dir or None).is_prepared())
    except Exception:  # noqa: BLE001 - an unreadable data_dir means: not available here
        return False


def available(data_dir: str = "", only: tuple = ()) -> tuple[list[Entry], list[str]]:
    """The entries to run, and one line per skipped dataset saying why."""
    keys = {e.key for e in DATASETS}
    unknown = [k for k in only if k not in keys]
    if unknown:
        raise grid_lib.PipelineError(f"--only={','.join(only)} names unknown dataset(s) "
                                   f"{', '.join(unknown)}; choose from {', '.join(sorted(keys))}")
    out, skipped = [], []
    for e in DATASETS:
        if only and e.key not in only:
            continue
        if is_prepared(e.tfds, data_dir):
            out.append(e)
        else:
            skipped.append(f"{e.key}: TFDS '{e.tfds}' is not prepared in "
                           f"{data_dir or '~/tensorflow_datasets'}; skipped")
    return out, skipped


def run(ctx: Context, bases: dict, entries: list[Entry] | None = None,
        experiments: dict | None = None, skipped: list[str] = ()) -> dict:
    """Runs every experiment of every entry (bases: key -> base Config), then acr_vs_gain.

    experiments: optional {key: (experiment, ...)} to run fewer (tests). --shard splits the
    distinct runs of all experiments (a run two experiments share has one owner);
    --print_commands prints them; --report_only first checks that all are finished.
    """
    entries = entries if entries is not None else [e for e in DATASETS if e.key in bases]
    todo = [(e, name) for e in entries for name in (experiments or {}).get(e.key, e.experiments)]
    out = sys.stderr if ctx.print_commands else sys.stdout   # stdout: the commands only
    for line in skipped:
        print(line, file=out, flush=True)
    if ctx.sharded or ctx.report_only or ctx.print_commands:
        distinct = plan_all(ctx, bases, todo)
        if ctx.print_commands:
            for p in distinct:
                if p.status != "done" and p.index % ctx.shard[1] == ctx.shard[0]:
                    print(grid_lib.train_command(p), flush=True)
            return {"reports": [], "index": None}
        if ctx.report_only:
            grid_lib.require_finished("all", distinct)
        if ctx.sharded:
            ctx = dataclasses.replace(ctx, shard_dirs=frozenset(
                p.model_dir for p in distinct if p.index % ctx.shard[1] == ctx.shard[0]))
    reports, planned = [], []
    for e, name in todo:
        print(f"== {e.key}: {name} ==", flush=True)
        result = PIPELINES[name].run(bases[e.key], sub_context(ctx, bases[e.key], e, name,
                                                                planned))
        if result.get("report"):
            reports.append((e.key, name, result["report"]))
    if ctx.sharded and not ctx.dry_run:
        missing = [p for p in plan_all(ctx, bases, todo) if p.status != "done"]
        if missing:
            grid_lib.log.info("all: shard %d/%d has trained its runs; %s; acr_vs_gain and the "
                            "index are written by the shard that finishes last, or by the "
                            "same command with --report_only", *ctx.shard,
                            grid_lib.missing_text(missing, len(distinct)))
            return {"reports": reports, "index": None}
        reports = written_reports(ctx, bases, todo)
    reports += final_reports(ctx)
    if ctx.dry_run:
        print(dry_run_total(planned), flush=True)
    index = None if ctx.dry_run else write_index(ctx, reports, skipped)
    return {"reports": reports, "index": index}


def sub_context(ctx: Context, base, e: Entry, name: str, planned: list) -> Context:
    """One experiment's Context: its report folder, the dataset's shared runs folder."""
    return dataclasses.replace(ctx, report_dir=os.path.join(ctx.report_dir, e.key, name),
                               runs_root=os.path.join(ctx.out_dir, "runs", base.dataset),
                               hparams_dir=os.path.join(ctx.out_dir, "hparams", e.key, name),
                               planned=planned)


def plan_all(ctx: Context, bases: dict, todo: list) -> list:
    """The distinct runs of all experiments in order of first use, numbered for --shard."""
    planned: list = []
    quiet = dataclasses.replace(ctx, collect_only=True, dry_run=False, report_only=False,
                                print_commands=False, shard=(0, 1), shard_dirs=None)
    for e, name in todo:
        PIPELINES[name].run(bases[e.key], sub_context(quiet, bases[e.key], e, name, planned))
    distinct: dict = {}
    for p in planned:
        distinct.setdefault(p.model_dir, p)
    return [dataclasses.replace(p, index=i) for i, p in enumerate(distinct.values())]


def written_reports(ctx: Context, bases: dict, todo: list) -> list:
    """Every experiment's report once all runs are finished: other shards wrote some of
    them; one whose grid was still incomplete when its shards passed is written now."""
    reports = []
    for e, name in todo:
        path = os.path.join(ctx.report_dir, e.key, name, "report.md")
        if not os.path.exists(path):
            sub = sub_context(dataclasses.replace(ctx, report_only=True, shard=(0, 1),
                                                  shard_dirs=None), bases[e.key], e, name, [])
            path = PIPELINES[name].run(bases[e.key], sub).get("report")
        if path:
            reports.append((e.key, name, path))
    return reports


def final_reports(ctx: Context) -> list:
    """acr_vs_gain over the runs of all datasets (Fig. 6)."""
    runs_dir = os.path.join(ctx.out_dir, "runs")
    sub = dataclasses.replace(ctx, report_dir=os.path.join(ctx.report_dir, "acr_vs_gain"),
                              runs_root=runs_dir,
                              hparams_dir=os.path.join(ctx.out_dir, "hparams", "acr_vs_gain"),
                              planned=[], shard=(0, 1), shard_dirs=None)
    print("== all datasets: acr_vs_gain ==", flush=True)
    if ctx.dry_run and not os.path.isdir(runs_dir):
        print(f"acr_vs_gain: {runs_dir} has no runs yet; it pairs them once they exist")
        return []
    out = acr_vs_gain.run(sub, runs_dir)
    return [("all", "acr_vs_gain", out["report"])] if out.get("report") else []


def dry_run_total(planned: list) -> str:
    """Experiments share runs: count each run folder once."""
    unique = {p.model_dir: p for p in planned}
    todo = [p for p in unique.values() if p.status != "done"]
    images = [grid_lib.planned_work(p.cfg)["images"] for p in todo]
    known = sum(i for i in images if i is not None)
    return (f"all: {len(planned)} trainings listed, {len(unique)} distinct runs "
            f"({len(planned) - len(unique)} shared between experiments); {len(todo)} to train, "
            f"{known:,} training images" + (f" (+{images.count(None)} runs of unknown size)"
                                             if None in images else ""))


def write_index(ctx: Context, reports: list, skipped) -> str:
    files.makedirs(ctx.report_dir)
    lines = ["# Reproducing the paper: every experiment", "",
             f"Command: `{ctx.command}`" if ctx.command else "", "",
             f"Seeds: {ctx.seeds}; epochs scale: {ctx.epochs_scale:g}"
             + (" — **scaled run, not a reproduction**" if ctx.epochs_scale < 1 else ""), "",
             "| dataset | experiment | report |", "|---|---|---|"]
    for key, name, path in reports:
        rel = os.path.relpath(path, ctx.report_dir)
        lines.append(f"| {key} | {name} | [{rel}]({rel}) |")
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {s}" for s in skipped]
    path = os.path.join(ctx.report_dir, "index.md")
    files.write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def config_for(flagfile: str, overrides: list[str]):
    """The Config of a flagfile with the command line's lg_tf flags on top."""
    from absl import flags

    from lg_tf import cli
    values = flags.FlagValues()
    grid_lib.define_flags(flag_values=values)
    try:
        values(["pipelines.all", *cli.expand_flagfiles([f"--flagfile={flagfile}", *overrides])])
    except flags.Error as e:
        raise grid_lib.PipelineError(f"{flagfile}: {e}") from None
    return grid_lib.base_config(values)


def _config_flag_names() -> list[str]:
    from lg_tf import config as config_lib
    return list(config_lib.specs())


EXTRA_FLAGS = {"only": ("list", [], "Run only these datasets (keys: " + ", ".join(
    e.key for e in DATASETS) + ").")}


def _main():
    from absl import flags

    from lg_tf import cli, interrupt
    from lg_tf.errors import EXIT_PREEMPTED

    grid_lib.define_flags(EXTRA_FLAGS)

    def main(rest):
        cli.check_no_arguments(rest)
        if any(a.startswith(("--flagfile", "-flagfile")) for a in sys.argv[1:]):
            cli.fail("pipelines.all picks each dataset's flagfile itself; pass only overrides "
                     "(e.g. --data_dir=DIR --epochs_scale=0.1)")
        values = flags.FLAGS
        ctx = grid_lib.context_from_flags(values)
        overrides = [values[n].serialize() for n in _config_flag_names() if values[n].present]
        entries, skipped = available(values.data_dir, tuple(values.only))
        bases = {e.key: config_for(e.flagfile, overrides) for e in entries}
        grid_lib.setup_logging(ctx, "pipelines.all")
        with interrupt.stop_on_signals():
            out = run(ctx, bases, entries, skipped=skipped)
            if out["index"]:
                print(f"index: {out['index']}")
            return EXIT_PREEMPTED if interrupt.requested() else 0

    cli.run(main, lambda argv: cli.parse_flags(argv, grid_lib.help_groups(EXTRA_FLAGS), __doc__))


if __name__ == "__main__":
    _main()
