"""Data identity (issue 10, "Nothing lost, ever"): the fingerprint in `Data.stats`, split
trees whose train and test folders disagree, and hierarchies with a single coarse class.

Image trees are tiny (4x4 PNGs, written with PIL) and built per test; the fingerprint
timing test writes 5,000 empty `.png` files, which the fingerprint lists but never reads.
"""

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from lg_tf import hierarchy as hier_lib
from lg_tf.config import Config
from lg_tf.data import datasets
from lg_tf.errors import DataError, HierarchyError
from test_input_pipeline import _write_tfds_metadata  # the one way tests fake `tfds build`

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = {"animal": ["cat", "dog"], "vehicle": ["bus", "car"]}


def make_tree(root, classes=CLASSES, per_class=2, splits=("train", "test")):
    """root/<split>/<coarse>/<fine>/img_<i>.png, 4x4 RGB; `splits=("",)` for one tree."""
    for split in splits:
        for coarse, fines in classes.items():
            for fine in fines:
                add_images(root / split / coarse / fine, per_class)
    return root


def add_images(d, n, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(d / f"img_{i}.png")


def config(root, **kw):
    return Config(dataset="folder", data_dir=str(root), **kw)


def prepare(root, **kw):
    return datasets.prepare(config(root, **kw))


def _write(path, text):
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- fingerprint

def test_fingerprint_in_stats_equals_the_function(tmp_path):
    root = make_tree(tmp_path / "pets")
    data = prepare(root)
    fp = data.stats["fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert datasets.fingerprint(config(root)) == fp


def test_fingerprint_ignores_where_the_tree_lies(tmp_path):
    a = make_tree(tmp_path / "a" / "pets")
    fp = prepare(a).stats["fingerprint"]
    b = tmp_path / "elsewhere" / "deeper" / "pets_copy"  # other path, other folder name
    shutil.copytree(a, b)
    assert prepare(b).stats["fingerprint"] == fp
    moved = tmp_path / "moved"
    shutil.move(str(a), str(moved))
    assert datasets.fingerprint(config(moved)) == fp
    # Given with a trailing separator, or as a relative path: still the same data.
    assert datasets.fingerprint(config(str(moved) + os.sep)) == fp
    assert datasets.fingerprint(config(os.path.relpath(moved))) == fp


def test_fingerprint_ignores_fraction_noise_seed_and_holdout(tmp_path):
    root = make_tree(tmp_path / "pets", per_class=4)
    fp = prepare(root).stats["fingerprint"]
    for kw in ({"train_fraction": 0.5}, {"label_noise": 0.3}, {"seed": 7},
               {"train_fraction": 0.5, "label_noise": 0.2, "seed": 3}):
        data = prepare(root, **kw)
        assert data.stats["fingerprint"] == fp, kw
    flat = make_tree(tmp_path / "flat", per_class=5, splits=("",))
    fp_flat = prepare(flat).stats["fingerprint"]
    assert prepare(flat, holdout_fraction=0.4, seed=2).stats["fingerprint"] == fp_flat
    assert fp_flat != fp  # one tree is not a train/test tree


def _renamed_file(root):
    d = root / "train" / "animal" / "cat"
    (d / "img_0.png").rename(d / "img_9.png")


def _swapped_class(root):
    for split in ("train", "test"):
        (root / split / "animal" / "dog").rename(root / split / "animal" / "wolf")


def _regrouped_class(root):
    for split in ("train", "test"):
        (root / split / "animal" / "dog").rename(root / split / "vehicle" / "dog")


def _added_file(root):
    add_images(root / "test" / "vehicle" / "car", 3)


def _removed_file(root):
    (root / "test" / "vehicle" / "car" / "img_1.png").unlink()


def _resized_file(root):  # same name, other content of another size
    path = root / "train" / "vehicle" / "bus" / "img_0.png"
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(path)


CHANGES = [_renamed_file, _swapped_class, _regrouped_class, _added_file, _removed_file,
           _resized_file]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__[1:] for c in CHANGES])
def test_fingerprint_changes_with_the_data(tmp_path, change):
    root = make_tree(tmp_path / "pets")
    before = prepare(root).stats["fingerprint"]
    change(root)
    after = prepare(root).stats["fingerprint"]
    assert after != before
    assert datasets.fingerprint(config(root)) == after


def test_fingerprint_of_a_hierarchy_file_subset(tmp_path):
    root = make_tree(tmp_path / "pets")
    pets = _write(tmp_path / "pets.csv", "cat,small\nbus,big\n")
    fp = prepare(root, hierarchy_file=pets).stats["fingerprint"]
    assert fp != prepare(root).stats["fingerprint"]
    # Classes the hierarchy leaves out are not part of its data.
    add_images(root / "train" / "animal" / "dog", 3, seed=5)
    assert prepare(root, hierarchy_file=pets).stats["fingerprint"] == fp
    # The same classes grouped otherwise are another task on the same files.
    other = _write(tmp_path / "other.csv", "cat,big\nbus,small\n")
    assert prepare(root, hierarchy_file=other).stats["fingerprint"] != fp


def test_fingerprint_is_fast_and_reads_no_pixels(tmp_path):
    """5,000 files (4 classes x 625 x train/test), written empty: listing only."""
    root = tmp_path / "big"
    for split in ("train", "test"):
        for coarse, fines in CLASSES.items():
            for fine in fines:
                d = root / split / coarse / fine
                d.mkdir(parents=True)
                for i in range(625):
                    (d / f"img_{i:05d}.png").write_bytes(b"")
    start = time.perf_counter()
    fp = datasets.fingerprint(config(root))
    seconds = time.perf_counter() - start
    logging.getLogger(__name__).info("fingerprint of 5,000 files: %.3f s", seconds)
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert seconds < 10, seconds


def test_embedded_fingerprint_is_stable(embedded_dir):
    first = datasets.prepare(Config(dataset="embedded", data_dir=embedded_dir))
    second = datasets.prepare(Config(dataset="embedded", data_dir=embedded_dir,
                                     train_fraction=0.5, label_noise=0.1, seed=1))
    fp = first.stats["fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert second.stats["fingerprint"] == fp
    assert datasets.fingerprint(Config(dataset="embedded", data_dir=embedded_dir)) == fp


def test_embedded_fingerprint_depends_on_the_hierarchy(embedded_dir, tmp_path):
    path = _write(tmp_path / "h.csv", "disc,round\nsquare,angular\n")
    cfg = Config(dataset="embedded", data_dir=embedded_dir, hierarchy_file=path)
    assert datasets.fingerprint(cfg) != datasets.fingerprint(
        Config(dataset="embedded", data_dir=embedded_dir))


@contextlib.contextmanager
def mock_tfds(meta, name, split_sizes):
    _write_tfds_metadata(str(meta), name, split_sizes)
    with tfds.testing.mock_data(num_examples=max(split_sizes.values()),
                                policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(meta)):
        yield


def _mock_cifar10_fingerprint(tmp_path, sizes, **kw):
    with mock_tfds(tmp_path / "meta", "cifar10", sizes):
        data = datasets.prepare(Config(dataset="cifar10", data_dir=str(tmp_path / "data"), **kw))
    return data.stats["fingerprint"]


def test_tfds_fingerprint_is_builder_version_and_split_sizes(tmp_path):
    sizes = {"train": 64, "test": 32}
    fp = _mock_cifar10_fingerprint(tmp_path / "a", sizes)
    assert _mock_cifar10_fingerprint(tmp_path / "b", sizes, train_fraction=0.5, seed=4) == fp
    assert _mock_cifar10_fingerprint(tmp_path / "c", {"train": 64, "test": 48}) != fp
    assert _mock_cifar10_fingerprint(tmp_path / "d", sizes, coarse_zero="01") != fp


def test_fingerprint_of_an_unprepared_tfds_dataset_is_refused(tmp_path):
    with pytest.raises(DataError, match="TFDS dataset 'cifar10' is not prepared in "
                                        "--data_dir=.* so it has no fingerprint yet"):
        datasets.fingerprint(Config(dataset="cifar10", data_dir=str(tmp_path)))


def _imagenet_cache(data_dir, h):
    for split in ("train", "test"):
        cache = data_dir / "lg_tf_cache" / f"imagenet2012_{h.name}" / split
        for i, wnid in enumerate(h.fine_names):
            add_images(cache / wnid, 1, seed=i)
        (cache / "_COMPLETE").touch()
    return data_dir


def test_imagenet_fingerprint_is_its_extracted_cache(tmp_path):
    h = hier_lib.named("imagenet_dog_cat")
    a = _imagenet_cache(tmp_path / "a", h)
    cfg = Config(dataset="imagenet2012", hierarchy=h.name, data_dir=str(a))
    with pytest.raises(DataError, match="imagenet2012 train images of hierarchy "
                                        "'imagenet_dog_cat' are not extracted yet"):
        datasets.fingerprint(Config(dataset="imagenet2012", hierarchy=h.name,
                                    data_dir=str(tmp_path / "empty")))
    fp = datasets.prepare(cfg).stats["fingerprint"]
    assert datasets.fingerprint(cfg) == fp
    b = _imagenet_cache(tmp_path / "b", h)
    assert datasets.fingerprint(Config(dataset="imagenet2012", hierarchy=h.name,
                                       data_dir=str(b))) == fp
    cache = b / "lg_tf_cache" / f"imagenet2012_{h.name}" / "test" / h.fine_names[3]
    (cache / "img_0.png").rename(cache / "img_1.png")
    assert datasets.fingerprint(Config(dataset="imagenet2012", hierarchy=h.name,
                                       data_dir=str(b))) != fp


# --------------------------------------------------------------------------- train vs test

def test_test_class_without_train_folder_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets")
    add_images(root / "test" / "animal" / "bird", 2)
    with pytest.raises(DataError) as e:
        prepare(root)
    train, test = root / "train", root / "test"
    assert str(e.value) == (
        f"class 'bird' has a test folder ({test}/animal/bird) but no training folder under "
        f"'{train}', so it would be left out without a word; add training images in "
        f"{train}/animal/bird/ or remove the test folder")


def test_several_test_classes_without_train_folders(tmp_path):
    root = make_tree(tmp_path / "pets")
    add_images(root / "test" / "animal" / "bird", 2)
    add_images(root / "test" / "boat" / "ferry", 2)
    with pytest.raises(DataError) as e:
        prepare(root)
    assert str(e.value).startswith("classes 'bird', 'ferry' (2) have a test folder (")
    assert str(e.value).endswith("or remove the test folders")


def test_val_class_without_train_folder_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets", splits=("train", "val"))
    add_images(root / "val" / "vehicle" / "tram", 2)
    with pytest.raises(DataError, match=re.escape(
            f"class 'tram' has a test folder ({root}/val/vehicle/tram) but no training folder")):
        prepare(root)


def test_train_class_without_test_folder_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets")
    shutil.rmtree(root / "test" / "animal" / "dog")
    with pytest.raises(DataError) as e:
        prepare(root)
    train, test = root / "train", root / "test"
    assert str(e.value) == (
        f"no folder for fine class 'dog' under '{test}' although {train}/animal/dog holds "
        f"training images, so it could not be evaluated; add test images in "
        f"{test}/animal/dog/ or remove the training folder")


def test_hierarchy_file_subset_leaves_other_test_classes_out_with_a_warning(tmp_path, caplog):
    root = make_tree(tmp_path / "pets")
    add_images(root / "test" / "animal" / "bird", 2)
    shutil.rmtree(root / "test" / "animal" / "dog")  # dog is not in the hierarchy either
    path = _write(tmp_path / "pets.csv", "cat,small\nbus,big\n")
    with caplog.at_level(logging.WARNING, logger="lg_tf"):
        data = prepare(root, hierarchy_file=path)
    assert data.hierarchy.fine_names == ("cat", "bus") and len(data.test) == 4
    assert any("1 class folder only in" in r.getMessage() and "left out: bird" in r.getMessage()
               for r in caplog.records)


def test_hierarchy_file_naming_a_test_only_class_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets")
    add_images(root / "test" / "animal" / "bird", 2)
    path = _write(tmp_path / "pets.csv", "cat,small\nbird,small\nbus,big\n")
    with pytest.raises(DataError, match="class 'bird' has a test folder .* but no training "
                                        "folder"):
        prepare(root, hierarchy_file=path)


# --------------------------------------------------------------------------- one coarse class

def test_tree_with_one_fine_class_is_refused_before_loading(tmp_path):
    root = make_tree(tmp_path / "one", {"animal": ["cat"]})
    (root / "train" / "animal" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(HierarchyError) as e:
        prepare(root)
    train = root / "train"
    assert str(e.value) == (
        f"the image folder '{train}' has only 1 coarse class ('animal', with 1 fine class: "
        "cat), but lg_tf trains a classifier over coarse classes, which needs at least 2; add "
        f"a second coarse folder ({train}/<coarse>/<fine>/<images>) or pass a "
        "--hierarchy_file grouping the fine classes into 2 or more coarse classes")


def test_single_tree_with_one_coarse_class_is_refused(tmp_path):
    root = make_tree(tmp_path / "one", {"animal": ["cat", "dog"]}, splits=("",))
    with pytest.raises(HierarchyError, match=re.escape(
            f"the image folder '{root}' has only 1 coarse class ('animal', with 2 fine classes: "
            "cat, dog)")):
        prepare(root)


def test_hierarchy_file_with_one_coarse_class_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets")
    path = _write(tmp_path / "all.csv", "cat,thing\ndog,thing\nbus,thing\n")
    with pytest.raises(HierarchyError) as e:
        prepare(root, hierarchy_file=path)
    assert str(e.value) == (
        f"--hierarchy_file='{path}' has only 1 coarse class ('thing', with 3 fine classes: "
        "cat, dog, bus), but lg_tf trains a classifier over coarse classes, which needs at "
        "least 2; map the fine classes to 2 or more coarse classes in it")


def test_one_coarse_class_is_refused_by_resolve_hierarchy(tmp_path):
    """Pipelines call resolve_hierarchy before launching runs: refused there, no data read."""
    path = _write(tmp_path / "round.csv", "disc,round\nring,round\n")
    cfg = Config(dataset="embedded", data_dir=str(tmp_path / "nothing"), hierarchy_file=path)
    with pytest.raises(HierarchyError, match="has only 1 coarse class"):
        datasets.resolve_hierarchy(cfg)
    with pytest.raises(HierarchyError, match="has only 1 coarse class"):
        datasets.prepare(cfg)
    assert not os.path.exists(tmp_path / "nothing")


def test_cli_one_coarse_class_is_one_sentence_exit_2(tmp_path):
    root = make_tree(tmp_path / "one", {"animal": ["cat"]})
    model_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "lg_tf.train", "--dataset=folder", f"--data_dir={root}",
         f"--model_dir={model_dir}", "--width=4", "--epochs=1"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lg_tf: error:")]
    assert len(lines) == 1 and "has only 1 coarse class ('animal'" in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
