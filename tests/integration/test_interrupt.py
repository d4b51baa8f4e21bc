"""Ctrl-C mid-run: partial results are written and the server pgvbench started stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pgvbench.results import load_results
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _runs_recorded(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["runs"])
    except (OSError, ValueError, KeyError):
        return 0


def test_sigint_writes_partial_results_and_stops_server(
    tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    # long enough per point that the interrupt lands mid-sweep
    tiny_spec["query"]["measure_seconds"] = 1.0
    tiny_spec["index"] = [
        {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10, 20, 40, 80, 160]}
    ]
    spec_path = write_toml(tmp_path / "long.toml", tiny_spec)
    root = Path(tempfile.mkdtemp(prefix="pgvbench-int-"))
    data_dir = root / "data"
    out = tmp_path / "out"
    env = {**os.environ, "PGVBENCH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgvbench.cli",
            "run",
            str(spec_path),
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: _runs_recorded(out / "results.json") >= 1, 120), (
            "no sweep point was recorded in time"
        )
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        results = load_results(out / "results.json")
        assert results.status == "partial"
        assert results.failure and "interrupted" in results.failure
        assert 1 <= len(results.runs) < 5
        assert (out / "report.md").exists(), "the partial run still gets its report"
        assert not EmbeddedServer(data_dir=data_dir).is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
        EmbeddedServer(data_dir=data_dir).stop()
        shutil.rmtree(root, ignore_errors=True)
