"""Host load on the record: a short real run writes, for every measured window (sweep
points and load points, python and pgbench engines), the host's load around it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import TINY_SPEC
from pgvbench.engine.pgbench import find_pgbench
from pgvbench.progress import Reporter
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results_json(embedded_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    spec = copy.deepcopy(TINY_SPEC)
    spec["experiment"].update(name="thostload", schema="s_thostload")
    spec["query"]["measure_seconds"] = 0.3
    spec["index"] = [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}]
    engines = ["python", "pgbench"] if find_pgbench(embedded_server.bin_dir) else ["python"]
    spec["load"] = {
        "index": "hnsw(m=8,ef_construction=32)",
        "clients": [2],
        "engines": engines,
        "warmup_seconds": 0.1,
        "duration_seconds": 1,
    }
    out = tmp_path_factory.mktemp("hostload") / "out"
    runner = ExperimentRunner(
        parse_spec(spec), out_dir=out, cache_dir=out / "cache", reporter=Reporter(enabled=False)
    )
    server = embedded_server
    runner.run(
        Target(
            server.dsn(), "embedded", bin_dir=server.bin_dir, postmaster_pid=server.postmaster_pid()
        )
    )
    return json.loads((out / "results.json").read_text())


def _check(host: dict[str, Any]) -> None:
    assert host["loadavg_start"] >= 0 and host["loadavg_end"] >= 0
    assert host["busy_cores"] > 0  # the benchmark itself kept a CPU busy
    assert host["cpu_count"] >= 1
    # the embedded server's CPU is known, so the foreign load is computed (and never < 0)
    assert host["server_cores"] is not None and host["server_cores"] > 0
    assert host["foreign_cores"] is not None and host["foreign_cores"] >= 0
    assert host["foreign_cores"] <= host["busy_cores"]
    if Path("/proc/stat").exists():
        assert host["steal_cores"] is not None and host["steal_cores"] >= 0


def test_every_window_records_host_load(results_json: Any) -> None:
    windows = [
        s for p in [*results_json["runs"], *results_json["load_points"]] for s in p["samples"]
    ]
    assert windows
    for sample in windows:
        _check(sample["host"])
    engines = {p["engine"] for p in results_json["load_points"]}
    assert "python" in engines
