"""Fixtures for the benchmarks, on the pgvbench pytest plugin's server (one per session).

The plugin (pgvbench.pytest_plugin, loaded through its pytest11 entry point) starts
the embedded server, or uses ``--pgvbench-dsn``. The benchmarks that need the
embedded server's binaries or processes (pgbench, server CPU, server-side COPY) ask
for ``bench_server`` and skip on an external one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import psycopg
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, ensure_schema
from pgvbench.metrics import Metric
from pgvbench.pytest_plugin import BenchServer
from pgvbench.server.embedded import EmbeddedServer

#: Applied to the embedded server before any benchmark uses it (an external server
#: keeps its own configuration).
BENCH_SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "4GB"}


@pytest.fixture(scope="session")
def pgvbench_server(pgvbench_server: BenchServer) -> BenchServer:
    """The plugin's server; when embedded, with BENCH_SETTINGS applied (restarts it once)."""
    if pgvbench_server.embedded is not None:
        pgvbench_server.embedded.apply_settings(BENCH_SETTINGS, source="bench")
    return pgvbench_server


@pytest.fixture(scope="session")
def bench_server(pgvbench_server: BenchServer) -> EmbeddedServer:
    """The embedded server itself, for benchmarks that need its binaries or process."""
    if pgvbench_server.embedded is None:
        pytest.skip("needs the embedded server (pgbench binary, server process, local files)")
    return pgvbench_server.embedded


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
