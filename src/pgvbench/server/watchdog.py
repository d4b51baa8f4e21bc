"""Notice when the embedded server dies mid-run, and end the run within seconds.

When the postmaster is killed its backends live on (a CPU-bound index build never checks
for postmaster death), so the client would wait for minutes and then report a secondary
error ("couldn't send cancellation"). The watch polls the postmaster of the data
directory; when it disappears without pgvbench having stopped it, the watch ends the
orphaned backends it saw as the postmaster's children (same pid and start time: the
processes of this server, nobody else's), which breaks the client's connections at once,
and interrupts the main thread. The runner then records the crash as the root cause.
"""

from __future__ import annotations

import _thread
import contextlib
import dataclasses
import os
import threading
import time
from types import TracebackType

import psutil

from .embedded import EmbeddedServer

POLL_S = 0.25
GRACE_S = 1.0


@dataclasses.dataclass(frozen=True)
class Crash:
    postmaster_pid: int
    noticed_at: float  # time.monotonic()


class PostmasterWatch:
    """A daemon thread watching one embedded server for the length of a run."""

    def __init__(self, server: EmbeddedServer, *, interrupt_main: bool = True) -> None:
        self.server = server
        self.interrupt_main = interrupt_main
        self.crash: Crash | None = None
        self._stop = threading.Event()
        self._children: dict[int, float] = {}  # pid -> create_time
        self._thread = threading.Thread(target=self._loop, name="pgvbench-postmaster-watch")
        self._thread.daemon = True

    def __enter__(self) -> PostmasterWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        watched: int | None = None
        while not self._stop.wait(POLL_S):
            if self.server.expected_down:
                watched = None  # a restart gives the postmaster a new pid
                continue
            pid = self.server.postmaster_pid()
            proc = _process(pid)
            if proc is not None and watched in (None, pid):
                watched = pid
                self._remember_children(proc)
                continue
            if self.server.expected_down or self._stop.is_set():
                continue
            if proc is not None:  # restarted by someone between two polls: follow it
                watched = pid
                continue
            self.crash = Crash(postmaster_pid=watched or pid or 0, noticed_at=time.monotonic())
            self._end_orphans()
            # Broken connections usually end the run's current statement at once; the
            # interrupt is for a main thread that is not waiting on the server (a timed
            # window, a report). It is skipped once the run handles the failure (stop()),
            # so the clean-up is never interrupted a second time.
            if self.interrupt_main and not self._stop.wait(GRACE_S):
                _thread.interrupt_main()
            return

    def _remember_children(self, proc: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            self._children = {c.pid: c.create_time() for c in proc.children()}

    def _end_orphans(self) -> None:
        for child in self._orphans():
            with contextlib.suppress(psutil.Error):
                child.kill()

    def _orphans(self) -> list[psutil.Process]:
        """The dead postmaster's children: those seen at the last poll (same start time,
        so not a recycled pid) and any forked since, found by their working directory,
        which PostgreSQL sets to the data directory. Nothing of another server's."""
        found: dict[int, psutil.Process] = {}
        for pid, started in self._children.items():
            with contextlib.suppress(psutil.Error):
                child = psutil.Process(pid)
                if child.create_time() == started:
                    found[pid] = child
        data_dir = str(self.server.data_dir)
        binary = os.path.realpath(self.server.bin_dir / "postgres")
        for proc in psutil.process_iter(["pid", "exe", "cwd"]):
            info = proc.info
            if info.get("cwd") == data_dir and info.get("exe") == binary:
                found.setdefault(proc.pid, proc)
        return list(found.values())


def _process(pid: int | None) -> psutil.Process | None:
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None
