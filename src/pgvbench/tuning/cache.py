"""Cache-state study: how much latency depends on what is in shared_buffers and the OS cache.

A freshly built or loaded index is warm, so a naive benchmark measures the best case;
production after a restart or failover starts cold, and an index larger than
shared_buffers never becomes fully warm (VectorDBBench #385: 1030 QPS warm vs 4 QPS).
Three states are measured per shared_buffers size:

cold         restart + evict heap and index + drop the OS page cache (when permitted),
             then the p99 per second from the very first query (the cold-to-warm curve)
warm         pg_prewarm of index and heap, then measure
autoprewarm  pg_prewarm's autoprewarm worker reloads the blocks that were in
             shared_buffers at shutdown; the curve after a restart shows what it saves
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..engine import LoadShape, run_load
from ..engine.operations import SESSION, Operation
from ..engine.providers import DirectProvider
from ..errors import ServerError
from ..results import TimeSlice
from ..server.connection import Target, connect
from ..server.embedded import EmbeddedServer
from ..spec.table import Table as _Table

STRATEGIES = ("cold", "warm", "autoprewarm")
# PostgreSQL's own memory units (case-sensitive, as postgresql.conf takes them).
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(kB|MB|GB|TB)\s*$")
_UNIT_BYTES = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
STEADY_TOLERANCE = 0.20  # steady: p99 within 20% of the warm p99 ...
STEADY_SECONDS = 3  # ... for this many consecutive seconds
BASE_PRELOAD = "pg_stat_statements"  # the embedded server's base config preloads this


# --- spec --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CacheSpec:
    strategies: tuple[str, ...] = STRATEGIES
    shared_buffers: tuple[str, ...] = ()  # empty: keep the server's current value
    measure_seconds: float = 5.0
    warmup_series_seconds: float = 10.0
    drop_os_cache: bool = True


def size_bytes(value: str) -> int:
    """Bytes of a PostgreSQL memory size like "64MB"; ValueError if not one."""
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size like 64MB")
    return int(match.group(1)) * _UNIT_BYTES[match.group(2)]


def parse_cache(t: _Table) -> CacheSpec:
    """The ``[cache]`` table of a spec."""
    t.only(
        [
            "strategies",
            "shared_buffers",
            "measure_seconds",
            "warmup_series_seconds",
            "drop_os_cache",
        ]
    )
    strategies = t.str_list("strategies", default=list(STRATEGIES), allowed=STRATEGIES)
    if len(set(strategies)) != len(strategies):
        t.fail("strategies", f"= {list(strategies)!r} lists a strategy twice")
    raw = t.data.get("shared_buffers", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        t.fail("shared_buffers", f'= {raw!r} must be a list of sizes like ["64MB", "1GB"]')
    sizes: list[str] = []
    for item in raw:
        if not isinstance(item, str) or _SIZE_RE.match(item) is None:
            t.fail(
                "shared_buffers",
                f"contains {item!r}; every value must be a size string with a unit "
                'kB, MB, GB or TB, e.g. "64MB"',
            )
        elif size_bytes(item) < 128 << 10:
            t.fail("shared_buffers", f"contains {item!r}, below PostgreSQL's minimum 128kB")
        sizes.append(item.strip().replace(" ", ""))
    drop = t.data.get("drop_os_cache", True)
    if not isinstance(drop, bool):
        t.fail("drop_os_cache", f"= {drop!r} must be true or false")
    return CacheSpec(
        strategies=strategies,
        shared_buffers=tuple(sizes),
        measure_seconds=t.number("measure_seconds", default=5.0, minimum=0.5, maximum=3600),
        warmup_series_seconds=t.number(
            "warmup_series_seconds", default=10.0, minimum=1.0, maximum=3600
        ),
        drop_os_cache=drop,
    )


# --- residency, eviction, OS cache -------------------------------------------------------


def _regclass(schema: str, name: str) -> str:
    return sql.Identifier(schema, name).as_string(None)


def residency(
    conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per relation: buffers of its main fork in shared_buffers, its pages, % resident."""
    out: dict[str, dict[str, Any]] = {}
    for name in relations:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_buffercache b "
            "        WHERE b.relfilenode = pg_relation_filenode(c.oid) AND b.relforknumber = 0"
            "          AND b.reldatabase = (SELECT oid FROM pg_database"
            "                               WHERE datname = current_database())),"
            "       pg_relation_size(c.oid) / current_setting('block_size')::bigint "
            "FROM pg_class c WHERE c.oid = %s::regclass",
            (_regclass(schema, name),),
        ).fetchone()
        buffers, pages = (int(row[0]), int(row[1])) if row else (0, 0)
        percent = 100.0 * min(buffers, pages) / pages if pages else 0.0
        out[name] = {"buffers": buffers, "pages": pages, "percent": round(percent, 2)}
    return out


def _has_function(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_proc WHERE proname = %s", (name,)).fetchone()
    return row is not None


def evict(conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]) -> str:
    """Evict the relations' pages from shared_buffers; describe what was done.

    PG 18's pg_buffercache_evict_relation is exact; before it, evict_all (PG 18 too)
    or one call per buffer of the relation (PG 17's pg_buffercache_evict).
    """
    names = [_regclass(schema, r) for r in relations]
    if _has_function(conn, "pg_buffercache_evict_relation"):
        evicted = 0
        for name in names:
            row = conn.execute(
                "SELECT buffers_evicted FROM pg_buffercache_evict_relation(%s::regclass)", (name,)
            ).fetchone()
            evicted += int(row[0]) if row and row[0] is not None else 0
        return f"pg_buffercache_evict_relation: {evicted} buffers evicted"
    if _has_function(conn, "pg_buffercache_evict_all"):
        row = conn.execute("SELECT buffers_evicted FROM pg_buffercache_evict_all()").fetchone()
        return f"pg_buffercache_evict_all: {int(row[0]) if row else 0} buffers evicted"
    if _has_function(conn, "pg_buffercache_evict"):
        evicted = 0
        for name in names:
            rows = conn.execute(
                "SELECT pg_buffercache_evict(bufferid) FROM pg_buffercache "
                "WHERE relfilenode = pg_relation_filenode(%s::regclass) "
                "  AND reldatabase = (SELECT oid FROM pg_database "
                "                     WHERE datname = current_database())",
                (name,),
            ).fetchall()
            evicted += len(rows)
        return f"pg_buffercache_evict per buffer: {evicted} buffers tried"
    return "no eviction function (pg_buffercache < 1.5, PostgreSQL < 17): not evicted"


def drop_os_cache() -> tuple[bool, str]:
    """Write back and drop the OS page cache; (False, why) when not permitted. Never raises."""
    path = "/proc/sys/vm/drop_caches"
    try:
        if os.geteuid() != 0:
            return False, "not root: dropping the OS page cache needs root"
        if not os.access(path, os.W_OK):
            return (
                False,
                f"{path} is not writable (read-only /proc, e.g. an unprivileged container)",
            )
        subprocess.run(["sync"], check=False, timeout=120)
        with open(path, "w") as fh:
            fh.write("3\n")
        return True, "sync; echo 3 > /proc/sys/vm/drop_caches"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"writing {path} failed: {exc}"


def prewarm(conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]) -> int:
    """pg_prewarm each relation into shared_buffers; return the blocks read."""
    total = 0
    for name in relations:
        row = conn.execute("SELECT pg_prewarm(%s::regclass)", (_regclass(schema, name),))
        value = row.fetchone()
        total += int(value[0]) if value else 0
    return total


# --- the study ---------------------------------------------------------------------------


@dataclasses.dataclass
class CacheRow:
    """One (shared_buffers, strategy) measurement."""

    strategy: str
    shared_buffers: str  # SHOW value in effect
    shared_buffers_mb: float
    index_mb: float
    heap_mb: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None  # measured window
    qps: float | None = None
    first_second_p99_ms: float | None = None  # from the very first query
    series_p99_ms: float | None = None  # p99 over the whole warm-up series
    time_to_warm_s: float | None = None  # None: never steady within the series
    series: list[TimeSlice] = dataclasses.field(default_factory=list)
    residency_before: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    residency_after: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    os_cache_dropped: bool = False
    os_cache_note: str = ""
    eviction: str = ""
    restarted: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CacheStudy:
    schema: str
    table: str
    index_name: str
    k: int
    target_kind: str
    strategies: list[str]
    measure_seconds: float
    warmup_series_seconds: float
    rows: list[CacheRow] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    recommendations: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def time_to_steady(series: Sequence[TimeSlice], reference_p99_ms: float) -> float | None:
    """Seconds from the first query until p99 stays within 20% of the reference for 3 s."""
    limit = reference_p99_ms * (1 + STEADY_TOLERANCE)
    run = 0
    for i, s in enumerate(series):
        run = run + 1 if s.p99_ms is not None and s.p99_ms <= limit else 0
        if run == STEADY_SECONDS:
            return float(i + 1 - STEADY_SECONDS)
    return None


def _series_p99(series: Sequence[TimeSlice]) -> float | None:
    values = [s.p99_ms for s in series if s.p99_ms is not None]
    return max(values) if values else None


def measure_cache_states(
    *,
    target: Target,
    server: EmbeddedServer | None,
    spec: CacheSpec,
    schema: str,
    table: str,
    index_name: str,
    query_op_factory: Callable[[], Operation],
    k: int,
    base_settings: Mapping[str, str] | None = None,
) -> CacheStudy:
    """Run every (shared_buffers, strategy) of ``spec``; the server is restored afterwards.

    ``base_settings`` are the run's own ALTER SYSTEM settings: apply_settings resets
    all of them, so each configuration here is base + its own, and base alone at the end.
    """
    base = dict(base_settings or {})
    embedded = server is not None and target.can_restart
    study = CacheStudy(
        schema=schema,
        table=table,
        index_name=index_name,
        k=k,
        target_kind=target.kind,
        strategies=list(spec.strategies),
        measure_seconds=spec.measure_seconds,
        warmup_series_seconds=spec.warmup_series_seconds,
    )
    sizes: list[str | None] = list(spec.shared_buffers) or [None]
    if not embedded and spec.shared_buffers:
        study.notes.append(
            "shared_buffers sizes skipped: an external server is never restarted; "
            "measured with its current shared_buffers"
        )
        sizes = [None]
    # warm first: its p99 is the steady-state reference for the others
    order = sorted(spec.strategies, key=lambda s: (s != "warm", STRATEGIES.index(s)))
    try:
        for size in sizes:
            warm_p99: float | None = None
            for strategy in order:
                if strategy == "autoprewarm" and not embedded:
                    study.notes.append("autoprewarm skipped: it needs a server restart")
                    continue
                row = _measure_one(
                    target=target,
                    server=server if embedded else None,
                    spec=spec,
                    strategy=strategy,
                    size=size,
                    base=base,
                    schema=schema,
                    relations=(index_name, table),
                    query_op_factory=query_op_factory,
                    warm_p99=warm_p99,
                )
                if strategy == "warm":
                    warm_p99 = row.p99_ms
                study.rows.append(row)
    except BaseException:
        if embedded and server is not None:
            with contextlib.suppress(Exception):  # keep the original error visible
                server.apply_settings(base, source="cache study (restore)")
        raise
    if embedded and server is not None:
        server.apply_settings(base, source="cache study (restore)")
    study.recommendations = recommendations(study)
    return study


def apply_cache_config(
    server: EmbeddedServer, base: dict[str, str], size: str | None, autoprewarm: bool
) -> tuple[bool, list[str]]:
    """Apply base + this configuration; verify the restart-requiring values via SHOW."""
    settings = dict(base)
    if size is not None:
        settings["shared_buffers"] = size
    preload: list[str] = []
    if autoprewarm:
        # Replacing shared_preload_libraries must keep the base config's library.
        given = settings.pop("shared_preload_libraries", BASE_PRELOAD).split(",")
        names = [p.strip() for p in given if p.strip()]
        preload = list(dict.fromkeys([*names, BASE_PRELOAD, "pg_prewarm"]))
        settings["pg_prewarm.autoprewarm"] = "on"
    applied = server.apply_settings(settings, source="cache study")
    restarted = applied.restarted
    if preload:
        # A list setting needs one literal per library: apply_settings would quote the
        # combined value as a single (nonexistent) library and the restart would fail.
        with connect(server.dsn()) as conn:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(
                    sql.SQL(", ").join(sql.Literal(p) for p in preload)
                )
            )
        server.restart()
        restarted = True
    notes = [f"{name} not applied: {why}" for name, why in applied.not_applied.items()]
    with connect(server.dsn()) as conn:
        if size is not None:
            row = conn.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)",
                (size,),
            ).fetchone()
            if not (row and row[0]):
                raise ServerError(f"cache study: shared_buffers = {size} is not in effect")
        if autoprewarm:
            row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
            if not row or "pg_prewarm" not in str(row[0]):
                raise ServerError("cache study: pg_prewarm is not preloaded after restart")
    return restarted, notes


def _sizes(conn: psycopg.Connection[Any], schema: str, index: str, table: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT current_setting('shared_buffers'), "
        "pg_size_bytes(current_setting('shared_buffers')), "
        "pg_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
        (_regclass(schema, index), _regclass(schema, table)),
    ).fetchone()
    assert row is not None
    mb = float(1 << 20)
    return {
        "shared_buffers": str(row[0]),
        "shared_buffers_mb": round(int(row[1]) / mb, 2),
        "index_mb": round(int(row[2]) / mb, 2),
        "heap_mb": round(int(row[3]) / mb, 2),
    }


def _run(target: Target, factory: Callable[[], Operation], seconds: float) -> Any:
    op = factory()
    shape = LoadShape(clients=1, warmup_s=0, duration_s=seconds)
    return run_load(op, DirectProvider(target.dsn, op, SESSION), shape, probe_dsn=target.dsn)


def _measure_one(
    *,
    target: Target,
    server: EmbeddedServer | None,
    spec: CacheSpec,
    strategy: str,
    size: str | None,
    base: dict[str, str],
    schema: str,
    relations: tuple[str, str],
    query_op_factory: Callable[[], Operation],
    warm_p99: float | None,
) -> CacheRow:
    index, table = relations
    notes: list[str] = []
    restarted = False
    if server is not None:
        restarted, notes = apply_cache_config(server, base, size, strategy == "autoprewarm")
    with connect(target.dsn) as conn:
        sizes = _sizes(conn, schema, index, table)
    row = CacheRow(strategy=strategy, notes=notes, **sizes)

    if strategy == "autoprewarm":
        assert server is not None
        with connect(target.dsn) as conn:
            prewarm(conn, schema, [index])
        # dropped before the restart: the worker starts loading as soon as the server is up,
        # and like cold it must read from disk to be a fair comparison
        _drop_os(row, spec, server)
        # fast shutdown makes the autoprewarm worker dump the block list it reloads
        server.restart()
        restarted = True
    elif strategy == "cold":
        if server is not None:
            server.restart()
            restarted = True
        with connect(target.dsn) as conn:
            row.eviction = evict(conn, schema, relations)
        _drop_os(row, spec, server)
    else:  # warm: heap first, so that an index larger than what is left is still cached
        with connect(target.dsn) as conn:
            blocks = prewarm(conn, schema, [table, index])
        notes.append(f"pg_prewarm read {blocks} blocks")
    row.restarted = restarted

    with connect(target.dsn) as conn:
        row.residency_before = residency(conn, schema, relations)
    if strategy != "warm":
        # the curve from the very first query; then the steady measured window
        curve = _run(target, query_op_factory, spec.warmup_series_seconds)
        row.series = list(curve.timeseries)
        row.series_p99_ms = round(curve.latency.percentile_ms(99), 4) if curve.operations else None
        _abort_note(curve, notes)
    outcome = _run(target, query_op_factory, spec.measure_seconds)
    _abort_note(outcome, notes)
    if strategy == "warm":
        row.series = list(outcome.timeseries)  # already warm: its window is its curve
    if outcome.operations:
        row.p50_ms = round(outcome.latency.percentile_ms(50), 4)
        row.p95_ms = round(outcome.latency.percentile_ms(95), 4)
        row.p99_ms = round(outcome.latency.percentile_ms(99), 4)
        row.qps = round(outcome.qps, 2)
    if row.series:
        row.first_second_p99_ms = row.series[0].p99_ms
    reference = warm_p99 if warm_p99 is not None else row.p99_ms
    if strategy == "warm":
        row.time_to_warm_s = 0.0  # prewarmed before the first query, by construction
    elif reference is not None and row.series:
        row.time_to_warm_s = time_to_steady(row.series, reference)
        if warm_p99 is None:
            notes.append("no warm run: steady state judged against this run's own window")
    with connect(target.dsn) as conn:
        row.residency_after = residency(conn, schema, relations)
    return row


def _drop_os(row: CacheRow, spec: CacheSpec, server: EmbeddedServer | None) -> None:
    if not spec.drop_os_cache:
        row.os_cache_note = "drop_os_cache = false in the spec"
    elif server is None:
        row.os_cache_note = "external server: its OS page cache is not on this host to drop"
    else:
        row.os_cache_dropped, row.os_cache_note = drop_os_cache()


def _abort_note(outcome: Any, notes: list[str]) -> None:
    if outcome.aborted:
        notes.append(f"load aborted: {outcome.aborted}")
    if outcome.errors:
        notes.append(f"{outcome.errors} queries failed")


# --- recommendations ---------------------------------------------------------------------


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "—" if value is None else f"{value:.3g}{unit}"


def _mb_list(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g} MB" for v in values)


def recommendations(study: CacheStudy) -> list[str]:
    """Plain-language advice from the measured rows."""
    if not study.rows:
        return []
    out: list[str] = []
    first = study.rows[0]
    data_mb = first.index_mb + first.heap_mb
    sb_values = sorted({r.shared_buffers_mb for r in study.rows})
    fits = [v for v in sb_values if v >= data_mb]
    short = [v for v in sb_values if v < data_mb]
    if not fits:
        verdict = "index and heap do not fit; queries keep reading from the OS cache or disk"
    elif short:
        verdict = f"they fit at {_mb_list(fits)} but not at {_mb_list(short)}"
    else:
        verdict = "index and heap fit"
    out.append(
        f"index + heap = {data_mb:.1f} MB ({first.index_mb:.1f} MB index + "
        f"{first.heap_mb:.1f} MB heap) vs shared_buffers = {_mb_list(sb_values)}: {verdict}."
    )
    for sb in sb_values:
        by = {r.strategy: r for r in study.rows if r.shared_buffers_mb == sb}
        cold, warm, auto = by.get("cold"), by.get("warm"), by.get("autoprewarm")
        where = f" at shared_buffers {sb:g} MB" if len(sb_values) > 1 else ""
        if cold and warm and cold.first_second_p99_ms and warm.p99_ms:
            ratio = cold.first_second_p99_ms / warm.p99_ms
            slow = cold.time_to_warm_s is None or cold.time_to_warm_s >= STEADY_SECONDS
            ttw = (
                f"{cold.time_to_warm_s:g} s"
                if cold.time_to_warm_s is not None
                else f"not within the {study.warmup_series_seconds:g} s recorded"
            )
            evidence = (
                f"first-second p99 from cold {_fmt(cold.first_second_p99_ms)} vs warm p99 "
                f"{_fmt(warm.p99_ms)} ({ratio:.1f}x); steady state {ttw}{where}"
            )
            if ratio >= 2 or slow:
                advice = (
                    "Prewarm after restarts and failovers (pg_prewarm the index and heap, or "
                    "preload pg_prewarm with pg_prewarm.autoprewarm = on)"
                )
            else:
                advice = "Prewarming is optional: the cold penalty is small and short"
            out.append(f"{advice}: {evidence}.")
        if auto and cold and auto.first_second_p99_ms and cold.first_second_p99_ms:
            ratio = auto.first_second_p99_ms / cold.first_second_p99_ms
            # within +-20% is run-to-run noise on a busy host, not an effect
            effect = (
                "shortens"
                if ratio < 0.8
                else "lengthens"
                if ratio > 1.2
                else "made no clear difference to"
            )
            out.append(
                f"autoprewarm{where} {effect} the cold start: first-second p99 "
                f"{_fmt(auto.first_second_p99_ms)} vs {_fmt(cold.first_second_p99_ms)} from "
                f"plain cold; steady after {_fmt(auto.time_to_warm_s, ' s')} vs "
                f"{_fmt(cold.time_to_warm_s, ' s')}."
            )
    suggest = 1 << max(0, math.ceil(data_mb * 1.25) - 1).bit_length()  # power of two, +25%
    if not fits:
        out.append(
            f"Set shared_buffers to at least {suggest} MB (index + heap + 25% headroom) if the "
            "host has the memory (PGTune: about RAM/4); below that, expect the latencies "
            "measured here."
        )
    else:
        out.append(
            f"shared_buffers {min(fits):g} MB holds index and heap; as the table grows, keep "
            f"it at index + heap + 25% (today {suggest} MB, rounded up to a power of two)."
        )
    return out
