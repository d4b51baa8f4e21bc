"""Other pgvbench runs on the same server: their load overlaps this run's timings.

Every pgvbench session is named ``pgvbench/<pid>.<token>[/<role>]`` (see
connection.application_name); collectors of older versions were named
``pgvbench-...``. A run looks in pg_stat_activity for sessions whose name starts with
"pgvbench" and that are not its own process's: once when it starts, then every
``POLL_S`` seconds from a background thread on its own connection until the run's
status leaves "running". Each one seen is kept in ``Results.concurrent_runs``, and the
report lists them under Validity.

Watching never fails a run: a lost connection is retried at the next poll (the server
may be restarting for a settings sweep), any other error ends the watch quietly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from rich.markup import escape

from ..results import ConcurrentSession, Results
from .connection import APP_PREFIX, application_name, connect, is_own_session

POLL_S = 1.0

_QUERY = """
SELECT pid, application_name, usename, datname,
       CASE WHEN client_addr IS NOT NULL THEN host(client_addr)
            WHEN client_port = -1 THEN 'local' END,
       to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       state,
       to_char(query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM pg_stat_activity
WHERE left(application_name, %(n)s) = %(prefix)s AND pid <> pg_backend_pid()
"""


def other_sessions(conn: psycopg.Connection[Any]) -> list[ConcurrentSession]:
    """pgvbench sessions of other processes now on the server (this process's excluded)."""
    rows = conn.execute(_QUERY, {"n": len(APP_PREFIX), "prefix": APP_PREFIX}).fetchall()
    return [
        ConcurrentSession(
            pid=int(pid),
            application_name=str(name),
            user=user,
            database=database,
            client=client,
            backend_start=backend_start,
            state=state,
            query_start=query_start,
            first_seen=now,
            last_seen=now,
        )
        for pid, name, user, database, client, backend_start, state, query_start, now in rows
        if not is_own_session(name)
    ]


def merge_sessions(known: list[ConcurrentSession], seen: list[ConcurrentSession]) -> int:
    """Add the sessions of ``seen`` not yet in ``known`` and update the rest in place;
    return how many were new. A session is its pid and backend start (pids are reused)."""
    index = {(s.pid, s.backend_start, s.application_name): s for s in known}
    new = 0
    for session in seen:
        old = index.get((session.pid, session.backend_start, session.application_name))
        if old is None:
            known.append(session)
            index[(session.pid, session.backend_start, session.application_name)] = session
            new += 1
        else:
            old.state, old.query_start = session.state, session.query_start
            old.last_seen = session.last_seen
    return new


class SessionWatch:
    """Polls for other pgvbench sessions while ``results`` is running (see module doc)."""

    def __init__(self, dsn: str, results: Results, *, poll_s: float = POLL_S) -> None:
        self.dsn = dsn
        self.results = results
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgvbench-sessions", daemon=True)

    def start(self) -> SessionWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the watch to end (the run no longer running); whether it has."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _running(self) -> bool:
        return not self._stop.is_set() and self.results.status == "running"

    def _loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._stop.wait(self.poll_s) and self._running():
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.dsn, application_name=application_name("sessions"))
                    merge_sessions(self.results.concurrent_runs, other_sessions(conn))
                except Exception:  # never fails the run; e.g. a restart: retry next time
                    _close(conn)
                    conn = None
        finally:
            _close(conn)


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        conn.close()


def watch_concurrent_runs(
    conn: psycopg.Connection[Any],
    dsn: str,
    results: Results,
    *,
    log: Callable[[str], None] | None = None,
) -> SessionWatch:
    """Record the other pgvbench sessions on the server now (on ``conn``), then keep
    watching from a thread until ``results`` is no longer running. ``log`` hears about
    the ones found at the start."""
    found = other_sessions(conn)
    merge_sessions(results.concurrent_runs, found)
    if found and log is not None:
        names = escape(", ".join(sorted({s.application_name for s in found})))
        log(
            f"[yellow]{len(found)} other pgvbench session(s) on this server "
            f"({names}): their load overlaps this run's timings[/yellow]"
        )
    return SessionWatch(dsn, results).start()
