"""Faults: SIGKILL at random points, SIGTERM, non-finite loss, determinism, unwritable model_dir."""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 3


def _command(embedded_dir, model_dir, *extra):
    return [sys.executable, "-m", "lg_tf.train", "--flagfile=flags/quickstart.cfg",
            f"--data_dir={embedded_dir}", "--width=4", f"--epochs={EPOCHS}",
            "--steps_per_epoch=3", "--eval_steps=1", "--batch_size=16", "--eval_batch_size=32",
            "--lr_milestones=2", f"--model_dir={model_dir}", *extra]


def _epochs(model_dir):
    try:
        with open(os.path.join(model_dir, "results.json")) as f:
            return [e["epoch"] for e in json.load(f)["epochs"]]
    except (OSError, ValueError):
        return []


def _start(cmd):
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for(predicate, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _tb_steps(logdir, tag="train/loss"):
    steps = []
    for name in sorted(os.listdir(logdir)):
        if name.startswith("events"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def _assert_complete(model_dir):
    results = json.load(open(os.path.join(model_dir, "results.json")))
    assert [e["epoch"] for e in results["epochs"]] == list(range(1, EPOCHS + 1))
    assert results["final"]["test/coarse_accuracy"] >= 0
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith(
        f"ckpt-{EPOCHS}")
    # TensorBoard: every epoch present; an epoch redone after a kill appears again with a
    # later wall time, which TensorBoard shows in place of the orphaned one.
    assert set(_tb_steps(os.path.join(model_dir, "tensorboard"))) == set(range(1, EPOCHS + 1))
    assert tf.saved_model.load(os.path.join(model_dir, "export")).signatures["serving_default"]


# Kill points: during start-up / the first epoch, just after an epoch's record is written
# (inside checkpointing or the next epoch), and after the last epoch (evaluation / export).
KILL_POINTS = {
    "first_epoch": lambda d: os.path.exists(os.path.join(d, "config.json")),
    "after_epoch_2": lambda d: 2 in _epochs(d),
    "during_export": lambda d: EPOCHS in _epochs(d),
}


@pytest.mark.parametrize("point", [
    pytest.param("first_epoch", marks=pytest.mark.slow),  # also hit by the random kills
    "after_epoch_2", "during_export"])
def test_sigkill_then_rerun_resumes_and_completes(embedded_dir, tmp_path, point):
    model_dir = str(tmp_path / "run")
    proc = _start(_command(embedded_dir, model_dir))
    _wait_for(lambda: KILL_POINTS[point](model_dir), proc)
    proc.kill()
    proc.wait()
    done = epochs_before = _epochs(model_dir)
    assert done == list(range(1, len(done) + 1))  # never a gap or a duplicate
    rerun = subprocess.run(_command(embedded_dir, model_dir), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    if epochs_before and epochs_before[-1] < EPOCHS:
        assert "resuming" in rerun.stdout
    _assert_complete(model_dir)


def test_a_kill_before_the_index_update_is_repaired_on_rerun(fine_run, fine_run_copy):
    # The window the SIGKILL test only sometimes hits: the last epoch's checkpoint files are
    # whole but TensorFlow's index file still names the epoch before. The rerun uses the
    # newest checkpoint and makes the index say so, for TensorFlow's own readers.
    checkpoints = os.path.join(fine_run_copy, "checkpoints")
    prefix = os.path.join(checkpoints, "ckpt-1")
    tf.compat.v1.train.update_checkpoint_state(checkpoints, prefix, [prefix])
    train_lib.train_and_evaluate(fine_run.cfg, fine_run_copy)
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-2")
    assert _epochs(fine_run_copy) == [1, 2]


# SIGTERM in the fast suite; Ctrl-C (same handler) with -m slow.
@pytest.mark.parametrize("sig", [signal.SIGTERM,
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_signal_stops_cleanly_exit_75_and_rerun_resumes(embedded_dir, tmp_path, sig):
    model_dir = str(tmp_path / "run")
    proc = _start(_command(embedded_dir, model_dir, "--epochs=200"))
    assert _wait_for(lambda: 1 in _epochs(model_dir), proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, out[-3000:]   # EXIT_PREEMPTED: a scheduler retries
    assert f"{sig.name} received" in out and "re-run the same command to resume" in out, out[-3000:]
    assert "Traceback" not in out
    epochs = _epochs(model_dir)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert latest.endswith(f"ckpt-{epochs[-1]}")  # the record and the checkpoint agree
    assert json.load(open(os.path.join(model_dir, "results.json")))["stopped"]
    rerun = subprocess.run(_command(embedded_dir, model_dir), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert [e for e in _epochs(model_dir)][: len(epochs)] == epochs


def test_nan_loss_stops_names_the_step_and_keeps_the_good_checkpoint(fine_run, fine_run_copy,
                                                                       monkeypatch):
    # A copy of the session's finished 2-epoch fine run, extended to 4 epochs, whose
    # optimizer blows up from epoch 3 on (a changed --learning_rate itself would be refused
    # on resume).
    cfg, tmp_path = fine_run.cfg, pathlib.Path(fine_run_copy)
    assert cfg.epochs == 2
    real = train_lib.compile_model

    def diverging(model, c, h, steps, **kwargs):
        real(model, dataclasses.replace(c, learning_rate=1e30, lr_milestones=(100,)), h, steps,
             **kwargs)

    monkeypatch.setattr(train_lib, "compile_model", diverging)
    with pytest.raises(train_lib.TrainingDiverged) as e:
        train_lib.train_and_evaluate(dataclasses.replace(cfg, epochs=4), str(tmp_path))
    assert "at epoch 3 step" in str(e.value) and "checkpoint of epoch 2 kept" in str(e.value)
    assert _epochs(str(tmp_path)) == [1, 2]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


def test_nan_cli_exit_code_is_3(embedded_dir, tmp_path):
    proc = subprocess.run(_command(embedded_dir, tmp_path, "--epochs=2", "--learning_rate=1e30"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith("lg_tf: error:")]
    assert len(errors) == 1 and "non-finite" not in errors[0] and "became" in errors[0]
    assert "Traceback" not in proc.stderr


def test_skip_batch_keeps_weights_finite(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, epochs=2, learning_rate=1e30, lr_milestones=(100,),
                              on_nan="skip_batch")
    train_lib.train_and_evaluate(cfg, str(tmp_path))
    run = train_lib.build_run(cfg, str(tmp_path))
    run.checkpointer.restore()
    assert all(np.all(np.isfinite(w.numpy())) for w in run.model.trainable_weights)
    assert _epochs(str(tmp_path)) == [1, 2]


def test_deterministic_runs_are_bit_identical(embedded_dir, tmp_path):
    readers = []
    for name in ("a", "b"):
        proc = subprocess.run(_command(embedded_dir, tmp_path / name, "--epochs=2",
                                       "--deterministic"),
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        readers.append(tf.train.load_checkpoint(str(tmp_path / name / "checkpoints")))
    names = [n for n in readers[0].get_variable_to_shape_map()
             if n.startswith(("model/", "optimizer/"))]
    assert len(names) > 20
    for n in names:
        np.testing.assert_array_equal(readers[0].get_tensor(n), readers[1].get_tensor(n), err_msg=n)
    a, b = (json.load(open(tmp_path / name / "results.json")) for name in ("a", "b"))
    def strip(r):
        return [{k: v for k, v in e.items() if "second" not in k} for e in r["epochs"]]
    assert strip(a) == strip(b) and a["final"] == b["final"]


def test_unwritable_model_dir_is_one_sentence_before_training(tiny_config, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(train_lib.RunError, match="cannot (write to|create) --model_dir"):
        train_lib.train_and_evaluate(tiny_config, str(blocker / "run"))


def test_too_little_disk_is_one_sentence_before_training(tiny_config, tmp_path, monkeypatch):
    import shutil
    usage = shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1024))
    with pytest.raises(train_lib.RunError, match="MiB free under --model_dir"):
        train_lib.train_and_evaluate(tiny_config, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints" / "checkpoint")


def test_sigkill_at_random_moments_always_resumes(embedded_dir, tmp_path):
    """Two kills at fixed-seed random moments of one run, then a clean finish."""
    rng = np.random.default_rng(0)
    model_dir = str(tmp_path / "run")
    for _ in range(2):
        proc = _start(_command(embedded_dir, model_dir))
        _wait_for(lambda: os.path.exists(os.path.join(model_dir, "config.json")), proc)
        time.sleep(float(rng.uniform(0.0, 6.0)))
        proc.kill()
        proc.wait()
        done = _epochs(model_dir)
        assert done == list(range(1, len(done) + 1))
    rerun = subprocess.run(_command(embedded_dir, model_dir), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    _assert_complete(model_dir)
