"""Table VIII: CIFAR-100 with 5, 10, 15 and 20 coarse classes.

usage: python -m pipelines.num_coarse --flagfile=flags/cifar100.cfg --out_dir=DIR
           [--seeds=N] [--epochs_scale=S] [--dry_run] [--report_dir=DIR] [lg_tf flags]

Fine and coarse runs on the CIFAR-100 hierarchies cifar100_5, cifar100_animals (10),
cifar100_15 and cifar100 (20); train and test are filtered to each hierarchy's fine classes.
Writes report.md with CC, FC, ΔA_test and ACR next to the paper's Table VIII,
num_coarse.csv and a figure of ΔA_test against the number of coarse classes and against ACR
(Fig. 6's CIFAR-100 points). Needs --dataset=cifar100.
"""

from __future__ import annotations

import os

from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "num_coarse"
TITLE = "Table VIII — number of coarse classes (CIFAR-100)"
HIERARCHIES = ("cifar100_5", "cifar100_animals", "cifar100_15", "cifar100")


def check_dataset(base) -> None:
    if base.dataset != "cifar100":
        raise grid_lib.PipelineError(
            f"num_coarse needs --dataset=cifar100 (e.g. --flagfile=flags/cifar100.cfg): it "
            f"compares CIFAR-100's 5/10/15/20-superclass hierarchies, which --dataset="
            f"{base.dataset} does not have")
    if base.coarse_zero or base.hierarchy_file:
        raise grid_lib.PipelineError("num_coarse sets --hierarchy itself; drop --coarse_zero "
                                     "and --hierarchy_file")


def grid(base) -> list[grid_lib.RunSpec]:
    check_dataset(base)
    specs = []
    for hier in HIERARCHIES:
        n = pub.TABLE8[hier][0]
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(grid_lib.spec(base, f"{series} {n} coarse ({hier})",
                                       {"series": series, "hierarchy": hier, "n": n},
                                       granularity=gran, hierarchy=hier))
    return specs


def run(base, ctx: Context) -> dict:
    specs = grid(base)
    return grid_lib.execute(NAME, base, specs, ctx, write)


def write(base, ctx: Context, specs, runs: dict) -> str:
    check_dataset(base)
    key = "cifar100"
    by = {(s.tag["hierarchy"], s.tag["series"]): s for s in specs}
    hiers = list(dict.fromkeys(s.tag["hierarchy"] for s in specs))
    rows, points, paper_points, findings = [], [], [], []
    for hier in hiers:
        n, p_cc, p_fc, p_acr = pub.TABLE8[hier]
        cc_runs, fc_runs = runs[by[(hier, "CC")].name], runs[by[(hier, "FC")].name]
        gain = common.gain(fc_runs, cc_runs)
        rows.append([str(n), hier, common.accuracy(cc_runs), common.paper_cell(key, p_cc),
                     common.accuracy(fc_runs), common.paper_cell(key, p_fc), gain,
                     common.paper_cell(key, round(p_fc - p_cc, 2)), common.acr_cell(fc_runs),
                     common.paper_cell(key, p_acr)])
        points.append((str(n), common.mean_or_none(common.acr_values(fc_runs)),
                       gain.mean if gain else None, gain.half_width if gain else None))
        paper_points.append((str(n), p_acr, p_fc - p_cc))
        findings.append(common.verdict(gain, prefix=f"{n} coarse classes ({hier}): "))
    table = Table([Column("# coarse classes"), Column("hierarchy"),
                   Column("CC test acc (%) ours", "pct"), Column("CC paper", "pct"),
                   Column("FC test acc (%) ours", "pct"), Column("FC paper", "pct"),
                   Column("ΔA = FC − CC ours", "delta"), Column("ΔA paper", "delta"),
                   Column("ACR ours: mean (min–max)"), Column("ACR paper", "acr")],
                  rows, title="Table VIII: ΔA by number of coarse classes",
                  csv="num_coarse.csv")
    ns = [float(pt[0]) for pt in points if pt[2] is not None]
    by_n = common.correlation(ns, [pt[2] for pt in points if pt[2] is not None])
    summary = (f"ΔA against the number of coarse classes: "
               f"{common.correlation_text(by_n, 'hierarchies')} (the paper: ΔA shrinks from "
               "+2.69 at 5 classes to +0.01 at 20).")
    figure = plots.acr_scatter(
        os.path.join(ctx.report_dir, "num_coarse_acr.png"), points,
        "CIFAR-100: ΔA vs ACR, points labelled by # coarse classes (ours)",
        paper=paper_points, paper_title="paper (Table VIII, Fig. 6's CIFAR-100 points)")
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], [summary] + findings,
        [(os.path.basename(figure), "ΔA against ACR for 5, 10, 15 and 20 coarse classes "
          "(numbers on the points).")],
        key, "Table VIII of the paper")


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main)
