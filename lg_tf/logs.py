"""lg_tf's progress lines through standard logging, for the CLIs and for notebooks alike.

The library logs to the `lg_tf` logger. When nobody has configured logging, the first
training call gives it a handler on stdout (`ensure_handler`), so `train_and_evaluate`
shows progress in a notebook without any set-up; an application that configures logging
itself (a handler on `lg_tf` or on the root logger) keeps full control.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(message)s"
DATEFMT = "%H:%M:%S"


def quiet_tensorflow() -> None:
    """Before TensorFlow is imported: no C++ start-up lines (cuInit, cudart, oneDNN)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines (absl pre-init notice, oneDNN, cudart,
    cuInit) kept off stderr; they are printed after all if the import fails.

    TensorFlow 2.21 writes them from C++ during the import, before TF_CPP_MIN_LOG_LEVEL is
    consulted, so only redirecting file descriptor 2 for the import's duration hides them.
    """
    if "tensorflow" in sys.modules:
        return
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
            # Platforms (CUDA's cuInit line) initialise on first device use, not at import:
            # listing the devices here keeps that line off stderr too. Logical devices can
            # still be configured afterwards.
            tensorflow.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def ensure_handler() -> logging.Logger:
    logger = logging.getLogger("lg_tf")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        _add_stream_handler(logger)
        logger.propagate = False
    return logger


def _add_stream_handler(logger: logging.Logger) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    logger.addHandler(handler)


def setup_cli(verbosity: int = 0, log_dir: str = "", command: str = "lg_tf") -> None:
    """The CLIs' logging: lg_tf lines on stdout; absl's -v raises the detail (-v 1: lg_tf
    debug lines and TensorFlow's warnings), --log_dir adds a log file."""
    from absl import logging as absl_logging
    logger = logging.getLogger("lg_tf")
    if not logger.handlers:
        _add_stream_handler(logger)
    logger.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    logger.propagate = False
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(log_dir, f"{command}.{os.getpid()}.log")
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    absl_logging.set_verbosity(absl_logging.INFO if verbosity >= 1 else absl_logging.WARNING)
    # TensorFlow's Python logger, set by name so that TensorFlow need not be imported yet.
    logging.getLogger("tensorflow").setLevel(logging.WARNING if verbosity >= 1 else logging.ERROR)
