"""File access that works for local paths and for remote model_dirs (gs://, s3://, hdfs://).

Local paths use the os module (no TensorFlow import, so the CLIs answer fast); a path with
a scheme goes through tf.io.gfile. Every file lg_tf rewrites in place (results.json,
config.json, markers, reports, labels) goes through `write_text_atomic`/`write_json_atomic`,
and every JSON file it only needs when whole is read with `read_json`.

export.py and checkpoints.py call tf.io.gfile directly: they already run inside TensorFlow
and handle SavedModel and checkpoint files that TensorFlow itself writes and reads.
"""

from __future__ import annotations

import json
import os

# Temp names of the atomic writers; lg_tf.run_dir knows such leftovers as lg_tf's own.
TEMP_PREFIX = ".tmp_"


def _remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if _remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if _remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
    if _remote(path):
        return [p.rstrip("/") for p in _gfile().listdir(path)]
    return os.listdir(path)


def makedirs(path: str) -> None:
    if _remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path`, creating the parent folder."""
    makedirs(os.path.dirname(path) or ".")
    if _remote(path):
        with _gfile().GFile(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def read_bytes(path: str) -> bytes:
    if _remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    if _remote(path):
        with _gfile().GFile(path, "r") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def remove(path: str) -> None:
    if _remote(path):
        _gfile().remove(path)
    else:
        os.remove(path)


def rmtree(path: str) -> None:
    if _remote(path):
        _gfile().rmtree(path)
    else:
        import shutil
        shutil.rmtree(path)


def rmdir(path: str) -> None:
    """Removes an empty folder."""
    if _remote(path):
        _gfile().remove(path)
    else:
        os.rmdir(path)


def copy(src: str, dst: str) -> None:
    """Copies `src` over `dst` (replacing it)."""
    if _remote(src) or _remote(dst):
        _gfile().copy(src, dst, overwrite=True)
    else:
        import shutil
        shutil.copyfile(src, dst)


def rename(src: str, dst: str) -> None:
    """Moves `src` over `dst` (replacing it)."""
    if _remote(dst):
        _gfile().rename(src, dst, overwrite=True)
    else:
        os.replace(src, dst)


def write_text_atomic(path: str, text: str | bytes) -> None:
    """Writes `text` (or bytes) to a temp name in the same folder, then renames it over `path`.

    A kill never leaves half a file: readers see the old version or the new one. The folder
    must exist. A local file gets the usual mode (0o666 & ~umask), like every other output.
    The temp name starts with TEMP_PREFIX and is removed when the write fails.
    """
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{os.urandom(6).hex()}_{os.path.basename(path)}")
    try:
        _write_text(tmp, text)
        rename(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_json_atomic(path: str, payload) -> None:
    """`payload` as indented JSON through `write_text_atomic` (numpy scalars as floats)."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=float))


def read_json(path: str) -> dict | None:
    """The JSON object in `path`; None when the file is missing, does not parse (cut short,
    damaged) or holds something other than an object."""
    try:
        value = json.loads(read_text(path)) if exists(path) else None
    except ValueError:  # UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


def _write_text(path: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        write_bytes(path, text)
    elif _remote(path):
        with _gfile().GFile(path, "w") as f:
            f.write(text)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:  # the text as given
            f.write(text)


def _remove_quietly(path: str) -> None:
    try:
        if exists(path):
            remove(path)
    except Exception:  # best effort (OSError, or tf.errors.OpError remotely): the
        pass           # caller's error is the one worth reporting
