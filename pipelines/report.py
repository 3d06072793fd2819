"""The report writer: report.md (header, tables with ours next to the paper's numbers,
what the numbers show, figures, the runs), a CSV per table and a TensorBoard HParams view.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import os
import subprocess
from typing import Sequence

from lg_tf import config as config_lib
from lg_tf import files
from lg_tf import stats
from lg_tf.grid import Context, RunSpec
from pipelines import published as pub

# How a column shows its numbers: accuracies (percent, 2 decimals, an interval clipped to
# [0, 100]), signed differences in points, ACRs (3 significant digits), plain text.
KINDS = ("text", "pct", "delta", "acr")


@dataclasses.dataclass
class Column:
    name: str
    kind: str = "text"

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


@dataclasses.dataclass(frozen=True)
class Cell:
    """A cell shown as another kind than its column's (a row of differences in a table of
    accuracies)."""
    value: object
    kind: str


@dataclasses.dataclass
class Table:
    columns: list[Column]
    rows: list[list]      # one cell per column: str, stats.Interval, float, Cell or None
    title: str = ""
    csv: str = "table.csv"
    notes: list[str] = dataclasses.field(default_factory=list)


def fmt(cell, kind: str = "text") -> str:
    """A cell as text: an Interval as 'mean [low, high]' (stats.interval_text), a float as
    a number of the column's kind (a published value), anything else as str."""
    if isinstance(cell, Cell):
        return fmt(cell.value, cell.kind)
    if cell is None:
        return "—"
    if isinstance(cell, stats.Interval):
        if kind == "acr":
            return stats.interval_text(cell, 3)
        return stats.interval_text(cell, 2, signed=kind == "delta",
                                   bounds=(0.0, 100.0) if kind == "pct" else None)
    if isinstance(cell, float):
        if kind == "delta":
            return f"{cell:+.2f}"
        if kind == "acr":
            return f"{cell:g}"
        return f"{cell:.2f}"
    return str(cell)


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(c.name for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join(fmt(cell, c.kind).replace("|", "\\|")
                                       for c, cell in zip(table.columns, row)) + " |")
    return "\n".join(lines)


def clipped(table: Table) -> bool:
    """Whether an accuracy interval of the table was clipped at 0 or 100 (its note)."""
    return any("*" in fmt(cell, c.kind) for row in table.rows
               for c, cell in zip(table.columns, row)
               if isinstance(cell, stats.Interval)
               or (isinstance(cell, Cell) and isinstance(cell.value, stats.Interval)))


def csv_rows(table: Table) -> tuple[list[str], list[list]]:
    """An Interval column becomes three: <name> (the mean), <name> low, <name> high."""
    rows_in = [[c.value if isinstance(c, Cell) else c for c in row] for row in table.rows]
    wide = [any(isinstance(row[i], stats.Interval) for row in rows_in)
            for i in range(len(table.columns))]
    header = []
    for c, w in zip(table.columns, wide):
        header += [c.name, f"{c.name} low", f"{c.name} high"] if w else [c.name]
    rows = []
    for row in rows_in:
        out = []
        for cell, w in zip(row, wide):
            if isinstance(cell, stats.Interval):
                out += [round(cell.mean, 6)] + ["" if v is None else round(v, 6)
                                                 for v in (cell.low, cell.high)]
                continue
            out.append("" if cell is None else round(cell, 6) if isinstance(cell, float)
                       else cell)
            if w:
                out += ["", ""]
        rows.append(out)
    return header, rows


def write_csv(path: str, table: Table) -> None:
    header, rows = csv_rows(table)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    files.write_text_atomic(path, text.getvalue())


# --------------------------------------------------------------------------- header

def _git_revision() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not rev:
        return "unknown"
    return rev + (" (working tree with uncommitted changes)" if dirty else "")


def _hierarchy_text(cfg: config_lib.Config) -> str:
    from lg_tf.data import datasets
    try:
        h = datasets.resolve_hierarchy(cfg)
        return f"hierarchy `{h.name}` ({h.num_fine} fine → {h.num_coarse} coarse classes)"
    except Exception:  # noqa: BLE001 - a folder tree not there (dry run elsewhere)
        return "hierarchy from " + (cfg.hierarchy_file or cfg.data_dir or "the dataset")


def _model_text(cfg: config_lib.Config) -> str:
    if cfg.model == "wide_resnet":
        return f"wide_resnet {cfg.wrn_depth}-{cfg.wrn_widen} (block dropout {cfg.block_dropout:g})"
    return f"{cfg.model} width {cfg.width}"


def scale_warnings(base: config_lib.Config, ctx: Context, key: str | None,
                   in_paper: bool = True) -> list[str]:
    """Loud notes: not in the paper, scaled epochs, smaller model, partial epochs/evaluation."""
    out = []
    if key is not None and not in_paper:
        out.append(f"**Not in this table of the paper.** The paper reports this experiment for "
                   f"other datasets only; the published column says n/a for {pub.name(key)}.")
    setup = pub.setup_for(key)
    epochs = max(1, round(base.epochs * ctx.epochs_scale))
    if key is None:
        out.append("**Not in the paper — not a reproduction.** The paper has no numbers for "
                   f"`--dataset={base.dataset}`"
                   + (" (lg_shapes, the embedded procedural dataset)" if base.dataset == "embedded"
                      else "")
                   + "; the published column says so. These runs measure the same effect on "
                   "this data.")
    if ctx.epochs_scale < 1:
        out.append(f"**Scaled run — not a reproduction.** `--epochs_scale={ctx.epochs_scale:g}`: "
                   f"{epochs} epochs at fraction 1 instead of the flagfile's {base.epochs}.")
    if setup:
        smaller = []
        if base.model != setup["model"]:
            smaller.append(f"model {base.model} instead of {setup['model']}")
        for field in ("width", "wrn_depth", "wrn_widen"):
            if field in setup and getattr(base, field) < setup[field]:
                smaller.append(f"--{field}={getattr(base, field)} instead of {setup[field]}")
        if epochs < setup["epochs"]:
            smaller.append(f"{epochs} epochs instead of {setup['epochs']}")
        if smaller:
            out.append("**Scaled run — not a reproduction.** Smaller than published: "
                       + "; ".join(smaller) + f" (published: {setup['text']}).")
    if base.steps_per_epoch:
        out.append(f"**Partial epochs:** `--steps_per_epoch={base.steps_per_epoch}` — each epoch "
                   "trains on part of the training split only.")
    if base.eval_steps:
        out.append(f"**Partial evaluation:** `--eval_steps={base.eval_steps}` — test accuracy is "
                   f"measured on at most {base.eval_steps * base.eval_batch_size} test images, "
                   "not the whole test split.")
    return out


def header(title: str, base: config_lib.Config, ctx: Context, runs: dict,
           key: str | None, paper_source: str, hparams_dir: str = "",
           in_paper: bool = True, seeds_text: str = "") -> str:
    all_results = [r for rs in runs.values() for r in rs]
    params = {}
    for r in all_results:
        if r.get("parameters"):
            params.setdefault(r["config"]["granularity"], r["parameters"])
    seconds = sum(r.get("wall_time_s", 0.0) for r in all_results)
    epochs = max(1, round(base.epochs * ctx.epochs_scale))
    seeds = ctx.seed_list(base)
    lines = [f"# {title}", ""]
    for w in scale_warnings(base, ctx, key, in_paper):
        lines += [f"> ⚠ {w}", ">"]
    if lines[-1] == ">":
        lines[-1] = ""
    sched = (f"step ×{base.lr_decay:g} at epoch(s) {','.join(map(str, base.lr_milestones))}"
             if base.lr_schedule == "step" else base.lr_schedule)
    if ctx.epochs_scale != 1:
        scaled = [max(1, round(m * ctx.epochs_scale)) for m in base.lr_milestones]
        sched += f" (scaled: {','.join(map(str, sorted(set(scaled))))})"
    rows = [
        ("dataset", f"`{base.dataset}`, {_hierarchy_text(base)}"),
        ("published numbers", paper_source if key and in_paper else
         "n/a (not in this table of the paper)" if key else pub.NOT_IN_PAPER),
        ("model", _model_text(base) + (", " + " / ".join(f"{p:,} ({g})" for g, p in
                                                         sorted(params.items()))
                                       + " trainable parameters" if params else "")
         + (f"; published: {pub.setup_for(key)['text']}" if pub.setup_for(key) else "")),
        ("training", f"{epochs} epoch{'s' if epochs != 1 else ''} at fraction 1 "
                     f"(--epochs={base.epochs} × --epochs_scale="
                     f"{ctx.epochs_scale:g}; epochs scale by 1/r at fraction r), batch "
                     f"{base.batch_size}, SGD lr {base.learning_rate:g} momentum "
                     f"{base.momentum:g}, {sched}, coupled weight decay {base.weight_decay:g}"),
        ("epochs scale", f"{ctx.epochs_scale:g}"),
        ("seeds", f"{len(seeds)} ({', '.join(map(str, seeds))}); " + (
            seeds_text or "accuracies show mean [95% Student-t CI] over seeds; differences "
            "the mean of the paired per-seed differences [95% t CI]; ACR mean (min–max)")),
        ("command", f"`{ctx.command}`" if ctx.command else "(called from Python)"),
        ("runs", f"`{ctx.runs_root}` ({len(all_results)} finished runs, {seconds / 60:.1f} "
                 "min of training in total)"),
        ("HParams view", f"`tensorboard --logdir {hparams_dir or ctx.hparams_dir}`"),
        ("code", f"lg_tf git {_git_revision()}, report written "
                 f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"),
    ]
    lines += ["| | |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- runs listing

def runs_table(specs: Sequence[RunSpec], runs: dict, ctx: Context) -> Table:
    rows = []
    for s in specs:
        for r in runs.get(s.name, []):
            final = r.get("final", {})
            acr_value = final.get("test/acr")
            rows.append([
                s.name, s.label, str(r["config"]["seed"]),
                f"{100 * final['test/coarse_accuracy']:.2f}",
                (f"{100 * final['test/fine_accuracy']:.2f}" if "test/fine_accuracy" in final
                 else "—"),
                f"{acr_value:.3g}" if acr_value is not None else "—",
                str(r.get("epochs_scaled", "")), f"{r.get('wall_time_s', 0):.0f}",
                f"{r.get('images_per_second') or 0:.0f}",
            ])
    cols = ["run", "label", "seed", "test coarse acc (%)", "test fine acc (%)", "ACR",
            "epochs", "seconds", "train images/s"]
    return Table([Column(c) for c in cols], rows, title="Runs", csv="runs.csv")


# --------------------------------------------------------------------------- the report

def write_report(pipeline: str, title: str, base: config_lib.Config, ctx: Context,
                 specs: Sequence[RunSpec], runs: dict, tables: Sequence[Table],
                 findings: Sequence[str], figures: Sequence[tuple[str, str]],
                 key: str | None, paper_source: str, notes: Sequence[str] = (),
                 in_paper: bool = True, header_text: str | None = None,
                 seeds_text: str = "") -> str:
    """Writes report.md, one CSV per table (+ runs.csv) and the HParams view; returns the path."""
    files.makedirs(ctx.report_dir)
    hparams_dir = ctx.hparams_for(pipeline)
    parts = [header_text or header(title, base, ctx, runs, key, paper_source, hparams_dir,
                                   in_paper, seeds_text), ""]
    for table in tables:
        if table.title:
            parts += [f"## {table.title}", ""]
        parts += [markdown_table(table), "", f"CSV: [`{table.csv}`]({table.csv})", ""]
        table_notes = list(table.notes) + ([stats.CLIPPED_NOTE] if clipped(table) else [])
        for note in table_notes:
            parts += [f"- {note}"]
        if table_notes:
            parts.append("")
        write_csv(os.path.join(ctx.report_dir, table.csv), table)
    parts += ["## What the numbers show", ""] + [f"- {f}" for f in findings] + [""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if figures:
        parts += ["## Figures", ""]
        for name, caption in figures:
            parts += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    listing = runs_table(specs, runs, ctx)
    parts += ["## Runs", "", markdown_table(listing), ""]
    write_csv(os.path.join(ctx.report_dir, listing.csv), listing)
    path = os.path.join(ctx.report_dir, "report.md")
    files.write_text_atomic(path, "\n".join(parts).rstrip() + "\n")
    write_hparams(hparams_dir, specs, runs)
    return path


# --------------------------------------------------------------------------- hparams

def write_hparams(hparams_dir: str, specs: Sequence[RunSpec], runs: dict) -> None:
    """One HParams session per run with its final metrics (rewritten on every report)."""
    import shutil

    import tensorflow as tf

    from lg_tf import hparams

    if os.path.isdir(hparams_dir):
        shutil.rmtree(hparams_dir)
    files.makedirs(hparams_dir)
    hparams.write_config(tf.summary.create_file_writer(hparams_dir), extra_names=["run"])
    for s in specs:
        for r in runs.get(s.name, []):
            cfg = r["config"]
            metrics = dict(r.get("final", {}))
            last = [e for e in r.get("epochs", []) if "train_eval/coarse_accuracy" in e]
            if last:
                metrics["train_eval/coarse_accuracy"] = last[-1]["train_eval/coarse_accuracy"]
            folder = os.path.join(hparams_dir, s.name, f"seed_{cfg['seed']}")
            writer = tf.summary.create_file_writer(folder)
            hparams.write_run(writer, cfg, {"run": s.name}, f"{s.name}/seed_{cfg['seed']}")
            with writer.as_default():
                for m in hparams.METRICS:
                    if metrics.get(m) is not None:
                        tf.summary.scalar(m, float(metrics[m]), step=r.get("epochs_scaled", 0))
            writer.close()
