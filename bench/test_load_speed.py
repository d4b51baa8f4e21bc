"""Client binary COPY (pgvbench's loader) against a server-side COPY FROM file.

The server-side COPY reads the same binary payload from a local file: no client, no
socket, the best the server can do. pgvbench's loader must reach MIN_RATIO of its
rows/s. Run with ``pytest bench``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.load import encode_copy_file, load_vectors
from pgvbench.db.schema import create_vector_table, ensure_schema
from pgvbench.metrics import Metric
from pgvbench.server.embedded import EmbeddedServer

N, DIM = 100_000, 128
ROUNDS = 7
MIN_RATIO = 0.8
SCHEMA, TABLE = "pgvbench_bench", "load_items"
GROUP = f"load {N}x{DIM}"


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    ds = generate_clustered(
        n=N, dim=DIM, n_queries=1, clusters=100, spread=1.0, seed=1, metric=Metric.L2
    )
    return ds.base


@pytest.fixture(scope="module")
def conn(bench_server: EmbeddedServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(bench_server.dsn(), autocommit=True) as c:
        ensure_schema(c, SCHEMA)
        yield c


@pytest.fixture(scope="module")
def copy_file(vectors: np.ndarray) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pgvbench-copy-"))
    folder.chmod(0o755)  # the server runs as its own system user and must read it
    path = folder / "items.copy"
    path.write_bytes(encode_copy_file(np.arange(N, dtype=np.int64), vectors))
    path.chmod(0o644)
    yield path
    path.unlink()
    folder.rmdir()


def _fresh_table(conn: psycopg.Connection[Any]) -> None:
    create_vector_table(conn, SCHEMA, TABLE, DIM)
    conn.execute("CHECKPOINT")  # each round starts without a pending checkpoint


def _client_copy(dsn: str, vectors: np.ndarray) -> None:
    load_vectors(dsn, SCHEMA, TABLE, vectors)


def _server_copy(conn: psycopg.Connection[Any], path: Path) -> None:
    conn.execute(f"COPY {SCHEMA}.{TABLE} (id, embedding) FROM '{path}' (FORMAT BINARY)")


def _timed(setup: Callable[[], None], fn: Callable[[], None]) -> float:
    setup()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_client_binary_copy(
    benchmark: Any,
    bench_server: EmbeddedServer,
    conn: psycopg.Connection[Any],
    vectors: np.ndarray,
) -> None:
    benchmark.group = GROUP
    benchmark.pedantic(
        _client_copy,
        args=(bench_server.dsn(), vectors),
        setup=lambda: _fresh_table(conn),
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    count = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{TABLE}").fetchone()
    assert count is not None and count[0] == N


def test_server_side_copy(benchmark: Any, conn: psycopg.Connection[Any], copy_file: Path) -> None:
    benchmark.group = GROUP
    benchmark.pedantic(
        _server_copy,
        args=(conn, copy_file),
        setup=lambda: _fresh_table(conn),
        rounds=ROUNDS,
        warmup_rounds=1,
    )


def test_client_copy_reaches_server_side_rate(
    benchmark: Any,
    bench_server: EmbeddedServer,
    conn: psycopg.Connection[Any],
    vectors: np.ndarray,
    copy_file: Path,
) -> None:
    """Alternate the two so background load on the machine hits both alike.

    The benchmark's time is the whole alternating series (ROUNDS loads of each kind).
    """

    def alternate() -> tuple[list[float], list[float]]:
        client, server = [], []
        for _ in range(ROUNDS):
            client.append(
                _timed(
                    lambda: _fresh_table(conn), lambda: _client_copy(bench_server.dsn(), vectors)
                )
            )
            server.append(_timed(lambda: _fresh_table(conn), lambda: _server_copy(conn, copy_file)))
        return client, server

    client, server = benchmark.pedantic(alternate, rounds=1)
    ratio = statistics.median(server) / statistics.median(client)
    benchmark.extra_info.update(
        client_rows_per_s=round(N / statistics.median(client)),
        server_rows_per_s=round(N / statistics.median(server)),
        ratio=round(ratio, 3),
    )
    print(
        f"\nclient COPY {N / statistics.median(client):,.0f} rows/s, server-side COPY "
        f"{N / statistics.median(server):,.0f} rows/s, ratio {ratio:.2f}"
    )
    assert ratio >= MIN_RATIO, f"client COPY reaches only {ratio:.2f} of server-side COPY"
