"""Callbacks: stop on signals and NaN, per-epoch records (results.json, TensorBoard scalars,
the checkpoint through lg_tf.checkpoints), train-split evaluation and progress lines.

Metric names follow one convention everywhere (TensorBoard tags and results.json keys):
`train/<metric>`, `test/<metric>`, `train_eval/<metric>`.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import interrupt
from lg_tf.checkpoints import Checkpointer

log = logging.getLogger("lg_tf")


def tagged(logs: dict) -> dict:
    """Keras log names -> split-prefixed tags (`val_loss` -> `test/loss`, `loss` ->
    `train/loss`)."""
    out = {}
    for key, value in logs.items():
        if "/" in key:
            out[key] = value
        elif key.startswith("val_"):
            out["test/" + key[4:]] = value
        else:
            out["train/" + key] = value
    return out


def current_lr(model) -> float:
    opt = model.optimizer
    lr = opt.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


class Guard(keras.callbacks.Callback):
    """Stops training at the next step on SIGTERM/SIGINT (lg_tf.interrupt) or a non-finite loss.

    `async_safe`: Keras runs its batch hook on a helper thread, so watching the loss never
    makes the training loop wait for a step to finish (no per-step host sync).
    """

    async_safe = True

    def __init__(self, steps_per_epoch: int, on_nan: str = "stop"):
        super().__init__()
        self.steps_per_epoch, self.on_nan = steps_per_epoch, on_nan
        self.stop_reason = ""       # why training stopped early ("" = it did not)
        self.nonfinite = False      # the loss went non-finite in this epoch

    @property
    def sigterm(self) -> bool:
        """A stop signal (SIGTERM or SIGINT) was received."""
        return bool(interrupt.requested())

    def finish(self, last_saved_epoch: int) -> None:
        """After fit: a SIGTERM that came after the last check still stops the run here."""
        if self.sigterm and not self.stop_reason:
            self.stop_reason = (f"{interrupt.requested()} received after epoch "
                                f"{last_saved_epoch}")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps_done, self.nonfinite = epoch, 0, False

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done = batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)) and not self.nonfinite:
            self.nonfinite = True
            if self.on_nan == "stop":
                self._stop(f"the training loss became {float(loss)} at epoch "
                           f"{self.epoch + 1} step {batch + 1}")
        if self.sigterm and not self.stop_reason:
            self._stop(f"{interrupt.requested()} received at epoch {self.epoch + 1} step "
                       f"{batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        if self.sigterm and not self.stop_reason:  # arrived during evaluation: epoch is whole
            self.stop_reason = f"{interrupt.requested()} received after epoch {epoch + 1}"
            self.model.stop_training = True

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.model.stop_training = True

    def epoch_is_good(self) -> bool:
        """A checkpoint may be written: every step ran and (when stopping on NaN) stayed finite."""
        complete = self.steps_done >= self.steps_per_epoch
        return complete and not (self.nonfinite and self.on_nan == "stop")


class EpochEnd(keras.callbacks.Callback):
    """Saves the epoch's metrics (results.json), TensorBoard scalars and the checkpoint.

    One callback so that the three always agree on which epochs finished. The records come
    first and the checkpoint last: a kill in between makes the resumed run redo the epoch,
    and `Results` drops any record newer than the restored checkpoint. An epoch cut short
    (SIGTERM, non-finite loss) is neither recorded nor saved.
    """

    def __init__(self, checkpointer: Checkpointer, results, writer, images_per_epoch: int,
                 guard: Guard | None = None):
        super().__init__()
        self.checkpointer, self.results, self.writer = checkpointer, results, writer
        self.images_per_epoch, self.guard = images_per_epoch, guard

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._lr = current_lr(self.model)  # the rate this epoch trains with

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and not self.guard.epoch_is_good():
            log.warning("epoch %d not saved: %s", epoch + 1,
                        self.guard.stop_reason or "it did not finish")
            return
        seconds = time.perf_counter() - self._start
        scalars = {k: float(v) for k, v in tagged(logs or {}).items()
                   if not hasattr(v, "shape") or not getattr(v, "shape", ())}
        scalars["train/learning_rate"] = self._lr
        scalars["train/images_per_second"] = self.images_per_epoch / seconds
        self.results.add_epoch(epoch + 1, scalars, seconds)
        with self.writer.as_default(step=epoch + 1):
            for tag, value in scalars.items():
                tf.summary.scalar(tag, value)
        self.writer.flush()
        self.checkpointer.save(epoch + 1)
        log.info("epoch %d/%d  %.1fs  %.1f img/s  %s", epoch + 1, self.params["epochs"], seconds,
                 scalars["train/images_per_second"], _short(scalars))


def _short(scalars: dict) -> str:
    keys = ("train/loss", "train/coarse_accuracy", "train/fine_accuracy", "test/loss",
            "test/coarse_accuracy", "test/fine_accuracy", "train_eval/coarse_accuracy",
            "test/acr", "train/learning_rate")
    return "  ".join(f"{k} {scalars[k]:.4g}" for k in keys if k in scalars)


class TrainSplitEval(keras.callbacks.Callback):
    """Evaluates the un-augmented training split at each epoch end (the paper's train accuracy)."""

    def __init__(self, dataset, steps=None):
        super().__init__()
        self.dataset, self.steps = dataset, steps

    def on_epoch_end(self, epoch, logs=None):
        result = self.model.evaluate(self.dataset, steps=self.steps, verbose=0, return_dict=True)
        for key, value in result.items():
            logs[f"train_eval/{key}"] = value


class StepProgress(keras.callbacks.Callback):
    """A line every `every_s` seconds inside long epochs, so a person sees it is moving.

    `async_safe`: Keras calls it on a helper thread, so the training loop never waits on it.
    """

    async_safe = True

    def __init__(self, every_s: float = 30.0):
        super().__init__()
        self.every_s = every_s

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._t0 = epoch, time.perf_counter()
        self._last = self._t0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        steps = self.params.get("steps") or 0
        rate = (batch + 1) / (now - self._t0)
        log.info("  epoch %d step %d/%d  %.2f steps/s  loss %.4g", self._epoch + 1, batch + 1,
                 steps, rate, float((logs or {}).get("loss", float("nan"))))
