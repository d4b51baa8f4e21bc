"""Signals held back while a short write must finish whole."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Run the block with Ctrl-C, SIGTERM and SIGHUP held; a signal that arrived meanwhile
    is delivered (to the handler that was installed) as the block ends.

    Why: a KeyboardInterrupt raised inside SQLAlchemy's commit of Optuna's study reaches
    the user as Optuna's StorageInternalError ("invalid data in the commit"), an internal
    error with exit 1 instead of the Ctrl-C's 130, and a trial recorded without its
    result. Only the main thread receives signals, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        arrived.append((signum, frame))

    previous: dict[int, Any] = {}
    for sig in _HELD:
        previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
    for signum, frame in arrived[:1]:  # the first one decides how the run ends
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)
