"""Result caches against a real server: recall cost against exact ground truth, staleness."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from pgvbench.datasets import Dataset, generate_clustered
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.result_cache import (
    ResultCacheSpec,
    expected_lru_hit_rate,
    measure_result_caches,
)

pytestmark = pytest.mark.integration

N, DIM, K, DISTINCT = 5000, 32, 10, 100


@dataclasses.dataclass
class Loaded:
    dsn: str
    schema: str
    table: str
    dataset: Dataset
    delta: float


@pytest.fixture(scope="module")
def loaded(embedded_server: EmbeddedServer) -> Iterator[Loaded]:
    dsn = embedded_server.dsn()
    schema, table = f"s_rc{uuid.uuid4().hex[:8]}", "items"
    dataset = generate_clustered(
        n=N, dim=DIM, n_queries=DISTINCT, clusters=16, spread=1.0, seed=8, metric=Metric.L2
    )
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
    load_vectors(dsn, schema, table, dataset.base)
    # a "large" delta: the median distance from a query to its nearest other query
    q = dataset.queries.astype(np.float64)
    d = np.linalg.norm(q[:, None, :] - q[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    yield Loaded(dsn, schema, table, dataset, float(np.median(d.min(axis=1))))
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_semantic_recall_cost_against_exact_truth(loaded: Loaded) -> None:
    spec = ResultCacheSpec(
        zipf=1.0,
        stream_length=600,
        distinct_queries=DISTINCT,
        lru_sizes=(20,),
        semantic_deltas=(0.0, loaded.delta),
        semantic_size=20,
        jitter=0.02,
        k=K,
        seed=3,
    )
    study = measure_result_caches(
        dsn=loaded.dsn,
        schema=loaded.schema,
        table=loaded.table,
        dataset=loaded.dataset,
        metric=Metric.L2,
        spec=spec,
        query_settings={},
        truth_fn=None,
    )
    lru, exact, wide = study.runs
    assert lru.kind == "lru" and exact.delta == 0.0 and wide.delta == loaded.delta
    # no index: every miss is an exact scan, so exact matching costs no recall
    assert exact.recall_mean == 1.0 and lru.recall_mean == 1.0
    assert exact.hits == lru.hits  # delta 0 hits exactly where the exact-key LRU does
    assert wide.hit_rate > exact.hit_rate
    assert wide.recall_mean < 1.0
    assert wide.hit_recall_mean is not None and wide.hit_recall_mean < 1.0
    assert lru.p50_ms > 0 and lru.miss_p99_ms is not None
    json.dumps(study.to_dict())
    assert study.recommendations


def test_lru_hit_rate_matches_simulation_and_stale_hits(loaded: Loaded) -> None:
    spec = ResultCacheSpec(
        zipf=1.1,
        stream_length=600,
        distinct_queries=DISTINCT,
        lru_sizes=(10, 40),
        semantic_deltas=(0.0,),
        writes_per_second=300.0,
        k=K,
        seed=4,
    )
    study = measure_result_caches(
        dsn=loaded.dsn,
        schema=loaded.schema,
        table=loaded.table,
        dataset=loaded.dataset,
        metric=Metric.L2,
        spec=spec,
        query_settings={},
        truth_fn=None,
    )
    for run in study.runs[:2]:
        assert run.hit_rate == run.expected_hit_rate
        assert run.hit_rate == expected_lru_hit_rate(1.1, DISTINCT, run.size, 600, 4)
        assert run.writes > 0
        assert run.stale_hit_fraction is not None
    assert max(r.stale_hits for r in study.runs) > 0
    # misses always see the new rows: recall stays < 1 only because of stale hits
    assert min(r.recall_mean for r in study.runs) < 1.0
    with connect(loaded.dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {loaded.schema}.{loaded.table}").fetchone()
    assert row == (N,)
