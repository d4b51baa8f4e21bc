"""Quantized HNSW indexes (halfvec, binary + re-rank) against full precision, 5k x 32."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from pgvbench.datasets import Dataset, generate_clustered, ground_truth
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.quantization import (
    QuantizationSpec,
    QuantizationStudy,
    measure_quantization,
    recommendations,
)
from pgvbench.studies.quantization.advice import advice as quant_advice

pytestmark = pytest.mark.integration

N, DIM, K = 5000, 32, 10


@dataclasses.dataclass
class Measured:
    study: QuantizationStudy
    dataset: Dataset
    indexes_before: set[str]
    indexes_after: set[str]


def _indexes(dsn: str, schema: str) -> set[str]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[Measured]:
    import uuid

    dsn = embedded_server.dsn()
    schema, table = f"s_q{uuid.uuid4().hex[:8]}", "items"
    dataset = generate_clustered(
        n=N, dim=DIM, n_queries=100, clusters=16, spread=1.0, seed=5, metric=Metric.L2
    )
    truth = ground_truth(dataset, K, cache_dir=None)
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
    load_vectors(dsn, schema, table, dataset.base)
    before = _indexes(dsn, schema)
    study = measure_quantization(
        dsn=dsn,
        schema=schema,
        table=table,
        dataset=dataset,
        metric=Metric.L2,
        spec=QuantizationSpec(m=16, ef_construction=64, ef_search=(40, 80), overfetch=(1, 4)),
        recall_queries=dataset.queries,
        truth=truth,
        load_queries=dataset.queries,
        measure_seconds=0.3,
    )
    after = _indexes(dsn, schema)
    yield Measured(study, dataset, before, after)
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_quantized_indexes_are_used(measured: Measured) -> None:
    points = measured.study.points
    assert {p.variant for p in points} == {"full", "halfvec", "binary", "binary_norerank"}
    for p in points:
        assert p.plan_ok, p.plan_note
        assert p.errors == 0 and p.qps > 0 and p.p99_ms is not None


def test_rerank_recall_at_least_norerank(measured: Measured) -> None:
    by = {(p.variant, p.ef_search, p.overfetch): p for p in measured.study.points}
    for ef in (40, 80):
        plain = by[("binary_norerank", ef, 1)].recall_mean
        assert by[("binary", ef, 1)].recall_mean >= plain
        assert by[("binary", ef, 4)].recall_mean >= by[("binary", ef, 1)].recall_mean
        assert by[("binary", ef, 4)].recall_mean > plain
        assert by[("halfvec", ef, 1)].recall_mean > 0.8
        assert by[("full", ef, 1)].recall_mean > 0.9


def test_points_record_their_windows_and_per_query_recall(measured: Measured) -> None:
    for p in measured.study.points:
        assert len(p.window_qps) >= 3  # 0.3 s timed as at least 3 windows
        # a window shorter than one query on a busy host may complete none
        assert all(q >= 0 for q in p.window_qps) and any(q > 0 for q in p.window_qps)
        assert len(p.recall_per_query) == measured.dataset.n_queries
        assert sum(p.recall_per_query) / len(p.recall_per_query) == pytest.approx(
            p.recall_mean, abs=1e-3
        )
    text = " ".join(recommendations(measured.study))
    assert "noise of" in text  # every comparison states its margin


def test_points_are_timed_in_interleaved_rounds(measured: Measured) -> None:
    points = measured.study.points
    rounds = len(points[0].window_qps)
    assert all(len(p.window_qps) == len(p.window_sequence) == rounds for p in points)
    order = sorted((s, i) for i, p in enumerate(points) for s in p.window_sequence)
    assert [s for s, _ in order] == list(range(rounds * len(points)))  # each window ran once
    # round r holds one window of every point: never all of one point, then the next
    for r in range(rounds):
        in_round = {i for s, i in order[r * len(points) : (r + 1) * len(points)]}
        assert in_round == set(range(len(points)))
        assert all(p.window_sequence[r] // len(points) == r for p in points)
    # the order is drawn per round, so it differs between rounds (10 points: 10! orders)
    firsts = [[i for s, i in order[r * len(points) : (r + 1) * len(points)]] for r in range(rounds)]
    assert len({tuple(f) for f in firsts}) > 1


def test_advice_pairs_the_rounds(measured: Measured) -> None:
    best = next(r for r in quant_advice(measured.study) if r.text.startswith("Best halfvec"))
    assert best.evidence["qps_margin_basis"] == "paired rounds"
    assert "paired rounds" in best.text


def test_halfvec_index_smaller_than_full(measured: Measured) -> None:
    sizes = {ix.variant: ix.index_bytes for ix in measured.study.indexes}
    assert 0 < sizes["halfvec"] < sizes["full"]
    assert 0 < sizes["binary"] < sizes["halfvec"]


def test_indexes_dropped_and_study_serialises(measured: Measured) -> None:
    assert measured.indexes_after == measured.indexes_before
    data = measured.study.to_dict()
    assert data["points"] and data["indexes"]
    import json

    json.dumps(data)
    assert recommendations(measured.study)
