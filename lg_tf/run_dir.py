"""A model_dir belongs to lg_tf: what makes a folder a run, and one process at a time in it.

* `lg_tf_run.json` (the marker) is written when a run is created; it keeps the fingerprint
  of the data the run trains on and the history of resumes.
* A folder is lg_tf's when it holds the marker, or an lg_tf run of an earlier version
  (config.json beside checkpoints/ or results.json), or only files lg_tf itself leaves
  (its lock, probes, worker side folders). Anything else is the user's: lg_tf refuses to
  write there and never deletes from it, with or without --overwrite.
* `.lg_tf.lock` holds the pid and host of the process training in the folder; a second
  process is refused while that one lives, and a lock left by a dead process is taken over.
* Before a run writes anything, `inspect_model_dir` reads what the folder holds (`Prior`):
  a resume that would train something else is refused, and `check_same_data` and
  `check_free_space` refuse other data or a disk too small for the run.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fnmatch
import json
import logging
import os
import shutil
import socket

import numpy as np

from lg_tf import config as config_lib
from lg_tf import files
from lg_tf.errors import RunError

log = logging.getLogger("lg_tf")

MARKER = "lg_tf_run.json"
LOCK = ".lg_tf.lock"
# What lg_tf writes into a model_dir; --overwrite removes exactly these and nothing else.
RUN_CONTENTS = ("checkpoints", "tensorboard", "export", "export.tmp", "results.json",
                "results.json.bak", "config.json", "confusion.json", "confusion.png",
                "acr_test.json", "acr_train.json", "tsne_test.png", "tsne_train.png",
                "projector", MARKER)
_OWN_LEFTOVERS = (LOCK, ".write_test_*", files.TEMP_PREFIX + "*", "worker_*")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def kind(model_dir: str) -> str:
    """'absent', 'empty', 'run' (an lg_tf run, possibly half-written) or 'foreign'."""
    if not files.exists(model_dir):
        return "absent"
    if not files.isdir(model_dir):
        return "foreign"
    names = files.listdir(model_dir)
    if MARKER in names:
        return "run"
    if "config.json" in names and ({"checkpoints", "results.json"} & set(names)):
        return "run"  # written by lg_tf before the marker existed
    if all(any(fnmatch.fnmatch(n, p) for p in _OWN_LEFTOVERS) for n in names):
        return "empty" if not names else "run"
    return "foreign"


def check_usable(model_dir: str) -> str:
    """Refuses a path that is not a folder lg_tf may write in; returns its `kind`."""
    k = kind(model_dir)
    if k == "foreign":
        if not files.isdir(model_dir):
            raise RunError(f"--model_dir={model_dir} is a file, not a folder; choose a new "
                           "folder")
        shown = sorted(files.listdir(model_dir))[:3]
        raise RunError(f"--model_dir={model_dir} already holds files that lg_tf did not write "
                       f"({', '.join(shown)}{', ...' if len(shown) == 3 else ''}); choose a new "
                       "or empty folder (lg_tf never writes over or deletes other files)")
    return k


def read_marker(model_dir: str) -> dict:
    path = os.path.join(model_dir, MARKER)
    if not files.exists(path):
        return {}
    try:
        data = json.loads(files.read_text(path))
        return data if isinstance(data, dict) else {}
    except ValueError:
        log.warning("%s is damaged; it is rewritten (the run's checkpoints are unaffected)",
                    path)
        return {}


def write_marker(model_dir: str, data: dict) -> None:
    files.write_json_atomic(os.path.join(model_dir, MARKER), {"lg_tf_run": 1, **data})


def discard_run(model_dir: str) -> None:
    """--overwrite: removes what lg_tf wrote in model_dir, and only that."""
    log.warning("--overwrite: discarding the previous run in %s", model_dir)
    for name in RUN_CONTENTS:
        path = os.path.join(model_dir, name)
        if not files.exists(path):
            continue
        if files.isdir(path):
            files.rmtree(path)
        else:
            files.remove(path)


# --------------------------------------------------------------------------- before a run

def saved_results(model_dir: str) -> dict:
    """results.json, else its previous copy (results.json.bak), else {}."""
    path = os.path.join(model_dir, "results.json")
    return files.read_json(path) or files.read_json(path + ".bak") or {}


@dataclasses.dataclass
class Prior:
    """What model_dir holds before this run touches it (read-only inspection)."""
    kind: str                    # kind(): absent, empty, run
    saved: dict | None           # its config.json (or results.json's config)
    marker: dict                 # lg_tf_run.json
    discard: bool                # --overwrite of a run with training changes


def inspect_model_dir(cfg: config_lib.Config, model_dir: str) -> Prior:
    """Refuses a folder that is not lg_tf's, or a resume that would train something else.

    Reads only. Harmless changes (--epochs, --eval_every, --acr_every, ...) are allowed and
    recorded later as a resume; training changes need --overwrite.
    """
    kind = check_usable(model_dir)
    if kind != "run":
        return Prior(kind, None, {}, False)
    saved = config_lib.read_saved(model_dir)
    if saved is None:  # config.json lost: results.json keeps a copy; else the checkpoint decides
        saved = saved_results(model_dir).get("config")
    marker = read_marker(model_dir)
    changes = config_lib.training_changes(saved, cfg) if saved else {}
    if changes and not cfg.overwrite:
        raise RunError(f"--model_dir={model_dir} holds a run trained with other settings "
                       f"({config_lib.describe_changes(changes)}); resume it with its own "
                       "flags, use a new --model_dir, or pass --overwrite to start it afresh")
    return Prior(kind, saved, marker, bool(cfg.overwrite))


def check_same_data(prior: Prior, data, cfg, model_dir: str) -> None:
    """Refuses to resume a run on data other than it trained on (the marker's fingerprint
    against `data.stats`), unless the old run is being discarded."""
    old = prior.marker.get("data_fingerprint")
    new = data.stats.get("fingerprint")
    if prior.discard or not old or not new or old == new:
        return
    raise RunError(f"the data now under --dataset={cfg.dataset}"
                   + (f" --data_dir={cfg.data_dir}" if cfg.data_dir else "")
                   + f" is not the data the run in {model_dir} trained on (fingerprint {new}, "
                   f"was {old}: other classes or files); point --data_dir at the original "
                   "data, use a new --model_dir, or pass --overwrite to start afresh")


def check_free_space(model_dir: str, model) -> None:
    """Refuses to start when model_dir's disk cannot hold the run's checkpoints and export.

    Needed: 3 kept checkpoints + 1 being written (weights and optimizer slots) and the
    SavedModel, with 50% headroom. A disk that fills later fails inside TensorFlow's
    writer; the previous checkpoint stays valid because the index is updated last.
    """
    if "://" in model_dir:
        return  # a remote filesystem reports no free space; its writes fail loudly instead
    bytes_per_copy = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                         for v in model.weights)
    needed = int(bytes_per_copy * (2 * 4 + 1) * 1.5)  # weights+momentum x4, export, headroom
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        raise RunError(f"only {free / 2**20:.0f} MiB free under --model_dir={model_dir}, and "
                       f"this run's checkpoints and export need about {needed / 2**20:.0f} MiB; "
                       "free some space or choose another --model_dir")


# --------------------------------------------------------------------------- the lock

class Lock:
    """An exclusive claim on a model_dir for this process (a context manager)."""

    def __init__(self, model_dir: str):
        self.path = os.path.join(model_dir, LOCK)
        self.model_dir = model_dir
        self.held = False

    def acquire(self) -> "Lock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": now()}
        if "://" in self.model_dir:
            # Object stores have no exclusive create: remote run folders are not locked.
            files.makedirs(self.model_dir)
            log.info("no lock on %s: remote filesystems cannot hold one", self.model_dir)
            return self
        try:
            os.makedirs(self.model_dir, exist_ok=True)
        except OSError as e:
            raise RunError(f"cannot create --model_dir={self.model_dir} ({e.strerror}); "
                           "choose a writable folder") from None
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as e:
                raise RunError(f"cannot write to --model_dir={self.model_dir} ({e.strerror}); "
                               "choose a writable folder") from None
            self.held = True  # from here on, release() removes it, even if a signal stops us
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
            except BaseException:
                self.release()
                raise
            return self
        raise RunError(f"cannot take the lock {self.path}; another lg_tf process took it "
                       "at the same moment: wait for it to finish")

    def _take_over_if_stale(self) -> None:
        if os.path.isdir(self.path):
            # Not a lock lg_tf wrote, and removing a folder could lose what is in it.
            raise RunError(f"{self.path} is a folder, where lg_tf keeps its lock file; remove "
                           "that folder (or move it away) and re-run")
        owner, damage = _read_owner(self.path)
        if damage:
            # Nothing lg_tf writes looks like this: no process can be relying on it.
            log.warning("the lock %s is damaged (%s); taking it over", self.path, damage)
            self._remove_stale()
            return
        pid, host = owner.get("pid"), owner.get("host")
        if pid and host == socket.gethostname() and _alive(pid) and pid != os.getpid():
            raise RunError(f"--model_dir={self.model_dir} is in use by process {pid} on this "
                           f"machine (since {owner.get('started', '?')}); wait for it to "
                           "finish or stop it, or use another --model_dir (if process "
                           f"{pid} is not an lg_tf run, delete {self.path} and re-run)")
        if pid and host and host != socket.gethostname():
            raise RunError(f"--model_dir={self.model_dir} is in use by process {pid} on host "
                           f"{host} (since {owner.get('started', '?')}); if that process is "
                           f"gone, delete {self.path} and re-run")
        log.warning("taking over the lock of %s left by process %s, which is no longer "
                    "running", self.model_dir, pid or "?")
        self._remove_stale()

    def _remove_stale(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# Above any pid a kernel hands out (Linux: at most 2**22); larger ones overflow os.kill.
_MAX_PID = 2**31 - 1


def _read_owner(path: str) -> tuple[dict, str]:
    """(the lock's {"pid", "host", "started"}, '') or ({}, what is wrong with it).

    An empty or half-written lock (a process killed while writing it) reads as no owner,
    which is taken over like a dead one's.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        return {}, f"unreadable: {getattr(e, 'strerror', None) or e}"
    try:
        owner = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}, ""   # cut short while being written: stale
    if not isinstance(owner, dict):
        return {}, f"it holds a JSON {type(owner).__name__}, not lg_tf's record"
    pid = owner.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)
                            or not 0 < pid <= _MAX_PID):
        return {}, f"pid {pid!r} is not a process id"
    host = owner.get("host")
    if host is not None and not isinstance(host, str):
        return {}, f"host {host!r} is not a host name"
    return owner, ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def finished_results(path: str) -> dict | None:
    """results.json of a finished run (non-empty `final`), else None; `model_dir` is added
    (in memory only): where it was read from, for what a report reads beside it
    (confusion.json)."""
    data = files.read_json(os.path.join(path, "results.json"))
    return {**data, "model_dir": path} if data and data.get("final") else None
