"""The experiment pipelines end to end at the tiniest scale on the embedded dataset.

One module-wide out_dir holds the runs, so pipelines share them as they do in real use
(Table I's fine run is Fig. 2's r=1 and Table VII's p=0): eight tiny trainings in all.
custom_coarse and num_coarse need CIFAR: their grids and errors are tested on configs, their
reports on synthetic results.
"""

import math
import csv
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from lg_tf import grid as grid_lib
from lg_tf import train_lib
from lg_tf.config import Config
from pipelines import (acr_vs_gain, common, custom_coarse, data_efficiency, dropout,
                       extra_layer, label_noise, num_coarse, published, table1, tsne)
from pipelines import all as all_pipelines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(dataset="embedded", model="preact_resnet18", width=4, epochs=1, batch_size=16,
            eval_batch_size=32, steps_per_epoch=1, eval_steps=1, learning_rate=0.05,
            lr_milestones=(1,), lr_decay=0.1)


pytestmark = pytest.mark.usefixtures("no_exports")  # conftest.py


@pytest.fixture(scope="module")
def base(embedded_dir):
    return Config(data_dir=embedded_dir, **TINY)


@pytest.fixture(scope="module")
def shared(base, tmp_path_factory):
    """The out_dir every end-to-end test adds to, with Table I's two runs trained once."""
    out = str(tmp_path_factory.mktemp("pipelines"))
    result = table1.run(base, ctx(out, "table1"))
    return {"out": out, "table1": result}


def ctx(out, name, **kw):
    return grid_lib.Context(out_dir=out, report_dir=os.path.join(out, "reports", name), **kw)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def count_trainings(monkeypatch):
    calls = []

    def fake(cfg, model_dir, strategy=None):
        calls.append(model_dir)
        raise AssertionError(f"trained {model_dir} although it should not")

    monkeypatch.setattr(train_lib, "train_and_evaluate", fake)
    return calls


# --------------------------------------------------------------------------- grid + runner

def test_run_names_are_canonical_and_shared(base):
    names = [s.name for s in data_efficiency.grid(base)]
    assert names == ["fine_r0.2", "coarse_r0.2", "fine_r0.4", "coarse_r0.4", "fine_r0.6",
                     "coarse_r0.6", "fine_r0.8", "coarse_r0.8", "fine", "coarse"]
    assert [s.name for s in label_noise.grid(base)] == [
        "coarse", "fine", "fine_p0.01", "fine_p0.03", "fine_p0.1", "fine_p0.3"]
    assert [s.name for s in extra_layer.grid(base)] == ["fine", "coarse", "coarse_extra"]
    assert [s.name for s in dropout.grid(base)] == ["fine_dropout0.3", "coarse_dropout0.3",
                                                    "fine", "coarse"]
    assert [s.name for s in table1.grid(base)] == ["coarse", "fine"]


def test_epochs_scale_and_seeds(base):
    spec = table1.grid(base)[1]
    cfg = grid_lib.make_config(dataclasses.replace(base, epochs=200, lr_milestones=(60, 120, 160)),
                             spec, seed=3, epochs_scale=0.1)
    assert (cfg.epochs, cfg.lr_milestones, cfg.seed) == (20, (6, 12, 16), 3)
    assert grid_lib.Context(out_dir="x", seeds=3).seed_list(base) == [0, 1, 2]
    with pytest.raises(grid_lib.PipelineError, match="--seeds=0"):
        grid_lib.Context(out_dir="x", seeds=0)
    with pytest.raises(grid_lib.PipelineError, match="--epochs_scale"):
        grid_lib.Context(out_dir="x", epochs_scale=0)


def _res(seed, acc, epochs=()):
    return {"config": {"seed": seed}, "final": {"test/coarse_accuracy": acc},
            "epochs": list(epochs)}


def test_one_statistics_vocabulary_paired_over_seeds():
    fine = [_res(0, 0.950), _res(1, 0.952), _res(2, 0.951)]
    coarse = [_res(0, 0.930), _res(1, 0.931), _res(2, 0.929)]
    acc = common.accuracy(fine)
    assert acc.mean == pytest.approx(95.1) and acc.n == 3
    # d = [2.0, 2.1, 2.2] points: mean 2.1, s = 0.1, t(0.975, 2) = 4.302652729911275
    gain = common.gain(fine, coarse)
    assert gain.mean == pytest.approx(2.1)
    assert gain.high - gain.mean == pytest.approx(4.302652729911275 * 0.1 / 3 ** 0.5)
    assert common.verdict(gain).startswith("fine labels help: +2.1 points [")
    # Pairing is by seed: a seed only one side has is left out.
    assert common.gain(fine, coarse[:2]).n == 2
    assert common.gain(fine[:1], coarse).low is None      # one seed: no interval
    assert "no comparison" in common.verdict(common.gain(fine, []))
    assert "no detectable difference between A and B" in common.contrast(
        common.gain([_res(0, 0.9), _res(1, 0.8)], [_res(0, 0.85), _res(1, 0.86)]), "A", "B")
    # Epoch-only metrics (the training split) pair by their last epoch.
    tr = [_res(k, 0.9, [{"epoch": 1, "train_eval/coarse_accuracy": 0.5 + k / 10}])
          for k in range(2)]
    assert common.per_seed(tr, common.TRAIN_SPLIT) == {0: 50.0, 1: 60.0}
    corr = common.correlation([1, 2, 3, 4], [2, 4, 5, 9])
    assert corr["pearson"] > 0.9 and corr["spearman"] == pytest.approx(1.0)
    assert "too few" in common.correlation_text(common.correlation([1, 2], [1, 2]), "points")


def test_accuracy_intervals_past_100_are_clipped_and_noted():
    from lg_tf import stats
    from pipelines.report import Column, Table, clipped, markdown_table
    iv = stats.mean_ci([99.5, 99.9, 95.0])
    assert iv.high > 100
    table = Table([Column("acc", "pct")], [[iv]])
    assert "100.00*]" in markdown_table(table) and clipped(table)
    assert not clipped(Table([Column("acc", "pct")], [[stats.mean_ci([90.0, 91.0, 92.0])]]))


# --------------------------------------------------------------------------- end to end

def test_table1_report_csv_png_hparams(shared):
    out, result = shared["out"], shared["table1"]
    assert [s.name for s in result["specs"]] == ["coarse", "fine"]
    report_dir = os.path.join(out, "reports", "table1")
    text = open(result["report"]).read()
    assert "| dataset | series | # training classes | # testing classes |" in text
    assert "test acc (%) paper" in text and published.NOT_IN_PAPER in text
    assert "Not in the paper" in text and "Partial evaluation" in text
    assert "## What the numbers show" in text
    rows = read_csv(os.path.join(report_dir, "table1.csv"))
    assert [r["series"] for r in rows] == ["CC", "FC", "ΔA = FC − CC (paired)"]
    assert rows[0]["# training classes"] == "4" and rows[1]["# training classes"] == "12"
    for row in rows[:2]:
        assert 0 <= float(row["test acc (%) ours"]) <= 100
        assert 0 <= float(row["train acc (%) ours"]) <= 100   # train_eval was on
    assert rows[1]["test acc (%) paper"] == published.NOT_IN_PAPER
    assert float(rows[2]["test acc (%) ours"]) == pytest.approx(
        float(rows[1]["test acc (%) ours"]) - float(rows[0]["test acc (%) ours"]))
    assert os.path.getsize(os.path.join(report_dir, "curves.png")) > 1000
    hp = os.path.join(out, "hparams", "table1")
    assert os.listdir(os.path.join(hp, "fine", "seed_0"))
    saved = json.load(open(os.path.join(out, "runs", "fine", "seed_0", "results.json")))
    assert saved["config"]["train_eval"] is True


def test_rerun_skips_finished_runs_and_rewrites_the_report(shared, base, monkeypatch):
    calls = count_trainings(monkeypatch)
    path = os.path.join(shared["out"], "reports", "table1", "report.md")
    os.remove(path)
    result = table1.run(base, ctx(shared["out"], "table1"))
    assert calls == [] and os.path.exists(path) and result["report"] == path


def test_changed_settings_in_the_same_out_dir_are_refused(shared, base, monkeypatch):
    count_trainings(monkeypatch)
    with pytest.raises(grid_lib.PipelineError, match="holds a run with other settings"):
        table1.run(dataclasses.replace(base, width=8), ctx(shared["out"], "table1"))


def test_dry_run_trains_nothing_and_estimates(shared, base, monkeypatch, capsys):
    calls = count_trainings(monkeypatch)
    result = data_efficiency.run(base, ctx(shared["out"], "dry", dry_run=True))
    assert calls == [] and result["report"] is None and len(result["specs"]) == 10
    text = capsys.readouterr().out
    assert "10 runs x 1 seed(s) = 10 trainings" in text
    assert "fine_r0.2" in text and "done" in text and "todo" in text
    assert "estimated time: ~" in text   # Table I's finished runs give the speed
    assert not os.path.exists(os.path.join(shared["out"], "runs", "fine_r0.2"))
    assert not os.path.exists(os.path.join(shared["out"], "reports", "dry"))


def test_data_efficiency(shared, base):
    result = data_efficiency.run(base, ctx(shared["out"], "de"), fractions=(0.5, 1.0))
    assert [s.name for s in result["specs"]] == ["fine_r0.5", "coarse_r0.5", "fine", "coarse"]
    saved = json.load(open(os.path.join(shared["out"], "runs", "fine_r0.5", "seed_0",
                                        "results.json")))
    assert saved["epochs_scaled"] == 2        # epochs scale by 1/r
    folder = os.path.join(shared["out"], "reports", "de")
    rows = read_csv(os.path.join(folder, "data_efficiency.csv"))
    assert [r[next(iter(r))] for r in rows][:2] == ["FC (fine-trained) test, ours",
                                                    "FC (fine-trained) test, paper"]
    assert set(rows[0]) >= {"50%", "50% low", "50% high", "100%", "ACR (100%): mean (min–max)"}
    for name in ("fig2_data_efficiency.png", "fig3_curves.png", "report.md"):
        assert os.path.getsize(os.path.join(folder, name)) > 500


def test_label_noise(shared, base):
    result = label_noise.run(base, ctx(shared["out"], "ln"), levels=(0.0, 0.3))
    assert [s.name for s in result["specs"]] == ["coarse", "fine", "fine_p0.3"]
    rows = read_csv(os.path.join(shared["out"], "reports", "ln", "label_noise.csv"))
    assert [r["run"] for r in rows] == ["CC (coarse-trained baseline)", "FC p = 0", "FC p = 0.3"]
    assert rows[2]["ΔA paper"] == published.NOT_IN_PAPER
    assert float(rows[2]["ACR ours: mean (min–max)"].split()[0]) >= 0   # "0.52 (1 seed)"
    assert os.path.exists(os.path.join(shared["out"], "reports", "ln", "fig7b_noise_acr.png"))


def test_extra_layer(shared, base):
    result = extra_layer.run(base, ctx(shared["out"], "el"))
    rows = read_csv(os.path.join(shared["out"], "reports", "el", "extra_layer.csv"))
    assert [(r["CNN arch"], r["train label"]) for r in rows] == [
        ("Baseline CNN", "F"), ("Baseline CNN", "C"), ("Extra layer", "C")]
    assert "test acc (%) paper" in rows[0]
    assert json.load(open(os.path.join(shared["out"], "runs", "coarse_extra", "seed_0",
                                       "config.json")))["extra_layer"] is True
    assert os.path.exists(os.path.join(shared["out"], "reports", "el", "extra_layer.png"))
    assert result["report"].endswith("report.md")


def test_dropout(shared, base):
    dropout.run(base, ctx(shared["out"], "do"))
    rows = read_csv(os.path.join(shared["out"], "reports", "do", "dropout.csv"))
    assert [(r["dropout"], r["train label"]) for r in rows] == [
        ("0.3", "F"), ("0.3", "C"), ("0", "F"), ("0", "C")]
    assert dropout.default_rate(dataclasses.replace(
        Config(), dataset="cifar100", hierarchy="cifar100_animals")) == 0.4


def test_tsne_reuses_the_pair(shared, base):
    result = tsne.run(base, ctx(shared["out"], "ts"), max_samples=40)
    assert result["maps"]["FC"]["points"].shape == (40, 2)
    rows = read_csv(os.path.join(shared["out"], "reports", "ts", "tsne.csv"))
    assert [r["model"] for r in rows] == ["coarse-trained (a)", "fine-trained (b)"]
    assert os.path.getsize(os.path.join(shared["out"], "reports", "ts", "fig4_tsne.png")) > 1000


def test_acr_vs_gain_pairs_runs_that_differ_only_in_granularity(shared):
    # after table1, data_efficiency, label_noise, extra_layer, dropout (test order)
    result = acr_vs_gain.run(ctx(shared["out"], "ag"), os.path.join(shared["out"], "runs"))
    labels = sorted(p.label for p in result["pairs"])
    assert labels == ["baseline", "dropout=0.3", "p=0.3", "r=0.5"]
    noisy = next(p for p in result["pairs"] if p.label == "p=0.3")
    assert noisy.coarse[0]["config"]["label_noise"] == 0.0   # CC baseline of Table VII
    folder = os.path.join(shared["out"], "reports", "ag")
    corr = read_csv(os.path.join(folder, "acr_vs_gain.csv"))
    assert corr[0]["points"].startswith("ours") and corr[0]["n"] == "4"
    assert corr[1]["Pearson r [95% CI]"].startswith("+0.9")   # the paper's Fig. 6 points
    assert len(read_csv(os.path.join(folder, "acr_vs_gain_pairs.csv"))) == 4
    assert os.path.exists(os.path.join(folder, "fig6_acr_vs_gain.png"))


def test_cli_reuses_runs_and_fails_in_one_sentence(shared, embedded_dir, tmp_path):
    flags = [f"--data_dir={embedded_dir}", "--dataset=embedded", "--width=4", "--epochs=1",
             "--batch_size=16", "--eval_batch_size=32", "--steps_per_epoch=1",
             "--eval_steps=1", "--learning_rate=0.05", "--lr_milestones=1", "--lr_decay=0.1"]
    report_dir = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-m", "pipelines.table1", f"--out_dir={shared['out']}",
                           f"--report_dir={report_dir}", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "finished earlier, skipped" in done.stdout
    assert "`python -m pipelines.table1 --out_dir=" in open(report_dir / "report.md").read()
    bad = subprocess.run([sys.executable, "-m", "pipelines.custom_coarse",
                          f"--out_dir={tmp_path}", "--dry_run", *flags], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "lg_tf: error: custom_coarse needs CIFAR-10 (--dataset=cifar10")


def test_all_dry_run_lists_the_embedded_experiments(base, tmp_path, monkeypatch, capsys):
    calls = count_trainings(monkeypatch)
    entries, skipped = all_pipelines.available(str(tmp_path / "tfds"))
    assert [e.key for e in entries] == ["embedded"]
    assert any(s.startswith("cifar10: TFDS 'cifar10' is not prepared") for s in skipped)
    out = all_pipelines.run(grid_lib.Context(out_dir=str(tmp_path), dry_run=True),
                            {"embedded": base}, entries, skipped=skipped)
    text = capsys.readouterr().out
    assert calls == [] and out["index"] is None
    for name in ("table1", "data_efficiency", "extra_layer", "dropout", "label_noise", "tsne"):
        assert f"== embedded: {name} ==" in text
    assert "custom_coarse" not in text and not os.path.exists(tmp_path / "runs")
    with pytest.raises(grid_lib.PipelineError, match="unknown dataset"):
        all_pipelines.available("", ("mnist",))


# --------------------------------------------------------------------------- CIFAR-only ones

def synthetic(cfg, coarse_acc, acr=None, seed=0):
    final = {"test/coarse_accuracy": coarse_acc}
    if cfg.granularity == "fine":
        final.update({"test/fine_accuracy": coarse_acc - 0.1, "test/acr": acr})
    return {"config": {**cfg.to_json(), "seed": seed}, "final": final, "parameters": 1000,
            "epochs": [{"epoch": 1, "test/coarse_accuracy": coarse_acc}], "epochs_scaled": 1,
            "wall_time_s": 1.0}


def _confusion_run(tmp_path, cfg, seed, matrix):
    """A finished fine run's results with its confusion.json beside them."""
    from lg_tf import hierarchy as hier_lib
    folder = tmp_path / "runs" / f"fine_{seed}"
    folder.mkdir(parents=True)
    (folder / "confusion.json").write_text(json.dumps(
        {"matrix": matrix.tolist(), "fine_names": list(hier_lib.CIFAR10_CLASSES)}))
    return {**synthetic(cfg, 0.0, seed=seed), "model_dir": str(folder)}


def test_custom_coarse_shares_one_fine_run_per_seed(tmp_path):
    import numpy as np
    cifar10 = Config(dataset="cifar10", hierarchy="cifar10", width=8, epochs=2)
    specs = custom_coarse.grid(cifar10)
    # One fine run per seed answers all ten mappings; 0189 is the flagfile's own grouping.
    assert [s.name for s in specs[:4]] == ["fine", "coarse", "coarse_cz1689", "coarse_cz0129"]
    assert len(specs) == 11 and sum(s.granularity == "fine" for s in specs) == 1
    cfg = grid_lib.make_config(cifar10, specs[4], 0)
    assert (cfg.coarse_zero, cfg.hierarchy, cfg.granularity) == ("0135", "", "coarse")
    # sum_probs is not a function of the confusion matrix: every mapping trains its fine run.
    per_mapping = custom_coarse.grid(dataclasses.replace(cifar10, coarse_metric="sum_probs"))
    assert len(per_mapping) == 20 and per_mapping[1].name == "fine_cz0189"
    with pytest.raises(grid_lib.PipelineError, match="needs CIFAR-10"):
        custom_coarse.grid(Config(dataset="embedded"))
    # The fine model confuses plane<->car (0, 1) and cat<->deer (3, 4), 10 of 100 each way.
    matrix = np.diag([100] * 10)
    for a, b in ((0, 1), (3, 4)):
        matrix[a, a] = matrix[b, b] = 90
        matrix[a, b] = matrix[b, a] = 10
    runs = {}
    for s in specs:
        cfg = grid_lib.make_config(cifar10, s, 0)
        runs[s.name] = [_confusion_run(tmp_path, cfg, k, matrix) if s.granularity == "fine"
                        else synthetic(cfg, 0.95 + 0.01 * k, seed=k) for k in range(2)]
    rows = {r["digits"]: r for r in custom_coarse.summarise(specs, runs)}
    # 0189 keeps both confused pairs inside a coarse class: 100% coarse accuracy, no
    # cross-parent confusion (ACR 0); 0135 splits cat from deer: 20 of 1000 wrong.
    assert rows["0189"]["fc"].mean == pytest.approx(100.0)
    assert rows["0135"]["fc"].mean == pytest.approx(98.0)
    assert rows["0189"]["acr"] == [0.0, 0.0] and rows["0135"]["acr"][0] > 0
    assert rows["0135"]["gain"].mean == pytest.approx(98.0 - 95.5)   # CC 95, 96 per seed
    c = ctx(str(tmp_path), "cc", seeds=2)
    text = open(custom_coarse.write(cifar10, c, specs, runs)).read()
    assert "Scaled run — not a reproduction" in text and "width=8 instead of 64" in text
    assert "FC is one fine run per seed, evaluated under every mapping" in text
    assert "Spearman ρ" in text and "paper, Table VI" in text
    rows = read_csv(os.path.join(c.report_dir, "custom_coarse.csv"))
    assert [r["ID"] for r in rows] == [str(i) for i in range(1, 11)]
    assert rows[0]["CC paper"] == "98.42" and rows[4]["ACR paper"] == "2.279"
    assert os.path.exists(os.path.join(c.report_dir, "fig7a_custom_acr.png"))


def test_num_coarse_grid_error_and_report(tmp_path):
    cifar100 = Config(dataset="cifar100", hierarchy="cifar100", model="wide_resnet",
                      wrn_depth=10, wrn_widen=1, epochs=200)
    specs = num_coarse.grid(cifar100)
    assert [s.name for s in specs] == [
        "coarse_h-cifar100_5", "fine_h-cifar100_5", "coarse_h-cifar100_animals",
        "fine_h-cifar100_animals", "coarse_h-cifar100_15", "fine_h-cifar100_15", "coarse",
        "fine"]
    with pytest.raises(grid_lib.PipelineError, match="needs --dataset=cifar100"):
        num_coarse.grid(Config(dataset="embedded"))
    runs = {s.name: [synthetic(grid_lib.make_config(cifar100, s, k), 0.8 + 0.01 * k, 0.2, k)
                     for k in range(2)] for s in specs}
    c = ctx(str(tmp_path), "nc", seeds=2)
    text = open(num_coarse.write(cifar100, c, specs, runs)).read()
    assert "wrn_depth=10 instead of 28" in text
    rows = read_csv(os.path.join(c.report_dir, "num_coarse.csv"))
    assert [r["# coarse classes"] for r in rows] == ["5", "10", "15", "20"]
    assert rows[0]["CC paper"] == "80.53" and rows[3]["ACR paper"] == "0.067"
    # two seeds, 80 and 81: t(0.975, 1) = 12.706 -> 80.50 ± 12.706 * 0.7071 / sqrt(2)
    assert float(rows[0]["CC test acc (%) ours high"]) == pytest.approx(86.85, abs=0.01)
    assert "80.50 [74.15, 86.85]" in text


def test_targets_grid_ranks_pairs_and_reports(tmp_path):
    from pipelines import targets
    base = Config(dataset="embedded", width=8, epochs=5, lr_milestones=(4,))
    specs = targets.grid(base, ["shapes", "shapes_mixed_b"], (0.2, 1.0))
    assert len(specs) == 20
    assert [s.name for s in specs[:5]] == ["coarse_r0.2", "fine_r0.2", "joint_lw1_r0.2",
                                           "soft_labels_beta4_r0.2", "hxe_alpha0.5_r0.2"]
    assert specs[5].name == "coarse" and specs[-1].name == "hxe_alpha0.5_h-shapes_mixed_b"
    assert common.groupings_for(base, None) == ["shapes", "shapes_mixed_b"]
    assert common.groupings_for(Config(dataset="cifar10"), None) == ["cifar10"]
    for bad, match in ((dict(targets=("fine", "xe")), "choose from"),
                       (dict(fractions=(0,)), "must be numbers in")):
        with pytest.raises(grid_lib.PipelineError, match=match):
            targets.grid(base, ["shapes"], **{"fractions": (1.0,), **bad})
    with pytest.raises(grid_lib.PipelineError, match="--granularity does not apply"):
        targets.grid(dataclasses.replace(base, granularity="coarse"), ["shapes"])
    # Three seeds; per seed: coarse 80+k, fine 82+k (+2 exactly), joint 81+2k, soft/hxe 79.
    offsets = {"coarse": lambda k: 80 + k, "fine": lambda k: 82 + k,
               "joint": lambda k: 81 + 2 * k, "soft_labels": lambda k: 79.0,
               "hxe": lambda k: 79.0 + (k == 1)}
    runs = {}
    for s in specs:
        cfg = grid_lib.make_config(base, s, 0)
        runs[s.name] = []
        for k in range(3):
            r = synthetic(cfg, offsets[s.tag["target"]](k) / 100, acr=0.3, seed=k)
            if s.name != "coarse":   # as if trained before these metrics existed
                r["final"].update({"test/coarse_ece": 0.05, "test/coarse_nll": 0.4,
                                   "test/sibling_mistakes": 0.6})
            if s.tag["target"] == "joint":
                r["final"].update({"test/coarse_accuracy_from_fine": 0.5,
                                   "test/coarse_accuracy_combined": 0.6})
            runs[s.name].append(r)
    summary = targets.summarise(specs, runs)
    rows = summary[("shapes", 0.2)]
    assert [r["target"] for r in rows] == ["fine", "joint", "coarse", "hxe", "soft_labels"]
    assert rows[0]["vs_coarse"].mean == pytest.approx(2.0) and rows[0]["vs_coarse"].low == \
        pytest.approx(2.0)
    assert rows[1]["vs_fine"].mean == pytest.approx(0.0)   # joint - fine: -1, 0, +1
    c = ctx(str(tmp_path), "targets", seeds=3)
    text = open(targets.write(base, c, specs, runs)).read()
    assert ("shapes, 20% of the data, `fine`: vs `coarse` +2.0 [2.0, 2.0], higher" in text)
    assert ("`soft_labels`: vs `coarse` -2.0 [-4.5, 0.5], no detectable difference; vs "
            "`fine` -4.0 [-6.5, -1.5], lower" in text)
    assert "did not log them (trained before lg_tf had these metrics and reused here, as " \
        "finished runs are): `coarse`." in text
    csv_rows = read_csv(os.path.join(c.report_dir, "targets.csv"))
    assert len(csv_rows) == 20 and csv_rows[0]["target"] == "fine"
    assert float(csv_rows[0]["coarse ECE (%)"]) == pytest.approx(5.0)
    joint = read_csv(os.path.join(c.report_dir, "targets_joint.csv"))
    assert len(joint) == 4 and float(joint[0]["combined (%)"]) == pytest.approx(60.0)
    assert os.path.exists(os.path.join(c.report_dir, "targets_accuracy.png"))


def test_a_correlation_leaves_out_and_counts_infinite_acr_points():
    from pipelines import common
    corr = common.correlation([0.1, 0.2, 0.3, 0.5, math.inf], [1.0, 2.0, 2.5, 4.0, 9.0])
    assert corr["n"] == 4 and corr["left_out"] == 1 and corr["spearman"] == pytest.approx(1.0)
    assert common.correlation_text(corr, "groupings").endswith(
        "(1 with an infinite ACR left out)")
    assert common.correlation_cells(corr)[:2] == ["4", common._coef(corr, "spearman")]
