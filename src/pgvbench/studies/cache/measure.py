"""Measuring cache states: per shared_buffers size, cold / warm / autoprewarm, each from
the very first query (the cold-to-warm curve) and then over a steady measured window.

cold         restart + evict heap and index + drop the OS page cache (when permitted)
warm         pg_prewarm of heap and index, then measure
autoprewarm  pg_prewarm's autoprewarm worker reloads the blocks that were in
             shared_buffers at shutdown; the curve after a restart shows what it saves
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from ...engine import LoadShape, run_load
from ...engine.operations import SESSION, Operation
from ...engine.outcome import EngineOutcome
from ...engine.providers import DirectProvider
from ...results import TimeSlice
from ...server.connection import Target, connect
from ...server.embedded import EmbeddedServer
from . import notes
from .buffers import drop_os_cache, evict, prewarm, residency, sizes
from .records import CacheRow, CacheStudy, time_to_steady
from .server_config import apply_cache_config
from .spec import STRATEGIES, CacheSpec

QueryFactory = Callable[[], Operation]


def measure_states(
    *,
    target: Target,
    server: EmbeddedServer | None,
    spec: CacheSpec,
    schema: str,
    table: str,
    index_name: str,
    query_op_factory: QueryFactory,
    k: int,
    base_settings: Mapping[str, str] | None = None,
) -> CacheStudy:
    """Run every (shared_buffers, strategy) of ``spec``; the server is restored afterwards.
    The record comes back without recommendations (advice.py writes those).

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
    sizes_: list[str | None] = list(spec.shared_buffers) or [None]
    if not embedded and spec.shared_buffers:
        study.notes.append(notes.SIZES_SKIPPED)
        sizes_ = [None]
    # warm first: its p99 is the steady-state reference for the others
    order = sorted(spec.strategies, key=lambda s: (s != "warm", STRATEGIES.index(s)))
    try:
        for size in sizes_:
            warm_p99: float | None = None
            for strategy in order:
                if strategy == "autoprewarm" and not embedded:
                    study.notes.append(notes.AUTOPREWARM_SKIPPED)
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
    return study


def _run(target: Target, factory: QueryFactory, seconds: float) -> EngineOutcome:
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
    query_op_factory: QueryFactory,
    warm_p99: float | None,
) -> CacheRow:
    index, table = relations
    row_notes: list[str] = []
    restarted = False
    if server is not None:
        restarted, row_notes = apply_cache_config(server, base, size, strategy == "autoprewarm")
    with connect(target.dsn) as conn:
        sized = sizes(conn, schema, index, table)
    eviction = ""
    os_dropped, os_note = False, ""
    if strategy == "autoprewarm":
        assert server is not None
        with connect(target.dsn) as conn:
            prewarm(conn, schema, [index])
        # dropped before the restart: the worker starts loading as soon as the server is up,
        # and like cold it must read from disk to be a fair comparison
        os_dropped, os_note = _drop_os(spec, server)
        # fast shutdown makes the autoprewarm worker dump the block list it reloads
        server.restart()
        restarted = True
    elif strategy == "cold":
        if server is not None:
            server.restart()
            restarted = True
        with connect(target.dsn) as conn:
            eviction = evict(conn, schema, relations)
        os_dropped, os_note = _drop_os(spec, server)
    else:  # warm: heap first, so that an index larger than what is left is still cached
        with connect(target.dsn) as conn:
            blocks = prewarm(conn, schema, [table, index])
        row_notes.append(notes.prewarmed(blocks))

    with connect(target.dsn) as conn:
        before = residency(conn, schema, relations)
    series: list[TimeSlice] = []
    series_p99: float | None = None
    if strategy != "warm":
        # the curve from the very first query; then the steady measured window
        curve = _run(target, query_op_factory, spec.warmup_series_seconds)
        series = list(curve.timeseries)
        series_p99 = round(curve.latency.percentile_ms(99), 4) if curve.operations else None
        _abort_notes(curve, row_notes)
    outcome = _run(target, query_op_factory, spec.measure_seconds)
    _abort_notes(outcome, row_notes)
    if strategy == "warm":
        series = list(outcome.timeseries)  # already warm: its window is its curve
    p50 = p95 = p99 = qps = None
    if outcome.operations:
        p50 = round(outcome.latency.percentile_ms(50), 4)
        p95 = round(outcome.latency.percentile_ms(95), 4)
        p99 = round(outcome.latency.percentile_ms(99), 4)
        qps = round(outcome.qps, 2)
    reference = warm_p99 if warm_p99 is not None else p99
    time_to_warm: float | None = None
    if strategy == "warm":
        time_to_warm = 0.0  # prewarmed before the first query, by construction
    elif reference is not None and series:
        time_to_warm = time_to_steady(series, reference)
        if warm_p99 is None:
            row_notes.append(notes.NO_WARM_REFERENCE)
    with connect(target.dsn) as conn:
        after = residency(conn, schema, relations)
    return CacheRow(
        strategy=strategy,
        shared_buffers=str(sized["shared_buffers"]),
        shared_buffers_mb=float(sized["shared_buffers_mb"]),
        index_mb=float(sized["index_mb"]),
        heap_mb=float(sized["heap_mb"]),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        qps=qps,
        first_second_p99_ms=series[0].p99_ms if series else None,
        series_p99_ms=series_p99,
        time_to_warm_s=time_to_warm,
        series=tuple(series),
        residency_before=before,
        residency_after=after,
        os_cache_dropped=os_dropped,
        os_cache_note=os_note,
        eviction=eviction,
        restarted=restarted,
        notes=tuple(row_notes),
    )


def _drop_os(spec: CacheSpec, server: EmbeddedServer | None) -> tuple[bool, str]:
    if not spec.drop_os_cache:
        return False, notes.OS_SPEC_OFF
    if server is None:
        return False, notes.OS_EXTERNAL
    return drop_os_cache()


def _abort_notes(outcome: EngineOutcome, row_notes: list[str]) -> None:
    if outcome.aborted:
        row_notes.append(notes.aborted(outcome.aborted))
    if outcome.errors:
        row_notes.append(notes.failed_queries(outcome.errors))
