"""Issue 23: partial fine labels: the mixed loss, the data paths and the advisor's curve."""

import numpy as np
import pytest

from lg_tf import losses

# 2 coarse classes: fine 0, 1 -> coarse 0; fine 2 -> coarse 1 (F = 3, C = 2).
PARENT = [0, 0, 1]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 1.0, 1.0]], np.float32)
P = _softmax(LOGITS.astype(np.float64))


def _loss(labels, logits=LOGITS):
    fn = losses.PartialFineCrossEntropy(PARENT, reduction=None)
    return np.asarray(fn(np.asarray(labels), logits))


def test_fine_labels_give_the_fine_cross_entropy():
    np.testing.assert_allclose(_loss([0, 2, 1]), -np.log([P[0, 0], P[1, 2], P[2, 1]]),
                               rtol=1e-5)


def test_coarse_only_labels_give_minus_log_of_the_summed_fine_probabilities():
    # label F + c: coarse class c known, fine unknown; F = 3
    np.testing.assert_allclose(
        _loss([3, 4, 3]),
        -np.log([P[0, 0] + P[0, 1], P[1, 2], P[2, 0] + P[2, 1]]), rtol=1e-5)


def test_a_mixed_batch_takes_each_rows_own_term():
    np.testing.assert_allclose(_loss([1, 4, 3]),
                               -np.log([P[0, 1], P[1, 2], P[2, 0] + P[2, 1]]), rtol=1e-5)


def test_all_fine_batch_equals_keras_sparse_cross_entropy():
    import keras
    labels = np.array([0, 2, 1])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, LOGITS)
    mixed = losses.PartialFineCrossEntropy(PARENT)(labels, LOGITS)
    assert float(mixed) == pytest.approx(float(plain), rel=1e-5)


def test_confident_wrong_coarse_prediction_stays_finite():
    logits = np.array([[-200.0, -200.0, 200.0]], np.float32)
    value = _loss([3], logits)
    # -log(2 e^-200 / e^200) = 400 - log 2
    assert np.isfinite(value).all() and value[0] == pytest.approx(400.0 - np.log(2), rel=1e-5)
