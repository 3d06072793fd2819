"""CoarseAccuracy and ConfusionMatrix against numpy, on 1 and 2 replicas; ACR by hand."""

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import metrics

PARENT = np.array([0, 0, 1, 1, 1, 2])


def _batch(seed, n=64, classes=6):
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, n), rng.normal(size=(n, classes)).astype("float32")


def _numpy_coarse_acc(y, logits, mode):
    if mode == "map_argmax":
        pred = PARENT[np.argmax(logits, -1)]
    else:
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        pred = np.argmax(np.stack([p[:, PARENT == c].sum(-1) for c in range(3)], -1), -1)
    return np.mean(pred == PARENT[y])


def _run_distributed(strategy, metric, batches):
    with strategy.scope():
        m = metric()

    @tf.function
    def step(y, logits):
        strategy.run(m.update_state, args=(y, logits))

    for y, logits in batches:
        dist = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((y, logits)).batch(len(y)))
        for yy, ll in dist:
            step(yy, ll)
    return m.result().numpy()


def test_two_logical_cpus_are_configured():
    assert len(tf.config.list_logical_devices("CPU")) >= 2


@pytest.mark.parametrize("mode", ["map_argmax", "sum_probs"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_coarse_accuracy_matches_numpy(mode, replicas):
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:replicas]
    strategy = tf.distribute.MirroredStrategy(cpus)
    batches = [_batch(s) for s in range(3)]
    got = _run_distributed(strategy, lambda: metrics.CoarseAccuracy(PARENT, mode), batches)
    y = np.concatenate([b[0] for b in batches])
    logits = np.concatenate([b[1] for b in batches])
    np.testing.assert_allclose(got, _numpy_coarse_acc(y, logits, mode), atol=1e-6)


def test_sum_probs_differs_from_map_argmax_where_it_should():
    # Fine 0 wins alone (0.4) but coarse 1's three children hold 0.6 in total.
    logits = np.log(np.array([[0.4, 0.0001, 0.2, 0.2, 0.2, 0.0]]) + 1e-9).astype("float32")
    assert int(metrics.coarse_predictions(logits, PARENT, "map_argmax")[0]) == 0
    assert int(metrics.coarse_predictions(logits, PARENT, "sum_probs")[0]) == 1


def test_coarse_accuracy_plain_for_coarse_model():
    m = metrics.CoarseAccuracy(None)
    m.update_state(np.array([0, 1, 2, 2]), np.eye(3, dtype="float32")[[0, 1, 1, 2]])
    assert float(m.result()) == pytest.approx(0.75)


def test_coarse_accuracy_serialises():
    m = metrics.CoarseAccuracy(PARENT, "sum_probs", name="c")
    clone = metrics.CoarseAccuracy.from_config(m.get_config())
    assert clone.parent == list(PARENT) and clone.mode == "sum_probs" and clone.name == "c"
    with pytest.raises(ValueError, match="unknown coarse mode"):
        metrics.CoarseAccuracy(PARENT, "vote")


@pytest.mark.parametrize("replicas", [1, 2])
def test_confusion_matrix_matches_numpy(replicas):
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:replicas]
    strategy = tf.distribute.MirroredStrategy(cpus)
    batches = [_batch(s) for s in range(3)]
    got = _run_distributed(strategy, lambda: metrics.ConfusionMatrix(6), batches)
    expected = np.zeros((6, 6))
    for y, logits in batches:
        np.add.at(expected, (y, np.argmax(logits, -1)), 1)
    np.testing.assert_array_equal(got, expected)
