"""Wait events: pg_stat_activity sampled from a background thread on its own connection."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import psycopg

from ..server.connection import application_name, connect  # connect redacts the DSN

WAIT_SAMPLE_HZ = 10.0


class WaitEventCollector:
    """Samples pg_stat_activity from a background thread on its own connection.

    Every tick counts each non-idle session of the current database (this sampler
    excluded) under ``wait_event_type:wait_event``, or ``CPU`` when it is active and
    waits for nothing. The summary is each event's share of all observations.
    """

    name = "wait_events"
    cumulative = False

    def __init__(self, dsn: str, *, hz: float = WAIT_SAMPLE_HZ) -> None:
        if hz <= 0:
            raise ValueError(f"hz must be > 0, got {hz}")
        self.dsn = dsn
        self.interval_s = 1.0 / hz
        self._conn: psycopg.Connection[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._ticks = 0
        self._error: str | None = None
        self._t0 = 0.0
        self._thread_cpu_s = 0.0

    def start(self) -> None:

        self._conn = connect(self.dsn, application_name=application_name("wait-sampler"))
        self._counts.clear()
        self._ticks = 0
        self._error = None
        self._stop.clear()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="wait-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        tick = 0
        try:
            while True:
                tick += 1
                delay = self._t0 + tick * self.interval_s - time.perf_counter()
                if self._stop.wait(max(0.0, delay)):
                    return
                try:
                    self.sample()
                except psycopg.Error as exc:
                    text = str(exc).strip()
                    self._error = text.splitlines()[0] if text else type(exc).__name__
                    return
        finally:
            self._thread_cpu_s = time.thread_time() - cpu0

    def sample(self) -> None:
        """Take one sample now (the thread calls this ~``hz`` times a second)."""
        conn = self._conn
        if conn is None:
            return
        rows = conn.execute(
            "SELECT wait_event_type, wait_event, state FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle' "
            "AND datname = current_database()",
            prepare=True,
        ).fetchall()
        with self._lock:
            self._ticks += 1
            for etype, event, state in rows:
                if etype is None:
                    key = "CPU" if state == "active" else f"{state}"
                else:
                    key = f"{etype}:{event}"
                self._counts[key] += 1

    def stop(self) -> dict[str, Any]:
        if self._thread is None:
            raise RuntimeError("wait_events: stop() without start()")
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._thread = None
        elapsed = time.perf_counter() - self._t0
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._error is not None:
            raise RuntimeError(f"wait-event sampler stopped: {self._error}")
        with self._lock:
            observations = sum(self._counts.values())
            shares = (
                {k: round(v / observations, 6) for k, v in self._counts.most_common()}
                if observations
                else {}
            )
            return {
                "samples": self._ticks,
                "observations": observations,
                "mean_sessions": round(observations / self._ticks, 4) if self._ticks else 0.0,
                "hz": round(self._ticks / elapsed, 2) if elapsed > 0 else None,
                "sampler_client_cpu_ms": round(1000 * self._thread_cpu_s, 3),
                "shares": shares,
                "counts": dict(self._counts.most_common()),
            }
