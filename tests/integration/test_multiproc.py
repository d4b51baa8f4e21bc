"""[load] processes: clients over worker processes, on the real embedded server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from pgvbench.engine.multiproc import Connect, ProcessesOutcome, run_load_processes
from pgvbench.engine.operations import SqlOperation
from pgvbench.engine.threaded import LoadShape
from pgvbench.errors import RunFailed
from pgvbench.progress import Reporter
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec

pytestmark = pytest.mark.integration

SHAPE = LoadShape(clients=4, warmup_s=0.3, duration_s=1.2)
START_TOLERANCE_NS = 500_000_000  # a worker begins within this of the common start


def _select(sql: str = "SELECT 1", **settings: str) -> SqlOperation:
    return SqlOperation(name="select", sql=sql, types=[], params=[[]], settings=settings)


def _run(server: EmbeddedServer, op: SqlOperation, shape: LoadShape = SHAPE) -> ProcessesOutcome:
    dsn = server.dsn()
    return run_load_processes(op, Connect(dsn=dsn), shape, processes=2, probe_dsn=dsn)


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) for pid in pids)


def test_two_workers_merge_exactly_over_one_window(embedded_server: EmbeddedServer) -> None:
    result = _run(embedded_server, _select())
    merged, workers = result.merged, result.workers
    assert [w.clients for w in workers] == [2, 2]
    assert merged.errors == 0 and merged.aborted is None
    assert merged.operations == sum(w.outcome.operations for w in workers) > 0
    assert merged.latency.count == merged.operations  # one latency per operation, none lost
    assert merged.latency.count == sum(w.outcome.latency.count for w in workers)
    assert merged.per_kind["select"].operations == merged.operations
    # one window for all: the same start time, hence the same measured interval, and each
    # worker actually began at it and ran to its end
    assert len({w.t0_ns for w in workers}) == 1
    assert len({w.window_ns for w in workers}) == 1
    t0 = workers[0].t0_ns
    for w in workers:
        assert 0 <= w.started_ns - t0 < START_TOLERANCE_NS
        assert w.finished_ns >= w.window_ns[1]
        assert w.outcome.timeseries[0].ops > 0 and w.outcome.timeseries[-1].ops > 0
    assert merged.duration_s == pytest.approx(SHAPE.duration_s)
    assert [s.ops for s in merged.timeseries] == [
        sum(w.outcome.timeseries[t].ops for w in workers) for t in range(len(merged.timeseries))
    ]
    assert merged.client_cpu_cores is not None and merged.host is not None
    assert _gone([w.pid for w in workers])


def test_an_error_in_one_worker_reaches_the_result(embedded_server: EmbeddedServer) -> None:
    """Worker 1's connections fail every statement (told apart by application_name)."""
    op = _select(
        "SELECT CASE WHEN current_setting('application_name') LIKE '%/load-1' "
        "THEN 1 / floor(random())::int ELSE 1 END"
    )
    result = _run(embedded_server, op)
    first, second = result.workers
    assert first.outcome.errors == 0 and first.outcome.operations > 0
    assert second.outcome.operations == 0 and second.outcome.errors > 0
    assert result.merged.errors == second.outcome.errors
    assert result.merged.operations == first.outcome.operations
    assert any("division by zero" in m for m in result.merged.error_messages)
    assert _gone([w.pid for w in result.workers])


def test_a_failing_worker_is_raised_and_none_survives(embedded_server: EmbeddedServer) -> None:
    before = _descendants()
    with pytest.raises(RunFailed, match=r"load worker .* failed: .*statement_timeout"):
        _run(embedded_server, _select(statement_timeout="not a duration"))
    assert _descendants() - before - _children() == set()


def test_ctrl_c_stops_every_worker(embedded_server: EmbeddedServer) -> None:
    """Ctrl-C is a KeyboardInterrupt in the main thread, here raised from the progress
    callback once the window runs; the workers are the fork server's children."""
    workers: set[int] = set()

    def ctrl_c(elapsed: int, ops: int) -> None:
        workers.update(_descendants() - _children())
        raise KeyboardInterrupt

    dsn = embedded_server.dsn()
    with pytest.raises(KeyboardInterrupt):
        run_load_processes(
            _select(),
            Connect(dsn=dsn),
            LoadShape(clients=4, warmup_s=0.2, duration_s=30),
            processes=2,
            probe_dsn=dsn,
            on_second=ctrl_c,
        )
    assert len(workers) == 2
    assert _gone(sorted(workers))


def test_load_spec_with_processes_through_the_runner(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [20]}]
    tiny_spec["load"] = {
        "query_params": {"hnsw.ef_search": 20},
        "clients": [3],
        "warmup_seconds": 0.2,
        "duration_seconds": 1.0,
        "query_source": "table",
        "engines": ["python", "pgbench"],
        "processes": 2,
    }
    runner = ExperimentRunner(
        parse_spec(tiny_spec),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    server = embedded_server
    target = Target(
        server.dsn(), "embedded", bin_dir=server.bin_dir, postmaster_pid=server.postmaster_pid()
    )
    points = {p.engine: p for p in runner.run(target).load_points}
    python = points["python"]
    assert python.valid and python.errors == 0 and python.operations > 0
    assert python.histogram is not None and python.server_cpu_cores is not None
    assert python.fidelity is not None  # paired with pgbench's windows, as with one process


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _children() -> set[int]:
    """Direct children: multiprocessing's fork server and resource tracker (kept for the
    session), not workers, which the fork server forks."""
    return {p.pid for p in psutil.Process().children()}
