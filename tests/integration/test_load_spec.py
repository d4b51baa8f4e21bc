"""[load] through the runner: strategies, PgBouncer with SET LOCAL, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pgbouncer_support import require_pgbouncer
from pgvbench.engine.operations import TRANSACTION_POOLED, knn_operation
from pgvbench.engine.pq import exec_params
from pgvbench.progress import Reporter
from pgvbench.results import Results, load_results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from pgvbench.server.pgbouncer import PgBouncer
from pgvbench.spec.parse import parse_spec
from support import write_toml

pytestmark = pytest.mark.integration
needs_pgbouncer = pytest.mark.usefixtures("pgbouncer_binary")


@pytest.fixture
def pgbouncer_binary() -> Path:
    """Skipped without the binary on a developer's machine, failed in CI."""
    return require_pgbouncer()


def _with_load(spec: dict[str, Any], **load: Any) -> dict[str, Any]:
    spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [20]}]
    spec["load"] = {
        "index": "hnsw(m=4,ef_construction=8)",
        "query_params": {"hnsw.ef_search": 20},
        "clients": [1, 3],
        "warmup_seconds": 0.2,
        "duration_seconds": 1.0,
        **load,
    }
    return spec


def _run(server: EmbeddedServer, spec: dict[str, Any], tmp_path: Path) -> Results:
    runner = ExperimentRunner(
        parse_spec(spec),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    target = Target(
        server.dsn(), "embedded", bin_dir=server.bin_dir, postmaster_pid=server.postmaster_pid()
    )
    return runner.run(target)


def test_strategies_and_pgbench_reference(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = _with_load(
        tiny_spec,
        query_source="table",
        engines=["python", "pgbench"],
        pooling=[
            {"strategy": "direct"},
            {"strategy": "connect_per_op"},
            {"strategy": "psycopg_pool", "max_size": [1, 2], "timeout": 5.0},
        ],
    )
    results = _run(embedded_server, spec, tmp_path)
    points = results.load_points
    # python: direct 2 + connect_per_op 2 + pool 2 sizes x 2; pgbench: direct 2
    assert len(points) == 10
    assert {(p.engine, p.strategy) for p in points} == {
        ("python", "direct"),
        ("python", "connect_per_op"),
        ("python", "psycopg_pool"),
        ("pgbench", "direct"),
    }
    for p in points:
        assert p.valid, p.notes
        assert p.operations > 0 and p.errors == 0, (p.engine, p.strategy, p.error_messages)
        assert p.latency_ms is not None and p.latency_ms.p50 <= p.latency_ms.p99
        assert p.client_cpu_cores is not None
        assert p.histogram is not None
    direct = [p for p in points if p.engine == "python" and p.strategy == "direct"]
    assert all(p.fidelity is not None and p.fidelity > 0 for p in direct)
    # the arms of one client count alternate: 1.0 s split into 3 windows each, every
    # round holds one window of every arm, and fidelity pairs python with pgbench per round
    for clients in (1, 3):
        arms = [p for p in points if p.clients == clients]
        assert len(arms) == 5
        for p in arms:
            assert len(p.window_qps) == len(p.window_sequence) == 3
        ordered = sorted((s, i) for i, p in enumerate(arms) for s in p.window_sequence)
        rounds = [sorted(i for _, i in ordered[r * 5 : (r + 1) * 5]) for r in range(3)]
        assert rounds == [list(range(5))] * 3
        (python,) = [p for p in arms if p.engine == "python" and p.strategy == "direct"]
        (pgbench,) = [p for p in arms if p.engine == "pgbench"]
        assert python.fidelity_interval is not None
        assert python.fidelity_interval["rounds"] == 3
        # the two engines of the ratio run back to back in every round
        for a, b in zip(python.window_sequence, pgbench.window_sequence, strict=True):
            assert abs(a - b) == 1
        per_round = [a / b for a, b in zip(python.window_qps, pgbench.window_qps, strict=True)]
        assert python.fidelity_interval["per_round"] == pytest.approx(per_round, rel=1e-4)
    assert all(p.server_cpu_cores is not None and p.server_cpu_cores > 0 for p in direct)
    pools = [p for p in points if p.strategy == "psycopg_pool"]
    assert all(p.pool_stats and p.pool_stats["requests_num"] >= p.operations for p in pools)
    # one connection shared by 3 clients: they wait for it
    starved = next(p for p in pools if p.pool["max_size"] == 1 and p.clients == 3)
    assert starved.pool_stats is not None and starved.pool_stats["requests_wait_ms"] > 0
    per_op = [p for p in points if p.strategy == "connect_per_op"]
    assert all(p.pool_stats and p.pool_stats["connections_opened"] >= p.operations for p in per_op)
    # saved: the file holds the same points
    on_disk = load_results(tmp_path / "out" / "results.json")
    assert len(on_disk.load_points) == 10


def test_pool_exhaustion_yields_errors_and_a_valid_results_file(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = _with_load(
        tiny_spec,
        clients=[8],
        pooling=[{"strategy": "psycopg_pool", "max_size": [1], "timeout": 0.001}],
    )
    _run(embedded_server, spec, tmp_path)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    (point,) = data["load_points"]
    assert data["status"] == "complete"
    assert point["errors"] > 0 and point["operations"] > 0
    assert any("pool timeout" in m for m in point["error_messages"])


@needs_pgbouncer
def test_pgbouncer_transaction_mode_end_to_end(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = _with_load(
        tiny_spec,
        pooling=[
            {"strategy": "pgbouncer", "pool_mode": "transaction", "pool_size": [2]},
        ],
    )
    results = _run(embedded_server, spec, tmp_path)
    assert len(results.load_points) == 2
    for p in results.load_points:
        assert p.valid and p.errors == 0 and p.operations > 0, p.notes
        assert any("transaction mode" in n for n in p.notes)
        assert p.pool_stats is not None and p.pool_stats["transactions"] >= p.operations


@needs_pgbouncer
def test_set_local_really_applies_through_pgbouncer(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    """hnsw.ef_search caps the rows an HNSW scan returns: 3 rows at ef_search 3, k = 10
    (25 is not the default 40, so a leak after COMMIT would show)."""
    spec = _with_load(tiny_spec, clients=[1])
    _run(embedded_server, spec, tmp_path)  # leaves items + queries tables behind
    schema = tiny_spec["experiment"]["schema"]
    name = tiny_spec["experiment"]["name"]
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"CREATE INDEX ON {schema}.{name}_items USING hnsw (embedding vector_l2_ops)")
    vectors = np.zeros((4, 16), dtype=np.float32)
    with PgBouncer.for_embedded(embedded_server, pool_mode="transaction", pool_size=1) as bouncer:
        rows = {}
        for ef in (3, 25):
            op = knn_operation(
                items=f"{schema}.{name}_items",
                queries=f"{schema}.{name}_queries",
                operator="<->",
                k=10,
                vectors=vectors,
                vector_oid=0,
                settings={"hnsw.ef_search": str(ef)},
            )
            with connect(bouncer.dsn(), prepare_threshold=None) as conn:
                op.setup(conn.pgconn, TRANSACTION_POOLED)
                rows[ef] = op.execute(conn.pgconn, TRANSACTION_POOLED, 0)
                # nothing leaked to the shared server connection after COMMIT
                leaked = exec_params(
                    conn.pgconn,
                    b"SELECT 1 WHERE current_setting('hnsw.ef_search') = $1",
                    [str(ef).encode()],
                    [0],
                    [0],
                )
                assert leaked == 0
    assert rows == {3: 3, 25: 10}


def test_killing_the_server_ends_the_run_quickly_with_failed_results(
    tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = _with_load(tiny_spec, clients=[2], duration_seconds=60.0)
    spec_path = write_toml(tmp_path / "kill.toml", spec)
    out = tmp_path / "out"
    with temporary_server("pgvbench-kill-") as server:
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
                "--dsn",
                server.dsn(),
                "--quiet",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until the load test is running
                if (out / "results.json").exists() and json.loads(
                    (out / "results.json").read_text()
                )["runs"]:
                    break
                time.sleep(0.2)
            time.sleep(1.5)
            pid = server.postmaster_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            _, stderr = proc.communicate(timeout=30)
            elapsed = time.monotonic() - killed_at
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 1, stderr  # the README: 1 = the run failed, results written
    assert stderr.count("pgvbench: error:") == 1, stderr
    assert "Traceback" not in stderr
    # The load test had ~58 s left: ending within 30 s (communicate's timeout above) proves
    # the crash was noticed, with a margin a loaded 2-core machine holds. How fast it is
    # noticed (issue 10's 5 s target) is a timing to measure, not to assert in a test.
    assert elapsed < 30.0, f"took {elapsed:.1f} s to notice the server died"
    results = load_results(out / "results.json")
    assert results.status == "failed"
    assert results.failure and "unreachable" in results.failure
