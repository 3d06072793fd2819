"""Table VI and Fig. 7a: ten custom two-class groupings of CIFAR-10.

usage: python -m pipelines.custom_coarse --flagfile=flags/cifar10.cfg --out_dir=DIR
           [--mappings=0189,1689,...] [--seeds=N] [--epochs_scale=S] [--dry_run]
           [--report_dir=DIR] [lg_tf flags]

For each mapping (the CIFAR-10 class indices of coarse class 0, e.g. 0135 = plane, car, cat,
dog vs the rest, via --coarse_zero) trains fine and coarse. Writes report.md with CC, FC,
ΔA_test and ACR per mapping next to the paper's Table VI, custom_coarse.csv and fig7a
(ΔA_test against ACR, points labelled by the experiment ID). Needs --dataset=cifar10.
"""

from __future__ import annotations

import os
from typing import Sequence

from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.common import Context
from pipelines.report import Column, Table

NAME = "custom_coarse"
TITLE = "Table VI / Fig. 7a — custom coarse groupings of CIFAR-10"
MAPPINGS = tuple(row[1] for row in pub.TABLE6)
PAPER = {row[1]: row for row in pub.TABLE6}


def check_dataset(base) -> None:
    if base.dataset != "cifar10":
        raise common.PipelineError(
            f"custom_coarse needs --dataset=cifar10 (e.g. --flagfile=flags/cifar10.cfg): its "
            f"mappings are digit strings over the ten CIFAR-10 classes, which --dataset="
            f"{base.dataset} does not have")


def grid(base, mappings: Sequence[str] = MAPPINGS) -> list[common.RunSpec]:
    check_dataset(base)
    if not mappings:
        raise common.PipelineError("--mappings is empty; give digit strings such as 0189,0135")
    from lg_tf import hierarchy as hier_lib
    specs = []
    for i, digits in enumerate(mappings, 1):
        hier_lib.from_digit_string(digits)   # a bad string fails here, in one sentence
        ident = PAPER[digits][0] if digits in PAPER else f"x{i}"
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(common.spec(base, f"{series} {digits}",
                                     {"series": series, "digits": digits, "id": ident},
                                     granularity=gran, hierarchy="", coarse_zero=digits))
    return specs


def run(base, ctx: Context, mappings: Sequence[str] = MAPPINGS) -> dict:
    specs = grid(base, mappings)
    return common.execute(NAME, base, specs, ctx, write)


def classes_text(digits: str) -> str:
    return ", ".join(pub.CIFAR10_CLASSES[int(d)] for d in sorted(digits))


def write(base, ctx: Context, specs, runs: dict) -> str:
    check_dataset(base)
    key = "cifar10"
    by = {(s.tag["digits"], s.tag["series"]): s for s in specs}
    digits_list = list(dict.fromkeys(s.tag["digits"] for s in specs))
    rows, points, paper_points, findings = [], [], [], []
    for digits in digits_list:
        cc_s, fc_s = by[(digits, "CC")], by[(digits, "FC")]
        cc, fc = common.test_acc(runs[cc_s.name]), common.test_acc(runs[fc_s.name])
        gain, a = common.difference(fc, cc), common.acr(runs[fc_s.name])
        p = PAPER.get(digits)
        ident = fc_s.tag["id"]
        n0 = len(digits)
        rows.append([str(ident), p[2] if p else f"{10 - n0}:{n0}",
                     f"{digits} ({classes_text(digits)})",
                     cc, common.paper_cell(key, p and p[3]),
                     fc, common.paper_cell(key, p and p[4]),
                     gain, common.paper_cell(key, p and round(p[4] - p[3], 2), "delta"),
                     a, common.paper_cell(key, p and p[5], "acr")])
        points.append((str(ident), a.mean, gain.mean, gain.std))
        if p:
            paper_points.append((str(ident), p[5], p[4] - p[3]))
        findings.append(common.verdict(fc, cc, prefix=f"({ident}) {digits}: "))
    table = Table([Column("ID"), Column("ratio"), Column("coarse class 0"),
                   Column("CC test acc (%) ours", std=True), Column("CC paper"),
                   Column("FC test acc (%) ours", std=True), Column("FC paper"),
                   Column("ΔA_test ours", std=True), Column("ΔA_test paper"),
                   Column("ACR ours", std=True), Column("ACR paper")],
                  rows, title="Table VI: custom coarse groupings (coarse class 0 = the listed "
                  "CIFAR-10 classes, coarse class 1 = the rest)", csv="custom_coarse.csv")
    defined = [pt for pt in points if pt[1] is not None and pt[2] is not None]
    r, rho = common.correlation([pt[1] for pt in defined], [pt[2] for pt in defined])
    pr, prho = common.correlation([pt[1] for pt in paper_points], [pt[2] for pt in paper_points])
    summary = (f"ΔA_test vs ACR over {len(defined)} mappings: "
               + (f"Pearson r = {r:+.2f}, Spearman ρ = {rho:+.2f}" if r is not None
                  else "too few points for a correlation")
               + (f" (the paper's Table VI: r = {pr:+.2f}, ρ = {prho:+.2f})." if pr is not None
                  else "."))
    figure = plots.acr_scatter(
        os.path.join(ctx.report_dir, "fig7a_custom_acr.png"), points,
        "CIFAR-10 custom groupings: ΔA_test vs ACR (ours; IDs as in Table VI)",
        paper=paper_points or None, paper_title="paper (Table VI / Fig. 7a)")
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], [summary] + findings,
        [(os.path.basename(figure), "ΔA_test against the fine run's ACR per grouping; numbers "
          "on the points are the experiment IDs (Fig. 7a style).")],
        key, "Table VI of the paper")


EXTRA_FLAGS = {"mappings": ("list", list(MAPPINGS),
                            "Digit strings of coarse class 0 (Table VI's ten by default).")}


def main(values, base, ctx):
    common.print_report(run(base, ctx, list(values.mappings)))


if __name__ == "__main__":
    common.entry_point(__doc__, main, EXTRA_FLAGS)
