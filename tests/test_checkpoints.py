"""Nothing lost, ever (issue 10): checkpoints found from their own files, damaged ones skipped,
another model's refused before anything is written, full disks explained, results.json kept."""

import json
import logging
import errno
import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import files, models, optim
from lg_tf.checkpoints import Checkpointer
from lg_tf.errors import RunError
from lg_tf.results import Results

DATA = "data-00000-of-00001"


def _model(classes=3, width=2):
    """The tiny variant of the real model (PreAct ResNet-18) with the real optimizer, built."""
    model = models.build_model("preact_resnet18", classes, input_shape=(8, 8, 3), width=width)
    model.compile(optimizer=optim.CoupledSGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _head_bias(model):
    return model.trainable_weights[-1]  # the logits layer's bias: (classes,)


def _save_epochs(directory, epochs, classes=3, width=2):
    """Checkpoints of `epochs`, each with the head bias set to its epoch number."""
    model = _model(classes, width)
    ckpt = Checkpointer(directory, model)
    for epoch in epochs:
        _head_bias(model).assign(np.full(classes, float(epoch), np.float32))
        ckpt.save(epoch)
    return ckpt


def _restored(directory, **kwargs):
    """A fresh model's Checkpointer: (checkpointer, epoch restored, the head bias restored)."""
    model = _model(**kwargs)
    ckpt = Checkpointer(directory, model)
    epoch = ckpt.restore()
    return ckpt, epoch, float(_head_bias(model).numpy()[0])


def _listing(directory):
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            s = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), directory)] = (s.st_size, s.st_mtime_ns)
    return out


def _truncate(path, keep=0.5):
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[: int(len(raw) * keep)])


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "lg_tf" and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- finding checkpoints

def test_deleted_index_file_restores_the_newest_epoch_from_its_files(tmp_path, caplog):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    os.remove(os.path.join(d, "checkpoint"))
    caplog.set_level(logging.WARNING, "lg_tf")
    ckpt, epoch, bias = _restored(d)
    assert (epoch, bias, ckpt.latest_epoch) == (2, 2.0, 2)
    assert any("is missing or unreadable" in w and "epoch 2" in w for w in _warnings(caplog))
    # The manager continues from the files: the index lists them again and pruning works.
    ckpt.save(3)
    ckpt.save(4)
    state = tf.train.get_checkpoint_state(d)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "ckpt-2", "ckpt-3", "ckpt-4"]
    assert not os.path.exists(os.path.join(d, "ckpt-1.index"))  # max_to_keep=3 pruned it


def test_empty_index_file_is_read_as_absent(tmp_path):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    open(os.path.join(d, "checkpoint"), "w").close()  # cut short to nothing
    assert _restored(d)[1:] == (2, 2.0)


def test_checkpoint_newer_than_the_index_file_is_used(tmp_path):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    with open(os.path.join(d, "checkpoint")) as f:
        state = f.read()
    _save_epochs(d, [1, 2, 3])
    with open(os.path.join(d, "checkpoint"), "w") as f:  # a stop before the index update
        f.write(state)
    ckpt, epoch, bias = _restored(d)
    assert (epoch, bias) == (3, 3.0)
    # Restoring reads only; training then repairs the index for TensorFlow's own readers.
    assert tf.train.latest_checkpoint(d).endswith("ckpt-2")
    ckpt.repair_index()
    assert tf.train.latest_checkpoint(d).endswith("ckpt-3")
    assert [os.path.basename(p) for p in tf.train.get_checkpoint_state(d)
            .all_model_checkpoint_paths] == ["ckpt-1", "ckpt-2", "ckpt-3"]
    before = _listing(d)
    ckpt.repair_index()  # already right: nothing written
    assert _listing(d) == before


def test_empty_folder_is_a_fresh_start_and_writes_nothing(tmp_path):
    d = tmp_path / "checkpoints"
    ckpt = Checkpointer(str(d), _model())
    assert (ckpt.verify(), ckpt.restore(), ckpt.latest_epoch) == (0, 0, 0)
    assert not d.exists()


# --------------------------------------------------------------------------- damaged checkpoints

DAMAGE = {
    "data_cut_short": lambda p: _truncate(f"{p}.{DATA}"),
    "data_cut_by_one_byte": lambda p: _truncate(f"{p}.{DATA}", keep=0.999),
    "index_cut_short": lambda p: _truncate(f"{p}.index"),
    "index_removed": lambda p: os.remove(f"{p}.index"),
    "data_removed": lambda p: os.remove(f"{p}.{DATA}"),
    "both_removed": lambda p: [os.remove(f"{p}.index"), os.remove(f"{p}.{DATA}")],
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_with_a_one_line_warning(tmp_path, caplog, damage):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2, 3])
    DAMAGE[damage](os.path.join(d, "ckpt-3"))
    caplog.set_level(logging.WARNING, "lg_tf")
    ckpt, epoch, bias = _restored(d)
    assert (epoch, bias, ckpt.latest_epoch) == (2, 2.0, 2)
    (warning,) = [w for w in _warnings(caplog) if "ckpt-3" in w]
    assert "cannot be restored" in warning and "using the checkpoint of epoch 2" in warning
    assert "\n" not in warning and "Traceback" not in warning
    reason = warning.split("cannot be restored: ")[1]
    expected = {"index_removed": "ckpt-3.index is missing",
                "index_cut_short": "ckpt-3.index is unreadable",
                "data_removed": f"ckpt-3.{DATA} is missing",
                "both_removed": "ckpt-3.index is missing"}
    assert reason.startswith(expected.get(damage, f"ckpt-3.{DATA} is cut short"))


def test_save_after_a_fallback_replaces_the_damaged_checkpoint(tmp_path, caplog):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2, 3])
    _truncate(os.path.join(d, f"ckpt-3.{DATA}"))
    model = _model()
    ckpt = Checkpointer(d, model)
    assert ckpt.restore() == 2
    _head_bias(model).assign(np.full(3, 33.0, np.float32))
    ckpt.save(3)
    assert ckpt.latest_epoch == 3
    state = tf.train.get_checkpoint_state(d)
    assert os.path.basename(state.model_checkpoint_path) == "ckpt-3"
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "ckpt-1", "ckpt-2", "ckpt-3"]
    caplog.clear()
    caplog.set_level(logging.WARNING, "lg_tf")
    assert _restored(d)[1:] == (3, 33.0)
    assert not _warnings(caplog)  # the new ckpt-3 is whole
    ckpt.save(4)
    assert sorted(f for f in os.listdir(d) if f.endswith(".index")) == [
        "ckpt-2.index", "ckpt-3.index", "ckpt-4.index"]


def test_repair_index_after_a_fallback_names_the_restored_checkpoint(tmp_path):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2, 3])
    _truncate(os.path.join(d, f"ckpt-3.{DATA}"))
    ckpt, epoch, _ = _restored(d)
    assert epoch == 2 and tf.train.latest_checkpoint(d).endswith("ckpt-3")  # damaged one
    ckpt.repair_index()
    state = tf.train.get_checkpoint_state(d)
    assert os.path.basename(state.model_checkpoint_path) == "ckpt-2"
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-1", "ckpt-2"]
    assert os.path.exists(os.path.join(d, f"ckpt-3.{DATA}"))  # the damaged files stay


def test_every_checkpoint_damaged_is_one_sentence(tmp_path):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    for epoch in (1, 2):
        _truncate(os.path.join(d, f"ckpt-{epoch}.{DATA}"))
    before = _listing(d)
    with pytest.raises(RunError) as e:
        _restored(d)
    message = str(e.value)
    assert message.startswith(f"every checkpoint in {d} is damaged (ckpt-2: ")
    assert "ckpt-1: " in message and "\n" not in message
    assert message.endswith("pass --overwrite to start afresh or restore the folder from a backup")
    assert _listing(d) == before


# --------------------------------------------------------------------------- another model

@pytest.mark.parametrize("other, variable", [
    ({"classes": 5}, "(16, 3)"),   # another class count: the logits layer differs
    ({"width": 4}, "(3, 3, 3, 2)"),  # another width: the first convolution differs
])
def test_another_models_checkpoint_is_refused_before_anything_is_written(tmp_path, other,
                                                                         variable):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    before = _listing(str(tmp_path))
    model = _model(**other)
    values = [w.numpy().copy() for w in model.weights]
    ckpt = Checkpointer(d, model)
    with pytest.raises(RunError) as e:
        ckpt.verify()
    message = str(e.value)
    assert message.startswith(f"{d} holds a run of a different model: variable ")
    assert f"has shape {variable} in its checkpoint of epoch 2 but " in message
    assert message.endswith("use another --model_dir, or pass --overwrite to start afresh")
    with pytest.raises(RunError, match="different model"):
        ckpt.restore()
    with pytest.raises(RunError, match="different model"):
        ckpt.save(3)
    assert _listing(str(tmp_path)) == before  # nothing written, nothing removed
    assert all(np.array_equal(v, w.numpy()) for v, w in zip(values, model.weights))


def test_verify_is_read_only_and_restore_then_restores(tmp_path):
    d = str(tmp_path / "checkpoints")
    _save_epochs(d, [1, 2])
    before = _listing(d)
    model = _model()
    ckpt = Checkpointer(d, model)
    assert ckpt.verify() == 2 and ckpt.latest_epoch == 2
    assert float(_head_bias(model).numpy()[0]) == 0.0  # not restored yet
    assert _listing(d) == before
    assert ckpt.restore() == 2 and float(_head_bias(model).numpy()[0]) == 2.0


# --------------------------------------------------------------------------- failed saves

FULL = ("no space left while saving the checkpoint of epoch 3 in {d}; the checkpoint of "
        "epoch 2 is intact: free space and re-run the same command to resume")
DENIED = ("could not save the checkpoint of epoch 3 in {d} (ckpt-3_temp; Permission denied); "
          "the checkpoint of epoch 2 is intact: fix that and re-run the same command to resume")


@pytest.mark.parametrize("error, sentence", [
    (tf.errors.ResourceExhaustedError(None, None, "ckpt-3_temp; No space left on device"), FULL),
    (tf.errors.PermissionDeniedError(None, None, "ckpt-3_temp; Permission denied\nmore"), DENIED),
    (OSError(28, "No space left on device"), FULL),
], ids=["resource_exhausted", "permission_denied", "enospc"])
def test_failed_save_is_one_sentence_naming_the_intact_epoch(tmp_path, monkeypatch, error,
                                                             sentence):
    d = str(tmp_path / "checkpoints")
    ckpt = _save_epochs(d, [1, 2])

    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(ckpt.manager, "save", full)
    with pytest.raises(RunError) as e:
        ckpt.save(3)
    assert str(e.value) == sentence.format(d=d)
    assert ckpt.latest_epoch == 2
    monkeypatch.undo()
    assert _restored(d)[1:] == (2, 2.0)


def test_failed_first_save_says_no_checkpoint_was_lost(tmp_path, monkeypatch):
    ckpt = Checkpointer(str(tmp_path), _model())
    monkeypatch.setattr(ckpt.manager, "save", lambda *a, **k: (_ for _ in ()).throw(
        tf.errors.ResourceExhaustedError(None, None, "No space left on device")))
    with pytest.raises(RunError, match="epoch 1 in .*; no earlier checkpoint exists: free "
                                       "space and re-run the same command to start again$"):
        ckpt.save(1)


# --------------------------------------------------------------------------- results.json

HEADER = {"config": {"model": "tiny"}}


def _results_with_epochs(path, epochs):
    results = Results(path, HEADER)
    for epoch in epochs:
        results.add_epoch(epoch, {"train/loss": 1.0 / epoch}, 0.5)
    return results


def _epochs_in(path):
    with open(path) as f:
        return [e["epoch"] for e in json.load(f)["epochs"]]


def test_results_keep_the_previous_version_as_backup(tmp_path):
    path = str(tmp_path / "results.json")
    results = _results_with_epochs(path, [1, 2, 3])
    assert _epochs_in(path) == [1, 2, 3] and _epochs_in(path + ".bak") == [1, 2]
    results.finish({"test/loss": 0.1})
    assert _epochs_in(path + ".bak") == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.json.bak"]  # no temp files


def test_truncated_results_resume_from_the_backup(tmp_path, caplog):
    path = str(tmp_path / "results.json")
    _results_with_epochs(path, [1, 2, 3])
    _truncate(path)
    caplog.set_level(logging.WARNING, "lg_tf")
    results = Results(path, HEADER, resume_epoch=2)
    assert [e["epoch"] for e in results.data["epochs"]] == [1, 2]
    assert results.data["wall_time_s"] == pytest.approx(1.0)
    (warning,) = _warnings(caplog)
    assert "does not parse" in warning and "results.json.bak (epochs 1-2)" in warning
    # The next write does not copy the broken file over the good backup.
    results.add_epoch(3, {"train/loss": 0.3}, 0.5)
    assert _epochs_in(path) == [1, 2, 3] and _epochs_in(path + ".bak") == [1, 2]
    results.add_epoch(4, {"train/loss": 0.25}, 0.5)
    assert _epochs_in(path + ".bak") == [1, 2, 3]


def test_backup_missing_the_last_epoch_says_which_records_are_lost(tmp_path, caplog):
    path = str(tmp_path / "results.json")
    _results_with_epochs(path, [1, 2, 3])
    os.remove(path)
    caplog.set_level(logging.WARNING, "lg_tf")
    results = Results(path, HEADER, resume_epoch=3)
    assert [e["epoch"] for e in results.data["epochs"]] == [1, 2]
    (warning,) = _warnings(caplog)
    assert "is missing" in warning and "the records of epochs 3 are lost" in warning


@pytest.mark.parametrize("content", [b"", b'{"config": {"model": "ti', b"[1, 2]",
                                     b'{"epochs": [{"no": 1}]}', b"\xff\xfe"])
def test_unreadable_results_and_backup_start_an_empty_history_without_crashing(
        tmp_path, caplog, content):
    path = str(tmp_path / "results.json")
    for name in (path, path + ".bak"):
        with open(name, "wb") as f:
            f.write(content)
    caplog.set_level(logging.WARNING, "lg_tf")
    results = Results(path, HEADER, resume_epoch=4)
    assert results.data["epochs"] == [] and results.data["wall_time_s"] == 0.0
    (warning,) = _warnings(caplog)
    assert ("the per-epoch history up to epoch 4 was lost, but the checkpoint of epoch 4 is "
            "intact") in warning
    results.add_epoch(5, {"train/loss": 0.2}, 0.5)
    assert _epochs_in(path) == [5]


def test_results_write_on_a_full_disk_is_one_sentence(tmp_path, monkeypatch):
    path = str(tmp_path / "results.json")
    results = _results_with_epochs(path, [1])

    def full(*args, **kwargs):  # the backup copy (files.copy) hits a full disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "copy", full)
    with pytest.raises(RunError, match=f"^no space left while writing {path}; the last "
                                       "checkpoint is intact: free space and re-run"):
        results.add_epoch(2, {"train/loss": 0.5}, 0.5)
    monkeypatch.undo()
    assert _epochs_in(path) == [1]

    def denied(*args, **kwargs):  # another error, another sentence
        raise tf.errors.PermissionDeniedError(None, None, "results.json; Permission denied")

    monkeypatch.setattr(files, "rename", denied)
    with pytest.raises(RunError, match=f"^could not write {path} \\(results.json; Permission "
                                       "denied\\); the last checkpoint is intact: fix that"):
        results.add_epoch(2, {"train/loss": 0.5}, 0.5)
    monkeypatch.undo()
    assert _epochs_in(path) == [1]
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.json.bak"]  # temp removed


# --------------------------------------------------------------------------- file modes

def test_json_files_get_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_json_atomic(str(tmp_path / "config.json"), {"a": 1})
        _results_with_epochs(str(tmp_path / "results.json"), [1, 2])
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode)
             for name in os.listdir(tmp_path)}
    assert modes == {"config.json": 0o644, "results.json": 0o644, "results.json.bak": 0o644}
    with open(tmp_path / "config.json") as f:
        assert json.load(f) == {"a": 1}


def test_write_json_atomic_leaves_no_temp_file_when_it_fails(tmp_path):
    (tmp_path / "target.json").mkdir()  # a folder in the way: the rename fails
    with pytest.raises((OSError, tf.errors.OpError)):
        files.write_json_atomic(str(tmp_path / "target.json"), {"a": 1})
    assert os.listdir(tmp_path) == ["target.json"]


# --------------------------------------------------------------------------- end to end

def test_real_run_damaged_after_training_resumes_from_what_is_whole(fine_run, fine_run_copy,
                                                                    caplog):
    """A copy of the session's trained tiny fine run (2 epochs), damaged after training."""
    from lg_tf import train_lib
    cfg, model_dir = fine_run.cfg, fine_run_copy
    assert cfg.epochs == 2
    checkpoints = os.path.join(model_dir, "checkpoints")
    os.remove(os.path.join(checkpoints, "checkpoint"))
    _truncate(os.path.join(checkpoints, f"ckpt-2.{DATA}"))
    _truncate(os.path.join(model_dir, "results.json"))
    caplog.set_level(logging.WARNING, "lg_tf")
    run = train_lib.build_run(cfg, model_dir)
    # The shapes in ckpt-2's index (and ckpt-1) match the real model and optimizer: no false
    # "different model"; its cut-short data makes the restore fall back to epoch 1.
    assert run.checkpointer.restore() == 1
    assert any("ckpt-2" in w and "epoch 1 instead" in w for w in _warnings(caplog))
    results = Results(os.path.join(model_dir, "results.json"), HEADER, resume_epoch=1)
    assert [e["epoch"] for e in results.data["epochs"]] == [1]
    assert all(np.all(np.isfinite(w.numpy())) for w in run.model.weights)
