"""Table IV: coarse training with an extra fully-connected layer vs the baselines.

usage: python -m pipelines.extra_layer --flagfile=flags/<dataset>.cfg --out_dir=DIR
           [--seeds=N] [--epochs_scale=S] [--dry_run] [--report_dir=DIR] [lg_tf flags]

Three runs per seed: the baseline CNN trained on fine labels (F), on coarse labels (C), and
the CNN with one more fully-connected layer (pooled features -> n_fine units -> n_coarse, no
nonlinearity, as published) trained on coarse labels. Writes report.md with training and
test accuracy and their change against the baseline C, next to the paper's Table IV,
extra_layer.csv and a bar chart.
"""

from __future__ import annotations

import dataclasses
import os

from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.common import Context, Stat
from pipelines.report import Column, Table

NAME = "extra_layer"
TITLE = "Table IV — more non-linearity for coarse training: the extra layer"


def prepare(base):
    return dataclasses.replace(base, train_eval=True)   # Table IV reports training accuracy


def grid(base) -> list[common.RunSpec]:
    return [common.spec(base, "F baseline", {"row": "fine"}, granularity="fine",
                        extra_layer=False),
            common.spec(base, "C baseline", {"row": "coarse"}, granularity="coarse",
                        extra_layer=False),
            common.spec(base, "C extra layer", {"row": "coarse_extra"}, granularity="coarse",
                        extra_layer=True)]


def run(base, ctx: Context) -> dict:
    base = prepare(base)
    specs = grid(base)
    return common.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    res = {s.tag["row"]: runs[s.name] for s in specs}
    t4 = pub.TABLE4.get(key or "", {})
    t1 = pub.TABLE1.get(key or "", {})
    paper = {"fine": t4.get("fine"),
             "coarse": (t1["coarse"]["train"], t1["coarse"]["test"]) if t1 else None,
             "coarse_extra": t4.get("coarse_extra")}
    train = {k: common.train_acc(v) for k, v in res.items()}
    test = {k: common.test_acc(v) for k, v in res.items()}
    rows = []
    names = {"fine": ("Baseline CNN", "F"), "coarse": ("Baseline CNN", "C"),
             "coarse_extra": ("Extra layer", "C")}
    for k in ("fine", "coarse", "coarse_extra"):
        p = paper[k]
        p_train = common.paper_cell(key, p and p[0])
        p_test = common.paper_cell(key, p and p[1])
        base_p = paper["coarse"]
        rows.append([label, *names[k], train[k], p_train,
                     common.difference(train[k], train["coarse"]) if k != "coarse" else "",
                     common.paper_cell(key, p[0] - base_p[0] if p and base_p else None, "delta")
                     if k != "coarse" else "",
                     test[k], p_test,
                     common.difference(test[k], test["coarse"]) if k != "coarse" else "",
                     common.paper_cell(key, p[1] - base_p[1] if p and base_p else None, "delta")
                     if k != "coarse" else "",
                     common.versus(test[k], p_test)])
    table = Table([Column("dataset"), Column("CNN arch"), Column("train label"),
                   Column("train acc (%) ours", std=True), Column("train acc (%) paper"),
                   Column("train Δ vs baseline C, ours", std=True),
                   Column("train Δ vs baseline C, paper"),
                   Column("test acc (%) ours", std=True), Column("test acc (%) paper"),
                   Column("test Δ vs baseline C, ours", std=True),
                   Column("test Δ vs baseline C, paper"), Column("test: ours − paper")],
                  rows, title="Table IV: extra fully-connected layer under coarse training",
                  csv="extra_layer.csv",
                  notes=["The baseline C row is Table I's coarse run (the paper's Table IV "
                         "gives its numbers as the reference of the Δ columns)."])
    findings = [
        common.contrast(test["coarse_extra"], test["coarse"], "C extra layer", "C baseline",
                        "Test, extra layer vs plain coarse: "),
        common.contrast(test["fine"], test["coarse_extra"], "F baseline", "C extra layer",
                        "Test, fine training vs the extra layer: "),
        common.contrast(train["coarse_extra"], train["coarse"], "C extra layer", "C baseline",
                        "Training split, extra layer vs plain coarse: "),
    ]
    if t4:
        findings.append("The paper: the extra layer changes coarse test accuracy by "
                        f"{t4['coarse_extra'][1] - t1['coarse']['test']:+.2f} points on "
                        f"{label}, and fine training stays ahead ({t4['fine'][1]:.2f}% vs "
                        f"{t4['coarse_extra'][1]:.2f}%).")
    groups = ["F baseline", "C baseline", "C extra layer"]
    series = {"test, ours": [test[k] for k in ("fine", "coarse", "coarse_extra")],
              "train, ours": [train[k] for k in ("fine", "coarse", "coarse_extra")]}
    if t4:
        series["test, paper"] = [Stat(paper[k][1], None, 0) for k in
                                 ("fine", "coarse", "coarse_extra")]
    figure = plots.bars(os.path.join(ctx.report_dir, "extra_layer.png"), groups, series,
                        f"{label}: extra layer (Table IV), mean ± std over {ctx.seeds} seed(s)",
                        "coarse accuracy (%)",
                        {"test, ours": plots.FINE, "train, ours": "#ff9896",
                         "test, paper": plots.PAPER})
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], findings,
        [(os.path.basename(figure), "Coarse accuracy of the three CNNs (test and training "
          "split; the paper's test numbers hatched when it has them).")],
        key, "Table IV (and Table I for the baseline C) of the paper", in_paper=bool(t4))


def main(values, base, ctx):
    common.print_report(run(base, ctx))


if __name__ == "__main__":
    common.entry_point(__doc__, main)
