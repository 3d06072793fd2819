"""--features=backbone: a user's own network (a .keras file) as discovery's features."""

import json

import numpy as np
import pytest

from lg_tf import backbone, cluster_heads, discovery
from lg_tf.data.pipeline import ImageSpec
from lg_tf.data.split import Split
from lg_tf.errors import ConfigError, RunError
from test_discover_label_free import KINDS, _discover, _tree

SPEC = ImageSpec(32, "cifar", (0.5,) * 3, (0.5,) * 3)


def _save(model, path):
    model.save(str(path))
    return str(path)


def _left_half_colour(path, size=16):
    """A backbone whose output is a feature map: the left half of the image (pooled by
    lg_tf to the left half's mean colour), at its own input size."""
    import keras
    inputs = keras.Input((size, size, 3))
    return _save(keras.Model(inputs, keras.layers.Cropping2D(((0, 0), (0, size // 2)))(inputs)),
                 path)


def test_extract_resizes_to_the_input_size_and_pools_a_map_in_order(tmp_path):
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[:, :, :16] = (200, 10, 10)                  # left half red
    images[:, :, 16:] = (10, 10, 200)                  # right half blue
    images[2] = images[2, :, ::-1]                     # the third one the other way round
    model = backbone.load(_left_half_colour(tmp_path / "left.keras"))
    out = backbone.extract(model, Split(images, np.zeros(3, np.int32)), SPEC, batch_size=2)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out[:2], [[200, 10, 10]] * 2, atol=4)  # antialiased edge
    np.testing.assert_allclose(out[2], [10, 10, 200], atol=4)
    empty = backbone.extract(model, Split(images[:0], np.zeros(0, np.int32)), SPEC)
    assert empty.shape == (0, 3)


def test_a_backbone_s_agreement_never_supports_its_clusters():
    """Round 5: agreement 0.22-0.26 went with ARI 0.15-0.19 for a backbone's clusters."""
    assert cluster_heads.verdict(0.9, "views").startswith("supported by both views")
    assert cluster_heads.verdict(0.9, "backbone_views").startswith("unconfirmed: agreement 0.90")
    assert cluster_heads.verdict(0.13, "backbone_views").startswith("unconfirmed")
    assert cluster_heads.verdict(0.05, "backbone_views").startswith("NOT TO BE TRUSTED")


def test_the_features_of_an_lg_tf_network_load_in_a_fresh_process(tmp_path):
    """An lg_tf run's `features` layer saved as .keras (docs/discover.md) is a backbone."""
    import subprocess
    import sys

    import keras

    from lg_tf.models import preact_resnet
    net = preact_resnet.preact_resnet18(3, width=4)
    path = _save(keras.Model(net.inputs, net.get_layer("features").output),
                 tmp_path / "run.keras")
    code = ("import numpy as np; from lg_tf import backbone; m = backbone.load(%r); "
            "print(m(np.zeros((2, 32, 32, 3), 'float32')).shape)" % path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("(2, 32)")


def test_a_backbone_is_loaded_once_while_its_file_is_unchanged(tmp_path):
    import os
    path = _left_half_colour(tmp_path / "net.keras")
    first = backbone.load(path)
    assert backbone.load(path) is first              # the flags' check and the feature pass
    _left_half_colour(path, size=32)
    os.utime(path, ns=(1, 1))                        # a new file, even within one mtime tick
    second = backbone.load(path)
    assert second is not first and tuple(second.inputs[0].shape[1:3]) == (32, 32)


def test_bad_backbones_are_refused_in_one_sentence_that_says_what_to_give(tmp_path):
    import keras
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    (tmp_path / "folder.keras").mkdir()
    flat = keras.Input((12,))
    two = keras.Input((8, 8, 3))
    any_size = keras.Input((None, None, 3))        # reshaped for 8x8 only: fails on 32x32
    cases = [("", "--features=backbone needs --backbone=FILE"),
             (str(tmp_path / "model.h5"), "is not a .keras file"),
             (str(tmp_path / "missing.keras"), "does not exist"),
             (str(tmp_path / "folder.keras"), "is a folder"),
             (str(tmp_path / "broken.keras"), "could not be loaded by Keras"),
             (_save(keras.Model(flat, keras.layers.Dense(2)(flat)), tmp_path / "flat.keras"),
              "must be a functional model taking one batch of RGB images"),
             (_save(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "unbuilt.keras"),
              "must be a functional model taking one batch of RGB images"),
             (_save(keras.Model(two, [keras.layers.Flatten()(two)] * 2),
                    tmp_path / "two.keras"), "must give one feature vector"),
             (_save(keras.Model(any_size, keras.layers.Reshape((8 * 8 * 3,))(any_size)),
                    tmp_path / "fixed.keras"), "failed on two blank images")]
    for path, message in cases:
        with pytest.raises(ConfigError, match=message) as caught:
            discovery.Options("backbone", backbone=path).check()
        assert "\n" not in str(caught.value)
    with pytest.raises(RunError, match="applies to --features=backbone only"):
        discovery.Options("simclr", backbone=str(tmp_path / "left.keras")).check()


def test_cli_backbone_features_find_the_groups_the_network_sees(tmp_path):
    """A backbone that sees colour recovers the colour groups of a coarse-only tree; the
    labels depend on the file's contents, so another file in the same place is refused."""
    import keras
    data = _tree(tmp_path / "data")
    inputs = keras.Input((None, None, 3))
    net = _save(keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs)),
                tmp_path / "colour.keras")
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}", "--k=2",
                     "--features=backbone", f"--backbone={net}", "--patch_centroids=8",
                     "--image_size=32")
    assert proc.returncode == 0, proc.stderr
    assert "backbone features: " in proc.stdout and "SimCLR features (" not in proc.stdout
    assert proc.stderr.count("\n") < 3, proc.stderr     # TensorFlow's start-up lines kept off
    assert "second view for the agreement signal: patch features" in proc.stdout
    rows = [r.split(",") for r in (out / "labels.csv").read_text().splitlines()[1:]]
    for coarse, kinds in KINDS.items():  # each pseudo-fine class is one colour
        found = {}
        for path, c, fine in rows:
            if c == coarse:
                found.setdefault(fine, set()).add(path.split("/")[-1].split("_")[0])
        assert sorted(map(sorted, found.values())) == sorted([k] for k in kinds)
    verdicts = [c["verdict"] for c in json.loads((out / "clusters.json").read_text())[
        "per_coarse"]]
    assert all(v.startswith(("NOT TO BE TRUSTED", "unconfirmed")) for v in verdicts)
    assert "never counts as support" in (out / "discover.md").read_text()
    settings = json.loads((out / "lg_tf_discover.json").read_text())["settings"]
    assert len(settings["backbone_sha256"]) == 64 and "ssl_steps" not in settings
    cached = np.load(out / "seeds" / "seed_0" / "features_backbone.npz")
    assert cached["train"].shape == (40, 3) and cached["test"].shape == (8, 3)
    assert cached["check_train"].shape == cached["check_train_mirror"].shape == (40, 32)

    _left_half_colour(net, size=32)   # another network under the same name
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}", "--k=2",
                     "--features=backbone", f"--backbone={net}", "--patch_centroids=8",
                     "--image_size=32")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "backbone" in last and "--overwrite" in last, last


def test_cli_refuses_a_missing_backbone_before_writing_anything(tmp_path):
    data = _tree(tmp_path / "data", train=2, test=1)
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
                     "--features=backbone", f"--backbone={tmp_path / 'nets' / 'b0.keras'}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "b0.keras does not exist" in lines[0], proc.stderr
    assert not out.exists()


def test_the_discovery_pipeline_still_compares_the_coarse_run_sources_by_default():
    """A new --features source must not enter pipelines.discovery's default comparison
    (backbone needs a file the pipeline has no flag for)."""
    import inspect

    from pipelines import discovery as pipeline
    default = inspect.signature(pipeline.run).parameters["sources"].default
    assert tuple(default) == ("penultimate", "block", "pixels")
    assert pipeline.EXTRA_FLAGS["sources"][1] == list(default)
    from lg_tf import config as config_lib
    base = config_lib.Config(dataset="embedded")
    with pytest.raises(Exception, match="--sources=backbone is not compared here") as caught:
        pipeline.check(base, ["penultimate", "backbone"], ["2"])
    assert type(caught.value).__name__ == "PipelineError"
