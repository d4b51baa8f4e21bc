"""Fixtures for the benchmarks: one embedded server for the whole bench session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgvbench.server.embedded import EmbeddedServer, temporary_server


@pytest.fixture(scope="session")
def bench_server() -> Iterator[EmbeddedServer]:
    with temporary_server("pgvbench-bench-") as server:
        server.apply_settings({"shared_buffers": "512MB", "max_wal_size": "4GB"}, source="bench")
        yield server
