"""Should I label my data finer? Paired fine/coarse trainings on the user's data, analysed.

`run(base, ctx, fractions)` trains, for every fraction r and seed, one run on the fine
labels (FC) and one on the coarse labels (CC) with the same budget, data subset and seed
(a `lg_tf.grid` grid: resumable, shardable), then `analyse` turns the results into:

- ΔA = FC − CC per fraction: the mean of the paired per-seed differences with a 95%
  Student-t CI and a plain verdict (lg_tf.stats);
- ACR of the fine runs at that fraction: mean (min–max) over seeds, and the first seed's
  bootstrap CI over test images (which covers test sampling, not training variation);
- per coarse class: recall of FC and CC, their difference, and the per-coarse ACR
  (mean confusion with other coarse classes / mean confusion among its own fine
  classes), ranked, so the user sees which coarse classes are worth labelling finer;
- data efficiency, only where fine labels detectably help: the fraction of data at which
  CC's mean accuracy reaches FC's.

`write` puts advice.md, advice.json and the figures in the output folder.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Sequence

import numpy as np

from lg_tf import files, grid, stats
from lg_tf.errors import PipelineError

log = logging.getLogger("lg_tf")

# What advise decides itself: a value given for these would be silently replaced.
OWN_FIELDS = {"train_fraction": "--fractions", "granularity": "the FC/CC pair it trains",
              "fine_label_fraction": "--fine_fractions"}


def check_base(base) -> None:
    """Refuses flags advise sets itself, and data without real fine classes (where FC and
    CC would train the same classifier and 'no difference' would be a tautology)."""
    from lg_tf.config import Config
    from lg_tf.data import datasets
    defaults = Config()
    for field, by in OWN_FIELDS.items():
        if getattr(base, field) != getattr(defaults, field):
            raise PipelineError(f"--{field} does not apply to lg_tf.advise: it sets it itself "
                                f"({by}); drop --{field}={getattr(base, field)}")
    h = datasets.resolve_hierarchy(base)
    if h.num_fine == h.num_coarse:
        raise PipelineError(
            f"the data has no fine classes below its coarse ones (hierarchy '{h.name}': "
            f"{h.num_fine} fine classes in {h.num_coarse} coarse classes, one each), so fine "
            "and coarse training would be the same; give the images fine labels (folders "
            "DIR/<coarse>/<fine>/, --labels_file, or lg_tf.discover) first")


def grid_specs(base, fractions: Sequence[float],
               fine_fractions: Sequence[float] = ()) -> list[grid.RunSpec]:
    """CC and FC at each fraction r; with `fine_fractions`, also fine training where only a
    share q of each fine class keeps its fine label (q = 1 is FC itself)."""
    fractions = grid.float_list([str(f) for f in fractions], "fractions", "0.25,1.0")
    qs = (grid.float_list([str(q) for q in fine_fractions], "fine_fractions",
                          "0,0.05,0.1,0.25,0.5,1", low_open=False) if fine_fractions else [])
    specs = []
    for r in fractions:
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(grid.spec(base, f"{series} r={r:g}",
                                   {"series": series, "fraction": r},
                                   granularity=gran, train_fraction=r))
        specs += [grid.spec(base, f"FC q={q:g} r={r:g}",
                            {"series": "partial", "fraction": r, "q": q},
                            granularity="fine", train_fraction=r, fine_label_fraction=q)
                  for q in qs if q < 1]
    return specs


def run(base, ctx: grid.Context, fractions: Sequence[float],
        fine_fractions: Sequence[float] = ()) -> dict:
    """Trains (or resumes, or skips finished) the paired runs; writes the advice."""
    check_base(base)
    specs = grid_specs(base, fractions, fine_fractions)

    def report(_base, c, s, runs):
        return write(c.report_dir, {**analyse(s, runs), "command": c.command})

    return grid.execute("advise", base, specs, ctx, report)


# --------------------------------------------------------------------------- analysis

def _iv(iv: stats.Interval | None) -> dict | None:
    return None if iv is None else iv.to_dict()


def analyse(specs, runs: dict) -> dict:
    """The advice as a JSON-ready dict (numbers in percentage points where accuracies)."""
    by = {(s.tag["fraction"], s.tag["series"]): s for s in specs}
    fractions = sorted({s.tag["fraction"] for s in specs})
    top_cc = runs[by[(fractions[-1], "CC")].name]
    rows = [_fraction_row(r, runs[by[(r, "FC")].name], runs[by[(r, "CC")].name], top_cc)
            for r in fractions]
    top = runs[by[(fractions[-1], "FC")].name]
    return {"fractions": rows, "data_efficiency": _data_efficiency(rows),
            "partial": [partial_curve(specs, runs, r) for r in fractions
                        if any(s.tag.get("q") is not None and s.tag["fraction"] == r
                               for s in specs)],
            "hierarchy": top[0]["hierarchy"] if top else None}


def partial_curve(specs, runs: dict, fraction: float) -> dict:
    """ΔA(q) = accuracy with a share q of fine labels − CC, paired over seeds, for every q
    run at `fraction` (q = 1: FC), and the smallest q reaching half and 90% of the full
    gain ΔA(1) by linear interpolation of the mean curve (only where ΔA(1) is detectably
    above 0: otherwise there is no gain to reach)."""
    mine = [s for s in specs if s.tag["fraction"] == fraction]
    cc = next(s for s in mine if s.tag["series"] == "CC")
    curve = sorted([(s.tag["q"], s) for s in mine if s.tag["series"] == "partial"]
                   + [(1.0, next(s for s in mine if s.tag["series"] == "FC"))],
                   key=lambda item: item[0])
    points = []
    for q, s in curve:
        a, b = grid.by_seed(runs[s.name]), grid.by_seed(runs[cc.name])
        seeds = sorted(set(a) & set(b))
        gain = (stats.paired_difference([a[k] for k in seeds], [b[k] for k in seeds])
                if seeds else None)
        points.append({"q": q, "seeds": seeds, "gain": _iv(gain),
                       "accuracy": _iv(stats.mean_ci([a[k] for k in seeds])) if seeds else None,
                       "labelled": _labelled(runs[s.name])})
    full = points[-1]["gain"]
    helps = full is not None and stats.direction(stats.Interval.from_dict(full)) == "above"
    out = {"fraction": fraction, "points": points, "full_gain_detectable": helps}
    for p in points:
        p["share"] = p["gain"]["mean"] / full["mean"] if helps and p["gain"] else None
    if helps:
        qs = [p["q"] for p in points]
        means = [p["gain"]["mean"] if p["gain"] else None for p in points]
        for name, part in (("half", 0.5), ("ninety", 0.9)):
            target = part * full["mean"]
            q = stats.matching_fraction(qs, means, target) if any(
                m is not None for m in means) else None
            out[name] = {"q": q, "at_most": q is not None and means[0] is not None
                         and means[0] >= target}
    return out


def _labelled(results: Sequence[dict]) -> float | None:
    """Share of training images that had a fine label (results.json's data counts)."""
    shares = [r["data"]["train_fine_labelled"] / r["data"]["train_examples"]
              for r in results if r.get("data", {}).get("train_examples")
              and r["data"].get("train_fine_labelled") is not None]
    return sum(shares) / len(shares) if shares else None


def _fraction_row(r: float, fine: Sequence[dict], coarse: Sequence[dict],
                  top_coarse: Sequence[dict]) -> dict:
    fc, cc = grid.by_seed(fine), grid.by_seed(coarse)
    seeds = sorted(set(fc) & set(cc))
    if not seeds:
        return {"fraction": r, "seeds": [], "verdict": "no finished pair of runs"}
    gain = stats.paired_difference([fc[s] for s in seeds], [cc[s] for s in seeds])
    return {"fraction": r, "seeds": seeds,
            "gain_vs_top": _iv(stats.paired_by_seed(fc, grid.by_seed(top_coarse))),
            "fc": _iv(stats.mean_ci([fc[s] for s in seeds])),
            "cc": _iv(stats.mean_ci([cc[s] for s in seeds])), "gain": _iv(gain),
            "direction": stats.direction(gain),
            "verdict": stats.verdict(gain, budget_text=f"at {100 * r:g}% of the training data"),
            "acr": acr_summary(fine), "per_coarse": per_coarse(fine, coarse)}


def _data_efficiency(rows: list[dict]) -> list[dict]:
    """stats.data_savings over the fractions, kept only where the paired intervals support
    it: a data saving is claimed where fine labels help, not where the runs cannot tell."""
    done = [row for row in rows if row.get("gain")]
    if not done:
        return []
    def iv(d):
        return None if d is None else stats.Interval.from_dict(d)
    out = stats.data_savings([row["fraction"] for row in done],
                             [row["fc"]["mean"] for row in done],
                             [row["cc"]["mean"] for row in done],
                             [iv(row["gain"]) for row in done],
                             [iv(row.get("gain_vs_top")) for row in done])
    return [{**e, "vs_top": _iv(e["vs_top"])} if "vs_top" in e else e for e in out]


def _confusion_pairs(model_dir: str) -> tuple[np.ndarray, np.ndarray, list] | None:
    """(true, predicted, parent) of a fine run's test images, from its confusion.json.

    The counts are the multiset of (true, predicted) pairs, so resampling them is
    resampling test images.
    """
    data = files.read_json(os.path.join(model_dir, "confusion.json"))
    if not data:
        return None
    counts = np.asarray(data["matrix"], np.int64)
    true, pred = np.nonzero(counts)
    reps = counts[true, pred]
    return np.repeat(true, reps), np.repeat(pred, reps), list(data["parent"])


def acr_summary(fine_runs: Sequence[dict]) -> dict:
    """ACR of the fine runs: per seed and over seeds (mean, min, max), and the first
    seed's bootstrap CI over its test images (test sampling only, labelled as such). A seed
    whose fine classes were never confused with a sibling has ACR ∞: it is counted
    (`infinite_seeds`; JSON has no ∞, so its `per_seed` entry is None), not dropped."""
    values = [stats.run_acr(r["final"]) for r in fine_runs]
    known = [v for v in values if v is not None]
    finite = [v for v in known if math.isfinite(v)]
    out = {**stats.acr_seeds(values),
           "mean": (sum(known) / len(known) if finite and len(finite) == len(known)
                    else None),
           "min": min(finite) if finite else None, "max": max(finite) if finite else None,
           "note": next((r["final"].get("test/acr_note") for r in fine_runs
                         if r["final"].get("test/acr_note")), None),
           "undefined_reason": next((r["final"].get("test/acr_undefined_reason")
                                     for r in fine_runs
                                     if r["final"].get("test/acr_undefined_reason")), None)}
    first = fine_runs[0] if fine_runs else None
    pairs = _confusion_pairs(first["model_dir"]) if first and first.get("model_dir") else None
    if pairs is not None:
        true, pred, parent = pairs
        out["bootstrap_seed"] = first["config"]["seed"]
        out["bootstrap"] = stats.bootstrap_acr(true, pred, parent).to_dict()
    return out


def per_coarse(fine_runs: Sequence[dict], coarse_runs: Sequence[dict]) -> list[dict]:
    """Per coarse class: recall of FC and CC (percent, mean over seeds), the gain, and the
    per-coarse ACR of the fine runs (mean over seeds); ranked by gain, largest first."""
    def recalls(results):
        out: dict[str, list[float]] = {}
        for r in results:
            for k, v in r.get("final", {}).items():
                if k.startswith("test/recall/"):
                    out.setdefault(k[len("test/recall/"):], []).append(100 * v)
        return out
    fc, cc = recalls(fine_runs), recalls(coarse_runs)
    rows = []
    for name in fc.keys() & cc.keys():
        ratios, never = [], False
        for r in fine_runs:
            part = r.get("acr_breakdown", {}).get(name, {})
            intra, inter = part.get("intra"), part.get("inter")
            if intra:
                ratios.append(inter / intra)
            never |= intra == 0 and bool(inter)
        f, c = float(np.mean(fc[name])), float(np.mean(cc[name]))
        rows.append({"coarse": name, "fc_recall": f, "cc_recall": c, "gain": f - c,
                     # ∞ (None in JSON) when its fine classes were never confused with each
                     # other in some seed: the mean over seeds is unbounded too
                     "acr": float(np.mean(ratios)) if ratios and not never else None,
                     "siblings_never_confused": never})
    return sorted(rows, key=lambda row: -row["gain"])


# --------------------------------------------------------------------------- report

def _fmt(iv: dict | None, signed: bool = False) -> str:
    if not iv:
        return "–"
    return stats.interval_text(stats.Interval.from_dict(iv), 1, signed=signed,
                               bounds=None if signed else (0.0, 100.0))


def _acr_text(acr: dict | None) -> str:
    """'0.198 (0.185–0.210)' over seeds (∞ seeds counted); the value alone with one seed."""
    if not acr or (acr.get("mean") is None and not acr.get("infinite_seeds")):
        return "undefined" if acr and acr.get("undefined_reason") else "–"
    return stats.acr_seeds_text(acr)


def partial_sentences(curve: dict) -> list[str]:
    """Plain sentences: what each share q of fine labels gives, and how much is needed for
    half and 90% of the full gain."""
    at = f"at {100 * curve['fraction']:g}% of the training data"
    out = []
    for p in curve["points"]:
        if p["gain"] is None:
            continue
        gain = stats.interval_text(stats.Interval.from_dict(p["gain"]), 1, signed=True)
        share = f", {100 * p['share']:.0f}% of the full gain" if p["share"] is not None else ""
        what = ("all images labelled finely" if p["q"] == 1 else
                f"labelling {100 * p['q']:g}% of the images finely")
        out.append(f"{what} {at}: {gain} points over coarse labels{share}")
    if not curve["full_gain_detectable"]:
        out.append("fine labels do not detectably help here even when all are given, so no "
                   "share of them can be said to reach part of their gain")
        return out
    for name, part in (("half", "half"), ("ninety", "90%")):
        hit = curve.get(name) or {}
        if hit.get("q") is None:
            out.append(f"{part} of the full gain is not reached below q = 1 (by mean)")
        else:
            bound = "at most " if hit["at_most"] else "about "
            out.append(f"{part} of the full gain needs {bound}{100 * hit['q']:.0f}% of the "
                       "images labelled finely (linear interpolation of the mean curve)")
    return out


def headline(advice: dict) -> str:
    """The one-paragraph answer printed at the end of `lg_tf.advise`."""
    lines = [row["verdict"] for row in advice["fractions"]]
    for curve in advice.get("partial", []):
        lines += partial_sentences(curve)
    top = advice["fractions"][-1].get("acr") or {}
    if top.get("mean") is not None or top.get("infinite_seeds"):
        lines.append(f"ACR of the fine model at {100 * advice['fractions'][-1]['fraction']:g}% "
                     f"of the data: {_acr_text(top)} (mean (min–max) over seeds)")
    elif top.get("undefined_reason"):
        lines.append(f"ACR undefined: {top['undefined_reason']}")
    return "\n".join(lines)


def write(out_dir: str, advice: dict) -> str:
    """advice.md, advice.json and two PNGs in out_dir; returns advice.md's path."""
    from lg_tf import plots
    files.makedirs(out_dir)
    files.write_json_atomic(os.path.join(out_dir, "advice.json"), advice)
    figs = [_gain_figure(advice, os.path.join(out_dir, "gain_by_fraction.png"), plots),
            _coarse_figure(advice, os.path.join(out_dir, "per_coarse_gain_vs_acr.png"), plots)]
    figs += [_partial_figure(c, os.path.join(out_dir, f"gain_by_fine_share_r{c['fraction']:g}"
                                             ".png"), plots) for c in advice.get("partial", [])]
    path = os.path.join(out_dir, "advice.md")
    files.write_text_atomic(path, markdown(advice, [os.path.basename(p) for p in figs if p]))
    return path


def markdown(advice: dict, figures: Sequence[str]) -> str:
    parts = ["# Should I label finer? — lg_tf.advise", ""]
    if advice.get("command"):
        parts += [f"Command: `{advice['command']}`", ""]
    parts += ["## Verdict", ""]
    parts += [f"- {line}" for line in headline(advice).splitlines()] + [""]
    parts += ["## Fine (FC) vs coarse (CC) training, coarse test accuracy (%)", "",
              "| fraction | seeds | CC | FC | ΔA = FC − CC (points, 95% CI) | ACR of FC: mean "
              "(min–max) |", "|---|---|---|---|---|---|"]
    for row in advice["fractions"]:
        parts.append(f"| {row['fraction']:g} | {len(row['seeds'])} | {_fmt(row.get('cc'))} | "
                     f"{_fmt(row.get('fc'))} | {_fmt(row.get('gain'), signed=True)} | "
                     f"{_acr_text(row.get('acr'))} |")
    parts += ["", "ΔA is the mean of per-seed paired differences (same seed: same data "
              "subset, initialisation and augmentation); Student-t 95% CI. ACR over the fine "
              "runs' seeds at that fraction." + _bootstrap_sentence(advice), ""]
    parts += _efficiency_lines(advice)
    for curve in advice.get("partial", []):
        parts += _partial_lines(curve)
    top = advice["fractions"][-1]
    if top.get("per_coarse"):
        parts += [f"## Which coarse classes gain (fraction {top['fraction']:g})", "",
                  "| coarse class | CC recall | FC recall | gain (points) | per-coarse ACR |",
                  "|---|---|---|---|---|"]
        for c in top["per_coarse"]:
            acr = ("∞ (siblings never confused in some seed)" if c.get("siblings_never_confused")
                   and c["acr"] is None else "–" if c["acr"] is None else f"{c['acr']:.3g}")
            parts.append(f"| {c['coarse']} | {c['cc_recall']:.1f} | {c['fc_recall']:.1f} | "
                         f"{c['gain']:+.1f} | {acr} |")
        parts += ["", "Per-coarse ACR: the class's mean confusion with other coarse "
                  "classes over the mean confusion among its own fine classes (higher: its "
                  "fine classes are distinct from each other, where the paper finds fine "
                  "labels help); recalls and per-coarse ACR are means over seeds.", ""]
    note = (top.get("acr") or {}).get("note")
    if note:
        parts += [f"Note on ACR: {note}", ""]
    for name in figures:
        parts += [f"![{name}]({name})", ""]
    return "\n".join(parts)


def _bootstrap_sentence(advice: dict) -> str:
    top = advice["fractions"][-1]
    acr = top.get("acr") or {}
    boot = acr.get("bootstrap")
    if not boot or boot.get("value") is None:
        return ""
    iv = stats.ACRInterval(**{k: v for k, v in boot.items() if k != "high_unbounded"}
                           | {"high": math.inf if boot.get("high_unbounded") else boot["high"]})
    return (f" For scale: seed {acr['bootstrap_seed']}'s ACR at {100 * top['fraction']:g}% "
            f"with a 95% bootstrap CI over its test images is {iv.text()}; that covers test "
            "sampling only, the spread over seeds covers training.")


def _partial_lines(curve: dict) -> list[str]:
    out = [f"## How many images must be labelled finely? ({100 * curve['fraction']:g}% of the "
           "training data)", "",
           "| share q of images with a fine label | seeds | coarse acc (%) | ΔA vs CC (points, "
           "95% CI) | share of the full gain |", "|---|---|---|---|---|"]
    for p in curve["points"]:
        share = "–" if p["share"] is None else f"{100 * p['share']:.0f}%"
        out.append(f"| {p['q']:g} | {len(p['seeds'])} | {_fmt(p['accuracy'])} | "
                   f"{_fmt(p['gain'], signed=True)} | {share} |")
    out += ["", "Images without a fine label keep their coarse one and train the same fine "
            "softmax through its summed coarse probability (−log Σ p_f over the coarse "
            "class's fine classes); q = 1 is fine training (FC), q = 0 the fine head trained "
            "on coarse labels only.", ""]
    out += [f"- {line}." for line in partial_sentences(curve)]
    return out + [""]


def _efficiency_lines(advice: dict) -> list[str]:
    rows = [r for r in advice["fractions"] if r.get("gain")]
    if not rows:
        return []
    out = ["## Data efficiency", ""]
    top = advice["fractions"][-1]["fraction"]
    for e in advice["data_efficiency"]:
        if e["cc_fraction"] is None:
            more = (f"more than {top / e['fraction']:g}x the data" if e["fraction"] < top
                    else "more data than the largest fraction run")
            txt = (f"it is above CC trained on {100 * top:g}% of the data by "
                   f"{_fmt(e['vs_top'], signed=True)} points (paired), so CC would need {more}")
        else:
            bound = "at most " if e["at_most"] else "about "
            txt = (f"CC needs {bound}{100 * e['cc_fraction']:.0f}% of the data for the same "
                   "mean accuracy")
        out.append(f"- FC at {100 * e['fraction']:g}% of the data reaches "
                   f"{e['fc_accuracy']:.1f}%; {txt}.")
    helped = {e["fraction"] for e in advice["data_efficiency"]}
    others = [r for r in rows if r["fraction"] not in helped]
    if others:
        out.append("- At " + ", ".join(f"{100 * r['fraction']:g}%" for r in others)
                   + " of the data these runs show no data saving (FC not detectably above "
                   "the CC accuracy it is compared with).")
    return out + [""]


def _gain_bars(ax, xs: list, gains: list[dict], **kwargs) -> None:
    """Gains (Interval.to_dict) as points with their 95% CI as error bars (none if unknown)."""
    def reach(g, end):
        return 0 if g[end] is None else abs(g[end] - g["mean"])
    err = [[reach(g, "low") for g in gains], [reach(g, "high") for g in gains]]
    ax.errorbar(xs, [g["mean"] for g in gains], yerr=err, fmt="o-", capsize=4, **kwargs)


def _gain_figure(advice: dict, path: str, plots) -> str | None:
    rows = [r for r in advice["fractions"] if r.get("gain")]
    if not rows:
        return None
    fig = plots.canvas((5.6, 4.2))
    ax = fig.add_subplot()
    _gain_bars(ax, [100 * r["fraction"] for r in rows], [r["gain"] for r in rows])
    ax.axhline(0, color="black", lw=0.7)
    _finish(ax, "training data used (%)", "ΔA = FC − CC (points, 95% CI)",
            "Gain of fine labels on the coarse task")
    plots.save(fig, path)
    return path


def _partial_figure(curve: dict, path: str, plots) -> str | None:
    pts = [p for p in curve["points"] if p["gain"]]
    if not pts:
        return None
    fig = plots.canvas((5.6, 4.2))
    ax = fig.add_subplot()
    _gain_bars(ax, [100 * p["q"] for p in pts], [p["gain"] for p in pts],
               label="ΔA(q) = FC(q) − CC")
    ax.axhline(0, color="black", lw=0.7)
    if curve["full_gain_detectable"]:
        full = curve["points"][-1]["gain"]["mean"]
        for part, style in ((0.5, ":"), (0.9, "--")):
            ax.axhline(part * full, color="grey", ls=style, lw=0.8,
                       label=f"{100 * part:.0f}% of the full gain")
        ax.legend(fontsize=8)
    _finish(ax, "images with a fine label (%)", "ΔA vs coarse labels (points, 95% CI)",
            f"Partial fine labels at {100 * curve['fraction']:g}% of the data")
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
    _finish(ax, "per-coarse ACR of the fine model", "recall gain FC − CC (points)",
            "Which coarse classes gain from fine labels")
    plots.save(fig, path)
    return path


def _finish(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
