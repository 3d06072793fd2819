"""Reliability review, campaign 3 (docs/reliability_inputs.md, "Campaign 3"): output folders
inside the data (D3), a worker that never joins (D5), pipelines.targets on an image folder
(D11). The lock, discover, analyze and hierarchy cases are beside their kin in
test_run_identity, test_discover, test_analyze and test_bad_inputs."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lg_tf import config as config_lib
from lg_tf import grid as grid_lib
from lg_tf.config import Config
from lg_tf.errors import ConfigError, PipelineError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tree(root):
    """root/<coarse>/<fine>/a.png placeholders: enough for the checks, which read no pixels."""
    for coarse, fine in (("animal", "cat"), ("animal", "dog"), ("vehicle", "bus")):
        os.makedirs(root / coarse / fine)
        (root / coarse / fine / "a.png").write_bytes(b"")
    return root


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


# --------------------------------------------------------------------------- D3

def test_output_folders_inside_the_data_are_refused_before_anything_is_written(tmp_path):
    """train, pipelines/advise and discover refuse a folder at or below --data_dir; the data
    tree is left exactly as it was."""
    from lg_tf import discovery, train_lib
    data = _tree(tmp_path / "data")
    before = _files(data)
    cfg = Config(dataset="folder", data_dir=str(data))
    message = r"--model_dir=.*run1 lies inside --data_dir=.*data, so lg_tf's files would be"
    with pytest.raises(ConfigError, match=message):
        train_lib.train_and_evaluate(cfg, str(data / "run1"))
    with pytest.raises(ConfigError, match="--export_dir=.*data/animal/x lies inside"):
        train_lib.train_and_evaluate(Config(dataset="folder", data_dir=str(data),
                                            export_dir=str(data / "animal" / "x")),
                                     str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="--out_dir=.*advice lies inside --data_dir"):
        grid_lib.run_grid("advise", cfg, [], grid_lib.Context(out_dir=str(data / "advice")))
    with pytest.raises(ConfigError, match="--report_dir=.* lies inside --data_dir"):
        grid_lib.run_grid("advise", cfg, [], grid_lib.Context(out_dir=str(tmp_path / "out"),
                                                              report_dir=str(data)))
    with pytest.raises(ConfigError, match="--model_dir=.*dis lies inside --data_dir"):
        discovery.run(cfg, str(data / "vehicle" / "dis"), discovery.Options(k=2))
    assert _files(data) == before and not os.path.exists(tmp_path / "run")


def test_a_symlink_into_the_data_is_refused_and_a_sibling_folder_is_not(tmp_path):
    data = _tree(tmp_path / "data")
    cfg = Config(dataset="folder", data_dir=str(data))
    os.symlink(data, tmp_path / "link")
    with pytest.raises(ConfigError, match="lies inside"):
        config_lib.check_outside_data(cfg, str(tmp_path / "link" / "run"), "--model_dir")
    # A name that merely starts with the data folder's is elsewhere; so is any folder for
    # data that is not an image folder (TFDS keeps its own layout).
    config_lib.check_outside_data(cfg, str(tmp_path / "data_runs" / "r1"), "--model_dir")
    config_lib.check_outside_data(Config(dataset="embedded", data_dir=str(data)),
                                  str(data / "run"), "--model_dir")


# --------------------------------------------------------------------------- D11

def test_targets_on_an_image_folder_uses_its_own_tree(tmp_path):
    from pipelines import common, targets
    data = _tree(tmp_path / "data")
    folder = Config(dataset="folder", data_dir=str(data))
    assert common.groupings_for(folder, None) == ["own"]
    hfile = tmp_path / "h.csv"
    hfile.write_text("cat,animal\nbus,vehicle\n")
    with_file = Config(dataset="folder", data_dir=str(data), hierarchy_file=str(hfile))
    assert common.groupings_for(with_file, None) == ["own"]
    specs = targets.grid(with_file, ["own"], (1.0,))
    assert [s.name for s in specs] == ["coarse_hf-h", "fine_hf-h", "joint_lw1_hf-h",
                                       "soft_labels_beta4_hf-h", "hxe_alpha0.5_hf-h"]
    assert all("hierarchy" not in dict(s.overrides) for s in specs)  # the file is kept
    assert specs[0].label == "coarse own r=1" and specs[0].tag["grouping"] == "own"
    assert [s.name for s in targets.grid(folder, ["own"], (0.5,))][:2] == ["coarse_r0.5",
                                                                         "fine_r0.5"]
    # Datasets that need a named hierarchy list the names that exist.
    with pytest.raises(PipelineError, match=r"--dataset=imagenet2012 has no default hierarchy; "
                                            r"name one with --groupings \(one of: .*"
                                            r"imagenet_dog_cat.*\) or give --hierarchy_file"):
        common.groupings_for(Config(dataset="imagenet2012"), None)


# --------------------------------------------------------------------------- D5

def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_a_worker_that_never_joins_is_named_and_given_up_on(tmp_path):
    """Worker 0 of two says whom it waits for, then stops after LG_TF_CLUSTER_TIMEOUT with
    one sentence and exit 75 (retry once the peer runs); nothing is written."""
    peer = f"localhost:{_free_port()}"
    env = dict(os.environ, LG_TF_CLUSTER_TIMEOUT="3", TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"localhost:{_free_port()}", peer]},
         "task": {"type": "worker", "index": 0}}))
    proc = subprocess.run([sys.executable, "-m", "lg_tf.train", "--flagfile=quickstart",
                           f"--model_dir={tmp_path / 'run'}"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 75, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"waiting for worker 1 ({peer}) to join (up to 3 s" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lg_tf: error:")]
    assert errors == [f"lg_tf: error: not every worker of TF_CONFIG joined within 3 s (this is "
                      f"worker 0; the others: worker 1 ({peer})); start each with the same "
                      "TF_CONFIG and its own task index (or raise LG_TF_CLUSTER_TIMEOUT), "
                      "then re-run"]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "nan", "inf"])
def test_a_bad_cluster_timeout_is_one_sentence(raw, monkeypatch):
    from lg_tf import train_lib
    from lg_tf.errors import RunError
    monkeypatch.setenv("LG_TF_CLUSTER_TIMEOUT", raw)
    with pytest.raises(RunError, match=f"LG_TF_CLUSTER_TIMEOUT={raw} must be a number of "
                                       "seconds above 0"):
        train_lib.cluster_timeout()
    monkeypatch.setenv("LG_TF_CLUSTER_TIMEOUT", " 90 ")
    assert train_lib.cluster_timeout() == 90.0
    monkeypatch.delenv("LG_TF_CLUSTER_TIMEOUT")
    assert train_lib.cluster_timeout() == 600.0
