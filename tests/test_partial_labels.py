"""Issue 23: partial fine labels: the mixed loss, the data paths and the advisor's curve."""

import numpy as np
import pytest

from lg_tf import losses

# 2 coarse classes: fine 0, 1 -> coarse 0; fine 2 -> coarse 1 (F = 3, C = 2).
PARENT = [0, 0, 1]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 1.0, 1.0]], np.float32)
P = _softmax(LOGITS.astype(np.float64))


def _loss(labels, logits=LOGITS):
    fn = losses.PartialFineCrossEntropy(PARENT, reduction=None)
    return np.asarray(fn(np.asarray(labels), logits))


def test_fine_labels_give_the_fine_cross_entropy():
    np.testing.assert_allclose(_loss([0, 2, 1]), -np.log([P[0, 0], P[1, 2], P[2, 1]]),
                               rtol=1e-5)


def test_coarse_only_labels_give_minus_log_of_the_summed_fine_probabilities():
    # label F + c: coarse class c known, fine unknown; F = 3
    np.testing.assert_allclose(
        _loss([3, 4, 3]),
        -np.log([P[0, 0] + P[0, 1], P[1, 2], P[2, 0] + P[2, 1]]), rtol=1e-5)


def test_a_mixed_batch_takes_each_rows_own_term():
    np.testing.assert_allclose(_loss([1, 4, 3]),
                               -np.log([P[0, 1], P[1, 2], P[2, 0] + P[2, 1]]), rtol=1e-5)


def test_all_fine_batch_equals_keras_sparse_cross_entropy():
    import keras
    labels = np.array([0, 2, 1])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, LOGITS)
    mixed = losses.PartialFineCrossEntropy(PARENT)(labels, LOGITS)
    assert float(mixed) == pytest.approx(float(plain), rel=1e-5)


def test_confident_wrong_coarse_prediction_stays_finite():
    logits = np.array([[-200.0, -200.0, 200.0]], np.float32)
    value = _loss([3], logits)
    # -log(2 e^-200 / e^200) = 400 - log 2
    assert np.isfinite(value).all() and value[0] == pytest.approx(400.0 - np.log(2), rel=1e-5)


# --------------------------------------------------------------------------- label surgery

def test_partial_fine_labels_keeps_a_fixed_share_of_each_fine_class():
    from lg_tf.data import pipeline
    parent = np.array([0, 0, 1])
    labels = np.repeat([0, 1, 2], 20)
    half = pipeline.partial_fine_labels(labels, parent, 0.5, seed=3)
    for c in range(3):
        assert np.sum(half == c) == 10                      # int(20 * 0.5) keep the fine label
    assert set(half[labels == 2]) == {2, 3 + 1}             # the rest: coarse-only F + parent
    assert set(half[labels == 0]) == {0, 3 + 0}
    # a larger q keeps a superset of a smaller q's fine labels; q = 1 changes nothing
    quarter = pipeline.partial_fine_labels(labels, parent, 0.25, seed=3)
    assert np.all(half[quarter < 3] == quarter[quarter < 3])
    np.testing.assert_array_equal(pipeline.partial_fine_labels(labels, parent, 1.0, 3), labels)
    # q = 0: every image keeps only its coarse label (training on the coarse marginal)
    np.testing.assert_array_equal(pipeline.partial_fine_labels(labels, parent, 0.0, 3),
                                  3 + parent[labels])


# --------------------------------------------------------------------------- metrics

def test_fine_metrics_skip_coarse_only_labels_and_coarse_ones_count_them():
    from lg_tf import metrics
    logits = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]], np.float32)
    labels = np.array([0, 0, 3 + 1, 3 + 0])   # fine 0 right, fine 0 wrong (sibling), 2 coarse-only
    fine = metrics.FineAccuracy(3)
    fine.update_state(labels, logits)
    assert float(fine.result()) == pytest.approx(0.5)          # of the 2 fine-labelled
    coarse = metrics.CoarseAccuracy(PARENT)
    coarse.update_state(labels, logits)
    assert float(coarse.result()) == pytest.approx(1.0)        # all 4 right coarsely
    confusion = metrics.ConfusionMatrix(3)
    confusion.update_state(labels, logits)
    assert np.asarray(confusion.result()).tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    sibling = metrics.SiblingMistakes(PARENT)
    sibling.update_state(labels, logits)
    assert float(sibling.result()) == pytest.approx(1.0)       # the one fine mistake


# --------------------------------------------------------------------------- data

def _tree(root, loose=None, classes=None, split=True):
    """root/{train,test}/<coarse>/<fine>/ with 4 PNGs per fine class, and `loose` images
    ({coarse: n}) directly in train/<coarse>/."""
    from test_data_identity import add_images
    classes = classes or {"animal": ["cat", "dog"], "vehicle": ["bus", "car"]}
    for s in ("train", "test") if split else ("",):
        for i, (coarse, fines) in enumerate(classes.items()):
            for j, fine in enumerate(fines):
                add_images(root / s / coarse / fine, 4, seed=10 * i + j)
    for k, (coarse, n) in enumerate((loose or {}).items()):
        d = root / "train" / coarse
        d.mkdir(parents=True, exist_ok=True)
        from PIL import Image
        rng = np.random.default_rng(100 + k)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
                d / f"loose_{i}.png")
    return root


def test_a_mixed_folder_gives_coarse_only_training_images(tmp_path):
    from lg_tf.config import Config
    from lg_tf.data import datasets
    root = _tree(tmp_path / "d", loose={"animal": 3, "vehicle": 2})
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root)))
    h = data.hierarchy
    assert h.fine_names == ("cat", "dog", "bus", "car")
    train = data.train.labels
    assert np.sum(train < 4) == 16
    assert np.sum(train == 4 + h.coarse_names.index("animal")) == 3
    assert np.sum(train == 4 + h.coarse_names.index("vehicle")) == 2
    assert data.stats["train_fine_labelled"] == 16 and data.stats["train_coarse_only"] == 5
    assert np.all(data.test.labels < 4)
    # the loose images are data: adding one changes the fingerprint
    before = data.stats["fingerprint"]
    _tree(tmp_path / "d", loose={"animal": 4})
    assert datasets.fingerprint(Config(dataset="folder", data_dir=str(root))) != before


def test_fine_label_fraction_on_full_labels(tmp_path):
    from lg_tf.config import Config
    from lg_tf.data import datasets
    root = _tree(tmp_path / "d")
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root),
                                   fine_label_fraction=0.5))
    assert data.stats["train_fine_labelled"] == 8 and data.stats["train_coarse_only"] == 8
    assert data.stats["train_per_fine_class"] == [2, 2, 2, 2]


@pytest.mark.parametrize("case, match", [
    ("coarse_without_fine", "has no fine-class subfolders while other coarse classes"),
    ("fine_named_as_coarse", "has the name of a coarse class"),
    ("same_image_twice", "is the same image as"),
    ("q_with_loose", "--fine_label_fraction=0.5 would leave out fine labels"),
    ("noise_with_loose", "--label_noise=0.1 resamples fine labels"),
    ("hxe_with_loose", "--granularity=hxe needs every fine label"),
])
def test_partial_label_bad_inputs_are_one_sentence(tmp_path, case, match):
    import shutil

    from lg_tf.config import Config
    from lg_tf.data import datasets
    from lg_tf.errors import LgTfError
    root = tmp_path / "d"
    flags = {}
    if case == "coarse_without_fine":
        _tree(root)
        for s in ("train", "test"):
            (root / s / "plant").mkdir()
            _tree(tmp_path / "x", classes={"plant": ["fern"]})
            shutil.copy(next((tmp_path / "x" / s / "plant" / "fern").iterdir()),
                        root / s / "plant" / "a.png")
    elif case == "fine_named_as_coarse":
        _tree(root, classes={"animal": ["cat", "vehicle"], "vehicle": ["bus", "car"]})
    elif case == "same_image_twice":
        _tree(root)
        shutil.copy(root / "train" / "vehicle" / "bus" / "img_0.png",
                    root / "train" / "animal" / "copy.png")
    else:
        _tree(root, loose={"animal": 2})
        flags = {"q_with_loose": dict(fine_label_fraction=0.5),
                 "noise_with_loose": dict(label_noise=0.1),
                 "hxe_with_loose": dict(granularity="hxe")}[case]
    with pytest.raises(LgTfError, match=match):
        datasets.prepare(Config(dataset="folder", data_dir=str(root), **flags))


def test_labels_file_with_empty_fine_cells(tmp_path):
    from lg_tf.config import Config
    from lg_tf.data import datasets
    from lg_tf.errors import DataError
    root = _tree(tmp_path / "d")
    rows = ["path,coarse,fine"]
    for split in ("train", "test"):
        for coarse, fines in {"animal": ["cat", "dog"], "vehicle": ["bus", "car"]}.items():
            for fine in fines:
                for i in range(4):
                    keep = split == "test" or i < 2
                    rows.append(f"{split}/{coarse}/{fine}/img_{i}.png,{coarse},"
                                f"{fine if keep else ''}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    data = datasets.prepare(Config(dataset="folder", data_dir=str(root),
                                   labels_file=str(labels)))
    assert data.stats["train_fine_labelled"] == 8 and data.stats["train_coarse_only"] == 8
    with pytest.raises(DataError, match="would leave out fine labels"):
        datasets.prepare(Config(dataset="folder", data_dir=str(root), labels_file=str(labels),
                                fine_label_fraction=0.5))


def test_fine_label_fraction_flag_is_checked_before_anything():
    from lg_tf.config import Config, validate
    from lg_tf.errors import ConfigError
    for value in (-0.1, 1.5):
        with pytest.raises(ConfigError, match=r"--fine_label_fraction=.* must be in \[0, 1\]"):
            validate(Config(fine_label_fraction=value))
    with pytest.raises(ConfigError, match="coarse training uses no fine label"):
        validate(Config(fine_label_fraction=0.5, granularity="coarse"))


def test_a_run_on_partial_labels_trains_and_records_the_counts(tmp_path, tiny_config):
    import dataclasses

    from lg_tf import grid, train_lib
    cfg = dataclasses.replace(tiny_config, fine_label_fraction=0.25)
    assert grid.run_name(cfg) == "fine_q0.25"
    results = train_lib.train_and_evaluate(cfg, str(tmp_path / "run"))
    data = results["data"]
    assert data["train_fine_labelled"] == 12 * 250          # int(1000 * 0.25) per fine class
    assert data["train_coarse_only"] == 12 * 750
    assert results.model.loss.name == "partial_fine_crossentropy"
    assert 0 <= results["final"]["test/coarse_accuracy"] <= 1
    assert results["final"].get("test/acr") is not None or \
        results["final"].get("test/acr_undefined_reason")


# --------------------------------------------------------------------------- the advisor

def _fake(seed, acc, q=None, labelled=None):
    return {"config": {"seed": seed}, "final": {"test/coarse_accuracy": acc},
            "data": {"train_examples": 100, "train_fine_labelled": labelled},
            "hierarchy": {}, "epochs": [], "acr_breakdown": {}}


def test_advisor_curve_and_the_half_and_90_percent_points(tmp_path):
    from lg_tf import advice
    from lg_tf.config import Config
    specs = advice.grid_specs(Config(dataset="embedded"), [0.2], [0, 0.1, 0.5, 1])
    assert [s.name for s in specs] == ["coarse_r0.2", "fine_r0.2", "fine_r0.2_q0",
                                       "fine_r0.2_q0.1", "fine_r0.2_q0.5"]
    # CC 80; the gain over CC per seed: q=0: 0, q=0.1: +2, q=0.5: +3.6, q=1: +4 (+-0.5 seeds)
    gains = {0.0: 0.0, 0.1: 2.0, 0.5: 3.6, 1.0: 4.0}
    runs = {}
    for s in specs:
        q = 1.0 if s.tag["series"] == "FC" else s.tag.get("q")
        base = 0.80 if s.tag["series"] == "CC" else 0.80 + gains[q] / 100
        runs[s.name] = [_fake(k, base + (0.005 * (k - 1) if q else 0.0), labelled=50)
                        for k in range(3)]
    out = advice.analyse(specs, runs)
    [curve] = out["partial"]
    assert [p["q"] for p in curve["points"]] == [0.0, 0.1, 0.5, 1.0]
    assert curve["full_gain_detectable"]
    assert curve["points"][1]["gain"]["mean"] == pytest.approx(2.0)
    assert curve["points"][1]["share"] == pytest.approx(0.5)
    # half of +4 = +2 is reached exactly at q = 0.1; 90% = 3.6 exactly at q = 0.5
    assert curve["half"]["q"] == pytest.approx(0.1) and not curve["half"]["at_most"]
    assert curve["ninety"]["q"] == pytest.approx(0.5)
    text = "\n".join(advice.partial_sentences(curve))
    assert "labelling 10% of the images finely at 20% of the training data: +2.0 [" in text
    assert "50% of the full gain" in text
    assert "half of the full gain needs about 10% of the images labelled finely" in text
    md = advice.markdown({**out, "command": "x"}, [])
    assert "## How many images must be labelled finely? (20% of the training data)" in md
    path = advice.write(str(tmp_path), {**out, "command": "x"})
    assert (tmp_path / "gain_by_fine_share_r0.2.png").stat().st_size > 1000
    assert "gain_by_fine_share_r0.2.png" in open(path).read()


def test_advisor_curve_says_so_when_fine_labels_do_not_help():
    from lg_tf import advice
    from lg_tf.config import Config
    specs = advice.grid_specs(Config(dataset="embedded"), [1.0], [0.5, 1])
    runs = {s.name: [_fake(k, 0.8 + 0.01 * ((k + (s.tag["series"] == "CC")) % 3))
                     for k in range(3)] for s in specs}
    [curve] = advice.analyse(specs, runs)["partial"]
    assert not curve["full_gain_detectable"] and "half" not in curve
    assert "do not detectably help here" in "\n".join(advice.partial_sentences(curve))
