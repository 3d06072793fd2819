"""Table V: dropout on the pooled features, fine and coarse training.

usage: python -m pipelines.dropout --flagfile=flags/<dataset>.cfg --out_dir=DIR
           [--rate=R] [--seeds=N] [--epochs_scale=S] [--dry_run] [--report_dir=DIR]
           [lg_tf flags]

Four runs per seed: fine and coarse with dropout R on the pooled features before the
classifier (R = 0.3 as published, 0.4 for CIFAR-100 animals; --rate overrides) and without
dropout. Writes report.md next to the paper's Table V, dropout.csv and a bar chart.
"""

from __future__ import annotations

import dataclasses
import os

from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "dropout"
TITLE = "Table V — dropout on the features vs fine labels"


def default_rate(base) -> float:
    from lg_tf.data import datasets
    hier = base.hierarchy or datasets.DATASETS[base.dataset].default_hierarchy
    return pub.DROPOUT_RATE.get(hier, pub.DEFAULT_DROPOUT_RATE)


def prepare(base):
    return dataclasses.replace(base, train_eval=True)   # Table V reports training accuracy


def grid(base, rate: float | None = None) -> list[grid_lib.RunSpec]:
    rate = default_rate(base) if rate is None else rate
    if not 0 < rate < 1:
        raise grid_lib.PipelineError(f"--rate={rate} must be in (0, 1), e.g. 0.3")
    specs = []
    for d in (rate, 0.0):
        for gran, lab in (("fine", "F"), ("coarse", "C")):
            specs.append(grid_lib.spec(base, f"{lab} dropout {d:g}",
                                       {"dropout": d, "label": lab},
                                       granularity=gran, dropout=d))
    return specs


def run(base, ctx: Context, rate: float | None = None) -> dict:
    base = prepare(base)
    specs = grid(base, rate)
    return grid_lib.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    t5 = pub.TABLE5.get(key or "", {})
    rows, test, res = [], {}, {}
    for s in specs:
        d, lab = s.tag["dropout"], s.tag["label"]
        gran = "fine" if lab == "F" else "coarse"
        p = t5.get((gran, d))
        res[(lab, d)] = runs[s.name]
        te = test[(lab, d)] = common.accuracy(runs[s.name])
        p_test = common.paper_cell(key, p and p[1])
        rows.append([label, f"{d:g}", lab, common.train_accuracy(runs[s.name]),
                     common.paper_cell(key, p and p[0]), te, p_test, common.versus(te, p_test)])
    table = Table([Column("dataset"), Column("dropout"), Column("train label"),
                   Column("train acc (%) ours", "pct"), Column("train acc (%) paper", "pct"),
                   Column("test acc (%) ours", "pct"), Column("test acc (%) paper", "pct"),
                   Column("test: ours − paper", "delta")],
                  rows, title="Table V: dropout before the classifier", csv="dropout.csv",
                  notes=["Dropout acts on the pooled features (the `features` layer) before "
                         "the classifier, in training only."])
    rate = next(s.tag["dropout"] for s in specs if s.tag["dropout"])
    findings = [
        common.verdict(common.gain(res[("F", rate)], res[("C", rate)]),
                       prefix=f"With dropout {rate:g}: "),
        common.verdict(common.gain(res[("F", 0.0)], res[("C", 0.0)]), prefix="Without dropout: "),
        common.contrast(common.gain(res[("C", rate)], res[("C", 0.0)]),
                        f"C with dropout {rate:g}", "C without", "Dropout for coarse training: "),
        common.contrast(common.gain(res[("F", 0.0)], res[("C", rate)]), "F without dropout",
                        f"C with dropout {rate:g}", "Fine labels vs dropout: "),
    ]
    if t5:
        findings.append(f"The paper ({label}): coarse training with dropout {rate:g} reaches "
                        f"{t5[('coarse', 0.3)][1]:.2f}%, still below fine training without it "
                        f"({t5[('fine', 0.0)][1]:.2f}%).")
    groups = [f"dropout {rate:g}", "no dropout"]
    series = {"F test, ours": [test[("F", rate)], test[("F", 0.0)]],
              "C test, ours": [test[("C", rate)], test[("C", 0.0)]]}
    if t5:
        series["F test, paper"] = [t5[("fine", rate)][1] if ("fine", rate) in t5 else None,
                                   t5[("fine", 0.0)][1]]
        series["C test, paper"] = [t5[("coarse", rate)][1] if ("coarse", rate) in t5
                                   else None, t5[("coarse", 0.0)][1]]
    figure = plots.bars(os.path.join(ctx.report_dir, "dropout.png"), groups, series,
                        f"{label}: dropout (Table V), mean [95% CI] over {ctx.seeds} seed(s)",
                        colours={"F test, ours": plots.FINE, "C test, ours": plots.COARSE,
                                 "F test, paper": "#f4a582", "C test, paper": "#92c5de"})
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], findings,
        [(os.path.basename(figure), "Coarse test accuracy with and without dropout; FC red, "
          "CC blue; the paper's numbers hatched when it has them.")],
        key, "Table V of the paper", in_paper=bool(t5))


EXTRA_FLAGS = {"rate": ("float", None, "Dropout rate on the features (default: 0.3, 0.4 for "
                                       "CIFAR-100 animals, as published).")}


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, values.rate))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
