"""ACR during and after tiny runs (callback, final analysis, projector) and the
`python -m lg_tf.analyze` commands on a finished run."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import analysis, stats, train_lib
from lg_tf.config import Config
from lg_tf.data import datasets, pipeline

FINE, COARSE = 12, 4
EVAL_IMAGES = 2 * 32  # eval_steps x eval_batch_size of the tiny runs


def _config(embedded_dir, **kw):
    return Config(dataset="embedded", data_dir=embedded_dir, model="preact_resnet18", width=4,
                  epochs=2, batch_size=16, eval_batch_size=32, steps_per_epoch=3, eval_steps=2,
                  learning_rate=0.05, lr_milestones=(1,), lr_decay=0.1, acr_every=1, **kw)


# fine_run and coarse_run (tests/conftest.py): tiny runs of this config (2 epochs each,
# fine and coarse), trained once per session and shared, read only.

def _text(path):
    with open(path) as f:
        return f.read()


def _json(path):
    return json.loads(_text(path))


def _events(logdir):
    tags = {}
    for name in os.listdir(logdir):
        if name.startswith("events"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                for v in event.summary.value:
                    tags.setdefault(v.tag, []).append(event.step)
    return tags


def test_callback_logs_acr_every_epoch(fine_run, embedded_dir):
    model_dir = fine_run.model_dir
    assert fine_run.cfg == _config(embedded_dir)
    saved = _json(os.path.join(model_dir, "results.json"))
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    for epoch in saved["epochs"]:
        assert np.isfinite(epoch["test/acr"]) and epoch["test/acr"] >= 0
        assert epoch["test/acr"] == pytest.approx(epoch["test/acr_inter"] / epoch["test/acr_intra"])
        assert 0 < epoch["test/acr_seconds"] < epoch["seconds"]
    tags = _events(os.path.join(model_dir, "tensorboard"))
    for tag in ("test/acr", "test/acr_inter", "test/acr_intra", "test/acr_seconds"):
        assert tags[tag] == [1, 2], tag
    assert set(tags["test/confusion"]) == {1, 2}  # per epoch, and again by the final analysis


def test_final_analysis_outputs(fine_run):
    cfg, model_dir, results = fine_run.cfg, fine_run.model_dir, fine_run.results
    final = results["final"]
    assert ("test/acr" in final) != ("test/acr_undefined_reason" in final)
    assert _json(os.path.join(model_dir, "results.json"))["final"] == final
    assert set(results["acr_breakdown"]) == {"round", "angular", "striped", "tiled"}
    confusion = _json(os.path.join(model_dir, "confusion.json"))
    matrix = np.array(confusion["matrix"])
    assert matrix.shape == (FINE, FINE) and matrix.sum() == EVAL_IMAGES
    assert len(confusion["fine_names"]) == FINE and len(confusion["coarse_names"]) == COARSE
    h = datasets.resolve_hierarchy(cfg)
    again = stats.acr(matrix, h.parent_array(), h.coarse_names)
    if again.value is not None:
        assert final["test/acr"] == pytest.approx(again.value)
    with open(os.path.join(model_dir, "confusion.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    projector = os.path.join(model_dir, "tensorboard", "projector")
    lines = _text(os.path.join(projector, "metadata.tsv")).splitlines()
    assert lines[0] == "fine\tcoarse" and len(lines) == EVAL_IMAGES + 1
    fine, coarse = lines[1].split("\t")
    assert h.coarse_names[h.parent_array()[h.fine_names.index(fine)]] == coarse
    assert analysis.EMBEDDING_TENSOR in _text(os.path.join(projector, "projector_config.pbtxt"))
    reader = tf.train.load_checkpoint(projector)
    assert reader.get_variable_to_shape_map()[analysis.EMBEDDING_TENSOR] == [EVAL_IMAGES, 32]
    assert "projector/about" in _events(projector)


def test_coarse_run_has_no_acr_but_projector(coarse_run, embedded_dir):
    assert coarse_run.cfg == _config(embedded_dir, granularity="coarse")
    results, tmp_path = coarse_run.results, pathlib.Path(coarse_run.model_dir)
    assert "ACR needs a fine-trained model" in coarse_run.log
    assert not any(k.startswith("test/acr") for e in results["epochs"] for k in e)
    assert not any(k.startswith("test/acr") for k in results["final"])
    assert "acr_breakdown" not in results and not (tmp_path / "confusion.json").exists()
    assert "test/acr" not in _events(tmp_path / "tensorboard")
    lines = (tmp_path / "tensorboard" / "projector" / "metadata.tsv").read_text().splitlines()
    assert lines[0] == "coarse\tpredicted_coarse" and len(lines) == EVAL_IMAGES + 1


# --------------------------------------------------------------------------- CLI

def _analyze(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "lg_tf.analyze", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def _printed_acr(stdout):
    match = re.search(r"^ACR \((.*)\): (\S+)$", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(2))


def test_cli_acr_matches_in_process(fine_run_copy, capsys):
    model_dir = fine_run_copy  # the command writes acr_test.json into it
    proc = _analyze("acr", f"--model_dir={model_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = _printed_acr(proc.stdout)
    assert "checkpoint epoch 2" in proc.stdout and "tiled" in proc.stdout
    written = _json(os.path.join(model_dir, "acr_test.json"))
    assert written["examples"] == 2400 and written["split"] == "test"
    assert np.array(written["confusion"]).shape == (FINE, FINE)

    # the same checkpoint, restored and recomputed here on 2 replicas (the CLI ran on 1)
    run = train_lib.restore_run(model_dir)
    assert run.epoch == 2 and run.strategy.num_replicas_in_sync == 2
    ds = pipeline.make_dataset(run.data.test, run.data.spec, training=False, batch_size=32,
                               seed=0)
    confusion = analysis.confusion_matrix(run.model, ds)
    np.testing.assert_array_equal(confusion, written["confusion"])
    h = run.data.hierarchy
    expected = stats.acr(confusion, h.parent_array(), h.coarse_names).value
    assert printed == pytest.approx(expected, rel=1e-5)
    assert written["value"] == pytest.approx(expected, rel=1e-12)

    # the SavedModel export, fed raw uint8 images, gives the same confusion matrix (the
    # command the CLI calls with --saved_model, in-process: the CLI itself is proven above)
    from lg_tf import analyze
    capsys.readouterr()
    analyze.acr_command(model_dir, saved_model=os.path.join(model_dir, "export"))
    assert _printed_acr(capsys.readouterr().out) == pytest.approx(expected, rel=1e-5)
    saved = _json(os.path.join(model_dir, "acr_test.json"))
    assert saved["source"].startswith("SavedModel")
    assert np.abs(np.array(saved["confusion"]) - confusion).sum() <= 2  # float ties at most


def test_tsne_command(fine_run, tmp_path, capsys):
    """What `analyze tsne --max_samples=100 --out=...` runs, in-process (the CLI's exit codes
    and its flag handling are proven by the test_cli_* tests)."""
    from lg_tf import analyze
    out = tmp_path / "plots" / "tsne.png"
    assert analyze.tsne_command(fine_run.model_dir, max_samples=100, out=str(out)) == str(out)
    assert "100 of 2400 test images" in capsys.readouterr().out
    image = tf.io.decode_png(out.read_bytes())
    assert image.shape[0] > 300 and image.shape[1] > 300


@pytest.mark.parametrize("args, message", [
    (("acr", "--model_dir=/no/such/run"), "does not exist"),
    (("acr",), "--model_dir is required"),
    (("plot", "--model_dir=."), "unknown subcommand 'plot'"),
    (("tsne", "--model_dir=.", "--saved_model=x"), "applies to 'acr' only"),
])
def test_cli_errors_are_one_line(args, message):
    proc = _analyze(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_refuses_a_dir_without_config_or_checkpoint(embedded_dir, tmp_path):
    proc = _analyze("acr", f"--model_dir={tmp_path}")
    assert proc.returncode == 2 and "no config.json" in proc.stderr.splitlines()[-1]
    with open(tmp_path / "config.json", "w") as f:
        json.dump(_config(embedded_dir).to_json(), f)
    proc = _analyze("acr", f"--model_dir={tmp_path}")
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr.splitlines()[-1]
    assert "Traceback" not in proc.stderr


def test_commands_raise_instead_of_exiting(embedded_dir, tmp_path):
    from lg_tf import analyze
    from lg_tf.errors import ConfigError, RunError
    with pytest.raises(RunError, match="no config.json"):
        analyze.acr_command(str(tmp_path))
    with open(tmp_path / "config.json", "w") as f:
        json.dump(_config(embedded_dir, granularity="coarse").to_json(), f)
    with pytest.raises(RunError, match="ACR needs a fine-trained model"):
        analyze.acr_command(str(tmp_path))
    with pytest.raises(ConfigError, match="too few"):
        analyze.tsne_command(str(tmp_path), max_samples=5)


# --------------------------------------------------------------------------- review D7, D9

def _snapshot(path):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, names in os.walk(path) for f in names}


def test_acr_on_a_read_only_run_prints_the_result_and_writes_nothing(fine_run_copy,
                                                                      monkeypatch, capsys):
    """Review D7: a model_dir that refuses writes (archived run, read-only mount) gets the
    printed ACR and a line saying the file was not written, not a traceback."""
    import errno

    from lg_tf import analyze, files
    model_dir = fine_run_copy
    before = _snapshot(model_dir)

    def read_only(path, payload):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(files, "write_json_atomic", read_only)
    payload = analyze.acr_command(model_dir)
    out = capsys.readouterr().out
    assert payload["examples"] == 2400 and _printed_acr(out) == pytest.approx(
        payload["value"], rel=1e-5)
    path = os.path.join(model_dir, "acr_test.json")
    assert f"not written: {path} (Read-only file system); the result above is complete" in out
    assert _snapshot(model_dir) == before


def test_sigterm_during_acr_stops_at_once_with_exit_75(fine_run_copy, monkeypatch):
    """Review D9: analyze installs a handler: exit 75 (not 143), nothing written."""
    import signal

    from lg_tf import analyze, interrupt
    model_dir = fine_run_copy
    before = _snapshot(model_dir)
    real = analyze.checkpoint_confusion

    def signalled(run, split_name):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(run, split_name)

    monkeypatch.setattr(analyze, "checkpoint_confusion", signalled)
    with pytest.raises(interrupt.Interrupted, match="SIGTERM received during lg_tf.analyze "
                                                    "acr; stopped and cleaned up") as e:
        analyze.acr_command(model_dir)
    assert e.value.exit_code == 75
    assert _snapshot(model_dir) == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed again


def test_sigterm_during_export_only_removes_its_tmp_and_releases_the_lock(fine_run_copy,
                                                                           monkeypatch):
    """Review D9: --export_only stopped mid-export: exit 75, no export.tmp, no lock, the
    previous export untouched; the re-run exports."""
    import signal

    import keras

    from lg_tf import interrupt, run_dir
    model_dir = fine_run_copy
    export = os.path.join(model_dir, "export")
    before = _snapshot(export)
    archive_class = type(keras.export.ExportArchive())
    original = archive_class.write_out

    def signalled(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(archive_class, "write_out", signalled)
    with pytest.raises(interrupt.Interrupted, match="SIGTERM received during the export") as e:
        train_lib.export_run(model_dir)
    assert e.value.exit_code == 75
    assert not os.path.exists(export + ".tmp")
    assert not os.path.exists(os.path.join(model_dir, run_dir.LOCK))
    assert _snapshot(export) == before
    monkeypatch.setattr(archive_class, "write_out", original)
    assert train_lib.export_run(model_dir) == export and not os.path.exists(export + ".tmp")


def test_a_stop_between_removing_the_old_export_and_the_swap_finishes_the_swap(tmp_path):
    from lg_tf import export as export_lib
    target = tmp_path / "export"
    tmp = tmp_path / "export.tmp"
    tmp.mkdir()
    (tmp / "saved_model.pb").write_bytes(b"new")
    (tmp / export_lib.MARKER).write_text(json.dumps(
        {"lg_tf_export": 1, "files": ["saved_model.pb", export_lib.MARKER]}))
    export_lib.finish_or_remove_tmp(str(target))        # complete, old one gone: swapped in
    assert (target / "saved_model.pb").read_bytes() == b"new" and not tmp.exists()
    tmp.mkdir()
    (tmp / export_lib.MARKER).write_text(json.dumps({"lg_tf_export": 1}))  # half written
    export_lib.finish_or_remove_tmp(str(target))
    assert not tmp.exists() and (target / "saved_model.pb").read_bytes() == b"new"
