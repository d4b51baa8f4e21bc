"""Measuring application result caches in front of the kNN query, against a server.

A seeded Zipf stream of query vectors runs through each cache configuration (an exact-key
LRU per size, a semantic cache per delta). The served results, hits and misses alike, are
scored with tie-aware recall against the exact top-k of the *actual* query vector, so the
recall a semantic cache gives away is measured, not assumed. With
``writes_per_second > 0`` rows close to popular queries are inserted while the stream
runs; a hit whose cached result misses such a row, now in the true top-k, is a stale hit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ...datasets.base import Dataset
from ...datasets.groundtruth import exact_knn
from ...datasets.recall import summarize_recall, tie_aware_recall
from ...db.gucs import set_settings
from ...db.schema import relation_marks
from ...errors import RunFailed, SafetyError
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from ...workloads.vector import KnnQuery
from . import notes
from .caches import LruCache, SemanticCache
from .records import CacheRun, ResultCacheStudy
from .serve import Writer, run_stream
from .spec import ResultCacheSpec
from .stream import che_lru_hit_rate, simulate_lru_hits, stream_vectors, zipf_stream
from .truth import Served, stale_hits, truth_with_writes

TruthFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
# Per-request recall kept in the record (every n-th request past this many).
STORED_RECALLS = 20_000


def measure_caches(
    *,
    dsn: str,
    schema: str,
    table: str,
    dataset: Dataset,
    metric: Metric,
    spec: ResultCacheSpec,
    query_settings: Mapping[str, str],
    truth_fn: TruthFn | None,
    rule: RecallRule = DEFAULT_RULE,
) -> ResultCacheStudy:
    """Run the stream through every cache configuration against ``schema.table``; the
    record comes back without recommendations (advice.py writes those).

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
    runs: list[CacheRun] = []
    configs: list[tuple[str, int, float | None]] = [("lru", s, None) for s in spec.lru_sizes]
    configs += [("semantic", spec.semantic_capacity, d) for d in spec.semantic_deltas]
    ident = sql.Identifier(schema, table)
    with connect(dsn) as conn, connect(dsn) as wconn:
        if spec.writes_per_second > 0:
            _check_owned_table(conn, schema, table)
            register_vector(wconn)
        set_settings(conn, query_settings)
        knn = KnnQuery(conn, schema=schema, table=table, metric=metric, k=k)
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(id), -1) + 1 FROM {}").format(ident)
        ).fetchone()
        first_new = int(row[0]) if row else n_base
        if first_new < n_base:
            raise RunFailed(f"{schema}.{table} holds fewer rows than the dataset ({n_base})")
        _, anchor_dist = truth(queries, 1)
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
                writer = Writer(
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
                served = run_stream(
                    knn=knn, cache=cache, vectors=vectors, keys=keys, k=k, id_map=id_map,
                    writer=writer,
                )  # fmt: skip
            finally:
                if writer is not None and writer.ids:
                    wconn.execute(
                        sql.SQL("DELETE FROM {} WHERE id >= %s").format(ident), (first_new,)
                    )
                    wconn.execute(sql.SQL("VACUUM {}").format(ident))
            runs.append(
                _score(
                    kind=kind,
                    size=size,
                    delta=delta,
                    served=served,
                    vectors=vectors,
                    dataset=dataset,
                    base=(base_ids, base_dist),
                    metric=metric,
                    spec=spec,
                    stream_ids=stream_ids,
                    rule=rule,
                )
            )
    return ResultCacheStudy(
        table=f"{schema}.{table}",
        metric=metric.value,
        k=k,
        zipf=spec.zipf,
        stream_length=spec.stream_length,
        distinct_queries=spec.distinct_queries,
        jitter=spec.jitter,
        writes_per_second=spec.writes_per_second,
        query_settings={key: str(v) for key, v in query_settings.items()},
        runs=tuple(runs),
        notes=(notes.jittered(spec.jitter),) if spec.jitter > 0 else (),
    )


def _check_owned_table(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    """Rows are written only into a table that carries pgvbench's mark."""
    marks = relation_marks(conn, schema, table)
    if marks is None:
        raise RunFailed(f"result cache study: table {schema}.{table} does not exist")
    if not marks.owned:
        raise SafetyError(
            f"table {schema}.{table} exists without pgvbench's mark; the result-cache study "
            "writes rows into it only when pgvbench owns it"
        )


def _score(
    *,
    kind: str,
    size: int,
    delta: float | None,
    served: Served,
    vectors: np.ndarray,
    dataset: Dataset,
    base: tuple[np.ndarray, np.ndarray],
    metric: Metric,
    spec: ResultCacheSpec,
    stream_ids: np.ndarray,
    rule: RecallRule,
) -> CacheRun:
    k = spec.k
    truth = truth_with_writes(
        base[0], base[1], vectors, served.write_vectors, served.served_at, dataset.n, k, metric
    )
    combined = (
        np.vstack([dataset.base, served.write_vectors])
        if served.write_vectors.shape[0]
        else dataset.base
    )
    recall = tie_aware_recall(served.ids, truth, vectors, combined, k, metric, rule=rule)
    mean, p5, low = summarize_recall(recall)
    hits = int(served.hit.sum())
    stale = stale_hits(served, truth, dataset.n) if served.write_ids else 0
    expected = analytic = None
    if kind == "lru":
        analytic = che_lru_hit_rate(spec.zipf, spec.distinct_queries, size)
        if spec.jitter == 0:
            expected = float(simulate_lru_hits(stream_ids, size).mean())
    overall = served.latency
    hit_l, miss_l = served.hit_latency, served.miss_latency
    summary = overall.summary()
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
        mean_ms=float(summary.mean) if summary is not None else 0.0,
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
        recall_per_request=_recall_sample(recall),
    )


def _recall_sample(recall: np.ndarray) -> tuple[float, ...]:
    """Each request's recall, or every n-th past ``STORED_RECALLS`` requests: the same
    requests in every run (they pair up) while results.json stays small."""
    step = max(1, -(-recall.size // STORED_RECALLS))
    return tuple(round(float(x), 4) for x in recall[::step])
