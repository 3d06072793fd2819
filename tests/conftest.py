"""Test-wide set-up: two logical CPU devices (so MirroredStrategy has 2 replicas) and quiet TF."""

import os

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


@pytest.fixture
def tiny_config(embedded_dir):
    """A run of a few steps of a width-4 PreAct ResNet on the embedded dataset."""
    from lg_tf.config import Config
    return Config(dataset="embedded", data_dir=embedded_dir, model="preact_resnet18", width=4,
                  epochs=2, batch_size=16, eval_batch_size=32, steps_per_epoch=3, eval_steps=2,
                  learning_rate=0.05, lr_milestones=(1,), lr_decay=0.1)


@pytest.fixture(scope="module")
def no_exports():
    """Pipelines never read the SavedModel or projector files: skip writing them (time).
    Modules opt in with `pytestmark = pytest.mark.usefixtures("no_exports")`."""
    from lg_tf import analysis, train_lib
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_lib.export_lib, "export_saved_model", lambda *a, **k: None)
        mp.setattr(analysis, "write_projector", lambda *a, **k: {})
        yield
