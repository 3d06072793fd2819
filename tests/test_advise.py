"""Issue 11: the embedded groupings, pipelines.groupings' statistics and `lg_tf.advise`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lg_tf import grid as grid_lib
from lg_tf import advice, hierarchy as hier_lib
from lg_tf.config import Config
from pipelines import groupings

SEMANTIC = {"round", "angular", "striped", "tiled"}


def _semantic_group(fine: str) -> str:
    h = hier_lib.named("shapes")
    return h.coarse_names[h.parent[h.fine_names.index(fine)]]


@pytest.mark.parametrize("name", hier_lib.EMBEDDED_GROUPINGS)
def test_every_grouping_is_four_coarse_classes_of_three(name):
    h = hier_lib.named(name)
    assert h.fine_names == hier_lib.named("shapes").fine_names
    assert sorted(np.bincount(h.parent).tolist()) == [3, 3, 3, 3]


def test_groupings_range_from_semantic_to_mixed():
    def groups_per_coarse(name):
        h = hier_lib.named(name)
        return sorted(len({_semantic_group(h.fine_names[k]) for k in range(12)
                           if h.parent[k] == c}) for c in range(4))
    assert groups_per_coarse("shapes") == [1, 1, 1, 1]
    assert groups_per_coarse("shapes_half") == [2, 2, 2, 2]
    assert groups_per_coarse("shapes_mixed") == [3, 3, 3, 3]
    assert groups_per_coarse("shapes_mixed_b") == [3, 3, 3, 3]
    # The random partitions are fixed: the same every time.
    assert hier_lib.named("shapes_random0").parent == hier_lib.named("shapes_random0").parent


def _fake(cfg_json, acc, acr=None, recalls=None, breakdown=None):
    final = {"test/coarse_accuracy": acc}
    if acr is not None:
        final["test/acr"] = acr
    for name, v in (recalls or {}).items():
        final[f"test/recall/{name}"] = v
    return {"config": cfg_json, "final": final, "acr_breakdown": breakdown or {},
            "hierarchy": {}, "epochs": []}


def test_groupings_report_pairs_seeds_and_correlates(tmp_path):
    base = Config(dataset="embedded")
    names = ["shapes", "shapes_half", "shapes_mixed"]
    specs = groupings.grid(base, names)
    # Hand-made results: the gain grows with ACR; seeds pair by their seed number.
    gains = {"shapes": [-1.0, -2.0, -3.0], "shapes_half": [1.0, 2.0, 3.0],
             "shapes_mixed": [4.0, 5.0, 6.0]}
    acrs = {"shapes": 0.2, "shapes_half": 1.0, "shapes_mixed": 3.0}
    runs = {}
    for s in specs:
        name, series = s.tag["grouping"], s.tag["series"]
        runs[s.name] = [
            _fake({**base.to_json(), "seed": seed, "granularity": s.granularity},
                  0.80 + (gains[name][seed] / 100 if series == "FC" else 0.0),
                  acrs[name] if series == "FC" else None)
            for seed in range(3)]
    rows = groupings.summarise(specs, runs)
    by = {r["grouping"]: r for r in rows}
    assert by["shapes_half"]["gain"].mean == pytest.approx(2.0)
    # d = [1, 2, 3]: s = 1, t(0.975, 2) = 4.302652729911275 -> half-width 2.484
    assert by["shapes_half"]["gain"].high - 2.0 == pytest.approx(4.302652729911275 / 3 ** 0.5)
    text, corr = groupings.correlation_text(rows)
    assert corr["spearman"] == pytest.approx(1.0) and "paper's Table VI" in text
    path = groupings.write(base, grid_lib.Context(out_dir=str(tmp_path)), specs, runs)
    report = open(path).read()
    assert "Spearman ρ = +1.00" in report and "fine labels help" in report
    assert os.path.exists(tmp_path / "groupings_acr_vs_gain.png")


def test_groupings_refuses_other_datasets_and_unknown_names():
    with pytest.raises(grid_lib.PipelineError, match="--dataset=embedded"):
        groupings.grid(Config(dataset="cifar10"))
    with pytest.raises(grid_lib.PipelineError, match="unknown grouping"):
        groupings.grid(Config(dataset="embedded"), ["shapes", "nope"])


def test_advice_analysis_on_hand_made_results(tmp_path):
    base = Config(dataset="embedded")
    specs = advice.grid_specs(base, [0.25, 1.0])
    cc = {0.25: [0.70, 0.71, 0.72], 1.0: [0.80, 0.80, 0.80]}
    fc = {0.25: [0.75, 0.77, 0.79], 1.0: [0.82, 0.81, 0.83]}
    runs = {}
    for s in specs:
        r, series = s.tag["fraction"], s.tag["series"]
        vals = (fc if series == "FC" else cc)[r]
        recalls = ({"round": 0.9, "angular": 0.7} if series == "FC"
                   else {"round": 0.8, "angular": 0.75})
        runs[s.name] = [_fake({**base.to_json(), "seed": k}, v, 0.5 if series == "FC" else None,
                              recalls, {"round": {"intra": 0.1, "inter": 0.2},
                                        "angular": {"intra": 0.2, "inter": 0.1}})
                        for k, v in enumerate(vals)]
    out = advice.analyse(specs, runs)
    low, high = out["fractions"]
    # r=0.25: d = [5, 6, 7] points -> mean 6, s = 1, CI 6 ± 2.484
    assert low["gain"]["mean"] == pytest.approx(6.0)
    assert low["gain"]["low"] == pytest.approx(6.0 - 4.302652729911275 / 3 ** 0.5)
    assert low["verdict"].startswith("fine labels help at 25% of the training data: +6.0")
    # r=1: d = [2, 1, 3]
    assert high["gain"]["mean"] == pytest.approx(2.0)
    ranked = high["per_coarse"]
    assert [c["coarse"] for c in ranked] == ["round", "angular"]
    assert ranked[0]["gain"] == pytest.approx(10.0) and ranked[0]["acr"] == pytest.approx(2.0)
    # FC at 25% reaches 77%: CC needs between 25% (71%) and 100% (80%): 0.25 + 6/9 * 0.75
    # Only at 25% is FC detectably above CC (at 100% the CI 2 ± 2.48 contains 0), so only
    # there is a data saving claimed.
    [eff] = out["data_efficiency"]
    assert eff["fraction"] == 0.25
    assert eff["cc_fraction"] == pytest.approx(0.25 + (77 - 71) / (80 - 71) * 0.75)
    # ACR sits on the row of the runs it comes from, over their seeds.
    assert low["acr"]["mean"] == pytest.approx(0.5) and low["acr"]["per_seed"] == [0.5] * 3
    path = advice.write(str(tmp_path), out)
    text = open(path).read()
    assert "fine labels help" in text and "| round |" in text
    row = "| 0.25 | 3 | 71.0 [68.5, 73.5] | 77.0 [72.0, 82.0] | +6.0 [3.5, 8.5] | 0.5 (0.5–0.5) |"
    assert row in text
    assert "At 100% of the data these runs show no data saving" in text
    assert json.load(open(tmp_path / "advice.json"))["fractions"][0]["fraction"] == 0.25
    assert os.path.exists(tmp_path / "gain_by_fraction.png")


def test_bootstrap_acr_from_a_runs_confusion(tmp_path):
    confusion = [[8, 2, 0, 0], [1, 9, 0, 0], [0, 1, 7, 2], [1, 0, 3, 6]]
    (tmp_path / "confusion.json").write_text(json.dumps(
        {"matrix": confusion, "parent": [0, 0, 1, 1]}))
    true, pred, parent = advice._confusion_pairs(str(tmp_path))
    assert len(true) == 40
    counts = np.zeros((4, 4), int)
    np.add.at(counts, (true, pred), 1)
    assert counts.tolist() == confusion


@pytest.mark.slow  # 75 s: 8 trainings; the analysis is tested on hand-made results
def test_advise_end_to_end_on_a_folder_tree(tmp_path):
    from test_data_identity import make_tree
    root = make_tree(tmp_path / "data", per_class=16)
    out = tmp_path / "advice"
    cmd = [sys.executable, "-m", "lg_tf.advise", "--dataset=folder", f"--data_dir={root}",
           f"--out_dir={out}", "--seeds=2", "--fractions=0.5,1.0", "--width=4", "--epochs=1",
           "--batch_size=8", "--eval_batch_size=8", "--steps_per_epoch=1",
           "--learning_rate=0.01", "--lr_milestones=1"]
    dry = subprocess.run(cmd + ["--dry_run"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "8 trainings" in dry.stdout and "estimated time" in dry.stdout
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "at 50% of the training data" in proc.stdout and "advice:" in proc.stdout
    data = json.load(open(out / "advice.json"))
    assert [r["fraction"] for r in data["fractions"]] == [0.5, 1.0]
    assert all(len(r["seeds"]) == 2 for r in data["fractions"])
    top = data["fractions"][-1]
    assert {c["coarse"] for c in top["per_coarse"]} == {"animal", "vehicle"}
    # the test split: 4 classes x 16 images
    assert data["fractions"][-1]["acr"]["bootstrap"]["n_images"] == 64
    bad = subprocess.run(cmd[:-1] + ["--fractions=0,1"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "must be numbers in (0, 1]" in bad.stderr


def test_advise_refuses_what_it_sets_and_data_without_fine_classes(tmp_path):
    from test_data_identity import make_tree
    tree = make_tree(tmp_path / "data", per_class=2)
    for flags, match in ((dict(train_fraction=0.5), "--train_fraction does not apply"),
                         (dict(granularity="coarse"), "--granularity does not apply")):
        with pytest.raises(grid_lib.PipelineError, match=match):
            advice.check_base(Config(dataset="folder", data_dir=str(tree), **flags))
    one_each = make_tree(tmp_path / "one", {"animal": ["cat"], "vehicle": ["car"]})
    with pytest.raises(grid_lib.PipelineError, match="no fine classes below its coarse ones"):
        advice.check_base(Config(dataset="folder", data_dir=str(one_each)))
    advice.check_base(Config(dataset="folder", data_dir=str(tree)))   # two fine per coarse


def test_advice_counts_a_seed_whose_siblings_were_never_confused():
    never = {"final": {"test/acr": None, "test/acr_inter": 0.01, "test/acr_intra": 0.0}}
    runs = [{"final": {"test/acr": 0.2}}, never, {"final": {"test/acr": 0.4}}]
    out = advice.acr_summary(runs)
    assert out["infinite_seeds"] == 1 and out["per_seed"] == [0.2, None, 0.4]
    assert out["mean"] is None and (out["min"], out["max"]) == (0.2, 0.4)
    assert advice._acr_text(out) == "∞ (0.2–∞; 1 of 3 seeds ∞)"
