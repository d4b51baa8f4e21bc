"""Recall drift under writes (``measure_drift``).

A writer inserts memories (same distribution as the loaded ones) and expires old ones
while recall is measured every ``interval_s`` against exact ground truth over the rows
present *at that moment*. The writer is ours, so a client-side mirror knows exactly which
rows are live; each checkpoint confirms it with count(*). A ground truth frozen at the
start is also scored, to show what a benchmark that does not follow the writes would
report.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import table_name
from ...datasets.recall import summarize_recall
from ...db.gucs import set_settings
from ...engine.histogram import LatencyHistogram
from ...errors import RunFailed
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from ...spec.model import QUERY_GUCS
from ...workloads.vector import index_names_in_plan
from . import notes as say
from .catalog import (
    count_rows,
    hnsw_indexes,
    hot_delta,
    ids,
    pick_hnsw,
    require_owned_table,
    table_stats,
)
from .mirror import LiveMirror, Truth
from .records import DriftCheckpoint, DriftResult, latency_of
from .writer import NewVectors, Writer, default_new_vectors, draw_queries

DEFAULT_BATCH_INTERVAL_S = 0.1  # the writer commits a small batch ten times a second
MAX_BATCH_ROWS = 500  # a writer that fell behind catches up in bounded steps


class _KnnRunner:
    """Top-k by HNSW on one connection; ids come back as mirror slots."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        ident: sql.Composable,
        metric: Metric,
        k: int,
    ) -> None:
        self.conn = conn
        self.k = k
        self.stmt = sql.SQL("SELECT id FROM {} ORDER BY embedding {} %b LIMIT {}").format(
            ident, sql.SQL(metric.operator), sql.Literal(k)
        )

    def plan_indexes(self, vector: np.ndarray) -> list[str]:
        row = self.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + self.stmt, (vector,)).fetchone()
        assert row is not None
        raw = json.loads(row[0]) if isinstance(row[0], str) else row[0]
        return index_names_in_plan(raw[0]["Plan"])

    def run(
        self, queries: np.ndarray, mirror: LiveMirror, hist: LatencyHistogram
    ) -> tuple[list[list[int]], int]:
        """Slots returned per query, and how many returned ids the mirror does not hold."""
        results: list[list[int]] = []
        unknown = 0
        latencies = np.empty(queries.shape[0], dtype=np.int64)
        with self.conn.cursor(binary=True) as cur:
            for i, vector in enumerate(queries):
                t0 = time.perf_counter_ns()
                cur.execute(self.stmt, (vector,), prepare=True)
                rows = cur.fetchall()
                latencies[i] = time.perf_counter_ns() - t0
                slots = [mirror.slot_of(r[0]) for r in rows]
                unknown += sum(1 for s in slots if not mirror.is_live(s))
                results.append(slots)
        hist.record_many(latencies)
        return results, unknown


def _read_mirror(conn: psycopg.Connection[Any], ident: sql.Composable, dim: int) -> LiveMirror:
    register_vector(conn)
    row_ids: list[uuid.UUID] = []
    chunks: list[np.ndarray] = []
    with conn.cursor(binary=True) as cur:
        cur.execute(sql.SQL("SELECT id, embedding FROM {}").format(ident))
        while rows := cur.fetchmany(10_000):
            row_ids.extend(r[0] for r in rows)
            chunks.append(np.stack([r[1].to_numpy() for r in rows]).astype(np.float32, copy=False))
    vectors = np.concatenate(chunks) if chunks else np.empty((0, dim), dtype=np.float32)
    return LiveMirror(row_ids, vectors)


@contextlib.contextmanager
def _autovacuum_off(
    conn: psycopg.Connection[Any], ident: sql.Composable, enabled: bool
) -> Iterator[None]:
    """Optionally switch autovacuum off on the table for the run (restored after)."""
    if enabled:
        yield
        return
    conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(ident))
    try:
        yield
    finally:
        conn.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(ident))


def measure_drift(
    dsn: str,
    *,
    schema: str,
    prefix: str,
    dataset: AgentDataset,
    k: int,
    metric: Metric | str,
    ef_search: int,
    duration_s: float,
    insert_rate: float,
    expire_rate: float,
    interval_s: float,
    queries: int | np.ndarray,
    seed: int,
    update_rate: float = 0.0,
    task_update_rate: float = 0.0,
    vacuum_at_s: float | None = None,
    autovacuum: bool = True,
    batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    new_vectors: NewVectors | None = None,
    rule: RecallRule = DEFAULT_RULE,
) -> DriftResult:
    """Recall over time while memories are inserted and expired; see the module docstring.

    Writes happen in small batches (every ``batch_interval_s``) at the requested rates
    of writer time; at each checkpoint the writer pauses, so the ground truth, count(*)
    and the k-NN results all see the same rows. ``update_rate`` (memory importance
    bumps) and ``task_update_rate`` (task status via jsonb_set) feed the HOT counters;
    ``vacuum_at_s`` runs a plain VACUUM at that writer time, with a checkpoint on each
    side; ``autovacuum=False`` keeps autovacuum off the table for the run so dead
    tuples are not reclaimed behind the measurement's back. ``new_vectors(n)`` replaces
    the inserted embeddings (tests craft rows that become the queries' neighbours).
    """
    metric = Metric(metric)
    if duration_s <= 0 or interval_s <= 0 or batch_interval_s <= 0:
        raise ValueError("duration_s, interval_s and batch_interval_s must be > 0")
    if min(insert_rate, expire_rate, update_rate, task_update_rate) < 0:
        raise ValueError("rates must be >= 0")
    rng = np.random.default_rng(seed)
    memories = table_name(prefix, "memories")
    ident = sql.Identifier(schema, memories)
    notes: list[str] = []
    wall_start = time.perf_counter()
    with connect(dsn) as conn:
        require_owned_table(conn, schema, memories)
        register_vector(conn)
        index = pick_hnsw(hnsw_indexes(conn, schema, memories), metric)
        if index is None:
            raise RunFailed(
                f"{schema}.{memories} has no HNSW index on embedding; build one "
                f"(USING hnsw (embedding {metric.opclass()})) before measuring drift"
            )
        if index.opclass != metric.opclass():
            notes.append(say.wrong_opclass(index.name, index.opclass, metric.opclass()))
        set_settings(conn, {QUERY_GUCS["hnsw"]: int(ef_search)})
        mirror = _read_mirror(conn, ident, dataset.spec.dim)
        if mirror.count < k:
            raise RunFailed(f"{schema}.{memories} has {mirror.count} rows, fewer than k={k}")
        query_vectors = draw_queries(dataset, queries, rng)
        tasks_table = table_name(prefix, "tasks")
        task_ids: list[uuid.UUID] = []
        if task_update_rate > 0:
            require_owned_table(conn, schema, tasks_table)
            task_ids = ids(conn, schema, tasks_table, ordered=False)
        knn = _KnnRunner(conn, ident, metric, k)
        used = knn.plan_indexes(query_vectors[0])
        if index.name not in used:
            notes.append(say.plan_skips_index_at_start(index.name, used))
        writer = Writer(
            conn,
            schema=schema,
            prefix=prefix,
            dataset=dataset,
            mirror=mirror,
            new_vectors=new_vectors or default_new_vectors(dataset, rng),
            task_ids=task_ids,
            rng=rng,
            seed=seed,
        )
        query_hist = LatencyHistogram()
        checkpoints: list[DriftCheckpoint] = []
        frozen: Truth | None = None
        mismatches: list[tuple[float, int, int]] = []
        unknown_returned = 0

        def checkpoint(t: float, label: str) -> None:
            nonlocal frozen, unknown_returned
            stats = table_stats(conn, schema, memories)
            db_rows = count_rows(conn, schema, memories)
            if db_rows != mirror.count:
                mismatches.append((t, db_rows, mirror.count))
            truth = Truth.over(mirror, query_vectors, k, metric)
            if frozen is None:
                frozen = truth
            hist = LatencyHistogram()
            returned, unknown = knn.run(query_vectors, mirror, hist)
            query_hist.merge(hist)
            unknown_returned += unknown
            per_query = truth.recall(returned, query_vectors, k, metric, rule)
            mean, p5, low = summarize_recall(per_query)
            frozen_recall = float(frozen.recall(returned, query_vectors, k, metric, rule).mean())
            gt_slots = truth.slots[truth.gt.ids[:, :k]]
            flat = [s for row in returned for s in row]
            checkpoints.append(
                DriftCheckpoint(
                    t=round(t, 3),
                    label=label,
                    live_rows=mirror.count,
                    db_rows=db_rows,
                    dead_tuples=stats.n_dead_tup,
                    n_live_tup=stats.n_live_tup,
                    n_tup_upd=stats.n_tup_upd,
                    n_tup_hot_upd=stats.n_tup_hot_upd,
                    recall_mean=round(mean, 4),
                    recall_p5=round(p5, 4),
                    recall_min=round(low, 4),
                    recall_frozen_gt=round(frozen_recall, 4),
                    returned_mean=round(len(flat) / max(1, len(returned)), 3),
                    gt_new_share=round(float((gt_slots >= mirror.initial).mean()), 4),
                    returned_new_share=round(
                        sum(1 for s in flat if s >= mirror.initial) / max(1, len(flat)), 4
                    ),
                    inserted=writer.inserted,
                    deleted=writer.deleted,
                    updated=writer.updated,
                    churn=round((writer.inserted + writer.deleted) / mirror.initial, 4),
                    query_p50_ms=round(hist.percentile_ms(50.0), 4),
                    query_p99_ms=round(hist.percentile_ms(99.0), 4),
                    vacuum_count=stats.vacuum_count,
                    autovacuum_count=stats.autovacuum_count,
                )
            )

        tasks_before = table_stats(conn, schema, tasks_table)
        memories_before = table_stats(conn, schema, memories)
        vacuum_seconds: float | None = None
        with _autovacuum_off(conn, ident, autovacuum):
            checkpoint(0.0, "start")
            start = time.perf_counter()
            paused = 0.0

            def now() -> float:
                return time.perf_counter() - start - paused

            def write_until(t: float) -> None:
                # Targets are cumulative, so a late tick catches up (in bounded batches).
                writer.insert(min(MAX_BATCH_ROWS, math.floor(insert_rate * t) - writer.inserted))
                writer.expire(
                    min(MAX_BATCH_ROWS, math.floor(expire_rate * t) - writer.deleted), keep=k
                )
                writer.update(min(MAX_BATCH_ROWS, math.floor(update_rate * t) - writer.updated))
                writer.update_tasks(
                    min(MAX_BATCH_ROWS, math.floor(task_update_rate * t) - writer.task_updates)
                )

            next_checkpoint = interval_s
            next_tick = batch_interval_s
            vacuum_due = vacuum_at_s
            while (t := now()) < duration_s:
                if vacuum_due is not None and t >= vacuum_due:
                    paused_at = time.perf_counter()
                    checkpoint(t, "before_vacuum")
                    v0 = time.perf_counter()
                    conn.execute(sql.SQL("VACUUM {}").format(ident))
                    vacuum_seconds = round(time.perf_counter() - v0, 3)
                    checkpoint(t, "after_vacuum")
                    paused += time.perf_counter() - paused_at
                    vacuum_due = None
                    while next_checkpoint <= t:  # "after_vacuum" stands for this one
                        next_checkpoint += interval_s
                    continue
                if t >= next_checkpoint:
                    paused_at = time.perf_counter()
                    checkpoint(t, "interval")
                    paused += time.perf_counter() - paused_at
                    while next_checkpoint <= t:
                        next_checkpoint += interval_s
                    continue
                if t >= next_tick:
                    write_until(t)
                    next_tick = (math.floor(t / batch_interval_s) + 1) * batch_interval_s
                    continue
                wake = min(next_tick, next_checkpoint, duration_s)
                if vacuum_due is not None:
                    wake = min(wake, vacuum_due)
                time.sleep(max(0.0, wake - now()))
            write_until(duration_s)
            checkpoint(duration_s, "end")
            used = knn.plan_indexes(query_vectors[0])
            if index.name not in used:
                notes.append(say.plan_skips_index_at_end(index.name))
        memories_after = table_stats(conn, schema, memories)
        tasks_after = table_stats(conn, schema, tasks_table)
    if mismatches:
        notes.append(say.mirror_mismatches(mismatches))
    if writer.unknown_deletes:
        notes.append(say.unknown_deletes(writer.unknown_deletes))
    if unknown_returned:
        notes.append(say.unknown_returned(unknown_returned))
    for what, done, rate in (
        ("inserts", writer.inserted, insert_rate),
        ("deletes", writer.deleted, expire_rate),
    ):
        if done < math.floor(rate * duration_s):
            notes.append(say.writer_behind(done, what, math.floor(rate * duration_s)))
    return DriftResult(
        table=f"{schema}.{memories}",
        index=index.name,
        k=k,
        metric=metric.value,
        ef_search=int(ef_search),
        duration_s=duration_s,
        interval_s=interval_s,
        insert_rate=insert_rate,
        expire_rate=expire_rate,
        update_rate=update_rate,
        achieved_insert_rate=round(writer.inserted / duration_s, 3),
        achieved_expire_rate=round(writer.deleted / duration_s, 3),
        queries=int(query_vectors.shape[0]),
        initial_rows=mirror.initial,
        autovacuum=autovacuum,
        vacuum_at_s=vacuum_at_s,
        vacuum_seconds=vacuum_seconds,
        checkpoints=checkpoints,
        hot={
            "memories": hot_delta(memories_before, memories_after),
            "tasks": hot_delta(tasks_before, tasks_after),
        },
        query_ms=latency_of(query_hist),
        write_batch_ms=latency_of(writer.batch_hist),
        wall_seconds=round(time.perf_counter() - wall_start, 3),
        notes=notes,
    )
