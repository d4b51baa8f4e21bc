"""The churn writer: inserts memories, expires old ones and updates rows in small timed
batches, keeping the client mirror exact."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import MEMORY_KINDS, TASK_STATUSES, table_name, uuid_for
from ...engine.histogram import LatencyHistogram
from .mirror import LiveMirror

NewVectors = Callable[[int], np.ndarray]


class Writer:
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


def draw_queries(
    dataset: AgentDataset, queries: int | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    if isinstance(queries, np.ndarray):
        return np.ascontiguousarray(queries, dtype=np.float32)
    weights = dataset.agent_access_weights()
    agents = rng.choice(dataset.agents, size=queries, p=weights)
    return np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])


def default_new_vectors(dataset: AgentDataset, rng: np.random.Generator) -> NewVectors:
    """Vectors near a busy agent's topics: the distribution the loaded memories follow."""
    weights = dataset.agent_access_weights()

    def draw(n: int) -> np.ndarray:
        agents = rng.choice(dataset.agents, size=n, p=weights)
        return np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])

    return draw
