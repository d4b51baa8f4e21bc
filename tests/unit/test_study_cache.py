"""The cache study package: its record round-trips through results.json's form, its advice
carries evidence, and the Study object stores, loads and reports the record."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.engine.operations import Operation, knn_operation
from pgvbench.report.document import Heading
from pgvbench.results import Results
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.cache import STUDY, CacheSpec, CacheStudy, measure_cache_states
from pgvbench.studies.cache.records import CacheRow
from study_support import results_for

pytestmark = pytest.mark.integration

N, DIM, K = 3000, 16, 5


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[CacheStudy]:
    """A real run, without restarts: the session server is shared, so it is measured as
    an external server would be (cold = evicted from shared_buffers, no OS cache drop)."""
    dsn = embedded_server.dsn()
    schema, table, index = f"s_cache{uuid.uuid4().hex[:8]}", "items", "items_hnsw"
    rng = np.random.default_rng(3)
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
        load_vectors(dsn, schema, table, rng.standard_normal((N, DIM), dtype=np.float32))
        conn.execute(
            f"CREATE INDEX {index} ON {schema}.{table} USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 8, ef_construction = 16)"
        )
        row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert row is not None
    queries = rng.standard_normal((50, DIM), dtype=np.float32)

    def query_op() -> Operation:
        return knn_operation(
            items=f"{schema}.{table}",
            queries=None,
            operator="<->",
            k=K,
            vectors=queries,
            vector_oid=int(row[0]),
            settings={"hnsw.ef_search": "20"},
        )

    yield measure_cache_states(
        target=Target(dsn=dsn, kind="external"),
        server=None,
        spec=CacheSpec(
            strategies=("cold", "warm", "autoprewarm"),
            shared_buffers=("16MB",),
            measure_seconds=1.0,
            warmup_series_seconds=2.0,
        ),
        schema=schema,
        table=table,
        index_name=index,
        query_op_factory=query_op,
        k=K,
    )
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _results() -> Results:
    return results_for(run_name="cache-study")


def test_record_round_trips_through_its_json_form(measured: CacheStudy) -> None:
    assert [r.strategy for r in measured.rows] == ["warm", "cold"]  # no restart: no autoprewarm
    assert measured.rows[1].series and measured.rows[1].residency_before
    data = json.loads(json.dumps(measured.to_dict()))  # as results.json holds it
    assert CacheStudy.from_dict(data) == measured
    assert CacheStudy.from_dict(data).to_dict() == data
    row = measured.rows[1]
    assert CacheRow.from_dict(json.loads(json.dumps(row.to_dict()))) == row


def test_advice_carries_evidence_and_matches_the_stored_sentences(measured: CacheStudy) -> None:
    advice = STUDY.advice(measured)
    assert advice and all(r.evidence for r in advice)
    assert [r.text for r in advice] == measured.recommendations
    assert advice[0].text.startswith("index + heap = ")


def test_store_load_and_report(measured: CacheStudy, tmp_path: Path) -> None:
    results = _results()
    assert STUDY.load(results) is None
    STUDY.store(results, measured)
    assert results.tuning is not None and results.tuning.cache == measured.to_dict()
    loaded = STUDY.load(results)
    assert loaded == measured
    images = STUDY.figures(measured, tmp_path)
    assert images and all((tmp_path / i.src).is_file() for i in images)
    blocks = STUDY.report(measured, images, results)
    assert blocks[0] == Heading(2, "Cache state")
    assert all(i in blocks for i in images)
