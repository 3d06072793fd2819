"""ACR on hand-built confusion matrices (answers worked out by hand below, a coarse class with
a single fine class included), the confusion matrix via model.evaluate on 2 replicas against
numpy, the ACR callback, final_analysis (ACR note, recall scalars), and the figures."""

import dataclasses
import json
import logging
import os
import pathlib
from fractions import Fraction as F
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from lg_tf import analysis, metrics, plots, stats
from lg_tf.hierarchy import Hierarchy

# 4 fine classes a, b | c, d in 2 coarse classes X = {a, b}, Y = {c, d}.
PARENT = [0, 0, 1, 1]
NAMES = ["X", "Y"]
C = np.array([[8, 2, 0, 0],    # rows: true class, columns: predicted class
              [2, 6, 2, 0],
              [0, 0, 9, 1],
              [1, 0, 3, 6]])


def test_acr_column_normalised_by_hand():
    # 1. column sums: 8+2+0+1 = 11, 2+6+0+0 = 8, 0+2+9+3 = 14, 0+0+1+6 = 7
    # 2. N[i, j] = C[i, j] / colsum[j]; the off-diagonal entries:
    #    N01 = 2/8   N10 = 2/11 | N02 = 0   N20 = 0 | N03 = 0  N30 = 1/11
    #    N12 = 2/14  N21 = 0    | N13 = 0   N31 = 0 | N23 = 1/7  N32 = 3/14
    # 3. S = (N + N^T) / 2 over the pairs i < j:
    s01 = (F(2, 8) + F(2, 11)) / 2    # same parent  = 19/88
    s23 = (F(1, 7) + F(3, 14)) / 2    # same parent  = 5/28
    s02 = (F(0) + F(0)) / 2           # different    = 0
    s03 = (F(0) + F(1, 11)) / 2       # different    = 1/22
    s12 = (F(2, 14) + F(0)) / 2       # different    = 1/14
    s13 = (F(0) + F(0)) / 2           # different    = 0
    # 4. means and ratio
    intra = (s01 + s23) / 2                 # 243/1232
    inter = (s02 + s03 + s12 + s13) / 4     # 9/308
    assert (intra, inter) == (F(243, 1232), F(9, 308))
    assert inter / intra == F(4, 27)

    result = stats.acr(C, PARENT, NAMES)
    assert result.value == pytest.approx(4 / 27, rel=1e-12)
    assert result.intra == pytest.approx(243 / 1232, rel=1e-12)
    assert result.inter == pytest.approx(9 / 308, rel=1e-12)
    assert result.reason == "" and result.normalization == "column"
    # breakdown: X's only sibling pair is (a, b); Y's is (c, d); both see the same 4
    # cross pairs, so their inter is the overall inter.
    assert result.per_coarse["X"]["intra"] == pytest.approx(19 / 88, rel=1e-12)
    assert result.per_coarse["Y"]["intra"] == pytest.approx(5 / 28, rel=1e-12)
    for name in NAMES:
        assert result.per_coarse[name]["inter"] == pytest.approx(9 / 308, rel=1e-12)


def test_acr_row_normalised_by_hand():
    # every row of C sums to 10, so N = C / 10
    s01 = (F(2, 10) + F(2, 10)) / 2  # 1/5
    s23 = (F(1, 10) + F(3, 10)) / 2  # 1/5
    s03 = (F(0) + F(1, 10)) / 2      # 1/20
    s12 = (F(2, 10) + F(0)) / 2      # 1/10   (s02 = s13 = 0)
    intra, inter = (s01 + s23) / 2, (0 + s03 + s12 + 0) / 4
    assert inter / intra == F(3, 16)
    result = stats.acr(C, PARENT, NAMES, normalization="row")
    assert result.value == pytest.approx(3 / 16, rel=1e-12)
    assert (result.intra, result.inter) == (pytest.approx(1 / 5), pytest.approx(3 / 80))
    assert result.normalization == "row"
    with pytest.raises(ValueError, match="normalization"):
        stats.acr(C, PARENT, NAMES, normalization="both")


# 3 fine classes a, b | c: coarse "pair" = {a, b}, "alone" = {c} (a single fine class).
SINGLETON_PARENT = [0, 0, 1]
SINGLETON_NAMES = ["pair", "alone"]
SINGLETON_C = np.array([[5, 1, 0], [1, 5, 1], [0, 1, 5]])


def test_acr_with_a_single_fine_class_in_a_coarse_class_by_hand():
    # column sums 6, 7, 6; N01 = 1/7, N10 = 1/6, N02 = N20 = 0, N12 = 1/6, N21 = 1/7
    s01 = (F(1, 7) + F(1, 6)) / 2    # same parent ("pair") = 13/84: the only intra pair
    s02 = (F(0) + F(0)) / 2          # different             = 0
    s12 = (F(1, 6) + F(1, 7)) / 2    # different             = 13/84
    intra, inter = s01, (s02 + s12) / 2
    assert (intra, inter, inter / intra) == (F(13, 84), F(13, 168), F(1, 2))
    result = stats.acr(SINGLETON_C, SINGLETON_PARENT, SINGLETON_NAMES)
    assert result.value == pytest.approx(1 / 2, rel=1e-12)
    assert result.intra == pytest.approx(13 / 84, rel=1e-12)
    assert result.inter == pytest.approx(13 / 168, rel=1e-12)
    assert result.reason == ""
    assert result.note == ("coarse class(es) alone have a single fine class and contribute "
                           "no same-parent pair")
    # "alone" has no pair of its own; its fine class still counts in the cross pairs
    assert result.per_coarse["alone"] == {"intra": None, "inter": pytest.approx(13 / 168)}
    assert result.per_coarse["pair"] == {"intra": pytest.approx(13 / 84),
                                         "inter": pytest.approx(13 / 168)}
    assert analysis.acr_scalars(result) == {"test/acr": pytest.approx(1 / 2),
                                            "test/acr_inter": pytest.approx(13 / 168),
                                            "test/acr_intra": pytest.approx(13 / 84)}
    assert result.to_dict()["note"] == result.note


def test_acr_undefined_when_every_coarse_class_has_a_single_fine_class():
    result = stats.acr(SINGLETON_C, [0, 1, 2], ["x", "y", "z"])
    assert result.value is None and result.intra is None and result.note == ""
    assert "every coarse class has a single fine class" in result.reason
    assert analysis.acr_scalars(result) == {"test/acr_inter": pytest.approx(result.inter)}


def test_acr_note_kept_when_undefined_for_another_reason():
    c = np.array([[5, 0, 1], [0, 5, 1], [1, 0, 5]])  # siblings a, b never confused
    result = stats.acr(c, SINGLETON_PARENT, SINGLETON_NAMES)
    assert result.value is None and result.intra == 0 and "intra" in result.reason
    assert "alone" in result.note


def test_acr_undefined_when_siblings_are_never_confused():
    c = np.array([[5, 0, 1, 0], [0, 5, 0, 0], [0, 0, 5, 0], [0, 0, 0, 5]])
    result = stats.acr(c, PARENT, NAMES)
    assert result.value is None and result.intra == 0 and result.inter > 0
    assert "intra" in result.reason
    assert "test/acr" not in analysis.acr_scalars(result)


def test_acr_undefined_with_a_single_coarse_class():
    c = np.array([[5, 1, 0], [1, 5, 1], [0, 1, 5]])
    result = stats.acr(c, [0, 0, 0], ["all"])
    assert result.value is None and "one coarse class" in result.reason and result.note == ""
    scalars = analysis.acr_scalars(result)  # inter is NaN there: never logged
    assert "test/acr" not in scalars and "test/acr_inter" not in scalars
    assert all(np.isfinite(v) for v in scalars.values())


def test_empty_predicted_column_gives_no_nan_or_division_error():
    c = np.array([[5, 1, 0, 0],   # nothing is ever predicted as class 3
                  [1, 5, 0, 0],
                  [0, 1, 4, 0],
                  [1, 0, 3, 0]])
    with np.errstate(all="raise"):
        norm = stats.normalized_confusion(c, "column")
        result = stats.acr(c, PARENT, NAMES)
        empty = stats.acr(np.zeros((4, 4)), PARENT, NAMES)
    assert np.all(norm[:, 3] == 0) and np.all(np.isfinite(norm))
    assert result.value is not None and np.isfinite(result.value)
    # column sums 7, 7, 7, 0: the empty column contributes 0, not NaN
    s01 = (F(1, 7) + F(1, 7)) / 2     # same parent
    s23 = (F(0) + F(3, 7)) / 2        # same parent: N23 = 0 (empty column), N32 = 3/7
    s03 = (F(0) + F(1, 7)) / 2        # N30 = 1/7
    s12 = (F(0) + F(1, 7)) / 2        # N21 = 1/7   (s02 = s13 = 0)
    intra, inter = (s01 + s23) / 2, (0 + s03 + s12 + 0) / 4
    assert (intra, inter, inter / intra) == (F(5, 28), F(1, 28), F(1, 5))
    assert result.value == pytest.approx(1 / 5, rel=1e-12)
    assert empty.value is None and "intra" in empty.reason


# --------------------------------------------------------------------------- confusion

def _toy_model(strategy, num_classes=5, confusion=True):
    """A compiled linear classifier, with the ConfusionMatrix metric train_lib compiles."""
    with strategy.scope():
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(inputs))
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[metrics.ConfusionMatrix(num_classes, name="confusion")]
                      if confusion else ["accuracy"])
    return model


def _numpy_confusion(model, x, y, num_classes):
    expected = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(expected, (y, np.argmax(model(x).numpy(), -1)), 1)
    return expected


@pytest.mark.parametrize("n", [37, 33])  # last batch of 5 (split 3/2) and of 1 (one replica empty)
def test_confusion_matrix_via_evaluate_on_two_replicas_equals_numpy(tiny_config, n):
    from lg_tf import train_lib
    strategy = train_lib.make_strategy(tiny_config)
    assert strategy.num_replicas_in_sync == 2
    model = _toy_model(strategy)
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = rng.integers(0, 5, n).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    got = analysis.confusion_matrix(model, ds)
    expected = _numpy_confusion(model, x, y, 5)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == n
    # a second call gives the same counts (evaluate resets the metric), and steps is honoured
    np.testing.assert_array_equal(analysis.confusion_matrix(model, ds), expected)
    assert analysis.confusion_matrix(model, ds, steps=2).sum() == 16


def test_confusion_matrix_needs_the_compiled_metric(tiny_config):
    from lg_tf import train_lib
    strategy = train_lib.make_strategy(tiny_config)
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4), "float32"),
                                             np.zeros(4, "int32"))).batch(2)
    with pytest.raises(ValueError, match="no 'confusion' metric"):
        analysis.confusion_matrix(_toy_model(strategy, confusion=False), ds)
    with strategy.scope():
        inputs = keras.Input((4,))
        bare = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    with pytest.raises(ValueError, match="compiled model"):
        analysis.confusion_matrix(bare, ds)


def test_acr_callback_uses_val_confusion_else_evaluates(tiny_config, tmp_path):
    from lg_tf import train_lib
    strategy = train_lib.make_strategy(tiny_config)
    h = Hierarchy("toy", ["a", "b", "c", "d"], NAMES, PARENT)
    model = _toy_model(strategy, num_classes=4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype("float32")
    y = rng.integers(0, 4, 30).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    writer = tf.summary.create_file_writer(str(tmp_path))
    callback = analysis.ACRCallback(ds, h, writer, every=1)
    callback.set_model(model)
    # an epoch with validation: the counts of `val_confusion`, no pass of its own
    logs = {"val_confusion": C.astype("float32")}
    callback.on_epoch_end(0, logs)
    assert logs["test/acr"] == pytest.approx(4 / 27, rel=1e-6)
    assert logs["test/acr_seconds"] > 0
    # an epoch without validation: model.evaluate counts the dataset
    logs = {}
    callback.on_epoch_end(1, logs)
    expected = stats.acr(_numpy_confusion(model, x, y, 4), PARENT, NAMES)
    assert logs == pytest.approx({**analysis.acr_scalars(expected),
                                  "test/acr_seconds": logs["test/acr_seconds"]})
    writer.flush()


def test_plot_confusion_png(tmp_path):
    h = Hierarchy("toy", ["a", "c", "b", "d"], ["X", "Y"], [0, 1, 0, 1])
    png = plots.plot_confusion(C, h, str(tmp_path / "c.png"), title="toy")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "c.png").read_bytes() == png
    image = tf.io.decode_png(png)
    assert image.shape[0] > 200 and image.shape[-1] in (3, 4)
    points = np.random.default_rng(0).normal(size=(40, 2))
    assert plots.plot_tsne(points, np.arange(40) % 2, h)[:4] == b"\x89PNG"
    # save writes into folders it creates, and returns the same bytes
    fig = plots.canvas((2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = tmp_path / "new" / "folder" / "line.png"
    assert plots.save(fig, str(path)) == path.read_bytes()


# --------------------------------------------------------------------------- final analysis

def _scalar_events(logdir):
    """{tag: [(step, value)]} of the scalar summaries under logdir."""
    out = {}
    for name in sorted(os.listdir(logdir)):
        if name.startswith("events"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                for v in event.summary.value:
                    if v.metadata.plugin_data.plugin_name == "scalars":
                        value = float(tf.make_ndarray(v.tensor))
                        out.setdefault(v.tag, []).append((event.step, value))
    return out


def test_final_analysis_singleton_acr_note_and_recall_scalars(tmp_path, monkeypatch, caplog):
    h = Hierarchy("toy", ["a", "b", "c"], SINGLETON_NAMES, SINGLETON_PARENT)
    # coarse counts of SINGLETON_C: pair -> [5+1+1+5, 1], alone -> [1, 5]
    coarse = np.array([[12, 1], [1, 5]])
    run = SimpleNamespace(
        cfg=SimpleNamespace(eval_steps=0, eval_batch_size=8, scaled_epochs=3),
        data=SimpleNamespace(hierarchy=h, test=None, spec=None), model=None, fine=True,
        checkpointer=SimpleNamespace(latest_epoch=3), test_confusion=SINGLETON_C,
        test_coarse_confusion=coarse)
    monkeypatch.setattr(analysis, "write_projector", lambda *args, **kwargs: {})
    writer = tf.summary.create_file_writer(str(tmp_path / "tensorboard"))
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        out = analysis.final_analysis(run, str(tmp_path), writer)
    writer.close()
    assert out["test/acr"] == pytest.approx(1 / 2, rel=1e-12)
    assert out["test/acr_note"] == stats.acr(SINGLETON_C, SINGLETON_PARENT,
                                               SINGLETON_NAMES).note
    assert "test/acr_undefined_reason" not in out
    assert "ACR note: coarse class(es) alone have a single fine class" in caplog.text
    assert "pair 0.9231  alone 0.8333" in caplog.text
    events = _scalar_events(tmp_path / "tensorboard")
    assert events["test/recall/pair"] == [(3, pytest.approx(12 / 13))]
    assert events["test/recall/alone"] == [(3, pytest.approx(5 / 6))]
    saved = json.loads((tmp_path / "confusion.json").read_text())
    assert saved["acr"]["note"] == out["test/acr_note"]
    # analyze's printout: defined value, the singleton's row shows '-' for intra and ratio
    from lg_tf import analyze
    text = analyze.format_acr(stats.acr(SINGLETON_C, SINGLETON_PARENT, SINGLETON_NAMES),
                              h, "test", 21, "checkpoint epoch 3")
    assert "): 0.5" in text and "why undefined" not in text
    assert [line.split()[1:] for line in text.splitlines() if line.split()[0] == "alone"] == [
        ["1", "-", "0.07738", "-"]]


def test_final_results_and_tensorboard_have_coarse_recall(coarse_run, tiny_config):
    """End to end (a coarse run of two epochs, the session's shared `coarse_run`): recall in
    results.json's final and in TensorBoard at the final step; the per-epoch records hold
    scalars only."""
    assert coarse_run.cfg == dataclasses.replace(tiny_config, granularity="coarse",
                                                 acr_every=1)
    results, tmp_path = coarse_run.results, pathlib.Path(coarse_run.model_dir)
    saved = json.loads((tmp_path / "results.json").read_text())
    names = saved["hierarchy"]["coarse_names"]
    recall = {k: v for k, v in saved["final"].items() if k.startswith("test/recall/")}
    assert recall and set(recall) <= {f"test/recall/{n}" for n in names}
    assert all(0.0 <= v <= 1.0 for v in recall.values())
    assert saved["final"] == results["final"]
    for epoch in saved["epochs"]:
        assert not any("confusion" in k for k in epoch)
        assert all(isinstance(v, (int, float)) for v in epoch.values())
    events = _scalar_events(tmp_path / "tensorboard")
    for tag, value in recall.items():
        assert events[tag] == [(2, pytest.approx(value))]  # the final step only
