"""Fixtures for the benchmarks: one embedded server for the whole bench session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgvbench.server.embedded import EmbeddedServer


@pytest.fixture(scope="session")
def bench_server() -> Iterator[EmbeddedServer]:
    root = Path(tempfile.mkdtemp(prefix="pgvbench-bench-"))
    server = EmbeddedServer(data_dir=root / "data")
    server.ensure_started(fresh=True)
    server.apply_settings({"shared_buffers": "512MB", "max_wal_size": "4GB"}, source="bench")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
