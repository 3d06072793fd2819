"""When do fine labels help? ACR against the gain of fine training over groupings of the
embedded shapes (the CPU analogue of the paper's Table VI / Fig. 7a).

usage: python -m pipelines.groupings --flagfile=groupings --out_dir=DIR [--seeds=3]
           [--groupings=shapes,shapes_mixed,...] [--dry_run] [lg_tf flags]

Each grouping (`lg_tf.hierarchy.EMBEDDED_GROUPINGS`, fixed before any run: semantic
`shapes`, `shapes_half`, two fully mixed ones and four fixed-seed random partitions) is
trained on coarse labels (CC) and on fine labels (FC) for every seed. The report gives per
grouping CC, FC and ΔA = FC − CC as the mean of the paired per-seed differences with a
95% t confidence interval, the ACR of the fine runs (mean and range over seeds), and the Spearman
ρ and Pearson r between ACR and ΔA with bootstrap CIs over groupings, next to the
paper's Table VI correlation. Whatever the runs show is the result.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from lg_tf import grid as grid_lib
from lg_tf import hierarchy as hier_lib
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "groupings"
TITLE = "When fine labels help — ACR vs ΔA over groupings of the embedded shapes"
GROUPINGS = hier_lib.EMBEDDED_GROUPINGS


def check_dataset(base) -> None:
    if base.dataset != "embedded":
        raise grid_lib.PipelineError(
            f"groupings regroups the 12 embedded shapes; use --dataset=embedded (e.g. "
            f"--flagfile=groupings), not --dataset={base.dataset}")


def grid(base, groupings: Sequence[str] = GROUPINGS) -> list[grid_lib.RunSpec]:
    check_dataset(base)
    if not groupings:
        raise grid_lib.PipelineError("--groupings is empty; name groupings such as "
                                   "shapes,shapes_mixed")
    unknown = [g for g in groupings if g not in GROUPINGS]
    if unknown:
        raise grid_lib.PipelineError(f"unknown grouping(s) {', '.join(unknown)}; choose from: "
                                   f"{', '.join(GROUPINGS)}")
    specs = []
    for ident, name in enumerate(groupings, 1):
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(grid_lib.spec(base, f"{series} {name}",
                                     {"series": series, "grouping": name, "id": ident},
                                     granularity=gran, hierarchy=name))
    return specs


def run(base, ctx: Context, groupings: Sequence[str] = GROUPINGS) -> dict:
    return grid_lib.execute(NAME, base, grid(base, groupings), ctx, write)


def summarise(specs, runs: dict) -> list[dict]:
    """One row per grouping: CC, FC, the paired ΔA with their 95% CIs, and ACR over seeds."""
    by = {(s.tag["grouping"], s.tag["series"]): s for s in specs}
    rows = []
    for name in dict.fromkeys(s.tag["grouping"] for s in specs):
        cc, fc = runs[by[(name, "CC")].name], runs[by[(name, "FC")].name]
        rows.append({
            "id": by[(name, "FC")].tag["id"], "grouping": name,
            "coarse": hier_lib.named(name).coarse_names,
            "seeds": sorted(set(common.per_seed(cc)) & set(common.per_seed(fc))),
            "cc": common.accuracy(cc), "fc": common.accuracy(fc), "gain": common.gain(fc, cc),
            "acr": common.acr_values(fc), "acr_text": common.acr_cell(fc)})
    return rows


def correlation_text(rows: list[dict]) -> tuple[str, dict]:
    pts = [(common.mean_or_none(r["acr"]), r["gain"].mean) for r in rows
           if r["acr"] and r["gain"]]
    corr = common.correlation([p[0] for p in pts], [p[1] for p in pts])
    paper = common.paper_correlation([(row[5], row[4] - row[3]) for row in pub.TABLE6])
    text = (f"ACR vs ΔA: {common.correlation_text(corr, 'groupings')}; the paper's Table VI "
            f"on CIFAR-10: {common.correlation_text(paper, 'groupings')}.")
    return text, corr


def write(base, ctx: Context, specs, runs: dict) -> str:
    check_dataset(base)
    rows = summarise(specs, runs)
    table_rows, points, findings = [], [], []
    for r in rows:
        table_rows.append([str(r["id"]), r["grouping"], "; ".join(r["coarse"]),
                           r["cc"], r["fc"], r["gain"], r["acr_text"], str(len(r["seeds"]))])
        if r["gain"] is not None:
            points.append((str(r["id"]), common.mean_or_none(r["acr"]), r["gain"].mean,
                           r["gain"].half_width if r["gain"] else None))
            findings.append(common.verdict(r["gain"], prefix=f"({r['id']}) {r['grouping']}: "))
    table = Table([Column("ID"), Column("grouping"), Column("coarse classes"),
                   Column("CC coarse acc (%)", "pct"), Column("FC coarse acc (%)", "pct"),
                   Column("ΔA = FC − CC (points)", "delta"), Column("ACR (FC): mean (min–max)"),
                   Column("seeds")],
                  table_rows, title="CC, FC and the paired gain per grouping (mean [95% CI] "
                  "over seeds)", csv="groupings.csv")
    summary, _ = correlation_text(rows)
    figure = plots.acr_scatter(
        os.path.join(ctx.report_dir, "groupings_acr_vs_gain.png"), points,
        "embedded shapes: ΔA vs ACR per grouping (bars: 95% CI over seeds)",
        paper=[(str(row[0]), row[5], row[4] - row[3]) for row in pub.TABLE6],
        paper_title="paper, CIFAR-10 (Table VI / Fig. 7a)")
    notes = ["Groupings were fixed before any run (lg_tf/hierarchy.py, EMBEDDED_GROUPINGS) "
             "and every one that was run is reported.",
             "ΔA is the mean of per-seed paired differences (a seed fixes the data subset, "
             "initialisation and augmentation of both runs); its CI is Student-t with n−1 "
             "degrees of freedom.",
             common.multiple_comparisons(len(rows), "groupings"),
             "FC training does not depend on the grouping (the same 12 fine classes), so "
             "the FC runs of one seed are the same network trained again: their noise is "
             "shared by the groupings, and the groupings' ACRs are regroupings of one "
             "confusion matrix up to CPU nondeterminism."]
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], [summary] + findings,
        [(os.path.basename(figure), "ΔA against the fine runs' ACR per grouping (numbers = "
          "IDs), with the paper's CIFAR-10 groupings beside it.")],
        None, "Table VI of the paper (CIFAR-10; here: the embedded shapes)", notes=notes,
        in_paper=False, seeds_text="accuracies and ΔA show mean [95% Student-t CI] over "
        "seeds (ΔA: of the paired per-seed differences); the runs table lists every run")


def save_preview(path: str = "docs/groupings_preview.png",
                 groupings: Sequence[str] = GROUPINGS) -> str:
    """One row per grouping, one panel per coarse class showing one image of each of its
    three fine classes (test split, seed 0): what each parent unites."""
    from lg_tf import plots
    from lg_tf.data import embedded
    images, labels = embedded.generate("test", seed=0, num_per_class=1)
    fig = plots.canvas((13.0, 1.45 * len(groupings) + 0.4))
    for row, name in enumerate(groupings):
        h = hier_lib.named(name)
        for c in range(h.num_coarse):
            members = [k for k in range(h.num_fine) if h.parent[k] == c]
            ax = fig.add_subplot(len(groupings), h.num_coarse, row * h.num_coarse + c + 1)
            strip = [images[np.flatnonzero(labels == k)[0]] for k in members]
            ax.imshow(np.concatenate(strip, axis=1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(" + ".join(h.fine_names[k] for k in members), fontsize=7)
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("pipelines.groupings: each row a grouping, each panel one coarse class "
                 "(its three fine classes)", fontsize=10)
    plots.save(fig, path)
    return path


EXTRA_FLAGS = {"groupings": ("list", list(GROUPINGS),
                             "Embedded groupings to run (default: all eight).")}


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, list(values.groupings)))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
