"""Should I label my data finer? Paired fine/coarse trainings on the user's data, analysed.

`advise(base, ctx, fractions)` trains, for every fraction r and seed, one run on the fine
labels (FC) and one on the coarse labels (CC) with the same budget, data subset and seed
(through the pipelines' resumable runner), then `analyse` turns the results into:

- ΔA = FC − CC per fraction: the mean of the paired per-seed differences with a 95%
  Student-t CI and a plain verdict (lg_tf.stats);
- ACR of the fine runs with a bootstrap CI over test images;
- per coarse class: recall of FC and CC, their difference, and the per-coarse ACR
  (mean confusion with other coarse classes / mean confusion among its own fine
  classes), ranked, so the user sees which coarse classes are worth labelling finer;
- data efficiency: the fraction of data at which CC matches FC's accuracy.

`write` puts advice.md, advice.json and the figures in the output folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Sequence

import numpy as np

from lg_tf import stats
from pipelines import common

log = logging.getLogger("lg_tf")


def grid(base, fractions: Sequence[float]) -> list[common.RunSpec]:
    if not fractions:
        raise common.PipelineError("--fractions is empty; give training fractions such as "
                                   "0.25,1.0")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise common.PipelineError(f"--fractions={','.join(map(str, fractions))}: each must "
                                   "be in (0, 1], e.g. 0.25,1.0")
    specs = []
    for r in sorted(set(fractions)):
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(common.spec(base, f"{series} r={r:g}",
                                     {"series": series, "fraction": r},
                                     granularity=gran, train_fraction=r))
    return specs


def run(base, ctx: common.Context, fractions: Sequence[float]) -> dict:
    """Trains (or resumes, or skips finished) the paired runs; writes the advice."""
    specs = grid(base, fractions)
    def report(_base, c, s, runs):
        return write(c.report_dir, {**analyse(s, runs), "command": c.command})

    return common.execute("advise", base, specs, ctx, report)


# --------------------------------------------------------------------------- analysis

def _by_seed(results: Sequence[dict], key: str = "test/coarse_accuracy") -> dict[int, float]:
    return {r["config"]["seed"]: r["final"][key] for r in results if key in r.get("final", {})}


def _interval_dict(iv) -> dict | None:
    if iv is None:
        return None
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n, "std": iv.std}


def _confusion_pairs(model_dir: str) -> tuple[np.ndarray, np.ndarray, list] | None:
    """(true, predicted, parent) of a fine run's test images, from its confusion.json.

    The counts are the multiset of (true, predicted) pairs, so resampling them is
    resampling test images.
    """
    path = os.path.join(model_dir, "confusion.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    counts = np.asarray(data["matrix"], np.int64)
    true, pred = np.nonzero(counts)
    reps = counts[true, pred]
    return np.repeat(true, reps), np.repeat(pred, reps), list(data["parent"])


def _run_folder(results: dict) -> str | None:
    """A finished run's folder (its export lies in <model_dir>/export)."""
    export = results.get("export_dir")
    return os.path.dirname(os.path.normpath(export)) if export else None


def analyse(specs, runs: dict, model_dir_of=_run_folder) -> dict:
    """The advice as a JSON-ready dict (numbers in percentage points where accuracies)."""
    by = {(s.tag["fraction"], s.tag["series"]): s for s in specs}
    fractions = sorted({s.tag["fraction"] for s in specs})
    rows, fc_means, cc_means = [], [], []
    for r in fractions:
        fc, cc = _by_seed(runs[by[(r, "FC")].name]), _by_seed(runs[by[(r, "CC")].name])
        seeds = sorted(set(fc) & set(cc))
        if not seeds:
            rows.append({"fraction": r, "seeds": [], "verdict": "no finished pair of runs"})
            fc_means.append(None)
            cc_means.append(None)
            continue
        gain = stats.paired_difference([100 * fc[s] for s in seeds],
                                       [100 * cc[s] for s in seeds])
        fc_iv = stats.mean_ci([100 * fc[s] for s in seeds])
        cc_iv = stats.mean_ci([100 * cc[s] for s in seeds])
        fc_means.append(fc_iv.mean)
        cc_means.append(cc_iv.mean)
        rows.append({"fraction": r, "seeds": seeds, "fc": _interval_dict(fc_iv),
                     "cc": _interval_dict(cc_iv), "gain": _interval_dict(gain),
                     "verdict": stats.verdict(gain, budget_text=f"at {100 * r:g}% of the "
                                              "training data"),
                     "per_coarse": per_coarse(runs[by[(r, "FC")].name],
                                              runs[by[(r, "CC")].name])})
    top = fractions[-1]
    fine_runs = runs[by[(top, "FC")].name]
    return {"fractions": rows, "acr": acr_summary(fine_runs, model_dir_of),
            "data_efficiency": stats.data_savings(fractions, fc_means, cc_means)
            if any(m is not None for m in fc_means) else [],
            "hierarchy": fine_runs[0]["hierarchy"] if fine_runs else None}


def acr_summary(fine_runs: Sequence[dict], model_dir_of=_run_folder) -> dict:
    """ACR per seed, and for the first seed its bootstrap CI over test images."""
    values = [r["final"].get("test/acr") for r in fine_runs]
    out = {"per_seed": values, "note": next((r["final"].get("test/acr_note")
                                             for r in fine_runs
                                             if r["final"].get("test/acr_note")), None),
           "undefined_reason": next((r["final"].get("test/acr_undefined_reason")
                                     for r in fine_runs
                                     if r["final"].get("test/acr_undefined_reason")), None)}
    finite = [v for v in values if v is not None]
    if len(finite) > 1:
        out["over_seeds"] = _interval_dict(stats.mean_ci(finite))
    folder = model_dir_of(fine_runs[0]) if (model_dir_of and fine_runs) else None
    pairs = _confusion_pairs(folder) if folder else None
    if pairs is not None:
        true, pred, parent = pairs
        out["bootstrap"] = stats.bootstrap_acr(true, pred, parent).to_dict()
    return out


def per_coarse(fine_runs: Sequence[dict], coarse_runs: Sequence[dict]) -> list[dict]:
    """Per coarse class: recall of FC and CC (percent, mean over seeds), the gain, and the
    per-coarse ACR of the fine runs; ranked by gain, largest first."""
    def recalls(results):
        out: dict[str, list[float]] = {}
        for r in results:
            for k, v in r.get("final", {}).items():
                if k.startswith("test/recall/"):
                    out.setdefault(k[len("test/recall/"):], []).append(100 * v)
        return out
    fc, cc = recalls(fine_runs), recalls(coarse_runs)
    breakdown = fine_runs[0].get("acr_breakdown", {}) if fine_runs else {}
    rows = []
    for name in fc.keys() & cc.keys():
        part = breakdown.get(name, {})
        intra, inter = part.get("intra"), part.get("inter")
        ratio = inter / intra if intra and inter is not None else None
        f, c = float(np.mean(fc[name])), float(np.mean(cc[name]))
        rows.append({"coarse": name, "fc_recall": f, "cc_recall": c, "gain": f - c,
                     "acr": ratio,
                     # its fine classes were never confused with each other: ACR unbounded
                     "siblings_never_confused": intra == 0 and bool(inter)})
    return sorted(rows, key=lambda row: -row["gain"])


# --------------------------------------------------------------------------- report

def _fmt(iv: dict | None, signed: bool = False) -> str:
    if not iv:
        return "–"
    s = "+" if signed else ""
    if iv["low"] is None:
        return f"{iv['mean']:{s}.1f} (1 seed)"
    return f"{iv['mean']:{s}.1f} [{iv['low']:.1f}, {iv['high']:.1f}]"


def headline(advice: dict) -> str:
    """The one-paragraph answer printed at the end of `lg_tf.advise`."""
    lines = [row["verdict"] for row in advice["fractions"]]
    acr = advice["acr"]
    boot = acr.get("bootstrap")
    if boot and boot.get("value") is not None:
        lines.append(f"ACR of the fine model: {boot['value']:.3g} [{boot['low']:.3g}, "
                     f"{boot['high']:.3g}] (95% bootstrap CI over test images)")
    elif acr.get("undefined_reason"):
        lines.append(f"ACR undefined: {acr['undefined_reason']}")
    return "\n".join(lines)


def write(out_dir: str, advice: dict) -> str:
    """advice.md, advice.json and two PNGs in out_dir; returns advice.md's path."""
    from lg_tf import plots
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "advice.json"), "w") as f:
        json.dump(advice, f, indent=2, default=float)
    figs = [_gain_figure(advice, os.path.join(out_dir, "gain_by_fraction.png"), plots),
            _coarse_figure(advice, os.path.join(out_dir, "per_coarse_gain_vs_acr.png"), plots)]
    path = os.path.join(out_dir, "advice.md")
    with open(path, "w") as f:
        f.write(markdown(advice, [os.path.basename(p) for p in figs if p]))
    return path


def markdown(advice: dict, figures: Sequence[str]) -> str:
    parts = ["# Should I label finer? — lg_tf.advise", ""]
    if advice.get("command"):
        parts += [f"Command: `{advice['command']}`", ""]
    parts += ["## Verdict", ""]
    parts += [f"- {line}" for line in headline(advice).splitlines()] + [""]
    parts += ["## Fine (FC) vs coarse (CC) training, coarse test accuracy (%)", "",
              "| fraction | seeds | CC | FC | ΔA = FC − CC (points, 95% CI) |",
              "|---|---|---|---|---|"]
    for row in advice["fractions"]:
        parts.append(f"| {row['fraction']:g} | {len(row['seeds'])} | {_fmt(row.get('cc'))} | "
                     f"{_fmt(row.get('fc'))} | {_fmt(row.get('gain'), signed=True)} |")
    parts += ["", "ΔA is the mean of per-seed paired differences (same seed: same data "
              "subset, initialisation and augmentation); Student-t 95% CI.", ""]
    if advice["data_efficiency"]:
        parts += ["## Data efficiency", ""]
        for e in advice["data_efficiency"]:
            if e["cc_fraction"] is None:
                txt = "CC does not reach it within the fractions run (it needs more data)"
            else:
                bound = "at most " if e["at_most"] else ""
                txt = (f"CC needs {bound}{100 * e['cc_fraction']:.0f}% of the data for the "
                       "same accuracy")
            parts.append(f"- FC at {100 * e['fraction']:g}% of the data reaches "
                         f"{e['fc_accuracy']:.1f}%; {txt}.")
        parts.append("")
    top = advice["fractions"][-1]
    if top.get("per_coarse"):
        parts += [f"## Which coarse classes gain (fraction {top['fraction']:g})", "",
                  "| coarse class | CC recall | FC recall | gain (points) | per-coarse ACR |",
                  "|---|---|---|---|---|"]
        for c in top["per_coarse"]:
            acr = ("∞ (siblings never confused)" if c.get("siblings_never_confused")
                   else "–" if c["acr"] is None else f"{c['acr']:.3g}")
            parts.append(f"| {c['coarse']} | {c['cc_recall']:.1f} | {c['fc_recall']:.1f} | "
                         f"{c['gain']:+.1f} | {acr} |")
        parts += ["", "Per-coarse ACR: the class's mean confusion with other coarse "
                  "classes over the mean confusion among its own fine classes (higher: its "
                  "fine classes are distinct from each other, where the paper finds fine "
                  "labels help); from the first seed's fine run. Recalls are means over seeds.", ""]
    note = advice["acr"].get("note")
    if note:
        parts += [f"Note on ACR: {note}", ""]
    for name in figures:
        parts += [f"![{name}]({name})", ""]
    return "\n".join(parts)


def _gain_figure(advice: dict, path: str, plots) -> str | None:
    rows = [r for r in advice["fractions"] if r.get("gain")]
    if not rows:
        return None
    fig = plots.canvas((5.6, 4.2))
    ax = fig.add_subplot()
    xs = [100 * r["fraction"] for r in rows]
    ys = [r["gain"]["mean"] for r in rows]
    err = [[0 if r["gain"]["low"] is None else r["gain"]["mean"] - r["gain"]["low"]
            for r in rows],
           [0 if r["gain"]["high"] is None else r["gain"]["high"] - r["gain"]["mean"]
            for r in rows]]
    ax.errorbar(xs, ys, yerr=err, fmt="o-", capsize=4)
    ax.axhline(0, color="black", lw=0.7)
    ax.set_xlabel("training data used (%)")
    ax.set_ylabel("ΔA = FC − CC (points, 95% CI)")
    ax.set_title("Gain of fine labels on the coarse task")
    ax.grid(alpha=0.3)
    plots.save(fig, path)
    return path


def _coarse_figure(advice: dict, path: str, plots) -> str | None:
    per = advice["fractions"][-1].get("per_coarse") or []
    pts = [c for c in per if c["acr"] is not None and math.isfinite(c["acr"])]
    if not pts:
        return None
    fig = plots.canvas((5.6, 4.2))
    ax = fig.add_subplot()
    ax.scatter([c["acr"] for c in pts], [c["gain"] for c in pts])
    for c in pts:
        ax.annotate(c["coarse"], (c["acr"], c["gain"]), xytext=(4, 3),
                    textcoords="offset points", fontsize=8)
    ax.axhline(0, color="black", lw=0.7)
    ax.set_xlabel("per-coarse ACR of the fine model")
    ax.set_ylabel("recall gain FC − CC (points)")
    ax.set_title("Which coarse classes gain from fine labels")
    ax.grid(alpha=0.3)
    plots.save(fig, path)
    return path
