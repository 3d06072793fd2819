"""End-to-end runs of a few steps: outputs, resume, export round trip."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lg_tf import callbacks as cb
from lg_tf import train_lib


def _scalar_tags(logdir):
    tags = {}
    for name in os.listdir(logdir):
        if not name.startswith("events"):  # e.g. the projector/ run folder (lg_tf.analysis)
            continue
        for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
            for v in event.summary.value:
                tags.setdefault(v.tag, []).append(event.step)
    return tags


def _shared_run(request, granularity):
    """The session's tiny run of that granularity (tests/conftest.py: tiny_config, 2 epochs,
    --acr_every=1), trained once and shared: (cfg, results, its folder). Read only."""
    run = request.getfixturevalue(f"{granularity}_run")
    return run.cfg, run.results, pathlib.Path(run.model_dir)


@pytest.mark.parametrize("granularity", ["fine", "coarse"])
def test_run_writes_results_tensorboard_checkpoint_export(tiny_config, request, granularity):
    cfg, results, tmp_path = _shared_run(request, granularity)
    assert cfg == dataclasses.replace(tiny_config, granularity=granularity, acr_every=1)
    saved = json.load(open(tmp_path / "results.json"))
    assert saved["final"] == results["final"]
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    assert 0.0 <= saved["final"]["test/coarse_accuracy"] <= 1.0
    assert ("test/fine_accuracy" in saved["final"]) == (granularity == "fine")
    assert saved["parameters"] > 0 and saved["images_per_second"] > 0
    assert saved["replicas"] == 2
    # step schedule: milestone at epoch 1 -> lr x0.1 from epoch 2 on
    lrs = [e["train/learning_rate"] for e in saved["epochs"]]
    assert lrs == pytest.approx([0.05, 0.005])
    tags = _scalar_tags(tmp_path / "tensorboard")
    for tag in ("train/loss", "train/coarse_accuracy", "test/coarse_accuracy",
                "train/learning_rate"):
        assert tags[tag] == [1, 2], tag
    assert json.load(open(tmp_path / "config.json"))["granularity"] == granularity
    assert os.path.exists(tmp_path / "export" / "saved_model.pb")
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


def test_step_schedule_decays_after_milestone_epoch_like_pytorch():
    from lg_tf import optim
    schedule = optim.step_schedule(0.1, (2, 3), 0.2, steps_per_epoch=10)
    lr = [float(schedule(step)) for step in range(40)]
    assert lr[:20] == pytest.approx([0.1] * 20)      # epochs 1-2
    assert lr[20:30] == pytest.approx([0.02] * 10)   # epoch 3
    assert lr[30:] == pytest.approx([0.004] * 10)    # epoch 4


def test_resume_after_failure_continues_without_duplicates(tiny_config, tmp_path, monkeypatch):
    cfg = dataclasses.replace(tiny_config, epochs=4, lr_milestones=(3,))
    original = cb.EpochEnd.on_epoch_end

    def crash_after_second(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == 2:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(cb.EpochEnd, "on_epoch_end", crash_after_second)
    with pytest.raises(KeyboardInterrupt):
        train_lib.train_and_evaluate(cfg, str(tmp_path))
    monkeypatch.setattr(cb.EpochEnd, "on_epoch_end", original)
    assert [e["epoch"] for e in json.load(open(tmp_path / "results.json"))["epochs"]] == [1, 2]

    results = train_lib.train_and_evaluate(cfg, str(tmp_path))
    assert [e["epoch"] for e in results["epochs"]] == [1, 2, 3, 4]
    lrs = [round(e["train/learning_rate"], 6) for e in results["epochs"]]
    assert lrs == [0.05, 0.05, 0.05, 0.005]  # the schedule continued from step 6
    run = train_lib.build_run(cfg, str(tmp_path))
    run.checkpointer.restore()
    assert int(run.model.optimizer.iterations.numpy()) == 4 * cfg.steps_per_epoch
    tags = _scalar_tags(tmp_path / "tensorboard")
    assert sorted(set(tags["train/loss"])) == [1, 2, 3, 4]


def test_changed_flags_are_refused_unless_overwrite(fine_run, fine_run_copy):
    cfg, tmp_path = fine_run.cfg, fine_run_copy  # a copy of the session's tiny fine run
    other = dataclasses.replace(cfg, granularity="coarse")
    with pytest.raises(train_lib.RunError, match="holds a run trained with other settings"):
        train_lib.train_and_evaluate(other, str(tmp_path))
    results = train_lib.train_and_evaluate(dataclasses.replace(other, overwrite=True),
                                           str(tmp_path))
    assert results["config"]["granularity"] == "coarse"


SERVE = """
import json, sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
out = m.signatures["serving_default"](images=tf.constant(images))
np.savez(sys.argv[3], **{k: v.numpy().astype(str) if v.dtype == tf.string else v.numpy()
                        for k, v in out.items()})
"""


@pytest.mark.parametrize("granularity", ["fine", "coarse"])
def test_export_round_trip_in_fresh_process(request, tmp_path, granularity):
    cfg, _, model_dir = _shared_run(request, granularity)
    run = train_lib.build_run(cfg, str(model_dir))  # writes nothing
    assert run.checkpointer.restore() == cfg.epochs
    images = run.data.test.images[:8]
    expected = run.model(images.astype("float32"), training=False).numpy()
    np.save(tmp_path / "images.npy", images)
    subprocess.run([sys.executable, "-c", SERVE, str(model_dir / "export"),
                    str(tmp_path / "images.npy"), str(tmp_path / "out.npz")], check=True)
    out = np.load(tmp_path / "out.npz")
    h = run.data.hierarchy
    probs = tf.nn.softmax(expected).numpy()
    if granularity == "fine":
        np.testing.assert_allclose(out["fine_probs"], probs, atol=1e-5)
        np.testing.assert_array_equal(out["fine_label"], expected.argmax(-1))
        np.testing.assert_array_equal(out["coarse_label"], h.parent_array()[expected.argmax(-1)])
        assert out["fine_name"][0] == h.fine_names[expected.argmax(-1)[0]]
    else:
        np.testing.assert_allclose(out["coarse_probs"], probs, atol=1e-5)
        np.testing.assert_array_equal(out["coarse_label"], expected.argmax(-1))
        assert "fine_probs" not in out
    hier = json.load(open(model_dir / "export" / "assets.extra" / "hierarchy.json"))
    assert hier["coarse_names"] == list(h.coarse_names)


def test_export_only_needs_a_run_and_a_checkpoint(tiny_config, tmp_path):
    with pytest.raises(train_lib.RunError, match="no lg_tf run"):
        train_lib.export_run(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(tiny_config.to_json()))
    with pytest.raises(train_lib.RunError, match="no checkpoint"):
        train_lib.export_run(str(tmp_path))


# XLA cannot compile one function over variables on two logical CPU devices (XLA known
# issue "tf.Variable on a different device"), so the XLA run uses one replica here.
@pytest.mark.slow
@pytest.mark.parametrize("options", [{"mixed_precision": "bfloat16"},
                                     {"jit_compile": True, "strategy": "one_device"}])
def test_mixed_precision_and_xla_runs_train(tiny_config, tmp_path, options):
    import keras
    cfg = dataclasses.replace(tiny_config, epochs=1, **options)
    results = train_lib.train_and_evaluate(cfg, str(tmp_path))
    assert np.isfinite(results["final"]["test/loss"])
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored afterwards


def test_overwrite_with_bad_input_keeps_the_previous_run(fine_run, fine_run_copy):
    from lg_tf.data.sources import DataError
    cfg, tmp_path = fine_run.cfg, pathlib.Path(fine_run_copy)  # a copy of a finished run
    before = open(tmp_path / "results.json").read()
    bad = dataclasses.replace(cfg, dataset="folder", data_dir=str(tmp_path / "missing"),
                              hierarchy="shapes", overwrite=True)
    with pytest.raises(DataError):
        train_lib.train_and_evaluate(bad, str(tmp_path))
    assert open(tmp_path / "results.json").read() == before
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))


def test_batch_not_divisible_by_replicas_is_refused(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, batch_size=15)
    with pytest.raises(train_lib.RunError, match="--batch_size=15 is not divisible by the 2 "
                                                 "replicas; use a multiple of 2"):
        train_lib.train_and_evaluate(cfg, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints")


def test_plateau_schedule_decays_and_the_rate_survives_resume(tiny_config, tmp_path):
    import keras
    cfg = dataclasses.replace(tiny_config, lr_schedule="plateau", plateau_patience=0,
                              lr_decay=0.5, epochs=1)
    train_lib.train_and_evaluate(cfg, str(tmp_path))
    run = train_lib.build_run(cfg, str(tmp_path))
    plateau = [c for c in train_lib._callbacks(run, None, None, cb.Guard(1))
               if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert plateau and plateau[0].factor == 0.5 and plateau[0].patience == 0
    # The rate is an optimizer variable, so a decayed rate is checkpointed and restored.
    run.model.optimizer.learning_rate.assign(0.0125)
    run.checkpointer.save(2)
    again = train_lib.build_run(cfg, str(tmp_path))
    again.checkpointer.restore()
    assert float(again.model.optimizer.learning_rate.numpy()) == pytest.approx(0.0125)
