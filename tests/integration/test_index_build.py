"""Index builds: progress phases, NOTICE capture, size, and cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.db import indexes as ix
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.errors import RunFailed
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import IndexSpec

pytestmark = pytest.mark.integration

N, DIM = 20_000, 32


@pytest.fixture
def loaded(
    embedded_server: EmbeddedServer, unique_name: str
) -> Iterator[tuple[psycopg.Connection[Any], str, str]]:
    schema, table = f"s_{unique_name}", "items"
    vectors = np.random.default_rng(3).standard_normal((N, DIM), dtype=np.float32)
    with connect(embedded_server.dsn()) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
        load_vectors(embedded_server.dsn(), schema, table, vectors)
        yield conn, schema, table
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_hnsw_build_records_phases_progress_and_notices(
    embedded_server: EmbeddedServer, loaded: tuple[psycopg.Connection[Any], str, str]
) -> None:
    conn, schema, table = loaded
    count = conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()
    assert count == (N,)
    # a tiny maintenance_work_mem makes pgvector say the graph no longer fits
    conn.execute("SET maintenance_work_mem = '1MB'")
    seen: list[ix.BuildProgress] = []
    spec = IndexSpec(
        kind="hnsw",
        params={"m": 16, "ef_construction": 64},
        sweep_param="hnsw.ef_search",
        sweep_values=(40,),
    )
    name, build = ix.build_index(
        embedded_server.dsn(),
        conn,
        schema=schema,
        table=table,
        spec=spec,
        metric=Metric.L2,
        on_progress=seen.append,
    )
    assert build.label == "hnsw(m=16,ef_construction=64)"
    assert build.build_seconds > 0
    assert build.index_bytes > N * DIM * 4  # the graph holds every vector
    assert build.build_settings["maintenance_work_mem"] == "1MB"
    assert any("no longer fits into maintenance_work_mem" in n for n in build.notices), (
        build.notices
    )
    assert build.phases, "a build of this size lasts several polls"
    assert any(p.phase.startswith("building index") for p in build.phases)
    assert sum(p.seconds for p in build.phases) <= build.build_seconds + 0.05
    assert seen and all(p.fraction is None or 0.0 <= p.fraction <= 1.0 for p in seen)
    used = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchall()
    assert used == [(name,)]
    ix.drop_index(conn, schema, name)
    assert conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchone() == (0,)


def test_failed_build_raises_run_failed(
    embedded_server: EmbeddedServer, loaded: tuple[psycopg.Connection[Any], str, str]
) -> None:
    conn, schema, table = loaded
    conn.execute("SET statement_timeout = '50ms'")
    spec = IndexSpec(
        kind="hnsw",
        params={"m": 48, "ef_construction": 400},
        sweep_param="hnsw.ef_search",
        sweep_values=(40,),
    )
    with pytest.raises(RunFailed, match="building hnsw"):
        ix.build_index(
            embedded_server.dsn(), conn, schema=schema, table=table, spec=spec, metric=Metric.L2
        )
    conn.execute("RESET statement_timeout")
    assert conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchone() == (0,)
