"""A folder of CIFAR-10 images (issue 19): `train/<class>/`, `test/<class>/` with the ten
CIFAR-10 class names (as in the JPEG copy of CIFAR-10), read with --hierarchy=cifar10 or
grouped by digit with --coarse_zero. The tree is generated (4x4 PNGs); no test reads the
real images."""

import numpy as np
import pytest

from lg_tf import hierarchy as hier_lib
from lg_tf.config import Config
from lg_tf.data import datasets
from lg_tf.errors import DataError
from test_data_identity import add_images

PER_CLASS = 3


def _cifar10_tree(root, classes=hier_lib.CIFAR10_CLASSES):
    for split in ("train", "test"):
        for i, name in enumerate(classes):
            add_images(root / split / name, PER_CLASS, seed=i)
    return root


def _prepare(root, **kw):
    return datasets.prepare(Config(dataset="folder", data_dir=str(root), **kw))


def _coarse_of_each_image(data, split):
    return data.hierarchy.extended_parent()[getattr(data, split).labels]


def test_hierarchy_cifar10_reads_vehicles_and_animals(tmp_path):
    data = _prepare(_cifar10_tree(tmp_path / "d"), hierarchy="cifar10")
    h = data.hierarchy
    assert h.fine_names == tuple(hier_lib.CIFAR10_CLASSES)
    assert h.coarse_names == ("vehicle", "animal")
    for split in ("train", "test"):
        coarse = _coarse_of_each_image(data, split)
        # 4 vehicle classes (airplane, automobile, ship, truck), 6 animal classes
        assert np.bincount(coarse).tolist() == [4 * PER_CLASS, 6 * PER_CLASS]


@pytest.mark.parametrize("digits, group_zero", [
    ("0134", {"airplane", "automobile", "cat", "deer"}),
    ("0189", {"airplane", "automobile", "ship", "truck"}),
    ("5", {"dog"}),
])
def test_coarse_zero_groups_the_folder_by_cifar10_digit(tmp_path, digits, group_zero):
    data = _prepare(_cifar10_tree(tmp_path / "d"), coarse_zero=digits)
    h = data.hierarchy
    assert set(h.fine_names) == set(hier_lib.CIFAR10_CLASSES)
    in_zero = {f for f, p in zip(h.fine_names, h.parent) if p == 0}
    assert in_zero == group_zero
    coarse = _coarse_of_each_image(data, "train")
    assert np.sum(coarse == 0) == len(group_zero) * PER_CLASS
    assert np.sum(coarse == 1) == (10 - len(group_zero)) * PER_CLASS


def test_coarse_zero_is_part_of_the_data_identity(tmp_path):
    root = _cifar10_tree(tmp_path / "d")
    a = datasets.fingerprint(Config(dataset="folder", data_dir=str(root), coarse_zero="0134"))
    b = datasets.fingerprint(Config(dataset="folder", data_dir=str(root), coarse_zero="0189"))
    again = datasets.fingerprint(Config(dataset="folder", data_dir=str(root),
                                        coarse_zero="0134"))
    assert a != b and a == again  # grid runs of one grouping are never mixed with another's


def test_coarse_zero_on_a_folder_without_the_ten_classes_is_one_sentence(tmp_path):
    root = _cifar10_tree(tmp_path / "d", classes=hier_lib.CIFAR10_CLASSES[:8])
    with pytest.raises(DataError, match=r"lacks 2 of their folders \(ship, truck\)"):
        _prepare(root, coarse_zero="0134")


def test_a_grid_counts_its_training_images_without_reading_them(tmp_path):
    """The cost estimate of a grid (DatasetInfo.train_images): a split folder counts train/,
    a TFDS source multiplies its classes by their known size."""
    from lg_tf import grid
    root = _cifar10_tree(tmp_path / "d")
    folder = Config(dataset="folder", data_dir=str(root), hierarchy="cifar10",
                    train_fraction=1.0, batch_size=2)
    assert grid.planned_work(folder)["train_images"] == 10 * PER_CLASS
    tfds = Config(dataset="cifar10", train_fraction=0.2, batch_size=100)
    assert grid.planned_work(tfds)["train_images"] == 10_000
    missing = Config(dataset="folder", data_dir=str(tmp_path / "none"), batch_size=2)
    assert grid.planned_work(missing)["train_images"] is None
