"""Vector index builds with progress polling, phase timing and captured NOTICEs."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from .._deferred import signals_deferred
from ..errors import PgvbenchError, RunFailed
from ..metrics import Metric
from ..results import BuildPhase, IndexBuild
from ..server.connection import connect
from ..spec.model import IndexSpec
from .gucs import current_setting
from .schema import relation_bytes

POLL_INTERVAL_S = 0.2
# how long Ctrl-C waits for a cancelled build to give its connection back (a server that
# is gone fails the worker at once; a live one cancels within a poll)
STOP_WORKER_S = 120.0
BUILD_SETTINGS = ("maintenance_work_mem", "max_parallel_maintenance_workers", "shared_buffers")


@dataclasses.dataclass(frozen=True)
class BuildProgress:
    """One poll of pg_stat_progress_create_index."""

    phase: str
    done: int
    total: int

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total > 0 else None


def index_name(table: str, spec: IndexSpec) -> str:
    parts = [table, spec.kind, *(f"{k[:3]}{v}" for k, v in spec.params.items())]
    return "_".join(parts)[:63]


def build_index(
    dsn: str,
    conn: psycopg.Connection[Any],
    *,
    schema: str,
    table: str,
    spec: IndexSpec,
    metric: Metric,
    on_progress: Callable[[BuildProgress], None] | None = None,
) -> tuple[str, IndexBuild]:
    """CREATE INDEX on ``conn`` while a second connection polls its progress."""
    name = index_name(table, spec)
    using = {"ivfflat": "ivfflat", "hnsw": "hnsw"}[spec.kind]
    with_params = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in spec.params.items()
    )
    stmt = sql.SQL("CREATE INDEX {} ON {} USING {} (embedding {}) WITH ({})").format(
        sql.Identifier(name),
        sql.Identifier(schema, table),
        sql.SQL(using),
        sql.SQL(metric.opclass()),
        with_params,
    )
    settings = {s: current_setting(conn, s) for s in BUILD_SETTINGS}
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(f"{diag.severity}: {diag.message_primary}")

    conn.add_notice_handler(on_notice)
    try:
        elapsed, phases = run_polled(
            dsn, conn, lambda: conn.execute(stmt), name=name, on_progress=on_progress
        )
    except Exception as exc:
        message = exc.diag.message_primary if isinstance(exc, psycopg.Error) else str(exc)
        raise RunFailed(f"building {spec.label} failed: {message}") from exc
    finally:
        conn.remove_notice_handler(on_notice)
    return name, IndexBuild(
        label=spec.label,
        kind=spec.kind,
        params=dict(spec.params),
        build_seconds=round(elapsed, 4),
        index_bytes=relation_bytes(conn, schema, name),
        build_settings=settings,
        phases=phases,
        notices=notices,
    )


def run_polled(
    dsn: str,
    conn: psycopg.Connection[Any],
    work: Callable[[], object],
    *,
    name: str,
    on_progress: Callable[[BuildProgress], None] | None = None,
) -> tuple[float, list[BuildPhase]]:
    """Run ``work`` (statements on ``conn`` that build an index) in a thread while a second
    connection polls its progress; return (seconds, phase timeline). Ctrl-C (or a poll
    failure) cancels the statement on the server before it goes on; an error of ``work``
    is raised as it came (psycopg.Error for a refused or failed build)."""
    outcome: dict[str, BaseException | None] = {"error": None}
    # "done" is an Event, never worker.is_alive()/join(timeout): on Python 3.11 a Ctrl-C
    # landing inside join's lock wait marks a running thread as stopped (threading's
    # _wait_for_tstate_lock releases the lock the thread still holds), so is_alive() said
    # False while the worker was inside CREATE INDEX, and close() freed its connection
    # under it: SIGSEGV in CI. Event.wait interrupted is harmless.
    done = threading.Event()

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # surfaced in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    phases: list[BuildPhase] = []
    backend_pid = conn.info.backend_pid  # read before the worker is inside ``conn``
    worker = threading.Thread(target=run, name=f"build-{name}", daemon=True)
    started = time.perf_counter()
    try:
        worker.start()
        _poll(dsn, backend_pid, done, phases, started, on_progress)
    except BaseException:
        # Ctrl-C or a poll failure: do not leave the build running. The cancel goes over a
        # connection of its own (pg_cancel_backend), never through ``conn``: libpq's
        # PGconn is not for two threads at once, and the worker is inside it. Cancelling
        # through it (psycopg's cancel_safe) crashed the worker thread with SIGSEGV in
        # about one Ctrl-C of three in CI (faulthandler: the worker in cursor.execute).
        with signals_deferred():  # a second Ctrl-C must not cut the wait short either
            _stop_worker(dsn, backend_pid, worker, done)
        raise
    elapsed = time.perf_counter() - started
    if outcome["error"] is not None:
        raise outcome["error"]
    return elapsed, phases


def _stop_worker(
    dsn: str, backend_pid: int, worker: threading.Thread, done: threading.Event
) -> None:
    """Cancel until the worker has left libpq, so nobody uses or closes its connection
    while it is inside. Cancelled again each second: a cancel that lands while the worker
    is still between statements (its BEGIN, its SETs) cancels nothing, and the CREATE
    INDEX that follows would run to its end."""
    if worker.ident is None:
        return  # never started
    deadline = time.monotonic() + STOP_WORKER_S
    while not done.is_set() and time.monotonic() < deadline:
        _cancel_backend(dsn, backend_pid)
        done.wait(1.0)


def _cancel_backend(dsn: str, backend_pid: int) -> None:
    """Cancel the statement ``backend_pid`` runs, from a fresh connection; a server that
    is gone has nothing left to cancel."""
    with contextlib.suppress(psycopg.Error, PgvbenchError), connect(dsn) as other:
        other.execute("SELECT pg_cancel_backend(%s)", (backend_pid,))


def _poll(
    dsn: str,
    backend_pid: int,
    done: threading.Event,
    phases: list[BuildPhase],
    started: float,
    on_progress: Callable[[BuildProgress], None] | None,
) -> None:
    """Record a timeline of build phases until the build thread finishes."""
    current: str | None = None
    phase_start = started
    with connect(dsn) as poll_conn:
        while not done.is_set():
            row = poll_conn.execute(
                "SELECT phase, coalesce(nullif(blocks_total, 0), tuples_total), "
                "coalesce(nullif(blocks_total, 0) * 0 + blocks_done, tuples_done) "
                "FROM pg_stat_progress_create_index WHERE pid = %s",
                (backend_pid,),
            ).fetchone()
            now = time.perf_counter()
            if row is not None:
                phase, total, count = str(row[0]), int(row[1] or 0), int(row[2] or 0)
                if phase != current:
                    if current is not None:
                        phases.append(
                            BuildPhase(phase=current, seconds=round(now - phase_start, 3))
                        )
                    current, phase_start = phase, now
                if on_progress is not None:
                    on_progress(BuildProgress(phase=phase, done=count, total=total))
            done.wait(POLL_INTERVAL_S)
    if current is not None:
        phases.append(
            BuildPhase(phase=current, seconds=round(time.perf_counter() - phase_start, 3))
        )


def drop_index(conn: psycopg.Connection[Any], schema: str, name: str) -> None:
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, name)))
