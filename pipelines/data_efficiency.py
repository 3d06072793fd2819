"""Fig. 2 and Fig. 3: data efficiency of fine vs coarse training.

usage: python -m pipelines.data_efficiency --flagfile=flags/<dataset>.cfg --out_dir=DIR
           [--fractions=0.2,0.4,0.6,0.8,1.0] [--seeds=N] [--epochs_scale=S] [--dry_run]
           [--report_dir=DIR] [lg_tf flags]

Trains fine and coarse at each fraction r of the training data (the same fixed-seed images
per fine class for both; epochs and LR milestones scale by 1/r through --train_fraction, so
every run makes the same number of weight updates). Writes report.md with the Fig. 2 table
(test accuracy by fraction, ours next to the paper's), data_efficiency.csv, fig2 (accuracy
vs fraction: test solid, training split dotted) and fig3 (accuracy per epoch at the largest
fraction).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from lg_tf import grid as grid_lib
from lg_tf import stats
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Cell, Column, Table

NAME = "data_efficiency"
TITLE = "Fig. 2 / Fig. 3 — data efficiency: coarse accuracy by fraction of training data"
FRACTIONS = pub.FRACTIONS


def prepare(base):
    """Fig. 2 plots training accuracy too (dotted): log the un-augmented training split."""
    return dataclasses.replace(base, train_eval=True)


def grid(base, fractions: Sequence[float] = FRACTIONS) -> list[grid_lib.RunSpec]:
    fractions = grid_lib.float_list([str(f) for f in fractions], "fractions",
                                    "0.2,0.4,0.6,0.8,1.0")
    specs = []
    for r in fractions:
        for gran, series in (("fine", "FC"), ("coarse", "CC")):
            specs.append(grid_lib.spec(base, f"{gran} r={r:g}",
                                       {"series": series, "fraction": r},
                                       granularity=gran, train_fraction=r))
    return specs


def run(base, ctx: Context, fractions: Sequence[float] = FRACTIONS) -> dict:
    base = prepare(base)
    specs = grid(base, fractions)
    return grid_lib.execute(NAME, base, specs, ctx, write)


def summarise(specs, runs: dict) -> dict:
    """Per fraction: FC and CC (test and training split), the paired gain; and the data
    savings: how much data CC needs to reach FC's mean accuracy at each fraction."""
    xs = sorted({s.tag["fraction"] for s in specs})
    res = {(s.tag["series"], s.tag["fraction"]): runs[s.name] for s in specs}
    out = {"fractions": xs, "res": res,
           "test": {sr: [common.accuracy(res[(sr, r)]) for r in xs] for sr in ("FC", "CC")},
           "train": {sr: [common.train_accuracy(res[(sr, r)]) for r in xs]
                     for sr in ("FC", "CC")},
           "gain": [common.gain(res[("FC", r)], res[("CC", r)]) for r in xs],
           "gain_vs_top": [common.gain(res[("FC", r)], res[("CC", xs[-1])]) for r in xs]}
    means = {sr: [iv.mean if iv else None for iv in out["test"][sr]] for sr in ("FC", "CC")}
    out["savings"] = stats.data_savings(xs, means["FC"], means["CC"], out["gain"],
                                        out["gain_vs_top"])
    return out


def savings_text(e: dict, top: float) -> str:
    """One sentence per supported FC fraction: the CC fraction reaching the same accuracy."""
    head = f"FC at {100 * e['fraction']:g}% of the data reaches {e['fc_accuracy']:.2f}%"
    if e["cc_fraction"] is None:
        more = (f"more than {top / e['fraction']:g}x the data fine labels need"
                if e["fraction"] < top else "more data than the largest fraction run")
        return (f"{head} and is above CC trained on {100 * top:g}% of the data by "
                f"{stats.interval_text(e['vs_top'], signed=True)} points (paired, 95% CI), so "
                f"CC would need {more}.")
    if e["at_most"]:
        return (f"{head}; CC reaches it already at the smallest fraction run "
                f"({100 * e['cc_fraction']:g}%), so fine labels save no data measurable here.")
    return (f"{head}; CC needs about {100 * e['cc_fraction']:.0f}% (linear interpolation of "
            f"CC's mean curve), i.e. fine labels reach it with {e['ratio']:.2f}x the data CC "
            "needs.")


def write(base, ctx: Context, specs, runs: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    sm = summarise(specs, runs)
    xs, test, train = sm["fractions"], sm["test"], sm["train"]
    paper = {sr: [common.paper_cell(key, pub.fig2(key, "fine" if sr == "FC" else "coarse", r))
                  for r in xs] for sr in ("FC", "CC")}
    top = xs[-1]
    acr_paper = common.paper_cell(key, pub.TABLE1.get(key or "", {}).get("fine", {}).get("acr")
                                  if top == 1.0 else None)
    rows = []
    for sr, name in (("FC", "FC (fine-trained)"), ("CC", "CC (coarse-trained)")):
        acr_ours = common.acr_cell(sm["res"][("FC", top)]) if sr == "FC" else ""
        rows.append([f"{name} test, ours"] + test[sr] + [acr_ours])
        rows.append([f"{name} test, paper"] + paper[sr]
                    + [Cell(acr_paper, "acr") if sr == "FC" else ""])
        rows.append([f"{name} test, ours − paper"]
                    + [Cell(common.versus(o, p), "delta") for o, p in zip(test[sr], paper[sr])]
                    + [""])
    paper_gains = [p - q if isinstance(p, float) and isinstance(q, float) else p
                   for p, q in zip(paper["FC"], paper["CC"])]
    rows.append(["ΔA = FC − CC (paired), ours"] + [Cell(g, "delta") for g in sm["gain"]] + [""])
    rows.append(["ΔA = FC − CC, paper"] + [Cell(g, "delta") for g in paper_gains] + [""])
    columns = ([Column(f"{dataset_label(key, label)}: series")]
               + [Column(f"{100 * r:g}%", "pct") for r in xs]
               + [Column(f"ACR ({100 * top:g}%): mean (min–max)")])
    table = Table(columns, rows, title="Fig. 2 table: test coarse accuracy (%) by fraction of "
                  "training data", csv="data_efficiency.csv",
                  notes=[f"Each fraction r keeps the same fixed-seed int(n·r) images per fine "
                         f"class for FC and CC and trains {base.epochs}·{ctx.epochs_scale:g}/r "
                         "epochs (LR milestones scaled alike), so all runs make the same "
                         "number of weight updates.",
                         "The ΔA rows are differences in points (mean of the per-seed paired "
                         "differences [95% t CI])."])
    train_rows = [[f"{n} train (last epoch), ours"] + train[sr]
                  for sr, n in (("FC", "FC"), ("CC", "CC"))]
    train_table = Table([Column("series")] + [Column(f"{100 * r:g}%", "pct") for r in xs],
                        train_rows, title="Training-split coarse accuracy (%) after the last "
                        "epoch (the paper plots these, dotted, without numbers)",
                        csv="data_efficiency_train.csv")
    findings = [common.verdict(g, prefix=f"At {100 * r:g}% of the data: ")
                + common.per_seed_text(sm["res"][("FC", r)], sm["res"][("CC", r)])
                for r, g in zip(xs, sm["gain"])]
    findings += ["Data saved: " + savings_text(e, xs[-1]) for e in sm["savings"]]
    unclear = [r for r in xs if r not in {e["fraction"] for e in sm["savings"]}]
    if unclear:
        findings.append("At " + ", ".join(f"{100 * r:g}%" for r in unclear) + " of the data "
                        "the runs support no data-saving claim (FC not detectably above the CC "
                        "accuracy it is compared with).")
    if key:
        findings.append("The paper: with less than 40% of the data, FC beats CC trained on "
                        "all of it, on CIFAR-10 and both ImageNet subsets.")
    fig2 = plots.fractions(
        os.path.join(ctx.report_dir, "fig2_data_efficiency.png"), xs,
        {"fine": test["FC"], "coarse": test["CC"]},
        {"fine": train["FC"], "coarse": train["CC"]},
        {"fine": [p if isinstance(p, float) else None for p in paper["FC"]],
         "coarse": [p if isinstance(p, float) else None for p in paper["CC"]]} if key else None,
        f"{label}: coarse accuracy vs training data (Fig. 2 style)")
    fig3 = plots.curves(os.path.join(ctx.report_dir, "fig3_curves.png"),
                        [("FC", plots.FINE, sm["res"][("FC", top)]),
                         ("CC", plots.COARSE, sm["res"][("CC", top)])],
                        f"{label}, {100 * top:g}% of the data: coarse accuracy per epoch "
                        f"(Fig. 3 style; mean over {ctx.seeds} seed(s))")
    figures = [(os.path.basename(fig2), "Coarse accuracy against the fraction of training data: "
                "FC red, CC blue; test solid (bars: 95% CI over seeds), training split dotted"
                + ("; the paper's test numbers dashed with open squares." if key else ".")),
               (os.path.basename(fig3), f"Coarse accuracy per epoch at {100 * top:g}% of the "
                "data: FC red, CC blue; test solid, training split dotted.")]
    return report.write_report(NAME, TITLE, base, ctx, specs, runs, [table, train_table],
                               findings, figures, key, "Fig. 2 of the paper (its table is "
                               "pipelines/published.py, FIG2)", notes=common.folder_notes(base))



def dataset_label(key, label):
    return label if key else f"{label} (not in the paper)"


EXTRA_FLAGS = {"fractions": ("list", [f"{r:g}" for r in FRACTIONS],
                             "Fractions r of the training data (Fig. 2: 0.2,0.4,0.6,0.8,1.0).")}


def fractions_from(values) -> list[float]:
    return grid_lib.float_list(values.fractions, "fractions", "0.2,0.4,1.0")


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, fractions_from(values)))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
