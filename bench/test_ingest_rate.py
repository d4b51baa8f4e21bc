"""Ingest rate of pgvbench's loader (``load_vectors``) into a fresh table (pytest-benchmark).

A fixed 50k x 128 array, each round into a re-created empty table (untimed setup);
extra_info has rows/s at the median. Runs on the plugin's server, embedded or
``--pgvbench-dsn``. bench/test_load_speed.py compares the loader with a server-side
COPY on 100k x 128; this is the plain regression figure. Run with ``pytest bench``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, drop_owned_table, ensure_schema
from pgvbench.metrics import Metric
from pgvbench.pytest_plugin import BenchServer

N, DIM = 50_000, 128
ROUNDS, WARMUP_ROUNDS = 7, 1
SCHEMA, TABLE = "pgvbench_bench", "ingest_items"


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    ds = generate_clustered(
        n=N, dim=DIM, n_queries=1, clusters=100, spread=1.0, seed=3, metric=Metric.L2
    )
    return ds.base


@pytest.fixture(scope="module")
def conn(pgvbench_server: BenchServer) -> Iterator[psycopg.Connection[Any]]:
    with pgvbench_server.connect() as c:
        ensure_schema(c, SCHEMA)
        yield c
        drop_owned_table(c, SCHEMA, TABLE)


def test_ingest_rate(
    benchmark: Any,
    pgvbench_server: BenchServer,
    conn: psycopg.Connection[Any],
    vectors: np.ndarray,
) -> None:
    embedded = pgvbench_server.kind == "embedded"

    def fresh_table() -> None:
        create_vector_table(conn, SCHEMA, TABLE, DIM)
        if embedded:  # CHECKPOINT needs privileges an external user may lack
            conn.execute("CHECKPOINT")  # no pending checkpoint lands inside a round

    benchmark.group = f"ingest {N}x{DIM}"
    benchmark.pedantic(
        load_vectors,
        args=(pgvbench_server.dsn, SCHEMA, TABLE, vectors),
        setup=fresh_table,
        rounds=ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )
    row = conn.execute(f"SELECT count(*), count(DISTINCT id), max(id) FROM {SCHEMA}.{TABLE}")
    assert row.fetchone() == (N, N, N - 1)
    benchmark.extra_info.update(rows=N, dim=DIM)
    if not benchmark.disabled:
        benchmark.extra_info["rows_per_s"] = round(N / benchmark.stats.stats.median)
