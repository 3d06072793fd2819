"""Tests for the embedded procedural dataset (lg_tf.data.embedded)."""

import socket

import numpy as np
import pytest

import previews
from lg_tf.data import embedded as E
from lg_tf.data import registry
from lg_tf.data import sources

NUM_FINE = 12
NUM_COARSE = 4


@pytest.fixture(scope="module")
def full_train():
    return E.generate("train", seed=0)


@pytest.fixture(scope="module")
def full_test():
    return E.generate("test", seed=0)


# ---------------------------------------------------------------- hierarchy

def test_hierarchy_constants():
    assert len(E.FINE_NAMES) == NUM_FINE
    assert len(E.COARSE_NAMES) == NUM_COARSE
    assert len(set(E.FINE_NAMES)) == NUM_FINE
    assert len(set(E.COARSE_NAMES)) == NUM_COARSE
    assert all(isinstance(n, str) for n in E.FINE_NAMES + E.COARSE_NAMES)
    assert isinstance(E.PARENT, tuple) and len(E.PARENT) == NUM_FINE
    assert all(isinstance(p, int) and 0 <= p < NUM_COARSE for p in E.PARENT)
    counts = np.bincount(np.array(E.PARENT), minlength=NUM_COARSE)
    assert counts.min() >= 2, counts  # every coarse class has >= 2 fine ones
    assert E.NUM_TRAIN_PER_CLASS == 1000 and E.NUM_TEST_PER_CLASS == 200
    assert len(registry.EMBEDDED_MEAN) == 3 and len(registry.EMBEDDED_STD) == 3


# ---------------------------------------------------------------- generator

def test_deterministic_for_seed():
    x1, y1 = E.generate("test", seed=3, num_per_class=15)
    x2, y2 = E.generate("test", seed=3, num_per_class=15)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, y3 = E.generate("test", seed=4, num_per_class=15)
    assert not np.array_equal(x1, x3)
    assert not np.array_equal(y1, y3)


@pytest.mark.parametrize("split", ["train", "test"])
def test_shapes_dtypes_ranges_balance(split):
    n = 17
    x, y = E.generate(split, seed=0, num_per_class=n)
    assert x.shape == (NUM_FINE * n, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (NUM_FINE * n,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < NUM_FINE
    np.testing.assert_array_equal(np.bincount(y, minlength=NUM_FINE),
                                  np.full(NUM_FINE, n))
    # Shuffled, not grouped by class.
    assert not np.all(np.diff(y) >= 0)
    # Uses the dynamic range and no image is flat.
    assert x.min() < 20 and x.max() > 235
    assert x.reshape(len(x), -1).std(axis=1).min() > 5


def test_default_sizes_and_balance(full_train, full_test):
    (x, y), (xt, yt) = full_train, full_test
    assert x.shape == (12000, 32, 32, 3) and xt.shape == (2400, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(y, minlength=NUM_FINE),
                                  np.full(NUM_FINE, 1000))
    np.testing.assert_array_equal(np.bincount(yt, minlength=NUM_FINE),
                                  np.full(NUM_FINE, 200))


def test_train_and_test_share_no_images(full_train, full_test):
    train_keys = {img.tobytes() for img in full_train[0]}
    test_keys = {img.tobytes() for img in full_test[0]}
    assert len(train_keys) == len(full_train[0])  # no duplicates either
    assert len(test_keys) == len(full_test[0])
    assert not train_keys & test_keys


def test_mean_std_constants(full_train):
    f = full_train[0].astype(np.float64) / 255.0
    np.testing.assert_allclose(f.mean(axis=(0, 1, 2)), registry.EMBEDDED_MEAN, atol=1e-3)
    np.testing.assert_allclose(f.std(axis=(0, 1, 2)), registry.EMBEDDED_STD, atol=1e-3)


def test_colour_does_not_identify_class(full_train):
    x, y = full_train
    f = x.astype(np.float64) / 255.0
    overall = f.mean(axis=(0, 1, 2))
    for k in range(NUM_FINE):
        class_mean = f[y == k].mean(axis=(0, 1, 2))
        np.testing.assert_allclose(class_mean, overall, atol=0.05,
                                   err_msg=E.FINE_NAMES[k])


def test_invalid_arguments():
    with pytest.raises(ValueError):
        E.generate("validation")
    with pytest.raises(ValueError):
        E.generate("train", seed=-1, num_per_class=1)


# ---------------------------------------------------------------- TFDS

@pytest.fixture
def no_network(monkeypatch):
    """Makes any attempt to open a network connection fail loudly."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_tfds_round_trip_small(tmp_path, no_network):
    import tensorflow_datasets as tfds

    data_dir = str(tmp_path)
    builder = tfds.builder("lg_shapes/small", data_dir=data_dir)
    assert isinstance(builder, E.LgShapes)
    builder.download_and_prepare()
    info = builder.info
    assert str(info.version) == "1.0.0"
    assert info.supervised_keys == ("image", "label")
    assert tuple(info.features["label"].names) == E.FINE_NAMES
    assert tuple(info.features["coarse_label"].names) == E.COARSE_NAMES
    assert info.splits["train"].num_examples == NUM_FINE * E.SMALL_TRAIN_PER_CLASS
    assert info.splits["test"].num_examples == NUM_FINE * E.SMALL_TEST_PER_CLASS

    parent = np.array(E.PARENT)
    for split, n in (("train", E.SMALL_TRAIN_PER_CLASS),
                     ("test", E.SMALL_TEST_PER_CLASS)):
        gx, gy = E.generate(split, seed=0, num_per_class=n)

        ds = tfds.load("lg_shapes/small", split=split, data_dir=data_dir,
                       as_supervised=True, download=False)
        pairs = list(tfds.as_numpy(ds))
        x = np.stack([p[0] for p in pairs])
        y = np.array([p[1] for p in pairs])
        np.testing.assert_array_equal(x, gx)
        np.testing.assert_array_equal(y, gy)

        full = tfds.as_numpy(tfds.load("lg_shapes/small", split=split,
                                       data_dir=data_dir, batch_size=-1,
                                       download=False))
        np.testing.assert_array_equal(full["image"], gx)
        np.testing.assert_array_equal(full["coarse_label"], parent[full["label"]])

        # What lg_tf's embedded source reads: the same arrays.
        arrays = sources._tfds_arrays("lg_shapes/small", split, data_dir)
        assert arrays["image"].dtype == np.uint8
        np.testing.assert_array_equal(arrays["image"], gx)
        np.testing.assert_array_equal(arrays["label"], gy)


def test_source_prepares_the_dataset_when_missing(tmp_path, no_network):
    arrays = sources._tfds_arrays("lg_shapes/small", "test", str(tmp_path / "fresh"))
    gx, gy = E.generate("test", seed=0, num_per_class=E.SMALL_TEST_PER_CLASS)
    np.testing.assert_array_equal(arrays["image"], gx)
    np.testing.assert_array_equal(arrays["label"], gy)


# ---------------------------------------------------------------- preview

def test_embedded_preview(tmp_path):
    path = previews.save_embedded_preview(str(tmp_path / "sub" / "preview.png"), per_class=2)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
