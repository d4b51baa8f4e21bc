"""Recall drift under writes, and what an update costs next to an HNSW index.

``measure_drift``: a writer inserts memories (same distribution as the loaded ones) and
expires old ones while recall is measured every ``interval_s`` against exact ground
truth over the rows present *at that moment*. The writer is ours, so a client-side
mirror knows exactly which rows are live; each checkpoint confirms it with count(*).
A ground truth frozen at the start is also scored, to show what a benchmark that does
not follow the writes would report.

``measure_update_cost``: single-row updates of a non-vector column with the HNSW index
present, then dropped (pgvector #875: a non-HOT update re-inserts the row into every
index, HNSW included), then on a copy with room left on each page (fillfactor), where
updates can be HOT and skip index maintenance altogether; plus task status updates.

Results are plain dataclasses (JSON via ``dataclasses.asdict``; ``Results._build`` style
loading works since every field is a plain type, a list or a dataclass).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ..datasets.agents.dataset import AgentDataset
from ..datasets.agents.model import MEMORY_KINDS, TASK_STATUSES, table_name, uuid_for
from ..datasets.groundtruth import GroundTruth, exact_knn
from ..datasets.recall import summarize_recall, tie_aware_recall
from ..db.schema import OWNER_MARK, check_table_replaceable, drop_owned_table
from ..engine.histogram import LatencyHistogram
from ..errors import RunFailed, SafetyError
from ..metrics import Metric
from ..results import Latency
from ..server.connection import connect
from .vector import index_names_in_plan

PAGE_BYTES = 8192
DEFAULT_BATCH_INTERVAL_S = 0.1  # the writer commits a small batch ten times a second
MAX_BATCH_ROWS = 500  # a writer that fell behind catches up in bounded steps
# Recall changes below this are within what separates two HNSW graphs of the same rows
# (measured: +-0.02 on 200 queries, 50k x 128, VACUUM vs REINDEX of the same table).
SHORT_RECALL_TOLERANCE = 0.02
NewVectors = Callable[[int], np.ndarray]


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class DriftCheckpoint:
    """One measurement while the writer runs (t = writer seconds since the start)."""

    t: float
    label: str  # "start" | "interval" | "before_vacuum" | "after_vacuum" | "end"
    live_rows: int  # the client mirror's live rows: what ground truth is computed over
    db_rows: int  # SELECT count(*) at the same moment (must equal live_rows)
    dead_tuples: int  # pg_stat_user_tables.n_dead_tup
    n_live_tup: int  # pg_stat_user_tables.n_live_tup (an estimate kept by the stats system)
    n_tup_upd: int  # cumulative counters of the table
    n_tup_hot_upd: int
    recall_mean: float  # tie-aware recall@k against exact top-k over the live rows
    recall_p5: float
    recall_min: float
    recall_frozen_gt: float | None  # the same results scored against the start's ground truth
    returned_mean: float  # rows a query returned (< k: dead tuples used up ef_search, #244)
    gt_new_share: float  # share of the true top-k that was inserted during the run
    returned_new_share: float  # share of returned rows that were inserted during the run
    inserted: int  # cumulative since the start
    deleted: int
    updated: int  # memory rows updated (importance) since the start
    churn: float  # (inserted + deleted) / rows at the start
    query_p50_ms: float
    query_p99_ms: float
    vacuum_count: int  # manual + auto VACUUMs of the table so far (cumulative counters)
    autovacuum_count: int


@dataclasses.dataclass
class HotStats:
    """Updates of a table over a measurement and how many were HOT (heap-only)."""

    updates: int
    hot_updates: int
    hot_ratio: float | None  # None when there were no updates


@dataclasses.dataclass
class DriftResult:
    table: str  # schema.table of the memories
    index: str | None  # the HNSW index the queries used
    k: int
    metric: str
    ef_search: int
    duration_s: float
    interval_s: float
    insert_rate: float  # requested rows/s
    expire_rate: float
    update_rate: float
    achieved_insert_rate: float  # rows/s of writer time actually inserted
    achieved_expire_rate: float
    queries: int
    initial_rows: int
    autovacuum: bool  # False: autovacuum was off on the table during the run
    vacuum_at_s: float | None
    vacuum_seconds: float | None
    checkpoints: list[DriftCheckpoint]
    hot: dict[str, HotStats]  # "memories" / "tasks": updates during the run
    query_ms: Latency | None  # the k-NN queries of every checkpoint (client-timed)
    write_batch_ms: Latency | None  # latency of one writer transaction (insert or delete batch)
    wall_seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class UpdatePhase:
    """N single-row updates by primary key in one configuration."""

    name: str  # "hnsw" | "no_hnsw" | "hnsw_fillfactor<N>" | "tasks_status"
    table: str
    column: str
    hnsw_index: bool  # an HNSW index was on the table during the phase
    fillfactor: int
    updates: int  # statements run
    rows_updated: int  # rows they changed (should equal updates)
    latency_ms: Latency | None
    histogram: str | None  # HdrHistogram (ns), base64
    counted_updates: int  # n_tup_upd delta
    hot_updates: int  # n_tup_hot_upd delta
    hot_ratio: float | None
    same_page: int  # updates whose new version stayed on the row's page (= HOT if unblocked)
    same_page_latency_ms: Latency | None
    moved_latency_ms: Latency | None  # new version on another page: non-HOT, indexes written
    seconds: float
    blocking_indexes: list[str]  # indexes on the updated columns: HOT only if unchanged


@dataclasses.dataclass
class UpdateCostResult:
    table: str  # schema.table of the memories
    column: str
    rows: int
    avg_row_bytes: float  # heap bytes per row: how much free space a HOT update needs
    index: str
    index_def: str
    phases: list[UpdatePhase]
    p50_ratio: float | None  # p50 with HNSW / p50 without
    p99_ratio: float | None
    moved_p50_ratio: float | None  # the same for non-HOT updates only (pgvector #875)
    index_rebuild_seconds: float | None
    index_restored: bool
    notes: list[str] = dataclasses.field(default_factory=list)

    def phase(self, name: str) -> UpdatePhase | None:
        return next((p for p in self.phases if p.name == name), None)


# --------------------------------------------------------------------------- catalog helpers


@dataclasses.dataclass(frozen=True)
class _TableStats:
    n_live_tup: int
    n_dead_tup: int
    n_tup_upd: int
    n_tup_hot_upd: int
    vacuum_count: int
    autovacuum_count: int


def _table_stats(conn: psycopg.Connection[Any], schema: str, table: str) -> _TableStats:
    """Current counters: flush this backend's pending stats first (they lag up to 1 s)."""
    conn.execute("SELECT pg_stat_force_next_flush()")  # takes effect when the backend idles
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, vacuum_count, "
        "autovacuum_count FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (schema, table),
    ).fetchone()
    if row is None:
        return _TableStats(0, 0, 0, 0, 0, 0)
    return _TableStats(*(int(v or 0) for v in row))


def _hot(before: _TableStats, after: _TableStats) -> HotStats:
    updates = after.n_tup_upd - before.n_tup_upd
    hot = after.n_tup_hot_upd - before.n_tup_hot_upd
    return HotStats(updates, hot, round(hot / updates, 4) if updates > 0 else None)


def _regclass(schema: str, table: str) -> str:
    return sql.Identifier(schema, table).as_string(None)


def _require_owned_table(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    """The schema and table must carry pgvbench's mark before we change either."""
    row = conn.execute(
        "SELECT obj_description(n.oid, 'pg_namespace'), obj_description(c.oid, 'pg_class') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is None:
        raise RunFailed(
            f"table {schema}.{table} does not exist; create and load the agent schema first"
        )
    if row[0] != OWNER_MARK or row[1] != OWNER_MARK:
        raise SafetyError(
            f"{schema}.{table} was not created by pgvbench (no ownership mark); pgvbench will "
            "not drop its indexes or change its settings"
        )


@dataclasses.dataclass(frozen=True)
class _Index:
    name: str
    definition: str
    opclass: str


def _hnsw_indexes(conn: psycopg.Connection[Any], schema: str, table: str) -> list[_Index]:
    """Full (non-partial) HNSW indexes on the plain ``embedding`` column."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), opc.opcname "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am am ON am.oid = i.relam "
        "JOIN pg_opclass opc ON opc.oid = x.indclass[0] "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
        "WHERE x.indrelid = %s::regclass AND am.amname = 'hnsw' AND x.indpred IS NULL "
        "AND a.attname = 'embedding' ORDER BY i.relname",
        (_regclass(schema, table),),
    ).fetchall()
    return [_Index(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _pick_hnsw(indexes: Sequence[_Index], metric: Metric) -> _Index | None:
    for index in indexes:
        if index.opclass == metric.opclass():
            return index
    return indexes[0] if indexes else None


def _indexes_on_columns(
    conn: psycopg.Connection[Any], schema: str, table: str, columns: Sequence[str]
) -> list[str]:
    """Indexes whose key, expression or predicate uses one of ``columns``: no HOT then.

    pg_depend records an index's dependency on every column it reads, expressions and
    WHERE clauses included.
    """
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_depend d "
        "JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'i' "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s::regclass AND a.attname = ANY(%s) ORDER BY 1",
        (_regclass(schema, table), list(columns)),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _fillfactor(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        "SELECT coalesce((SELECT split_part(o, '=', 2) FROM unnest(c.reloptions) o "
        "WHERE o LIKE 'fillfactor=%%'), '100') FROM pg_class c WHERE c.oid = %s::regclass",
        (_regclass(schema, table),),
    ).fetchone()
    return int(row[0]) if row else 100


def _count(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    ).fetchone()
    return int(row[0]) if row else 0


def _latency(hist: LatencyHistogram) -> Latency | None:
    summary = hist.summary()
    if summary is None:
        return None
    return Latency(**{k: round(v, 4) for k, v in dataclasses.asdict(summary).items()})


# --------------------------------------------------------------------------- the mirror


class LiveMirror:
    """Client-side copy of the live rows (uuid -> vector) of the table the writer changes.

    Rows get a slot in insertion order and keep it; deleting only clears the live flag,
    so a slot number names a row for the whole run (slot >= ``initial``: inserted).
    """

    def __init__(self, ids: Sequence[uuid.UUID], vectors: np.ndarray) -> None:
        n, dim = vectors.shape
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} vectors")
        capacity = max(1024, 2 * n)
        self._ids: list[uuid.UUID] = list(ids)
        self._slot: dict[uuid.UUID, int] = {u: i for i, u in enumerate(self._ids)}
        if len(self._slot) != n:
            raise ValueError("duplicate ids in the initial rows")
        self._vectors = np.empty((capacity, dim), dtype=np.float32)
        self._vectors[:n] = vectors
        self._live = np.zeros(capacity, dtype=bool)
        self._live[:n] = True
        self.size = n  # slots used
        self.count = n  # live rows
        self.initial = n

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def add(self, ids: Sequence[uuid.UUID], vectors: np.ndarray) -> None:
        need = self.size + len(ids)
        if need > self._vectors.shape[0]:
            capacity = max(need, 2 * self._vectors.shape[0])
            self._vectors = np.resize(self._vectors, (capacity, self.dim))
            self._live = np.concatenate((self._live, np.zeros(capacity - self._live.size, bool)))
        for i, row_id in enumerate(ids):
            if row_id in self._slot:
                raise ValueError(f"id {row_id} is already in the mirror")
            self._slot[row_id] = self.size + i
        self._ids.extend(ids)
        self._vectors[self.size : need] = vectors
        self._live[self.size : need] = True
        self.size = need
        self.count += len(ids)

    def remove(self, ids: Sequence[uuid.UUID]) -> int:
        """Mark ``ids`` deleted; returns how many were not live (a mirror error)."""
        unknown = 0
        for row_id in ids:
            slot = self._slot.get(row_id)
            if slot is None or not self._live[slot]:
                unknown += 1
                continue
            self._live[slot] = False
            self.count -= 1
        return unknown

    def slot_of(self, row_id: uuid.UUID) -> int:
        """The row's slot, or -1 for an id the mirror never saw."""
        return self._slot.get(row_id, -1)

    def id_of(self, slot: int) -> uuid.UUID:
        return self._ids[slot]

    def is_live(self, slot: int) -> bool:
        return 0 <= slot < self.size and bool(self._live[slot])

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self._live[: self.size])

    def vectors(self, slots: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._vectors[slots])

    def sample_live(self, n: int, rng: np.random.Generator) -> list[uuid.UUID]:
        live = self.live_slots()
        if live.size == 0 or n <= 0:
            return []
        picks = rng.choice(live, size=min(n, live.size), replace=False)
        return [self._ids[int(s)] for s in picks]


@dataclasses.dataclass(frozen=True)
class _Truth:
    """Exact top-k over a set of live rows, as positions into ``base``."""

    slots: np.ndarray  # base position -> mirror slot
    base: np.ndarray
    gt: GroundTruth
    position: np.ndarray  # mirror slot -> base position (-1: not in this set)

    @classmethod
    def over(cls, mirror: LiveMirror, queries: np.ndarray, k: int, metric: Metric) -> _Truth:
        started = time.perf_counter()
        slots = mirror.live_slots()
        base = mirror.vectors(slots)
        ids, distances = exact_knn(base, queries, k, metric)
        gt = GroundTruth(
            ids, distances, "exact k-NN over the live rows", time.perf_counter() - started, False
        )
        position = np.full(mirror.size, -1, dtype=np.int64)
        position[slots] = np.arange(slots.size)
        return cls(slots, base, gt, position)

    def positions(self, returned_slots: list[list[int]], k: int) -> np.ndarray:
        out = np.full((len(returned_slots), k), -1, dtype=np.int64)
        for qi, row in enumerate(returned_slots):
            for j, slot in enumerate(row[:k]):
                if 0 <= slot < self.position.size:
                    out[qi, j] = self.position[slot]
        return out

    def recall(
        self, returned_slots: list[list[int]], queries: np.ndarray, k: int, metric: Metric
    ) -> np.ndarray:
        found = self.positions(returned_slots, k)
        return tie_aware_recall(found, self.gt, queries, self.base, k, metric)


# --------------------------------------------------------------------------- measure_drift


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


class _Writer:
    """Inserts, expires and (optionally) updates rows, keeping the mirror exact."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str,
        prefix: str,
        dataset: AgentDataset,
        mirror: LiveMirror,
        new_vectors: NewVectors,
        task_ids: list[uuid.UUID],
        rng: np.random.Generator,
        seed: int,
    ) -> None:
        self.conn = conn
        self.dataset = dataset
        self.mirror = mirror
        self.new_vectors = new_vectors
        self.task_ids = task_ids
        self.rng = rng
        self.seed = seed
        memories = sql.Identifier(schema, table_name(prefix, "memories"))
        tasks = sql.Identifier(schema, table_name(prefix, "tasks"))
        self.insert_sql = sql.SQL(
            "INSERT INTO {} (id, agent_id, tenant_id, kind, content, embedding, metadata, tags, "
            "importance, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, now(), NULL)"
        ).format(memories)
        # Expired rows first (the janitor's job; the partial expires_at index serves it),
        # then the oldest, so the table keeps churning once nothing has expired.
        self.expire_sql = sql.SQL(
            "DELETE FROM {0} WHERE id IN (SELECT id FROM {0} WHERE expires_at < now() "
            "ORDER BY expires_at LIMIT %s) RETURNING id"
        ).format(memories)
        self.oldest_sql = sql.SQL(
            "DELETE FROM {0} WHERE id IN (SELECT id FROM {0} ORDER BY created_at, id "
            "LIMIT %s) RETURNING id"
        ).format(memories)
        self.update_sql = sql.SQL(
            "UPDATE {} SET importance = least(1.0, importance + 0.05) WHERE id = ANY(%s)"
        ).format(memories)
        self.task_sql = sql.SQL(
            "UPDATE {} SET status = %s, updated_at = now(), "
            "state = jsonb_set(state, '{{status,state}}', to_jsonb(%s::text)) WHERE id = %s"
        ).format(tasks)
        self.access = dataset.agent_access_weights() if dataset.agents else None
        self.inserted = 0
        self.deleted = 0
        self.updated = 0
        self.task_updates = 0
        self.unknown_deletes = 0
        self.batch_hist = LatencyHistogram()

    def _timed(self, fn: Callable[[], None]) -> None:
        t0 = time.perf_counter_ns()
        fn()
        self.batch_hist.record_many(np.array([time.perf_counter_ns() - t0], dtype=np.int64))

    def insert(self, n: int) -> None:
        if n <= 0:
            return
        ds = self.dataset
        vectors = np.asarray(self.new_vectors(n), dtype=np.float32).reshape(n, self.mirror.dim)
        ids = [uuid_for("memories-drift", self.seed, self.inserted + i) for i in range(n)]
        assert self.access is not None
        agents = self.rng.choice(ds.agents, size=n, p=self.access)
        # Text of existing memories: realistic sizes; the ids and vectors are new.
        sources = self.rng.integers(0, max(1, ds.memories), size=n)
        rows = []
        for i in range(n):
            a, src = int(agents[i]), int(sources[i])
            rows.append(
                (
                    ids[i],
                    ds.id_of("agents", a),
                    ds.id_of("tenants", int(ds.tenant_of_agent[a])),
                    MEMORY_KINDS[int(self.rng.integers(len(MEMORY_KINDS)))],
                    ds.memory_content(src) if ds.memories else "note",
                    vectors[i],
                    ds.memory_metadata(src) if ds.memories else "{}",
                    ds.memory_tags[src] if ds.memories else [],
                    float(self.rng.beta(2.0, 5.0)),
                )
            )

        def run() -> None:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(self.insert_sql, rows)

        self._timed(run)
        self.mirror.add(ids, vectors)
        self.inserted += n

    def expire(self, n: int, keep: int) -> None:
        """Delete ``n`` rows, but never below ``keep`` (exact top-k needs k rows)."""
        n = min(n, self.mirror.count - keep)
        if n <= 0:
            return
        gone: list[uuid.UUID] = []

        def run() -> None:
            with self.conn.transaction():
                rows = self.conn.execute(self.expire_sql, (n,)).fetchall()
                gone.extend(r[0] for r in rows)
                if len(gone) < n:
                    more = self.conn.execute(self.oldest_sql, (n - len(gone),)).fetchall()
                    gone.extend(r[0] for r in more)

        self._timed(run)
        self.unknown_deletes += self.mirror.remove(gone)
        self.deleted += len(gone)

    def update(self, n: int) -> None:
        ids = self.mirror.sample_live(n, self.rng)
        if not ids:
            return

        def run() -> None:
            self.conn.execute(self.update_sql, (ids,))

        self._timed(run)
        self.updated += len(ids)

    def update_tasks(self, n: int) -> None:
        if n <= 0 or not self.task_ids:
            return
        picks = self.rng.integers(0, len(self.task_ids), size=n)
        states = self.rng.integers(1, len(TASK_STATUSES), size=n)  # never back to submitted
        params = [
            (TASK_STATUSES[int(s)], TASK_STATUSES[int(s)], self.task_ids[int(t)])
            for t, s in zip(picks, states, strict=True)
        ]

        def run() -> None:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(self.task_sql, params)

        self._timed(run)
        self.task_updates += n


def _query_vectors(
    dataset: AgentDataset, queries: int | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    if isinstance(queries, np.ndarray):
        return np.ascontiguousarray(queries, dtype=np.float32)
    weights = dataset.agent_access_weights()
    agents = rng.choice(dataset.agents, size=queries, p=weights)
    return np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])


def _default_new_vectors(dataset: AgentDataset, rng: np.random.Generator) -> NewVectors:
    """Vectors near a busy agent's topics: the distribution the loaded memories follow."""
    weights = dataset.agent_access_weights()

    def draw(n: int) -> np.ndarray:
        agents = rng.choice(dataset.agents, size=n, p=weights)
        return np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])

    return draw


def _read_mirror(conn: psycopg.Connection[Any], ident: sql.Composable, dim: int) -> LiveMirror:
    register_vector(conn)
    ids: list[uuid.UUID] = []
    chunks: list[np.ndarray] = []
    with conn.cursor(binary=True) as cur:
        cur.execute(sql.SQL("SELECT id, embedding FROM {}").format(ident))
        while rows := cur.fetchmany(10_000):
            ids.extend(r[0] for r in rows)
            chunks.append(np.stack([r[1].to_numpy() for r in rows]).astype(np.float32, copy=False))
    vectors = np.concatenate(chunks) if chunks else np.empty((0, dim), dtype=np.float32)
    return LiveMirror(ids, vectors)


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
        _require_owned_table(conn, schema, memories)
        register_vector(conn)
        index = _pick_hnsw(_hnsw_indexes(conn, schema, memories), metric)
        if index is None:
            raise RunFailed(
                f"{schema}.{memories} has no HNSW index on embedding; build one "
                f"(USING hnsw (embedding {metric.opclass()})) before measuring drift"
            )
        if index.opclass != metric.opclass():
            notes.append(
                f"the HNSW index {index.name} uses {index.opclass}, not {metric.opclass()}: "
                "queries cannot use it"
            )
        conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(int(ef_search))))
        mirror = _read_mirror(conn, ident, dataset.spec.dim)
        if mirror.count < k:
            raise RunFailed(f"{schema}.{memories} has {mirror.count} rows, fewer than k={k}")
        query_vectors = _query_vectors(dataset, queries, rng)
        tasks_table = table_name(prefix, "tasks")
        task_ids: list[uuid.UUID] = []
        if task_update_rate > 0:
            _require_owned_table(conn, schema, tasks_table)
            task_ids = [
                r[0]
                for r in conn.execute(
                    sql.SQL("SELECT id FROM {}").format(sql.Identifier(schema, tasks_table))
                ).fetchall()
            ]
        knn = _KnnRunner(conn, ident, metric, k)
        used = knn.plan_indexes(query_vectors[0])
        if index.name not in used:
            found = ", ".join(used) if used else "a sequential scan"
            notes.append(f"the k-NN plan uses {found}, not {index.name}, at the start")
        writer = _Writer(
            conn,
            schema=schema,
            prefix=prefix,
            dataset=dataset,
            mirror=mirror,
            new_vectors=new_vectors or _default_new_vectors(dataset, rng),
            task_ids=task_ids,
            rng=rng,
            seed=seed,
        )
        query_hist = LatencyHistogram()
        checkpoints: list[DriftCheckpoint] = []
        frozen: _Truth | None = None
        mismatches: list[str] = []
        unknown_returned = 0

        def checkpoint(t: float, label: str) -> None:
            nonlocal frozen, unknown_returned
            stats = _table_stats(conn, schema, memories)
            db_rows = _count(conn, schema, memories)
            if db_rows != mirror.count:
                mismatches.append(f"t={t:.1f}s: count(*) {db_rows} vs mirror {mirror.count}")
            truth = _Truth.over(mirror, query_vectors, k, metric)
            if frozen is None:
                frozen = truth
            hist = LatencyHistogram()
            returned, unknown = knn.run(query_vectors, mirror, hist)
            query_hist.merge(hist)
            unknown_returned += unknown
            per_query = truth.recall(returned, query_vectors, k, metric)
            mean, p5, low = summarize_recall(per_query)
            frozen_recall = float(frozen.recall(returned, query_vectors, k, metric).mean())
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

        tasks_before = _table_stats(conn, schema, tasks_table)
        memories_before = _table_stats(conn, schema, memories)
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
                notes.append(f"at the end the k-NN plan no longer uses {index.name}")
        memories_after = _table_stats(conn, schema, memories)
        tasks_after = _table_stats(conn, schema, tasks_table)
    if mismatches:
        notes.append(
            "the mirror disagreed with count(*) (another session wrote to the table?): "
            + "; ".join(mismatches[:5])
        )
    if writer.unknown_deletes:
        notes.append(f"{writer.unknown_deletes} deleted ids were not in the mirror")
    if unknown_returned:
        notes.append(f"queries returned {unknown_returned} ids that are not live rows")
    for what, done, rate in (
        ("inserts", writer.inserted, insert_rate),
        ("deletes", writer.deleted, expire_rate),
    ):
        if done < math.floor(rate * duration_s):
            notes.append(
                f"the writer fell behind (or the table ran down to k rows): {done} {what} of "
                f"{math.floor(rate * duration_s)} requested"
            )
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
            "memories": _hot(memories_before, memories_after),
            "tasks": _hot(tasks_before, tasks_after),
        },
        query_ms=_latency(query_hist),
        write_batch_ms=_latency(writer.batch_hist),
        wall_seconds=round(time.perf_counter() - wall_start, 3),
        notes=notes,
    )


# --------------------------------------------------------------------------- update cost

_INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$")


@dataclasses.dataclass
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
    before = _table_stats(conn, schema, table)
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
    after = _table_stats(conn, schema, table)
    hists = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    hists[0].record_many(latencies)
    hists[1].record_many(latencies[same])
    hists[2].record_many(latencies[~same])
    return _PhaseRun(*hists, hot=_hot(before, after), changed=changed, seconds=seconds)


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
        latency_ms=_latency(run.all),
        histogram=run.all.encode() if run.all.count else None,
        counted_updates=run.hot.updates,
        hot_updates=run.hot.hot_updates,
        hot_ratio=run.hot.hot_ratio,
        same_page=run.same_page.count,
        same_page_latency_ms=_latency(run.same_page),
        moved_latency_ms=_latency(run.moved),
        seconds=round(run.seconds, 3),
        blocking_indexes=blocking,
    )


def auto_fillfactor(avg_row_bytes: float) -> int:
    """Largest fillfactor (multiple of 5, 50..90) leaving room for one new row version."""
    free_needed = 1.15 * (avg_row_bytes + 4)  # the tuple plus its line pointer, some slack
    ff = math.floor((1.0 - free_needed / PAGE_BYTES) * 20) * 5
    return int(min(90, max(50, ff)))


def _copy_with_fillfactor(
    conn: psycopg.Connection[Any],
    schema: str,
    source: str,
    copy: str,
    fillfactor: int,
    index_defs: Sequence[str],
) -> list[str]:
    """A copy of ``source`` with ``fillfactor`` and the same indexes; returns notes."""
    notes: list[str] = []
    src, dst = sql.Identifier(schema, source), sql.Identifier(schema, copy)
    check_table_replaceable(conn, schema, copy)
    drop_owned_table(conn, schema, copy)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)"
            " WITH (fillfactor = {})"
        ).format(dst, src, sql.Literal(fillfactor))
    )
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(dst, sql.Literal(OWNER_MARK)))
    conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(dst, src))
    for definition in index_defs:  # after the load: bulk builds, as the original had
        match = _INDEXDEF.match(definition)
        if match is None:
            notes.append(f"index not copied (unparsed definition): {definition}")
            continue
        unique = match.group(1) or ""
        conn.execute(
            sql.SQL("CREATE {}INDEX ON {} {}").format(
                sql.SQL(unique),
                dst,
                sql.SQL(match.group(2)),
            )
        )
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(dst))
    return notes


def _index_defs(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass "
        "ORDER BY indexrelid",
        (_regclass(schema, table),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _ids(conn: psycopg.Connection[Any], schema: str, table: str) -> list[uuid.UUID]:
    rows = conn.execute(
        sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(schema, table))
    ).fetchall()
    return [r[0] for r in rows]


def _restore_index(
    conn: psycopg.Connection[Any], schema: str, index: _Index
) -> tuple[bool, float | None]:
    started = time.perf_counter()
    conn.execute(index.definition)
    exists = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, index.name),
    ).fetchone()
    return exists is not None, round(time.perf_counter() - started, 3)


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
        _require_owned_table(conn, schema, memories)
        indexes = _hnsw_indexes(conn, schema, memories)
        index = _pick_hnsw(indexes, Metric(metric)) if metric is not None else None
        index = index or (indexes[0] if indexes else None)
        if index is None:
            raise RunFailed(
                f"{schema}.{memories} has no HNSW index on embedding: nothing to compare"
            )
        if len(indexes) > 1:
            notes.append(
                f"{len(indexes)} HNSW indexes on the table; only {index.name} is dropped in "
                "the no_hnsw phase"
            )
        ids = _ids(conn, schema, memories)
        rows = len(ids)
        heap = conn.execute(
            "SELECT pg_relation_size(%s::regclass)", (_regclass(schema, memories),)
        ).fetchone()
        avg_row = (int(heap[0]) if heap else 0) / max(1, rows)
        order = rng.permutation(rows)
        if rows < 2 * updates:
            notes.append(
                f"the table has {rows} rows, fewer than 2 x {updates}: the phases share rows"
            )
        set_a = [ids[int(i)] for i in order[:updates]]
        set_b = [ids[int(i)] for i in order[::-1][:updates]]
        blocking = _indexes_on_columns(conn, schema, memories, [column])
        own_ff = _fillfactor(conn, schema, memories)

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
            restored, rebuild = _restore_index(conn, schema, index)
        if not restored:
            raise RunFailed(f"could not recreate {index.name}; run: {index.definition}")

        if copy_phase:
            ff = fillfactor if fillfactor is not None else auto_fillfactor(avg_row)
            copy = f"{memories}_ffcopy"
            try:
                notes += _copy_with_fillfactor(
                    conn, schema, memories, copy, ff, _index_defs(conn, schema, memories)
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
            notes.append(
                f"{p.name}: {p.same_page} updates stayed on their page but the statistics "
                f"count {p.hot_updates} HOT (another session updating the table?)"
            )
    if blocking:
        notes.append(f"{column} is indexed by {', '.join(blocking)}: its updates cannot be HOT")
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
        _require_owned_table(conn, schema, tasks)
    except RunFailed:
        notes.append(f"no {schema}.{tasks} table: task updates not measured")
        return []
    ids = _ids(conn, schema, tasks)
    if not ids:
        notes.append("the tasks table is empty: task updates not measured")
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
    blocking = _indexes_on_columns(conn, schema, tasks, ["status", "updated_at", "state"])
    return [
        _phase(
            "tasks_status",
            tasks,
            "status, state, updated_at",
            hnsw=False,
            fillfactor=_fillfactor(conn, schema, tasks),
            run=run,
            updates=len(params),
            blocking=blocking,
        )
    ]


# --------------------------------------------------------------------------- recommendations


def _fmt(value: float) -> str:
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _update_sentences(cost: UpdateCostResult) -> list[str]:
    out: list[str] = []
    with_index, without = cost.phase("hnsw"), cost.phase("no_hnsw")
    if with_index and without and with_index.latency_ms and without.latency_ms:
        a, b = with_index.latency_ms, without.latency_ms
        ratio = cost.p50_ratio or 0.0
        moved = ""
        if cost.moved_p50_ratio and with_index.moved_latency_ms and without.moved_latency_ms:
            moved = (
                f"; the non-HOT ones alone (row moved to another page) took "
                f"{_fmt(with_index.moved_latency_ms.p50)} vs "
                f"{_fmt(without.moved_latency_ms.p50)} ms ({cost.moved_p50_ratio:.1f}x)"
            )
        head = (
            f"Updating {cost.column} in the embedding table ({cost.rows:,} rows) took p50 "
            f"{_fmt(a.p50)} ms (p99 {_fmt(a.p99)}) with the HNSW index vs {_fmt(b.p50)} ms "
            f"(p99 {_fmt(b.p99)}) without ({ratio:.1f}x; {_pct(with_index.hot_ratio)} HOT"
            f"{moved})"
        )
        if ratio >= 1.5 or (cost.moved_p50_ratio or 0.0) >= 1.5:
            out.append(
                f"{head}: a non-HOT update re-inserts the row into the HNSW graph (pgvector "
                "#875). Keep mutable agent state (importance, access counts) in a separate "
                "table keyed by memory id, or make the update HOT-friendly (free space on "
                "the page via fillfactor, no index on the column)."
            )
        else:
            out.append(f"{head}: at this size the HNSW insert is not what an update costs.")
    ff = next((p for p in cost.phases if p.name.startswith("hnsw_fillfactor")), None)
    if ff and ff.latency_ms and with_index and with_index.latency_ms:
        out.append(
            f"On a copy with fillfactor {ff.fillfactor} (rows average "
            f"{cost.avg_row_bytes:.0f} bytes of heap) {_pct(ff.hot_ratio)} of the same updates "
            f"were HOT and p50 was {_fmt(ff.latency_ms.p50)} ms with the HNSW index still "
            f"there (vs {_fmt(with_index.latency_ms.p50)} ms and {_pct(with_index.hot_ratio)} "
            f"HOT at fillfactor {with_index.fillfactor}): a HOT update writes no index entry."
        )
    task = cost.phase("tasks_status")
    if task and task.latency_ms:
        why = (
            f"; {', '.join(task.blocking_indexes)} covers an updated column, so an update that "
            "changes status is never HOT: leave status out of that index if the lookups "
            "allow, or accept the index write"
            if task.blocking_indexes
            else ""
        )
        out.append(
            f"Task status updates (jsonb_set on state) took p50 {_fmt(task.latency_ms.p50)} ms, "
            f"p99 {_fmt(task.latency_ms.p99)} ms, {_pct(task.hot_ratio)} HOT{why}."
        )
    return out


def _drift_sentences(drift: DriftResult) -> list[str]:
    points = [c for c in drift.checkpoints if c.label != "after_vacuum"]
    if len(points) < 2:
        return []
    first, last = points[0], points[-1]
    out: list[str] = []
    change = last.recall_mean - first.recall_mean
    churn = f"{100 * last.churn:.0f}%"
    writes = f"{last.inserted} inserts and {last.deleted} deletes, {churn} of the starting rows"
    if change <= -SHORT_RECALL_TOLERANCE:
        out.append(
            f"Recall@{drift.k} fell from {first.recall_mean:.3f} to {last.recall_mean:.3f} "
            f"(p5 {last.recall_p5:.3f}) after {writes}; dead tuples "
            f"{last.dead_tuples:,} (ef_search {drift.ef_search})."
        )
    else:
        out.append(
            f"Recall@{drift.k} held ({first.recall_mean:.3f} -> {last.recall_mean:.3f}, "
            f"p5 {first.recall_p5:.3f} -> {last.recall_p5:.3f}) through {writes} "
            f"(dead tuples {last.dead_tuples:,}, ef_search {drift.ef_search})."
        )
    if last.returned_mean < drift.k:
        out.append(
            f"Queries returned {last.returned_mean:.1f} of {drift.k} rows on average at the end: "
            "dead tuples take places in the ef_search candidate list (pgvector #244). Vacuum "
            "more often, raise hnsw.ef_search, or set hnsw.iterative_scan."
        )
    before = next((c for c in drift.checkpoints if c.label == "before_vacuum"), None)
    after = next((c for c in drift.checkpoints if c.label == "after_vacuum"), None)
    if before and after and drift.vacuum_seconds is not None:
        sentence = (
            f"VACUUM took {drift.vacuum_seconds:.1f} s for {before.dead_tuples:,} dead tuples "
            f"({after.live_rows:,} live rows); recall {before.recall_mean:.3f} -> "
            f"{after.recall_mean:.3f} (p5 {before.recall_p5:.3f} -> {after.recall_p5:.3f})"
        )
        if abs(after.recall_mean - before.recall_mean) < SHORT_RECALL_TOLERANCE:
            sentence += ", a change within what separates two HNSW graphs of the same rows"
        if drift.vacuum_seconds >= 1.0:
            sentence += (
                ". HNSW vacuum repairs the graph around every removed element; pgvector's "
                "README suggests REINDEX INDEX CONCURRENTLY before VACUUM to speed it up"
            )
        out.append(sentence + ".")
    if last.recall_frozen_gt is not None and (
        abs(last.recall_frozen_gt - last.recall_mean) >= SHORT_RECALL_TOLERANCE
    ):
        out.append(
            f"Scored against the ground truth of the start, the same results give recall "
            f"{last.recall_frozen_gt:.3f} instead of {last.recall_mean:.3f} "
            f"({100 * last.gt_new_share:.0f}% of the true neighbours are new rows): a "
            "benchmark must recompute ground truth over the rows present when it queries."
        )
    for table, hot in sorted(drift.hot.items()):
        if hot.updates:
            out.append(
                f"During the run {hot.hot_updates:,} of {hot.updates:,} {table} updates were "
                f"HOT ({_pct(hot.hot_ratio)})."
            )
    return out


def drift_recommendations(
    drift: DriftResult | None, update_cost: UpdateCostResult | None
) -> list[str]:
    """Evidence-backed sentences from what was measured (either input may be None)."""
    out: list[str] = []
    if update_cost is not None:
        out += _update_sentences(update_cost)
    if drift is not None:
        out += _drift_sentences(drift)
    return out
