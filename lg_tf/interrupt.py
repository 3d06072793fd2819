"""SIGTERM and SIGINT (Ctrl-C) for the whole life of a run: stop at the next safe point.

One handler for both signals, installed by `train_and_evaluate` around everything it does
(loading, training, the final evaluation, the export). The first signal only records a
request; the run stops at the next step, epoch end or phase boundary with its state saved,
and the CLI exits with `errors.EXIT_PREEMPTED` (75) so that a scheduler retries it. A second
Ctrl-C aborts at once (KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

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
