"""Statistics behind lg_tf's answers: paired seed differences, bootstrap CIs, data savings.

Pure numpy/scipy (no TensorFlow, no Keras), so `python -m lg_tf.advise` and the pipelines'
reports can use it without starting TensorFlow.

- `paired_difference`, `mean_ci`: Student-t confidence intervals over seeds, and `verdict`,
  the one plain sentence a report prints for such an interval.
- `acr_value`, `bootstrap_acr`: the Average Confusion Ratio (the definition of the
  paper, eq. 1, as its published code computes it) and its percentile bootstrap CI over
  resampled test images; `regrouped_accuracy`, a fine model's coarse accuracy under any
  grouping of its classes, from its confusion matrix.
- `bootstrap_correlation`: Pearson r and Spearman rho with percentile bootstrap CIs.
- `matching_fraction`, `data_savings`: how much training data coarse labels need to match
  what fine labels reach, by linear interpolation of the accuracy-vs-fraction curve.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy import stats as _sp_stats

# Largest number of array elements one vectorised bootstrap chunk may hold (~32 MB of int64).
_CHUNK_ELEMENTS = 4_000_000
NORMALIZATIONS = ("column", "row")


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return confidence


# --------------------------------------------------------------------------- t intervals

@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean with its two-sided Student-t confidence interval.

    `low`/`high` (and `std`) are None when n == 1: one value measures no spread, so the
    interval is unknown, not zero-width.
    """
    mean: float
    low: float | None
    high: float | None
    n: int
    std: float | None
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        """t * s / sqrt(n), or None when the interval is unknown (n == 1)."""
        return None if self.low is None else (self.high - self.low) / 2

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units, e.g. `.scaled(100)` turns accuracy fractions into
        percentage points (a negative factor would swap low and high; it is refused)."""
        if factor <= 0:
            raise ValueError(f"scale factor must be positive, got {factor}")

        def mul(v):
            return None if v is None else v * factor
        return Interval(self.mean * factor, mul(self.low), mul(self.high), self.n,
                        mul(self.std), self.confidence)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Interval:
        """The inverse of `to_dict` (also for reports saved before `std` was kept)."""
        return cls(d["mean"], d.get("low"), d.get("high"), d["n"], d.get("std"),
                   d.get("confidence", 0.95))


def interval_text(iv: Interval | None, digits: int = 2, signed: bool = False,
                  bounds: tuple[float, float] | None = None) -> str:
    """'mean [low, high]' ('mean (1 seed)' without a CI, '–' for None): the one format of an
    interval in every report. `bounds` clips an interval that runs past what the quantity
    can take (an accuracy's [0, 100]: a t interval over 3 seeds near 100% can pass it),
    marking the clipped end with '*'."""
    if iv is None:
        return "–"
    sign = "+" if signed else ""
    mean = f"{iv.mean:{sign}.{digits}f}"
    if iv.low is None or iv.high is None:
        return f"{mean} (1 seed)"
    low, high = f"{iv.low:.{digits}f}", f"{iv.high:.{digits}f}"
    if bounds is not None and iv.low < bounds[0]:
        low = f"{bounds[0]:.{digits}f}*"
    if bounds is not None and iv.high > bounds[1]:
        high = f"{bounds[1]:.{digits}f}*"
    return f"{mean} [{low}, {high}]"


CLIPPED_NOTE = ("* the Student-t interval reaches past what an accuracy can be (few seeds "
                "near 100%); it is shown clipped at 100 (or 0).")


def spread_text(values: Sequence[float], digits: int = 3) -> str:
    """'mean (min–max)' of per-seed values: for a ratio such as ACR, whose spread over seeds
    is skewed, so a t interval would reach below zero. Infinite values count (an ACR whose
    fine classes were never confused with a sibling): the mean is then ∞ and the text says
    how many seeds were. '–' for no values; None values are left out."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return "–"
    finite = [v for v in vals if math.isfinite(v)]
    if len(vals) == 1:
        return f"{vals[0]:.{digits}g} (1 seed)" if finite else "∞ (1 seed)"
    if len(finite) < len(vals):
        low = f"{min(finite):.{digits}g}" if finite else "∞"
        return f"∞ ({low}–∞; {len(vals) - len(finite)} of {len(vals)} seeds ∞)"
    mean = sum(vals) / len(vals)
    return f"{mean:.{digits}g} ({min(vals):.{digits}g}–{max(vals):.{digits}g})"


def run_acr(final: dict) -> float | None:
    """A run's test ACR from results.json's `final`: ∞ where no fine class was ever confused
    with a sibling (intra 0 with inter > 0: the ratio is unbounded, not missing), None where
    ACR is undefined for another reason or was not measured."""
    if final.get("test/acr") is not None:
        return float(final["test/acr"])
    if final.get("test/acr_intra") == 0 and (final.get("test/acr_inter") or 0) > 0:
        return math.inf
    return None


def _as_finite_1d(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains a missing or non-finite value: {list(x)}")
    return x


def _t_interval(x: np.ndarray, confidence: float) -> Interval:
    confidence = _check_confidence(confidence)
    n = int(x.size)
    if n == 0:
        raise ValueError("no values: a confidence interval needs at least one")
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, None, None, 1, None, confidence)
    std = float(x.std(ddof=1))
    half = float(_sp_stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, confidence)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of `values` with its two-sided Student-t confidence interval.

    mean = sum(x) / n, s = sample std (ddof=1), half-width = t.ppf((1 + confidence) / 2,
    n - 1) * s / sqrt(n), interval = [mean - half-width, mean + half-width].
    n == 1: low, high and std are None (unknown). n == 0 or a non-finite value: ValueError.
    If all values are equal (s == 0) the interval is the single point [mean, mean].
    """
    return _t_interval(_as_finite_1d(values, "values"), confidence)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> Interval:
    """Mean paired difference a - b with its Student-t confidence interval.

    a[i] and b[i] are the same seed of two trainings (same seed: same data subset), so the
    differences d_i = a_i - b_i are the independent samples; the interval is `mean_ci(d)`:
    mean(d) +/- t.ppf((1 + confidence) / 2, n - 1) * std(d, ddof=1) / sqrt(n).
    n == 1: low/high/std None. Different lengths, n == 0 or non-finite values: ValueError.
    """
    x, y = _as_finite_1d(a, "a"), _as_finite_1d(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired values need the same seeds on both sides: {x.size} vs "
                         f"{y.size} values")
    return _t_interval(x - y, confidence)


def verdict(interval: Interval, what: str = "fine labels", unit: str = "points",
            budget_text: str = "") -> str:
    """One plain sentence about a difference `interval` (already in `unit`).

    - CI above 0:    "fine labels help: +4.3 points [2.1, 6.5] (95% CI, 5 seeds)"
    - CI below 0:    "fine labels hurt: -3.0 points [-4.9, -1.1] (95% CI, 4 seeds)"
    - CI contains 0: "no detectable difference at this budget: +0.8 points [-1.2, 2.8]
      (95% CI, 3 seeds)"
    - n == 1:        "one seed: +0.8 points, no confidence interval; run --seeds=3 or more
      to tell"
    `what` is a plural noun phrase ("fine labels help"). `budget_text` (e.g. "at 20% of the
    training data") follows the verb ("fine labels help at 20% of the training data: ..."),
    replaces "at this budget", and follows "one seed". Numbers have one decimal; the mean
    is signed. Scale first if needed: `verdict(paired_difference(fc, cc).scaled(100))`.
    """
    budget = f" {budget_text.strip()}" if budget_text.strip() else ""
    mean = f"{interval.mean:+.1f} {unit}"
    side = direction(interval)
    if side == "unknown":
        return (f"one seed{budget}: {mean}, no confidence interval; run --seeds=3 or more "
                "to tell")
    numbers = (f"{mean} [{interval.low:.1f}, {interval.high:.1f}] "
               f"({interval.confidence * 100:g}% CI, {interval.n} seeds)")
    if side == "above":
        return f"{what} help{budget}: {numbers}"
    if side == "below":
        return f"{what} hurt{budget}: {numbers}"
    return f"no detectable difference {budget.strip() or 'at this budget'}: {numbers}"


def paired_by_seed(a: dict, b: dict, confidence: float = 0.95) -> Interval | None:
    """`paired_difference` over the seeds both {seed: value} maps have (None: no common
    seed): how every report pairs two trainings."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds], confidence)


def direction(interval: Interval) -> str:
    """The one rule every report judges a difference by: 'above' (the CI lies above 0),
    'below', 'none' (the CI contains 0: no detectable difference) or 'unknown' (one seed)."""
    if interval.low is None or interval.high is None:
        return "unknown"
    if interval.low > 0:
        return "above"
    if interval.high < 0:
        return "below"
    return "none"


# --------------------------------------------------------------------------- ACR

def _check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{normalization}'; use 'column' or 'row'")
    return normalization


def _normalized_batch(c: np.ndarray, normalization: str) -> np.ndarray:
    """Step 1 of `acr_value` on float counts (B, n, n); an empty column (row) gives zeros."""
    sums = c.sum(axis=1 if normalization == "column" else 2, keepdims=True)
    return np.divide(c, sums, out=np.zeros_like(c), where=sums > 0)


def _symmetric_batch(c: np.ndarray, normalization: str) -> np.ndarray:
    """Steps 1-2 of `acr_value`: S = (N + N^T) / 2 of each matrix in c (B, n, n)."""
    norm = _normalized_batch(c, normalization)
    return (norm + np.swapaxes(norm, 1, 2)) / 2


def _same_parent_pairs(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same): the fine pairs i < j and whether the two share a parent."""
    i, j = np.triu_indices(parent.size, k=1)
    return i, j, parent[i] == parent[j]


def _pair_means(s: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 3 of `acr_value` on S (B, n, n): (inter, intra) per matrix, NaN where no such
    pair exists."""
    i, j, same = _same_parent_pairs(parent)
    pairs = s[:, i, j]
    none = np.full(s.shape[0], np.nan)
    inter = pairs[:, ~same].mean(axis=1) if (~same).any() else none
    intra = pairs[:, same].mean(axis=1) if same.any() else none
    return inter, intra


def _ratio(inter: np.ndarray, intra: np.ndarray) -> np.ndarray:
    """Step 4 of `acr_value`: inter / intra; +inf where siblings were never confused but
    other classes were (intra 0, inter > 0: larger than any finite ACR), NaN where there is
    no ratio at all (nothing confused, or no such pair)."""
    out = np.divide(inter, intra, out=np.full_like(inter, np.nan), where=intra > 0)
    out[(intra == 0) & (inter > 0)] = np.inf
    return out


def _acr_batch(confusions: np.ndarray, parent: np.ndarray, normalization: str) -> np.ndarray:
    """ACR of each matrix in `confusions` (B, n, n); NaN where it is undefined."""
    _check_normalization(normalization)
    c = np.asarray(confusions, dtype=np.float64)
    same = _same_parent_pairs(parent)[2]
    if not same.any() or same.all():  # undefined whatever the counts: skip the arithmetic
        return np.full(c.shape[0], np.nan)
    return _ratio(*_pair_means(_symmetric_batch(c, normalization), parent))


def _check_parent(parent) -> np.ndarray:
    p = np.asarray(parent).reshape(-1)
    if p.size == 0:
        raise ValueError("parent is empty: the hierarchy has no fine classes")
    return p


def normalized_confusion(confusion, normalization: str = "column") -> np.ndarray:
    """Step 1 of `acr_value` for one matrix: column-normalised (published: the share of each
    *predicted* class) or row-normalised; an empty column (row) gives zeros."""
    _check_normalization(normalization)
    return _normalized_batch(np.asarray(confusion, dtype=np.float64)[None], normalization)[0]


@dataclasses.dataclass(frozen=True)
class ACRParts:
    """The numbers `acr_value` is made of, for reports that show more than the ratio."""
    symmetric: np.ndarray   # S = (N + N^T) / 2 (steps 1-2)
    inter: float            # mean S over cross-parent pairs; NaN when there is none
    intra: float            # mean S over same-parent pairs; NaN when there is none
    value: float | None     # inter / intra (step 4); None when undefined


def acr_parts(confusion, parent, normalization: str = "column") -> ACRParts:
    """`acr_value` with its parts (see there)."""
    p = _check_parent(parent)
    c = np.asarray(confusion)
    if c.shape != (p.size, p.size):
        raise ValueError(f"confusion matrix is {c.shape}, expected ({p.size}, {p.size})")
    _check_normalization(normalization)
    s = _symmetric_batch(np.asarray(c, dtype=np.float64)[None], normalization)
    inter, intra = _pair_means(s, p)
    value = float(_ratio(inter, intra)[0])
    return ACRParts(s[0], float(inter[0]), float(intra[0]),
                    value if math.isfinite(value) else None)


def acr_value(confusion, parent, normalization: str = "column") -> float | None:
    """Average Confusion Ratio of a fine confusion matrix (paper eq. 1, as implemented for
    the published numbers).

    confusion[i, j] = count of images of true fine class i predicted as fine class j;
    parent[i] = coarse class of fine class i.
    1. Normalise: column (published) N[i, j] = C[i, j] / sum_k C[k, j]; row: divide by the
       row sum instead. An empty column (row) gives zeros.
    2. Symmetrise: S = (N + N^T) / 2.
    3. Over the pairs i < j that exist: inter = mean S[i, j] over pairs with different
       parents, intra = mean S[i, j] over pairs with the same parent. A coarse class with a
       single fine class contributes no same-parent pair; the others still do.
    4. ACR = inter / intra.
    None (undefined) only when no same-parent pair exists at all (every coarse class has a
    single fine class), no cross-parent pair exists (one coarse class), or intra == 0.
    """
    return acr_parts(confusion, parent, normalization).value


def acr_seeds(values: Sequence[float | None]) -> dict:
    """Per-seed ACRs (from `run_acr`) as JSON can hold them: `per_seed` with None for an
    infinite one, which `infinite_seeds` counts (JSON has no ∞)."""
    known = [v for v in values if v is not None]
    return {"per_seed": [v if v is None or math.isfinite(v) else None for v in values],
            "infinite_seeds": sum(1 for v in known if math.isinf(v))}


def acr_seeds_text(seeds: dict) -> str:
    """`spread_text` of an `acr_seeds` dict, its infinite seeds counted."""
    return spread_text([v for v in seeds["per_seed"] if v is not None]
                       + [math.inf] * seeds.get("infinite_seeds", 0))


@dataclasses.dataclass(frozen=True)
class ACRResult:
    """ACR with its parts; `value` is None and `reason` says why when it is undefined.

    `note` is set when some coarse classes have a single fine class: they contribute no
    same-parent pair (their fine class still counts in the cross-parent pairs).
    """
    value: float | None
    inter: float
    intra: float | None
    per_coarse: dict  # coarse name -> {'intra': mean within, 'inter': mean with the others}
    reason: str = ""
    normalization: str = "column"
    note: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def acr(confusion, parent, coarse_names=None, normalization: str = "column") -> ACRResult:
    """Average Confusion Ratio (paper eq. 1) with its parts, per coarse class and the reason
    when it is undefined; the numbers are `acr_parts`' (the one ACR formula).

    A coarse class with a single fine class has no same-parent pair and simply adds none
    (`note` names it); ACR is undefined (value None, `reason`) only when no same-parent
    pair exists at all, no cross-parent pair exists, or intra is 0.
    """
    parts = acr_parts(confusion, parent, normalization)
    parent = np.asarray(parent)
    names = list(coarse_names) if coarse_names is not None else [
        str(c) for c in range(int(parent.max()) + 1)]
    kept = dict(per_coarse=_per_coarse(parts.symmetric, parent, names),
                normalization=normalization)
    if math.isnan(parts.intra):
        return ACRResult(None, parts.inter, None, **kept,
                         reason="every coarse class has a single fine class, so no "
                                "same-parent pair exists")
    singletons = [names[c] for c in range(len(names)) if np.sum(parent == c) < 2]
    if singletons:
        kept["note"] = (f"coarse class(es) {', '.join(singletons)} have a single fine class "
                        "and contribute no same-parent pair")
    if math.isnan(parts.inter):
        return ACRResult(None, parts.inter, parts.intra, **kept,
                         reason="there is only one coarse class, so no cross-parent pair exists")
    if parts.intra == 0:
        return ACRResult(None, parts.inter, parts.intra, **kept,
                         reason="no fine class is ever confused with a sibling (intra "
                                "confusion is 0), so the ratio is unbounded")
    return ACRResult(parts.value, parts.inter, parts.intra, **kept)


def _per_coarse(s: np.ndarray, parent: np.ndarray, names: list[str]) -> dict:
    """Each coarse class's mean within-class pair confusion and mean confusion with others."""
    out = {}
    for c, name in enumerate(names):
        members = np.flatnonzero(parent == c)
        others = np.flatnonzero(parent != c)
        iu = np.triu_indices(len(members), k=1)
        within = s[np.ix_(members, members)][iu]
        across = s[np.ix_(members, others)]
        out[name] = {"intra": float(within.mean()) if within.size else None,
                     "inter": float(across.mean()) if across.size else None}
    return out


def regrouped_accuracy(confusion, parent) -> float:
    """Coarse accuracy of a fine model under a grouping `parent` of its fine classes, from its
    fine confusion matrix: with the published map-argmax rule (coarse prediction = parent of
    the argmax fine class) an image is right exactly when its true and predicted fine
    classes share a parent, so one fine run answers every grouping of its classes."""
    p = _check_parent(parent)
    c = np.asarray(confusion, dtype=np.float64)
    if c.shape != (p.size, p.size):
        raise ValueError(f"confusion matrix is {c.shape}, expected ({p.size}, {p.size})")
    total = c.sum()
    if total <= 0:
        raise ValueError("the confusion matrix is empty: no test images")
    return float(c[p[:, None] == p[None, :]].sum() / total)


@dataclasses.dataclass(frozen=True)
class ACRInterval:
    """ACR on all test images (`value`) with a percentile bootstrap CI [low, high].

    `infinite` of the `n_boot` replicates had siblings never confused (intra = 0, inter > 0):
    their ACR is larger than any finite one and they count at the top of the CI, so `high`
    may be inf (unbounded above). `skipped` replicates had no ACR at all (nothing confused)
    and are not in the CI. value/low/high are None when the ACR (or every replicate) is
    undefined.
    """
    value: float | None
    low: float | None
    high: float | None
    n_boot: int
    skipped: int
    confidence: float = 0.95
    n_images: int = 0
    normalization: str = "column"
    infinite: int = 0

    def to_dict(self) -> dict:
        """JSON-ready: an unbounded end is None with `high_unbounded` set (JSON has no inf)."""
        out = dataclasses.asdict(self)
        out["high_unbounded"] = self.high is not None and math.isinf(self.high)
        if out["high_unbounded"]:
            out["high"] = None
        return out

    def text(self) -> str:
        """'0.123 [0.101, 0.150]', with '∞)' for an unbounded upper end."""
        if self.value is None:
            return "undefined"
        if self.low is None:
            return f"{self.value:.3g}"
        high = "∞)" if math.isinf(self.high) else f"{self.high:.3g}]"
        return f"{self.value:.3g} [{self.low:.3g}, {high}"


def _labels(y, name: str, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:  # scores / logits / one-hot: the class is the argmax
        y = y.argmax(axis=-1)
    y = y.reshape(-1)
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{name} must hold class indices (or 2-D scores)")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"{name} has class indices outside [0, {n}) for {n} fine classes")
    return y


def bootstrap_acr(y_true, y_pred, parent, n_boot: int = 1000, seed: int = 0,
                  confidence: float = 0.95, normalization: str = "column") -> ACRInterval:
    """ACR of the fine confusion matrix of (y_true, y_pred) with a percentile bootstrap CI.

    y_true: true fine class per test image; y_pred: predicted fine class per image (or 2-D
    scores, whose argmax is taken); parent[f]: coarse class of fine class f.
    value = `acr_value` of the confusion matrix of all images. Each of the `n_boot`
    replicates resamples the test images with replacement (as many as there are, drawn by
    numpy's default_rng(seed), so the result is deterministic given `seed`), counts its
    confusion matrix (np.bincount) and computes its ACR. A replicate whose siblings were
    never confused but other classes were has an infinite ACR and counts at the top
    (`infinite`); one with nothing confused has none and is skipped (`skipped`).
    [low, high] = the (1 - confidence) / 2 and (1 + confidence) / 2 percentiles (numpy's
    linear interpolation; a position among the infinite ones is inf) of the counted ones.
    """
    confidence = _check_confidence(confidence)
    _check_normalization(normalization)
    n_boot = int(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    p = _check_parent(parent)
    k = p.size
    t, q = _labels(y_true, "y_true", k), _labels(y_pred, "y_pred", k)
    if t.size != q.size:
        raise ValueError(f"y_true has {t.size} images and y_pred {q.size}")
    m = int(t.size)
    if m == 0:
        raise ValueError("no test images: the ACR needs a confusion matrix")
    codes = t * k + q
    value = acr_value(np.bincount(codes, minlength=k * k).reshape(k, k), p, normalization)
    if value is None:
        return ACRInterval(None, None, None, n_boot, n_boot, confidence, m, normalization)

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(k * k, m))
    values = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        sample = codes[rng.integers(0, m, size=(b, m))]
        sample += (np.arange(b, dtype=np.int64) * (k * k))[:, None]
        counts = np.bincount(sample.reshape(-1), minlength=b * k * k).reshape(b, k, k)
        values.append(_acr_batch(counts, p, normalization))
    reps = np.concatenate(values)
    ok = reps[~np.isnan(reps)]
    skipped, infinite = n_boot - int(ok.size), int(np.isinf(ok).sum())
    if ok.size == 0:
        return ACRInterval(value, None, None, n_boot, skipped, confidence, m, normalization,
                           infinite)
    low, high = (_percentile(ok, q) for q in ((1 - confidence) / 2, (1 + confidence) / 2))
    return ACRInterval(value, low, high, n_boot, skipped, confidence, m, normalization,
                       infinite)


def _percentile(values: np.ndarray, q: float) -> float:
    """numpy's linear-interpolation percentile, where +inf values may be among them: a
    position that reaches into the infinite ones is inf."""
    x = np.sort(values)
    pos = q * (x.size - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    if math.isinf(x[hi]) and (hi == lo or pos > lo):
        return math.inf
    return float(x[lo] + (pos - lo) * (x[hi] - x[lo]))


# --------------------------------------------------------------------------- correlation

def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of x, y (B, n); rows must vary (checked by the caller)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    r = (xc * yc).sum(axis=1) / np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def bootstrap_correlation(xs: Sequence[float], ys: Sequence[float], n_boot: int = 2000,
                          seed: int = 0, confidence: float = 0.95) -> dict:
    """Pearson r and Spearman rho of the points (xs[i], ys[i]) with percentile bootstrap CIs.

    Returns {"pearson", "pearson_low", "pearson_high", "spearman", "spearman_low",
    "spearman_high", "n", "n_boot", "skipped", "confidence"}.
    Spearman rho = Pearson r of the ranks (ties get their average rank). Each of the
    `n_boot` replicates resamples the n points with replacement, each x with its y
    (default_rng(seed): deterministic); replicates where the resampled xs or ys are all equal
    have no correlation and are skipped (counted in `skipped`). CI = the (1 - confidence) / 2
    and (1 + confidence) / 2 percentiles of the other replicates.
    Fewer than 3 points, or no variation in xs or ys: all six values are None.
    """
    confidence = _check_confidence(confidence)
    x, y = _as_finite_1d(xs, "xs"), _as_finite_1d(ys, "ys")
    if x.size != y.size:
        raise ValueError(f"xs has {x.size} values and ys {y.size}")
    n, n_boot = int(x.size), int(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    out = {key: None for key in ("pearson", "pearson_low", "pearson_high", "spearman",
                                 "spearman_low", "spearman_high")}
    out.update(n=n, n_boot=n_boot, skipped=n_boot, confidence=confidence)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    out["pearson"] = float(_pearson_rows(x[None], y[None])[0])
    out["spearman"] = float(_pearson_rows(_sp_stats.rankdata(x)[None],
                                          _sp_stats.rankdata(y)[None])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    bx, by = x[idx], y[idx]
    ok = (np.ptp(bx, axis=1) > 0) & (np.ptp(by, axis=1) > 0)
    out["skipped"] = int(n_boot - ok.sum())
    if not ok.any():
        return out
    bx, by = bx[ok], by[ok]
    q = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    pearson = _pearson_rows(bx, by)
    spearman = _pearson_rows(_sp_stats.rankdata(bx, axis=1), _sp_stats.rankdata(by, axis=1))
    out["pearson_low"], out["pearson_high"] = (float(v) for v in np.percentile(pearson, q))
    out["spearman_low"], out["spearman_high"] = (float(v) for v in np.percentile(spearman, q))
    return out


# --------------------------------------------------------------------------- data savings

def _curve(fractions, means, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(fractions, means) sorted by fraction, dropping points whose mean is None/NaN."""
    f = np.asarray(fractions, dtype=np.float64).reshape(-1)
    v = np.asarray([np.nan if m is None else m for m in means], dtype=np.float64).reshape(-1)
    if f.size != v.size:
        raise ValueError(f"{f.size} fractions but {v.size} {name} values")
    if not np.all(np.isfinite(f) & (f >= 0)):
        raise ValueError(f"fractions must be numbers >= 0: {list(f)}")
    if np.unique(f).size != f.size:
        raise ValueError(f"fractions repeat: {list(f)}")
    keep = np.isfinite(v)
    order = np.argsort(f[keep], kind="stable")
    return f[keep][order], v[keep][order]


def matching_fraction(fractions: Sequence[float], cc_means: Sequence[float],
                      target: float) -> float | None:
    """Fraction at which an increasing curve first reaches `target`: the training fraction
    at which the coarse-trained (CC) accuracy reaches an accuracy, or the share q of fine
    labels at which the gain reaches part of the full gain.

    The curve is the points (fraction, CC mean accuracy) sorted by fraction (points whose
    mean is None/NaN, i.e. runs missing, are dropped), joined by straight lines. Returns:
    - the smallest fraction if CC already reaches `target` there: the true matching fraction
      is then AT MOST that (no smaller fraction was run);
    - otherwise the first crossing: for the first k with cc[k] >= target,
      f[k-1] + (target - cc[k-1]) * (f[k] - f[k-1]) / (cc[k] - cc[k-1])
      (a non-monotone curve uses this first crossing);
    - None if CC never reaches `target` within the fractions run (the caller says "more
      than the largest fraction"), or no point is left.
    Example: fractions [0.2, 0.4, 1.0], CC [0.70, 0.80, 0.90]: target 0.85 -> 0.7,
    0.65 -> 0.2 (at most), 0.95 -> None.
    """
    f, cc = _curve(fractions, cc_means, "cc_means")
    target = float(target)
    if f.size == 0:
        return None
    if cc[0] >= target:
        return float(f[0])
    above = np.flatnonzero(cc >= target)
    if above.size == 0:
        return None
    k = int(above[0])
    return float(f[k - 1] + (target - cc[k - 1]) * (f[k] - f[k - 1]) / (cc[k] - cc[k - 1]))


def data_savings(fractions: Sequence[float], fc_means: Sequence[float],
                 cc_means: Sequence[float],
                 gains: Sequence[Interval | None] | None = None,
                 gains_vs_top: Sequence[Interval | None] | None = None) -> list[dict]:
    """For each fraction f run (ascending): how much data CC needs to match FC's accuracy at f.

    One dict per fraction with a finite FC mean:
    - "fraction": f; "fc_accuracy": A_fc(f);
    - "cc_fraction": `matching_fraction(fractions, cc_means, A_fc(f))`, None when CC never
      reaches A_fc(f) within the fractions run (it would need more than the largest);
    - "at_most": True when CC already reaches A_fc(f) at the smallest fraction, so
      cc_fraction is only an upper bound (and "ratio" a lower bound);
    - "ratio": f / cc_fraction, the share of CC's training data that fine labels need for
      the same accuracy (0.5: half the data; above 1: fine labels need more); None when
      cc_fraction is None.

    With `gains` (the paired FC − CC interval at each fraction) and `gains_vs_top` (FC at
    each fraction − CC at the largest), both in the order of `fractions`, only supported
    claims are kept: a crossing where FC is detectably above CC at f, and "CC needs more
    than the largest fraction" where FC at f is detectably above CC at the largest (the
    entry then carries "vs_top", that interval). Means alone never claim a saving.
    """
    f, fc = _curve(fractions, fc_means, "fc_means")
    f_cc, cc = _curve(fractions, cc_means, "cc_means")
    order = {float(r): i for i, r in enumerate(fractions)}
    out = []
    for frac, acc in zip(f, fc):
        match = matching_fraction(f_cc, cc, acc)
        at_most = match is not None and cc.size > 0 and bool(cc[0] >= acc)
        entry = {"fraction": float(frac), "fc_accuracy": float(acc), "cc_fraction": match,
                 "at_most": at_most, "ratio": None if not match else float(frac) / match}
        if gains is not None:
            i = order[float(frac)]
            evidence = gains[i] if match is not None else (gains_vs_top or [None] * len(
                fractions))[i]
            if evidence is None or direction(evidence) != "above":
                continue
            if match is None:
                entry["vs_top"] = evidence
        out.append(entry)
    return out
