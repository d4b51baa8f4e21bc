"""Fixtures for the benchmarks: one embedded server for the whole bench session."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, ensure_schema
from pgvbench.metrics import Metric
from pgvbench.server.embedded import EmbeddedServer, temporary_server


@pytest.fixture(scope="session")
def bench_server() -> Iterator[EmbeddedServer]:
    with temporary_server("pgvbench-bench-") as server:
        server.apply_settings({"shared_buffers": "512MB", "max_wal_size": "4GB"}, source="bench")
        yield server


@dataclasses.dataclass(frozen=True)
class KnnTables:
    """Quickstart data (50k x 128 clustered, l2) with an HNSW m=16 ef_construction=64 index."""

    server: EmbeddedServer
    items: str  # qualified table names
    queries: str
    query_vectors: np.ndarray


@pytest.fixture(scope="session")
def knn_tables(bench_server: EmbeddedServer) -> KnnTables:
    schema = "pgvbench_bench_knn"
    ds = generate_clustered(
        n=50_000,
        dim=128,
        n_queries=1000,
        clusters=100,
        spread=1.5,
        seed=42,
        metric=Metric.L2,
        intrinsic_dim=32,
    )
    dsn = bench_server.dsn()
    items, queries = f"{schema}.items", f"{schema}.queries"
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_schema(conn, schema)
        create_vector_table(conn, schema, "items", 128)
        create_vector_table(conn, schema, "queries", 128)
        load_vectors(dsn, schema, "items", ds.base)
        load_vectors(dsn, schema, "queries", ds.queries)
        conn.execute(f"ALTER TABLE {queries} ADD PRIMARY KEY (id)")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(
            f"CREATE INDEX ON {items} USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        conn.execute(f"ANALYZE {items}")
        conn.execute(f"ANALYZE {queries}")
    return KnnTables(server=bench_server, items=items, queries=queries, query_vectors=ds.queries)
