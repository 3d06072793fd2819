"""Tests for the data sources, `datasets.prepare` and the tf.data pipeline (lg_tf.data.*).

TFDS datasets are mocked with `tfds.testing.mock_data`; the embedded dataset is prepared
for real once per session (the `embedded_dir` fixture of conftest.py); image folders are
written to tmp_path. No test needs the network.
"""

import contextlib
import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from lg_tf import hierarchy as hier_lib
from lg_tf.config import Config
from lg_tf.data import datasets, pipeline, registry, sources
from lg_tf.data.sources import DataError
from lg_tf.data.split import Split

CIFAR_SPEC = pipeline.ImageSpec(32, "cifar", datasets.DATASETS["cifar10"].mean,
                                datasets.DATASETS["cifar10"].std)


# --------------------------------------------------------------------------- helpers

def unnormalize(images, spec):
    """Pipeline output -> pixel values as float64. The pipeline emits raw uint8 pixels (the
    model's `normalize` layer does the mean/std step), so this is only a cast."""
    return np.asarray(images, np.float64)


def assert_normalized_uint8(images, spec):
    """The pipeline emits raw uint8 pixels in 0..255 (normalisation happens in the model)."""
    assert images.dtype == np.uint8


def test_model_normalize_layer_matches_the_dataset_constants():
    from lg_tf.models import build_model
    model = build_model("preact_resnet18", 2, width=4, input_shape=(8, 8, 3),
                        normalization=(CIFAR_SPEC.mean, CIFAR_SPEC.std))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    got = model.get_layer("normalize")(pixels.astype(np.float32)).numpy()
    expected = (pixels / 255.0 - np.asarray(CIFAR_SPEC.mean)) / np.asarray(CIFAR_SPEC.std)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def random_split(n, num_classes=10, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                 rng.integers(0, num_classes, n).astype(np.int32))


# --------------------------------------------------------------------------- mocked TFDS

def _write_tfds_metadata(meta_dir, name, split_sizes):
    """dataset_info.json (with split sizes) for `name`, as `tfds build` would write it.

    With mock_data's default policy the split sizes are unknown, so TFDS turns
    `as_dataset(batch_size=-1)` into `padded_batch(sys.maxsize)`, which aborts the whole
    process in TF 2.21 (std::length_error in vector::reserve). Real metadata avoids that.
    """
    builder = tfds.builder(name, data_dir=meta_dir)
    infos = [tfds.core.SplitInfo(
        name=split, shard_lengths=[n], num_bytes=0,
        filename_template=tfds.core.ShardedFileTemplate(
            data_dir=builder.data_path, dataset_name=name, filetype_suffix="tfrecord",
            split=split))
        for split, n in split_sizes.items()]
    builder.info.set_splits(tfds.core.SplitDict(infos))
    builder.data_path.mkdir(parents=True, exist_ok=True)
    builder.info.write_to_directory(builder.data_path)


@contextlib.contextmanager
def mock_tfds(tmp_path, name, split_sizes, as_dataset_fn=None):
    meta = str(tmp_path / "tfds_metadata")
    _write_tfds_metadata(meta, name, split_sizes)
    with tfds.testing.mock_data(num_examples=max(split_sizes.values()),
                                policy=tfds.testing.MockPolicy.USE_FILES, data_dir=meta,
                                as_dataset_fn=as_dataset_fn):
        yield


def consistent_cifar100(split_sizes, seed=0):
    """An `as_dataset_fn` giving CIFAR-100 examples whose coarse_label matches the label."""
    table = hier_lib.named("cifar100").parent_array()
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in split_sizes.items():
        fine = rng.permutation(np.arange(n) % 100).astype(np.int64)
        data[split] = {
            "id": np.array([f"{split}_{i}" for i in range(n)]),
            "image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            "label": fine,
            "coarse_label": table[fine].astype(np.int64),
        }

    def as_dataset(self, split, **kwargs):
        del self, kwargs
        return tf.data.Dataset.from_tensor_slices(data[str(split)])

    return as_dataset, data


def test_mock_cifar10_prepare_and_batches(tmp_path):
    with mock_tfds(tmp_path, "cifar10", {"train": 64, "test": 64}):
        data = datasets.prepare(Config(dataset="cifar10", data_dir=str(tmp_path)))
    h = data.hierarchy
    assert h.name == "cifar10" and data.spec.size == 32 and data.spec.augment == "cifar"
    assert data.train.images.shape == (64, 32, 32, 3) and data.train.images.dtype == np.uint8
    assert data.train.labels.dtype == np.int32
    assert data.stats["train_examples"] == 64 and data.stats["test_examples"] == 64

    fine = batches(pipeline.make_dataset(data.train, data.spec, training=True, batch_size=16,
                                         seed=3))
    coarse = batches(pipeline.make_dataset(data.train, data.spec, training=True, batch_size=16,
                                           seed=3, parent=h.parent_array()))
    assert len(fine) == len(coarse) == 4
    for (xf, yf), (xc, yc) in zip(fine, coarse):
        assert xf.shape == (16, 32, 32, 3) and yf.shape == (16,)
        assert yf.dtype == np.int32 and yc.dtype == np.int32
        assert_normalized_uint8(xf, data.spec)
        assert 0 <= yf.min() and yf.max() < 10
        np.testing.assert_array_equal(xf, xc)
        np.testing.assert_array_equal(yc, h.parent_array()[yf])
        assert set(yc) <= {0, 1}
    # One epoch of training batches is a permutation of the split's labels.
    np.testing.assert_array_equal(np.sort(np.concatenate([y for _, y in fine])),
                                  np.sort(data.train.labels))


def test_mock_cifar10_eval_is_ordered_and_unaugmented(tmp_path):
    with mock_tfds(tmp_path, "cifar10", {"train": 20, "test": 20}):
        data = datasets.prepare(Config(dataset="cifar10", data_dir=str(tmp_path)))
    out = batches(pipeline.make_dataset(data.test, data.spec, training=False, batch_size=8,
                                        seed=0))
    assert [len(y) for _, y in out] == [8, 8, 4]  # the remainder is kept for evaluation
    images = np.concatenate([x for x, _ in out])
    np.testing.assert_allclose(unnormalize(images, data.spec), data.test.images, atol=2e-3)
    np.testing.assert_array_equal(np.concatenate([y for _, y in out]), data.test.labels)


def test_mock_cifar100_random_coarse_labels_are_rejected(tmp_path):
    # mock_data draws label and coarse_label independently, so they disagree with the table.
    with mock_tfds(tmp_path, "cifar100", {"train": 50, "test": 50}):
        with pytest.raises(DataError, match="coarse_label` disagrees") as info:
            datasets.prepare(Config(dataset="cifar100", data_dir=str(tmp_path)))
    assert "tfds build cifar100" in str(info.value)


def test_check_cifar100_coarse_counts_disagreements():
    table = hier_lib.named("cifar100").parent_array()
    fine = np.arange(100)
    sources.check_cifar100_coarse(fine, table[fine])
    coarse = table[fine].copy()
    coarse[[3, 50, 99]] = (coarse[[3, 50, 99]] + 1) % 20
    with pytest.raises(DataError, match="for 3 of 100 examples"):
        sources.check_cifar100_coarse(fine, coarse)


def test_mock_cifar100_consistent_labels(tmp_path):
    sizes = {"train": 300, "test": 100}
    as_dataset, raw = consistent_cifar100(sizes)
    with mock_tfds(tmp_path, "cifar100", sizes, as_dataset):
        data = datasets.prepare(Config(dataset="cifar100", data_dir=str(tmp_path)))
    h = data.hierarchy
    assert (h.num_fine, h.num_coarse) == (100, 20)
    np.testing.assert_array_equal(data.train.labels, raw["train"]["label"])
    np.testing.assert_array_equal(data.test.images, raw["test"]["image"])
    assert data.stats["train_per_fine_class"] == [3] * 100

    kwargs = dict(training=True, batch_size=32, seed=11)
    fine = batches(pipeline.make_dataset(data.train, data.spec, **kwargs))
    coarse = batches(pipeline.make_dataset(data.train, data.spec, parent=h.parent_array(),
                                           **kwargs))
    assert len(fine) == 300 // 32
    for (xf, yf), (xc, yc) in zip(fine, coarse):
        assert xf.shape == (32, 32, 32, 3)
        assert_normalized_uint8(xf, data.spec)
        assert 0 <= yf.min() and yf.max() < 100
        np.testing.assert_array_equal(xf, xc)
        np.testing.assert_array_equal(yc, h.parent_array()[yf])
        assert 0 <= yc.min() and yc.max() < 20


def test_mock_cifar100_animals_subset(tmp_path):
    sizes = {"train": 200, "test": 100}
    as_dataset, raw = consistent_cifar100(sizes, seed=1)
    with mock_tfds(tmp_path, "cifar100", sizes, as_dataset):
        data = datasets.prepare(Config(dataset="cifar100", hierarchy="cifar100_animals",
                                       data_dir=str(tmp_path)))
    h = data.hierarchy
    assert (h.name, h.num_fine, h.num_coarse) == ("cifar100_animals", 50, 10)
    source = raw["train"]["label"]
    table = h.source_to_fine(hier_lib.CIFAR100_FINE)
    keep = table[source] >= 0
    assert len(data.train) == keep.sum() == 100  # 2 examples of each of the 50 classes
    np.testing.assert_array_equal(data.train.labels, table[source[keep]])
    np.testing.assert_array_equal(data.train.images, raw["train"]["image"][keep])
    assert sorted(set(data.train.labels)) == list(range(50))
    assert sorted(set(data.test.labels)) == list(range(50))
    assert data.stats["train_per_fine_class"] == [2] * 50
    # Names survive the relabelling.
    for label, src in zip(data.train.labels, source[keep]):
        assert h.fine_names[label] == hier_lib.CIFAR100_FINE[src]

    labels = np.concatenate([
        y for _, y in batches(pipeline.make_dataset(data.train, data.spec, training=False,
                                                    batch_size=64, seed=0,
                                                    parent=h.parent_array()))])
    np.testing.assert_array_equal(labels, h.parent_array()[data.train.labels])
    assert labels.max() == 9


def _network_available(host="www.cs.toronto.edu"):
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


@pytest.mark.skipif(_network_available(), reason="this machine can reach the CIFAR host; "
                    "the test would download CIFAR-10")
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_offline_tfds_error_is_fast_and_actionable(tmp_path, name):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        datasets.prepare(Config(dataset=name, data_dir=str(tmp_path)))
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert f"'{name}'" in message
    assert str(tmp_path) in message
    assert f"tfds build {name}" in message


def test_offline_manual_archive_is_handed_to_tfds(tmp_path):
    """The offline error says 'put the archive in <data_dir>/downloads/manual'; doing so must
    let TFDS read that archive (here a corrupt one, so TFDS's checksum check fails) instead
    of failing the network pre-check again."""
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "cifar-10-binary.tar.gz").write_bytes(b"not the real archive")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        datasets.prepare(Config(dataset="cifar10", data_dir=str(tmp_path)))
    assert time.monotonic() - start < 30
    assert "cannot reach" not in str(info.value)
    assert "checksum" in str(info.value).lower()


# --------------------------------------------------------------------------- fractions

def _unbalanced_labels(seed=0):
    counts = 50 + 7 * np.arange(10)  # 50, 57, ..., 113 examples
    labels = np.repeat(np.arange(10), counts).astype(np.int32)
    return np.random.default_rng(seed).permutation(labels), counts


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.5, 0.999])
def test_fraction_indices_balanced_per_class(fraction):
    labels, counts = _unbalanced_labels()
    kept = pipeline.fraction_indices(labels, fraction, seed=0)
    assert kept.ndim == 1 and np.all(np.diff(kept) > 0)  # sorted, no repeats
    assert 0 <= kept.min() and kept.max() < len(labels)
    per_class = np.bincount(labels[kept], minlength=10)
    np.testing.assert_array_equal(per_class, (counts * fraction).astype(int))


def test_fraction_indices_full():
    labels, _ = _unbalanced_labels()
    np.testing.assert_array_equal(pipeline.fraction_indices(labels, 1.0, 5),
                                  np.arange(len(labels)))


def test_fraction_indices_seeded():
    labels, _ = _unbalanced_labels()
    a = pipeline.fraction_indices(labels, 0.2, seed=1)
    np.testing.assert_array_equal(a, pipeline.fraction_indices(labels.copy(), 0.2, seed=1))
    b = pipeline.fraction_indices(labels, 0.2, seed=2)
    assert len(a) == len(b) and not np.array_equal(a, b)
    # Every class's subset changes with the seed.
    for c in range(10):
        assert set(a[labels[a] == c]) != set(b[labels[b] == c])


def test_fraction_indices_depend_only_on_seed_and_class():
    """The images kept of one class do not depend on the other classes' examples."""
    labels, _ = _unbalanced_labels()
    kept = pipeline.fraction_indices(labels, 0.3, seed=4)
    others = np.flatnonzero(labels != 3)  # drop class 3 entirely
    kept_without = others[pipeline.fraction_indices(labels[others], 0.3, seed=4)]
    np.testing.assert_array_equal(kept_without, kept[labels[kept] != 3])


def test_prepare_same_subset_and_noise_for_fine_and_coarse_runs(embedded_dir):
    """Coarse and fine runs of one seed train on the same images with the same labels."""
    common = dict(dataset="embedded", data_dir=embedded_dir, train_fraction=0.1,
                  label_noise=0.3, seed=5)
    fine = datasets.prepare(Config(granularity="fine", **common))
    coarse = datasets.prepare(Config(granularity="coarse", **common))
    np.testing.assert_array_equal(fine.train.images, coarse.train.images)
    np.testing.assert_array_equal(fine.train.labels, coarse.train.labels)
    assert fine.stats == coarse.stats
    assert fine.stats["train_examples"] == 1200
    assert fine.stats["train_examples_before_fraction"] == 12000
    assert fine.stats["test_examples"] == 2400
    # Fraction per fine class before noise; noise keeps the coarse class counts.
    parent = fine.hierarchy.parent_array()
    np.testing.assert_array_equal(np.bincount(parent[fine.train.labels], minlength=4),
                                  [300] * 4)
    assert 0 < fine.stats["noise_changed"] <= fine.stats["noise_resampled"] < 1200
    # The test split is never subsampled or noised.
    np.testing.assert_array_equal(np.bincount(fine.test.labels, minlength=12), [200] * 12)


# --------------------------------------------------------------------------- label noise

def _hierarchical_labels(n=100_000, seed=0):
    parent = np.repeat(np.arange(10), 5).astype(np.int32)  # 10 coarse x 5 fine
    labels = np.random.default_rng(seed).integers(0, 50, n).astype(np.int32)
    return labels, parent


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_noisy_fine_labels_rate(p):
    labels, parent = _hierarchical_labels()
    n = len(labels)
    out, resampled, changed = pipeline.noisy_fine_labels(labels, parent, p, seed=0)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(resampled / n - p) < 3 * sigma
    # A resampled label lands on one of the coarse class's 5 fine classes (roughly
    # uniformly here), so it actually changes with probability about 4/5.
    q = p * 0.8
    assert abs(changed / n - q) < 4 * np.sqrt(q * (1 - q) / n)
    assert changed == np.sum(out != labels)
    np.testing.assert_array_equal(parent[out], parent[labels])  # coarse labels unchanged
    assert out.dtype == labels.dtype and out.shape == labels.shape


def test_noisy_fine_labels_deterministic():
    labels, parent = _hierarchical_labels(5000)
    a = pipeline.noisy_fine_labels(labels, parent, 0.3, seed=7)
    b = pipeline.noisy_fine_labels(labels.copy(), parent, 0.3, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]
    c = pipeline.noisy_fine_labels(labels, parent, 0.3, seed=8)
    assert not np.array_equal(a[0], c[0])


def test_noisy_fine_labels_extremes():
    labels, parent = _hierarchical_labels(5000)
    before = labels.copy()
    out, resampled, changed = pipeline.noisy_fine_labels(labels, parent, 0.0, seed=0)
    np.testing.assert_array_equal(out, labels)
    assert out is not labels and (resampled, changed) == (0, 0)
    out, resampled, changed = pipeline.noisy_fine_labels(labels, parent, 1.0, seed=0)
    assert resampled == len(labels)
    np.testing.assert_array_equal(parent[out], parent[labels])
    np.testing.assert_array_equal(labels, before)  # the input is not modified


def test_noisy_fine_labels_single_child_coarse_never_changes():
    parent = np.array([0, 0, 1], dtype=np.int32)
    labels = np.random.default_rng(0).integers(0, 3, 2000).astype(np.int32)
    out, _, _ = pipeline.noisy_fine_labels(labels, parent, 0.5, seed=0)
    np.testing.assert_array_equal(out[labels == 2], 2)


# --------------------------------------------------------------------------- pad_crop_flip

def _candidates(image, pad=4):
    """All 81 crops of the zero-padded image and their mirror images."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    out = []
    for top in range(2 * pad + 1):
        for left in range(2 * pad + 1):
            crop = padded[top:top + h, left:left + w]
            out += [(crop, False), (crop[:, ::-1], True)]
    return out


def _match(output, image):
    return [flip for cand, flip in _candidates(image) if np.array_equal(cand, output)]


def test_pad_crop_flip_outputs_are_crops_and_flips():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    out = pipeline.pad_crop_flip(tf.constant(images), tf.constant([1, 2], tf.int64)).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    flips, shifted = [], 0
    for o, image in zip(out, images):
        matches = _match(o, image)
        assert len(matches) == 1, "output is not a pad-4 crop (+ flip) of its input"
        flips.append(matches[0])
        shifted += not np.array_equal(o, image) and not np.array_equal(o, image[:, ::-1])
    assert any(flips) and not all(flips)
    assert shifted > len(images) // 2


def test_pad_crop_flip_seeds():
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), np.uint8))
    a = pipeline.pad_crop_flip(images, tf.constant([5, 6], tf.int64)).numpy()
    b = pipeline.pad_crop_flip(images, tf.constant([5, 6], tf.int64)).numpy()
    c = pipeline.pad_crop_flip(images, tf.constant([5, 7], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pad_crop_flip_covers_all_shifts():
    """Over many images every shift in -4..4 and both flips occur (uniform crop offsets)."""
    image = np.arange(32 * 32 * 3, dtype=np.int32).reshape(1, 32, 32, 3) % 251 + 1
    images = tf.constant(np.repeat(image, 2000, axis=0).astype(np.float32))
    out = pipeline.pad_crop_flip(images, tf.constant([0, 9], tf.int64)).numpy()
    # Recover the shift from where the (non-zero) image content sits.
    ref = image[0].astype(np.float32)
    seen = set()
    candidates = {(t, l, f): c for (c, f), (t, l) in
                  zip(_candidates(ref), [(t, l) for t in range(9) for l in range(9)
                                         for _ in (0, 1)])}
    lookup = {c.tobytes(): k for k, c in candidates.items()}
    for o in out:
        seen.add(lookup[o.tobytes()])
    assert len(seen) == 162


# --------------------------------------------------------------------------- embedded

@pytest.fixture(scope="module")
def embedded(embedded_dir):
    return datasets.prepare(Config(dataset="embedded", data_dir=embedded_dir))


def test_embedded_prepare(embedded):
    h = embedded.hierarchy
    assert h.name == "shapes" and (h.num_fine, h.num_coarse) == (12, 4)
    assert embedded.train.images.shape == (12000, 32, 32, 3)
    assert embedded.test.images.shape == (2400, 32, 32, 3)
    assert embedded.spec == pipeline.ImageSpec(32, "cifar", registry.EMBEDDED_MEAN,
                                               registry.EMBEDDED_STD)
    assert embedded.stats["train_per_fine_class"] == [1000] * 12


def _first(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


def test_embedded_pipeline_determinism(embedded):
    split, spec = embedded.train, embedded.spec
    def make(seed):
        return pipeline.make_dataset(split, spec, training=True, batch_size=128, seed=seed)
    a, b, c = make(0), make(0), make(1)
    xa, ya = _first(a)
    xb, yb = _first(b)
    xc, yc = _first(c)
    assert xa.shape == (128, 32, 32, 3) and ya.shape == (128,)
    assert_normalized_uint8(xa, spec)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(xa, xc) and not np.array_equal(ya, yc)
    # The same Dataset iterated again (the next epoch) reshuffles and re-augments...
    xa2, ya2 = _first(a)
    assert not np.array_equal(xa, xa2) and not np.array_equal(ya, ya2)
    # ...and a fresh Dataset of the same seed repeats that epoch sequence.
    xb2, yb2 = _first(b)
    np.testing.assert_array_equal(xa2, xb2)
    np.testing.assert_array_equal(ya2, yb2)


def test_augmentation_rerandomised_each_epoch():
    """Identical images: outputs differ between epochs only through the augmentation."""
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    split = Split(np.repeat(image, 64, axis=0), np.zeros(64, np.int32))
    ds = pipeline.make_dataset(split, CIFAR_SPEC, training=True, batch_size=64, seed=0)
    epoch1, epoch2 = _first(ds), _first(ds)
    assert not np.array_equal(epoch1[0], epoch2[0])
    assert len({x.tobytes() for x in epoch1[0]}) > 16  # per-image, not per-batch, params
    for x in (epoch1[0][0], epoch2[0][0]):
        assert _match(np.round(unnormalize(x, CIFAR_SPEC)).astype(np.uint8), image[0])


def test_embedded_epoch_covers_split_and_eval_is_exact(embedded):
    split, spec = embedded.test, embedded.spec
    train = batches(pipeline.make_dataset(split, spec, training=True, batch_size=100, seed=2))
    assert len(train) == 24 and all(x.shape == (100, 32, 32, 3) for x, _ in train)
    np.testing.assert_array_equal(np.bincount(np.concatenate([y for _, y in train])),
                                  [200] * 12)
    test = batches(pipeline.make_dataset(split, spec, training=False, batch_size=1000, seed=2))
    assert [len(y) for _, y in test] == [1000, 1000, 400]
    np.testing.assert_allclose(unnormalize(np.concatenate([x for x, _ in test]), spec),
                               split.images, atol=2e-3)
    np.testing.assert_array_equal(np.concatenate([y for _, y in test]), split.labels)


def test_embedded_coarse_labels_follow_fine(embedded):
    parent = embedded.hierarchy.parent_array()
    kwargs = dict(training=True, batch_size=256, seed=9)
    fine = pipeline.make_dataset(embedded.train, embedded.spec, **kwargs).take(3)
    coarse = pipeline.make_dataset(embedded.train, embedded.spec, parent=parent, **kwargs).take(3)
    for (xf, yf), (xc, yc) in zip(batches(fine), batches(coarse)):
        np.testing.assert_array_equal(xf, xc)
        np.testing.assert_array_equal(yc, parent[yf])


# --------------------------------------------------------------------------- image folders

def _png(path, array):
    tf.io.write_file(str(path), tf.io.encode_png(array))


def make_folder_tree(root, classes, per_class, split_dirs=("train", "test"), seed=0):
    """root/<split>/<coarse>/<fine>/*.png with odd formats mixed in; returns file counts."""
    rng = np.random.default_rng(seed)
    bases = [root / s for s in split_dirs] if split_dirs else [root]
    for base in bases:
        for coarse, fines in classes.items():
            for fine in fines:
                d = base / coarse / fine
                d.mkdir(parents=True)
                for i in range(per_class):
                    kind = i % 4
                    if kind == 0:    # grayscale
                        img = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
                    elif kind == 1:  # RGBA
                        img = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
                    elif kind == 2:  # another size and aspect ratio
                        img = rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)
                    else:
                        img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    _png(d / f"img_{i}.png", img)
                (d / "notes.txt").write_text("not an image")
    return root


FOLDER_CLASSES = {"animal": ["cat", "dog"], "vehicle": ["bus", "car", "van"]}


def test_folder_split_tree(tmp_path):
    root = make_folder_tree(tmp_path / "pets", FOLDER_CLASSES, per_class=4)
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root)))
    h = data.hierarchy
    assert h.coarse_names == ("animal", "vehicle")
    assert h.fine_names == ("cat", "dog", "bus", "car", "van")
    assert h.parent == (0, 0, 1, 1, 1)
    assert data.train.is_files and len(data.train) == 20 and len(data.test) == 20
    assert all(p.endswith(".png") for p in data.train.images)
    assert all(os.sep + "test" + os.sep in p for p in data.test.images)
    assert data.spec.size == 32 and data.spec.augment == "cifar"
    np.testing.assert_array_equal(np.bincount(data.train.labels), [4] * 5)

    for training in (True, False):
        out = batches(pipeline.make_dataset(data.train, data.spec, training=training,
                                            batch_size=8, seed=0,
                                            parent=h.parent_array() if training else None))
        assert [x.shape for x, _ in out] == [(8, 32, 32, 3)] * 2 + ([] if training else
                                                                  [(4, 32, 32, 3)])
        for x, y in out:
            assert_normalized_uint8(x, data.spec)
            assert y.max() < (2 if training else 5)
    # Evaluation decodes every file: grayscale becomes 3 equal channels, RGBA drops alpha.
    x, y = batches(pipeline.make_dataset(data.test, data.spec, training=False, batch_size=20,
                                         seed=0))[0]
    pixels = np.round(unnormalize(x, data.spec))
    gray = pixels[0]  # test/animal/cat/img_0.png
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    rgba = tf.io.decode_png(tf.io.read_file(data.test.images[1]), channels=4).numpy()
    np.testing.assert_array_equal(pixels[1], rgba[..., :3])


def test_folder_without_split_uses_holdout(tmp_path):
    root = make_folder_tree(tmp_path / "flat", {"a": ["x", "y"], "b": ["z"]}, per_class=10,
                            split_dirs=())
    cfg = Config(dataset="folder", data_dir=str(root), holdout_fraction=0.2, seed=3)
    data = datasets.prepare(cfg)
    assert data.hierarchy.fine_names == ("x", "y", "z")
    np.testing.assert_array_equal(np.bincount(data.train.labels), [8, 8, 8])
    np.testing.assert_array_equal(np.bincount(data.test.labels), [2, 2, 2])
    assert not set(data.train.images) & set(data.test.images)
    assert len(set(data.train.images) | set(data.test.images)) == 30
    again = datasets.prepare(cfg)
    np.testing.assert_array_equal(again.test.images, data.test.images)
    other = datasets.prepare(Config(dataset="folder", data_dir=str(root), seed=4))
    assert set(other.test.images) != set(data.test.images)
    x, _ = _first(pipeline.make_dataset(data.train, data.spec, training=True, batch_size=8,
                                        seed=0))
    assert x.shape == (8, 32, 32, 3)


def test_holdout_split_counts():
    labels = np.repeat(np.arange(4), [1, 2, 5, 11]).astype(np.int32)
    split = Split(np.array([f"f{i}.png" for i in range(len(labels))]), labels)
    train, test = sources.holdout_split(split, 0.2, seed=0)
    # Singletons stay in train; others hold out max(1, round(0.2 n)).
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=4), [0, 1, 1, 2])
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=4), [1, 1, 4, 9])


def test_folder_empty_class_folder(tmp_path):
    root = make_folder_tree(tmp_path / "pets", FOLDER_CLASSES, per_class=2)
    empty = root / "test" / "vehicle" / "van"
    for f in empty.iterdir():
        f.unlink()
    with pytest.raises(DataError, match="holds no images") as info:
        datasets.prepare(Config(dataset="folder", data_dir=str(root)))
    assert str(empty) in str(info.value)


def test_folder_missing_class_in_test_split(tmp_path):
    root = make_folder_tree(tmp_path / "pets", FOLDER_CLASSES, per_class=2)
    for f in (root / "test" / "animal" / "dog").iterdir():
        f.unlink()
    (root / "test" / "animal" / "dog").rmdir()
    with pytest.raises(DataError, match="no folder for fine class 'dog'"):
        datasets.prepare(Config(dataset="folder", data_dir=str(root)))


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="needs --data_dir"):
        datasets.prepare(Config(dataset="folder"))
    with pytest.raises(DataError, match="does not exist"):
        sources.list_class_files(str(tmp_path / "nope"), hier_lib.named("cifar10"))


def test_folder_large_images_use_imagenet_augmentation(tmp_path):
    root = make_folder_tree(tmp_path / "big", {"a": ["x"], "b": ["y"]}, per_class=4)
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root), image_size=80))
    assert data.spec.size == 80 and data.spec.augment == "imagenet"
    for training in (True, False):
        x, y = _first(pipeline.make_dataset(data.train, data.spec, training=training,
                                            batch_size=4, seed=0))
        assert x.shape == (4, 80, 80, 3)
        assert_normalized_uint8(x, data.spec)


# --------------------------------------------------------------------------- distribution

def _context(i):
    return tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                      num_replicas_in_sync=2)


@pytest.mark.parametrize("training", [True, False])
def test_input_context_shards(training):
    n = 256
    split = Split(random_split(n).images, np.arange(n, dtype=np.int32))  # label = example id
    seen = []
    for i in range(2):
        out = batches(pipeline.make_dataset(split, CIFAR_SPEC, training=training,
                                            batch_size=32, seed=0, input_context=_context(i)))
        assert len(out) == 8 and all(x.shape == (16, 32, 32, 3) for x, _ in out)
        ids = np.concatenate([y for _, y in out])
        assert len(set(ids)) == len(ids) == n // 2
        seen.append(set(ids))
        if not training:  # evaluation images are the examples themselves
            np.testing.assert_allclose(unnormalize(np.concatenate([x for x, _ in out]),
                                                   CIFAR_SPEC), split.images[ids], atol=2e-3)
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(n))


def test_input_context_shards_files(tmp_path):
    root = make_folder_tree(tmp_path / "pets", FOLDER_CLASSES, per_class=4)
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root)))
    split = Split(data.train.images, np.arange(len(data.train), dtype=np.int32))
    seen = []
    for i in range(2):
        out = batches(pipeline.make_dataset(split, data.spec, training=False, batch_size=10,
                                            seed=0, input_context=_context(i)))
        assert [x.shape for x, _ in out] == [(5, 32, 32, 3)] * 2
        seen.append(set(np.concatenate([y for _, y in out])))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(20))
