"""The command line: flagfiles parse into valid configs, bad input ends in one sentence (exit 2)."""

import glob
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from lg_tf import cli
from lg_tf import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(*argv):
    values = flags.FlagValues()
    config_lib.define_flags(values)
    values(["lg_tf.train", *argv])
    return values


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg"))))
def test_every_flagfile_gives_a_valid_config(path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # includes resolve next to the including flagfile, from anywhere
    values = _parse(*cli.expand_flagfiles([f"--flagfile={path}"]))
    cfg = config_lib.from_flags(values)
    name = os.path.basename(path)[:-4]
    # cpu_small is a budget other flagfiles include (and advise/discover take), not a run.
    assert values.model_dir == ("" if name == "cpu_small" else f"runs/{name}")
    if name.startswith("cifar100"):
        assert (cfg.model, cfg.wrn_depth, cfg.wrn_widen, cfg.lr_milestones) == (
            "wide_resnet", 28, 10, (60, 120, 160))
        assert cfg.hierarchy == name and cfg.lr_decay == 0.2 and cfg.batch_size == 128
    if name.startswith("imagenet"):
        assert (cfg.width, cfg.image_size, cfg.weight_decay, cfg.batch_size) == (16, 224, 1e-4, 32)


def test_overrides_follow_the_flagfile(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = config_lib.from_flags(_parse(*cli.expand_flagfiles([
        "--flagfile=flags/cifar10.cfg", "--train_fraction=0.2", "--granularity=coarse"])))
    assert cfg.train_fraction == 0.2 and cfg.granularity == "coarse"
    assert cfg.scaled_epochs == 1000 and cfg.scaled_milestones == (750,)


@pytest.mark.parametrize("flag,message", [
    ("--train_fraction=0", "--train_fraction=0.0 must be in (0, 1]"),
    ("--train_fraction=1.5", "--train_fraction=1.5 must be in (0, 1]"),
    ("--label_noise=-0.1", "--label_noise=-0.1 must be in [0, 1]"),
    ("--epochs=-3", "--epochs=-3 must be in [1, inf)"),
    ("--wrn_depth=27", "--wrn_depth=27 must be 6n+4"),
    ("--learning_rate=nan", "--learning_rate=nan must be a finite number"),
    ("--weight_decay=inf", "--weight_decay=inf must be a finite number"),
    ("--seed=4294967296", "--seed=4294967296 must be in [0, 4294967295]"),
    ("--granularity=medium", "--granularity='medium' is not allowed"),
    ("--dataset=mnist", "--dataset='mnist' is not allowed"),
    ("--hierarchy=birds", "--hierarchy='birds' is unknown"),
    ("--lr_milestones=60,30", "must be increasing"),
    ("--lr_milestones=a", "must be integers"),
    ("--extra_layer", "use it with --granularity=coarse"),
])
def test_bad_values_are_named(flag, message):
    with pytest.raises(config_lib.ConfigError) as e:
        config_lib.from_flags(_parse(flag))
    assert message in str(e.value)


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "lg_tf.train", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("lg_tf: error:")]


@pytest.mark.parametrize("args,message", [
    (["--train_fraction=0", "--model_dir=/tmp/x"], "--train_fraction=0.0 must be in (0, 1]"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--flagfile=flags/missing.cfg"], "flags/missing.cfg"),
    (["--dataset=embedded"], "--model_dir is required"),
])
def test_cli_errors_are_one_sentence_exit_2(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_help_is_grouped():
    proc = _cli("--help")
    assert proc.returncode == 0
    for group in ("Data:", "Model:", "Training:", "Analysis:", "System:"):
        assert group in proc.stdout
    assert "--train_fraction" in proc.stdout


def test_cli_trains_and_summarises(embedded_dir, tmp_path):
    proc = _cli("--flagfile=flags/quickstart.cfg", f"--data_dir={embedded_dir}", "--width=4",
                "--epochs=1", "--steps_per_epoch=2", "--eval_steps=2",
                f"--model_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run finished" in proc.stdout and "test/coarse_accuracy" in proc.stdout
    for key in ("test/coarse_ece", "test/coarse_nll", "test/sibling_mistakes"):
        assert f"  {key} " in proc.stdout   # a fine run's summary has every metric it logs
    assert "coarse_accuracy_from_fine" not in proc.stdout   # joint runs only
    assert "epoch 1/1" in proc.stdout
    results = json.load(open(tmp_path / "results.json"))
    assert results["config"]["width"] == 4 and results["epochs"][0]["epoch"] == 1
    # A second run with other identity flags is refused and leaves the first intact.
    again = _cli("--flagfile=flags/quickstart.cfg", f"--data_dir={embedded_dir}", "--width=8",
                 "--epochs=1", f"--model_dir={tmp_path}")
    assert again.returncode == 2 and "--overwrite" in _error_lines(again.stderr)[0]
    assert json.load(open(tmp_path / "results.json")) == results
