"""One description per Config field, one definition of a run (issue 9), and a model_dir that
lg_tf owns (issue 10): resume rules, ownership, the lock, exit codes, fast flag errors."""

import dataclasses
import json
import logging
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from lg_tf import cli, config as config_lib, run_dir
from lg_tf.errors import ConfigError, RunError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A changed value for every field; the resume check must classify each one.
CHANGED = {
    "dataset": "cifar10", "hierarchy": "shapes", "coarse_zero": "", "hierarchy_file": "",
    "data_dir": "/elsewhere", "train_fraction": 0.5, "label_noise": 0.1,
    "holdout_fraction": 0.3, "image_size": 64, "skip_corrupt": True, "model": "wide_resnet",
    "width": 16, "wrn_depth": 16, "wrn_widen": 2, "block_dropout": 0.1, "dropout": 0.2,
    "extra_layer": True, "granularity": "coarse", "epochs": 9, "batch_size": 64,
    "eval_batch_size": 50, "learning_rate": 0.01, "lr_schedule": "plateau",
    "lr_milestones": (2, 3), "lr_decay": 0.5, "plateau_patience": 3, "momentum": 0.5,
    "weight_decay": 1e-4, "coarse_metric": "sum_probs", "train_eval": True, "eval_every": 2,
    "steps_per_epoch": 7, "eval_steps": 3, "seed": 5, "deterministic": True,
    "on_nan": "skip_batch", "acr_every": 2, "export_dir": "/tmp/e", "strategy": "one_device",
    "cpu_devices": 2, "mixed_precision": "bfloat16", "jit_compile": True, "overwrite": False,
    "coarse_loss_weight": 0.5, "soft_beta": 2.0, "hxe_alpha": 1.0, "labels_file": "",
    "fine_label_fraction": 0.5,
}
# The flags issue 9 found resumed silently, plus the rest that change what is trained.
TRAINED = {"dataset", "hierarchy", "train_fraction", "label_noise", "holdout_fraction",
           "image_size", "model", "width", "wrn_depth", "wrn_widen", "block_dropout",
           "dropout", "extra_layer", "granularity", "batch_size", "learning_rate",
           "lr_schedule", "lr_milestones", "lr_decay", "plateau_patience", "momentum",
           "weight_decay", "coarse_metric", "steps_per_epoch", "seed", "mixed_precision",
           "coarse_loss_weight", "soft_beta", "hxe_alpha", "fine_label_fraction"}
HARMLESS = {"data_dir", "skip_corrupt", "epochs", "eval_batch_size", "train_eval",
            "eval_every", "eval_steps", "deterministic", "on_nan", "acr_every", "export_dir",
            "strategy", "cpu_devices", "jit_compile"}


def test_every_field_is_described_once_and_classified():
    specs = config_lib.specs()
    assert set(specs) == {f.name for f in dataclasses.fields(config_lib.Config)}
    assert set(CHANGED) == set(specs), "a new field needs a case in this test"
    assert set(config_lib.trained_fields()) == TRAINED | {"coarse_zero", "hierarchy_file",
                                                           "labels_file"}
    for name, spec in specs.items():
        assert spec.help and spec.group in config_lib.GROUPS, name
    groups = config_lib.help_groups()
    assert sum(len(v) for v in groups.values()) == len(specs) + len(config_lib.RUN_FLAGS)


def _saved_run(tmp_path, cfg):
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(cfg.to_json()))
    (path / run_dir.MARKER).write_text(json.dumps({"lg_tf_run": 1}))
    return str(path)


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_training_change_is_refused_on_resume_naming_the_flag(tmp_path, name):
    base = config_lib.Config()
    path = _saved_run(tmp_path, base)
    changed = dataclasses.replace(base, **{name: CHANGED[name]})
    with pytest.raises(RunError) as e:
        run_dir.inspect_model_dir(changed, path)
    assert f"--{name}=" in str(e.value) and "--overwrite" in str(e.value)
    assert run_dir.inspect_model_dir(dataclasses.replace(changed, overwrite=True),
                                     path).discard


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_harmless_change_is_accepted_on_resume(tmp_path, name):
    base = config_lib.Config()
    path = _saved_run(tmp_path, base)
    prior = run_dir.inspect_model_dir(dataclasses.replace(base, **{name: CHANGED[name]}),
                                      path)
    assert prior.kind == "run" and not prior.discard


def test_harmless_changes_are_recorded_as_resumes(fine_run, fine_run_copy):
    """A copy of the session's 2-epoch fine run (eval_every=1, acr_every=1), resumed."""
    from lg_tf import train_lib
    model_dir, first = fine_run_copy, fine_run.cfg
    assert (first.epochs, first.eval_every, first.acr_every) == (2, 1, 1)
    results = train_lib.train_and_evaluate(
        dataclasses.replace(first, epochs=3, eval_every=2, acr_every=2), model_dir)
    assert [e["epoch"] for e in results["epochs"]] == [1, 2, 3]
    (resume,) = results["resumes"]
    assert resume["from_epoch"] == 2
    assert resume["changed"] == {"epochs": [2, 3], "eval_every": [1, 2], "acr_every": [1, 2]}
    assert json.load(open(os.path.join(model_dir, "results.json")))["resumes"] == [resume]
    assert json.load(open(os.path.join(model_dir, "config.json")))["epochs"] == 3
    assert results.model is not None and results.model.count_params() > 0


# --------------------------------------------------------------------------- model_dir

def test_foreign_folder_is_refused_and_untouched(tiny_config, tmp_path):
    from lg_tf import train_lib
    mine = tmp_path / "mine"
    (mine / "export").mkdir(parents=True)
    (mine / "export" / "report.pdf").write_text("pdf")
    (mine / "results.json").write_text("{}")
    before = sorted(str(p) for p in mine.rglob("*"))
    for overwrite in (False, True):
        with pytest.raises(RunError, match="files that lg_tf did not write"):
            train_lib.train_and_evaluate(dataclasses.replace(tiny_config, overwrite=overwrite),
                                         str(mine))
    assert sorted(str(p) for p in mine.rglob("*")) == before
    assert (mine / "export" / "report.pdf").read_text() == "pdf"


def test_overwrite_removes_only_what_lg_tf_wrote(tiny_config, fine_run_copy):
    from lg_tf import train_lib
    model_dir = pathlib.Path(fine_run_copy)  # a finished run of tiny_config (width 4)
    (model_dir / "notes.txt").write_text("mine")   # a user's file added to the run later
    train_lib.train_and_evaluate(dataclasses.replace(tiny_config, epochs=1, width=8,
                                                     overwrite=True), str(model_dir))
    assert (model_dir / "notes.txt").read_text() == "mine"
    assert json.load(open(model_dir / "config.json"))["width"] == 8


def test_failed_resume_writes_nothing(fine_run, fine_run_copy):
    """Issue 10 #4/#11: config.json lost, rerun with another width: refused by the
    checkpoint's shapes before anything is written; the original command still resumes.
    (A copy of the session's 2-epoch fine run.)"""
    from lg_tf import train_lib
    model_dir, cfg = pathlib.Path(fine_run_copy), fine_run.cfg
    os.remove(model_dir / "config.json")
    snapshot = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()}
    with pytest.raises(RunError):
        train_lib.train_and_evaluate(dataclasses.replace(cfg, width=16), str(model_dir))
    assert {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()} == snapshot
    results = train_lib.train_and_evaluate(dataclasses.replace(cfg, epochs=3), str(model_dir))
    assert [e["epoch"] for e in results["epochs"]] == [1, 2, 3]


def test_a_live_lock_refuses_a_second_process_and_a_stale_one_is_taken_over(tmp_path):
    path = str(tmp_path / "run")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.makedirs(path)
        with open(os.path.join(path, run_dir.LOCK), "w") as f:
            json.dump({"pid": other.pid, "host": __import__("socket").gethostname()}, f)
        with pytest.raises(RunError, match=f"in use by process {other.pid}"):
            run_dir.Lock(path).acquire()
    finally:
        other.kill()
        other.wait()
    with run_dir.Lock(path) as lock:   # the owner is gone: taken over
        assert json.load(open(lock.path))["pid"] == os.getpid()
    assert not os.path.exists(os.path.join(path, run_dir.LOCK))


@pytest.mark.parametrize("content", [
    '[1, 2]', '{"pid": "abc", "host": "%s"}', '{"pid": 99999999999, "host": "%s"}',
    '{"pid": -1, "host": "%s"}', '{"pid": 0, "host": "%s"}', '{"pid": 5, "host": 7}',
    b"\xff\xfe\x00garbage", ""], ids=["json_list", "pid_text", "pid_huge", "pid_negative",
                                        "pid_zero", "host_number", "binary", "empty"])
def test_a_damaged_lock_is_taken_over_with_one_warning(tmp_path, caplog, content):
    """Review D4/D6: lock content lg_tf never writes is stale, not a traceback or a refusal."""
    path = tmp_path / "run"
    path.mkdir()
    lock_file = path / run_dir.LOCK
    if isinstance(content, bytes):
        lock_file.write_bytes(content)
    else:
        lock_file.write_text(content.replace("%s", __import__("socket").gethostname()))
    with caplog.at_level(logging.WARNING, logger="lg_tf"):
        with run_dir.Lock(str(path)) as lock:
            assert json.load(open(lock.path))["pid"] == os.getpid()
    assert not lock_file.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and ("damaged" in warnings[0] or "taking over" in warnings[0])


def test_a_folder_named_like_the_lock_is_refused_and_kept(tmp_path):
    """Review D4: lg_tf does not remove a folder it did not write; one sentence says to."""
    folder = tmp_path / "run" / run_dir.LOCK
    folder.mkdir(parents=True)
    (folder / "note.txt").write_text("mine")
    with pytest.raises(RunError, match=r"\.lg_tf\.lock is a folder.*remove that folder"):
        run_dir.Lock(str(tmp_path / "run")).acquire()
    assert (folder / "note.txt").read_text() == "mine"


def test_a_live_lock_names_the_file_to_delete_if_its_pid_is_not_lg_tf(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    (path / run_dir.LOCK).write_text(json.dumps(
        {"pid": os.getppid(), "host": __import__("socket").gethostname()}))
    with pytest.raises(RunError, match=f"in use by process {os.getppid()}.*delete .*lock"):
        run_dir.Lock(str(path)).acquire()
    assert (path / run_dir.LOCK).exists()


@pytest.mark.slow  # the lock itself is tested in-process above
def test_two_identical_commands_do_not_both_train(embedded_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "lg_tf.train", "--flagfile=quickstart",
           f"--data_dir={embedded_dir}", "--width=4", "--epochs=30", "--steps_per_epoch=3",
           "--eval_steps=1", "--batch_size=16", "--eval_batch_size=32",
           f"--model_dir={model_dir}"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import time
        deadline = time.time() + 240
        while not os.path.exists(os.path.join(model_dir, "checkpoints")):
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.5)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert "in use by process" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.communicate()


def test_export_only_uses_the_runs_config(fine_run, fine_run_copy, tmp_path):
    model_dir = fine_run_copy  # width 4: a model of the default width would not restore
    assert fine_run.cfg.width != config_lib.Config().width
    proc = subprocess.run([sys.executable, "-m", "lg_tf.train", "--export_only",
                           f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.load(open(tmp_path / "out" / "assets.extra" / "hierarchy.json"))
    assert meta["granularity"] == "fine" and len(meta["fine_names"]) == 12


def test_export_dir_equal_to_model_dir_is_refused_before_training(tiny_config, tmp_path):
    from lg_tf import train_lib
    model_dir = str(tmp_path / "run")
    with pytest.raises(RunError):
        train_lib.train_and_evaluate(dataclasses.replace(tiny_config, export_dir=model_dir),
                                     model_dir)
    assert not os.path.exists(os.path.join(model_dir, "checkpoints"))


# --------------------------------------------------------------------------- the CLI edge

# Fast answers come from not importing TensorFlow (asserted below); how fast is a
# benchmark's question, not a test's (a timing bound fails on a loaded machine).
_PROBE = """
import sys
from lg_tf import train
try:
    train.run(["lg_tf.train", *sys.argv[1:]])
except SystemExit as e:
    code = e.code
print("RESULT", code, "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("args,code", [
    (["--help"], 0), (["--helpfull"], 0), (["--width=0", "--model_dir=x"], 2), (["--bogus=1"], 2),
    (["--granularity=medium", "--only_check_args"], 2),
    (["--flagfile=no_such_file"], 2), (["--wrn_depth=27", "--model=wide_resnet"], 2),
])
def test_help_and_flag_errors_import_no_tensorflow(args, code, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    result = proc.stdout.strip().splitlines()[-1].split()
    assert result == ["RESULT", str(code), "False"], proc.stdout + proc.stderr
    if code:
        assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr


def test_exit_code_table():
    from lg_tf import errors
    assert (errors.EXIT_OK, errors.EXIT_USAGE, errors.EXIT_DIVERGED,
            errors.EXIT_PREEMPTED) == (0, 2, 3, 75)
    assert errors.ConfigError("x").exit_code == 2 and errors.RunError("x").exit_code == 2
    assert errors.TrainingDiverged("x").exit_code == 3
    assert cli.exit_code({"stopped": "SIGTERM"}) == 75 and cli.exit_code({}) == 0


def test_benchmark_usage_is_exit_2():
    proc = subprocess.run([sys.executable, "-m", "lg_tf.benchmark"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("lg_tf: error: give one subcommand")


def test_model_too_large_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr(config_lib, "_memory_bytes", lambda: 24 * 2**30)
    with pytest.raises(ConfigError, match="lower --width"):
        config_lib.validate(config_lib.Config(width=1000))
    config_lib.validate(config_lib.Config(width=64))


# --------------------------------------------------------------------------- flagfiles

def test_flagfile_includes_work_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spelling in ("cifar100_5", "cifar100_5.cfg", os.path.join(ROOT, "flags", "cifar100_5.cfg")):
        argv = cli.expand_flagfiles([f"--flagfile={spelling}", "--seed=3"])
        assert "--hierarchy=cifar100_5" in argv and "--model=wide_resnet" in argv
        assert argv[-1] == "--seed=3"


def test_flagfile_with_byte_order_mark_and_comments(tmp_path):
    path = tmp_path / "mine.cfg"
    path.write_bytes("\ufeff# comment\n--dataset=embedded\n\n// other\n  --width=8  \n"
                     .encode("utf-8"))
    assert cli.expand_flagfiles([f"--flagfile={path}"]) == ["--dataset=embedded", "--width=8"]


def test_wheel_ships_the_flagfiles(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), ROOT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    with zipfile.ZipFile(tmp_path / wheel) as z:
        z.extractall(tmp_path / "site")
    probe = ("from lg_tf import cli; import lg_tf; print(lg_tf.__file__); "
             "print(' '.join(cli.expand_flagfiles(['--flagfile=cifar100_animals'])))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    where, flags_line = out.stdout.strip().splitlines()
    assert where.startswith(str(tmp_path / "site"))
    assert "--hierarchy=cifar100_animals" in flags_line and "--wrn_depth=28" in flags_line


# --------------------------------------------------------------------------- the library

@pytest.mark.slow
def test_notebook_style_call_logs_progress(embedded_dir, tmp_path):
    script = f"""
import dataclasses
from lg_tf import train_lib
from lg_tf.config import Config
cfg = Config(dataset="embedded", data_dir={embedded_dir!r}, width=4, epochs=1, batch_size=16,
             eval_batch_size=32, steps_per_epoch=2, eval_steps=1, cpu_devices=2)
results = train_lib.train_and_evaluate(cfg, {str(tmp_path / 'run')!r})
print("REPLICAS", results["replicas"], type(results.model).__name__)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 1/1" in proc.stdout and "SavedModel written" in proc.stdout
    assert "REPLICAS 2 Functional" in proc.stdout   # cpu_devices honoured without the CLI


def test_restore_run_gives_the_trained_model(fine_run, tmp_path):
    import numpy as np
    from lg_tf import train_lib
    results = fine_run.results
    run = train_lib.restore_run(fine_run.model_dir, load_data=False)  # reads only
    assert run.epoch == fine_run.cfg.epochs == 2 and run.data.train is None
    for a, b in zip(run.model.get_weights(), results.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RunError, match="no lg_tf run"):
        train_lib.restore_run(str(tmp_path / "nothing"))


def test_library_logs_without_configuration(caplog):
    from lg_tf import logs
    logger = logs.ensure_handler()
    assert logger.isEnabledFor(logging.INFO)


# --------------------------------------------------------------------------- issue 10 extras

def test_resume_on_other_data_with_the_same_classes_is_refused(tmp_path):
    """Issue 10 #7: the data is identified by its fingerprint, not by --data_dir."""
    from test_data_identity import add_images, make_tree
    from lg_tf import train_lib
    a = make_tree(tmp_path / "a", per_class=8)
    b = make_tree(tmp_path / "b", per_class=8)
    add_images(b / "train" / "animal" / "cat", 9, seed=1)   # same classes, other files
    cfg = config_lib.Config(dataset="folder", data_dir=str(a), width=4, epochs=1,
                            batch_size=8, eval_batch_size=8, steps_per_epoch=1, eval_steps=1)
    model_dir = str(tmp_path / "run")
    train_lib.train_and_evaluate(cfg, model_dir)
    results = json.load(open(os.path.join(model_dir, "results.json")))
    with pytest.raises(RunError, match="is not the data the run"):
        train_lib.train_and_evaluate(dataclasses.replace(cfg, data_dir=str(b), epochs=2),
                                     model_dir)
    assert json.load(open(os.path.join(model_dir, "results.json"))) == results
    os.rename(a, tmp_path / "moved")     # the same data elsewhere resumes
    again = train_lib.train_and_evaluate(
        dataclasses.replace(cfg, data_dir=str(tmp_path / "moved"), epochs=2), model_dir)
    assert [e["epoch"] for e in again["epochs"]] == [1, 2]


@pytest.mark.parametrize("value", ["{not json", '{"cluster": ["a"]}'])
def test_malformed_tf_config_is_one_sentence(value, monkeypatch):
    from lg_tf import train_lib
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(RunError, match="TF_CONFIG"):
        train_lib.tf_config()


def test_signal_during_final_evaluation_stops_and_rerun_finishes(tiny_config, tmp_path,
                                                                 monkeypatch):
    """Issue 10 #17: the handler covers the final evaluation and export too."""
    from lg_tf import interrupt, train_lib
    model_dir = str(tmp_path / "run")
    real = train_lib.evaluate

    def evaluate_then_signal(run):
        out = real(run)
        interrupt.request("SIGTERM")
        return out

    monkeypatch.setattr(train_lib, "evaluate", evaluate_then_signal)
    cfg = dataclasses.replace(tiny_config, epochs=1)
    results = train_lib.train_and_evaluate(cfg, model_dir)
    assert "during the final evaluation" in results["stopped"] and not results["final"]
    assert cli.exit_code(results) == 75
    assert not os.path.exists(os.path.join(model_dir, "export"))
    monkeypatch.setattr(train_lib, "evaluate", real)
    done = train_lib.train_and_evaluate(cfg, model_dir)
    assert done["final"]["test/coarse_accuracy"] >= 0 and "stopped" not in done
    assert os.path.exists(os.path.join(model_dir, "export", "saved_model.pb"))


def test_remote_model_dir_goes_through_gfile():
    """A model_dir on a remote filesystem (TensorFlow's ram:// stands in for gs://)."""
    from lg_tf import files
    files.write_json_atomic("ram://lgtf/run/results.json", {"a": 1})
    assert json.loads(files.read_text("ram://lgtf/run/results.json")) == {"a": 1}
    assert run_dir.kind("ram://lgtf/run") == "foreign" and run_dir.kind("ram://lgtf/x") == "absent"
    with run_dir.Lock("ram://lgtf/new"):     # no exclusive create there: created, not locked
        assert files.isdir("ram://lgtf/new")
