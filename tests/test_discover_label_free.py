"""lg_tf.discover's label-free features (patches, simclr), SCAN clustering heads and the
agreement signal, on generated data only (tiny sizes)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lg_tf import cluster_heads, clustering, discovery, patch_features, simclr


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


# --------------------------------------------------------------------------- patch features

def test_patch_features_have_4k_dims_and_are_deterministic_for_a_seed():
    x = _images(12)
    a = patch_features.PatchFeatures(centroids=8, n_patches=600, seed=0).fit(x)
    f = a.transform(x)
    assert f.shape == (12, 32) and f.dtype == np.float32 and (f >= 0).all()
    b = patch_features.PatchFeatures(centroids=8, n_patches=600, seed=0).fit(x)
    np.testing.assert_array_equal(f, b.transform(x))
    c = patch_features.PatchFeatures(centroids=8, n_patches=600, seed=1).fit(x)
    assert not np.allclose(f, c.transform(x))
    both = patch_features.image_features(a, x[:5])
    assert both["features"].shape == both["mirror"].shape == (5, 32)
    np.testing.assert_allclose(both["features"], np.sqrt(f[:5]), rtol=1e-6)
    # the mirror image of a mirror image is the image
    np.testing.assert_allclose(patch_features.image_features(a, x[:5, :, ::-1])["mirror"],
                               both["features"], rtol=1e-5, atol=1e-5)
    assert a.transform(x[:0]).shape == (0, 32)
    with pytest.raises(ValueError, match=r"\[n, 32, 32, 3\]"):
        a.transform(np.zeros((2, 16, 16, 3), np.uint8))


# --------------------------------------------------------------------------- agreement

def test_agreement_is_one_for_identical_clusterings_and_near_zero_for_independent_ones():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3000)
    renamed = (labels + 1) % 3                      # the same split, other cluster names
    assert cluster_heads.agreement([labels, labels, renamed]) == pytest.approx(1.0)
    independent = [rng.integers(0, 3, 3000) for _ in range(4)]
    assert abs(cluster_heads.agreement(independent)) < 0.01


def test_verdict_says_plainly_when_clusters_are_not_to_be_trusted():
    low = cluster_heads.verdict(cluster_heads.DOUBT - 0.01)
    assert low.startswith("NOT TO BE TRUSTED")
    assert cluster_heads.verdict(cluster_heads.DOUBT).startswith("weak")
    assert cluster_heads.verdict(cluster_heads.TRUST).startswith("reproducible")
    assert "not correct" in cluster_heads.verdict(0.99)


def _planted(seed=0, n=40, spread=0.05):
    """Coarse 0: 3 separated groups (triangle), coarse 1: 2 groups, in 2-D; with the
    'mirror image' features a slightly perturbed copy."""
    rng = np.random.default_rng(seed)
    tri = np.array([[np.cos(a), np.sin(a)] for a in 2 * np.pi * np.arange(3) / 3])
    pair = np.array([[1.0, 0.0], [-1.0, 0.0]])
    x, fine = [], []
    for f, c in enumerate(list(tri) + list(pair)):
        x.append(c + spread * rng.standard_normal((n, 2)))
        fine.append(np.full(n, f))
    x, fine = np.concatenate(x), np.concatenate(fine)
    coarse = (fine >= 3).astype(int)
    return x, x + 0.02 * rng.standard_normal(x.shape), coarse, fine


def test_heads_with_k_auto_find_the_planted_number_of_groups():
    x, mirror, coarse, fine = _planted()
    result = clustering.discover(x, coarse, x[::7], coarse[::7], ["a", "b"], "auto", seed=0,
                                 k_max=4, method="heads", train_mirror=mirror)
    assert [c.k for c in result.per_coarse] == [3, 2]
    assert clustering.agreement(result.train, fine)["ari"] > 0.9
    np.testing.assert_array_equal(result.test, result.train[::7])   # same images, same class
    for c in result.per_coarse:
        assert set(c.agreement) == {2, 3, 4}
        assert c.agreement[c.k] == max(c.agreement.values()) >= cluster_heads.TRUST
        assert c.verdict.startswith("reproducible") and c.silhouette == {}
    assert result.names == ["a_1", "a_2", "a_3", "b_1", "b_2"]


def test_views_agreement_supports_a_split_both_views_show_and_distrusts_one_they_do_not():
    x, mirror, coarse, fine = _planted()
    rng = np.random.default_rng(1)
    same = x[:, ::-1] * 3 + 0.02 * rng.standard_normal(x.shape)  # another view, same groups
    noise = rng.standard_normal((len(x), 6))                      # a view without the groups
    args = (x, coarse, x[:4], coarse[:4], ["a", "b"])
    agreeing = clustering.discover(*args, "auto", seed=0, k_max=4, method="heads",
                                   train_mirror=mirror, check={"features": same})
    assert agreeing.per_coarse[0].k == 3
    for c in agreeing.per_coarse:
        assert c.agreement[c.k] > 0.6 and c.verdict.startswith("supported by both views")
        assert "no guarantee" in c.verdict and "look at the previews" in c.verdict
    unrelated = clustering.discover(*args, 2, seed=0, method="heads", train_mirror=mirror,
                                    check={"features": noise})
    for c in unrelated.per_coarse:
        assert abs(c.agreement[2]) < cluster_heads.THRESHOLDS["views"][0]
        assert c.verdict.startswith("NOT TO BE TRUSTED: the patch and SimCLR views disagree")


def test_kmeans_clusters_judged_by_a_second_view_of_heads():
    x, mirror, coarse, fine = _planted()
    rng = np.random.default_rng(1)
    centres = np.stack([x[fine == f].mean(0) for f in range(fine.max() + 1)])
    view = centres[fine][:, ::-1] * 3       # the same groups, noise of its own
    same = {"features": view + 0.15 * rng.standard_normal(x.shape),
            "mirror": view + 0.15 * rng.standard_normal(x.shape)}
    args = (x, coarse, x[:4], coarse[:4], ["a", "b"])
    agreeing = clustering.discover(*args, "auto", seed=0, k_max=4, check=same)
    assert [c.k for c in agreeing.per_coarse] == [3, 2]
    assert clustering.agreement(agreeing.train, fine)["ari"] > 0.9
    for c in agreeing.per_coarse:
        assert set(c.agreement) == {2, 3, 4} and c.silhouette == {}
        assert c.agreement[c.k] > 0.6 and c.verdict.startswith("supported by both views")
    noise = {"features": rng.standard_normal((len(x), 6)), "mirror": None}
    for c in clustering.discover(*args, 2, seed=0, check=noise).per_coarse:
        assert abs(c.agreement[2]) < cluster_heads.THRESHOLDS["views"][0]
        assert c.verdict.startswith("NOT TO BE TRUSTED")


def test_kmeans_features_never_get_a_supporting_verdict():
    x, _, coarse, _ = _planted()
    result = clustering.discover(x, coarse, x, coarse, ["a", "b"], 2, seed=0)
    for c in result.per_coarse:
        assert 0.0 <= c.agreement[2] <= 1.0
        assert c.verdict.startswith("k-means on these features")


def test_report_warns_when_clusters_are_not_to_be_trusted_and_drops_the_silhouette():
    per = [{"coarse": "a", "k": 2, "names": ["a_1", "a_2"], "sizes": [5, 5],
            "silhouette": {}, "agreement": {"2": 0.05}, "verdict": cluster_heads.verdict(0.05)},
           {"coarse": "b", "k": 2, "names": ["b_1", "b_2"], "sizes": [6, 4],
            "silhouette": {}, "agreement": {"2": 0.8}, "verdict": cluster_heads.verdict(0.8)}]
    summary = {"settings": {"source": "patches", "k": "2"}, "stopped": None,
               "per_seed": [{"seed": 0, "clusters": {"per_coarse": per}}]}
    text = discovery.report_text(summary)
    assert "| a | 2 | a_1 (5), a_2 (5) | 0.050 | NOT TO BE TRUSTED" in text
    assert "WARNING: the clusters of a are NOT TO BE TRUSTED" in text
    assert "silhouette" not in text.lower()


# --------------------------------------------------------------------------- the CLI

def _png(path, colour, stripes, seed):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    image = np.clip(np.array(colour) + rng.integers(-12, 13, (32, 32, 3)), 0, 255)
    if stripes:
        image[::4] = 255 - image[::4]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image.astype(np.uint8)).numpy())


KINDS = {"warm": {"red": ((220, 30, 30), True), "yellow": ((230, 220, 40), False)},
         "cool": {"blue": ((30, 40, 220), True), "green": ((30, 200, 60), False)}}


def _tree(root, train=10, test=2):
    for split, n in (("train", train), ("test", test)):
        for coarse, kinds in KINDS.items():
            for kind, (colour, stripes) in kinds.items():
                for i in range(n):
                    _png(root / split / coarse / f"{kind}_{i}.png", colour, stripes, i)
    return str(root)


def _discover(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lg_tf.discover", *args],
                          capture_output=True, text=True, timeout=timeout)


def _check_outputs(out, proc):
    clusters = json.loads((out / "clusters.json").read_text())
    report = (out / "discover.md").read_text()
    assert "| agreement | verdict |" in report and "silhouette" not in report.lower()
    # label-free features explain their agreement; k-means on SimCLR features says it is
    # reproducibility only
    assert ("Agreement (label-free)" in report
            or "It shows only that k-means is reproducible" in report)
    untrusted = []
    for c in clusters["per_coarse"]:
        assert c["k"] == 2 and set(c["agreement"]) == {"2"} and c["verdict"]
        assert f"agreement {c['agreement']['2']:.3f}" in proc.stdout      # the log line
        if c["verdict"].startswith("NOT TO BE TRUSTED"):
            untrusted.append(c["coarse"])
    if untrusted:
        warning = f"WARNING: the clusters of {', '.join(untrusted)} are NOT TO BE TRUSTED"
        assert warning in proc.stdout and warning in report
    rows = (out / "labels.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * (10 + 2)
    return clusters


def test_cli_patches_reports_agreement(tmp_path):
    data = _tree(tmp_path / "data")
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}", "--k=2",
                     "--features=patches", "--patch_centroids=8", "--ssl_steps=1",
                     "--image_size=32")
    assert proc.returncode == 0, proc.stderr
    assert "patch features: k-means with 8 centroids" in proc.stdout
    assert ("second view for the agreement signal: SimCLR features (1 steps = 1 epochs of 40 "
            "images)") in proc.stdout
    assert "simclr epoch 1/1" in proc.stdout and "ETA" in proc.stdout
    clusters = _check_outputs(out, proc)
    assert all("views" in c["verdict"] or not c["verdict"].startswith("NOT")
               for c in clusters["per_coarse"])
    cached = np.load(out / "seeds" / "seed_0" / "features_patches.npz")
    assert cached["train"].shape == cached["train_mirror"].shape == (40, 32)
    assert cached["check_train"].shape == (40, 128)
    assert sorted(os.listdir(out / "previews")) == ["cool.png", "warm.png"]
    settings = json.loads((out / "lg_tf_discover.json").read_text())["settings"]
    assert settings["patch_centroids"] == 8 and settings["agreement"] == "views"

    # --agreement=heads: no second view, the heads' agreement instead
    heads = tmp_path / "heads"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={heads}",
                     "--k=2", "--features=patches", "--patch_centroids=8", "--agreement=heads",
                     "--image_size=32")
    assert proc.returncode == 0, proc.stderr
    assert "simclr" not in proc.stdout
    _check_outputs(heads, proc)
    assert "check_train" not in np.load(heads / "seeds" / "seed_0" / "features_patches.npz")


def test_cli_simclr_is_the_default_trains_its_steps_with_progress_and_eta(tmp_path):
    data = _tree(tmp_path / "data")
    out = tmp_path / "out"
    proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}", "--k=2",
                     "--ssl_steps=2", "--patch_centroids=8",
                     "--image_size=32")
    assert proc.returncode == 0, proc.stderr
    assert "SimCLR features (2 steps = 2 epochs of 40 images)" in proc.stdout
    assert "simclr epoch 1/2" in proc.stdout and "simclr epoch 2/2" in proc.stdout
    assert "ETA 0:00:00" in proc.stdout            # the last epoch's line
    # the second view of --agreement=views (the default): patch features, SCAN heads
    assert "second view for the agreement signal: patch features" in proc.stdout
    clusters = _check_outputs(out, proc)
    assert all(c["verdict"].startswith(("NOT TO BE TRUSTED: the patch and SimCLR views",
                                        "weak", "supported by both views"))
               for c in clusters["per_coarse"])
    cached = np.load(out / "seeds" / "seed_0" / "features_simclr.npz")
    assert cached["train"].shape == (40, 128) and cached["test"].shape == (8, 128)
    assert cached["check_train"].shape == cached["check_train_mirror"].shape == (40, 32)
    settings = json.loads((out / "lg_tf_discover.json").read_text())["settings"]
    assert settings["source"] == "simclr"
    assert settings["ssl_steps"] == 2 and settings["agreement"] == "views"


def test_simclr_budget_is_steps_turned_into_whole_epochs():
    assert simclr.epochs_for(4000) == 129          # 31 steps of 128 an epoch
    assert simclr.epochs_for(10000) == 51          # 78 steps an epoch
    assert simclr.epochs_for(40, steps=2) == 2     # one step (of 40) an epoch
    assert simclr.epochs_for(40, steps=0) == 1


def test_cli_refuses_bad_label_free_settings_in_one_sentence(tmp_path):
    data = _tree(tmp_path / "data", train=2, test=1)
    out = tmp_path / "out"
    for args, message in [(["--patch_centroids=1"], "--patch_centroids=1 must be at least 2"),
                          (["--features=simclr", "--ssl_steps=0"],
                           "--ssl_steps=0 must be at least 1"),
                          (["--agreement=votes"], "--agreement=votes is unknown")]:
        proc = _discover("--dataset=folder", f"--data_dir={data}", f"--model_dir={out}",
                         *args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
        assert not out.exists()
