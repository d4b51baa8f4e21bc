"""Serving the stream through one cache: a miss runs the real top-k query on the server,
a hit costs the cache lookup; both timed with perf_counter_ns. Optionally a writer
inserts rows next to popular queries while the stream runs (the staleness study)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...engine.histogram import LatencyHistogram
from ...workloads.vector import KnnQuery
from .caches import LruCache, SemanticCache
from .truth import Served

_clock = time.perf_counter_ns


class Writer:
    """Inserts rows next to popular queries at ``rate`` per second of stream time."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str,
        table: str,
        rate: float,
        anchors: np.ndarray,
        anchor_probs: np.ndarray,
        radius: np.ndarray,
        first_id: int,
        seed: int,
    ) -> None:
        self.conn = conn
        self.rate = rate
        self.anchors = anchors
        self.probs = anchor_probs
        self.radius = radius
        self.next_id = first_id
        self.rng = np.random.default_rng([seed, 2])
        self.vectors: list[np.ndarray] = []
        self.ids: list[int] = []
        self.stmt = sql.SQL("INSERT INTO {} (id, embedding) VALUES (%s, %s)").format(
            sql.Identifier(schema, table)
        )

    def catch_up(self, elapsed_s: float) -> None:
        due = int(elapsed_s * self.rate)
        while len(self.ids) < due:
            q = int(self.rng.choice(self.anchors.shape[0], p=self.probs))
            noise = self.rng.standard_normal(self.anchors.shape[1])
            noise *= 0.5 * float(self.radius[q]) / max(float(np.linalg.norm(noise)), 1e-12)
            vec = (self.anchors[q] + noise).astype(np.float32)
            self.conn.execute(self.stmt, (self.next_id, vec))
            self.vectors.append(vec)
            self.ids.append(self.next_id)
            self.next_id += 1


def run_stream(
    *,
    knn: KnnQuery,
    cache: LruCache | SemanticCache,
    vectors: np.ndarray,
    keys: list[bytes],
    k: int,
    id_map: Callable[[list[int]], np.ndarray],
    writer: Writer | None,
) -> Served:
    """Every stream entry through ``cache``; what was served, when, and how fast."""
    n = vectors.shape[0]
    served = np.full((n, k), -1, dtype=np.int64)
    hit = np.zeros(n, dtype=bool)
    filled_at = np.zeros(n, dtype=np.int64)
    served_at = np.zeros(n, dtype=np.int64)
    lat = np.zeros(n, dtype=np.int64)
    started = _clock()
    for i in range(n):
        if writer is not None:
            writer.catch_up((_clock() - started) / 1e9)
        writes = len(writer.ids) if writer is not None else 0
        vec = vectors[i]
        t0 = _clock()
        value = cache.get(keys[i]) if isinstance(cache, LruCache) else cache.get(vec)
        if value is None:
            rows = id_map(knn.ids(vec))
            value = (rows, writes)
            if isinstance(cache, LruCache):
                cache.put(keys[i], value)
            else:
                cache.put(vec, value)
        else:
            hit[i] = True
        lat[i] = _clock() - t0
        rows, filled = value
        served[i, : rows.size] = rows[:k]
        filled_at[i] = filled
        served_at[i] = writes
    seconds = (_clock() - started) / 1e9
    hists = [LatencyHistogram() for _ in range(3)]
    hists[0].record_many(lat)
    hists[1].record_many(lat[hit])
    hists[2].record_many(lat[~hit])
    dim = vectors.shape[1]
    written = np.array(writer.vectors, dtype=np.float32).reshape(-1, dim) if writer else None
    return Served(
        ids=served,
        hit=hit,
        filled_at=filled_at,
        served_at=served_at,
        latency=hists[0],
        hit_latency=hists[1],
        miss_latency=hists[2],
        seconds=seconds,
        write_vectors=written if written is not None else np.empty((0, dim), np.float32),
        write_ids=list(writer.ids) if writer else [],
    )
