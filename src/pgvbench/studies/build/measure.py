"""Building one index at every (maintenance_work_mem, workers) combination.

pgvector builds an HNSW graph in memory while it fits into ``maintenance_work_mem``; when
it stops fitting it says so (NOTICE "hnsw graph no longer fits into maintenance_work_mem
after N tuples") and inserts the rest on disk, which is much slower. Parallel builds
(``max_parallel_maintenance_workers``) keep the graph in dynamic shared memory.

Both settings are user-settable, so the study sets them per session (no restart), builds
the index once per combination through :func:`db.indexes.build_index`, records time,
size, phases and whether the graph fitted, and drops each index again. The record holds
figures only; its notes and advice are written by advice.py.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...db import indexes as db_indexes
from ...db.gucs import current_setting, set_settings
from ...errors import RunFailed
from ...metrics import Metric
from ...spec.model import IndexSpec
from .records import BuildTuningPoint, BuildTuningStudy, Phase
from .sizes import parse_size
from .spec import BuildTuningSpec

LIMIT_SETTINGS = (
    "max_worker_processes",
    "max_parallel_workers",
    "max_parallel_maintenance_workers",
    "min_parallel_table_scan_size",
    "dynamic_shared_memory_type",
    "shared_buffers",
)
_TUNED = ("maintenance_work_mem", "max_parallel_maintenance_workers")
_NO_FIT_RE = re.compile(r"no longer fits into maintenance_work_mem after (\d+) tuples")
_WORKER_POLL_S = 0.1


def notice_tuples(notices: Sequence[str]) -> int | None:
    """N from pgvector's "hnsw graph no longer fits ... after N tuples", else None."""
    for notice in notices:
        match = _NO_FIT_RE.search(notice)
        if match is not None:
            return int(match.group(1))
    return None


def measure(
    *,
    dsn: str,
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    index_spec: IndexSpec,
    metric: Metric,
    spec: BuildTuningSpec,
    on_point: Callable[[BuildTuningPoint], None] | None = None,
) -> BuildTuningStudy:
    """Build ``index_spec`` once per combination of ``spec``; every index is dropped again.

    ``conn`` must be in autocommit mode (as :func:`server.connection.connect` opens it).
    The session's two build settings are restored at the end, also on failure.
    A build that fails is recorded with its error and the study goes on.
    """
    if index_spec.kind == "none":
        raise RunFailed("build tuning needs an index to build; 'none' is an exact scan")
    name = db_indexes.index_name(table, index_spec)
    exists = conn.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s", (schema, name)
    ).fetchone()
    if exists is not None:
        raise RunFailed(
            f"build tuning of {index_spec.label}: index {schema}.{name} already exists; "
            "measure build settings before building the run's index (or drop it first)"
        )
    original = {s: current_setting(conn, s) for s in _TUNED}
    limits = {s: current_setting(conn, s) for s in LIMIT_SETTINGS}
    row = conn.execute(
        sql.SQL("SELECT count(embedding) FROM {}").format(sql.Identifier(schema, table))
    ).fetchone()
    points: list[BuildTuningPoint] = []
    try:
        for memory, workers in spec.combinations():
            set_settings(
                conn,
                {"maintenance_work_mem": memory, "max_parallel_maintenance_workers": workers},
            )
            point = _measure_one(dsn, conn, schema, table, index_spec, metric, memory, workers)
            points.append(point)
            if on_point is not None:
                on_point(point)
    finally:
        for setting, value in original.items():
            with contextlib.suppress(psycopg.Error):  # a lost connection took its settings
                set_settings(conn, {setting: value})
    return BuildTuningStudy(
        index=index_spec.label,
        kind=index_spec.kind,
        params=dict(index_spec.params),
        metric=str(metric),
        table=f"{schema}.{table}",
        rows=int(row[0]) if row else 0,
        limits=limits,
        restored=dict(original),
        points=tuple(points),
    )


def _measure_one(
    dsn: str,
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    index_spec: IndexSpec,
    metric: Metric,
    memory: str,
    workers: int,
) -> BuildTuningPoint:
    watcher = _WorkerWatcher(dsn, conn.info.backend_pid)
    watcher.start()
    name = db_indexes.index_name(table, index_spec)
    try:
        try:
            name, build = db_indexes.build_index(
                dsn, conn, schema=schema, table=table, spec=index_spec, metric=metric
            )
        finally:
            launched = watcher.stop()
    except RunFailed as exc:
        return BuildTuningPoint(
            maintenance_work_mem=memory,
            maintenance_work_mem_bytes=parse_size(memory),
            workers=workers,
            workers_launched=launched,
            build_seconds=None,
            index_bytes=None,
            graph_fits=False,
            fits_after_tuples=None,
            error=str(exc),
        )
    finally:
        with contextlib.suppress(psycopg.Error):  # an interrupted build: the index rolled back
            db_indexes.drop_index(conn, schema, name)
    tuples = notice_tuples(build.notices)
    return BuildTuningPoint(
        maintenance_work_mem=memory,
        maintenance_work_mem_bytes=parse_size(memory),
        workers=workers,
        workers_launched=launched,
        build_seconds=build.build_seconds,
        index_bytes=build.index_bytes,
        graph_fits=tuples is None,
        fits_after_tuples=tuples,
        phases=tuple(Phase(phase=p.phase, seconds=p.seconds) for p in build.phases),
        notices=tuple(build.notices),
    )


class _WorkerWatcher:
    """Counts the parallel workers of one backend while its build runs."""

    def __init__(self, dsn: str, leader_pid: int) -> None:
        self._dsn = dsn
        self._pid = leader_pid
        self._stop = threading.Event()
        self._max: int | None = None
        self._thread = threading.Thread(target=self._run, name="build-workers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(timeout=5)
        return self._max

    def _run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as poll:
                self._max = 0
                while not self._stop.is_set():
                    row = poll.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s",
                        (self._pid, self._pid),
                    ).fetchone()
                    self._max = max(self._max, int(row[0]) if row else 0)
                    self._stop.wait(_WORKER_POLL_S)
        except psycopg.Error:
            self._max = None  # unknown rather than wrong
