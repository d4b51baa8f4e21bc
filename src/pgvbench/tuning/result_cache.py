"""Application-level result caches in front of the kNN query, measured against a server.

A seeded Zipf stream of query vectors runs through each cache configuration:

* ``LruCache``: exact key (the query vector's bytes); a hit needs the very same vector.
* ``SemanticCache``: reuse a cached result when the new vector lies within ``delta``
  of a cached one (brute force over the cache, vectorised), LRU eviction.

A miss runs the real top-k query on the server; a hit costs the cache lookup. Both
are timed with perf_counter_ns into one HDR histogram. The served results (hits and
misses) are scored with tie-aware recall against the exact top-k of the *actual*
query vector, so the recall a semantic cache gives away is measured, not assumed.
With ``writes_per_second > 0`` rows close to popular queries are inserted while the
stream runs; a hit whose cached result misses such a row, now in the true top-k, is
a stale hit.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..datasets.base import Dataset
from ..datasets.groundtruth import GroundTruth, exact_knn
from ..datasets.recall import summarize_recall, tie_aware_recall
from ..db.schema import OWNER_MARK
from ..engine.histogram import LatencyHistogram
from ..errors import RunFailed, SafetyError
from ..metrics import Metric
from ..server.connection import connect
from ..spec.table import Table as _Table
from ..workloads.vector import KnnQuery

TruthFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_clock = time.perf_counter_ns

# --- spec ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResultCacheSpec:
    """``[result_cache]``: the query stream and the cache configurations to compare."""

    zipf: float = 1.0  # exponent s of P(rank r) ~ 1/r^s; 0 is a uniform stream
    stream_length: int = 2000
    distinct_queries: int = 200
    lru_sizes: tuple[int, ...] = (10, 50, 100)
    semantic_deltas: tuple[float, ...] = (0.0, 0.1)
    semantic_size: int = 0  # 0: the largest LRU size
    jitter: float = 0.0  # repeats get noise of norm jitter x |q| (0: exact repeats)
    writes_per_second: float = 0.0  # staleness study; 0 = off
    k: int = 10
    seed: int = 0

    @property
    def semantic_capacity(self) -> int:
        return self.semantic_size or max(self.lru_sizes)


RESULT_CACHE_KEYS = [
    "zipf",
    "stream_length",
    "distinct_queries",
    "lru_sizes",
    "semantic_deltas",
    "semantic_size",
    "jitter",
    "writes_per_second",
    "k",
    "seed",
]


def _number_list(t: _Table, key: str, default: list[float], minimum: float) -> tuple[float, ...]:
    value: Any = t.data.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        t.fail(key, f"= {value!r} must be a number or a non-empty list of numbers")
    out: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            t.fail(key, f"contains {item!r}; every value must be a number")
        if not np.isfinite(item) or item < minimum:
            t.fail(key, f"contains {item!r}; every value must be a finite number >= {minimum}")
        out.append(float(item))
    return tuple(sorted(set(out)))


def parse_result_cache(t: _Table) -> ResultCacheSpec:
    """Validate ``[result_cache]``; errors name the file, table and key (SpecError)."""
    t.only(RESULT_CACHE_KEYS)
    distinct = t.integer("distinct_queries", default=200, minimum=1, maximum=1_000_000)
    spec = ResultCacheSpec(
        zipf=t.number("zipf", default=1.0, minimum=0.0, maximum=10.0),
        stream_length=t.integer("stream_length", default=2000, minimum=1, maximum=10_000_000),
        distinct_queries=distinct,
        lru_sizes=t.int_list("lru_sizes", default=[10, 50, 100], minimum=1, maximum=10_000_000),
        semantic_deltas=_number_list(t, "semantic_deltas", [0.0, 0.1], 0.0),
        semantic_size=t.integer("semantic_size", default=0, minimum=0, maximum=10_000_000),
        jitter=t.number("jitter", default=0.0, minimum=0.0, maximum=10.0),
        writes_per_second=t.number("writes_per_second", default=0.0, minimum=0.0),
        k=t.integer("k", default=10, minimum=1, maximum=100),
        seed=t.integer("seed", default=0, minimum=0),
    )
    return spec


# --- the query stream ------------------------------------------------------------------


def zipf_probabilities(zipf: float, distinct: int) -> np.ndarray:
    """P(rank r) proportional to 1/r^zipf, r = 1..distinct."""
    weights = np.arange(1, distinct + 1, dtype=np.float64) ** -float(zipf)
    probs: np.ndarray = weights / weights.sum()
    return probs


def zipf_stream(zipf: float, distinct: int, length: int, seed: int) -> np.ndarray:
    """Query ids (0..distinct-1) of a seeded Zipf stream; popularity ranks are shuffled."""
    rng = np.random.default_rng(seed)
    ranks = rng.choice(distinct, size=length, p=zipf_probabilities(zipf, distinct))
    by_rank = rng.permutation(distinct)  # which query holds each popularity rank
    ids: np.ndarray = by_rank[ranks].astype(np.int64)
    return ids


def stream_vectors(queries: np.ndarray, ids: np.ndarray, jitter: float, seed: int) -> np.ndarray:
    """The vector of each stream entry: the first occurrence exact, repeats jittered.

    A repeat gets Gaussian noise scaled to norm ``jitter x |q|`` (a paraphrase of the
    same question); with jitter 0 repeats are bit-identical.
    """
    out = np.array(queries[ids], dtype=np.float32)
    if jitter <= 0 or ids.size == 0:
        return out
    rng = np.random.default_rng([seed, 1])
    _, first = np.unique(ids, return_index=True)
    repeat = np.ones(ids.size, dtype=bool)
    repeat[first] = False
    rows = np.flatnonzero(repeat)
    noise = rng.standard_normal((rows.size, out.shape[1]))
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    norms = np.linalg.norm(out[rows].astype(np.float64), axis=1, keepdims=True)
    out[rows] += (noise * norms * jitter).astype(np.float32)
    return out


# --- caches ----------------------------------------------------------------------------


class LruCache:
    """Exact-key LRU of ``size`` entries."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be >= 1, got {size}")
        self.size = size
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


def query_distances(keys: np.ndarray, vector: np.ndarray, metric: Metric) -> np.ndarray:
    """Distance of ``vector`` to each row of ``keys`` (float64).

    l2: Euclidean; cosine and ip: 1 - cosine similarity (an inner product is not a
    dissimilarity between two queries, their angle is). Bit-identical rows are 0.
    """
    k64 = keys.astype(np.float64)
    v64 = vector.astype(np.float64)
    if metric is Metric.L2:
        diff = k64 - v64
        dist: np.ndarray = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    else:
        norms = np.linalg.norm(k64, axis=1) * float(np.linalg.norm(v64))
        dots = k64 @ v64
        sim = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        dist = 1.0 - sim
    dist[(keys == vector).all(axis=1)] = 0.0
    return dist


class SemanticCache:
    """Reuse a result when a cached query lies within ``delta``; LRU eviction.

    The nearest cached key is found by brute force over a preallocated key matrix.
    ``delta = 0`` reuses only bit-identical vectors, i.e. exact matching.
    """

    def __init__(self, size: int, delta: float, metric: Metric, dim: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be >= 1, got {size}")
        self.size = size
        self.delta = float(delta)
        self.metric = Metric(metric)
        self._keys = np.zeros((size, dim), dtype=np.float32)
        self._stamp = np.zeros(size, dtype=np.int64)
        self._values: list[Any] = [None] * size
        self._count = 0
        self._tick = 0

    def __len__(self) -> int:
        return self._count

    def get(self, vector: np.ndarray) -> Any | None:
        if self._count == 0:
            return None
        dist = query_distances(self._keys[: self._count], vector, self.metric)
        slot = int(np.argmin(dist))
        if dist[slot] > self.delta:
            return None
        self._tick += 1
        self._stamp[slot] = self._tick
        return self._values[slot]

    def put(self, vector: np.ndarray, value: Any) -> None:
        if self._count < self.size:
            slot = self._count
            self._count += 1
        else:
            slot = int(np.argmin(self._stamp))
        self._tick += 1
        self._keys[slot] = vector
        self._stamp[slot] = self._tick
        self._values[slot] = value


# --- expectations without a server -----------------------------------------------------


def simulate_lru_hits(ids: np.ndarray, size: int) -> np.ndarray:
    """Hit (True) or miss of each entry of an id stream through an LruCache."""
    cache = LruCache(size)
    hits = np.zeros(ids.size, dtype=bool)
    for i, key in enumerate(ids.tolist()):
        if cache.get(key) is not None:
            hits[i] = True
        else:
            cache.put(key, True)
    return hits


def expected_lru_hit_rate(zipf: float, distinct: int, size: int, length: int, seed: int) -> float:
    """Hit rate of an exact LRU on the same seeded stream, simulated without a server."""
    ids = zipf_stream(zipf, distinct, length, seed)
    return float(simulate_lru_hits(ids, size).mean()) if length else 0.0


def che_lru_hit_rate(zipf: float, distinct: int, size: int) -> float:
    """Che's approximation of the steady-state LRU hit rate under independent references.

    The characteristic time T solves sum(1 - exp(-p_i T)) = size; the hit rate is
    sum p_i (1 - exp(-p_i T)). Cold-start misses of a finite stream are not included.
    """
    if size >= distinct:
        return 1.0
    p = zipf_probabilities(zipf, distinct)
    lo, hi = 0.0, 1.0
    while np.sum(1.0 - np.exp(-p * hi)) < size:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.sum(1.0 - np.exp(-p * mid)) < size:
            lo = mid
        else:
            hi = mid
    return float(np.sum(p * (1.0 - np.exp(-p * hi))))


# --- results ---------------------------------------------------------------------------


@dataclasses.dataclass
class CacheRun:
    """One cache configuration over the whole stream (JSON-friendly)."""

    kind: str  # "lru" | "semantic"
    size: int
    delta: float | None
    requests: int
    hits: int
    hit_rate: float
    expected_hit_rate: float | None  # lru, jitter 0: simulation of the same stream
    analytic_hit_rate: float | None  # lru: Che approximation (steady state)
    p50_ms: float
    p99_ms: float
    mean_ms: float
    hit_p50_ms: float | None
    miss_p50_ms: float | None
    miss_p99_ms: float | None
    recall_mean: float
    recall_p5: float
    recall_min: float
    hit_recall_mean: float | None  # recall of the results served from the cache
    writes: int
    stale_hits: int
    stale_hit_fraction: float | None  # of hits; None without writes or hits
    seconds: float
    latency_hdr: str  # encoded HDR histogram of all requests

    @property
    def label(self) -> str:
        if self.kind == "lru":
            return f"lru size {self.size}"
        return f"semantic size {self.size} delta {self.delta:g}"


@dataclasses.dataclass
class ResultCacheStudy:
    table: str
    metric: str
    k: int
    zipf: float
    stream_length: int
    distinct_queries: int
    jitter: float
    writes_per_second: float
    query_settings: dict[str, str]
    runs: list[CacheRun]
    notes: list[str] = dataclasses.field(default_factory=list)
    recommendations: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for run, obj in zip(data["runs"], self.runs, strict=True):
            run["label"] = obj.label
        return data


# --- measurement -----------------------------------------------------------------------


@dataclasses.dataclass
class _Served:
    ids: np.ndarray  # stream x k, -1 padded, in combined-base row numbers
    hit: np.ndarray  # bool per stream entry
    filled_at: np.ndarray  # writes done when the served result was computed
    served_at: np.ndarray  # writes done when it was served
    latency: LatencyHistogram
    hit_latency: LatencyHistogram
    miss_latency: LatencyHistogram
    seconds: float
    write_vectors: np.ndarray  # writes x dim
    write_ids: list[int]


def _check_owned_table(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    row = conn.execute(
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is None:
        raise RunFailed(f"result cache study: table {schema}.{table} does not exist")
    if (row[0] or "") != OWNER_MARK:
        raise SafetyError(
            f"table {schema}.{table} exists without pgvbench's mark; the result-cache study "
            "writes rows into it only when pgvbench owns it"
        )


def _apply_settings(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> None:
    for key, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, false)", (key, str(value)))


class _Writer:
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


def _run_stream(
    *,
    knn: KnnQuery,
    cache: LruCache | SemanticCache,
    vectors: np.ndarray,
    keys: list[bytes],
    k: int,
    id_map: Callable[[list[int]], np.ndarray],
    writer: _Writer | None,
) -> _Served:
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
    return _Served(
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


def _cross_distances(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """pgvector-convention distances between every row of ``a`` and every row of ``b``."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dots = a64 @ b64.T
    if metric is Metric.INNER_PRODUCT:
        return -dots
    na = np.einsum("ij,ij->i", a64, a64)[:, None]
    nb = np.einsum("ij,ij->i", b64, b64)[None, :]
    if metric is Metric.L2:
        out: np.ndarray = np.sqrt(np.maximum(na + nb - 2.0 * dots, 0.0))
        return out
    norms = np.sqrt(na * nb)
    sim = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    dist: np.ndarray = 1.0 - sim
    return dist


def _truth_with_writes(
    base_ids: np.ndarray,
    base_dist: np.ndarray,
    vectors: np.ndarray,
    written: np.ndarray,
    served_at: np.ndarray,
    n_base: int,
    k: int,
    metric: Metric,
) -> GroundTruth:
    """Exact top-k of each entry over the base plus the rows written before it was served."""
    if written.shape[0] == 0:
        return GroundTruth(base_ids, base_dist, "exact", 0.0, False)
    w = written.shape[0]
    extra = _cross_distances(vectors, written, metric)
    extra[np.arange(w)[None, :] >= served_at[:, None]] = np.inf
    ids = np.concatenate([base_ids, np.broadcast_to(n_base + np.arange(w), extra.shape)], axis=1)
    dist = np.concatenate([base_dist.astype(np.float64), extra], axis=1)
    order = np.lexsort((ids, dist), axis=-1)[:, :k]
    return GroundTruth(
        np.take_along_axis(ids, order, 1).astype(np.int64),
        np.take_along_axis(dist, order, 1).astype(np.float32),
        "exact incl. writes",
        0.0,
        False,
    )


def _stale_hits(served: _Served, truth: GroundTruth, n_base: int) -> int:
    """Hits whose true top-k holds a row written after the result was cached but not served."""
    stale = 0
    for i in np.flatnonzero(served.hit & (served.served_at > served.filled_at)):
        fresh = truth.ids[i][truth.ids[i] >= n_base] - n_base
        fresh = fresh[(fresh >= served.filled_at[i]) & (fresh < served.served_at[i])]
        if fresh.size and not np.isin(fresh + n_base, served.ids[i]).all():
            stale += 1
    return stale


def measure_result_caches(
    *,
    dsn: str,
    schema: str,
    table: str,
    dataset: Dataset,
    metric: Metric,
    spec: ResultCacheSpec,
    query_settings: Mapping[str, str],
    truth_fn: TruthFn | None,
) -> ResultCacheStudy:
    """Run the stream through every cache configuration against ``schema.table``.

    Rows written for the staleness study get ids above the table's maximum and are
    deleted (and the table vacuumed) after each configuration.
    """
    metric = Metric(metric)
    k = spec.k
    if spec.distinct_queries > dataset.n_queries:
        raise RunFailed(
            f"[result_cache] distinct_queries = {spec.distinct_queries} exceeds the dataset's "
            f"{dataset.n_queries} queries; lower it or generate more queries"
        )
    queries = np.ascontiguousarray(dataset.queries[: spec.distinct_queries])
    stream_ids = zipf_stream(spec.zipf, spec.distinct_queries, spec.stream_length, spec.seed)
    vectors = stream_vectors(queries, stream_ids, spec.jitter, spec.seed)
    keys = [v.tobytes() for v in vectors]

    def default_truth(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_knn(dataset.base, q, kk, metric)

    truth = truth_fn or default_truth
    base_ids, base_dist = truth(vectors, k)
    n_base = dataset.n
    notes: list[str] = []
    runs: list[CacheRun] = []
    configs: list[tuple[str, int, float | None]] = [("lru", s, None) for s in spec.lru_sizes]
    configs += [("semantic", spec.semantic_capacity, d) for d in spec.semantic_deltas]
    with (
        connect(dsn) as conn,
        connect(dsn) as wconn,
    ):
        if spec.writes_per_second > 0:
            _check_owned_table(conn, schema, table)
            from pgvector.psycopg import register_vector

            register_vector(wconn)
        _apply_settings(conn, query_settings)
        knn = KnnQuery(conn, schema=schema, table=table, metric=metric, k=k)
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(id), -1) + 1 FROM {}").format(
                sql.Identifier(schema, table)
            )
        ).fetchone()
        first_new = int(row[0]) if row else n_base
        if first_new < n_base:
            raise RunFailed(f"{schema}.{table} holds fewer rows than the dataset ({n_base})")
        anchor_ids, anchor_dist = truth(queries, 1)
        del anchor_ids
        anchor_probs = np.bincount(stream_ids, minlength=spec.distinct_queries) / max(
            1, stream_ids.size
        )

        def id_map(ids: list[int]) -> np.ndarray:
            arr = np.asarray(ids, dtype=np.int64)
            mapped: np.ndarray = np.where(arr >= first_new, n_base + (arr - first_new), arr)
            return mapped

        for kind, size, delta in configs:
            cache: LruCache | SemanticCache
            if kind == "lru":
                cache = LruCache(size)
            else:
                cache = SemanticCache(size, delta or 0.0, metric, dataset.dim)
            writer = None
            if spec.writes_per_second > 0:
                writer = _Writer(
                    wconn,
                    schema=schema,
                    table=table,
                    rate=spec.writes_per_second,
                    anchors=queries,
                    anchor_probs=anchor_probs,
                    radius=np.abs(anchor_dist[:, 0].astype(np.float64)),
                    first_id=first_new,
                    seed=spec.seed,
                )
            try:
                served = _run_stream(
                    knn=knn, cache=cache, vectors=vectors, keys=keys, k=k, id_map=id_map,
                    writer=writer,
                )  # fmt: skip
            finally:
                if writer is not None and writer.ids:
                    wconn.execute(
                        sql.SQL("DELETE FROM {} WHERE id >= %s").format(
                            sql.Identifier(schema, table)
                        ),
                        (first_new,),
                    )
                    wconn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(schema, table)))
            runs.append(
                _score(
                    kind,
                    size,
                    delta,
                    served,
                    vectors,
                    dataset,
                    base_ids,
                    base_dist,
                    k,
                    metric,
                    spec,
                    stream_ids,
                )
            )
    if spec.jitter > 0:
        notes.append(
            f"repeats carry noise of {spec.jitter:g} x |q|: an exact-key LRU cannot hit a "
            "jittered repeat, so no simulation expectation is given for it"
        )
    study = ResultCacheStudy(
        table=f"{schema}.{table}",
        metric=metric.value,
        k=k,
        zipf=spec.zipf,
        stream_length=spec.stream_length,
        distinct_queries=spec.distinct_queries,
        jitter=spec.jitter,
        writes_per_second=spec.writes_per_second,
        query_settings={key: str(v) for key, v in query_settings.items()},
        runs=runs,
        notes=notes,
    )
    study.recommendations = recommendations(study)
    return study


def _score(
    kind: str,
    size: int,
    delta: float | None,
    served: _Served,
    vectors: np.ndarray,
    dataset: Dataset,
    base_ids: np.ndarray,
    base_dist: np.ndarray,
    k: int,
    metric: Metric,
    spec: ResultCacheSpec,
    stream_ids: np.ndarray,
) -> CacheRun:
    truth = _truth_with_writes(
        base_ids, base_dist, vectors, served.write_vectors, served.served_at, dataset.n, k, metric
    )
    combined = (
        np.vstack([dataset.base, served.write_vectors])
        if served.write_vectors.shape[0]
        else dataset.base
    )
    recall = tie_aware_recall(served.ids, truth, vectors, combined, k, metric)
    mean, p5, low = summarize_recall(recall)
    hits = int(served.hit.sum())
    stale = _stale_hits(served, truth, dataset.n) if served.write_ids else 0
    expected = analytic = None
    if kind == "lru":
        analytic = che_lru_hit_rate(spec.zipf, spec.distinct_queries, size)
        if spec.jitter == 0:
            expected = float(simulate_lru_hits(stream_ids, size).mean())
    overall = served.latency
    hit_l, miss_l = served.hit_latency, served.miss_latency
    return CacheRun(
        kind=kind,
        size=size,
        delta=delta,
        requests=int(served.hit.size),
        hits=hits,
        hit_rate=hits / max(1, served.hit.size),
        expected_hit_rate=expected,
        analytic_hit_rate=analytic,
        p50_ms=overall.percentile_ms(50.0),
        p99_ms=overall.percentile_ms(99.0),
        mean_ms=float(overall.summary().mean) if overall.count else 0.0,  # type: ignore[union-attr]
        hit_p50_ms=hit_l.percentile_ms(50.0) if hit_l.count else None,
        miss_p50_ms=miss_l.percentile_ms(50.0) if miss_l.count else None,
        miss_p99_ms=miss_l.percentile_ms(99.0) if miss_l.count else None,
        recall_mean=mean,
        recall_p5=p5,
        recall_min=low,
        hit_recall_mean=float(recall[served.hit].mean()) if hits else None,
        writes=len(served.write_ids),
        stale_hits=stale,
        stale_hit_fraction=(stale / hits) if (served.write_ids and hits) else None,
        seconds=round(served.seconds, 4),
        latency_hdr=overall.encode(),
    )


# --- advice ----------------------------------------------------------------------------


def recommendations(study: ResultCacheStudy) -> list[str]:
    """Plain-language conclusions of a study."""
    out: list[str] = []
    lru = [r for r in study.runs if r.kind == "lru"]
    sem = [r for r in study.runs if r.kind == "semantic"]
    if lru:
        best = max(lru, key=lambda r: r.hit_rate)
        line = (
            f"An exact LRU of {best.size} entries served {best.hit_rate:.0%} of "
            f"{best.requests} requests from the client (p50 {best.p50_ms:.3g} ms vs a "
            f"miss p50 of {best.miss_p50_ms or 0:.3g} ms)"
        )
        if best.expected_hit_rate is not None:
            line += f"; the simulation of the same stream expects {best.expected_hit_rate:.0%}"
        out.append(line + ".")
        if study.jitter > 0 and best.hit_rate < 0.05:
            out.append(
                "Repeated questions arrive as slightly different vectors: an exact-key cache "
                "barely hits; key on the normalised request text or use a semantic cache."
            )
    if sem:
        exact_sem = [r for r in sem if r.delta == 0]
        base_hit = exact_sem[0].hit_rate if exact_sem else 0.0
        ok = [r for r in sem if r.recall_mean >= 0.99 * (sem[0].recall_mean or 1.0)]
        wide = max(sem, key=lambda r: r.delta or 0.0)
        if wide.delta:
            out.append(
                f"A semantic cache with delta {wide.delta:g} raised the hit rate to "
                f"{wide.hit_rate:.0%} (from {base_hit:.0%} at delta 0) at a recall of "
                f"{wide.recall_mean:.3f} (hits alone: "
                f"{(wide.hit_recall_mean if wide.hit_recall_mean is not None else 1.0):.3f})."
            )
        if ok:
            safe = max(ok, key=lambda r: r.delta or 0.0)
            out.append(
                f"The largest delta that keeps recall within 1% of exact-match caching is "
                f"{safe.delta:g} (hit rate {safe.hit_rate:.0%})."
            )
    stale = [r for r in study.runs if r.stale_hit_fraction is not None]
    if stale:
        worst = max(stale, key=lambda r: r.stale_hit_fraction or 0.0)
        out.append(
            f"With {study.writes_per_second:g} writes/s near popular queries, up to "
            f"{worst.stale_hit_fraction:.1%} of hits ({worst.label}) served a result missing a "
            "newer row of the true top-k: bound entry lifetime (TTL) or invalidate on write."
        )
    return out
