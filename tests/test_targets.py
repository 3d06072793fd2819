"""Training targets beyond coarse/fine (issue 13): joint, soft_labels, hxe.

Each loss against a value computed by hand on a tiny batch; the joint model's two heads;
the calibration and sibling-mistake metrics against numpy on 1 and 2 replicas; every
target through train_and_evaluate end to end (train, resume, export, serve)."""

import dataclasses
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from lg_tf import grid as grid_lib
from lg_tf import config as config_lib
from lg_tf import losses, metrics, train_lib
from lg_tf.errors import ConfigError

# --------------------------------------------------------------------------- losses by hand
# Three fine classes, fine 0 and 1 under coarse 0, fine 2 under coarse 1. Both examples
# have fine probabilities exactly (0.5, 0.3, 0.2); the labels are fine 0 and fine 2.
TINY_PARENT = [0, 0, 1]
TINY_LOGITS = np.log(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]], "float32"))
TINY_LABELS = np.array([0, 2], "int32")
LN = math.log


def _per_example(loss, logits=TINY_LOGITS):
    return keras.ops.convert_to_numpy(loss.call(TINY_LABELS, logits))


def test_hxe_by_hand():
    # alpha = ln 2, so exp(-alpha) = 1/2.  Example 0: P(coarse 0) = 0.8, P(fine 0 | coarse 0)
    # = 0.5 / 0.8 = 0.625 -> -ln 0.8 - 0.5 ln 0.625 = 0.2231436 + 0.2350018 = 0.4581454.
    # Example 1: P(coarse 1) = 0.2, P(fine 2 | coarse 1) = 1 -> -ln 0.2 = 1.6094379.
    loss = losses.HierarchicalCrossEntropy(TINY_PARENT, alpha=LN(2))
    np.testing.assert_allclose(_per_example(loss), [0.4581454, 1.6094379], rtol=1e-6)
    assert float(loss(TINY_LABELS, TINY_LOGITS)) == pytest.approx((0.4581454 + 1.6094379) / 2)
    # alpha = 0 is the fine cross-entropy: -ln 0.5 = 0.6931472, -ln 0.2.
    plain = losses.HierarchicalCrossEntropy(TINY_PARENT, alpha=0.0)
    np.testing.assert_allclose(_per_example(plain), [0.6931472, 1.6094379], rtol=1e-6)


def test_soft_labels_by_hand():
    # beta = ln 2: weights 1 (itself), 1/2 (a sibling), 1/4 (another coarse class).
    # Label 0: targets (1, 1/2, 1/4) / 1.75 = (4/7, 2/7, 1/7).
    # Label 2: fine 0 and 1 are both in another coarse class: (1/4, 1/4, 1) / 1.5.
    np.testing.assert_allclose(losses.soft_label_targets(TINY_PARENT, LN(2)),
                               [[4 / 7, 2 / 7, 1 / 7], [2 / 7, 4 / 7, 1 / 7],
                                [1 / 6, 1 / 6, 2 / 3]], rtol=1e-6)
    # -(4/7 ln .5 + 2/7 ln .3 + 1/7 ln .2) = 0.9699960; -(1/6 ln .5 + 1/6 ln .3 + 2/3 ln .2)
    # = 1.3891453.
    loss = losses.SoftLabelCrossEntropy(TINY_PARENT, beta=LN(2))
    np.testing.assert_allclose(_per_example(loss), [0.9699960, 1.3891453], rtol=1e-6)
    # A large beta leaves the one-hot target: the fine cross-entropy.
    sharp = losses.SoftLabelCrossEntropy(TINY_PARENT, beta=50.0)
    np.testing.assert_allclose(_per_example(sharp), [0.6931472, 1.6094379], rtol=1e-5)


def test_joint_loss_by_hand():
    # Coarse head probabilities (0.6, 0.4) for both; weight 0.5.
    # Example 0: -ln 0.5 + 0.5 * -ln 0.6 = 0.6931472 + 0.2554128 = 0.9485600.
    # Example 1: -ln 0.2 + 0.5 * -ln 0.4 = 1.6094379 + 0.4581454 = 2.0675833.
    coarse = np.log(np.array([[0.6, 0.4], [0.6, 0.4]], "float32"))
    joint = np.concatenate([TINY_LOGITS, coarse], axis=1)
    loss = losses.JointCrossEntropy(TINY_PARENT, coarse_weight=0.5)
    np.testing.assert_allclose(_per_example(loss, joint), [0.9485600, 2.0675833], rtol=1e-6)


def test_losses_serialise_and_have_finite_gradients_when_confidently_wrong():
    logits = tf.constant([[30.0, -30.0, -30.0]])
    for loss in (losses.HierarchicalCrossEntropy(TINY_PARENT, 0.5),
                 losses.SoftLabelCrossEntropy(TINY_PARENT, 4.0)):
        clone = type(loss).from_config(loss.get_config())
        assert clone.get_config() == loss.get_config()
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(tf.constant([2]), logits)
        assert np.isfinite(float(value)) and np.all(np.isfinite(tape.gradient(value, logits)))


# --------------------------------------------------------------------------- the joint model

def test_joint_model_has_a_fine_and_a_coarse_head_in_one_output():
    from lg_tf import models
    fine = models.build_model("preact_resnet18", 6, width=4, input_shape=(8, 8, 3))
    joint = models.build_model("preact_resnet18", 6, width=4, input_shape=(8, 8, 3),
                               coarse_head_classes=3)
    features = joint.get_layer("features").output.shape[-1]
    assert joint.get_layer("fine_logits").units == 6
    assert joint.get_layer("coarse_logits").units == 3
    assert joint.output.shape == (None, 9)
    assert (models.count_trainable_params(joint)
            == models.count_trainable_params(fine) + 3 * (features + 1))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    probe = keras.Model(joint.inputs, [joint.get_layer("fine_logits").output,
                                       joint.get_layer("coarse_logits").output])
    f, c = probe(x, training=False)
    np.testing.assert_allclose(joint(x, training=False), np.concatenate([f, c], 1), atol=1e-6)
    wrn = models.build_model("wide_resnet", 6, depth=10, widen_factor=1,
                             input_shape=(8, 8, 3), coarse_head_classes=3, dropout=0.3)
    assert wrn.output.shape == (None, 9) and wrn.get_layer("features_dropout")
    with pytest.raises(ValueError, match="joint head"):
        models.build_model("preact_resnet18", 6, width=4, input_shape=(8, 8, 3),
                           coarse_head_classes=3, extra_layer_units=6)


# --------------------------------------------------------------------------- metrics

PARENT = np.array([0, 0, 1, 1, 1, 2])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _numpy_ece(probs, y, bins=15):
    """Guo et al.: sum over bins (lo, hi] of n_b / N * |accuracy_b - confidence_b|."""
    conf, hit = probs.max(-1), probs.argmax(-1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(hit[inside].mean() - conf[inside].mean())
    return total


def _numpy_reference(y, out, joint):
    """Every metric of a fine-output run by numpy; joint: out = [fine | coarse head]."""
    fine = out[:, :6]
    pf = _softmax(fine)
    from_fine = np.stack([pf[:, PARENT == c].sum(-1) for c in range(3)], -1)
    coarse_probs = _softmax(out[:, 6:]) if joint else from_fine
    yc, pred = PARENT[y], fine.argmax(-1)
    wrong = pred != y
    ref = {"coarse_ece": _numpy_ece(coarse_probs, yc),
           "coarse_nll": -np.log(coarse_probs[np.arange(len(y)), yc]).mean(),
           "sibling_mistakes": np.mean(PARENT[pred][wrong] == yc[wrong]),
           "fine_accuracy": np.mean(pred == y),
           "coarse_accuracy": np.mean(coarse_probs.argmax(-1) == yc if joint
                                      else PARENT[pred] == yc)}
    if joint:
        ref["coarse_accuracy_from_fine"] = np.mean(PARENT[pred] == yc)
        ref["coarse_accuracy_combined"] = np.mean(
            ((coarse_probs + from_fine) / 2).argmax(-1) == yc)
    return ref


def _metric_objects(joint):
    n = 6 if joint else 0
    out = {"coarse_ece": metrics.CoarseECE(PARENT, num_fine=n),
           "coarse_nll": metrics.CoarseNLL(PARENT, num_fine=n),
           "sibling_mistakes": metrics.SiblingMistakes(PARENT, num_fine=n),
           "fine_accuracy": metrics.FineAccuracy(6),
           "coarse_accuracy": metrics.CoarseAccuracy(PARENT, num_fine=n)}
    if joint:
        out["coarse_accuracy_from_fine"] = metrics.CoarseAccuracy(
            PARENT, num_fine=6, source="fine_head")
        out["coarse_accuracy_combined"] = metrics.CoarseAccuracy(
            PARENT, num_fine=6, source="combined")
    return out


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("replicas", [1, 2])
def test_new_metrics_match_numpy(joint, replicas):
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:replicas]
    strategy = tf.distribute.MirroredStrategy(cpus)
    rng = np.random.default_rng(replicas)
    width = 9 if joint else 6
    # three batches; the last (25 images) splits unevenly over the replicas
    batches = [(rng.integers(0, 6, n).astype("int32"),
                (3 * rng.normal(size=(n, width))).astype("float32")) for n in (64, 64, 25)]
    with strategy.scope():
        objects = _metric_objects(joint)

    @tf.function
    def step(y, out):
        for m in objects.values():
            strategy.run(m.update_state, args=(y, out))

    for y, out in batches:
        for yy, oo in strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices((y, out)).batch(len(y))):
            step(yy, oo)
    y = np.concatenate([b[0] for b in batches])
    out = np.concatenate([b[1] for b in batches])
    ref = _numpy_reference(y, out, joint)
    got = {k: float(m.result()) for k, m in objects.items()}
    assert got == pytest.approx(ref, abs=1e-5)


def test_ece_by_hand_and_coarse_model_nll():
    # Coarse model, 4 images, confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.55 (right):
    # bin (14/15, 1] holds none; (13/15, 14/15] the two 0.9s: |1/2 - 0.9| * 2/4 = 0.2;
    # (8/15, 9/15] 0.6 and 0.55: |1 - 0.575| * 2/4 = 0.2125. ECE = 0.4125.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.55, 0.45]], "float32")
    y = np.array([0, 1, 1, 0])
    ece = metrics.CoarseECE(None)
    ece.update_state(y, np.log(probs))
    assert float(ece.result()) == pytest.approx(0.4125, abs=1e-6)
    nll = metrics.CoarseNLL(None)
    nll.update_state(y, np.log(probs))
    # -(ln .9 + ln .1 + ln .6 + ln .55) / 4
    assert float(nll.result()) == pytest.approx(0.8791521, abs=1e-6)


def test_sibling_mistakes_by_hand_and_without_mistakes():
    m = metrics.SiblingMistakes(PARENT)
    logits = 10 * np.eye(6, dtype="float32")[[1, 3, 0, 5]]  # predictions 1, 3, 0, 5
    m.update_state(np.array([0, 2, 0, 3]), logits)          # mistakes: sibling, sibling, -, no
    assert float(m.result()) == pytest.approx(2 / 3)
    clean = metrics.SiblingMistakes(PARENT)
    clean.update_state(np.array([1]), logits[:1])
    assert float(clean.result()) == 0.0


def test_confident_mistake_gives_a_finite_nll():
    logits = np.array([[100.0, -100.0, -100.0, -100.0, -100.0, -100.0]], "float32")
    m = metrics.CoarseNLL(PARENT)
    m.update_state(np.array([5]), logits)
    assert np.isfinite(float(m.result())) and float(m.result()) == pytest.approx(200, rel=1e-3)


# --------------------------------------------------------------------------- config

def test_target_settings_apply_to_their_target_only():
    cfg = config_lib.Config()
    for name, target in config_lib.TARGET_FIELDS.items():
        config_lib.validate(dataclasses.replace(cfg, granularity=target, **{name: 0.7}))
        with pytest.raises(ConfigError, match=f"--{name} only applies to "
                                              f"--granularity={target}"):
            config_lib.validate(dataclasses.replace(cfg, **{name: 0.7}))
    with pytest.raises(ConfigError, match="--soft_beta=0"):
        config_lib.validate(dataclasses.replace(cfg, granularity="soft_labels", soft_beta=0.0))
    with pytest.raises(ConfigError, match="--hxe_alpha=-1"):
        config_lib.validate(dataclasses.replace(cfg, granularity="hxe", hxe_alpha=-1.0))


def test_run_names_tell_the_targets_and_their_settings_apart():
    base = config_lib.Config()
    names = {grid_lib.run_name(dataclasses.replace(base, granularity=g, **kw))
             for g, kw in [("fine", {}), ("coarse", {}), ("joint", {}),
                           ("joint", {"coarse_loss_weight": 0.3}), ("soft_labels", {}),
                           ("soft_labels", {"soft_beta": 8.0}), ("hxe", {}),
                           ("hxe", {"hxe_alpha": 2.0})]}
    assert len(names) == 8
    assert grid_lib.run_name(base) == "fine"


# --------------------------------------------------------------------------- end to end

def _scalar_tags(logdir):
    tags = set()
    for name in os.listdir(logdir):
        if name.startswith("events"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                tags.update(v.tag for v in event.summary.value)
    return tags


NEW_SCALARS = ("test/coarse_accuracy", "test/fine_accuracy", "test/coarse_ece",
               "test/coarse_nll", "test/sibling_mistakes")


# joint in the fast suite (two heads: the most to go wrong); the others with -m slow.
@pytest.mark.parametrize("granularity", [
    "joint", pytest.param("soft_labels", marks=pytest.mark.slow),
    pytest.param("hxe", marks=pytest.mark.slow)])
def test_target_trains_resumes_evaluates_and_exports(tiny_config, tmp_path, monkeypatch,
                                                     granularity):
    from lg_tf import callbacks as cb
    cfg = dataclasses.replace(tiny_config, granularity=granularity)
    original = cb.EpochEnd.on_epoch_end

    def killed_after_first(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(cb.EpochEnd, "on_epoch_end", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        train_lib.train_and_evaluate(cfg, str(tmp_path))
    monkeypatch.setattr(cb.EpochEnd, "on_epoch_end", original)
    results = train_lib.train_and_evaluate(cfg, str(tmp_path))
    assert [e["epoch"] for e in results["epochs"]] == [1, 2]
    assert results["resumes"][-1]["from_epoch"] == 1
    final = results["final"]
    joint = ["test/coarse_accuracy_from_fine", "test/coarse_accuracy_combined"]
    for key in NEW_SCALARS + tuple(joint if granularity == "joint" else ()):
        assert 0.0 <= final[key] <= (math.inf if key == "test/coarse_nll" else 1.0), key
    assert ("test/coarse_accuracy_combined" in final) == (granularity == "joint")
    assert "acr" in json.load(open(tmp_path / "confusion.json"))   # a fine confusion matrix
    assert set(NEW_SCALARS) <= _scalar_tags(tmp_path / "tensorboard")
    _check_export(results.model, tmp_path / "export", granularity)
    if granularity == "joint":
        _check_refused_as_fine(cfg, tmp_path)


def _check_export(model, export_dir, granularity):
    from lg_tf.hierarchy import Hierarchy
    h = Hierarchy.from_dict(json.load(open(export_dir / "assets.extra" / "hierarchy.json")))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = model(images.astype("float32"), training=False).numpy()
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    got = {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}
    fine = out[:, :h.num_fine]
    np.testing.assert_allclose(got["fine_probs"], _softmax(fine), atol=1e-5)
    np.testing.assert_array_equal(got["fine_label"], fine.argmax(-1))
    if granularity == "joint":
        coarse_probs = _softmax(out[:, h.num_fine:])
    else:
        coarse_probs = np.stack([_softmax(fine)[:, h.parent_array() == c].sum(-1)
                                 for c in range(h.num_coarse)], -1)
    np.testing.assert_allclose(got["coarse_probs"], coarse_probs, atol=1e-5)
    expected = (coarse_probs.argmax(-1) if granularity == "joint"
                else h.parent_array()[fine.argmax(-1)])
    np.testing.assert_array_equal(got["coarse_label"], expected)


def _check_refused_as_fine(cfg, model_dir):
    """A joint run's folder is refused to a fine run, and its checkpoint to a fine model."""
    fine = dataclasses.replace(cfg, granularity="fine")
    with pytest.raises(train_lib.RunError, match="granularity=joint -> fine"):
        train_lib.train_and_evaluate(fine, str(model_dir))
    with pytest.raises(train_lib.RunError, match="model"):
        train_lib.build_run(fine, str(model_dir)).checkpointer.restore()


@pytest.mark.parametrize("granularity", ["coarse", "fine", "joint", "soft_labels", "hxe"])
def test_every_target_reports_the_new_metrics_through_evaluate(granularity):
    """compile_model's metrics for each target on an identity model (no training)."""
    from types import SimpleNamespace

    from lg_tf.hierarchy import Hierarchy
    cfg = config_lib.Config(granularity=granularity, eval_steps=0)
    h = Hierarchy("toy", list("abcdef"), ["A", "B", "C"], PARENT)
    width = {"coarse": 3, "joint": 9}.get(granularity, 6)
    strategy = train_lib.make_strategy(cfg)
    with strategy.scope():
        inputs = keras.Input((width,))
        model = keras.Model(inputs, keras.layers.Dense(
            width, use_bias=False, kernel_initializer="identity")(inputs))
        train_lib.compile_model(model, cfg, h, steps_per_epoch=1)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3 if granularity == "coarse" else 6, 40).astype("int32")
    out = (3 * rng.normal(size=(40, width))).astype("float32")
    run = SimpleNamespace(cfg=cfg, model=model, data=SimpleNamespace(hierarchy=h),
                          test_ds=tf.data.Dataset.from_tensor_slices((out, y)).batch(8),
                          test_confusion=None, test_coarse_confusion=None)
    final = train_lib.evaluate(run)
    if granularity == "coarse":
        probs = _softmax(out)
        assert final["test/coarse_ece"] == pytest.approx(_numpy_ece(probs, y), abs=1e-5)
        assert "test/sibling_mistakes" not in final and run.test_confusion is None
        return
    ref = _numpy_reference(y, out, granularity == "joint")
    assert {k: final[f"test/{k}"] for k in ref} == pytest.approx(ref, abs=1e-5)
    assert run.test_confusion.shape == (6, 6) and run.test_confusion.sum() == 40
