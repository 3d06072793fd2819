"""MultiWorkerMirroredStrategy: two worker processes on localhost end with identical weights,
each reads only its half of the data, and evaluation counts every test image once."""

import dataclasses
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
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


# Each worker builds a run on tagged data (image i carries i in two pixels, augmentation off),
# reads one epoch of run.train_ds (what fit reads) and evaluates the untrained model on an
# odd-sized test split with train_lib.evaluate (what the final evaluation runs).
SHARDS = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, "tests")
from test_distributed import image_ids, tagged_data
from lg_tf import train_lib
from lg_tf.config import Config
cfg = Config(**json.loads(sys.argv[1]))
strategy = train_lib.make_strategy(cfg)
run = train_lib.build_run(cfg, sys.argv[2], strategy, fresh=True, data=tagged_data(cfg))
task = strategy.cluster_resolver.task_id
iterator, ids, shapes = iter(run.train_ds), [], set()
for _ in range(run.steps_per_epoch):
    images, _ = next(iterator)
    for local in strategy.experimental_local_results(images):
        ids += image_ids(local.numpy()).tolist()
        shapes.add(tuple(local.shape))
final = train_lib.evaluate(run)
run.model.save_weights(os.path.join(sys.argv[2], f"worker{task}.weights.h5"))
with open(os.path.join(sys.argv[2], f"worker{task}.json"), "w") as f:
    json.dump({"steps": run.steps_per_epoch, "ids": ids, "shapes": sorted(shapes),
               "final": final, "confusion": run.test_confusion.tolist(),
               "coarse_confusion": run.test_coarse_confusion.tolist()}, f)
"""

N_TRAIN, N_TEST = 96, 65  # 65 = 2 x 32 + 1: worker 0's shard has one batch more than worker 1's


def tagged_data(cfg):
    """cfg's data cut to N_TRAIN/N_TEST images, each carrying its index; no augmentation."""
    from lg_tf.data import datasets

    def tag(split, n):
        split = split.take(np.arange(n))
        images = split.images.copy()
        images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
        return dataclasses.replace(split, images=images)

    data = datasets.prepare(cfg)
    return dataclasses.replace(data, spec=dataclasses.replace(data.spec, augment="none"),
                               train=tag(data.train, N_TRAIN), test=tag(data.test, N_TEST))


def image_ids(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)


def _start_workers(script, *args):
    """Runs `script` in two worker processes on localhost; returns their outputs."""
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", script, *args], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"worker {index} failed:\n" + out[-3000:]
    return outputs


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
    for out in _start_workers(WORKER, json.dumps(cfg), str(tmp_path)):
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
    # the final evaluation (--eval_steps=2) counted each worker's images once
    with open(tmp_path / "confusion.json") as f:
        assert json.load(f)["examples"] == tiny_config.eval_steps * tiny_config.eval_batch_size


def test_each_worker_reads_its_half_and_evaluation_is_exact(tiny_config, tmp_path):
    """Training: per epoch each worker yields its own half of the images, disjoint, together
    all of them, in per-replica batches. Evaluation on 65 images (worker 1 runs out one step
    early) equals the one-process numbers of the same weights."""
    cfg = tiny_config.to_json()
    # 96 // 16 = 6 steps; evaluation over the whole test split
    cfg.update(strategy="multi_worker", steps_per_epoch=0, eval_steps=0)
    _start_workers(SHARDS, json.dumps(cfg), str(tmp_path))
    seen = []
    for task in range(2):
        with open(tmp_path / f"worker{task}.json") as f:
            seen.append(json.load(f))
    ids = [np.array(w["ids"]) for w in seen]
    for task, w in enumerate(seen):
        assert w["steps"] == N_TRAIN // tiny_config.batch_size
        assert [s[0] for s in w["shapes"]] == [tiny_config.batch_size // 2]  # per replica
        assert len(ids[task]) == N_TRAIN // 2 and len(set(ids[task])) == N_TRAIN // 2
        assert np.all(ids[task] % 2 == task)  # its own shard, read by no one else
    assert sorted(np.concatenate(ids)) == list(range(N_TRAIN))

    from lg_tf import train_lib
    from lg_tf.config import Config
    local_cfg = Config(**{**cfg, "strategy": "one_device"})  # one replica, one pipeline
    run = train_lib.build_run(local_cfg, str(tmp_path / "local"), fresh=True,
                              data=tagged_data(local_cfg))
    run.model.load_weights(str(tmp_path / "worker0.weights.h5"))
    final = train_lib.evaluate(run)
    assert run.test_confusion.sum() == N_TEST
    for w in seen:
        np.testing.assert_array_equal(w["confusion"], run.test_confusion)
        np.testing.assert_array_equal(w["coarse_confusion"], run.test_coarse_confusion)
        for key in ("test/coarse_accuracy", "test/fine_accuracy", "test/coarse_ece",
                    "test/coarse_nll", "test/sibling_mistakes"):
            assert w["final"][key] == pytest.approx(final[key], abs=1e-6), key
        assert w["final"]["test/loss"] == pytest.approx(final["test/loss"], rel=1e-4)


@pytest.mark.parametrize("n, pipelines, local_replicas, global_batch", [
    (65, 2, 1, 32), (33, 2, 2, 16), (97, 3, 2, 12), (7, 2, 1, 4), (256, 2, 1, 32)])
def test_evaluation_shards_step_in_lockstep_without_empty_batches(
        n, pipelines, local_replicas, global_batch):
    """Each evaluation pipeline yields ceil(n / global batch) batches per local replica (what
    Keras steps through on every worker), none empty, none over the per-replica batch, and
    together every image once."""
    from lg_tf.data import pipeline
    from lg_tf.data.split import Split
    spec = pipeline.ImageSpec(4, "cifar", (0.5,) * 3, (0.25,) * 3)
    split = Split(np.zeros((n, 4, 4, 3), np.uint8), np.arange(n, dtype=np.int32))
    replicas = pipelines * local_replicas
    slots = -(-n // global_batch) * local_replicas
    seen = []
    for index in range(pipelines):
        context = tf.distribute.InputContext(pipelines, index, replicas)
        ds = pipeline.make_dataset(split, spec, training=False, batch_size=global_batch,
                                   seed=0, input_context=context)
        sizes = [len(y) for _, y in ds]
        assert int(ds.cardinality()) == len(sizes) == slots
        assert 1 <= min(sizes) and max(sizes) <= global_batch // replicas
        seen += [int(i) for _, y in ds for i in y]
    assert sorted(seen) == list(range(n))
