"""What the paper experiments share on top of the grid engine (`lg_tf.grid`): reading a
grid's results over seeds, judging them with `lg_tf.stats` (paired Student-t intervals,
verdicts, bootstrap correlations), the published-number cells and the default groupings.

Every report answers "is A above B?" one way: the mean of the per-seed paired differences
(same seed: same data subset, initialisation and augmentation) with its 95% t interval, and
`stats.verdict`'s sentence. ACR, a ratio with a skewed spread, is shown as mean (min–max)
over seeds.
"""

from __future__ import annotations

import math
from typing import Sequence

from lg_tf import config as config_lib
from lg_tf import hierarchy as hier_lib
from lg_tf import grid as grid_lib
from lg_tf import stats
from lg_tf.errors import PipelineError

# The hierarchies a multi-grouping pipeline (discovery, targets) compares by default: on the
# embedded data the semantic grouping and the mixed one where fine labels helped (issue 11).
DEFAULT_GROUPINGS = {"embedded": ("shapes", "shapes_mixed_b")}


# The grouping "own": the hierarchy the data brings itself (an image folder's tree, or
# --hierarchy_file / --coarse_zero), which its runs keep instead of a named --hierarchy.
OWN = "own"


def groupings_for(base: config_lib.Config, names: Sequence[str] | None) -> list[str]:
    """`names`, else the dataset's default groupings, else its own hierarchy (a named one,
    or `OWN`: the data's folder tree or --hierarchy_file)."""
    from lg_tf.data import datasets
    if names:
        return list(names)
    if base.hierarchy_file or base.coarse_zero:
        return [OWN]
    default = DEFAULT_GROUPINGS.get(base.dataset)
    if default:
        return list(default)
    info = datasets.DATASETS[base.dataset]
    own = base.hierarchy or info.default_hierarchy
    if own:
        return [own]
    if info.hierarchy_from_tree(base):
        return [OWN]
    raise PipelineError(f"--dataset={base.dataset} has no default hierarchy; name one with "
                        "--groupings (one of: " + ", ".join(hier_lib.NAMED_HIERARCHIES)
                        + ") or give --hierarchy_file")


def grouping_overrides(grouping: str) -> dict:
    """The Config fields that select `grouping` (none for `OWN`: the base keeps its own)."""
    return {} if grouping == OWN else {"hierarchy": grouping}


# --------------------------------------------------------------------------- over seeds

TRAIN_SPLIT = "train_eval/coarse_accuracy"   # logged per epoch, not in `final`


def per_seed(results: Sequence[dict], key: str = "test/coarse_accuracy") -> dict[int, float]:
    """{seed: value in percent}: a final metric, or for an epoch metric (the training split's
    `train_eval/...`) its value after the last epoch."""
    out = grid_lib.by_seed(results, key)
    for r in results:
        epochs = [e for e in r.get("epochs", []) if key in e]
        if r["config"]["seed"] not in out and epochs:
            out[r["config"]["seed"]] = 100 * epochs[-1][key]
    return out


def accuracy(results: Sequence[dict],
             key: str = "test/coarse_accuracy") -> stats.Interval | None:
    """Mean [95% t CI] over seeds of an accuracy, in percent (None: no finished run)."""
    values = list(per_seed(results, key).values())
    return stats.mean_ci(values) if values else None


def train_accuracy(results: Sequence[dict]) -> stats.Interval | None:
    """The last epoch's coarse accuracy on the un-augmented training split (`train_eval`)."""
    return accuracy(results, TRAIN_SPLIT)


def gain(a: Sequence[dict], b: Sequence[dict],
         key: str = "test/coarse_accuracy") -> stats.Interval | None:
    """A − B in points: the mean of the paired per-seed differences over the seeds both
    sides have, with its 95% t CI (None: no common seed)."""
    return stats.paired_by_seed(per_seed(a, key), per_seed(b, key))


def per_seed_text(a: Sequence[dict], b: Sequence[dict]) -> str:
    """' (per seed: seed 0 +2.1, seed 1 +0.8, ...)': the paired differences a report's
    interval is made of, so a single outlying seed is visible."""
    x, y = per_seed(a), per_seed(b)
    seeds = sorted(set(x) & set(y))
    if len(seeds) < 2:
        return ""
    return " (per seed: " + ", ".join(f"seed {k} {x[k] - y[k]:+.2f}" for k in seeds) + ")"


def verdict(iv: stats.Interval | None, what: str = "fine labels", prefix: str = "") -> str:
    """`stats.verdict` of a paired gain, or why there is none."""
    if iv is None:
        return f"{prefix}no comparison: no seed has both runs finished."
    return prefix + stats.verdict(iv, what=what)


def contrast(iv: stats.Interval | None, a: str, b: str, prefix: str = "") -> str:
    """One sentence on a paired difference A − B, by the rule of `stats.direction`."""
    if iv is None:
        return f"{prefix}no comparison of {a} and {b}: no seed has both runs finished."
    side = stats.direction(iv)
    numbers = (f"{stats.interval_text(iv, 2, signed=True)} points (paired over {iv.n} "
               f"seed{'s' if iv.n != 1 else ''})")
    text = {"above": f"{a} is above {b}: {numbers}",
            "below": f"{a} is below {b}: {numbers}",
            "none": f"no detectable difference between {a} and {b}: {numbers}",
            "unknown": f"{a} − {b}: {numbers}, one seed: no confidence interval"}[side]
    return prefix + text


def folder_notes(base: config_lib.Config) -> list[str]:
    """The report's note on where the images came from, for an image folder."""
    if base.dataset != "folder":
        return []
    return ["The images are a folder of JPEGs (for CIFAR-10, e.g. the YoongiKim/"
            "CIFAR-10-images copy: the same images as TFDS `cifar10`, re-encoded as JPEG)."]


def multiple_comparisons(n: int, what: str) -> str:
    """The note under a table of n paired tests."""
    return (f"{n} {what} means {n} paired tests: at 95% each, about one in twenty intervals "
            "excludes 0 by chance alone, so a single 'detectable' one among them needs "
            "replication before it is read as a rule.")


def acr_values(results: Sequence[dict]) -> list[float]:
    """The fine runs' test ACR per seed: ∞ where siblings were never confused (counted, not
    dropped), undefined ones left out."""
    return [v for v in (stats.run_acr(r["final"]) for r in results) if v is not None]


def acr_cell(results: Sequence[dict]) -> str:
    """ACR over seeds as mean (min–max), or why it is undefined."""
    values = acr_values(results)
    if values:
        return stats.spread_text(values)
    reason = next((r["final"].get("test/acr_undefined_reason") for r in results
                   if r["final"].get("test/acr_undefined_reason")), None)
    return f"undefined ({reason})" if reason else "–"


def mean_or_none(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def correlation(xs: Sequence[float], ys: Sequence[float]) -> dict:
    """Spearman ρ and Pearson r with 95% bootstrap CIs over the points (stats); a point with
    an infinite ACR (siblings never confused) has no place on the axis: it is left out and
    counted in `left_out`."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    out = stats.bootstrap_correlation([x for x, _ in pairs], [y for _, y in pairs])
    return {**out, "left_out": len(list(xs)) - len(pairs)}


def correlation_text(corr: dict, what: str) -> str:
    """'Spearman ρ = +0.52 [-0.10, +0.91], Pearson r = ... over N <what>'."""
    left = (f" ({corr['left_out']} with an infinite ACR left out)"
            if corr.get("left_out") else "")
    if corr.get("spearman") is None:
        return f"too few {what} ({corr.get('n', 0)}) with a defined value for a correlation{left}"
    return (f"Spearman ρ = {_coef(corr, 'spearman')}, Pearson r = {_coef(corr, 'pearson')} "
            f"over {corr['n']} {what} (95% bootstrap CIs){left}")


def _coef(corr: dict, key: str) -> str:
    """'+0.52 [-0.10, +0.91]' (no interval when the bootstrap gave none)."""
    low, high = corr.get(f"{key}_low"), corr.get(f"{key}_high")
    ci = f" [{low:+.2f}, {high:+.2f}]" if low is not None else ""
    return f"{corr[key]:+.2f}{ci}"


def correlation_cells(c: dict) -> list[str]:
    """[n, 'ρ [low, high]', 'r [low, high]']: a correlation's row of a report table."""
    return [str(c["n"])] + [_coef(c, k) if c[k] is not None else
                            "n/a (needs ≥ 3 varying points)" for k in ("spearman", "pearson")]


def paper_correlation(points: Sequence[tuple[float, float]]) -> dict:
    """The same bootstrap correlation over published (ACR, ΔA) points."""
    return correlation([p[0] for p in points], [p[1] for p in points])


# --------------------------------------------------------------------------- paper cells

def paper_cell(key: str | None, value: float | None):
    """The published column's cell: the number, 'n/a' (no such number), or not in the paper."""
    from pipelines import published as pub
    if key is None:
        return pub.NOT_IN_PAPER
    return "n/a" if value is None else float(value)


def versus(ours: stats.Interval | None, paper) -> float | str | None:
    """Our mean minus the published value: 'n/a' when the paper has no number."""
    if not isinstance(paper, float):
        return "n/a"
    return None if ours is None else ours.mean - paper
