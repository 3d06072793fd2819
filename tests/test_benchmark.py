"""Tests for lg_tf.benchmark (functionality only: no timing assertions)."""

import subprocess
import sys

import pytest
from absl import flags

from lg_tf import benchmark


def test_import_defines_no_flags():
    for name in ("num_examples", "epochs", "batch_size"):
        assert name not in flags.FLAGS


def test_pipeline_benchmark_tiny():
    lines = []
    rate = benchmark.pipeline_benchmark(batch_size=16, epochs=3, num_examples=80, seed=1,
                                        out=lines.append)
    assert isinstance(rate, float) and rate > 0
    assert len(lines) == 1 + 3 + 2  # header, one line per epoch, median, verdict
    assert lines[1].startswith("epoch 1/3: 80 images") and "warm-up" in lines[1]
    assert lines[3].startswith("epoch 3/3: 80 images") and "warm-up" not in lines[3]
    assert lines[4].startswith("median over epochs 2-3: ")
    assert lines[-1].startswith("verdict: ") and "50,000 images/s target" in lines[-1]


def test_synthetic_cifar():
    split = benchmark.synthetic_cifar(12, seed=3)
    assert split.images.shape == (12, 32, 32, 3) and split.images.dtype.name == "uint8"
    assert split.labels.dtype.name == "int32" and split.labels.max() < 10


@pytest.mark.parametrize("kwargs,message", [
    (dict(epochs=1), "at least 2"),
    (dict(batch_size=0), "positive"),
    (dict(batch_size=32, num_examples=16), "at least --batch_size"),
])
def test_pipeline_benchmark_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        benchmark.pipeline_benchmark(**{"epochs": 2, "num_examples": 64, **kwargs})


def test_subcommands_registry():
    assert "pipeline" in benchmark.SUBCOMMANDS
    assert benchmark._subcommand_name(["prog", "--epochs=2", "pipeline"]) == "pipeline"
    assert benchmark._subcommand_name(["prog", "--epochs=2"]) is None


def test_cli_end_to_end():
    proc = subprocess.run(
        [sys.executable, "-m", "lg_tf.benchmark", "pipeline", "--batch_size=32", "--epochs=2",
         "--num_examples=128"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 2/2: 128 images" in proc.stdout
    assert "verdict:" in proc.stdout


def test_cli_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "lg_tf.benchmark", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "subcommands:" in proc.stdout + proc.stderr


def test_forward_flops_by_hand():
    from lg_tf.models import build_model
    model = build_model("preact_resnet18", 10, width=4, input_shape=(8, 8, 3))
    convs = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    by_hand = sum(2 * l.output.shape[1] * l.output.shape[2] * l.kernel_size[0] * l.kernel_size[1]
                  * l.input.shape[-1] * l.filters for l in convs) + 2 * 32 * 10
    assert benchmark.forward_flops(model) == by_hand
    # The stem alone: 8x8 outputs, 3x3 kernel, 3 -> 4 channels.
    assert convs[0].output.shape[1:] == (8, 8, 4)


@pytest.mark.slow
def test_train_benchmark_tiny_reports_shares():
    rows = benchmark.train_benchmark(["preact_resnet18_w64"], steps=1, batch_size=2,
                                     out=lambda line: None)
    (row,) = rows
    assert row["images_per_s"] > 0 and row["gflops"] > 0 and row["matmul_gflops"] > 0
    assert row["gflop_per_image"] == pytest.approx(3 * 1.11084544, rel=1e-6)


def test_peer_rate_is_read_from_the_peer_script(tmp_path):
    fake = tmp_path / "peer.py"
    fake.write_text("import sys\nprint('params 123')\n"
                    "print(f'torch width {sys.argv[1]} bs {sys.argv[2]} cl={\"cl\" in sys.argv} "
                    "bf16=False: 812.5 img/s')\n")
    assert benchmark.torch_images_per_s(sys.executable, 16, 128, True, False,
                                        script=str(fake)) == 812.5
    assert "w16b128" in benchmark.PEER_CASES and "preact_resnet18_w16" in benchmark.TRAIN_MODELS


def test_peer_without_torch_is_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lg_tf.benchmark", "peer",
                           f"--torch_python={tmp_path / 'none'}"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "lg_tf: error: --torch_python must name the python of an environment with PyTorch")


def test_profile_tiny_op_breakdown(tmp_path):
    lines = []
    by_type, by_kind = benchmark.profile_benchmark(
        "preact_resnet18_w16", steps=2, out_dir=str(tmp_path), batch_size=8, width=4,
        out=lines.append)
    types = {r["name"]: r for r in by_type}
    assert any("Conv2DBackpropFilter" in t for t in types)
    assert any("Conv2D" in t and "Backprop" not in t for t in types)
    # BatchNormalization runs as TensorFlow's fused kernel, forward and backward.
    assert any("FusedBatchNorm" in t and "Grad" in t for t in types)
    assert sum(r["share"] for r in by_type) == pytest.approx(1.0, abs=1e-6)
    assert sum(r["share"] for r in by_kind) == pytest.approx(1.0, abs=1e-6)
    kinds = {r["name"] for r in by_kind}
    assert {"Conv2D", "FusedBatchNormalization", "optimizer"} <= kinds
    assert all(r["self_ms"] >= 0 and r["count"] > 0 for r in by_type + by_kind)
    # A trace TensorBoard's Profile tab reads, and the tables as files.
    assert list(tmp_path.glob("plugins/profile/*/*.xplane.pb"))
    header, *rows = (tmp_path / "op_types.tsv").read_text().splitlines()
    assert header == "op type\tself_ms\tshare\tcount" and len(rows) == len(by_type)
    assert lines[0].startswith("preact_resnet18_w16 width 4: batch 8, 2 steps traced")
    assert any(line.startswith("self time by op type") for line in lines)


def test_profile_cli_rejects_unknown_model():
    proc = subprocess.run([sys.executable, "-m", "lg_tf.benchmark", "profile", "--models=nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown model(s) ['nope']" in proc.stderr
