"""Which training target gives the best coarse classifier? coarse, fine, joint, soft labels
and hierarchical cross-entropy on the same footing (issue 13).

usage: python -m pipelines.targets --flagfile=groupings --out_dir=DIR [--seeds=3]
           [--groupings=shapes,shapes_mixed_b] [--fractions=0.2,1.0]
           [--targets=coarse,fine,joint,soft_labels,hxe] [--dry_run] [lg_tf flags]

For every grouping (a hierarchy of the dataset; default on the embedded data: the semantic
`shapes` and the mixed `shapes_mixed_b`; elsewhere the dataset's own hierarchy), fraction r
of the training data and seed, one run per `--granularity` target with its default setting
(`--coarse_loss_weight`, `--soft_beta`, `--hxe_alpha` from the flags). All runs of a
grouping, fraction and seed share the data subset, initialisation seed and number of weight
updates (epochs scale by 1/r); `coarse` and `fine` at r=1 are the runs of
pipelines.groupings when --out_dir is shared.

The report ranks the targets of each grouping and fraction by coarse test accuracy (mean
[95% t CI] over seeds) and gives each one's paired difference to `coarse` and to `fine`
(mean of per-seed differences, 95% t CI), coarse ECE, coarse log-loss, fine accuracy,
sibling mistakes and ACR, plus a joint run's three coarse readings. Whatever the runs show
is the result.
"""

from __future__ import annotations

import os
from typing import Sequence

from lg_tf import grid as grid_lib
from lg_tf import stats
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines.report import Column, Table

NAME = "targets"
TITLE = "Training targets — which one gives the best coarse classifier?"
TARGETS = ("coarse", "fine", "joint", "soft_labels", "hxe")  # config.GRANULARITIES
FRACTIONS = (0.2, 1.0)
COLOURS = {"coarse": plots.COARSE, "fine": plots.FINE, "joint": "#7b3294",
           "soft_labels": "#008837", "hxe": "#e66101"}


def grid(base, groupings: Sequence[str], fractions: Sequence[float] = FRACTIONS,
         targets: Sequence[str] = TARGETS) -> list[grid_lib.RunSpec]:
    fractions = grid_lib.float_list([str(f) for f in fractions], "fractions", "0.2,1.0")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise grid_lib.PipelineError(f"--targets={','.join(targets)}: choose from "
                                   f"{', '.join(TARGETS)}")
    if base.granularity != "fine":
        raise grid_lib.PipelineError("--granularity does not apply: the pipeline trains every "
                                   "target of --targets")
    specs = []
    for g in groupings:
        for r in fractions:
            for t in targets:
                specs.append(grid_lib.spec(base, f"{t} {g} r={r:g}",
                                         {"grouping": g, "fraction": r, "target": t},
                                         granularity=t, train_fraction=r,
                                         **common.grouping_overrides(g)))
    return specs


def run(base, ctx: Context, groupings: Sequence[str] | None = None,
        fractions: Sequence[float] = FRACTIONS, targets: Sequence[str] = TARGETS) -> dict:
    specs = grid(base, common.groupings_for(base, groupings), fractions, targets)
    return grid_lib.execute(NAME, base, specs, ctx, write)


# --------------------------------------------------------------------------- summary

def summarise(specs, runs: dict) -> dict[tuple, list[dict]]:
    """{(grouping, fraction): one row per target, best coarse accuracy first}."""
    settings: dict[tuple, list[dict]] = {}
    for s in specs:
        settings.setdefault((s.tag["grouping"], s.tag["fraction"]), []).append(s)
    out = {}
    for key, members in settings.items():
        by_target = {s.tag["target"]: runs[s.name] for s in members}
        rows = []
        for t, res in by_target.items():
            rows.append({
                "target": t, "run": next(s.name for s in members if s.tag["target"] == t),
                "seeds": sorted(common.per_seed(res)), "acc": common.accuracy(res),
                "vs_coarse": common.gain(res, by_target["coarse"])
                if "coarse" in by_target and t != "coarse" else None,
                "vs_fine": common.gain(res, by_target["fine"])
                if "fine" in by_target and t != "fine" else None,
                "fine_acc": common.accuracy(res, "test/fine_accuracy"),
                "ece": common.accuracy(res, "test/coarse_ece"),
                "nll": _nll(res),
                "sibling": common.accuracy(res, "test/sibling_mistakes"),
                "acr": common.acr_cell(res) if common.acr_values(res) else "–",
                "from_fine": common.accuracy(res, "test/coarse_accuracy_from_fine"),
                "combined": common.accuracy(res, "test/coarse_accuracy_combined"),
            })
        rows.sort(key=lambda r: -r["acc"].mean)
        out[key] = rows
    return out


def _nll(results: Sequence[dict]) -> str:
    """Coarse NLL (nats) over seeds, mean [95% t CI] with three decimals."""
    values = list(grid_lib.by_seed(results, "test/coarse_nll", 1.0).values())
    return stats.interval_text(stats.mean_ci(values), 3) if values else "–"


def setting_text(key: tuple) -> str:
    grouping, fraction = key
    return f"{grouping}, {100 * fraction:g}% of the data"


def compare_text(iv) -> str:
    """'+2.0 [0.5, 3.5], higher' for a paired difference in points (95% CI)."""
    word = {"above": "higher", "below": "lower", "none": "no detectable difference",
            "unknown": "one seed, no CI"}[stats.direction(iv)]
    return f"{stats.interval_text(iv, 1, signed=True)}, {word}"


def findings_for(key: tuple, rows: list[dict]) -> list[str]:
    """Plain sentences: the best target, and each target against coarse and fine."""
    best = rows[0]
    text = [f"**{setting_text(key)}**: highest mean coarse accuracy `{best['target']}` "
            f"{stats.interval_text(best['acc'], bounds=(0, 100))}% ({len(best['seeds'])} "
            "seeds)."]
    for r in rows:
        parts = [f"vs `{ref}` {compare_text(r[f'vs_{ref}'])}" for ref in ("coarse", "fine")
                 if r[f"vs_{ref}"] is not None]
        if parts:
            text.append(f"{setting_text(key)}, `{r['target']}`: " + "; ".join(parts)
                        + " (points, paired 95% CI)")
    return text


def _table_rows(key: tuple, rows: list[dict]) -> list[list]:
    out = []
    for rank, r in enumerate(rows, 1):
        out.append([setting_text(key), str(rank), r["target"], r["acc"], r["vs_coarse"],
                    r["vs_fine"], r["fine_acc"], r["ece"], r["nll"], r["sibling"], r["acr"],
                    str(len(r["seeds"]))])
    return out


def write(base, ctx: Context, specs, runs: dict) -> str:
    summary = summarise(specs, runs)
    table_rows, findings, joint_rows = [], [], []
    for key, rows in summary.items():
        table_rows += _table_rows(key, rows)
        findings += findings_for(key, rows)
        joint_rows += [[setting_text(key), r["acc"], r["from_fine"], r["combined"]]
                       for r in rows if r["target"] == "joint"]
    table = Table(
        [Column("setting"), Column("rank"), Column("target"), Column("coarse acc (%)", "pct"),
         Column("Δ vs coarse (points)", "delta"), Column("Δ vs fine (points)", "delta"),
         Column("fine acc (%)", "pct"), Column("coarse ECE (%)", "pct"),
         Column("coarse NLL"), Column("sibling mistakes (%)", "pct"),
         Column("ACR: mean (min–max)"), Column("seeds")],
        table_rows, title="Targets ranked by coarse test accuracy per grouping and fraction",
        csv="targets.csv",
        notes=["Coarse accuracy: mean [95% Student-t CI] over seeds; Δ: mean of the paired "
               "per-seed differences (same data subset, initialisation and augmentation "
               "seed) with its 95% t CI. Other columns: mean [95% t CI] over seeds; ACR mean "
               "(min–max).",
               "Rank is by mean only: two targets whose Δ interval contains 0 are not told "
               "apart by these runs."])
    tables = [table]
    if joint_rows:
        tables.append(Table(
            [Column("setting"), Column("coarse head (reported) (%)", "pct"),
             Column("fine head → coarse (%)", "pct"), Column("combined (%)", "pct")],
            joint_rows, title="joint: the three coarse readings", csv="targets_joint.csv",
            notes=["`coarse_accuracy` of a joint run is its coarse head; the fine head mapped "
                   "to coarse (`--coarse_metric`) and the mean of both heads' coarse "
                   "probabilities are logged beside it."]))
    groups = [setting_text(k).replace(" of the data", "") for k in summary]
    targets = list(dict.fromkeys(r["target"] for rows in summary.values() for r in rows))
    series = {t: [next((r["acc"] for r in rows if r["target"] == t), None)
                  for rows in summary.values()] for t in targets}
    figure = plots.bars(os.path.join(ctx.report_dir, "targets_accuracy.png"), groups, series,
                        "coarse test accuracy by training target (mean [95% CI] over seeds)",
                        colours=COLOURS)
    notes = [f"Target settings: `--coarse_loss_weight={base.coarse_loss_weight:g}` (joint), "
             f"`--soft_beta={base.soft_beta:g}` (soft_labels), `--hxe_alpha={base.hxe_alpha:g}` "
             "(hxe); chosen before the runs (the flags' defaults), not tuned on them.",
             "Each target is compared with coarse and with fine in every setting: many paired "
             "tests at 95% each, so about one in twenty comparisons with no real difference "
             "still shows one; a difference that holds in one setting only deserves more "
             "seeds before it is trusted.",
             "Coarse ECE: 15 equal-width confidence bins of the coarse probabilities; coarse "
             "NLL: mean -log P(true coarse class); sibling mistakes: share of fine mistakes "
             "whose predicted fine class has the true coarse class (targets with fine "
             "outputs)."]
    older = sorted({s.name for s in specs for r in runs[s.name]
                    if r.get("final", {}).get("test/coarse_ece") is None})
    if older:
        notes.append("— in the ECE, NLL and sibling-mistakes columns: the run did not log "
                     "them (trained before lg_tf had these metrics and reused here, as "
                     "finished runs are): " + ", ".join(f"`{n}`" for n in older) + ".")
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, tables, findings,
        [(os.path.basename(figure), "Coarse test accuracy per grouping and fraction, one bar "
          "per target (error bars: 95% CI over seeds).")],
        None, "not in the paper (it compares fine and coarse only)", notes=notes,
        in_paper=False, seeds_text="accuracies and Δ show mean [95% Student-t CI] over seeds; "
        "the runs table lists every run")


EXTRA_FLAGS = {
    "groupings": ("list", [], "Hierarchies to compare on (default: shapes,shapes_mixed_b on "
                  "the embedded data, else the dataset's own; 'own' = an image folder's "
                  "tree or --hierarchy_file)."),
    "fractions": ("list", [f"{r:g}" for r in FRACTIONS], "Fractions r of the training data."),
    "targets": ("list", list(TARGETS), "Training targets (--granularity values) to compare."),
}


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, list(values.groupings),
                              grid_lib.float_list(values.fractions, "fractions", "0.2,1.0"),
                              list(values.targets)))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
