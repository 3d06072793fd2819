"""lg_tf.discover: clustering on known clusters, labels files, coarse-only trees, the CLI."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lg_tf import grid as grid_lib
from lg_tf import clustering, hierarchy
from lg_tf.data import labels_file
from lg_tf.data.split import Split
from lg_tf.errors import ConfigError, DataError


# --------------------------------------------------------------------------- clustering

def _blobs(rng, centres, n, spread=0.05):
    points = [c + spread * rng.standard_normal((n, len(c))) for c in centres]
    return np.concatenate(points), np.repeat(np.arange(len(centres)), n)


def _two_coarse_classes(seed=0, n=60):
    """Coarse 0 = 3 separated blobs, coarse 1 = 2 blobs, in 10-D; (train, test) features,
    coarse ids and true fine ids (0-2 under coarse 0, 3-4 under coarse 1)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(10)[:5] * 3 + 1
    out = []
    for count in (n, n // 3):
        a, fa = _blobs(rng, centres[:3], count)
        b, fb = _blobs(rng, centres[3:], count)
        out.append((np.concatenate([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))].astype(int),
                    np.r_[fa, fb + 3]))
    return out


def test_separated_groups_are_recovered_exactly_with_k_auto():
    (x, coarse, fine), (tx, tcoarse, tfine) = _two_coarse_classes()
    result = clustering.discover(x, coarse, tx, tcoarse, ["a", "b"], "auto", seed=0)
    assert [c.k for c in result.per_coarse] == [3, 2]          # silhouette picks the truth
    assert clustering.agreement(result.train, fine)["ari"] == pytest.approx(1.0)
    assert clustering.agreement(result.test, tfine)["ari"] == pytest.approx(1.0)
    assert result.names == ["a_1", "a_2", "a_3", "b_1", "b_2"]
    assert result.parent == [0, 0, 0, 1, 1]
    assert all(result.parent[i] == c for i, c in zip(result.train, coarse))
    per = result.per_coarse[0]
    assert set(per.silhouette) == {2, 3, 4, 5, 6} and per.silhouette[3] > 0.9
    assert per.sizes == sorted(per.sizes, reverse=True) and sum(per.sizes) == 180


def test_fixed_k_and_seed_give_the_same_labels():
    (x, coarse, fine), (tx, tcoarse, _) = _two_coarse_classes(n=30)
    a = clustering.discover(x, coarse, tx, tcoarse, ["a", "b"], 4, seed=3)
    b = clustering.discover(x, coarse, tx, tcoarse, ["a", "b"], 4, seed=3)
    np.testing.assert_array_equal(a.train, b.train)
    assert [c.k for c in a.per_coarse] == [4, 4] and len(a.names) == 8
    # Splitting the truth further keeps every cluster inside one true class.
    assert clustering.agreement(a.train, fine)["nmi"] > 0.8


@pytest.mark.parametrize("text, message", [("1", "at least 2"), ("0", "at least 2"),
                                           ("three", "'auto' or a whole number")])
def test_bad_k_is_one_sentence(text, message):
    with pytest.raises(ConfigError, match=message):
        clustering.parse_k(text)
    assert clustering.parse_k("AUTO") == "auto" and clustering.parse_k("4") == 4


def test_too_few_images_for_k_and_empty_classes_are_refused():
    with pytest.raises(DataError, match="coarse class 'b' has 2 training images, fewer than "
                                        "--k=3; lower --k or add images"):
        clustering.check_sizes(["a", "b"], [10, 2], 3)
    with pytest.raises(DataError, match="coarse class 'a' has no training images"):
        clustering.check_sizes(["a", "b"], [0, 9], 2)
    with pytest.raises(DataError, match="--k=auto needs at least 3"):
        clustering.check_sizes(["a", "b"], [10, 2], "auto")


def test_identical_images_in_a_coarse_class_are_one_sentence():
    """Review D8: a class of copies (duplicates, blank scans) gave sklearn's 'Number of
    labels is 1' traceback; now one sentence, and k=auto tries only what the copies allow."""
    (x, coarse, _), (tx, tcoarse, _) = _two_coarse_classes(n=30)
    same = x.copy()
    same[coarse == 0] = 2.0                     # every image of 'a' has the same features
    for k in ("auto", 2):
        with pytest.raises(DataError, match="the 90 training images of coarse class 'a' are "
                                            "all the same as their features see them"):
            clustering.discover(same, coarse, tx, tcoarse, ["a", "b"], k, seed=0)
    three = x.copy()
    rows = np.flatnonzero(coarse == 0)
    three[rows] = np.eye(10)[rows % 3] * 5      # 90 images, 3 different ones
    with pytest.raises(DataError, match="only 3 different ones, fewer than --k=4 .*or use "
                                        "--k=3$"):
        clustering.discover(three, coarse, tx, tcoarse, ["a", "b"], 4, seed=0)
    result = clustering.discover(three, coarse, tx, tcoarse, ["a", "b"], "auto", seed=0)
    assert result.per_coarse[0].k == 3 and set(result.per_coarse[0].silhouette) == {2, 3}
    assert result.per_coarse[0].sizes == [30, 30, 30]


# --------------------------------------------------------------------------- labels files

def _write(path, rows, header="path,coarse,fine"):
    path.write_text("\n".join([header] + [",".join(r) for r in rows]) + "\n")
    return str(path)


def test_labels_file_relabels_in_memory_splits_by_source_index(tmp_path):
    base = hierarchy.from_groups("base", [("animal", ["cat", "dog"]), ("car", ["car"])])
    split = Split(np.zeros((3, 2, 2, 3), np.uint8), np.array([0, 1, 2], np.int32),
                  index=np.array([4, 7, 9]))
    path = _write(tmp_path / "l.csv", [("train/4", "animal", "furry"),
                                       ("train/7", "animal", "furry"),
                                       ("train/9", "car", "red"), ("train/1", "car", "blue")])
    labels = labels_file.read(path)
    h = labels_file.hierarchy_for(labels, base)
    assert h.coarse_names == ("animal", "car") and h.fine_names == ("furry", "blue", "red")
    out = labels_file.apply(labels, split, "train", None, base)
    np.testing.assert_array_equal(out.labels, [0, 0, 2])
    np.testing.assert_array_equal(out.index, [4, 7, 9])


def test_labels_file_keys_folders_by_relative_path(tmp_path):
    base = hierarchy.from_groups("t", [("a", ["a"]), ("b", ["b"])])
    root = tmp_path / "tree"
    split = Split(np.array([str(root / "train" / "a" / "1.png"),
                            str(root / "train" / "b" / "2.png")]), np.array([0, 1], np.int32))
    path = _write(tmp_path / "l.csv", [("train/a/1.png", "a", "a_1"),
                                       ("train/b/2.png", "b", "b_1")])
    out = labels_file.apply(labels_file.read(path), split, "train", str(root), base)
    np.testing.assert_array_equal(out.labels, [0, 1])


@pytest.mark.parametrize("rows, header, message", [
    ([("x", "a", "f")], "file,label", "must start with the header line 'path,coarse,fine'"),
    ([("x", "a", "f"), ("x", "a", "g")], "path,coarse,fine", "line 3: image 'x' has a second"),
    ([("x", "a", "f"), ("y", "b", "f")], "path,coarse,fine", "fine class 'f' is under coarse "
                                                             "class 'b' here and 'a' before"),
    ([("x", "a")], "path,coarse,fine", "line 2: expected 3 columns path,coarse,fine"),
    ([], "path,coarse,fine", "has no rows"),
])
def test_bad_labels_files_name_the_line(tmp_path, rows, header, message):
    with pytest.raises(DataError, match=message):
        labels_file.read(_write(tmp_path / "l.csv", rows, header))


def test_labels_file_never_moves_an_image_to_another_coarse_class(tmp_path):
    base = hierarchy.from_groups("t", [("a", ["a"]), ("b", ["b"])])
    split = Split(np.zeros((2, 1, 1, 3), np.uint8), np.array([0, 1], np.int32),
                  index=np.array([0, 1]))
    moved = _write(tmp_path / "m.csv", [("test/0", "a", "a_1"), ("test/1", "a", "a_2"),
                                        ("train/5", "b", "b_1")])
    with pytest.raises(DataError, match="puts 'test/1' under coarse class 'a', but the image "
                                        "belongs to 'b'"):
        labels_file.apply(labels_file.read(moved), split, "test", None, base)
    short = _write(tmp_path / "s.csv", [("test/0", "a", "a_1"), ("train/0", "b", "b_1")])
    with pytest.raises(DataError, match="no row for 1 of the 2 test images, e.g. 'test/1'"):
        labels_file.apply(labels_file.read(short), split, "test", None, base)
    other = _write(tmp_path / "o.csv", [("test/0", "a", "a_1"), ("test/1", "zebra", "z")])
    with pytest.raises(DataError, match="names coarse class 'zebra', which the data does not"):
        labels_file.apply(labels_file.read(other), split, "test", None, base)


def test_a_tree_of_image_folders_without_fine_folders_is_coarse_only(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "tree" / name).mkdir(parents=True)
    h = hierarchy.from_folder_tree(str(tmp_path / "tree"))
    assert h.coarse_names == ("cat", "dog") and h.fine_names == ("cat", "dog")
    assert h.parent == (0, 1)


# --------------------------------------------------------------------------- end to end

def _png(path, colour, stripes=False, seed=0):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    image = np.clip(np.array(colour) + rng.integers(-12, 13, (32, 32, 3)), 0, 255)
    if stripes:
        image[::4] = 255 - image[::4]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image.astype(np.uint8)).numpy())


# Two coarse classes, each the union of two kinds of image that differ in every pixel.
KINDS = {"warm": {"red": (220, 30, 30), "yellow": (230, 220, 40)},
         "cool": {"blue": (30, 40, 220), "green": (30, 200, 60)}}


def _tree(root, with_fine: bool, train=12, test=4):
    for split, n in (("train", train), ("test", test)):
        for coarse, kinds in KINDS.items():
            for kind, colour in kinds.items():
                folder = root / split / coarse / (kind if with_fine else "")
                for i in range(n):
                    _png(folder / f"{kind}_{i}.png", colour, seed=i)
    return str(root)


def _discover(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lg_tf.discover", *args],
                          capture_output=True, text=True, timeout=timeout)


TINY = ["--width=4", "--epochs=1", "--batch_size=8", "--eval_batch_size=8", "--image_size=32"]


def test_discover_on_a_coarse_only_tree_writes_labels_lg_tf_trains_on(tmp_path):
    data = _tree(tmp_path / "data", with_fine=False)
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
                     "--features=pixels", "--k=auto", *TINY)
    assert proc.returncode == 0, proc.stderr
    with open(out / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * (12 + 4) and rows[0].keys() == {"path", "coarse", "fine"}
    # Each colour ends up in its own pseudo-fine class: the clusters are the hidden kinds.
    by_kind = {}
    for r in rows:
        by_kind.setdefault(os.path.basename(r["path"]).split("_")[0], set()).add(r["fine"])
    assert all(len(v) == 1 for v in by_kind.values()) and len(
        set.union(*by_kind.values())) == 4
    assert json.loads((out / "hierarchy.json").read_text()) == {
        "cool_1": "cool", "cool_2": "cool", "warm_1": "warm", "warm_2": "warm"}
    clusters = json.loads((out / "clusters.json").read_text())
    assert [c["k"] for c in clusters["per_coarse"]] == [2, 2] and clusters["agreement"] == {}
    assert sorted(os.listdir(out / "previews")) == ["cool.png", "warm.png"]
    assert "pseudo-fine classes" in proc.stdout

    # lg_tf.train trains on the discovered labels; its SavedModel serves coarse classes.
    run_dir = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "lg_tf.train", "--dataset=folder", f"--data_dir={data}",
         f"--labels_file={out / 'labels.csv'}", f"--model_dir={run_dir}",
         "--steps_per_epoch=2", *TINY], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["hierarchy"]["fine_names"] == ["cool_1", "cool_2", "warm_1", "warm_2"]
    assert results["final"]["test/acr"] is not None
    import tensorflow as tf
    serve = tf.saved_model.load(str(run_dir / "export")).signatures["serving_default"]
    answer = serve(images=tf.zeros((2, 32, 32, 3), tf.uint8))
    assert set(answer["coarse_name"].numpy()) <= {b"cool", b"warm"}
    assert answer["fine_probs"].shape == (2, 4)


def test_discover_scores_itself_against_fine_folders(tmp_path):
    data = _tree(tmp_path / "data", with_fine=True)
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
                     "--features=pixels", "--k=2", *TINY)
    assert proc.returncode == 0, proc.stderr
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["agreement"]["train"]["ari"] == pytest.approx(1.0)
    assert clusters["agreement"]["test"]["nmi"] == pytest.approx(1.0)
    assert "NMI 1.000" in proc.stdout


def test_discover_errors_are_one_sentence_and_write_nothing(tmp_path):
    data = _tree(tmp_path / "data", with_fine=False, train=3, test=1)
    out = tmp_path / "out"
    common = ["--dataset=folder", f"--data_dir={data}", "--features=pixels", *TINY]
    for args, message in [
            (["--k=1"], "--k=1 must be at least 2"),
            (["--k=7"], "has 6 training images, fewer than --k=7; lower --k"),
            (["--features=edges"], "--features=edges is unknown"),
            (["--labels_file=x.csv"], "--labels_file is set by lg_tf.discover")]:
        proc = _discover(*common, f"--model_dir={out}", *args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
        assert not out.exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    proc = _discover(*common, f"--model_dir={foreign}", "--k=2")
    assert proc.returncode == 2 and "did not write (notes.txt)" in proc.stderr
    assert os.listdir(foreign) == ["notes.txt"]


def test_discover_resumes_refuses_other_settings_and_overwrites_only_its_files(tmp_path):
    data = _tree(tmp_path / "data", with_fine=False, train=4, test=2)
    out = tmp_path / "out"
    common = ["--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
              "--features=pixels", *TINY]
    assert _discover(*common, "--k=2").returncode == 0
    again = _discover(*common, "--k=2")
    assert again.returncode == 0, again.stderr
    other = _discover(*common, "--k=3")
    assert other.returncode == 2 and "holds a discovery with other settings (--k=2 -> 3)" in \
        other.stderr
    (out / "my_notes.txt").write_text("mine")
    replaced = _discover(*common, "--k=3", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert (out / "my_notes.txt").read_text() == "mine"
    clusters = json.loads((out / "clusters.json").read_text())
    assert [c["k"] for c in clusters["per_coarse"]] == [3, 3]


@pytest.mark.slow
def test_discover_train_compares_with_coarse_training_over_seeds(tmp_path):
    data = _tree(tmp_path / "data", with_fine=False, train=8, test=4)
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
                     "--features=penultimate", "--k=2", "--train", "--seeds=2",
                     "--steps_per_epoch=2", *TINY, timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "discover.json").read_text())
    assert summary["gain"]["n"] == 2 and summary["gain"]["low"] is not None
    assert len(summary["per_seed"]) == 2
    for seed in (0, 1):
        for run in ("coarse", "pseudo_fine"):
            assert (out / "runs" / run / f"seed_{seed}" / "export" / "saved_model.pb").exists()
    assert "Verdict:" in proc.stdout


# --------------------------------------------------------------------------- the pipeline

@pytest.mark.slow
def test_discovery_pipeline_on_mocked_cifar10(tmp_path):
    """pipelines.discovery end to end on TFDS mock data (random images and labels): CC, FC
    and the discovered runs train, k=auto reuses a fixed k's run when the labels agree, the
    report has a row per feature source and k, and untrained k are scored only."""
    from test_input_pipeline import mock_tfds

    from lg_tf.config import Config
    from pipelines import discovery
    from lg_tf.grid import Context
    base = Config(dataset="cifar10", data_dir=str(tmp_path / "data"), width=4, epochs=1,
                  batch_size=16, eval_batch_size=20, steps_per_epoch=2, lr_milestones=(1,))
    ctx = Context(out_dir=str(tmp_path / "out"), seeds=2)
    with mock_tfds(tmp_path, "cifar10", {"train": 60, "test": 20}):
        out = discovery.run(base, ctx, None, ["pixels", "penultimate"], ["2", "3"],
                            train_ks=["2"])
    report = open(out["report"]).read()
    assert "| cifar10 | pixels, k=2 | 2 |" in report
    assert "| cifar10 | penultimate, k=3 | 3 |" in report and "not trained" in report
    trained = [n for n in out["runs"] if "_lf-" in n]
    assert sorted(trained) == ["fine_lf-penultimate_k2", "fine_lf-pixels_k2"]
    assert all(len(out["runs"][n]) == 2 for n in trained)        # both seeds
    labels = tmp_path / "out" / "discovery" / "h-cifar10" / "seed_1" / "pixels_k3.csv"
    keys = [line.split(",")[0] for line in open(labels)][1:]
    assert len(set(keys)) == len(keys)                            # one row per image
    assert sum(k.startswith("train/") for k in keys) == 60 and any(
        k.startswith("test/") for k in keys)


def test_labels_file_on_the_embedded_data_changes_the_fingerprint(embedded_dir, tmp_path):
    from lg_tf.config import Config
    from lg_tf.data import datasets
    cfg = Config(dataset="embedded", data_dir=embedded_dir)
    data = datasets.prepare(cfg)
    h = data.hierarchy
    rows = ["path,coarse,fine"]
    for split, s in (("train", data.train), ("test", data.test)):
        for i, label in zip(s.index, s.labels):
            coarse = h.coarse_names[h.parent[label]]
            rows.append(f"{split}/{i},{coarse},{coarse}_{i % 2}")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    relabelled = datasets.prepare(Config(dataset="embedded", data_dir=embedded_dir,
                                         labels_file=str(path)))
    assert relabelled.hierarchy.num_fine == 8 and relabelled.hierarchy.num_coarse == 4
    parent = relabelled.hierarchy.parent_array()
    np.testing.assert_array_equal(h.parent_array()[data.test.labels],
                                  parent[relabelled.test.labels])      # same coarse classes
    assert relabelled.stats["fingerprint"] != data.stats["fingerprint"]
    # A pipeline's plan counts the images, not the labels file's (more) classes.
    planned = grid_lib.planned_work(Config(dataset="embedded", data_dir=embedded_dir,
                                         labels_file=str(path)))
    assert planned["train_images"] == len(data.train) == 12000


def test_overwrite_discards_runs_through_the_run_rules(tmp_path):
    """--overwrite of a discovery removes its runs' lg_tf files, never a user's file."""
    from lg_tf import discovery, run_dir
    out = tmp_path / "out"
    run = out / "runs" / "coarse" / "seed_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / run_dir.MARKER).write_text("{}")
    (run / "config.json").write_text("{}")
    other = out / "runs" / "pseudo_fine" / "seed_0"
    (other / "checkpoints").mkdir(parents=True)
    (other / run_dir.MARKER).write_text("{}")
    (run / "my_notes.txt").write_text("mine")
    (out / "seeds" / "seed_0").mkdir(parents=True)
    (out / "labels.csv").write_text("path,coarse,fine\n")
    discovery.discard(str(out))
    assert sorted(os.listdir(run)) == ["my_notes.txt"]
    assert not (out / "runs" / "pseudo_fine").exists()
    assert sorted(os.listdir(out)) == ["runs"]
