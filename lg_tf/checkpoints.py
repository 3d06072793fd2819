"""Checkpoints of a run: one numbered tf.train.Checkpoint per epoch, found, verified,
restored and saved so that a kill, a lost index file or a full disk never costs more than
the epoch in progress (and never a wrong restore)."""

from __future__ import annotations

import collections
import errno
import logging
import os
import re
import time

import tensorflow as tf

from lg_tf.errors import RunError

log = logging.getLogger("lg_tf")


class Checkpointer:
    """tf.train.Checkpoint of model + optimizer, one numbered checkpoint (`ckpt-N`) per epoch.

    TensorFlow writes the data files under temporary names and updates its `checkpoint`
    index file last, so a kill mid-write leaves the previous checkpoint readable. Nothing
    here trusts that index file alone:

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

    def repair_index(self) -> None:
        """Makes TF's index file name the checkpoint restore() uses, when it is missing, stale or
        names a damaged one (a kill between a checkpoint's files and the index update), so that
        TensorFlow's own readers (tf.train.latest_checkpoint, TensorBoard) agree with lg_tf.

        Only training calls it, after every check and under the run's lock; readers of a
        model_dir (analyze, export) leave the folder as it is.
        """
        epoch = self.verify()
        if not epoch or self._number(self._indexed) == epoch:
            return
        kept = [p for p in self.manager.checkpoints if self._number(p) <= epoch]
        try:
            tf.compat.v1.train.update_checkpoint_state(
                self.directory, self._prefix(epoch), all_model_checkpoint_paths=kept)
        except (OSError, tf.errors.OpError) as e:  # the files themselves are whole: go on
            log.warning("could not rewrite %s (%s); lg_tf reads the checkpoints from their own "
                        "files", os.path.join(self.directory, "checkpoint"), self._why(e))
            return
        self._indexed = self._prefix(epoch)

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
