"""[[server.sweep]]: each server configuration applied, verified, and measured in turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.results import load_results
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from support import write_toml

pytestmark = pytest.mark.integration


def _spec(tiny_spec: dict[str, Any]) -> dict[str, Any]:
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [20]}]
    tiny_spec["server"] = {
        "settings": {"work_mem": "6MB"},
        "sweep": [
            {"label": "small", "shared_buffers": "128MB"},
            {"label": "large", "shared_buffers": "192MB", "work_mem": "9MB"},
        ],
    }
    return tiny_spec


def test_embedded_sweep_restarts_and_verifies(
    tiny_spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_toml(tmp_path / "sweep.toml", _spec(tiny_spec))
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with temporary_server("pgvbench-sweep-") as server:
        code = main(["run", str(path), "--out", str(out), "-q", "--data-dir", str(server.data_dir)])
    assert code == 0
    results = load_results(out / "results.json")
    assert results.tuning is not None
    small, large = results.tuning.settings_sweep
    assert small["label"] == "small" and small["in_effect"]["shared_buffers"] == "128MB"
    assert large["in_effect"] == {"shared_buffers": "192MB", "work_mem": "9MB"}
    assert large["restarted"] is True and not large["not_applied"]
    assert [p.server_config for p in results.runs] == ["small", "large"]
    assert [b.server_config for b in results.indexes] == ["small", "large"]
    assert {p.index for p in results.runs} == {
        "hnsw(m=4,ef_construction=8) [small]",
        "hnsw(m=4,ef_construction=8) [large]",
    }


def test_external_sweep_lists_what_could_not_be_applied(
    embedded_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_toml(tmp_path / "sweep.toml", _spec(tiny_spec))
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    pid = embedded_server.postmaster_pid()
    code = main(["run", str(path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])
    assert code == 0
    results = load_results(out / "results.json")
    assert results.tuning is not None
    for entry in results.tuning.settings_sweep:
        assert "shared_buffers" in entry["not_applied"]  # needs a restart: not done externally
        assert entry["restarted"] is False
    assert results.tuning.settings_sweep[1]["in_effect"]["work_mem"] == "9MB"
    assert embedded_server.postmaster_pid() == pid
