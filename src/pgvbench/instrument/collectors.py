"""Collectors: small objects that read one source over a phase (start -> stop).

Each collector reads one source and returns a JSON-friendly dict from ``stop()``:

===================  ====================================================  =============
collector            source                                                reading
===================  ====================================================  =============
StatIoCollector      pg_stat_io (by backend_type / object / context)       delta
StatioCollector      pg_statio_*_tables / _indexes (blocks read / hit)     delta
ResidencyCollector   pg_buffercache: share of each relation in shared_b.   two snapshots
WaitEventCollector   pg_stat_activity sampled ~10 Hz from a thread         sample counts
UserTablesCollector  pg_stat_*_tables (tuples in/up/del, HOT, live/dead)   delta
HostCollector        psutil: host CPU, memory, server RSS/PSS              delta/at stop
===================  ====================================================  =============

Counters are never reset: deltas are taken between two readings, so pgvbench does
not disturb anyone else's statistics on a shared server. Backends publish their
cumulative statistics lazily (at most once a second while busy, and when they exit),
so collectors that read them are marked ``cumulative`` and :class:`CollectorSet`
can give the backends of a phase a moment (``settle_s``) before the final reading.

:class:`CollectorSet` starts and stops a group; a collector that fails (an extension
missing, no privilege on an external server, a relation that does not exist) records
``{"error": "..."}`` instead of failing the run. :func:`collect_during` wraps one
callable in the standard set. :func:`explain_analyze` summarises the plan of one
sample query.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import psutil
import psycopg

from .cpu import ServerCpuProbe

T = TypeVar("T")

DEFAULT_SETTLE_S = 0.2
WAIT_SAMPLE_HZ = 10.0


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


# -- relations -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Relation:
    oid: int
    name: str
    kind: str  # "table" | "index"
    table: str  # the table an index belongs to (its own name for a table)


def _resolve(
    conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]
) -> list[_Relation]:
    """The named tables (with all their indexes) and indexes of ``schema``.

    Raises LookupError naming any relation that does not exist.
    """
    rows = conn.execute(
        "SELECT c.oid::int8, c.relname, c.relkind::text, coalesce(t.relname, c.relname) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "LEFT JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, list(relations)),
    ).fetchall()
    found = {str(r[1]) for r in rows}
    missing = [r for r in relations if r not in found]
    if missing:
        names = ", ".join(f"{schema}.{m}" for m in missing)
        raise LookupError(f"relation(s) not found: {names}")
    out: dict[int, _Relation] = {}
    tables: list[int] = []
    for oid, name, kind, table in rows:
        if kind in ("i", "I"):
            out[int(oid)] = _Relation(int(oid), str(name), "index", str(table))
        else:
            out[int(oid)] = _Relation(int(oid), str(name), "table", str(name))
            tables.append(int(oid))
    if tables:
        for oid, name, table in conn.execute(
            "SELECT i.indexrelid::int8, c.relname, t.relname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE i.indrelid = ANY(%s::oid[]) ORDER BY c.relname",
            (tables,),
        ):
            out.setdefault(int(oid), _Relation(int(oid), str(name), "index", str(table)))
    return list(out.values())


def _fresh(conn: psycopg.Connection[Any]) -> None:
    """Flush this session's pending statistics and drop any cached stats snapshot."""
    conn.execute("SELECT pg_stat_force_next_flush(), pg_stat_clear_snapshot()")


def _delta(after: dict[str, float], before: dict[str, float] | None) -> dict[str, float]:
    before = before or {}
    return {k: v - before.get(k, 0) for k, v in after.items()}


# -- pg_stat_io ----------------------------------------------------------------------

_IO_COUNTERS = (
    "reads",
    "writes",
    "writebacks",
    "extends",
    "hits",
    "evictions",
    "reuses",
    "fsyncs",
)
_IO_TIMES = ("read_time", "write_time")


class StatIoCollector:
    """pg_stat_io deltas by (backend_type, object, context); only rows that moved."""

    name = "stat_io"
    cumulative = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._before: dict[tuple[str, str, str], dict[str, float]] | None = None

    def _read(self) -> dict[tuple[str, str, str], dict[str, float]]:
        _fresh(self.conn)
        cols = ", ".join(f"coalesce({c}, 0)::float8" for c in _IO_COUNTERS + _IO_TIMES)
        out: dict[tuple[str, str, str], dict[str, float]] = {}
        for row in self.conn.execute(
            f"SELECT backend_type, object, context, {cols} FROM pg_stat_io"
        ):
            key = (str(row[0]), str(row[1]), str(row[2]))
            out[key] = dict(zip(_IO_COUNTERS + _IO_TIMES, (float(v) for v in row[3:]), strict=True))
        return out

    def start(self) -> None:
        self._before = self._read()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("stat_io: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        rows: list[dict[str, Any]] = []
        totals = dict.fromkeys(_IO_COUNTERS, 0)
        for key, values in sorted(after.items()):
            delta = _delta(values, before.get(key))
            if not any(delta[c] for c in _IO_COUNTERS):
                continue
            row: dict[str, Any] = {"backend_type": key[0], "object": key[1], "context": key[2]}
            for c in _IO_COUNTERS:
                row[c] = int(delta[c])
                totals[c] += int(delta[c])
            for c in _IO_TIMES:
                row[f"{c}_ms"] = round(delta[c], 3)
            rows.append(row)
        return {"rows": rows, "totals": totals}


# -- pg_statio_user_tables / _indexes -----------------------------------------------


def _hit_ratio(hit: float, read: float) -> float | None:
    return round(hit / (hit + read), 6) if hit + read > 0 else None


class StatioCollector:
    """Block reads/hits per table (heap, its indexes) and per index, as deltas."""

    name = "statio"
    cumulative = True

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, relations: Sequence[str]
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.relations = list(relations)
        self._rels: list[_Relation] = []
        self._before: dict[int, dict[str, float]] | None = None

    def _read(self) -> dict[int, dict[str, float]]:
        _fresh(self.conn)
        tables = [r.oid for r in self._rels if r.kind == "table"]
        indexes = [r.oid for r in self._rels if r.kind == "index"]
        out: dict[int, dict[str, float]] = {}
        for oid, hr, hh, ir, ih in self.conn.execute(
            "SELECT relid::int8, coalesce(heap_blks_read, 0), coalesce(heap_blks_hit, 0), "
            "coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0) "
            "FROM pg_statio_all_tables WHERE relid = ANY(%s::oid[])",
            (tables,),
        ):
            out[int(oid)] = {
                "heap_blks_read": hr,
                "heap_blks_hit": hh,
                "idx_blks_read": ir,
                "idx_blks_hit": ih,
            }
        for oid, ir, ih in self.conn.execute(
            "SELECT indexrelid::int8, coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0) "
            "FROM pg_statio_all_indexes WHERE indexrelid = ANY(%s::oid[])",
            (indexes,),
        ):
            out[int(oid)] = {"idx_blks_read": ir, "idx_blks_hit": ih}
        return out

    def start(self) -> None:
        self._rels = _resolve(self.conn, self.schema, self.relations)
        self._before = self._read()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("statio: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        tables: dict[str, dict[str, Any]] = {}
        indexes: dict[str, dict[str, Any]] = {}
        for rel in self._rels:
            if rel.oid not in after:
                continue
            d = {k: int(v) for k, v in _delta(after[rel.oid], before.get(rel.oid)).items()}
            if rel.kind == "table":
                tables[rel.name] = {
                    **d,
                    "heap_hit_ratio": _hit_ratio(d["heap_blks_hit"], d["heap_blks_read"]),
                    "idx_hit_ratio": _hit_ratio(d["idx_blks_hit"], d["idx_blks_read"]),
                }
            else:
                indexes[rel.name] = {
                    "table": rel.table,
                    **d,
                    "hit_ratio": _hit_ratio(d["idx_blks_hit"], d["idx_blks_read"]),
                }
        return {"tables": tables, "indexes": indexes}


# -- pg_buffercache ------------------------------------------------------------------


class ResidencyCollector:
    """Share of each relation's main-fork pages sitting in shared_buffers, at start and stop.

    Not a delta: two snapshots, so a report can say "cold: 3% of the index cached at the
    start, 97% at the end". Needs the pg_buffercache extension in the database.
    """

    name = "residency"
    cumulative = False

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, relations: Sequence[str]
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.relations = list(relations)
        self._rels: list[_Relation] = []
        self._start: dict[str, dict[str, Any]] | None = None

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        oids = [r.oid for r in self._rels]
        rows = self.conn.execute(
            "WITH r AS (SELECT o AS oid, pg_relation_filenode(o) AS node, "
            "  pg_relation_size(o) / current_setting('block_size')::int8 AS pages "
            "  FROM unnest(%s::oid[]) AS o), "
            "b AS (SELECT relfilenode, count(*) AS n FROM pg_buffercache "
            "  WHERE relforknumber = 0 AND reldatabase = "
            "  (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "  AND relfilenode IN (SELECT node FROM r) GROUP BY relfilenode) "
            "SELECT r.oid::int8, r.pages, coalesce(b.n, 0) FROM r "
            "LEFT JOIN b ON b.relfilenode = r.node",
            (oids,),
        ).fetchall()
        by_oid = {int(oid): (int(pages), int(cached)) for oid, pages, cached in rows}
        out: dict[str, dict[str, Any]] = {}
        for rel in self._rels:
            pages, cached = by_oid.get(rel.oid, (0, 0))
            cached = min(cached, pages)
            out[rel.name] = {
                "kind": rel.kind,
                "pages": pages,
                "cached_pages": cached,
                "pct": round(100.0 * cached / pages, 3) if pages else 0.0,
            }
        return out

    def start(self) -> None:
        self._rels = _resolve(self.conn, self.schema, self.relations)
        self._start = self._snapshot()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._start is None:
            raise RuntimeError("residency: stop() without start()")
        start, self._start = self._start, None
        row = self.conn.execute(
            "SELECT setting::int8 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
        return {
            "start": start,
            "stop": self._snapshot(),
            "shared_buffers_pages": int(row[0]) if row else None,
        }


# -- wait events ---------------------------------------------------------------------


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
        from ..server.connection import application_name, connect  # redacts the DSN

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


# -- pg_stat_user_tables -------------------------------------------------------------

_TABLE_COUNTERS = (
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_del",
    "n_tup_hot_upd",
    "seq_scan",
    "idx_scan",
    "vacuum_count",
    "autovacuum_count",
    "analyze_count",
    "autoanalyze_count",
)
_TABLE_GAUGES = ("n_live_tup", "n_dead_tup")


class UserTablesCollector:
    """Tuples inserted/updated/deleted (and HOT updates) per table, live/dead tuples."""

    name = "user_tables"
    cumulative = True

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, relations: Sequence[str]
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.relations = list(relations)
        self._tables: list[_Relation] = []
        self._before: dict[int, dict[str, float]] | None = None

    def _read(self) -> dict[int, dict[str, float]]:
        _fresh(self.conn)
        cols = ", ".join(f"coalesce({c}, 0)::float8" for c in _TABLE_COUNTERS + _TABLE_GAUGES)
        out: dict[int, dict[str, float]] = {}
        for row in self.conn.execute(
            f"SELECT relid::int8, {cols} FROM pg_stat_all_tables WHERE relid = ANY(%s::oid[])",
            ([r.oid for r in self._tables],),
        ):
            names = _TABLE_COUNTERS + _TABLE_GAUGES
            out[int(row[0])] = dict(zip(names, (float(v) for v in row[1:]), strict=True))
        return out

    def start(self) -> None:
        rels = _resolve(self.conn, self.schema, self.relations)
        self._tables = [r for r in rels if r.kind == "table"]
        self._before = self._read()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("user_tables: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        out: dict[str, dict[str, Any]] = {}
        for rel in self._tables:
            if rel.oid not in after:
                continue
            now, then = after[rel.oid], before.get(rel.oid, {})
            d = {k: int(v) for k, v in _delta(now, then).items()}
            entry: dict[str, Any] = {c: d[c] for c in _TABLE_COUNTERS}
            for g in _TABLE_GAUGES:
                entry[g] = int(now[g])
                entry[f"{g}_delta"] = d[g]
            upd = d["n_tup_upd"]
            entry["hot_ratio"] = round(d["n_tup_hot_upd"] / upd, 6) if upd > 0 else None
            out[rel.name] = entry
        return {"tables": out}


# -- host ----------------------------------------------------------------------------


def _busy_seconds(times: Any) -> float:
    idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
    return (
        float(sum(times))
        - idle
        - float(getattr(times, "guest", 0.0))
        - float(getattr(times, "guest_nice", 0.0))
    )  # guest time is already counted in user/nice


def _server_memory(postmaster_pid: int) -> dict[str, Any]:
    """RSS (and PSS when readable) of the postmaster and its children, in bytes.

    RSS counts shared_buffers once per backend that touched them; PSS shares them out,
    so the PSS sum is what the server really occupies.
    """
    root = psutil.Process(postmaster_pid)
    procs = [root, *root.children(recursive=True)]
    rss, pss, pss_ok, counted = 0, 0, True, 0
    for proc in procs:
        try:
            if pss_ok:
                try:
                    full = proc.memory_full_info()
                    rss += int(full.rss)
                    pss += int(getattr(full, "pss", 0))
                    pss_ok = hasattr(full, "pss")
                    counted += 1
                    continue
                except psutil.AccessDenied:
                    pss_ok = False
            rss += int(proc.memory_info().rss)
            counted += 1
        except psutil.NoSuchProcess:
            continue
    return {
        "server_processes": counted,
        "server_rss_bytes": rss,
        "server_pss_bytes": pss if pss_ok else None,
    }


class HostCollector:
    """Host CPU busy cores over the phase, memory in use and the server's footprint at stop.

    ``postmaster_pid`` (embedded server) adds the server's CPU cores and memory; an
    external server (None) gets host figures only, which then describe the client host.
    """

    name = "host"
    cumulative = False

    def __init__(self, *, postmaster_pid: int | None) -> None:
        self.postmaster_pid = postmaster_pid
        self._t0: float | None = None
        self._cpu0 = 0.0
        self._server0: float | None = None
        self._probe: ServerCpuProbe | None = None

    def start(self) -> None:
        self._probe = None
        self._server0 = None
        if self.postmaster_pid is not None:
            try:
                self._probe = ServerCpuProbe(self.postmaster_pid)
                self._server0 = self._probe.seconds()
            except psutil.Error:
                self._probe = None
        self._cpu0 = _busy_seconds(psutil.cpu_times())
        self._t0 = time.perf_counter()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._t0 is None:
            raise RuntimeError("host: stop() without start()")
        elapsed = time.perf_counter() - self._t0
        busy = _busy_seconds(psutil.cpu_times()) - self._cpu0
        self._t0 = None
        mem = psutil.virtual_memory()
        out: dict[str, Any] = {
            "elapsed_s": round(elapsed, 4),
            "cpu_count": psutil.cpu_count(),
            "cpu_busy_cores": round(busy / elapsed, 4) if elapsed > 0 else None,
            "mem_total_bytes": int(mem.total),
            "mem_used_bytes": int(mem.total - mem.available),
            "mem_available_bytes": int(mem.available),
        }
        if self._probe is not None and self._server0 is not None:
            server1 = self._probe.seconds()
            if server1 is not None and elapsed > 0:
                out["server_cpu_cores"] = round((server1 - self._server0) / elapsed, 4)
        if self.postmaster_pid is not None:
            try:
                out.update(_server_memory(self.postmaster_pid))
            except psutil.Error as exc:
                out["server_memory_error"] = f"{type(exc).__name__}: {exc}"
        return out


# -- EXPLAIN -------------------------------------------------------------------------


def _walk(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def explain_analyze(
    conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None = None
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one query, summarised.

    ``sql`` uses psycopg placeholders (``%s``). Returns planning/execution ms, shared
    blocks hit/read (execution, and planning), the indexes scanned, whether any node is
    a sequential scan, the node types and the rows the top node returned. The query is
    really executed: do not pass statements with side effects you do not want.
    """
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
        params,
    ).fetchone()
    if row is None:
        raise RuntimeError("EXPLAIN returned no plan")
    doc = row[0]
    if isinstance(doc, str):
        import json

        doc = json.loads(doc)
    top = doc[0]
    plan: dict[str, Any] = top["Plan"]
    nodes = list(_walk(plan))
    planning = top.get("Planning", {})
    indexes = [str(n["Index Name"]) for n in nodes if "Index Name" in n]
    return {
        "planning_ms": round(float(top.get("Planning Time", 0.0)), 4),
        "execution_ms": round(float(top.get("Execution Time", 0.0)), 4),
        "shared_hit": int(plan.get("Shared Hit Blocks", 0)),
        "shared_read": int(plan.get("Shared Read Blocks", 0)),
        "planning_shared_hit": int(planning.get("Shared Hit Blocks", 0)),
        "planning_shared_read": int(planning.get("Shared Read Blocks", 0)),
        "index_used": indexes[0] if indexes else None,
        "indexes": indexes,
        "seq_scan": any(n.get("Node Type") == "Seq Scan" for n in nodes),
        "node_types": [str(n.get("Node Type")) for n in nodes],
        "rows": float(plan.get("Actual Rows", 0)),
        "loops": int(plan.get("Actual Loops", 1)),
    }


# -- sets ----------------------------------------------------------------------------


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
    from ..server.connection import application_name, connect

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
