"""Test-wide set-up: two logical CPU devices (so MirroredStrategy has 2 replicas) and quiet TF;
the embedded dataset and two tiny trained runs (fine, coarse), each made once per session."""

import dataclasses
import logging
import os
import shutil
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory):
    """A TFDS data_dir with the embedded dataset prepared once per test session (~10 s)."""
    import tensorflow_datasets as tfds

    from lg_tf.data import embedded  # registers the TFDS builder
    path = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder(embedded.LgShapes.name, data_dir=path).download_and_prepare()
    return path


def _tiny_config(embedded_dir):
    from lg_tf.config import Config
    return Config(dataset="embedded", data_dir=embedded_dir, model="preact_resnet18", width=4,
                  epochs=2, batch_size=16, eval_batch_size=32, steps_per_epoch=3, eval_steps=2,
                  learning_rate=0.05, lr_milestones=(1,), lr_decay=0.1)


@pytest.fixture
def tiny_config(embedded_dir):
    """A run of a few steps of a width-4 PreAct ResNet on the embedded dataset."""
    return _tiny_config(embedded_dir)


def _trained(cfg, model_dir):
    """train_and_evaluate(cfg, model_dir), with the lg_tf log lines (INFO and up) it wrote."""
    from lg_tf import train_lib
    logger = logging.getLogger("lg_tf")
    lines = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        results = train_lib.train_and_evaluate(cfg, model_dir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    # Shared runs are whole: not made under `no_exports` (a module-scoped opt-out).
    assert os.path.exists(os.path.join(model_dir, "export", "saved_model.pb")), model_dir
    return SimpleNamespace(cfg=cfg, model_dir=model_dir, results=results,
                           log="\n".join(lines))


# Trained runs shared by every test that only READS a finished run (results.json,
# TensorBoard events, checkpoints, the SavedModel): one training each per session instead
# of one per test. A test that writes into a run works on a copy (`fine_run_copy`).

@pytest.fixture(scope="session")
def fine_run(embedded_dir, tmp_path_factory):
    """The tiny config trained on fine labels (2 epochs x 3 steps, ACR every epoch), with
    its final analysis and SavedModel export: .cfg, .model_dir, .results, .log. Read only."""
    cfg = dataclasses.replace(_tiny_config(embedded_dir), acr_every=1)
    return _trained(cfg, str(tmp_path_factory.mktemp("fine_run")))


@pytest.fixture(scope="session")
def coarse_run(embedded_dir, tmp_path_factory):
    """The tiny config trained on coarse labels (2 epochs x 3 steps; --acr_every=1, which a
    coarse run ignores), with its final analysis and SavedModel export: .cfg, .model_dir,
    .results, .log. Read only."""
    cfg = dataclasses.replace(_tiny_config(embedded_dir), granularity="coarse", acr_every=1)
    return _trained(cfg, str(tmp_path_factory.mktemp("coarse_run")))


@pytest.fixture
def fine_run_copy(fine_run, tmp_path):
    """The folder of a copy of `fine_run` in the test's tmp_path, to write into."""
    return str(shutil.copytree(fine_run.model_dir, tmp_path / "fine_run"))


@pytest.fixture(scope="module")
def no_exports():
    """Pipelines never read the SavedModel or projector files: skip writing them (time).
    Modules opt in with `pytestmark = pytest.mark.usefixtures("no_exports")`."""
    from lg_tf import analysis, train_lib
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_lib.export_lib, "export_saved_model", lambda *a, **k: None)
        mp.setattr(analysis, "write_projector", lambda *a, **k: {})
        yield
