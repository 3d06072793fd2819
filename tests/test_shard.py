"""A pipeline spread over machines: --shard=I/N, --report_only and --print_commands.

Table I at the tiniest scale with 2 seeds (4 runs: seed-major coarse, fine, coarse, fine)
split over two shards in one out_dir; the commands of --print_commands parsed back through
lg_tf's own flags and one of them run as `python -m lg_tf.train`.
"""

import contextlib
import logging
import os
import shlex
import subprocess
import sys

import pytest
from absl import flags

from lg_tf import grid as grid_lib
from lg_tf import config as config_lib
from lg_tf import train_lib
from lg_tf.config import Config
from pipelines import acr_vs_gain, table1
from pipelines import all as all_pipelines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("no_exports")  # conftest.py


@pytest.fixture(scope="module")
def base(embedded_dir):
    """conftest's tiny run, cut to one step of one epoch."""
    return Config(dataset="embedded", data_dir=embedded_dir, width=4, epochs=1, batch_size=16,
                  eval_batch_size=32, steps_per_epoch=1, eval_steps=1, learning_rate=0.05,
                  lr_milestones=(1,), lr_decay=0.1)


def ctx(out, **kw):
    return grid_lib.Context(out_dir=str(out), report_dir=os.path.join(str(out), "report"), **kw)


def planned(base, out, **kw):
    b = table1.prepare(base)
    return grid_lib.plan(b, table1.grid(b), ctx(out, **kw))


@contextlib.contextmanager
def pipeline_logs():
    """The lg_tf.grid INFO lines, whatever handlers training has set up."""
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("lg_tf.grid")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def parse_train_flags(args):
    """lg_tf.train's flags (a fresh FlagValues): the Config and --model_dir they give."""
    values = flags.FlagValues()
    config_lib.define_flags(values)
    values(["lg_tf.train", *args])
    return config_lib.from_flags(values), values.model_dir


# --------------------------------------------------------------------------- flags

def test_to_flags_parse_back_to_the_same_config(tmp_path):
    hierarchy = tmp_path / "h.json"
    hierarchy.write_text('{"a": "x", "b": "x", "c": "y"}')
    labels = tmp_path / "labels.csv"
    labels.write_text("path,coarse,fine\n")
    configs = [
        Config(dataset="cifar100", hierarchy="cifar100_15", granularity="coarse",
               extra_layer=True, train_fraction=0.4, lr_milestones=(3, 7), train_eval=True,
               learning_rate=0.1 * 3, weight_decay=5e-5, seed=7),
        Config(dataset="embedded", label_noise=0.03, dropout=0.3, deterministic=True,
               jit_compile=True, lr_schedule="constant", lr_milestones=(), width=4,
               data_dir="/data with space/tfds"),
        Config(dataset="folder", data_dir=str(tmp_path), hierarchy_file=str(hierarchy),
               model="wide_resnet", wrn_depth=16, wrn_widen=2, mixed_precision="bfloat16"),
        Config(dataset="folder", data_dir=str(tmp_path), labels_file=str(labels),
               train_fraction=0.25, skip_corrupt=True, holdout_fraction=0.3),
    ]
    assert config_lib.to_flags(Config()) == []
    for cfg in configs:
        args = config_lib.to_flags(cfg)
        assert parse_train_flags(args)[0] == cfg, args
    assert "--extra_layer" in config_lib.to_flags(configs[0])
    assert "--lr_milestones=3,7" in config_lib.to_flags(configs[0])


def test_bad_shard_values_are_one_sentence():
    assert grid_lib.parse_shard("") == (0, 1) and grid_lib.parse_shard("3/4") == (3, 4)
    for text in ("3/2", "2/2", "-1/2", "1/0", "a/2", "2", "0/1/2"):
        with pytest.raises(grid_lib.PipelineError, match=f"--shard={text} must be I/N with "
                                                       r"0 <= I < N, e.g. 0/4"):
            grid_lib.parse_shard(text)
    with pytest.raises(grid_lib.PipelineError, match="--dry_run and --print_commands exclude"):
        grid_lib.Context(out_dir="x", dry_run=True, print_commands=True)
    with pytest.raises(grid_lib.PipelineError, match="--report_only reads the whole grid"):
        grid_lib.Context(out_dir="x", report_only=True, shard="0/2")
    with pytest.raises(grid_lib.PipelineError, match="acr_vs_gain trains nothing"):
        acr_vs_gain.run(grid_lib.Context(out_dir="x", shard=(1, 2)))


def test_bad_shard_on_the_command_line_exits_2_before_tensorflow(tmp_path):
    code = ("import sys\nfrom lg_tf import grid as grid_lib\nfrom pipelines import table1\n"
            "try:\n"
            f"    grid_lib.entry_point(table1.__doc__, table1.main, argv=['table1', "
            f"'--out_dir={tmp_path}', '--shard=3/2'])\n"
            "except SystemExit as e:\n"
            "    print(e.code, 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "lg_tf: error: --shard=3/2 must be I/N with 0 <= I < N, e.g. 0/4 (the first of 4 "
        "machines)"]


# --------------------------------------------------------------------------- shards

def test_two_shards_split_the_grid_and_report_only_writes_the_report(base, tmp_path,
                                                                     monkeypatch):
    trained = []
    real = train_lib.train_and_evaluate

    def recording(cfg, model_dir, strategy=None):
        trained.append(model_dir)
        return real(cfg, model_dir, strategy)

    monkeypatch.setattr(train_lib, "train_and_evaluate", recording)
    grid = [p.model_dir for p in planned(base, tmp_path, seeds=2)]
    report = os.path.join(tmp_path, "report", "report.md")

    with pipeline_logs() as lines:
        first = table1.run(base, ctx(tmp_path, seeds=2, shard="0/2"))
    assert trained == grid[0::2] and first["report"] is None and not os.path.exists(report)
    said = " ".join(lines)
    assert "2 of 4 runs are not finished" in said and grid[1] in said and grid[3] in said
    assert "--report_only" in said

    with pytest.raises(grid_lib.PipelineError, match="2 of 4 runs are not finished") as e:
        table1.run(base, ctx(tmp_path, seeds=2, report_only=True))
    assert grid[1] in str(e.value) and "--shard=I/N" in str(e.value)
    assert trained == grid[0::2]

    second = table1.run(base, ctx(tmp_path, seeds=2, shard=(1, 2)))
    assert trained[2:] == grid[1::2] and len(set(trained)) == 4    # disjoint, the whole grid
    assert second["report"] == report and os.path.exists(report)   # the last shard reports

    os.remove(report)
    again = table1.run(base, ctx(tmp_path, seeds=2, report_only=True))
    assert again["report"] == report and os.path.exists(report) and len(trained) == 4
    assert [len(v) for v in again["runs"].values()] == [2, 2]


def test_print_commands_give_the_planned_runs_and_skip_finished_ones(base, tmp_path):
    args = [f"--out_dir={tmp_path}", "--seeds=2", "--print_commands",
            *config_lib.to_flags(base)]
    done = subprocess.run([sys.executable, "-m", "pipelines.table1", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    plan = planned(base, tmp_path, seeds=2)
    assert len(lines) == 4 and "printed the commands of the 4 unfinished" in done.stderr
    for line, p in zip(lines, plan):
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "lg_tf.train"]
        assert parse_train_flags(argv[3:]) == (p.cfg, p.model_dir)

    # One printed line, run as is, is a finished run of the pipeline.
    argv = shlex.split(lines[1])
    trained = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert [p.status for p in planned(base, tmp_path, seeds=2)] == ["todo", "done", "todo",
                                                                    "todo"]
    c = ctx(tmp_path, seeds=2, print_commands=True, shard="1/2")
    b = table1.prepare(base)
    pending = [p for p in grid_lib.plan(b, table1.grid(b), c) if c.in_shard(p)
               and p.status != "done"]
    assert [grid_lib.train_command(p) for p in pending] == [lines[3]]


def test_all_numbers_shared_runs_once(base, tmp_path, capsys):
    bases, only = {"embedded": base}, {"embedded": ("table1", "extra_layer")}
    out = all_pipelines.run(ctx(tmp_path, print_commands=True, shard="0/2"), bases,
                            experiments=only)
    lines = capsys.readouterr().out.splitlines()
    assert out["index"] is None and len(lines) == 2   # coarse, fine, coarse_extra: #0 and #2
    dirs = [shlex.split(line)[-1] for line in lines]
    assert dirs == [f"--model_dir={tmp_path}/runs/embedded/{name}/seed_0"
                    for name in ("coarse", "coarse_extra")]
    with pytest.raises(grid_lib.PipelineError, match="all: 3 of 3 runs are not finished"):
        all_pipelines.run(ctx(tmp_path, report_only=True), bases, experiments=only)
    assert not os.path.exists(tmp_path / "runs")
