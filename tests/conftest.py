"""Shared fixtures: one real embedded PostgreSQL per test session."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pgvbench.pytest_plugin import BenchServer
from pgvbench.server.embedded import EmbeddedServer, temporary_server

# pytester: tests/integration/test_pytest_plugin.py runs inner pytest sessions.
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def embedded_server(pgvbench_server: BenchServer) -> Iterator[EmbeddedServer]:
    """The session's embedded server: the pytest plugin's (one server for the session).

    It is fresh, stopped and removed at the end, and its data dir lives outside pytest's
    tmp tree: pytest keeps that tree 0700, which would lock out the server's own system
    user when the tests run as root. With --pgvbench-dsn / PGVBENCH_DSN the plugin's
    server is external, and these tests, which restart and reconfigure their server,
    get their own embedded one.
    """
    if pgvbench_server.embedded is not None:
        yield pgvbench_server.embedded
        return
    with temporary_server("pgvbench-test-") as server:
        yield server


@pytest.fixture
def unique_name() -> str:
    """A name for this test's run: tables and schema never collide between tests."""
    return f"t{uuid.uuid4().hex[:10]}"


TINY_SPEC: dict[str, Any] = {
    "experiment": {"name": "tiny", "seed": 7},
    "dataset": {
        "source": "synthetic",
        "distribution": "clustered",
        "n": 3000,
        "dim": 16,
        "clusters": 8,
        "spread": 1.0,
        "metric": "l2",
        "queries": 150,
    },
    "query": {"k": 10, "recall_queries": 50, "warmup_seconds": 0.05, "measure_seconds": 0.25},
    "index": [
        {"kind": "none"},
        {"kind": "ivfflat", "lists": 20, "probes": [1, 2, 4, 20]},
        {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [1, 2, 5, 10, 40]},
    ],
}


@pytest.fixture
def tiny_spec(unique_name: str) -> dict[str, Any]:
    spec = copy.deepcopy(TINY_SPEC)
    spec["experiment"]["name"] = unique_name
    spec["experiment"]["schema"] = f"s_{unique_name}"
    return spec
