"""File access that works for local paths and for remote model_dirs (gs://, s3://, hdfs://).

Local paths use the os module (no TensorFlow import, so the CLIs answer fast); a path with
a scheme goes through tf.io.gfile.
"""

from __future__ import annotations

import os


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
