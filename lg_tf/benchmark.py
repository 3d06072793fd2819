"""Benchmarks, one subcommand each.

    python -m lg_tf.benchmark pipeline [--batch_size=128] [--epochs=3] [--num_examples=50000]

`pipeline` times the training input pipeline (`pipeline.make_dataset(training=True)`:
shuffle, batch, pad-4 crop + flip, normalise, prefetch) on CIFAR-shaped random uint8
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

from absl import app, flags

TARGET_IMAGES_PER_SECOND = 50_000
FLAGS = flags.FLAGS


# --------------------------------------------------------------------------- pipeline

def synthetic_cifar(num_examples: int, num_classes: int = 10, seed: int = 0):
    """A `Split` of random uint8 [N, 32, 32, 3] images with random labels."""
    import numpy as np
    from lg_tf.data.sources import Split
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
        f"(shuffle, pad-4 crop + flip, normalise), {epochs} epochs (the first is a warm-up); "
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
        raise app.UsageError(str(e)) from None


# --------------------------------------------------------------------------- entry point

@dataclasses.dataclass(frozen=True)
class Subcommand:
    help: str
    define_flags: Callable[[], None]
    run: Callable[[], None]


SUBCOMMANDS: dict[str, Subcommand] = {
    "pipeline": Subcommand("input pipeline throughput (images/s) on random CIFAR-shaped data",
                           _define_pipeline_flags, _run_pipeline),
}


def _usage() -> str:
    lines = ["usage: python -m lg_tf.benchmark SUBCOMMAND [--flags]", "subcommands:"]
    lines += [f"  {name}: {sub.help}" for name, sub in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _subcommand_name(argv: list[str]) -> str | None:
    """The first argument naming a subcommand (absl has not parsed argv yet)."""
    return next((a for a in argv[1:] if a in SUBCOMMANDS), None)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        raise app.UsageError(_usage())
    SUBCOMMANDS[argv[1]].run()


def run_cli(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    name = _subcommand_name(argv)
    if name is not None:
        SUBCOMMANDS[name].define_flags()
    app.run(main, argv=argv)


if __name__ == "__main__":
    run_cli()
