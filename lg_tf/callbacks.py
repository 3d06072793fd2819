"""Callbacks: checkpoint/resume, TensorBoard scalars + HParams, results.json, progress lines.

Metric names follow one convention everywhere (TensorBoard tags and results.json keys):
`train/<metric>`, `test/<metric>`, `train_eval/<metric>`.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import interrupt
from lg_tf.errors import RunError

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


def write_json_atomic(path: str, payload) -> None:
    """Writes JSON to a temp name in the same folder, then renames it over `path`.

    A kill never leaves half a file. Through tf.io.gfile, so a remote model_dir (gs://) works
    too; a local file gets the usual mode (0o666 & ~umask), like every other output. The temp
    name starts with `.tmp_` (lg_tf.run_dir knows such leftovers as lg_tf's own).
    """
    text = json.dumps(payload, indent=2, default=float)
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".tmp_{os.urandom(6).hex()}_{os.path.basename(path)}")
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        try:
            if tf.io.gfile.exists(tmp):
                tf.io.gfile.remove(tmp)
        except (OSError, tf.errors.OpError):
            pass
        raise


def current_lr(model) -> float:
    opt = model.optimizer
    lr = opt.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


class Checkpointer:
    """tf.train.Checkpoint of model + optimizer, one numbered checkpoint (`ckpt-N`) per epoch.

    TensorFlow writes the data files under temporary names and updates its `checkpoint`
    index file last, so a kill mid-write leaves the previous checkpoint readable. Nothing
    here trusts that index file alone (issue 10):

    * checkpoints are found from their own `ckpt-N.index` / `ckpt-N.data-*` files (and the
      index file), so a lost or stale `checkpoint` file costs nothing;
    * `verify()` checks the newest one before anything is restored or written: the shapes
      stored for its variables against this model's and optimizer's (other shapes = another
      model: RunError), then every tensor is read (TensorFlow checks each one's checksum).
      One cut short or missing a file is skipped, with a warning, for the next older one;
      RunError when checkpoint files exist but none is whole;
    * `save()` turns a failed write (disk full, ...) into a RunError naming the intact epoch,
      and after a fallback it replaces the damaged checkpoint of that epoch.

    `verify()` only reads: the model's values and the folder stay as they are (it reads the
    chosen checkpoint once more than a bare restore does). `restore()` verifies (once) and
    then restores; `latest_epoch` is the epoch restore() uses (verifying on first use), and
    after `save(N)` it is N.
    """

    _FILE = re.compile(r"ckpt-(\d+)\.(index|data-\d+-of-(\d+))$")
    _READ_ERRORS = (tf.errors.OpError, OSError, ValueError, IndexError, RuntimeError)

    def __init__(self, directory: str, model, max_to_keep: int = 3):
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        self.manager = self._new_manager(max_to_keep)
        self._model = model
        self._indexed = self.manager.latest_checkpoint  # what TF's index file says, if anything
        self._epoch: int | None = None   # the epoch restore() uses; None until verify()
        self._skip: dict[int, str] = {}  # epoch -> why restoring it failed after verify()

    def _new_manager(self, max_to_keep: int) -> tf.train.CheckpointManager:
        try:
            return tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep)
        except ValueError:
            # An index file naming no checkpoint (cut short): TensorFlow refuses the folder.
            # Read it as absent; verify() finds the checkpoints from their own files.
            from tensorflow.python.checkpoint import checkpoint_management as cm
            real = cm.get_checkpoint_state
            cm.get_checkpoint_state = lambda *args, **kwargs: None
            try:
                return tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep)
            finally:
                cm.get_checkpoint_state = real

    @property
    def latest_epoch(self) -> int:
        """The epoch restore() uses / used (0 = fresh start); after `save(N)`, N."""
        return self.verify()

    def verify(self) -> int:
        """The epoch restore() will use (0: no checkpoint), checked before anything is written.

        Read-only. Raises RunError when the folder holds another model's checkpoints or when
        checkpoint files exist but none is whole; logs a warning for each newer one skipped.
        """
        if self._epoch is not None:
            return self._epoch
        found = self._scan()
        failed, chosen = [], 0
        for epoch in sorted(found, reverse=True):
            problem = self._skip.get(epoch) or self._problem(epoch, found[epoch])
            if problem is None:
                chosen = epoch
                break
            failed.append((epoch, problem))
        if failed and not chosen:
            damage = "; ".join(f"ckpt-{e}: {p}" for e, p in failed)
            raise RunError(f"every checkpoint in {self.directory} is damaged ({damage}); pass "
                           "--overwrite to start afresh or restore the folder from a backup")
        for epoch, problem in failed:
            log.warning("checkpoint ckpt-%d in %s cannot be restored: %s; using the checkpoint "
                        "of epoch %d instead", epoch, self.directory, problem, chosen)
        indexed = self._number(self._indexed)
        if chosen and not failed and indexed != chosen:
            log.warning("TensorFlow's index file %s %s; using the checkpoint of epoch %d found "
                        "from its own files", os.path.join(self.directory, "checkpoint"),
                        "is missing or unreadable" if indexed is None
                        else f"names epoch {indexed}", chosen)
        self._adopt(chosen, found)
        self._epoch = chosen
        return chosen

    def restore(self) -> int:
        """Restores the newest whole checkpoint; returns its epoch (0 = fresh start)."""
        while True:
            epoch = self.verify()
            if not epoch:
                return 0
            try:
                self.checkpoint.restore(self._prefix(epoch)).assert_existing_objects_matched()
                return epoch
            except (AssertionError, ValueError) as e:
                raise RunError(f"{self.directory} holds a run of a different model: its "
                               f"checkpoint of epoch {epoch} does not fit this model "
                               f"({self._why(e)}); use another --model_dir, or pass "
                               "--overwrite to start afresh") from e
            except self._READ_ERRORS as e:  # damaged since verify(): the next older one
                self._skip[epoch] = f"restoring it failed ({self._why(e)})"
                self._epoch = None

    def save(self, epoch: int) -> str:
        """Writes `ckpt-<epoch>` (replacing a damaged one of that number) and prunes old ones."""
        intact = self.latest_epoch
        try:
            path = self.manager.save(checkpoint_number=epoch)
        except (OSError, tf.errors.OpError) as e:
            self._remove_temp(epoch)
            raise RunError(self._save_failed(epoch, intact, e)) from e
        self._epoch = epoch
        self._skip.pop(epoch, None)
        return path

    # ------------------------------------------------------------------ helpers

    def _prefix(self, epoch: int) -> str:
        return os.path.join(self.directory, f"ckpt-{epoch}")

    @staticmethod
    def _number(path: str | None) -> int | None:
        match = re.fullmatch(r"ckpt-(\d+)", os.path.basename(path or ""))
        return int(match.group(1)) if match else None

    @staticmethod
    def _why(e: BaseException) -> str:
        """An exception as one short line (no traceback)."""
        text = (getattr(e, "message", None) or str(e)).strip()
        line = text.splitlines()[0] if text else type(e).__name__
        return line if len(line) <= 200 else line[:197] + "..."

    def _scan(self) -> dict[int, list[str]]:
        """Epoch -> names of its files, from the folder itself and TF's index file."""
        found: dict[int, list[str]] = {}
        for path in [self._indexed, *self.manager.checkpoints]:
            if self._number(path) is not None:
                found.setdefault(self._number(path), [])
        try:
            names = (tf.io.gfile.listdir(self.directory)
                     if tf.io.gfile.isdir(self.directory) else [])
        except tf.errors.OpError as e:
            raise RunError(f"cannot list the checkpoints in {self.directory} "
                           f"({self._why(e)}); check the folder and re-run") from e
        for name in names:
            match = self._FILE.match(name.rstrip("/"))
            if match:
                found.setdefault(int(match.group(1)), []).append(name.rstrip("/"))
        return found

    def _problem(self, epoch: int, names: list[str]) -> str | None:
        """Why checkpoint `epoch` cannot be restored, None when it can.

        Raises RunError when it is whole but holds another model.
        """
        from google.protobuf.message import DecodeError
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        base = f"ckpt-{epoch}"
        if f"{base}.index" not in names:
            return f"{base}.index is missing"
        shards = [int(m.group(3)) for m in map(self._FILE.match, names) if m and m.group(3)]
        total = shards[0] if shards else 1
        expected = [f"{base}.data-{i:05d}-of-{total:05d}" for i in range(total)]
        missing = [n for n in expected if n not in names]
        if missing:
            return f"{missing[0]} is missing"
        data = expected[0] if total == 1 else f"{base}.data-*-of-{total:05d}"
        errors = (*self._READ_ERRORS, DecodeError)
        try:
            reader = tf.train.load_checkpoint(self._prefix(epoch))
            shapes = reader.get_variable_to_shape_map()
        except errors as e:
            return f"{base}.index is unreadable ({self._why(e)})"
        try:
            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        except errors as e:
            return self._damaged(data, e)
        self._check_shapes(epoch, graph, shapes)
        for key in shapes:
            try:
                reader.get_tensor(key)
            except errors as e:
                return self._damaged(data, e)
        return None

    def _damaged(self, name: str, e: BaseException) -> str:
        why = self._why(e)
        return f"{name} is {'cut short' if 'less bytes' in why.lower() else 'damaged'} ({why})"

    def _check_shapes(self, epoch: int, graph, shapes: dict) -> None:
        """RunError naming one variable whose stored shape differs from this model's.

        Walks the checkpoint's object graph and the live objects side by side, by the names
        a restore matches them by.
        """
        order = {id(v): i for i, v in enumerate(self._model.weights)}  # report a layer's first
        optimizer = self._model.optimizer
        live_vars = list(self._model.weights) + list(getattr(optimizer, "variables", []))
        optimizer_built = len(live_vars) > len(self._model.weights)  # else it restores later
        matched, differ, extra = set(), [], []
        todo, seen = [(0, self.checkpoint, "")], set()
        while todo:
            node_id, obj, path = todo.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            node = graph.nodes[node_id]
            for attr in node.attributes:
                if attr.name != "VARIABLE_VALUE" or attr.checkpoint_key not in shapes:
                    continue
                saved = tuple(int(d) for d in shapes[attr.checkpoint_key])
                if not hasattr(obj, "shape"):
                    extra.append((attr.checkpoint_key, saved))
                    continue
                matched.add(id(obj))
                live = tuple(int(d) for d in obj.shape)
                if saved != live:
                    name = getattr(obj, "path", None) or getattr(obj, "name", attr.checkpoint_key)
                    differ.append((order.get(id(obj), len(order)), name, saved, live))
            children = tf.train.TrackableView.children(obj) if node.children else {}
            for ref in node.children:
                child_path = f"{path}/{ref.local_name}".lstrip("/")
                if ref.local_name in children:
                    todo.append((ref.node_id, children[ref.local_name], child_path))
                elif child_path.startswith("model/") or (
                        optimizer_built and child_path.startswith("optimizer/")):
                    # (the root's own save_counter is created by the restore)
                    extra += self._variables_under(graph, ref.node_id, shapes)
        where = f"{self.directory} holds a run of a different model"
        advice = "use another --model_dir, or pass --overwrite to start afresh"
        if differ:
            _, name, saved, live = min(differ)
            raise RunError(f"{where}: variable {name} has shape {saved} in its checkpoint of "
                           f"epoch {epoch} but {live} in this model; {advice}")
        unmatched = [v for v in live_vars if id(v) not in matched]
        if unmatched:
            v = unmatched[0]
            raise RunError(f"{where}: this model's variable {getattr(v, 'path', v.name)} "
                           f"(shape {tuple(v.shape)}) is not in its checkpoint of epoch "
                           f"{epoch}; {advice}")
        if extra:
            key, saved = extra[0]
            raise RunError(f"{where}: its checkpoint of epoch {epoch} holds {key} (shape "
                           f"{saved}), which this model does not have; {advice}")

    @staticmethod
    def _variables_under(graph, node_id: int, shapes: dict) -> list:
        out, todo, seen = [], [node_id], set()
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            out += [(a.checkpoint_key, tuple(int(d) for d in shapes[a.checkpoint_key]))
                    for a in graph.nodes[i].attributes
                    if a.name == "VARIABLE_VALUE" and a.checkpoint_key in shapes]
            todo += [ref.node_id for ref in graph.nodes[i].children]
        return out

    def _adopt(self, chosen: int, found: dict) -> None:
        """Makes CheckpointManager continue from `chosen` (max_to_keep pruning included).

        Its bookkeeping comes from the index file, which may be lost, stale or name a damaged
        checkpoint: the kept list becomes the checkpoints up to `chosen`, so the next save of
        a skipped epoch replaces that damaged one and older ones are pruned as usual.
        """
        manager = self.manager
        if not hasattr(manager, "_maybe_delete"):  # another TensorFlow: keep its own view
            return
        old, now = dict(manager._maybe_delete), time.time()
        kept = [self._prefix(e) for e in sorted(found) if e <= chosen] if chosen else []
        manager._maybe_delete = collections.OrderedDict((p, old.get(p, now)) for p in kept)
        manager._latest_checkpoint = self._prefix(chosen) if chosen else None

    def _remove_temp(self, epoch: int) -> None:
        """Best effort: the partial files a failed save leaves (`ckpt-N_temp*`)."""
        try:
            for path in tf.io.gfile.glob(self._prefix(epoch) + "_temp*"):
                if tf.io.gfile.isdir(path):
                    tf.io.gfile.rmtree(path)
                else:
                    tf.io.gfile.remove(path)
        except (OSError, tf.errors.OpError):
            pass

    def _save_failed(self, epoch: int, intact: int, e: BaseException) -> str:
        full = (isinstance(e, tf.errors.ResourceExhaustedError)
                or getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
                or "no space left" in str(e).lower())
        kept = (f"the checkpoint of epoch {intact} is intact" if intact
                else "no earlier checkpoint exists")
        then = "resume" if intact else "start again"
        if full:
            return (f"no space left while saving the checkpoint of epoch {epoch} in "
                    f"{self.directory}; {kept}: free space and re-run the same command to "
                    f"{then}")
        return (f"could not save the checkpoint of epoch {epoch} in {self.directory} "
                f"({self._why(e)}); {kept}: fix that and re-run the same command to {then}")


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
