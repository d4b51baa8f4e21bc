"""Collectors: small objects that read one source over a phase (start -> stop).

Each collector reads one source and returns a JSON-friendly dict from ``stop()``:

===================  ===========  ==========================================  =============
collector            module       source                                      reading
===================  ===========  ==========================================  =============
StatIoCollector      counters     pg_stat_io (backend_type, object, context)  delta
StatioCollector      counters     pg_statio_*_tables / _indexes (blocks)      delta
UserTablesCollector  counters     pg_stat_*_tables (tuples, HOT, live/dead)   delta
ResidencyCollector   residency    pg_buffercache: share in shared_buffers     two snapshots
WaitEventCollector   waits        pg_stat_activity sampled ~10 Hz (thread)    sample counts
HostCollector        host         psutil: host CPU, memory, server RSS/PSS    delta/at stop
===================  ===========  ==========================================  =============

Counters are never reset: deltas are taken between two readings, so pgvbench does
not disturb anyone else's statistics on a shared server. Backends publish their
cumulative statistics lazily (at most once a second while busy, and when they exit),
so collectors that read them are marked ``cumulative`` and :class:`CollectorSet`
can give the backends of a phase a moment (``settle_s``) before the final reading.

:class:`CollectorSet` starts and stops a group; a collector that fails (an extension
missing, no privilege on an external server, a relation that does not exist) records
``{"error": "..."}`` instead of failing the run. :func:`collect_during` wraps one
callable in the standard set. ``explain.explain_analyze`` summarises the plan of one
sample query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import psycopg

from ..server.connection import application_name, connect
from .counters import StatIoCollector, StatioCollector, UserTablesCollector
from .host import HostCollector
from .residency import ResidencyCollector
from .waits import WaitEventCollector

T = TypeVar("T")

DEFAULT_SETTLE_S = 0.2


class Collector(Protocol):
    """One source, read over a phase.

    ``start()`` takes the first reading, ``sample()`` may be called periodically (most
    collectors ignore it), ``stop()`` takes the last reading and returns the phase's
    figures as a JSON-friendly dict. A collector may set ``cumulative = True`` when it
    reads statistics that backends publish lazily (see the module docstring).
    """

    name: str

    def start(self) -> None: ...

    def sample(self) -> None: ...

    def stop(self) -> dict[str, Any]: ...


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CollectorSet:
    """Starts and stops a group of collectors; one's failure is recorded, not raised.

    ``stop()`` returns ``{name: data}`` in the order given, where data is the
    collector's dict or ``{"error": "..."}``. Collectors that are not ``cumulative``
    (samplers, host CPU) stop first, so they cover the phase and nothing more; then,
    after ``settle_s`` for backends of the phase to publish their statistics, the
    cumulative ones take their final reading.
    """

    def __init__(self, collectors: Sequence[Collector], *, settle_s: float = 0.0) -> None:
        names = [c.name for c in collectors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"collector names must be unique; repeated: {', '.join(dupes)}")
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.collectors = list(collectors)
        self.settle_s = settle_s
        self._errors: dict[str, str] = {}
        self._started: list[Collector] = []

    def start(self) -> None:
        self._errors = {}
        self._started = []
        for c in self.collectors:
            try:
                c.start()
            except Exception as exc:
                self._errors[c.name] = _describe(exc)
            else:
                self._started.append(c)

    def sample(self) -> None:
        for c in self._started:
            try:
                c.sample()
            except Exception as exc:
                self._errors.setdefault(c.name, _describe(exc))

    def stop(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        first = [c for c in self._started if not getattr(c, "cumulative", False)]
        later = [c for c in self._started if getattr(c, "cumulative", False)]
        for group_index, group in enumerate((first, later)):
            if group_index == 1 and group and self.settle_s > 0:
                time.sleep(self.settle_s)
            for c in group:
                try:
                    results[c.name] = c.stop()
                except Exception as exc:
                    results[c.name] = {"error": _describe(exc)}
        for name, message in self._errors.items():
            results.setdefault(name, {"error": message})
        self._started = []
        return {c.name: results[c.name] for c in self.collectors if c.name in results}


def standard_collectors(
    conn: psycopg.Connection[Any] | None,
    dsn: str,
    *,
    schema: str,
    relations: Sequence[str],
    postmaster_pid: int | None,
) -> list[Collector]:
    """The set a sweep point runs under; SQL collectors share ``conn`` (autocommit)."""
    collectors: list[Collector] = []
    if conn is not None:
        collectors += [
            StatIoCollector(conn),
            StatioCollector(conn, schema=schema, relations=relations),
            ResidencyCollector(conn, schema=schema, relations=relations),
            UserTablesCollector(conn, schema=schema, relations=relations),
        ]
    collectors += [WaitEventCollector(dsn), HostCollector(postmaster_pid=postmaster_pid)]
    return collectors


_SQL_COLLECTORS = ("stat_io", "statio", "residency", "user_tables")


def collect_during(
    dsn: str,
    *,
    schema: str,
    relations: Sequence[str],
    postmaster_pid: int | None,
    fn: Callable[[], T],
    settle_s: float = DEFAULT_SETTLE_S,
) -> tuple[T, dict[str, dict[str, Any]]]:
    """Run ``fn()`` under the standard collector set; return its result and the readings.

    Collector failures never fail the run: each shows up as ``{"error": "..."}`` under
    its name. Exceptions from ``fn`` propagate (the collectors are stopped first).
    """
    conn: psycopg.Connection[Any] | None
    conn_error: str | None = None
    try:
        conn = connect(dsn, application_name=application_name("collectors"))
    except Exception as exc:
        conn, conn_error = None, _describe(exc)
    try:
        cset = CollectorSet(
            standard_collectors(
                conn, dsn, schema=schema, relations=relations, postmaster_pid=postmaster_pid
            ),
            settle_s=settle_s,
        )
        cset.start()
        try:
            result = fn()
        finally:
            data = cset.stop()
    finally:
        if conn is not None:
            conn.close()
    if conn_error is not None:
        data = {**{n: {"error": conn_error} for n in _SQL_COLLECTORS}, **data}
    return result, data
