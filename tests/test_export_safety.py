"""Issue 10, "Nothing lost, ever": the export replaces only what lg_tf wrote, and its
serving signature takes grayscale, RGB and RGBA batches, empty ones included."""

import dataclasses
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import export as export_lib
from lg_tf import train_lib
from lg_tf.errors import RunError


@pytest.fixture(scope="module")
def _cache():
    return {}


@pytest.fixture
def tiny_run(tiny_config, tmp_path_factory, _cache):
    """(cfg, run, model_dir): the untrained tiny fine model of tiny_config with its data,
    built once for this module (no training: the export does not care), and a model_dir."""
    if "run" not in _cache:
        from lg_tf.data import datasets
        model_dir = str(tmp_path_factory.mktemp("model_dir"))
        data = datasets.prepare(tiny_config)
        h = data.hierarchy
        model = train_lib.build_model(tiny_config, h.num_fine, h.num_fine, data.spec)
        _cache["run"] = (tiny_config, types.SimpleNamespace(model=model, data=data), model_dir)
    return _cache["run"]


def _export(tiny_run, path, model_dir=None):
    cfg, run, run_dir = tiny_run
    return export_lib.export_saved_model(
        run.model, run.data.hierarchy, run.data.spec, cfg.granularity, cfg.coarse_metric,
        str(path), model_dir=run_dir if model_dir is None else model_dir)


def _tree(path):
    """Every file under path with its size: what "nothing deleted" is checked against."""
    return {os.path.relpath(os.path.join(d, f), path): os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(path) for f in files}


# --------------------------------------------------------------------------- where it may go

def test_folder_with_a_foreign_file_is_refused_and_the_file_kept(tiny_run, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\chapter{Four years}")
    for path in (thesis, f"{thesis}/", tmp_path / "thesis" / ".." / "thesis"):
        with pytest.raises(RunError, match=r"did not write \(thesis\.tex\)"):
            _export(tiny_run, path)
    assert (thesis / "thesis.tex").read_text() == "\\chapter{Four years}"
    assert sorted(os.listdir(tmp_path)) == ["thesis"]  # no .tmp sibling was started
    # a symlink to it is resolved, not trusted
    os.symlink(thesis, tmp_path / "link")
    with pytest.raises(RunError, match="did not write"):
        export_lib.check_export_dir(str(tmp_path / "link"), None)
    assert os.listdir(thesis) == ["thesis.tex"]


def test_a_file_at_export_dir_is_refused(tiny_run, tmp_path):
    (tmp_path / "export").write_text("not a folder")
    with pytest.raises(RunError, match="is a file"):
        _export(tiny_run, tmp_path / "export")
    assert (tmp_path / "export").read_text() == "not a folder"


def test_model_dir_and_folders_above_it_are_refused_and_nothing_deleted(tiny_run, tmp_path,
                                                                         monkeypatch):
    model_dir = tiny_run[2]
    # what a trained run holds: something to lose
    with open(os.path.join(model_dir, "results.json"), "w") as f:
        f.write("{}")
    os.makedirs(os.path.join(model_dir, "checkpoints"), exist_ok=True)
    with open(os.path.join(model_dir, "checkpoints", "ckpt-1.index"), "wb") as f:
        f.write(b"weights")
    before = _tree(model_dir)
    assert len(before) == 2
    parent = os.path.dirname(model_dir)
    os.symlink(model_dir, tmp_path / "alias")
    monkeypatch.chdir(parent)
    for path in (model_dir, model_dir + "/", str(tmp_path / "alias"),
                 os.path.basename(model_dir)):
        with pytest.raises(RunError, match="is the model_dir itself"):
            _export(tiny_run, path)
    for path in (parent, os.path.dirname(parent), ".", "/"):
        with pytest.raises(RunError, match="contains the model_dir"):
            export_lib.check_export_dir(path, model_dir)
    with pytest.raises(RunError, match="contains the model_dir"):
        _export(tiny_run, parent)
    assert _tree(model_dir) == before
    assert not os.path.exists(model_dir + ".tmp") and not os.path.exists(parent + ".tmp")
    # A folder inside the model_dir (the default <model_dir>/export) is fine.
    export_lib.check_export_dir(os.path.join(model_dir, "export"), model_dir)
    # <export_dir>.tmp, where the export is written first, must not be the model_dir either
    (tmp_path / "run.tmp").mkdir()
    with pytest.raises(RunError, match="temporary folder"):
        export_lib.check_export_dir(str(tmp_path / "run"), str(tmp_path / "run.tmp"))


def test_new_path_empty_folder_and_earlier_export_are_accepted(tiny_run, tmp_path):
    cfg = tiny_run[0]
    new = tmp_path / "a" / "b" / "export"
    assert _export(tiny_run, new) == str(new)
    marker = json.loads((new / export_lib.MARKER).read_text())
    assert marker["lg_tf_export"] == 1 and marker["granularity"] == cfg.granularity
    assert set(marker["files"]) == set(os.listdir(new))
    assert {"saved_model.pb", "variables", "assets.extra", export_lib.MARKER} <= set(
        marker["files"])
    assert not os.path.exists(f"{new}.tmp")

    empty = tmp_path / "empty"
    empty.mkdir()
    _export(tiny_run, empty)
    assert (empty / "saved_model.pb").exists()

    # re-export over an lg_tf export: replaced (a stale file of the old one is gone)
    (new / "variables" / "stale").write_text("old")
    _export(tiny_run, new)
    assert not (new / "variables" / "stale").exists()
    assert (new / "saved_model.pb").exists()

    # an export written before the marker existed still counts as lg_tf's
    (new / export_lib.MARKER).unlink()
    export_lib.check_export_dir(str(new), tiny_run[2])
    _export(tiny_run, new)
    assert (new / export_lib.MARKER).exists()

    # ... but not once somebody keeps their own file at its top level
    (new / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"notes\.txt"):
        _export(tiny_run, new)
    assert (new / "notes.txt").read_text() == "mine"
    # nor a look-alike without hierarchy.json
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "saved_model.pb").write_bytes(b"someone else's")
    with pytest.raises(RunError, match="did not write"):
        export_lib.check_export_dir(str(lookalike), None)


def test_tmp_sibling_is_removed_only_when_it_is_lg_tfs_leftover(tiny_run, tmp_path):
    export = tmp_path / "export"
    foreign_tmp = tmp_path / "export.tmp"
    foreign_tmp.mkdir()
    (foreign_tmp / "data.csv").write_text("1,2,3")
    with pytest.raises(RunError, match=r"temporary export folder .*data\.csv"):
        _export(tiny_run, export)
    assert (foreign_tmp / "data.csv").read_text() == "1,2,3"
    assert not export.exists()
    (foreign_tmp / "data.csv").unlink()
    (foreign_tmp / "data.csv").mkdir()  # a foreign folder: the same
    with pytest.raises(RunError, match="did not write"):
        export_lib.check_export_dir(str(export), None)
    (foreign_tmp / "data.csv").rmdir()

    # a file there is refused too
    foreign_tmp.rmdir()
    foreign_tmp.write_text("x")
    with pytest.raises(RunError, match="is a file"):
        _export(tiny_run, export)
    assert foreign_tmp.read_text() == "x"


def test_a_killed_export_leaves_the_old_one_whole_and_is_cleaned_up_next_time(
        tiny_run, tmp_path, monkeypatch):
    import keras
    export = tmp_path / "export"
    _export(tiny_run, export)
    before = _tree(export)
    archive_class = type(keras.export.ExportArchive())  # the backend's class
    original = archive_class.write_out

    def killed(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        os.remove(os.path.join(filepath, "saved_model.pb"))  # half written
        raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(archive_class, "write_out", killed)
    with pytest.raises(KeyboardInterrupt):
        _export(tiny_run, export)
    assert _tree(export) == before  # the previous export is untouched
    leftover = tmp_path / "export.tmp"
    assert (leftover / export_lib.MARKER).exists()  # ... and the leftover is marked as ours
    monkeypatch.setattr(archive_class, "write_out", original)
    _export(tiny_run, export)  # the leftover is recognised and removed
    assert not leftover.exists()
    assert (export / "saved_model.pb").exists()


# --------------------------------------------------------------------------- serving

@pytest.fixture
def served(tiny_run, tmp_path_factory, _cache):
    """(serving_default signature of a loaded export, the run): exported once."""
    if "served" not in _cache:
        path = tmp_path_factory.mktemp("served") / "export"
        _export(tiny_run, path)
        _cache["served"] = tf.saved_model.load(str(path))  # keep the object alive
    return _cache["served"].signatures["serving_default"], tiny_run[1]


def _images(n, channels, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, channels), dtype=np.uint8)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype == tf.string:
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
        else:
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-6)


FINE_KEYS = {"coarse_probs", "coarse_label", "coarse_name", "fine_probs", "fine_label",
             "fine_name"}


def test_rgb_output_is_the_models(served):
    serve, run = served
    rgb = _images(4, 3)
    out = serve(images=tf.constant(rgb))
    assert set(out) == FINE_KEYS
    logits = run.model(rgb.astype("float32"), training=False).numpy()
    np.testing.assert_allclose(out["fine_probs"].numpy(), tf.nn.softmax(logits).numpy(),
                               atol=1e-5)
    np.testing.assert_array_equal(out["fine_label"].numpy(), logits.argmax(-1))
    parent = run.data.hierarchy.parent_array()
    np.testing.assert_array_equal(out["coarse_label"].numpy(), parent[logits.argmax(-1)])
    assert out["fine_label"].dtype == tf.int32 and out["coarse_name"].dtype == tf.string


def test_rgba_drops_alpha_and_grayscale_is_replicated(served):
    serve, _ = served
    rgb = _images(2, 3)
    alpha = _images(2, 1, seed=1)
    rgba = np.concatenate([rgb, alpha], axis=-1)
    assert rgba.shape == (2, 32, 32, 4)
    _assert_same(serve(images=tf.constant(rgba)), serve(images=tf.constant(rgb)))

    gray = _images(2, 1, seed=2)
    out_gray = serve(images=tf.constant(gray))
    _assert_same(out_gray, serve(images=tf.constant(np.repeat(gray, 3, axis=-1))))
    assert out_gray["fine_probs"].shape[0] == 2
    np.testing.assert_allclose(out_gray["fine_probs"].numpy().sum(-1), 1.0, atol=1e-5)


def test_empty_batch_gives_empty_outputs(served):
    serve, run = served
    out = serve(images=tf.constant(np.zeros((0, 32, 32, 3), np.uint8)))
    h = run.data.hierarchy
    assert set(out) == FINE_KEYS
    assert out["fine_probs"].shape == (0, h.num_fine) and out["fine_probs"].dtype == tf.float32
    assert out["coarse_probs"].shape == (0, h.num_coarse)
    for k in ("fine_label", "coarse_label"):
        assert out[k].shape == (0,) and out[k].dtype == tf.int32
    for k in ("fine_name", "coarse_name"):
        assert out[k].shape == (0,) and out[k].dtype == tf.string
    # empty grayscale too
    assert serve(images=tf.zeros([0, 7, 9, 1], tf.uint8))["coarse_label"].shape == (0,)


@pytest.mark.parametrize("channels", [2, 5])
def test_other_channel_counts_are_refused_with_a_message(served, channels):
    serve, _ = served
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 \(grayscale\), 3 \(RGB\) or "
                                                             r"4 \(RGBA\) channels"):
        serve(images=tf.constant(_images(2, channels)))


def test_imagenet_center_crop_path_takes_empty_and_grayscale_batches(tiny_run):
    cfg, run, _ = tiny_run
    spec = dataclasses.replace(run.data.spec, augment="imagenet")
    serve = tf.function(export_lib.serving_fn(run.model, run.data.hierarchy, spec,
                                              cfg.granularity, cfg.coarse_metric),
                        input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8)])
    empty = serve(tf.zeros([0, 40, 48, 3], tf.uint8))
    assert empty["fine_probs"].shape == (0, run.data.hierarchy.num_fine)
    assert empty["coarse_name"].shape == (0,)
    gray = np.random.default_rng(3).integers(0, 256, (2, 40, 48, 1), dtype=np.uint8)
    _assert_same(serve(tf.constant(gray)), serve(tf.constant(np.repeat(gray, 3, axis=-1))))
    with pytest.raises(tf.errors.InvalidArgumentError, match="channels"):
        serve(tf.zeros([1, 40, 48, 2], tf.uint8))


def test_coarse_run_serves_empty_and_rgba_batches(tiny_run):
    cfg, run, _ = tiny_run
    h = run.data.hierarchy
    model = train_lib.build_model(cfg, h.num_coarse, h.num_fine, run.data.spec)
    serve = tf.function(export_lib.serving_fn(model, h, run.data.spec, "coarse",
                                              cfg.coarse_metric),
                        input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8)])
    empty = serve(tf.zeros([0, 32, 32, 4], tf.uint8))
    assert set(empty) == {"coarse_probs", "coarse_label", "coarse_name"}
    assert empty["coarse_probs"].shape == (0, h.num_coarse)
    assert empty["coarse_label"].shape == (0,) and empty["coarse_label"].dtype == tf.int32
    rgb = _images(3, 3, seed=4)
    rgba = np.concatenate([rgb, _images(3, 1, seed=5)], axis=-1)
    _assert_same(serve(tf.constant(rgba)), serve(tf.constant(rgb)))
    logits = model(rgb.astype("float32"), training=False).numpy()
    np.testing.assert_array_equal(serve(tf.constant(rgb))["coarse_label"].numpy(),
                                  logits.argmax(-1))
