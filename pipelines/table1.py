"""Table I: coarse-trained (CC) vs fine-trained (FC) CNN, tested on coarse labels.

usage: python -m pipelines.table1 --flagfile=flags/<dataset>.cfg --out_dir=DIR
           [--seeds=N] [--epochs_scale=S] [--dry_run] [--report_dir=DIR] [lg_tf flags]

Trains the flagfile's dataset twice per seed (--granularity=coarse and fine, with
--train_eval so the training-split accuracy is logged) and writes report.md with training
accuracy (last epoch), test accuracy and ACR next to the paper's Table I, table1.csv and the
training curves (curves.png, Fig. 3 style).
"""

from __future__ import annotations

import dataclasses
import os

from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Cell, Column, Table

NAME = "table1"
TITLE = "Table I — training on coarse vs fine labels, tested on coarse labels"


def prepare(base):
    """Table I reports training accuracy: log the un-augmented training split every epoch."""
    return dataclasses.replace(base, train_eval=True)


def grid(base) -> list[grid_lib.RunSpec]:
    return [grid_lib.spec(base, "CC coarse", {"series": "CC"}, granularity="coarse"),
            grid_lib.spec(base, "FC fine", {"series": "FC"}, granularity="fine")]


def run(base, ctx: Context) -> dict:
    base = prepare(base)
    specs = grid(base)
    return grid_lib.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    from lg_tf.data import datasets
    key = pub.key(base)
    h = datasets.resolve_hierarchy(base)
    paper = pub.TABLE1.get(key or "", {})
    by_series = {s.tag["series"]: runs[s.name] for s in specs}
    cc, fc = by_series["CC"], by_series["FC"]
    label = pub.name(key, f"{base.dataset} ({h.name})")
    rows = []
    for series, results, n_train, gran in (("CC", cc, h.num_coarse, "coarse"),
                                            ("FC", fc, h.num_fine, "fine")):
        p = paper.get(gran, {})
        test = common.accuracy(results)
        p_test = common.paper_cell(key, p.get("test"))
        rows.append([label, series, str(n_train), str(h.num_coarse),
                     common.train_accuracy(results), common.paper_cell(key, p.get("train")),
                     test, p_test, common.versus(test, p_test),
                     common.acr_cell(results) if series == "FC" else "—",
                     common.paper_cell(key, p.get("acr")) if series == "FC" else "—"])
    gain = common.gain(fc, cc)
    paper_gain = (paper["fine"]["test"] - paper["coarse"]["test"] if paper
                  else (pub.NOT_IN_PAPER if key is None else "n/a"))
    rows.append([label, "ΔA = FC − CC (paired)", "", "", "", "", Cell(gain, "delta"),
                 Cell(paper_gain, "delta"), common.versus(gain, paper_gain), "", ""])
    table = Table([Column("dataset"), Column("series"), Column("# training classes"),
                   Column("# testing classes"), Column("train acc (%) ours", "pct"),
                   Column("train acc (%) paper", "pct"), Column("test acc (%) ours", "pct"),
                   Column("test acc (%) paper", "pct"),
                   Column("test: ours − paper", "delta"),
                   Column("ACR ours: mean (min–max)"), Column("ACR paper", "acr")],
                  rows, title="Table I", csv="table1.csv",
                  notes=["train acc = coarse accuracy on the un-augmented training split after "
                         "the last epoch (`train_eval/coarse_accuracy`); test acc = coarse "
                         "accuracy on the test split; ACR of the fine-trained model's test "
                         "confusion matrix (column-normalised, as published). The ΔA row is "
                         "the mean of the per-seed paired differences [95% t CI]; its sign "
                         "sits in the test columns."])
    findings = [common.verdict(gain, prefix="Test split: "),
                common.verdict(common.gain(fc, cc, common.TRAIN_SPLIT),
                               prefix="Training split (last epoch): ")]
    findings[0] += common.per_seed_text(fc, cc)
    if isinstance(paper_gain, float):
        findings.append(f"The paper reports ΔA = {paper_gain:+.2f} points for {label} "
                        f"(FC {paper['fine']['test']:.2f}% vs CC {paper['coarse']['test']:.2f}%"
                        ", one run each, 100% of the data).")
    figure = plots.curves(os.path.join(ctx.report_dir, "curves.png"),
                          [("FC", plots.FINE, fc), ("CC", plots.COARSE, cc)],
                          f"{label}: coarse accuracy per epoch (Fig. 3 style; mean over "
                          f"{ctx.seeds} seed(s))")
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], findings,
        [(os.path.basename(figure), "Coarse accuracy per epoch: fine-trained (red) vs "
          "coarse-trained (blue); test solid, training split dotted (paper's Fig. 3 style).")],
        key, "Table I of the paper")


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main)
