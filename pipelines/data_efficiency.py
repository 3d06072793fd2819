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

from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.common import Context, Stat
from pipelines.report import Column, Table

NAME = "data_efficiency"
TITLE = "Fig. 2 / Fig. 3 — data efficiency: coarse accuracy by fraction of training data"
FRACTIONS = pub.FRACTIONS


def prepare(base):
    """Fig. 2 plots training accuracy too (dotted): log the un-augmented training split."""
    return dataclasses.replace(base, train_eval=True)


def grid(base, fractions: Sequence[float] = FRACTIONS) -> list[common.RunSpec]:
    bad = [r for r in fractions if not 0 < r <= 1]
    if bad or not fractions:
        raise common.PipelineError(f"--fractions={','.join(map(str, fractions))} must be values "
                                   "in (0, 1], e.g. 0.2,0.4,0.6,0.8,1.0")
    specs = []
    for r in sorted(set(float(f) for f in fractions)):
        for gran, series in (("fine", "FC"), ("coarse", "CC")):
            specs.append(common.spec(base, f"{gran} r={r:g}", {"series": series, "fraction": r},
                                     granularity=gran, train_fraction=r))
    return specs


def run(base, ctx: Context, fractions: Sequence[float] = FRACTIONS) -> dict:
    base = prepare(base)
    specs = grid(base, fractions)
    return common.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    xs = sorted({s.tag["fraction"] for s in specs})
    res = {(s.tag["series"], s.tag["fraction"]): runs[s.name] for s in specs}
    test = {sr: [common.test_acc(res[(sr, r)]) for r in xs] for sr in ("FC", "CC")}
    train = {sr: [common.train_acc(res[(sr, r)]) for r in xs] for sr in ("FC", "CC")}
    paper = {sr: [common.paper_cell(key, pub.fig2(key, "fine" if sr == "FC" else "coarse", r))
                  for r in xs] for sr in ("FC", "CC")}
    top = xs[-1]
    acr_top = common.acr(res[("FC", top)])
    acr_paper = common.paper_cell(key, pub.TABLE1.get(key or "", {}).get("fine", {}).get("acr")
                                  if top == 1.0 else None, "acr")
    rows = []
    for sr, name in (("FC", "FC (fine-trained)"), ("CC", "CC (coarse-trained)")):
        extra = [acr_top, acr_paper, "n/a"] if sr == "FC" else ["", "", ""]
        rows.append([f"{name} test, ours"] + test[sr] + extra[:1])
        rows.append([f"{name} test, paper"] + paper[sr] + extra[1:2])
        rows.append([f"{name} test, ours − paper"]
                    + [common.versus(o, p) for o, p in zip(test[sr], paper[sr])] + [""])
    gains = [common.difference(f, c) for f, c in zip(test["FC"], test["CC"])]
    paper_gains = [common.difference(p, q) if isinstance(p, Stat) and isinstance(q, Stat)
                   else p for p, q in zip(paper["FC"], paper["CC"])]
    rows.append(["ΔA_test = FC − CC, ours"] + gains + [""])
    rows.append(["ΔA_test = FC − CC, paper"] + paper_gains + [""])
    columns = ([Column(f"{dataset_label(key, label)}: series")]
               + [Column(f"{100 * r:g}%", std=True) for r in xs]
               + [Column(f"ACR ({100 * top:g}%)", std=True)])
    table = Table(columns, rows, title="Fig. 2 table: test coarse accuracy (%) by fraction of "
                  "training data", csv="data_efficiency.csv",
                  notes=[f"Each fraction r keeps the same fixed-seed int(n·r) images per fine "
                         f"class for FC and CC and trains {base.epochs}·{ctx.epochs_scale:g}/r "
                         "epochs (LR milestones scaled alike), so all runs make the same "
                         "number of weight updates."])
    train_rows = [[f"{n} train (last epoch), ours"] + train[sr]
                  for sr, n in (("FC", "FC"), ("CC", "CC"))]
    train_table = Table([Column("series")] + [Column(f"{100 * r:g}%", std=True) for r in xs],
                        train_rows, title="Training-split coarse accuracy (%) after the last "
                        "epoch (the paper plots these, dotted, without numbers)",
                        csv="data_efficiency_train.csv")
    findings = []
    wins = sum(1 for g in gains if g.ok and g.mean > 0)
    findings.append(f"FC is above CC at {wins} of {len(xs)} fractions "
                    f"(ΔA_test per fraction: " + ", ".join(
                        f"{100 * r:g}%: {g.mean:+.2f}" for r, g in zip(xs, gains) if g.ok) + ").")
    for r, f, c in zip(xs, test["FC"], test["CC"]):
        findings.append(common.verdict(f, c, prefix=f"At {100 * r:g}% of the data: "))
    full_cc = test["CC"][-1]
    reach = [r for r, f in zip(xs[:-1], test["FC"]) if f.ok and full_cc.ok
             and f.mean >= full_cc.mean]
    if full_cc.ok:
        findings.append(
            (f"The smallest fraction at which FC reaches CC's accuracy at {100 * top:g}% "
             f"({full_cc.mean:.2f}%) is {100 * reach[0]:g}%." if reach else
             f"FC does not reach CC's accuracy at {100 * top:g}% ({full_cc.mean:.2f}%) at any "
             "smaller fraction.")
            + (" (The paper: with less than 40% of the data, FC beats CC trained on all of it, "
               "on CIFAR-10 and both ImageNet subsets.)" if key else ""))
    fig2 = plots.fractions(
        os.path.join(ctx.report_dir, "fig2_data_efficiency.png"), xs,
        {"fine": test["FC"], "coarse": test["CC"]},
        {"fine": train["FC"], "coarse": train["CC"]},
        {"fine": [p.mean if isinstance(p, Stat) else None for p in paper["FC"]],
         "coarse": [p.mean if isinstance(p, Stat) else None for p in paper["CC"]]} if key else None,
        f"{label}: coarse accuracy vs training data (Fig. 2 style)")
    fig3 = plots.curves(os.path.join(ctx.report_dir, "fig3_curves.png"),
                        [("FC", plots.FINE, res[("FC", top)]),
                         ("CC", plots.COARSE, res[("CC", top)])],
                        f"{label}, {100 * top:g}% of the data: coarse accuracy per epoch "
                        f"(Fig. 3 style; mean over {ctx.seeds} seed(s))")
    figures = [(os.path.basename(fig2), "Coarse accuracy against the fraction of training data: "
                "FC red, CC blue; test solid (±1 std over seeds), training split dotted"
                + ("; the paper's test numbers dashed with open squares." if key else ".")),
               (os.path.basename(fig3), f"Coarse accuracy per epoch at {100 * top:g}% of the "
                "data: FC red, CC blue; test solid, training split dotted.")]
    return report.write_report(NAME, TITLE, base, ctx, specs, runs, [table, train_table],
                               findings, figures, key, "Fig. 2 of the paper (its table in "
                               "REFERENCE.md)")


def dataset_label(key, label):
    return label if key else f"{label} (not in the paper)"


EXTRA_FLAGS = {"fractions": ("list", [f"{r:g}" for r in FRACTIONS],
                             "Fractions r of the training data (Fig. 2: 0.2,0.4,0.6,0.8,1.0).")}


def fractions_from(values) -> list[float]:
    try:
        return [float(v) for v in values.fractions]
    except ValueError:
        raise common.PipelineError(f"--fractions={','.join(values.fractions)} must be numbers, "
                                   "e.g. 0.2,0.4,1.0") from None


def main(values, base, ctx):
    common.print_report(run(base, ctx, fractions_from(values)))


if __name__ == "__main__":
    common.entry_point(__doc__, main, EXTRA_FLAGS)
