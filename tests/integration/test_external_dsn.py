"""--dsn: a second, separately started embedded server treated as external."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.results import load_results
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from support import write_toml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def external_server() -> Iterator[EmbeddedServer]:
    with temporary_server("pgvbench-ext-") as server:
        yield server


def _setting(server: EmbeddedServer, name: str) -> str:
    with connect(server.tcp_dsn()) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])


def test_dsn_run_applies_session_settings_only(
    external_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny_spec["index"] = [
        {"kind": "none"},
        {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10, 40]},
    ]
    tiny_spec["server"] = {"settings": {"work_mem": "7MB", "shared_buffers": "200MB"}}
    spec_path = write_toml(tmp_path / "ext.toml", tiny_spec)
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    pid_before = external_server.postmaster_pid()
    shared_buffers_before = _setting(external_server, "shared_buffers")
    out = tmp_path / "out"

    code = main(["run", str(spec_path), "--dsn", external_server.url(), "--out", str(out), "-q"])

    assert code == 0
    results = load_results(out / "results.json")
    assert results.status == "complete"
    assert results.environment.server_kind == "external"
    info = results.server_settings
    assert info is not None and info.method == "session"
    assert info.in_effect == {"work_mem": "7MB"}
    assert "shared_buffers" in info.not_applied
    assert "restart" in info.not_applied["shared_buffers"]
    assert info.restarted is False
    # the external server was neither restarted, reconfigured nor stopped
    assert external_server.is_running()
    assert external_server.postmaster_pid() == pid_before
    assert _setting(external_server, "shared_buffers") == shared_buffers_before
    assert _setting(external_server, "work_mem") == "4MB"  # session-only change did not leak
    exact = [p for p in results.runs if p.index_kind == "none"]
    assert exact and exact[0].recall is not None and exact[0].recall.mean == 1.0
    assert all(p.valid for p in results.runs), [p.notes for p in results.runs]
