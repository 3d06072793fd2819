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

from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.common import Context
from pipelines.report import Column, Table

NAME = "table1"
TITLE = "Table I — training on coarse vs fine labels, tested on coarse labels"


def prepare(base):
    """Table I reports training accuracy: log the un-augmented training split every epoch."""
    return dataclasses.replace(base, train_eval=True)


def grid(base) -> list[common.RunSpec]:
    return [common.spec(base, "CC coarse", {"series": "CC"}, granularity="coarse"),
            common.spec(base, "FC fine", {"series": "FC"}, granularity="fine")]


def run(base, ctx: Context) -> dict:
    base = prepare(base)
    specs = grid(base)
    return common.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    from lg_tf.data import datasets
    key = pub.key(base)
    h = datasets.resolve_hierarchy(base)
    paper = pub.TABLE1.get(key or "", {})
    by_series = {s.tag["series"]: runs[s.name] for s in specs}
    cc, fc = by_series["CC"], by_series["FC"]
    label = pub.name(key, f"{base.dataset} ({h.name})")
    rows = []
    stats = {}
    for series, results, n_train, gran in (("CC", cc, h.num_coarse, "coarse"),
                                            ("FC", fc, h.num_fine, "fine")):
        p = paper.get(gran, {})
        test = common.test_acc(results)
        stats[series] = test
        acr_cell = common.acr(results) if series == "FC" else "—"
        if series == "FC" and not acr_cell.ok and common.acr_reason(results):
            acr_cell = f"undefined ({common.acr_reason(results)})"
        rows.append([label, series, str(n_train), str(h.num_coarse),
                     common.train_acc(results), common.paper_cell(key, p.get("train")),
                     test, common.paper_cell(key, p.get("test")),
                     common.versus(test, common.paper_cell(key, p.get("test"))),
                     acr_cell, common.paper_cell(key, p.get("acr"), "acr")
                     if series == "FC" else "—"])
    gain = common.difference(stats["FC"], stats["CC"])
    paper_gain = (common.Stat(paper["fine"]["test"] - paper["coarse"]["test"], None, 0, "delta")
                  if paper else (pub.NOT_IN_PAPER if key is None else "n/a"))
    rows.append([label, "ΔA_test = FC − CC", "", "", "", "", gain, paper_gain,
                 common.versus(gain, paper_gain), "", ""])
    table = Table([Column("dataset"), Column("series"), Column("# training classes"),
                   Column("# testing classes"), Column("train acc (%) ours", std=True),
                   Column("train acc (%) paper"), Column("test acc (%) ours", std=True),
                   Column("test acc (%) paper"), Column("test: ours − paper"),
                   Column("ACR ours", std=True), Column("ACR paper")],
                  rows, title="Table I", csv="table1.csv",
                  notes=["train acc = coarse accuracy on the un-augmented training split after "
                         "the last epoch (`train_eval/coarse_accuracy`); test acc = coarse "
                         "accuracy on the test split; ACR of the fine-trained model's test "
                         "confusion matrix (column-normalised, as published)."])
    findings = [common.verdict(stats["FC"], stats["CC"]),
                common.contrast(common.train_acc(fc), common.train_acc(cc),
                                "FC train", "CC train", "Training split: ")]
    seeds = common.per_seed_gains(fc, cc)
    if len(seeds) > 1:
        findings.append("ΔA_test per seed: " + ", ".join(f"seed {k}: {d:+.2f}" for k, d in seeds)
                        + f" — FC ahead in {sum(d > 0 for _, d in seeds)} of {len(seeds)}.")
    if isinstance(paper_gain, common.Stat):
        findings.append(f"The paper reports ΔA_test = {paper_gain.mean:+.2f} points for {label} "
                        f"(FC {paper['fine']['test']:.2f}% vs CC {paper['coarse']['test']:.2f}%).")
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
    common.print_report(run(base, ctx))


if __name__ == "__main__":
    common.entry_point(__doc__, main)
