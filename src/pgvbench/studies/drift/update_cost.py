"""What an update costs next to an HNSW index (``measure_update_cost``).

Single-row updates of a non-vector column with the HNSW index present, then dropped
(pgvector #875: a non-HOT update re-inserts the row into every index, HNSW included),
then on a copy with room left on each page (fillfactor), where updates can be HOT and
skip index maintenance altogether; plus task status updates.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.agents.model import TASK_STATUSES, table_name
from ...db.schema import drop_owned_table
from ...engine.histogram import LatencyHistogram
from ...errors import RunFailed
from ...metrics import Metric
from ...server.connection import connect
from . import catalog
from . import notes as say
from .catalog import hot_delta, require_owned_table, table_stats
from .ddl import auto_fillfactor, copy_with_fillfactor, restore_index
from .records import HotStats, UpdateCostResult, UpdatePhase, latency_of


@dataclasses.dataclass(frozen=True, kw_only=True)
class _PhaseRun:
    all: LatencyHistogram
    same_page: LatencyHistogram  # the new version stayed on the row's page
    moved: LatencyHistogram  # it went to another page
    hot: HotStats
    changed: int
    seconds: float


def _block(ctid: str) -> int:
    return int(ctid.strip("()").split(",")[0])


def _timed_updates(
    conn: psycopg.Connection[Any],
    stmt: sql.Composed,
    params: Sequence[tuple[Any, ...]],
    ids: Sequence[uuid.UUID],
    schema: str,
    table: str,
) -> _PhaseRun:
    """Single-row updates, one transaction each; ``stmt`` must return ``ctid::text``.

    Each update is classed by where its new version landed: on the row's own page
    (HOT when no index covers the changed columns) or on another page (non-HOT: every
    index, HNSW included, gets a new entry). Reading the old pages first costs nothing
    inside the timed loop.
    """
    rows = conn.execute(
        sql.SQL("SELECT id, ctid::text FROM {} WHERE id = ANY(%s)").format(
            sql.Identifier(schema, table)
        ),
        (list(ids),),
    ).fetchall()
    page = {r[0]: _block(str(r[1])) for r in rows}
    before = table_stats(conn, schema, table)
    latencies = np.empty(len(params), dtype=np.int64)
    same = np.zeros(len(params), dtype=bool)
    changed = 0
    started = time.perf_counter()
    with conn.cursor() as cur:
        for i, (p, row_id) in enumerate(zip(params, ids, strict=True)):
            t0 = time.perf_counter_ns()
            cur.execute(stmt, p, prepare=True)
            result = cur.fetchone()
            latencies[i] = time.perf_counter_ns() - t0
            if result is not None:
                changed += 1
                new_page = _block(str(result[0]))
                same[i] = page.get(row_id) == new_page
                page[row_id] = new_page  # a second update of the row starts from here
    seconds = time.perf_counter() - started
    after = table_stats(conn, schema, table)
    hists = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    hists[0].record_many(latencies)
    hists[1].record_many(latencies[same])
    hists[2].record_many(latencies[~same])
    return _PhaseRun(
        all=hists[0],
        same_page=hists[1],
        moved=hists[2],
        hot=hot_delta(before, after),
        changed=changed,
        seconds=seconds,
    )


def _phase(
    name: str,
    table: str,
    column: str,
    *,
    hnsw: bool,
    fillfactor: int,
    run: _PhaseRun,
    updates: int,
    blocking: list[str],
) -> UpdatePhase:
    return UpdatePhase(
        name=name,
        table=table,
        column=column,
        hnsw_index=hnsw,
        fillfactor=fillfactor,
        updates=updates,
        rows_updated=run.changed,
        latency_ms=latency_of(run.all),
        histogram=run.all.encode() if run.all.count else None,
        counted_updates=run.hot.updates,
        hot_updates=run.hot.hot_updates,
        hot_ratio=run.hot.hot_ratio,
        same_page=run.same_page.count,
        same_page_latency_ms=latency_of(run.same_page),
        moved_latency_ms=latency_of(run.moved),
        seconds=round(run.seconds, 3),
        blocking_indexes=blocking,
    )


def measure_update_cost(
    dsn: str,
    *,
    schema: str,
    prefix: str,
    updates: int,
    seed: int,
    metric: Metric | str | None = None,
    fillfactor: int | None = None,
    copy_phase: bool = True,
    task_updates: int | None = None,
) -> UpdateCostResult:
    """Latency and HOT ratio of single-row ``importance`` updates, with and without HNSW.

    Phases, each on rows not updated before in that table (random order):
    ``hnsw`` (the table as it is), ``no_hnsw`` (its HNSW index dropped; recreated from
    its own definition afterwards, even on error), ``hnsw_fillfactor<N>`` (a copy with
    every index and ``fillfactor`` N, default: the largest that leaves room for one row
    version a page; ``copy_phase=False`` skips it) and ``tasks_status`` (task status
    via jsonb_set, ``task_updates`` rows, default ``updates``). Only a table carrying
    pgvbench's mark in a pgvbench schema is touched.
    """
    if updates < 1:
        raise ValueError(f"updates must be >= 1, got {updates}")
    rng = np.random.default_rng(seed)
    memories = table_name(prefix, "memories")
    tasks = table_name(prefix, "tasks")
    column = "importance"
    notes: list[str] = []
    phases: list[UpdatePhase] = []
    with connect(dsn) as conn:
        require_owned_table(conn, schema, memories)
        indexes = catalog.hnsw_indexes(conn, schema, memories)
        index = catalog.pick_hnsw(indexes, Metric(metric)) if metric is not None else None
        index = index or (indexes[0] if indexes else None)
        if index is None:
            raise RunFailed(
                f"{schema}.{memories} has no HNSW index on embedding: nothing to compare"
            )
        if len(indexes) > 1:
            notes.append(say.several_hnsw(len(indexes), index.name))
        ids = catalog.ids(conn, schema, memories, ordered=True)
        rows = len(ids)
        avg_row = catalog.heap_bytes(conn, schema, memories) / max(1, rows)
        order = rng.permutation(rows)
        if rows < 2 * updates:
            notes.append(say.shared_rows(rows, updates))
        set_a = [ids[int(i)] for i in order[:updates]]
        set_b = [ids[int(i)] for i in order[::-1][:updates]]
        blocking = catalog.indexes_on_columns(conn, schema, memories, [column])
        own_ff = catalog.fillfactor(conn, schema, memories)

        def phase(name: str, table: str, hnsw: bool, ff: int, ids: list[uuid.UUID]) -> None:
            target = sql.Identifier(schema, table)
            stmt = sql.SQL(
                "UPDATE {} SET importance = importance * 0.99 + 0.01 WHERE id = %s "
                "RETURNING ctid::text"
            ).format(target)
            run = _timed_updates(conn, stmt, [(i,) for i in ids], ids, schema, table)
            phases.append(
                _phase(
                    name, table, column, hnsw=hnsw, fillfactor=ff, run=run, updates=len(ids),
                    blocking=blocking,
                )
            )  # fmt: skip

        phase("hnsw", memories, True, own_ff, set_a)
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index.name)))
        try:
            phase("no_hnsw", memories, False, own_ff, set_b)
        finally:  # whatever happened, the index goes back
            restored, rebuild = restore_index(conn, schema, index)
        if not restored:
            raise RunFailed(f"could not recreate {index.name}; run: {index.definition}")

        if copy_phase:
            ff = fillfactor if fillfactor is not None else auto_fillfactor(avg_row)
            copy = f"{memories}_ffcopy"
            try:
                notes += copy_with_fillfactor(
                    conn, schema, memories, copy, ff, catalog.index_defs(conn, schema, memories)
                )
                # The same rows as the hnsw phase: only the free space on the page differs.
                phase(f"hnsw_fillfactor{ff}", copy, True, ff, set_a)
            finally:
                drop_owned_table(conn, schema, copy)

        phases.extend(_task_phase(conn, schema, tasks, task_updates or updates, rng, notes))
    with_index, without = phases[0].latency_ms, phases[1].latency_ms
    p50_ratio = p99_ratio = None
    if with_index is not None and without is not None and without.p50 > 0 and without.p99 > 0:
        p50_ratio = round(with_index.p50 / without.p50, 2)
        p99_ratio = round(with_index.p99 / without.p99, 2)
    moved_with, moved_without = phases[0].moved_latency_ms, phases[1].moved_latency_ms
    moved_ratio = None
    if moved_with is not None and moved_without is not None and moved_without.p50 > 0:
        moved_ratio = round(moved_with.p50 / moved_without.p50, 2)
    for p in phases[:3]:
        if not blocking and p.same_page != p.hot_updates:
            notes.append(say.hot_count_mismatch(p.name, p.same_page, p.hot_updates))
    if blocking:
        notes.append(say.column_indexed(column, blocking))
    return UpdateCostResult(
        table=f"{schema}.{memories}",
        column=column,
        rows=rows,
        avg_row_bytes=round(avg_row, 1),
        index=index.name,
        index_def=index.definition,
        phases=phases,
        p50_ratio=p50_ratio,
        p99_ratio=p99_ratio,
        moved_p50_ratio=moved_ratio,
        index_rebuild_seconds=rebuild,
        index_restored=restored,
        notes=notes,
    )


def _task_phase(
    conn: psycopg.Connection[Any],
    schema: str,
    tasks: str,
    n: int,
    rng: np.random.Generator,
    notes: list[str],
) -> list[UpdatePhase]:
    """Task status updates as the A2A state machine does them (status column + state doc)."""
    try:
        require_owned_table(conn, schema, tasks)
    except RunFailed:
        notes.append(say.no_tasks_table(f"{schema}.{tasks}"))
        return []
    ids = catalog.ids(conn, schema, tasks, ordered=True)
    if not ids:
        notes.append(say.tasks_table_empty())
        return []
    picks = rng.permutation(len(ids))[:n] if n <= len(ids) else rng.integers(0, len(ids), n)
    states = rng.integers(1, len(TASK_STATUSES), size=len(picks))
    params = [
        (TASK_STATUSES[int(s)], TASK_STATUSES[int(s)], ids[int(t)])
        for t, s in zip(picks, states, strict=True)
    ]
    stmt = sql.SQL(
        "UPDATE {} SET status = %s, updated_at = now(), "
        "state = jsonb_set(state, '{{status,state}}', to_jsonb(%s::text)) WHERE id = %s "
        "RETURNING ctid::text"
    ).format(sql.Identifier(schema, tasks))
    run = _timed_updates(conn, stmt, params, [p[2] for p in params], schema, tasks)
    blocking = catalog.indexes_on_columns(conn, schema, tasks, ["status", "updated_at", "state"])
    return [
        _phase(
            "tasks_status",
            tasks,
            "status, state, updated_at",
            hnsw=False,
            fillfactor=catalog.fillfactor(conn, schema, tasks),
            run=run,
            updates=len(params),
            blocking=blocking,
        )
    ]
