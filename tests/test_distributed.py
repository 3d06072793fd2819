"""MultiWorkerMirroredStrategy: two worker processes on localhost end with identical weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = """
import dataclasses, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from lg_tf import train_lib
from lg_tf.config import Config
cfg = Config(**json.loads(sys.argv[1]))
strategy = train_lib.make_strategy(cfg)
results = train_lib.train_and_evaluate(cfg, sys.argv[2], strategy)
print("REPLICAS", results["replicas"])
"""


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_to_identical_weights(tiny_config, tmp_path):
    cfg = tiny_config.to_json()
    cfg.update(strategy="multi_worker", epochs=2, lr_milestones=[1])
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(cfg), str(tmp_path)], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"worker {index} failed:\n" + out[-3000:]
        assert "REPLICAS 2" in out
    chief = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    other = tf.train.load_checkpoint(str(tmp_path / "worker_1" / "checkpoints"))
    # Trainable weights (and their momentum slots) must agree exactly. BatchNorm moving
    # statistics are per replica in Keras 3 (aggregation "none", like PyTorch DDP's
    # buffers); the chief's are the ones exported.
    names = [n for n in chief.get_variable_to_shape_map()
             if n.startswith(("model/", "optimizer/")) and "moving_" not in n]
    assert len([n for n in names if "_trainable_variables" in n]) > 20
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name), err_msg=name)
    # only the chief writes the shared outputs
    assert os.path.exists(tmp_path / "results.json") and os.path.exists(tmp_path / "export")
    assert not os.path.exists(tmp_path / "worker_1" / "export")
