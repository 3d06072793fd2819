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

from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "extra_layer"
TITLE = "Table IV — more non-linearity for coarse training: the extra layer"
ROWS = {"fine": ("Baseline CNN", "F"), "coarse": ("Baseline CNN", "C"),
        "coarse_extra": ("Extra layer", "C")}


def prepare(base):
    return dataclasses.replace(base, train_eval=True)   # Table IV reports training accuracy


def grid(base) -> list[grid_lib.RunSpec]:
    return [grid_lib.spec(base, "F baseline", {"row": "fine"}, granularity="fine",
                          extra_layer=False),
            grid_lib.spec(base, "C baseline", {"row": "coarse"}, granularity="coarse",
                          extra_layer=False),
            grid_lib.spec(base, "C extra layer", {"row": "coarse_extra"}, granularity="coarse",
                          extra_layer=True)]


def run(base, ctx: Context) -> dict:
    base = prepare(base)
    specs = grid(base)
    return grid_lib.execute(NAME, base, specs, ctx, write)


def _paper(key) -> dict:
    """(train, test) per row as published: Table IV, and Table I for the baseline C."""
    t4, t1 = pub.TABLE4.get(key or "", {}), pub.TABLE1.get(key or "", {})
    return {"fine": t4.get("fine"),
            "coarse": (t1["coarse"]["train"], t1["coarse"]["test"]) if t1 else None,
            "coarse_extra": t4.get("coarse_extra")}


def write(base, ctx: Context, specs, runs: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    res = {s.tag["row"]: runs[s.name] for s in specs}
    paper = _paper(key)
    test = {k: common.accuracy(v) for k, v in res.items()}
    rows = []
    for k in ("fine", "coarse", "coarse_extra"):
        p, base_p = paper[k], paper["coarse"]
        rows.append([label, *ROWS[k], common.train_accuracy(res[k]),
                     common.paper_cell(key, p and p[0]),
                     common.gain(res[k], res["coarse"], common.TRAIN_SPLIT)
                     if k != "coarse" else "",
                     common.paper_cell(key, p[0] - base_p[0] if p and base_p else None)
                     if k != "coarse" else "",
                     test[k], common.paper_cell(key, p and p[1]),
                     common.gain(res[k], res["coarse"]) if k != "coarse" else "",
                     common.paper_cell(key, p[1] - base_p[1] if p and base_p else None)
                     if k != "coarse" else "",
                     common.versus(test[k], common.paper_cell(key, p and p[1]))])
    table = Table([Column("dataset"), Column("CNN arch"), Column("train label"),
                   Column("train acc (%) ours", "pct"), Column("train acc (%) paper", "pct"),
                   Column("train Δ vs baseline C, ours", "delta"),
                   Column("train Δ vs baseline C, paper", "delta"),
                   Column("test acc (%) ours", "pct"), Column("test acc (%) paper", "pct"),
                   Column("test Δ vs baseline C, ours", "delta"),
                   Column("test Δ vs baseline C, paper", "delta"),
                   Column("test: ours − paper", "delta")],
                  rows, title="Table IV: extra fully-connected layer under coarse training",
                  csv="extra_layer.csv",
                  notes=["The baseline C row is Table I's coarse run (the paper's Table IV "
                         "gives its numbers as the reference of the Δ columns). Δ columns: "
                         "the mean of the per-seed paired differences [95% t CI]."])
    findings = [
        common.contrast(common.gain(res["coarse_extra"], res["coarse"]), "C extra layer",
                        "C baseline", "Test, extra layer vs plain coarse: "),
        common.contrast(common.gain(res["fine"], res["coarse_extra"]), "F baseline",
                        "C extra layer", "Test, fine training vs the extra layer: "),
        common.contrast(common.gain(res["coarse_extra"], res["coarse"], common.TRAIN_SPLIT),
                        "C extra layer", "C baseline",
                        "Training split, extra layer vs plain coarse: "),
    ]
    t4, t1 = pub.TABLE4.get(key or "", {}), pub.TABLE1.get(key or "", {})
    if t4:
        findings.append("The paper: the extra layer changes coarse test accuracy by "
                        f"{t4['coarse_extra'][1] - t1['coarse']['test']:+.2f} points on "
                        f"{label}, and fine training stays ahead ({t4['fine'][1]:.2f}% vs "
                        f"{t4['coarse_extra'][1]:.2f}%).")
    groups = ["F baseline", "C baseline", "C extra layer"]
    order = ("fine", "coarse", "coarse_extra")
    series = {"test, ours": [test[k] for k in order],
              "train, ours": [common.train_accuracy(res[k]) for k in order]}
    if t4:
        series["test, paper"] = [paper[k][1] for k in order]
    figure = plots.bars(os.path.join(ctx.report_dir, "extra_layer.png"), groups, series,
                        f"{label}: extra layer (Table IV), mean [95% CI] over {ctx.seeds} "
                        "seed(s)", "coarse accuracy (%)",
                        {"test, ours": plots.FINE, "train, ours": "#ff9896",
                         "test, paper": plots.PAPER})
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], findings,
        [(os.path.basename(figure), "Coarse accuracy of the three CNNs (test and training "
          "split; the paper's test numbers hatched when it has them).")],
        key, "Table IV (and Table I for the baseline C) of the paper", in_paper=bool(t4))


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main)
