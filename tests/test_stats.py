"""lg_tf.stats against hand-computed numbers: paired t intervals, the verdict sentences, ACR on
hand-built confusion matrices, bootstrap CIs of ACR and of correlations, and the matching
fraction of the coarse-trained accuracy curve.

lg_tf.stats itself imports no TensorFlow (checked in a subprocess below), and neither does
this module. `stats.acr` takes its numbers from `stats.acr_parts`; tests/test_acr.py checks
it against the same hand-computed values.
"""

import json
import math
import subprocess
import sys
from fractions import Fraction as F

import numpy as np
import pytest
from scipy import stats as sp

from lg_tf import stats

T_975_2 = 4.302652729911275   # scipy.stats.t.ppf(0.975, 2), the textbook 4.303
T_975_3 = 3.182446305284263   # scipy.stats.t.ppf(0.975, 3), the textbook 3.182
T_950_2 = 2.919985580355516   # scipy.stats.t.ppf(0.95, 2), the textbook 2.920


def test_imports_no_tensorflow():
    code = ("import sys, lg_tf.stats; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- t intervals

def test_paired_difference_by_hand():
    a, b = [0.80, 0.82, 0.84], [0.78, 0.79, 0.80]
    # d = [0.02, 0.03, 0.04]; mean 0.03; s = sqrt((0.01^2 + 0 + 0.01^2) / 2) = 0.01
    # half-width = t(0.975, 2) * s / sqrt(3) = 4.302652729911275 * 0.01 / 1.7320508...
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert half == pytest.approx(0.0248413, abs=1e-7)
    iv = stats.paired_difference(a, b)
    assert iv.mean == pytest.approx(0.03, rel=1e-12)
    assert iv.std == pytest.approx(0.01, rel=1e-9)
    assert iv.n == 3 and iv.confidence == 0.95
    assert iv.low == pytest.approx(0.03 - half, rel=1e-9)
    assert iv.high == pytest.approx(0.03 + half, rel=1e-9)
    assert iv.half_width == pytest.approx(half, rel=1e-9)
    assert stats.direction(iv) == "above"
    # 90%: t(0.95, 2) = 2.919985580355516
    iv90 = stats.paired_difference(a, b, confidence=0.90)
    assert iv90.half_width == pytest.approx(T_950_2 * 0.01 / math.sqrt(3), rel=1e-9)
    # the other way round: the mirror image
    back = stats.paired_difference(b, a)
    assert (back.mean, back.low, back.high) == pytest.approx((-0.03, -0.03 - half,
                                                              -0.03 + half), rel=1e-9)
    assert stats.direction(back) == "below"


def test_paired_difference_one_and_zero_seeds():
    one = stats.paired_difference([0.808], [0.80])
    assert one.mean == pytest.approx(0.008) and one.n == 1
    assert one.low is None and one.high is None and one.std is None
    assert one.half_width is None and stats.direction(one) == "unknown"
    with pytest.raises(ValueError, match="at least one"):
        stats.paired_difference([], [])
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired_difference([0.8, 0.9], [0.8])
    with pytest.raises(ValueError, match="non-finite"):
        stats.paired_difference([0.8, float("nan")], [0.8, 0.7])
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_difference([0.8, 0.9], [0.8, 0.7], confidence=95)


def test_mean_ci_by_hand():
    # [1, 2, 3, 4]: mean 2.5, s^2 = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3
    iv = stats.mean_ci([1, 2, 3, 4])
    half = T_975_3 * math.sqrt(5 / 3) / 2
    assert (iv.mean, iv.std, iv.n) == (2.5, pytest.approx(math.sqrt(5 / 3)), 4)
    assert (iv.low, iv.high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-12)
    # no spread: a single point, which excludes 0 unless it is 0
    flat = stats.mean_ci([2.0, 2.0, 2.0])
    assert (flat.low, flat.high, flat.std) == (2.0, 2.0, 0.0) and stats.direction(flat) == "above"
    assert stats.mean_ci([5.0]).low is None
    # the interval straddling 0
    assert stats.direction(stats.mean_ci([-1.0, 1.0, 0.5])) == "none"


def test_scaled_to_points():
    iv = stats.paired_difference([0.80, 0.82, 0.84], [0.78, 0.79, 0.80]).scaled(100)
    half = 100 * T_975_2 * 0.01 / math.sqrt(3)
    assert (iv.mean, iv.low, iv.high, iv.std) == pytest.approx((3.0, 3 - half, 3 + half, 1.0))
    assert iv.n == 3 and iv.confidence == 0.95
    with pytest.raises(ValueError, match="positive"):
        iv.scaled(-1)


# --------------------------------------------------------------------------- verdict

def test_verdict_sentences():
    help_ = stats.Interval(4.3, 2.1, 6.5, 5, 1.8, 0.95)
    assert stats.verdict(help_) == "fine labels help: +4.3 points [2.1, 6.5] (95% CI, 5 seeds)"
    hurt = stats.Interval(-3.0, -4.94, -1.06, 4, 1.2, 0.95)
    assert stats.verdict(hurt) == "fine labels hurt: -3.0 points [-4.9, -1.1] (95% CI, 4 seeds)"
    none = stats.Interval(0.8, -1.2, 2.8, 3, 0.8, 0.95)
    assert stats.verdict(none) == ("no detectable difference at this budget: +0.8 points "
                                   "[-1.2, 2.8] (95% CI, 3 seeds)")
    one = stats.paired_difference([0.808], [0.80]).scaled(100)
    assert stats.verdict(one) == ("one seed: +0.8 points, no confidence interval; "
                                  "run --seeds=3 or more to tell")


def test_verdict_from_paired_runs_and_budget_text():
    iv = stats.paired_difference([0.80, 0.82, 0.84], [0.78, 0.79, 0.80]).scaled(100)
    # 3 -/+ 2.484 = [0.516, 5.484]
    assert stats.verdict(iv) == "fine labels help: +3.0 points [0.5, 5.5] (95% CI, 3 seeds)"
    back = stats.paired_difference([0.78, 0.79, 0.80], [0.80, 0.82, 0.84]).scaled(100)
    assert stats.verdict(back, budget_text="at 20% of the training data") == (
        "fine labels hurt at 20% of the training data: -3.0 points [-5.5, -0.5] "
        "(95% CI, 3 seeds)")
    none = stats.Interval(0.8, -1.2, 2.8, 3, 0.8, 0.90)
    assert stats.verdict(none, budget_text="at 20% of the training data") == (
        "no detectable difference at 20% of the training data: +0.8 points [-1.2, 2.8] "
        "(90% CI, 3 seeds)")
    assert stats.verdict(stats.Interval(0.5, None, None, 1, None), what="dropout",
                         unit="ACR", budget_text="at 20%") == (
        "one seed at 20%: +0.5 ACR, no confidence interval; run --seeds=3 or more to tell")


# --------------------------------------------------------------------------- ACR

# 4 fine classes a, b, c, d; interleaved parents: X = {a, c}, Y = {b, d}.
PARENT = [0, 1, 0, 1]
C = np.array([[6, 1, 3, 0],    # rows: true class, columns: predicted class
              [2, 7, 0, 1],
              [1, 0, 8, 1],
              [0, 2, 1, 7]])


def test_acr_value_by_hand():
    # 1. column sums: 6+2+1+0 = 9, 1+7+0+2 = 10, 3+0+8+1 = 12, 0+1+1+7 = 9
    # 2. N[i, j] = C[i, j] / colsum[j]; off-diagonal pairs (N_ij, N_ji):
    #    01: 1/10, 2/9   02: 3/12, 1/9   03: 0, 0
    #    12: 0, 0        13: 1/9, 2/10   23: 1/9, 1/12
    # 3. S = (N + N^T) / 2 on i < j; same parent: 02 (X) and 13 (Y)
    s01 = (F(1, 10) + F(2, 9)) / 2    # different = 29/180
    s02 = (F(3, 12) + F(1, 9)) / 2    # same      = 13/72
    s03 = F(0)                        # different
    s12 = F(0)                        # different
    s13 = (F(1, 9) + F(2, 10)) / 2    # same      = 7/45
    s23 = (F(1, 9) + F(1, 12)) / 2    # different = 7/72
    intra = (s02 + s13) / 2                  # (65 + 56) / 360 / 2 = 121/720
    inter = (s01 + s03 + s12 + s23) / 4      # (58 + 35) / 360 / 4 = 93/1440
    assert (intra, inter) == (F(121, 720), F(93, 1440))
    assert inter / intra == F(93, 242)
    assert stats.acr_value(C, PARENT) == pytest.approx(93 / 242, rel=1e-12)


def test_acr_value_row_normalised_by_hand():
    # every row of C sums to 10, so N = C / 10
    # pairs: 01 (1+2)/20, 02 (3+1)/20 same, 03 0, 12 0, 13 (1+2)/20 same, 23 (1+1)/20
    intra = (F(4, 20) + F(3, 20)) / 2             # 7/40
    inter = (F(3, 20) + 0 + 0 + F(2, 20)) / 4     # 1/16
    assert inter / intra == F(5, 14)
    assert stats.acr_value(C, PARENT, "row") == pytest.approx(5 / 14, rel=1e-12)
    with pytest.raises(ValueError, match="normalization"):
        stats.acr_value(C, PARENT, "both")
    with pytest.raises(ValueError, match="expected"):
        stats.acr_value(C[:3, :3], PARENT)


def test_acr_value_singleton_coarse_class_uses_existing_pairs():
    # parent [0, 0, 1]: the only same-parent pair is (0, 1); cross pairs (0, 2), (1, 2).
    c = np.array([[5, 1, 0], [1, 5, 1], [0, 1, 5]])
    # column sums 6, 7, 6: s01 = (1/7 + 1/6) / 2 = 13/84, s02 = 0, s12 = (1/6 + 1/7) / 2 = 13/84
    # intra = 13/84, inter = (0 + 13/84) / 2 = 13/168, ACR = 1/2
    assert stats.acr_value(c, [0, 0, 1]) == pytest.approx(0.5, rel=1e-12)


def test_acr_value_undefined_cases():
    c = np.array([[5, 1, 0], [1, 5, 1], [0, 1, 5]])
    assert stats.acr_value(c, [0, 1, 2]) is None        # all singletons: no same-parent pair
    assert stats.acr_value(c, [0, 0, 0]) is None        # one coarse class: no cross pair
    never = np.array([[5, 0, 1, 0], [0, 5, 0, 0], [0, 0, 5, 0], [0, 0, 0, 5]])
    assert stats.acr_value(never, [0, 0, 1, 1]) is None  # intra == 0
    # an empty predicted column gives zeros, not a division by zero
    empty = np.array([[5, 1, 0], [1, 5, 0], [2, 1, 0]])
    # column sums 8, 7, 0: s01 = (1/7 + 1/8) / 2 = 15/112, s02 = (0 + 2/8) / 2 = 1/8, s12 = 1/14
    # parent [0, 0, 1]: ACR = ((1/8 + 1/14) / 2) / (15/112) = (11/112) / (15/112) = 11/15
    assert stats.acr_value(empty, [0, 0, 1]) == pytest.approx(11 / 15, rel=1e-12)


def test_acr_parts_by_hand():
    parts = stats.acr_parts(C, PARENT)   # the matrix of test_acr_value_by_hand
    assert parts.inter == pytest.approx(93 / 1440, rel=1e-12)
    assert parts.intra == pytest.approx(121 / 720, rel=1e-12)
    assert parts.value == stats.acr_value(C, PARENT) == pytest.approx(93 / 242, rel=1e-12)
    assert parts.symmetric[0, 2] == pytest.approx(13 / 72, rel=1e-12)
    assert parts.symmetric.shape == (4, 4)
    np.testing.assert_allclose(parts.symmetric, parts.symmetric.T)
    lonely = stats.acr_parts(np.eye(3), [0, 1, 2])
    assert math.isnan(lonely.intra) and lonely.value is None


# --------------------------------------------------------------------------- bootstrap ACR

FINE_PARENT = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])


def _predictions(n_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correct 70% of the time, a sibling 20%, any class 10%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, FINE_PARENT.size, n_images)
    u = rng.random(n_images)
    sibling = np.array([rng.choice(np.flatnonzero(FINE_PARENT == FINE_PARENT[t])) for t in y])
    pred = np.where(u < 0.7, y, np.where(u < 0.9, sibling,
                                         rng.integers(0, FINE_PARENT.size, n_images)))
    return y, pred


def test_bootstrap_acr_point_ci_and_determinism():
    y, pred = _predictions(400, seed=1)
    k = FINE_PARENT.size
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    result = stats.bootstrap_acr(y, pred, FINE_PARENT, n_boot=300, seed=5)
    assert result.value == pytest.approx(stats.acr_value(confusion, FINE_PARENT), rel=1e-12)
    assert result.low < result.value < result.high
    assert (result.n_boot, result.skipped, result.n_images) == (300, 0, 400)
    assert result.confidence == 0.95 and result.normalization == "column"
    assert stats.bootstrap_acr(y, pred, FINE_PARENT, n_boot=300, seed=5) == result
    other = stats.bootstrap_acr(y, pred, FINE_PARENT, n_boot=300, seed=6)
    assert other.value == result.value and (other.low, other.high) != (result.low, result.high)
    # scores instead of class indices: the argmax is the prediction
    scores = np.eye(k)[pred] * 3.0 + 0.1
    assert stats.bootstrap_acr(y, scores, FINE_PARENT, n_boot=300, seed=5) == result
    # a wider confidence level gives a wider interval
    wide = stats.bootstrap_acr(y, pred, FINE_PARENT, n_boot=300, seed=5, confidence=0.99)
    assert wide.low <= result.low and wide.high >= result.high


def test_bootstrap_acr_narrower_with_ten_times_the_images():
    small = stats.bootstrap_acr(*_predictions(500, seed=2), FINE_PARENT, n_boot=200)
    large = stats.bootstrap_acr(*_predictions(5000, seed=2), FINE_PARENT, n_boot=200)
    # the width shrinks roughly as 1/sqrt(10) ~ 0.32
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    assert large.low < large.value < large.high


def test_bootstrap_acr_counts_infinite_replicates_at_the_top():
    # one sibling confusion (class 0 seen as 1) and one cross-parent confusion among 20
    # images. A replicate that misses the sibling one (probability (19/20)^20 ~ 0.36) has
    # intra == 0: if it kept the cross one its ACR is infinite (counted, at the top of the
    # CI), if it missed both nothing was confused and it has no ACR (skipped): ~0.36^2.
    y = np.array([0] * 5 + [1] * 5 + [2] * 5 + [3] * 5)
    pred = y.copy()
    pred[0] = 1
    pred[6] = 2
    result = stats.bootstrap_acr(y, pred, [0, 0, 1, 1], n_boot=500, seed=0)
    assert result.value is not None
    assert 80 < result.infinite < 160 and 30 < result.skipped < 100
    # ~23% of the counted replicates are infinite: the 97.5th percentile is unbounded
    assert result.high == float("inf") and result.low <= result.value
    as_json = result.to_dict()
    assert as_json["high"] is None and as_json["high_unbounded"] is True
    assert result.text().endswith("∞)")
    # undefined point value: nothing to bootstrap
    undefined = stats.bootstrap_acr(y, y, [0, 0, 1, 1], n_boot=50)
    assert (undefined.value, undefined.low, undefined.high, undefined.skipped) == (
        None, None, None, 50)


def test_percentile_with_infinite_values():
    x = np.array([1.0, 2.0, 3.0, np.inf])
    assert stats._percentile(x, 0.5) == pytest.approx(np.percentile([1, 2, 3, 4], 50))
    assert stats._percentile(x, 0.9) == float("inf")
    assert stats._percentile(np.array([1.0, 2.0]), 0.25) == pytest.approx(1.25)


def test_bootstrap_acr_bad_inputs():
    with pytest.raises(ValueError, match="outside"):
        stats.bootstrap_acr([0, 4], [0, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="images"):
        stats.bootstrap_acr([0, 1], [0], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="no test images"):
        stats.bootstrap_acr([], [], [0, 0, 1, 1])


# --------------------------------------------------------------------------- correlation

def test_bootstrap_correlation_by_hand():
    # xs [1, 2, 3], ys [1, 2, 4]: centred x [-1, 0, 1], y [-4/3, -1/3, 5/3]
    # r = 3 / sqrt(2 * 14/3) = 3 * sqrt(3/28); ranks are equal, so rho = 1
    out = stats.bootstrap_correlation([1, 2, 3], [1, 2, 4], n_boot=200)
    assert out["pearson"] == pytest.approx(3 * math.sqrt(3 / 28), rel=1e-12)
    assert out["spearman"] == pytest.approx(1.0, rel=1e-12)
    assert out["n"] == 3 and out["n_boot"] == 200 and 0 < out["skipped"] < 200
    assert out["pearson_low"] <= out["pearson"] <= out["pearson_high"] <= 1.0


def test_bootstrap_correlation_monotone_gives_rho_one():
    xs = [1, 2, 3, 4, 5, 6]
    ys = [x ** 3 for x in xs]
    out = stats.bootstrap_correlation(xs, ys, n_boot=500, seed=1)
    assert out["spearman"] == pytest.approx(1.0, abs=1e-12)
    assert (out["spearman_low"], out["spearman_high"]) == pytest.approx((1.0, 1.0), abs=1e-12)
    assert out["pearson"] < 1 and out["pearson_high"] <= 1.0
    assert stats.bootstrap_correlation(xs, ys, n_boot=500, seed=1) == out


def test_bootstrap_correlation_matches_scipy_and_edge_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    out = stats.bootstrap_correlation(x, y, n_boot=300)
    assert out["pearson"] == pytest.approx(sp.pearsonr(x, y)[0], rel=1e-10)
    assert out["spearman"] == pytest.approx(sp.spearmanr(x, y)[0], rel=1e-10)
    assert out["pearson_low"] < out["pearson"] < out["pearson_high"]
    assert out["spearman_low"] < out["spearman"] < out["spearman_high"]
    for xs, ys in (([1, 2], [3, 4]), ([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [5, 5, 5])):
        short = stats.bootstrap_correlation(xs, ys)
        assert all(short[k] is None for k in ("pearson", "pearson_low", "pearson_high",
                                               "spearman", "spearman_low", "spearman_high"))
    with pytest.raises(ValueError):
        stats.bootstrap_correlation([1, 2, 3], [1, 2])


# --------------------------------------------------------------------------- data savings

def test_matching_fraction_by_hand():
    fractions, cc = [0.2, 0.4, 1.0], [0.70, 0.80, 0.90]
    # 0.85 lies between 0.80 (at 0.4) and 0.90 (at 1.0): 0.4 + 0.05 / 0.10 * 0.6 = 0.7
    assert stats.matching_fraction(fractions, cc, 0.85) == pytest.approx(0.7, rel=1e-12)
    assert stats.matching_fraction(fractions, cc, 0.65) == 0.2     # at most 0.2
    assert stats.matching_fraction(fractions, cc, 0.70) == 0.2
    assert stats.matching_fraction(fractions, cc, 0.95) is None    # more than 1.0
    assert stats.matching_fraction(fractions, cc, 0.90) == pytest.approx(1.0)
    # order does not matter
    assert stats.matching_fraction([1.0, 0.2, 0.4], [0.90, 0.70, 0.80], 0.85) == \
        pytest.approx(0.7, rel=1e-12)
    # not monotone: the first crossing (0.2 + 0.5 * 0.2 = 0.3), not the later one
    assert stats.matching_fraction([0.2, 0.4, 0.6, 0.8], [0.70, 0.80, 0.72, 0.90], 0.75) == \
        pytest.approx(0.3, rel=1e-12)
    # a missing run is dropped: interpolate 0.2 -> 1.0 (0.2 + 0.15 / 0.2 * 0.8 = 0.8)
    assert stats.matching_fraction(fractions, [0.70, None, 0.90], 0.85) == \
        pytest.approx(0.8, rel=1e-12)
    with pytest.raises(ValueError, match="repeat"):
        stats.matching_fraction([0.2, 0.2], [0.7, 0.8], 0.75)
    with pytest.raises(ValueError, match="3 fractions"):
        stats.matching_fraction(fractions, [0.7, 0.8], 0.75)


def test_data_savings_by_hand():
    fractions = [0.2, 0.4, 1.0]
    fc = [0.80, 0.85, 0.95]
    cc = [0.70, 0.80, 0.90]
    rows = stats.data_savings(fractions, fc, cc)
    assert [r["fraction"] for r in rows] == [0.2, 0.4, 1.0]
    # FC at 20% (0.80) = CC at 40%: fine labels need half the data
    assert rows[0]["cc_fraction"] == pytest.approx(0.4) and rows[0]["ratio"] == \
        pytest.approx(0.5)
    # FC at 40% (0.85) = CC at 0.7 (interpolated): 0.4 / 0.7
    assert rows[1]["cc_fraction"] == pytest.approx(0.7) and rows[1]["ratio"] == \
        pytest.approx(4 / 7)
    # FC at 100% (0.95): CC never gets there
    assert rows[2]["cc_fraction"] is None and rows[2]["ratio"] is None
    assert not any(r["at_most"] for r in rows)
    assert rows[1]["fc_accuracy"] == 0.85
    # CC already as good at the smallest fraction: an upper bound
    low = stats.data_savings([0.2, 0.4], [0.70, 0.80], [0.75, 0.85])
    assert low[0] == {"fraction": 0.2, "fc_accuracy": 0.70, "cc_fraction": 0.2,
                      "at_most": True, "ratio": 1.0}
    assert low[1]["cc_fraction"] == pytest.approx(0.3) and not low[1]["at_most"]


def test_data_savings_claims_only_what_the_paired_intervals_support():
    fractions, fc, cc = [0.2, 0.4, 1.0], [0.80, 0.85, 0.95], [0.70, 0.80, 0.90]
    above = stats.mean_ci([1.0, 1.2, 1.1])      # CI above 0
    unclear = stats.mean_ci([-1.0, 2.0, 0.5])   # CI across 0
    # 20%: the crossing (0.4) is claimed only if FC is detectably above CC at 20%;
    # 100%: "CC needs more than was run" only if FC(100%) is detectably above CC(100%)
    rows = stats.data_savings(fractions, fc, cc, gains=[above, unclear, above],
                              gains_vs_top=[unclear, unclear, above])
    assert [r["fraction"] for r in rows] == [0.2, 1.0]
    assert rows[0]["cc_fraction"] == pytest.approx(0.4) and "vs_top" not in rows[0]
    assert rows[1]["cc_fraction"] is None and rows[1]["vs_top"] is above
    # FC(20%) above CC(100%) detectably, CC never reaches FC(20%): claimed through vs_top
    never = stats.data_savings([0.2, 1.0], [0.95, 0.96], [0.90, 0.92],
                               gains=[unclear, unclear], gains_vs_top=[above, unclear])
    assert [(r["fraction"], r["cc_fraction"]) for r in never] == [(0.2, None)]


def test_an_infinite_acr_seed_is_counted_not_dropped():
    never = {"test/acr": None, "test/acr_inter": 0.02, "test/acr_intra": 0.0}
    assert stats.run_acr({"test/acr": 0.25}) == 0.25
    assert math.isinf(stats.run_acr(never))
    assert stats.run_acr({"test/acr": None, "test/acr_intra": None}) is None  # undefined
    assert stats.spread_text([0.2, 0.4]) == "0.3 (0.2–0.4)"
    assert stats.spread_text([0.2, math.inf, 0.4]) == "∞ (0.2–∞; 1 of 3 seeds ∞)"
    assert stats.spread_text([math.inf]) == "∞ (1 seed)"
    assert stats.spread_text([None, float("nan")]) == "–"


def test_interval_round_trips_through_json():
    iv = stats.mean_ci([1.0, 2.0, 4.0])
    assert stats.Interval.from_dict(iv.to_dict()) == iv
    old = {"mean": 2.0, "low": 1.0, "high": 3.0, "n": 3}  # saved before `std` was kept
    assert stats.interval_text(stats.Interval.from_dict(old)) == "2.00 [1.00, 3.00]"
    assert stats.interval_text(stats.mean_ci([99.0, 100.0, 97.0]), bounds=(0, 100)) \
        .endswith("100.00*]")


def test_acr_seeds_keep_an_infinite_seed_countable_in_json():
    seeds = stats.acr_seeds([0.2, math.inf, None, 0.4])
    assert seeds == {"per_seed": [0.2, None, None, 0.4], "infinite_seeds": 1}
    assert json.loads(json.dumps(seeds)) == seeds  # plain JSON, no Infinity
    assert stats.acr_seeds_text(seeds) == "∞ (0.2–∞; 1 of 3 seeds ∞)"
    assert stats.acr_seeds_text(stats.acr_seeds([0.2, 0.4])) == "0.3 (0.2–0.4)"
