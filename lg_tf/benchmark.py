"""Benchmarks, one subcommand each.

    python -m lg_tf.benchmark pipeline [--batch_size=128] [--epochs=3] [--num_examples=50000]
    python -m lg_tf.benchmark train [--models=preact_resnet18_w64,...] [--steps=8]
           [--mixed_precision=bfloat16]
    python -m lg_tf.benchmark peer --torch_python=~/torchvenv/bin/python [--rounds=2]
    python -m lg_tf.benchmark profile [--models=preact_resnet18_w16] [--steps=10]
           [--out=/tmp/lg_tf_profile] [--mixed_precision=bfloat16]

`profile` traces training steps with TensorFlow's profiler (TensorBoard's Profile tab
reads the folder) and prints the share of self time per TensorFlow op type and per kind
of layer (BatchNormalization, Conv2D, ...), from the trace itself (no TensorBoard plugin).

`peer` times lg_tf's training step and the same PreAct ResNet-18 in PyTorch
(`bench/torch_preact_bench.py`, run with --torch_python: PyTorch is never an lg_tf
dependency) in one process tree, interleaved round by round, and prints the paired table
of BUILD.md ("Paired with PyTorch").

`pipeline` times the training input pipeline (`pipeline.make_dataset(training=True)`:
shuffle, batch, pad-4 crop + flip, prefetch; images stay uint8) on CIFAR-shaped random uint8
images held in memory, so it measures the pipeline alone (no disk, no model). The first
epoch is a warm-up (graph tracing, autotuning) and is not counted; the verdict compares the
median of the other epochs with the 50,000 images/s target.

Each subcommand defines its own flags, and only when it is the one being run (never on
import), so a later `train` subcommand can bring the training flags of `lg_tf.config`
without clashing with these.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from typing import Callable

from absl import flags

from lg_tf import cli

TARGET_IMAGES_PER_SECOND = 50_000
FLAGS = flags.FLAGS


# --------------------------------------------------------------------------- pipeline

def synthetic_cifar(num_examples: int, num_classes: int = 10, seed: int = 0):
    """A `Split` of random uint8 [N, 32, 32, 3] images with random labels."""
    import numpy as np
    from lg_tf.data.split import Split
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (num_examples, 32, 32, 3), dtype=np.uint8),
                 rng.integers(0, num_classes, num_examples).astype(np.int32))


def pipeline_benchmark(batch_size: int = 128, epochs: int = 3, num_examples: int = 50_000,
                       seed: int = 0, out: Callable[[str], None] = print) -> float:
    """Runs `epochs` epochs of the training pipeline; returns the median images/s after epoch 1.

    Prints one line per epoch, the median and a verdict against the target via `out`.
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size={batch_size} must be a positive integer")
    if epochs < 2:
        raise ValueError(f"--epochs={epochs} must be at least 2: the first epoch is a "
                         "warm-up and is not counted")
    if num_examples < batch_size:
        raise ValueError(f"--num_examples={num_examples} must be at least --batch_size="
                         f"{batch_size} (training drops the last partial batch)")
    import tensorflow as tf
    from lg_tf.data import datasets, pipeline

    info = datasets.DATASETS["cifar10"]
    spec = pipeline.ImageSpec(32, "cifar", info.mean, info.std)
    split = synthetic_cifar(num_examples, seed=seed)
    ds = pipeline.make_dataset(split, spec, training=True, batch_size=batch_size, seed=seed)
    steps = num_examples // batch_size
    out(f"pipeline benchmark: {num_examples:,} random 32x32x3 uint8 images in memory, "
        f"global batch {batch_size} ({steps} steps/epoch), training augmentation "
        f"(shuffle, pad-4 crop + flip; uint8 out, the model normalises), {epochs} epochs "
        "(the first is a warm-up); "
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU core(s)")

    rates = []
    for epoch in range(1, epochs + 1):
        images_seen = 0
        start = time.perf_counter()
        for images, _ in ds:
            images_seen += int(images.shape[0])
        seconds = time.perf_counter() - start
        rate = images_seen / seconds
        note = "  (warm-up, not counted)" if epoch == 1 else ""
        out(f"epoch {epoch}/{epochs}: {images_seen:,} images in {seconds:.2f} s = "
            f"{rate:,.0f} images/s{note}")
        if epoch > 1:
            rates.append(rate)
    median = statistics.median(rates)
    counted = "epoch 2" if epochs == 2 else f"epochs 2-{epochs}"
    out(f"median over {counted}: {median:,.0f} images/s")
    verdict = "PASS: meets" if median >= TARGET_IMAGES_PER_SECOND else "BELOW: misses"
    out(f"verdict: {verdict} the {TARGET_IMAGES_PER_SECOND:,} images/s target "
        f"({median / TARGET_IMAGES_PER_SECOND:.0%} of it)")
    return median


def _define_pipeline_flags() -> None:
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_integer("epochs", 3, "Epochs to run; the first is a warm-up, not counted.")
    flags.DEFINE_integer("num_examples", 50_000, "Random CIFAR-shaped images in the split.")
    flags.DEFINE_integer("seed", 0, "Seed of the data, shuffling and augmentation.")


def _run_pipeline() -> None:
    try:
        pipeline_benchmark(FLAGS.batch_size, FLAGS.epochs, FLAGS.num_examples, FLAGS.seed)
    except ValueError as e:
        raise cli.UsageError(str(e)) from None


# --------------------------------------------------------------------------- train step

# The paper's models as (registry name, kwargs, input size, classes, default batch).
TRAIN_MODELS = {
    "preact_resnet18_w64": ("preact_resnet18", {"width": 64}, 32, 10, 64),
    "preact_resnet18_w16": ("preact_resnet18", {"width": 16}, 32, 10, 128),
    "preact_resnet18_w16_224": ("preact_resnet18", {"width": 16}, 224, 10, 16),
    "wide_resnet_28_10": ("wide_resnet", {"depth": 28, "widen_factor": 10}, 32, 100, 16),
}
TARGET_MATMUL_SHARE = 0.75


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's fp32 dense matmul rate, the yardstick for the training step."""
    import tensorflow as tf
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    mm = tf.function(lambda a, b: tf.matmul(a, b))
    mm(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        c = mm(a, b)
    c.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def forward_flops(model) -> int:
    """Multiply-adds x2 of every Conv2D and Dense layer for one image (forward pass)."""
    import keras
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            total += 2 * h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def _timed_fit(model, dataset, steps: int) -> float:
    """Seconds per step of the second of two fit epochs (the first compiles and warms up)."""
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = Timer()
    model.fit(dataset, epochs=2, steps_per_epoch=steps, callbacks=[timer], shuffle=False,
              verbose=0)
    return timer.seconds / steps


def _train_case(name: str, batch_size: int = 0, jit_compile: bool = False,
                mixed_precision: str = "none", width: int = 0):
    """What `train` and `profile` time for one of TRAIN_MODELS: (batch, the pipeline
    dataset, a constant batch repeated, build(with_metrics) -> a compiled model).
    `width` > 0 replaces the model's width (tests build tiny variants)."""
    import keras
    import numpy as np
    from lg_tf import metrics, models, optim
    from lg_tf.data import pipeline
    from lg_tf.train_lib import dtype_policy

    registry, kwargs, size, classes, default_batch = TRAIN_MODELS[name]
    if width > 0:
        kwargs = {**kwargs, "width": width}
    batch = batch_size or default_batch
    rng = np.random.default_rng(0)
    split = synthetic_cifar(batch * 4, classes)
    if size != 32:
        from lg_tf.data.split import Split
        split = Split(rng.integers(0, 256, (batch * 4, size, size, 3), dtype=np.uint8),
                      split.labels)
    spec = pipeline.ImageSpec(size, "cifar", (0.5,) * 3, (0.25,) * 3)
    ds = pipeline.make_dataset(split, spec, training=True, batch_size=batch, seed=0).repeat()
    constant = ds.take(1).cache().repeat()
    parent = [c % 2 for c in range(classes)]

    def build(with_metrics: bool):
        keras.utils.set_random_seed(0)
        with dtype_policy(mixed_precision):
            model = models.build_model(registry, classes, input_shape=(size, size, 3),
                                       normalization=(spec.mean, spec.std), **kwargs)
        extra = [metrics.CoarseAccuracy(parent),
                 keras.metrics.SparseCategoricalAccuracy(name="fine_accuracy")]
        model.compile(optimizer=optim.CoupledSGD(0.01, 0.9, 5e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=extra if with_metrics else None, jit_compile=jit_compile)
        return model

    return batch, ds, constant, build


def train_benchmark(names=tuple(TRAIN_MODELS), steps: int = 8, batch_size: int = 0,
                    jit_compile: bool = False, out: Callable[[str], None] = print,
                    mixed_precision: str = "none") -> list[dict]:
    """Images/s and GFLOP/s of the training step of each paper model, three ways:
    full (pipeline + loss + CoarseAccuracy + fine accuracy), no metrics, and a constant
    batch instead of the pipeline; the differences are what metrics and the pipeline cost."""
    import tensorflow as tf

    peak = matmul_gflops()
    out(f"fp32 matmul (2048^3): {peak:,.1f} GFLOP/s on {os.cpu_count()} CPU core(s); "
        f"TensorFlow {tf.__version__}")
    rows = []
    for name in names:
        batch, ds, constant, build = _train_case(name, batch_size, jit_compile, mixed_precision)
        flops = 3 * forward_flops(build(False))  # backward ~ 2x forward
        full = _timed_fit(build(True), ds, steps)
        bare = _timed_fit(build(False), ds, steps)
        fixed = _timed_fit(build(True), constant, steps)
        row = {"model": name, "batch": batch, "jit_compile": jit_compile,
               "mixed_precision": mixed_precision, "constant_images_per_s": batch / fixed,
               "gflop_per_image": flops / 1e9,
               "images_per_s": batch / full, "gflops": flops * batch / full / 1e9,
               "matmul_share": flops * batch / full / 1e9 / peak,
               "metrics_cost": full / bare - 1, "pipeline_cost": full / fixed - 1,
               "matmul_gflops": peak}
        rows.append(row)
        tags = (" (XLA)" if jit_compile else "") + (
            f" ({mixed_precision})" if mixed_precision != "none" else "")
        out(f"{name}{tags}: batch {batch}, "
            f"{row['gflop_per_image']:.2f} GFLOP/image (train), "
            f"{row['images_per_s']:.1f} images/s, {row['gflops']:.1f} GFLOP/s = "
            f"{row['matmul_share']:.0%} of matmul; metrics+logging cost "
            f"{row['metrics_cost']:+.1%}, pipeline cost {row['pipeline_cost']:+.1%} "
            f"({row['constant_images_per_s']:.1f} images/s on a constant batch)")
    return rows


def _define_train_flags() -> None:
    flags.DEFINE_list("models", list(TRAIN_MODELS), "Models to time: " + ", ".join(TRAIN_MODELS))
    flags.DEFINE_integer("steps", 8, "Timed steps per variant (after a warm-up epoch).")
    flags.DEFINE_integer("batch_size", 0, "Global batch (0: each model's default).")
    flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")
    flags.DEFINE_enum("mixed_precision", "none", ["none", "bfloat16", "float16"],
                      "Compute dtype of the models (variables stay float32).")


def _run_train() -> None:
    unknown = [m for m in FLAGS.models if m not in TRAIN_MODELS]
    if unknown:
        raise cli.UsageError(f"unknown model(s) {unknown}; choose from {list(TRAIN_MODELS)}")
    rows = train_benchmark(FLAGS.models, FLAGS.steps, FLAGS.batch_size, FLAGS.jit_compile,
                           mixed_precision=FLAGS.mixed_precision)
    share = {r["model"]: r["matmul_share"] for r in rows}
    if "preact_resnet18_w64" in share:
        verdict = "PASS" if share["preact_resnet18_w64"] >= TARGET_MATMUL_SHARE else "BELOW"
        print(f"verdict: {verdict}: PreAct ResNet-18 w64 trains at "
              f"{share['preact_resnet18_w64']:.0%} of matmul GFLOP/s "
              f"(target {TARGET_MATMUL_SHARE:.0%})")


# --------------------------------------------------------------------------- profile

# Ops that only call or wait for other ops: their time is their callees'.
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall", "While", "If",
                       "StatelessWhile", "StatelessIf", "_Send", "_Recv"})


def op_breakdown(xplane_path: str, layer_kinds: dict[str, str] | None = None):
    """Self time of each TensorFlow op type in a profiler trace (an `.xplane.pb`).

    Every event of the host plane named `op_name:OpType` is one op run (TensorFlow's
    executor records them on its inter-op threads); its self time is its duration less
    that of op events nested in it on the same thread. Function-call ops are left out
    (they wait for their callees). Returns (by op type, by layer kind), each a list of
    {"name", "self_ms", "share", "count"} sorted by self time; `layer_kinds` maps layer
    names to a kind (e.g. their class name) and attributes an op to the layer whose name
    (or name_N) is a component of the op's name; ops outside every layer count as
    "optimizer" (CoupledSGD's ops) or "other (loss, metrics, step)".
    Shares are of the summed op time (ops of 2 inter-op threads overlap in wall time).
    """
    import collections
    import re
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    by_type: collections.Counter = collections.Counter()
    by_kind: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    kind_counts: collections.Counter = collections.Counter()
    suffix = re.compile(r"_\d+$")
    kind_of: dict[str, str] = {}

    def kind(op_name: str) -> str:
        if op_name not in kind_of:
            found = None
            for part in op_name.split("/"):
                for candidate in (part, suffix.sub("", part)):
                    if layer_kinds and candidate in layer_kinds:
                        found = layer_kinds[candidate]
            kind_of[op_name] = found or ("optimizer" if "coupled_sgd" in op_name
                                         else "other (loss, metrics, step)")
        return kind_of[op_name]

    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        meta = plane.event_metadata
        for line in plane.lines:
            events = []
            for e in line.events:
                m = meta[e.metadata_id]
                name, _, op_type = m.name.rpartition(":")
                if name and op_type == m.display_name and op_type not in _CALL_OPS:
                    events.append((e.offset_ps, e.duration_ps, op_type, name))
            events.sort(key=lambda t: (t[0], -t[1]))
            stack: list = []
            for start, duration, op_type, name in events:
                while stack and stack[-1][0] + stack[-1][1] <= start:
                    stack.pop()
                if stack:
                    by_type[stack[-1][2]] -= duration
                    by_kind[kind(stack[-1][3])] -= duration
                stack.append((start, duration, op_type, name))
                by_type[op_type] += duration
                by_kind[kind(name)] += duration
                counts[op_type] += 1
                kind_counts[kind(name)] += 1
    total = sum(by_type.values()) or 1

    def table(times, n):
        return [{"name": k, "self_ms": v / 1e9, "share": v / total, "count": n[k]}
                for k, v in times.most_common()]

    return table(by_type, counts), table(by_kind, kind_counts)


def profile_benchmark(name: str, steps: int, out_dir: str, batch_size: int = 0,
                      mixed_precision: str = "none", width: int = 0, top: int = 25,
                      out: Callable[[str], None] = print):
    """Traces `steps` training steps of one of TRAIN_MODELS (constant batch, the metrics of
    `train`, after a 2-step warm-up) with TensorFlow's profiler into `out_dir` (TensorBoard's
    Profile tab reads it), then prints the op-type and layer-kind self-time tables and
    writes them to `out_dir/op_types.tsv` and `out_dir/layer_kinds.tsv`.
    Returns (by op type, by layer kind) as `op_breakdown` does."""
    import glob
    import tensorflow as tf

    if steps < 1:
        raise ValueError(f"--steps={steps} must be a positive integer")
    batch, _, constant, build = _train_case(name, batch_size, False, mixed_precision, width)
    model = build(True)
    model.fit(constant, epochs=1, steps_per_epoch=2, verbose=0)  # trace + warm up
    os.makedirs(out_dir, exist_ok=True)
    before = set(glob.glob(os.path.join(out_dir, "plugins", "profile", "*", "*.xplane.pb")))
    tf.profiler.experimental.start(out_dir)
    try:
        start = time.perf_counter()
        model.fit(constant, epochs=1, steps_per_epoch=steps, verbose=0)
        seconds = time.perf_counter() - start
    finally:
        tf.profiler.experimental.stop()
    (trace,) = set(glob.glob(os.path.join(out_dir, "plugins", "profile", "*",
                                          "*.xplane.pb"))) - before
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    by_type, by_kind = op_breakdown(trace, kinds)
    tags = f" ({mixed_precision})" if mixed_precision != "none" else ""
    out(f"{name}{tags}{f' width {width}' if width else ''}: batch {batch}, {steps} steps "
        f"traced in {seconds:.2f} s ({steps * batch / seconds:.1f} images/s while tracing); "
        f"trace: {trace}")
    for title, rows, path in (("op type", by_type, "op_types.tsv"),
                              ("layer kind", by_kind, "layer_kinds.tsv")):
        with open(os.path.join(out_dir, path), "w") as f:
            f.write(f"{title}\tself_ms\tshare\tcount\n")
            for r in rows:
                f.write(f"{r['name']}\t{r['self_ms']:.3f}\t{r['share']:.5f}\t{r['count']}\n")
        out(f"{'self time by ' + title:<40} {'share':>7} {'ms/step':>9} {'runs/step':>9}")
        for r in rows[:top]:
            out(f"{r['name']:<40} {r['share']:7.2%} {r['self_ms'] / steps:9.2f} "
                f"{r['count'] / steps:9.1f}")
    return by_type, by_kind


def _define_profile_flags() -> None:
    flags.DEFINE_list("models", ["preact_resnet18_w16"], "Models to trace: "
                      + ", ".join(TRAIN_MODELS))
    flags.DEFINE_integer("steps", 10, "Traced steps (after a 2-step warm-up).")
    flags.DEFINE_integer("batch_size", 0, "Global batch (0: each model's default).")
    flags.DEFINE_integer("width", 0, "Replace the model's width (0: as named).")
    flags.DEFINE_enum("mixed_precision", "none", ["none", "bfloat16", "float16"],
                      "Compute dtype of the models (variables stay float32).")
    flags.DEFINE_integer("top", 25, "Rows of each table to print (the .tsv files have all).")
    flags.DEFINE_string("out", "/tmp/lg_tf_profile", "Folder of the traces; one subfolder "
                        "per model (`tensorboard --logdir=OUT/MODEL`, Profile tab).")


def _run_profile() -> None:
    unknown = [m for m in FLAGS.models if m not in TRAIN_MODELS]
    if unknown:
        raise cli.UsageError(f"unknown model(s) {unknown}; choose from {list(TRAIN_MODELS)}")
    for name in FLAGS.models:
        try:
            profile_benchmark(name, FLAGS.steps, os.path.join(FLAGS.out, name),
                              FLAGS.batch_size, FLAGS.mixed_precision, FLAGS.width, FLAGS.top)
        except ValueError as e:
            raise cli.UsageError(str(e)) from None


# --------------------------------------------------------------------------- PyTorch peer

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "bench", "torch_preact_bench.py")
# (lg_tf model, PreAct width, batch): the rows of BUILD.md's paired table.
PEER_CASES = {"w64b64": ("preact_resnet18_w64", 64, 64),
              "w16b128": ("preact_resnet18_w16", 16, 128)}


def torch_images_per_s(python: str, width: int, batch: int, channels_last: bool,
                       bf16: bool, script: str = PEER_SCRIPT) -> float:
    """One run of the PyTorch peer in its own interpreter; its images/s."""
    import subprocess
    args = [python, script, str(width), str(batch)] + (["cl"] if channels_last else []) + (
        ["bf16"] if bf16 else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise cli.UsageError(f"the PyTorch peer failed ({' '.join(args)}): "
                             f"{proc.stderr.strip().splitlines()[-1:]}")
    return float(proc.stdout.strip().splitlines()[-1].split(":")[-1].split()[0])


def peer_benchmark(python: str, cases, precisions, rounds: int, steps: int,
                   out: Callable[[str], None] = print) -> list[dict]:
    """lg_tf and PyTorch interleaved per round; returns one dict per (case, precision)."""
    import statistics as st
    results: dict = {}
    for r in range(1, rounds + 1):
        for case in cases:
            name, width, batch = PEER_CASES[case]
            for precision in precisions:
                bf16 = precision == "bf16"
                row = train_benchmark([name], steps, batch, out=out,
                                      mixed_precision="bfloat16" if bf16 else "none")[0]
                got = results.setdefault((case, precision), {"lg_tf": [], "lg_tf_constant": [],
                                                             "torch_cl": [], "torch_nchw": []})
                got["lg_tf"].append(row["images_per_s"])
                got["lg_tf_constant"].append(row["constant_images_per_s"])
                for layout, cl in (("torch_cl", True), ("torch_nchw", False)):
                    got[layout].append(torch_images_per_s(python, width, batch, cl, bf16))
                out(f"round {r} {case} {precision}: " + ", ".join(
                    f"{k} {v[-1]:.1f}" for k, v in got.items()) + " images/s")
    rows = []
    for (case, precision), got in results.items():
        med = {k: st.median(v) for k, v in got.items()}
        best = max(med["torch_cl"], med["torch_nchw"])
        rows.append({"case": case, "precision": precision, "runs": got, **med,
                     "ratio": med["lg_tf_constant"] / best})
    out("| model, batch | precision | lg_tf (pipeline) | lg_tf (constant batch) | "
        "PyTorch channels_last | PyTorch NCHW | lg_tf / best PyTorch |")
    out("|---|---|---|---|---|---|---|")
    for row in rows:
        name, width, batch = PEER_CASES[row["case"]]
        runs = row["runs"]
        out(f"| width {width}, batch {batch} | {row['precision']} | "
            + " | ".join(", ".join(f"{v:.1f}" for v in runs[k])
                         for k in ("lg_tf", "lg_tf_constant", "torch_cl", "torch_nchw"))
            + f" | **{row['ratio']:.2f}** |")
    return rows


def _define_peer_flags() -> None:
    flags.DEFINE_string("torch_python", "", "Python of a virtual environment with PyTorch "
                        "(never installed with lg_tf), e.g. ~/torchvenv/bin/python.")
    flags.DEFINE_list("cases", list(PEER_CASES), "Rows: " + ", ".join(PEER_CASES))
    flags.DEFINE_list("precisions", ["fp32", "bf16"], "fp32 and/or bf16 (lg_tf "
                      "--mixed_precision=bfloat16 against PyTorch's bf16 autocast).")
    flags.DEFINE_integer("rounds", 2, "Interleaved rounds (lg_tf, then PyTorch, per row).")
    flags.DEFINE_integer("steps", 8, "Timed lg_tf steps per variant (after a warm-up).")


def _run_peer() -> None:
    python = os.path.expanduser(FLAGS.torch_python)
    if not python or not os.path.exists(python):
        raise cli.UsageError("--torch_python must name the python of an environment with "
                             "PyTorch, e.g. python3 -m venv ~/torchvenv && ~/torchvenv/bin/pip "
                             "install torch numpy")
    unknown = [c for c in FLAGS.cases if c not in PEER_CASES] + [
        p for p in FLAGS.precisions if p not in ("fp32", "bf16")]
    if unknown or FLAGS.rounds < 1:
        raise cli.UsageError(f"unknown --cases/--precisions {unknown} or --rounds < 1; cases: "
                             f"{', '.join(PEER_CASES)}; precisions: fp32, bf16")
    peer_benchmark(python, FLAGS.cases, FLAGS.precisions, FLAGS.rounds, FLAGS.steps)


# --------------------------------------------------------------------------- entry point

@dataclasses.dataclass(frozen=True)
class Subcommand:
    help: str
    define_flags: Callable[[], None]
    run: Callable[[], None]


SUBCOMMANDS: dict[str, Subcommand] = {
    "pipeline": Subcommand("input pipeline throughput (images/s) on random CIFAR-shaped data",
                           _define_pipeline_flags, _run_pipeline),
    "train": Subcommand("training-step images/s and GFLOP/s of the paper's models vs matmul",
                        _define_train_flags, _run_train),
    "peer": Subcommand("lg_tf's training step against the PyTorch peer, interleaved",
                       _define_peer_flags, _run_peer),
    "profile": Subcommand("TensorFlow profiler trace of training steps; self time by op type",
                          _define_profile_flags, _run_profile),
}


def _usage() -> str:
    lines = ["usage: python -m lg_tf.benchmark SUBCOMMAND [--flags]", "subcommands:"]
    lines += [f"  {name}: {sub.help}" for name, sub in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _subcommand_name(argv: list[str]) -> str | None:
    """The first argument naming a subcommand (absl has not parsed argv yet)."""
    return next((a for a in argv[1:] if a in SUBCOMMANDS), None)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        cli.fail("give one subcommand; " + _usage().replace("\n", "\n  "))
    SUBCOMMANDS[argv[1]].run()
    return 0


def run_cli(argv: list[str] | None = None) -> None:
    """Bad usage exits 2, like every lg_tf command (cli.run)."""
    argv = sys.argv if argv is None else argv
    name = _subcommand_name(argv)
    if name is not None:
        SUBCOMMANDS[name].define_flags()
    cli.run(main, lambda a: cli.parse_flags(a, None, _usage() + "\n(--helpfull lists the "
                                            "subcommand's flags)"), argv)


if __name__ == "__main__":
    run_cli()
