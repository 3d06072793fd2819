"""CoarseAccuracy, ConfusionMatrix and CoarseConfusion against numpy on 1 and 2 replicas; per
coarse class recall by hand, through train_lib.compile_model and evaluate."""

from types import SimpleNamespace

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


# --------------------------------------------------------------------------- coarse confusion

def _numpy_coarse_confusion(y, logits, parent, mode, num_coarse=3):
    """Counts [true coarse, predicted coarse]; parent None: y and logits are coarse already."""
    if parent is None:
        true, pred = y, np.argmax(logits, -1)
    elif mode == "map_argmax":
        true, pred = parent[y], parent[np.argmax(logits, -1)]
    else:
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        sums = np.stack([p[:, parent == c].sum(-1) for c in range(num_coarse)], -1)
        true, pred = parent[y], np.argmax(sums, -1)
    expected = np.zeros((num_coarse, num_coarse))
    np.add.at(expected, (true, pred), 1)
    return expected


@pytest.mark.parametrize("model", ["fine/map_argmax", "fine/sum_probs", "coarse"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_coarse_confusion_matches_numpy(model, replicas):
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:replicas]
    strategy = tf.distribute.MirroredStrategy(cpus)
    fine = model != "coarse"
    mode = model.split("/")[-1] if fine else "map_argmax"
    parent = PARENT if fine else None
    # odd batch sizes: the replicas get unequal shares
    batches = [_batch(s, n=n, classes=6 if fine else 3) for s, n in enumerate((64, 33, 7))]
    got = _run_distributed(strategy, lambda: metrics.CoarseConfusion(3, parent, mode), batches)
    y = np.concatenate([b[0] for b in batches])
    logits = np.concatenate([b[1] for b in batches])
    expected = _numpy_coarse_confusion(y, logits, parent, mode)
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == len(y)
    # the diagonal share is exactly the run's coarse_accuracy (same rule)
    accuracy = _run_distributed(strategy, lambda: metrics.CoarseAccuracy(parent, mode), batches)
    np.testing.assert_allclose(np.trace(got) / got.sum(), accuracy, atol=1e-6)


def test_coarse_confusion_sum_probs_rule_and_weights():
    # Fine 0 wins alone (0.4), but coarse 1's children hold 0.6: true fine 3 (coarse 1).
    logits = np.log(np.array([[0.4, 0.0001, 0.2, 0.2, 0.2, 0.0]]) + 1e-9).astype("float32")
    for mode, row in (("map_argmax", [1, 0, 0]), ("sum_probs", [0, 1, 0])):
        m = metrics.CoarseConfusion(3, PARENT, mode)
        m.update_state(np.array([3]), logits)
        np.testing.assert_array_equal(m.result().numpy()[1], row)
        m.reset_state()
        assert m.result().numpy().sum() == 0
    m = metrics.CoarseConfusion(3)  # coarse model: weights are summed like CoarseAccuracy's
    m.update_state(np.array([0, 1, 2]), np.eye(3, dtype="float32")[[0, 2, 2]],
                   sample_weight=np.array([1.0, 0.5, 2.0]))
    np.testing.assert_array_equal(m.result().numpy(), [[1, 0, 0], [0, 0, 0.5], [0, 0, 2]])


def test_coarse_confusion_serialises_and_checks_its_arguments():
    m = metrics.CoarseConfusion(3, PARENT, "sum_probs")
    assert m.name == metrics.COARSE_CONFUSION == "coarse_confusion"
    clone = metrics.CoarseConfusion.from_config(m.get_config())
    assert (clone.num_classes, clone.parent, clone.mode) == (3, list(PARENT), "sum_probs")
    with pytest.raises(ValueError, match="unknown coarse mode"):
        metrics.CoarseConfusion(3, PARENT, "vote")
    with pytest.raises(ValueError, match="outside 0..1"):
        metrics.CoarseConfusion(2, PARENT)


def test_per_class_recall_by_hand():
    confusion = np.array([[3, 1, 0],    # A: 3 of 4 right
                          [1, 3, 1],    # B: 3 of 5 right
                          [0, 0, 0]])   # C: no examples -> left out, not NaN
    assert metrics.per_class_recall(confusion, ["A", "B", "C"]) == {
        "A": pytest.approx(3 / 4), "B": pytest.approx(3 / 5)}
    assert metrics.per_class_recall(np.zeros((2, 2)), ["A", "B"]) == {}
    with pytest.raises(ValueError, match="expected"):
        metrics.per_class_recall(confusion, ["A", "B"])


# --------------------------------------------------------------------------- train_lib

NAMES = ["A", "B", "C"]
# Hand-made test set for a fine model with an identity layer (input = logits).
# true fine -> predicted fine (coarse A = {0, 1}, B = {2, 3, 4}, C = {5}):
TRUE_FINE = [0, 1, 2, 3, 4, 2, 0, 4, 1]
PRED_FINE = [0, 2, 3, None, 4, 5, 1, 2, 1]  # None: the sum_probs example below
# Coarse (map_argmax): A->A x3 (0, 6, 8), A->B (1), B->B x3 (2, 4, 7), B->C (5) and example
# 3 (true B): fine 0 alone wins (A) but B's children hold 0.6, so sum_probs says B.
#   map_argmax: A [3, 1, 0], B [1, 3, 1], C [0, 0, 0] -> recall A 3/4, B 3/5
#   sum_probs:  A [3, 1, 0], B [0, 4, 1], C [0, 0, 0] -> recall A 3/4, B 4/5
# C has no test image: no test/recall/C.


def _fine_logits():
    logits = np.zeros((len(TRUE_FINE), 6), "float32")
    for k, p in enumerate(PRED_FINE):
        if p is None:
            logits[k] = np.log(np.array([0.4, 0.0001, 0.2, 0.2, 0.2, 0.0]) + 1e-9)
        else:
            logits[k, p] = 10.0
    return logits


def _toy_run(granularity, mode="map_argmax"):
    """What train_lib.evaluate reads of a Run: an identity model compiled by compile_model."""
    import keras

    from lg_tf import train_lib
    from lg_tf.config import Config
    from lg_tf.hierarchy import Hierarchy
    cfg = Config(granularity=granularity, coarse_metric=mode, eval_steps=0)
    h = Hierarchy("toy", list("abcdef"), NAMES, PARENT)
    strategy = train_lib.make_strategy(cfg)
    assert strategy.num_replicas_in_sync == 2
    width = 6 if granularity == "fine" else 3
    with strategy.scope():
        inputs = keras.Input((width,))
        model = keras.Model(inputs, keras.layers.Dense(
            width, use_bias=False, kernel_initializer="identity")(inputs))
        train_lib.compile_model(model, cfg, h, steps_per_epoch=1)
    return SimpleNamespace(cfg=cfg, model=model, data=SimpleNamespace(hierarchy=h),
                           test_ds=None, test_confusion=None, test_coarse_confusion=None)


@pytest.mark.parametrize("mode, recall_b, row_b", [("map_argmax", 3 / 5, [1, 3, 1]),
                                                   ("sum_probs", 4 / 5, [0, 4, 1])])
def test_evaluate_reports_coarse_recall_of_a_fine_run(mode, recall_b, row_b):
    from lg_tf import train_lib
    run = _toy_run("fine", mode)
    # batches of 4: the last one (1 image) leaves a replica empty
    run.test_ds = tf.data.Dataset.from_tensor_slices(
        (_fine_logits(), np.array(TRUE_FINE, "int32"))).batch(4)
    final = train_lib.evaluate(run)
    assert final["test/recall/A"] == pytest.approx(3 / 4)
    assert final["test/recall/B"] == pytest.approx(recall_b)
    assert "test/recall/C" not in final
    assert final["test/coarse_accuracy"] == pytest.approx((3 + 5 * recall_b) / 9, abs=1e-6)
    assert all(isinstance(v, float) for v in final.values())  # no matrix among the scalars
    np.testing.assert_array_equal(run.test_coarse_confusion, [[3, 1, 0], row_b, [0, 0, 0]])
    assert run.test_confusion.shape == (6, 6) and run.test_confusion.sum() == 9


def test_evaluate_reports_coarse_recall_of_a_coarse_run():
    from lg_tf import train_lib
    run = _toy_run("coarse")
    true = np.array([0, 0, 1, 1, 1, 2, 2], "int32")
    pred = [0, 1, 1, 1, 2, 2, 0]  # A 1/2, B 2/3, C 1/2
    # batches of 4 and 3 (split 2/1). The first batch of an unbuilt model must split evenly:
    # Keras builds it from the replicas' mean of that batch.
    run.test_ds = tf.data.Dataset.from_tensor_slices(
        (10 * np.eye(3, dtype="float32")[pred], true)).batch(4)
    final = train_lib.evaluate(run)
    assert {k: v for k, v in final.items() if k.startswith("test/recall/")} == {
        "test/recall/A": pytest.approx(1 / 2), "test/recall/B": pytest.approx(2 / 3),
        "test/recall/C": pytest.approx(1 / 2)}
    assert final["test/coarse_accuracy"] == pytest.approx(4 / 7)
    assert "test/fine_accuracy" not in final and run.test_confusion is None
    np.testing.assert_array_equal(run.test_coarse_confusion,
                                  [[1, 1, 0], [0, 2, 1], [1, 0, 1]])


def test_epoch_logs_keep_scalars_and_drop_matrices(tmp_path):
    from lg_tf import callbacks as cb
    saved = {}
    results = SimpleNamespace(add_epoch=lambda epoch, scalars, seconds: saved.update(scalars))
    checkpointer = SimpleNamespace(save=lambda epoch: None)
    callback = cb.EpochEnd(checkpointer, results, tf.summary.create_file_writer(str(tmp_path)),
                           images_per_epoch=10)
    callback.set_params({"epochs": 1})
    callback._start, callback._lr = 0.0, 0.1
    callback.on_epoch_end(0, {"coarse_accuracy": 0.5, "coarse_confusion": np.eye(3),
                              "val_coarse_confusion": np.eye(3), "val_loss": np.float32(1.0),
                              "train_eval/coarse_confusion": np.eye(3)})
    assert set(saved) == {"train/coarse_accuracy", "test/loss", "train/learning_rate",
                          "train/images_per_second"}
