"""SIGTERM and SIGINT (Ctrl-C) for the whole life of a run: stop at the next safe point.

One handler for both signals, installed by `train_and_evaluate` around everything it does
(loading, training, the final evaluation, the export). The first signal only records a
request; the run stops at the next step, epoch end or phase boundary with its state saved,
and the CLI exits with `errors.EXIT_PREEMPTED` (75) so that a scheduler retries it. A second
Ctrl-C aborts at once (KeyboardInterrupt).

Work that keeps no state worth saving (`lg_tf.analyze`, `--export_only`) uses
`abort_on_signals` instead: the first signal raises `Interrupted` (exit 75) at once, and
the work's own cleanup (temporary files, the lock) runs as the exception unwinds.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

from lg_tf.errors import EXIT_PREEMPTED, LgTfError

log = logging.getLogger("lg_tf")

_requested = {"signal": ""}
_depth = [0]   # nested uses (a pipeline around its runs) share the outermost handler


def requested() -> str:
    """'' or the name of the signal that asked this process to stop."""
    return _requested["signal"]


def request(name: str) -> None:
    """What a signal does; also callable from tests and notebooks."""
    _requested["signal"] = name


def clear() -> None:
    _requested["signal"] = ""


def _handler(signum, frame):
    name = signal.Signals(signum).name
    if requested() and signum == signal.SIGINT:
        raise KeyboardInterrupt  # a second Ctrl-C: the user means now
    request(name)
    log.warning("%s received: stopping at the next safe point (state is kept; re-run the "
                "same command to resume)%s", name,
                "; press Ctrl-C again to abort now" if signum == signal.SIGINT else "")


@contextlib.contextmanager
def stop_on_signals():
    """Installs the handler (main thread only; elsewhere signals keep their defaults)."""
    if threading.current_thread() is not threading.main_thread() or _depth[0]:
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    clear()
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        for s, h in previous.items():
            signal.signal(s, h)


class Interrupted(LgTfError):
    """A signal stopped work that saves nothing on the way; re-run it (exit 75)."""

    exit_code = EXIT_PREEMPTED


@contextlib.contextmanager
def abort_on_signals(what: str):
    """SIGTERM/SIGINT raise `Interrupted` at once (main thread only; inside a run whose
    handler is already installed, that handler decides). A second signal while the first
    unwinds is ignored, so the cleanup it triggers is not cut short."""
    if threading.current_thread() is not threading.main_thread() or _depth[0]:
        yield
        return
    raised = []

    def handler(signum, frame):
        if raised:
            return
        raised.append(signum)
        raise Interrupted(f"{signal.Signals(signum).name} received during {what}; stopped "
                          "and cleaned up: re-run the same command")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        for s, h in previous.items():
            signal.signal(s, h)
