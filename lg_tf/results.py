"""results.json: the run's flags, data counts, per-epoch metrics and final numbers.

Rewritten atomically after every epoch; on resume the epochs after the restored
checkpoint are dropped, so the file never holds an epoch twice or one the model lost.
The version it replaces is kept as `results.json.bak`: a results.json cut short (a full
disk, a crash of the machine) falls back to it, and if neither reads, the run resumes with
a warning and an empty history rather than failing.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time

import tensorflow as tf

from lg_tf.errors import RunError
from lg_tf import files
from lg_tf.files import write_json_atomic

log = logging.getLogger("lg_tf")


class Results:
    def __init__(self, path: str, header: dict, resume_epoch: int = 0):
        self.path = path
        self.backup = path + ".bak"
        self.data = {**header, "epochs": [], "final": {}, "wall_time_s": 0.0}
        self._on_disk_whole = False  # `path` holds a version known to parse (worth a backup)
        if resume_epoch:
            epochs = self._previous_epochs(resume_epoch)
            self.data["epochs"] = [e for e in epochs if e["epoch"] <= resume_epoch]
            self.data["wall_time_s"] = sum(e.get("seconds", 0.0) for e in self.data["epochs"])
        self._t0 = time.time()

    def add_epoch(self, epoch: int, scalars: dict, seconds: float) -> None:
        self.data["epochs"] = [e for e in self.data["epochs"] if e["epoch"] < epoch]
        self.data["epochs"].append({"epoch": epoch, "seconds": seconds, **scalars})
        self.data["wall_time_s"] += seconds
        self.write()

    def set(self, key: str, value) -> None:
        self.data[key] = value

    def finish(self, final: dict) -> dict:
        self.data["final"] = final
        self.write()
        return self.data

    def write(self) -> None:
        """results.json atomically; the version it replaces (when whole) to results.json.bak.

        A write that fails (full disk, ...) raises RunError; the files already there stay.
        """
        try:
            if self._on_disk_whole:
                files.copy(self.path, self.backup)
            write_json_atomic(self.path, self.data)
        except (OSError, tf.errors.OpError) as e:
            full = (isinstance(e, tf.errors.ResourceExhaustedError)
                    or getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
                    or "no space left" in str(e).lower())
            what = (f"no space left while writing {self.path}" if full
                    else f"could not write {self.path} ({_one_line(e)})")
            raise RunError(f"{what}; the last checkpoint is intact: "
                           f"{'free space' if full else 'fix that'} and re-run the same "
                           "command to resume") from e
        self._on_disk_whole = True

    # ------------------------------------------------------------------ resume

    def _previous_epochs(self, resume_epoch: int) -> list:
        """The per-epoch records of the run being resumed; never raises.

        results.json, else results.json.bak (the version before it), else none (a warning
        says the history is lost; the checkpoint, and so the training, is not).
        """
        epochs, why = _read_epochs(self.path)
        if epochs is not None:
            self._on_disk_whole = True
            return epochs
        backup, backup_why = _read_epochs(self.backup)
        if backup is not None:
            have = [e["epoch"] for e in backup if e["epoch"] <= resume_epoch]
            lost = sorted(set(range(1, resume_epoch + 1)) - set(have))
            log.warning("%s %s; using its previous version %s (epochs %s)%s", self.path, why,
                        os.path.basename(self.backup), _span(have) or "none",
                        f"; the records of epochs {_span(lost)} are lost (the checkpoint of "
                        f"epoch {resume_epoch} is intact)" if lost else "")
            return backup
        log.warning("%s %s, and %s %s: the per-epoch history up to epoch %d was lost, but the "
                    "checkpoint of epoch %d is intact; training resumes from it", self.path, why,
                    os.path.basename(self.backup), backup_why, resume_epoch, resume_epoch)
        return []


def _read_epochs(path: str) -> tuple[list | None, str]:
    """(the file's epoch records, "") or (None, why they cannot be used)."""
    try:
        if not files.exists(path):
            return None, "is missing"
        data = json.loads(files.read_text(path))
    except (OSError, tf.errors.OpError, UnicodeDecodeError) as e:
        return None, f"is unreadable ({_one_line(e)})"
    except ValueError as e:
        return None, f"does not parse (cut short? {_one_line(e)})"
    epochs = data.get("epochs") if isinstance(data, dict) else None
    if not isinstance(epochs, list) or not all(
            isinstance(e, dict) and isinstance(e.get("epoch"), int) for e in epochs):
        return None, "holds no list of epoch records"
    return epochs, ""


def _span(epochs: list) -> str:
    if not epochs:
        return ""
    if epochs == list(range(epochs[0], epochs[-1] + 1)) and len(epochs) > 1:
        return f"{epochs[0]}-{epochs[-1]}"
    return ", ".join(map(str, epochs))


def _one_line(e: BaseException) -> str:
    text = (getattr(e, "message", None) or str(e)).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
