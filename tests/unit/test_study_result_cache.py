"""The result-cache study package: its record round-trips through results.json's form,
its advice carries evidence, and the Study object stores, loads and reports the record."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.metrics import Metric
from pgvbench.report.document import Heading
from pgvbench.results import Results
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.result_cache import (
    STUDY,
    CacheRun,
    ResultCacheSpec,
    ResultCacheStudy,
    measure_result_caches,
)
from study_support import results_for

pytestmark = pytest.mark.integration

N, DIM, K, DISTINCT = 2000, 16, 5, 40


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[ResultCacheStudy]:
    dsn = embedded_server.dsn()
    schema, table = f"s_rcs{uuid.uuid4().hex[:8]}", "items"
    dataset = generate_clustered(
        n=N, dim=DIM, n_queries=DISTINCT, clusters=8, spread=1.0, seed=5, metric=Metric.L2
    )
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
    load_vectors(dsn, schema, table, dataset.base)
    yield measure_result_caches(
        dsn=dsn,
        schema=schema,
        table=table,
        dataset=dataset,
        metric=Metric.L2,
        spec=ResultCacheSpec(
            zipf=1.1,
            stream_length=200,
            distinct_queries=DISTINCT,
            lru_sizes=(5, 20),
            semantic_deltas=(0.0, 0.5),
            jitter=0.01,
            writes_per_second=200.0,
            k=K,
            seed=2,
        ),
        query_settings={"statement_timeout": "60000"},
        truth_fn=None,
    )
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _results() -> Results:
    return results_for(run_name="result-cache-study")


def test_record_round_trips_through_its_json_form(measured: ResultCacheStudy) -> None:
    assert [r.label for r in measured.runs] == [
        "lru size 5",
        "lru size 20",
        "semantic size 20 delta 0",
        "semantic size 20 delta 0.5",
    ]
    data = json.loads(json.dumps(measured.to_dict()))  # as results.json holds it
    assert [run["label"] for run in data["runs"]] == [r.label for r in measured.runs]
    assert ResultCacheStudy.from_dict(data) == measured
    assert ResultCacheStudy.from_dict(data).to_dict() == data
    run = measured.runs[0]
    assert CacheRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_advice_carries_evidence_and_matches_the_stored_sentences(
    measured: ResultCacheStudy,
) -> None:
    advice = STUDY.advice(measured)
    assert advice and all(r.evidence for r in advice)
    assert tuple(r.text for r in advice) == measured.recommendations
    assert advice[0].text.startswith("An exact LRU of ")
    assert any("writes/s near popular queries" in r.text for r in advice)


def test_every_run_records_each_requests_recall(measured: ResultCacheStudy) -> None:
    for run in measured.runs:
        assert len(run.recall_per_request) == run.requests == 200  # the same stream, paired
        mean = sum(run.recall_per_request) / run.requests
        assert mean == pytest.approx(run.recall_mean, abs=1e-3)
    semantic = [r.text for r in STUDY.advice(measured) if r.text.startswith("A semantic cache")]
    assert all("recall vs delta 0: " in t and "over 200 requests" in t for t in semantic)


def test_store_load_and_report(measured: ResultCacheStudy, tmp_path: Path) -> None:
    results = _results()
    assert STUDY.load(results) is None
    STUDY.store(results, measured)
    assert results.tuning is not None and results.tuning.result_cache == measured.to_dict()
    assert STUDY.load(results) == measured
    images = STUDY.figures(measured, tmp_path)
    assert [i.src for i in images] == ["result_cache.png"]
    blocks = STUDY.report(measured, images, results)
    assert blocks[0] == Heading(2, "Application result caches")
    assert images[0] in blocks
