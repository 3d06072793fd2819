"""One exception family for everything a user can get wrong, and the exit codes it maps to.

The library raises; only the command-line entry point (`lg_tf.cli.run`) turns an
`LgTfError` into one line on stderr and its `exit_code`. The table is documented in
BUILD.md ("Exit codes") for schedulers and wrappers.
"""

from __future__ import annotations

EXIT_OK = 0
# 1: an unexpected error (a bug) leaves Python with its traceback and its own exit code.
EXIT_USAGE = 2        # bad flag, bad input, a model_dir that cannot be used: fix and rerun
EXIT_DIVERGED = 3     # non-finite loss under --on_nan=stop: last good checkpoint kept
EXIT_PREEMPTED = 75   # SIGTERM/SIGINT: state saved, rerun the same command to resume
                      # (75 = EX_TEMPFAIL of sysexits.h, "try again later")


class LgTfError(Exception):
    """Base of every error lg_tf explains in one sentence; the message says what to do."""

    exit_code = EXIT_USAGE


class ConfigError(LgTfError, ValueError):
    """A flag value that cannot work; the message says which flag and what to use."""


class HierarchyError(LgTfError, ValueError):
    """A hierarchy that cannot be used; the message says what to fix."""


class DataError(LgTfError, RuntimeError):
    """Data that cannot be loaded; the message says what to do."""


class RunError(LgTfError, RuntimeError):
    """A run that cannot start or go on; the message says what to do."""


class TrainingDiverged(RunError):
    """The loss went non-finite under --on_nan=stop; the last good checkpoint is kept."""

    exit_code = EXIT_DIVERGED


class PipelineError(LgTfError, ValueError):
    """A pipeline that cannot run as asked; the message says what to do."""
