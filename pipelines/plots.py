"""Figures in the paper's style: fine-trained in red, coarse-trained in blue, test solid,
train dotted; ΔA-vs-ACR scatters with numbered points. Built on lg_tf.plots' canvas and
save (Agg canvas, no pyplot state); each function writes its PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lg_tf.plots import canvas, save
from lg_tf.stats import Interval

FINE, COARSE, EXTRA, PAPER = "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f"
COLOURS = {"fine": FINE, "coarse": COARSE}


def _mean_curve(results: Sequence[dict], key: str):
    """Per-epoch mean and std over seeds of an epoch metric (in %); epochs present in all."""
    per_seed = []
    for r in results:
        per_seed.append({e["epoch"]: e[key] for e in r.get("epochs", []) if key in e})
    if not per_seed or not all(per_seed):
        return None
    epochs = sorted(set.intersection(*(set(d) for d in per_seed)))
    if not epochs:
        return None
    values = np.array([[d[e] for e in epochs] for d in per_seed]) * 100
    return np.array(epochs), values.mean(0), values.std(0, ddof=1) if len(per_seed) > 1 else None


def curves(path: str, series: Sequence[tuple[str, str, Sequence[dict]]], title: str,
           train_key: str = "train_eval/coarse_accuracy") -> str:
    """Fig. 3: coarse accuracy per epoch; series = (label, colour, results over seeds).

    Test solid (mean over seeds, band = ±1 std), training split dotted. When the runs
    logged no `train_eval`, the dotted line is the running accuracy on augmented batches.
    """
    fig = canvas((7.0, 4.6))
    ax = fig.add_subplot()
    train_label = "train"
    for label, colour, results in series:
        test = _mean_curve(results, "test/coarse_accuracy")
        if test is not None:
            x, m, s = test
            ax.plot(x, m, "-", color=colour, lw=1.8, marker="o" if len(x) < 15 else None,
                    ms=3, label=f"{label} test")
            if s is not None:
                ax.fill_between(x, m - s, m + s, color=colour, alpha=0.15, lw=0)
        train = _mean_curve(results, train_key)
        if train is None:
            train = _mean_curve(results, "train/coarse_accuracy")
            train_label = "train (running, augmented)"
        if train is not None:
            x, m, _ = train
            ax.plot(x, m, ":", color=colour, lw=1.6, label=f"{label} {train_label}")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("coarse accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    save(fig, path)
    return path


def fractions(path: str, xs: Sequence[float], ours: dict, train: dict | None,
              paper: dict | None, title: str) -> str:
    """Fig. 2: coarse accuracy against the fraction of training data.

    ours/train: {"fine": [Interval|None per x], "coarse": [...]}: means with their 95% CI as
    error bars; paper: {"fine": [value|None], ...}.
    """
    fig = canvas((6.4, 4.6))
    ax = fig.add_subplot()
    x = 100 * np.asarray(xs)
    for series in ("fine", "coarse"):
        colour = COLOURS[series]
        tag = "FC (fine-trained)" if series == "fine" else "CC (coarse-trained)"
        m, e = _means(ours.get(series, []))
        ax.errorbar(x, m, yerr=e if e.any() else None, fmt="-o", color=colour, lw=1.8, ms=4,
                    capsize=3, label=f"{tag} test")
        if train and train.get(series) and any(s is not None for s in train[series]):
            tm, _ = _means(train[series])
            ax.plot(x, tm, ":", color=colour, lw=1.6, marker=".", label=f"{tag} train")
        if paper and paper.get(series) and any(v is not None for v in paper[series]):
            pv = np.array([np.nan if v is None else v for v in paper[series]], float)
            ax.plot(x, pv, "--", color=colour, lw=1.0, alpha=0.55, marker="s", ms=4,
                    mfc="none", label=f"{tag} test, paper")
    ax.set_xticks(x, [f"{v:g}%" for v in x])
    ax.set_xlabel("training data used (fraction r of each fine class)")
    ax.set_ylabel("coarse test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    save(fig, path)
    return path


def _means(cells: Sequence, ceiling: float | None = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Means and asymmetric error bars (2, n) of Interval / float / None cells; an upper bar
    past `ceiling` (an accuracy's 100%) is cut there, as the reports' tables clip it."""
    m, e = [], [[], []]
    for c in cells:
        mean = c.mean if isinstance(c, Interval) else np.nan if c is None else float(c)
        m.append(mean)
        has_ci = isinstance(c, Interval) and c.low is not None
        e[0].append(mean - c.low if has_ci else 0.0)
        high = c.high if has_ci else mean
        if ceiling is not None and has_ci:
            high = min(high, ceiling)
        e[1].append(high - mean if has_ci else 0.0)
    return np.array(m, float), np.array(e, float)


def acr_scatter(path: str, points: Sequence[tuple[str, float, float, float | None]],
                title: str, paper: Sequence[tuple[str, float, float]] | None = None,
                paper_title: str = "published") -> str:
    """Fig. 6/7: ΔA_test (FC − CC, points) against ACR; points = (label, acr, dA, half-width
    of dA's 95% CI or None).

    With `paper`, a second panel shows the published points for comparison.
    """
    panels = 2 if paper else 1
    fig = canvas((5.6 * panels, 4.4))
    sets = [(points, title, FINE)] + ([(paper, paper_title, PAPER)] if paper else [])
    for i, (pts, heading, colour) in enumerate(sets, 1):
        ax = fig.add_subplot(1, panels, i)
        good = [p for p in pts if p[1] is not None and p[2] is not None]
        if good:
            xs = np.array([p[1] for p in good], float)
            ys = np.array([p[2] for p in good], float)
            err = np.array([(p[3] if len(p) > 3 and p[3] is not None else 0.0) for p in good])
            ax.errorbar(xs, ys, yerr=err if err.any() else None, fmt="o", color=colour,
                        ms=6, capsize=3)
            for p, xv, yv in zip(good, xs, ys):
                ax.annotate(str(p[0]), (xv, yv), xytext=(5, 4), textcoords="offset points",
                            fontsize=8)
            if len(good) >= 2 and np.ptp(xs) > 0:
                slope, icept = np.polyfit(xs, ys, 1)
                grid = np.linspace(xs.min(), xs.max(), 50)
                ax.plot(grid, slope * grid + icept, "--", color=colour, alpha=0.5, lw=1)
        else:
            ax.text(0.5, 0.5, "no pairs with a defined ACR", ha="center", va="center",
                    transform=ax.transAxes)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("ACR of the fine-trained model")
        ax.set_ylabel("ΔA_test = FC − CC (points)")
        ax.grid(alpha=0.3)
        ax.set_title(heading, fontsize=10)
    save(fig, path)
    return path


def bars(path: str, groups: Sequence[str], series: dict[str, Sequence],
         title: str, ylabel: str = "coarse test accuracy (%)",
         colours: dict | None = None) -> str:
    """Grouped bars with 95% CI error bars; series = {legend label: [Interval, a published
    float or None per group]}."""
    fig = canvas((max(5.5, 1.6 * len(groups) + 2), 4.4))
    ax = fig.add_subplot()
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(groups))
    lows = []
    palette = colours or {}
    for i, (label, stats) in enumerate(series.items()):
        m, e = _means(stats)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, m, width, yerr=e if e.any() else None, capsize=3, label=label,
               color=palette.get(label), alpha=0.55 if "paper" in label else 0.9,
               hatch="//" if "paper" in label else None, edgecolor="black", lw=0.5)
        lows += [v for v in m if np.isfinite(v)]
    if lows:
        lo, hi = min(lows), max(lows)
        pad = max(1.0, 0.25 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + pad) if hi <= 100 else hi + pad)
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    save(fig, path)
    return path
