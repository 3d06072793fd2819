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

from lg_tf import hierarchy as hier_lib
from lg_tf import stats
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.common import Context
from pipelines.common import accuracy_by_seed as _acc
from pipelines.common import interval_text as _ci_text
from pipelines.report import Column, Table

NAME = "groupings"
TITLE = "When fine labels help — ACR vs ΔA over groupings of the embedded shapes"
GROUPINGS = hier_lib.EMBEDDED_GROUPINGS


def check_dataset(base) -> None:
    if base.dataset != "embedded":
        raise common.PipelineError(
            f"groupings regroups the 12 embedded shapes; use --dataset=embedded (e.g. "
            f"--flagfile=groupings), not --dataset={base.dataset}")


def grid(base, groupings: Sequence[str] = GROUPINGS) -> list[common.RunSpec]:
    check_dataset(base)
    if not groupings:
        raise common.PipelineError("--groupings is empty; name groupings such as "
                                   "shapes,shapes_mixed")
    unknown = [g for g in groupings if g not in GROUPINGS]
    if unknown:
        raise common.PipelineError(f"unknown grouping(s) {', '.join(unknown)}; choose from: "
                                   f"{', '.join(GROUPINGS)}")
    specs = []
    for ident, name in enumerate(groupings, 1):
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(common.spec(base, f"{series} {name}",
                                     {"series": series, "grouping": name, "id": ident},
                                     granularity=gran, hierarchy=name))
    return specs


def run(base, ctx: Context, groupings: Sequence[str] = GROUPINGS) -> dict:
    return common.execute(NAME, base, grid(base, groupings), ctx, write)


def _acr_text(row: dict) -> str:
    """Mean and range over seeds: ACR is a ratio (> 0) whose spread is skewed, so a
    t-interval would reach below zero."""
    if row["acr"] is None:
        return "–"
    low, high = row["acr_range"]
    return f"{row['acr'].mean:.3f} ({low:.3f}–{high:.3f})"


def summarise(specs, runs: dict) -> list[dict]:
    """One row per grouping: CC, FC, paired ΔA and ACR with their 95% CIs."""
    by = {(s.tag["grouping"], s.tag["series"]): s for s in specs}
    rows = []
    for name in dict.fromkeys(s.tag["grouping"] for s in specs):
        cc, fc = _acc(runs[by[(name, "CC")].name]), _acc(runs[by[(name, "FC")].name])
        seeds = sorted(set(cc) & set(fc))
        acrs = [r["final"].get("test/acr") for r in runs[by[(name, "FC")].name]]
        acrs = [a for a in acrs if a is not None]
        rows.append({
            "id": by[(name, "FC")].tag["id"], "grouping": name,
            "coarse": hier_lib.named(name).coarse_names, "seeds": seeds,
            "cc": stats.mean_ci([cc[s] for s in seeds]) if seeds else None,
            "fc": stats.mean_ci([fc[s] for s in seeds]) if seeds else None,
            "gain": (stats.paired_difference([fc[s] for s in seeds], [cc[s] for s in seeds])
                     if seeds else None),
            "acr": stats.mean_ci(acrs) if acrs else None,
            "acr_range": (min(acrs), max(acrs)) if acrs else None,
        })
    return rows


def correlation_text(rows: list[dict]) -> tuple[str, dict]:
    pts = [(r["acr"].mean, r["gain"].mean) for r in rows if r["acr"] and r["gain"]]
    corr = stats.bootstrap_correlation([p[0] for p in pts], [p[1] for p in pts])
    paper = [(row[5], row[4] - row[3]) for row in pub.TABLE6]
    paper_r, paper_rho = common.correlation([p[0] for p in paper], [p[1] for p in paper])
    if corr.get("spearman") is None:
        return f"too few groupings with a defined ACR ({len(pts)}) for a correlation.", corr
    text = (f"ACR vs ΔA over {len(pts)} groupings: Spearman ρ = {_corr(corr, 'spearman')}, "
            f"Pearson r = {_corr(corr, 'pearson')} (95% bootstrap CIs over groupings); the "
            f"paper's Table VI on CIFAR-10: ρ = {paper_rho:+.2f}, r = {paper_r:+.2f}.")
    return text, corr


def _corr(corr: dict, key: str) -> str:
    low, high = corr.get(f"{key}_low"), corr.get(f"{key}_high")
    ci = f" [{low:+.2f}, {high:+.2f}]" if low is not None else ""
    return f"{corr[key]:+.2f}{ci}"


def write(base, ctx: Context, specs, runs: dict) -> str:
    check_dataset(base)
    rows = summarise(specs, runs)
    table_rows, points, findings = [], [], []
    for r in rows:
        table_rows.append([str(r["id"]), r["grouping"], "; ".join(r["coarse"]),
                           _ci_text(r["cc"]), _ci_text(r["fc"]),
                           _ci_text(r["gain"], signed=True), _acr_text(r),
                           str(len(r["seeds"]))])
        if r["gain"] is not None:
            half = None if r["gain"].low is None else (r["gain"].high - r["gain"].low) / 2
            points.append((str(r["id"]), r["acr"].mean if r["acr"] else None, r["gain"].mean,
                           half))
            findings.append(f"({r['id']}) {r['grouping']}: "
                            + stats.verdict(r["gain"], unit="points"))
    table = Table([Column("ID"), Column("grouping"), Column("coarse classes"),
                   Column("CC coarse acc (%)"), Column("FC coarse acc (%)"),
                   Column("ΔA = FC − CC (points)"), Column("ACR (FC): mean (min–max)"),
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
             "degrees of freedom."]
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
    common.print_report(run(base, ctx, list(values.groupings)))


if __name__ == "__main__":
    common.entry_point(__doc__, main, EXTRA_FLAGS)
