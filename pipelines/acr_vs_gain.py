"""Fig. 6 / Fig. 7: does ACR predict the gain of fine over coarse training?

usage: python -m pipelines.acr_vs_gain --runs_dir=DIR --out_dir=DIR [--report_dir=DIR]

Scans --runs_dir (any tree of finished run folders holding results.json, e.g. the out_dir
of other pipelines) and pairs each fine run with the coarse runs that share everything
else (the config without granularity, seed and settings that do not change training; a
coarse run's --label_noise is ignored, as noise only changes fine labels). For each pair:
ΔA_test = FC − CC (means over seeds) against the fine run's ACR; then Pearson and Spearman
correlation, a table and a scatter like the paper's Fig. 6/7 next to the published points.
Trains nothing (--report_only changes nothing; --shard and --print_commands are refused).
"""

from __future__ import annotations

import dataclasses
import os

from lg_tf import config as config_lib
from lg_tf import grid as grid_lib
from lg_tf import run_dir
from lg_tf.grid import Context
from pipelines import common, plots, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "acr_vs_gain"
TITLE = "Fig. 6 / Fig. 7 — ACR against the gain of fine training (ΔA_test)"
# Pairs differ only in granularity and seed; everything that changes the numbers must agree.
IGNORED = (set(config_lib.specs()) - set(config_lib.result_fields())) | {"granularity", "seed"}
NEUTRAL = {"train_fraction": 1.0, "label_noise": 0.0, "dropout": 0.0, "extra_layer": False,
           "coarse_zero": "", "hierarchy_file": ""}
SHORT = {"train_fraction": "r", "label_noise": "p", "dropout": "dropout",
         "hierarchy": "h", "coarse_zero": "cz", "dataset": "dataset", "extra_layer": "extra"}


@dataclasses.dataclass
class Pair:
    key: tuple                    # the fine runs' config, less IGNORED fields
    fine: list                    # results dicts, one per seed
    coarse: list
    fine_dir: str                 # folder of the first fine run (for the listing)
    ident: int = 0
    label: str = ""

    @property
    def config(self) -> dict:
        return dict(self.key)


def _key(config: dict) -> tuple:
    """The config less IGNORED fields; fields a run predates take today's defaults."""
    config = {**config_lib.Config().to_json(), **config}
    out = []
    for k in sorted(config):
        if k in IGNORED:
            continue
        v = config[k]
        out.append((k, tuple(v) if isinstance(v, list) else v))
    return tuple(out)


def _coarse_match(key: tuple) -> tuple:
    return tuple((k, 0.0 if k == "label_noise" else v) for k, v in key)


def scan(runs_dir: str) -> list[tuple[str, dict]]:
    """(folder, results) of every finished run under runs_dir, in sorted order."""
    found = []
    for folder, dirs, files in os.walk(runs_dir):
        dirs.sort()
        if "results.json" in files:
            res = run_dir.finished_results(folder)
            if res and isinstance(res.get("config"), dict):
                found.append((folder, res))
    return sorted(found, key=lambda x: x[0])


def pair_runs(found: list[tuple[str, dict]]) -> tuple[list[Pair], int]:
    """Pairs of (fine group, coarse group); also how many runs stayed unpaired."""
    fine, coarse, first_dir = {}, {}, {}
    others = 0   # runs of the other targets (joint, soft_labels, hxe): not the paper's FC
    for folder, res in found:
        cfg = res["config"]
        key = _key(cfg)
        if cfg.get("granularity", "fine") not in ("fine", "coarse"):
            others += 1
            continue
        if cfg.get("granularity") == "coarse":
            group = coarse.setdefault(_coarse_match(key), {})
        else:
            group = fine.setdefault(key, {})
            first_dir.setdefault(key, os.path.dirname(folder) if
                                 os.path.basename(folder).startswith("seed_") else folder)
        group.setdefault(cfg.get("seed"), res)   # one run per seed (the first found)
    pairs, used = [], set()
    for key in sorted(fine, key=str):
        match = coarse.get(_coarse_match(key))
        if match is None:
            continue
        used.add(_coarse_match(key))
        pairs.append(Pair(key, list(fine[key].values()), list(match.values()), first_dir[key]))
    unpaired = (sum(len(g) for k, g in fine.items() if _coarse_match(k) not in coarse)
                + sum(len(g) for k, g in coarse.items() if k not in used) + others)
    _label(pairs)
    return pairs, unpaired


def _label(pairs: list[Pair]) -> None:
    varying = []
    if pairs:
        keys = [dict(p.key) for p in pairs]
        for field in keys[0]:
            if len({repr(k.get(field)) for k in keys}) > 1:
                varying.append(field)
    for i, p in enumerate(pairs, 1):
        c = p.config
        parts = [f"{SHORT.get(f, f)}={c.get(f):g}" if isinstance(c.get(f), float) else
                 f"{SHORT.get(f, f)}={c.get(f)}" for f in varying
                 if f not in NEUTRAL or c.get(f) != NEUTRAL[f]]
        p.ident = i
        p.label = ", ".join(parts) or ("baseline" if varying else (
            c.get("coarse_zero") or c.get("hierarchy") or c.get("dataset", "?")))


def run(ctx: Context, runs_dir: str = "", base: config_lib.Config | None = None) -> dict:
    if ctx.sharded or ctx.print_commands:
        raise grid_lib.PipelineError("acr_vs_gain trains nothing, so --shard and "
                                   "--print_commands do not apply; run it once after the "
                                   "runs it pairs are finished")
    runs_dir = runs_dir or ctx.out_dir
    if not os.path.isdir(runs_dir):
        raise grid_lib.PipelineError(f"--runs_dir={runs_dir} does not exist; point it at the "
                                   "--out_dir of other pipelines (or any folder of runs)")
    found = scan(runs_dir)
    pairs, unpaired = pair_runs(found)
    if ctx.dry_run:
        print(f"{NAME}: {len(found)} finished runs under {runs_dir}, {len(pairs)} fine/coarse "
              f"pairs, {unpaired} unpaired; trains nothing", flush=True)
        for p in pairs:
            print(f"  {p.ident:>3}  {p.label:<40} fine seeds {len(p.fine)}, coarse seeds "
                  f"{len(p.coarse)}  {p.fine_dir}")
        return {"pairs": pairs, "report": None}
    if not found:
        raise grid_lib.PipelineError(f"no finished run (results.json with final metrics) under "
                                   f"--runs_dir={runs_dir}; run other pipelines first")
    return {"pairs": pairs, "report": write(ctx, runs_dir, found, pairs, unpaired,
                                            base or config_lib.Config())}


def write(ctx: Context, runs_dir: str, found, pairs: list[Pair], unpaired: int,
          base: config_lib.Config) -> str:
    rows, points = [], []
    for p in pairs:
        gain = common.gain(p.fine, p.coarse)
        c = p.config
        where = c.get("coarse_zero") and f"cifar10 cz{c['coarse_zero']}" or (
            f"{c.get('dataset')}/{c.get('hierarchy') or 'default'}")
        rows.append([str(p.ident), p.label, where, f"{len(p.fine)}/{len(p.coarse)}",
                     common.accuracy(p.fine), common.accuracy(p.coarse), gain,
                     common.acr_cell(p.fine), os.path.relpath(p.fine_dir, runs_dir)])
        points.append((str(p.ident), common.mean_or_none(common.acr_values(p.fine)),
                       gain.mean if gain else None, gain.half_width if gain else None))
    table = Table([Column("ID"), Column("pair"), Column("dataset/hierarchy"),
                   Column("seeds FC/CC"), Column("FC test acc (%)", "pct"),
                   Column("CC test acc (%)", "pct"), Column("ΔA = FC − CC", "delta"),
                   Column("ACR: mean (min–max)"), Column("fine runs")],
                  rows, title="Fine/coarse pairs found", csv="acr_vs_gain_pairs.csv",
                  notes=[f"{len(found)} finished runs under `{runs_dir}`; {len(pairs)} pairs; "
                         f"{unpaired} runs without a partner"
                         + (" (e.g. extra-layer coarse runs, which have no fine counterpart)."
                            if unpaired else "."),
                         "ΔA is the mean of the per-seed paired differences over the seeds "
                         "both sides have [95% t CI]; a coarse baseline shared by several fine "
                         "runs (Table VII's) enters each pair."])
    defined = [pt for pt in points if pt[1] is not None and pt[2] is not None]
    ours = common.correlation([pt[1] for pt in defined], [pt[2] for pt in defined])
    corr_rows = [["ours (mean ACR, mean ΔA per pair)"] + common.correlation_cells(ours)]
    for name, pts in (("paper, Fig. 6 (Table I datasets + CIFAR-100-5/-15)",
                       [(x, y) for _, x, y in pub.FIG6]),
                      ("paper, Fig. 7a (Table VI, CIFAR-10 groupings)",
                       [(row[5], row[4] - row[3]) for row in pub.TABLE6]),
                      ("paper, Fig. 7b (Table VII, CIFAR-10 noise)",
                       [(v[2], v[1]) for v in pub.TABLE7["cifar10"].values()])):
        corr_rows.append([name] + common.correlation_cells(common.paper_correlation(pts)))
    corr = Table([Column("points"), Column("n"), Column("Spearman ρ [95% CI]"),
                  Column("Pearson r [95% CI]")],
                 corr_rows, title="Correlation of ΔA with ACR", csv="acr_vs_gain.csv",
                 notes=["Percentile bootstrap CIs over the points (2,000 resamples, seed 0). "
                        "The paper states the trend without a coefficient; its rows are "
                        "computed from its published numbers the same way."])
    finding = f"ΔA against ACR: {common.correlation_text(ours, 'pairs')}."
    if ours.get("spearman") is not None and ours["spearman_low"] is not None:
        finding += (" The interval excludes 0: ACR and the gain move together here." if
                    ours["spearman_low"] > 0 else
                    " The interval includes 0: these pairs do not show the paper's trend "
                    "detectably.")
    findings = [finding]
    noisy = [p for p in pairs if len(p.fine) < 2 or len(p.coarse) < 2]
    if noisy:
        findings.append(f"{len(noisy)} of {len(pairs)} pairs have a single seed on one side; "
                        "their ΔA carries no interval.")
    figure = plots.acr_scatter(os.path.join(ctx.report_dir, "fig6_acr_vs_gain.png"), points,
                               "ours: ΔA vs ACR (IDs as in the table; bars: 95% CI)",
                               paper=[(lab, x, y) for lab, x, y in pub.FIG6],
                               paper_title="paper, Fig. 6 (published numbers)")
    datasets = sorted({str(dict(p.key).get("dataset")) for p in pairs})
    specs, runs = [], {}
    for p in pairs:
        for gran, results in (("fine", p.fine), ("coarse", p.coarse)):
            s = grid_lib.RunSpec(f"pair{p.ident}_{gran}", f"{p.label} {gran}")
            specs.append(s)
            runs[s.name] = results
    head = _header(ctx, runs_dir, found, pairs, datasets)
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table, corr], findings,
        [(os.path.basename(figure), "ΔA = FC − CC (bars: 95% CI over seeds) against the fine "
          "run's mean ACR; numbers are pair IDs; dashed: least-squares line. Right: the "
          "paper's Fig. 6 points from its tables.")],
        None, "", header_text=head)


def _header(ctx: Context, runs_dir: str, found, pairs, datasets) -> str:
    lines = [f"# {TITLE}", ""]
    not_paper = [d for d in datasets if d in ("embedded", "folder")]
    if not_paper:
        lines += [f"> ⚠ **Not in the paper — not a reproduction.** Pairs on "
                  f"{', '.join(not_paper)} have no published counterpart; the paper's points "
                  "are shown beside ours for the trend only.", ""]
    epochs = sorted({r["config"]["epochs"] for _, r in found})
    models = sorted({f"{r['config']['model']} width {r['config']['width']}"
                     if r["config"]["model"] == "preact_resnet18" else
                     f"wide_resnet {r['config']['wrn_depth']}-{r['config']['wrn_widen']}"
                     for _, r in found})
    seeds = sorted({r["config"]["seed"] for _, r in found})
    rows = [("runs scanned", f"`{runs_dir}` ({len(found)} finished runs, {len(pairs)} pairs)"),
            ("datasets", ", ".join(datasets) or "none"),
            ("models", ", ".join(models)),
            ("epochs (at fraction 1, as the runs were trained)", ", ".join(map(str, epochs))),
            ("seeds", ", ".join(map(str, seeds))),
            ("command", f"`{ctx.command}`" if ctx.command else "(called from Python)"),
            ("HParams view", f"`tensorboard --logdir {ctx.hparams_for(NAME)}`")]
    lines += ["| | |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


EXTRA_FLAGS = {"runs_dir": ("string", "", "Folder tree of finished runs to pair (default: "
                                          "--out_dir).")}


def main(values, base, ctx):
    grid_lib.print_report(run(ctx, values.runs_dir, base))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
