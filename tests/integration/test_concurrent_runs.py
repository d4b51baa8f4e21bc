"""Other pgvbench runs on the same server: recorded in results.json, listed under Validity.

The "other run" is a session named as another pgvbench process names its sessions
(application_name 'pgvbench/other-run'), opened on the embedded server while a tiny
run goes against it through --dsn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgvbench.cli import main
from pgvbench.results import ConcurrentSession, Results, load_results, write_results
from pgvbench.server.connection import application_name, connect, is_own_session
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.server.sessions import SessionWatch, merge_sessions, other_sessions
from support import write_toml

pytestmark = pytest.mark.integration

OTHER = "pgvbench/other-run"


@pytest.fixture
def other_run(embedded_server: EmbeddedServer) -> Iterator[psycopg.Connection[Any]]:
    """An idle session of 'another pgvbench run' on the server."""
    with psycopg.connect(embedded_server.dsn(), application_name=OTHER, autocommit=True) as conn:
        yield conn


def test_a_run_records_another_pgvbench_session_and_reports_it(
    embedded_server: EmbeddedServer,
    other_run: psycopg.Connection[Any],
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    tiny_spec["index"] = [{"kind": "none"}]
    spec_path = write_toml(tmp_path / "spec.toml", tiny_spec)
    out = tmp_path / "out"

    code = main(["run", str(spec_path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])

    assert code == 0
    results = load_results(out / "results.json")
    assert results.status == "complete"
    others = [s for s in results.concurrent_runs if s.application_name == OTHER]
    assert len(others) == 1
    other = others[0]
    assert other.pid == other_run.info.backend_pid
    assert other.user == "postgres" and other.database == "pgvbench"
    assert other.client == "local"  # Unix socket
    assert other.backend_start is not None and other.first_seen <= other.last_seen
    # none of this run's own sessions (pools, loaders, collectors) counts as another run
    assert not [s for s in results.concurrent_runs if is_own_session(s.application_name)]

    report = (out / "report.md").read_text()
    validity = report[report.index("## Validity") :]
    n = len(results.concurrent_runs)
    sessions = "session was" if n == 1 else "sessions were"
    assert f"{n} other pgvbench {sessions} active on the server during this run: " in validity
    assert "their timings overlap" in validity
    assert f"Concurrent pgvbench session {OTHER}: 1 backend (pid {other.pid}" in validity


def test_a_run_alone_records_none(
    embedded_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its own pools, loaders, collectors and the watch itself are never "other runs"."""
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    tiny_spec["index"] = [
        {"kind": "none"},
        {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10]},
    ]
    spec_path = write_toml(tmp_path / "spec.toml", tiny_spec)
    out = tmp_path / "out"

    code = main(["run", str(spec_path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])

    assert code == 0
    results = load_results(out / "results.json")
    assert [s for s in results.concurrent_runs if s.application_name.startswith("pgvbench/")] == []
    report = (out / "report.md").read_text()
    assert "other pgvbench session" not in report


def test_own_sessions_are_not_listed(
    embedded_server: EmbeddedServer, other_run: psycopg.Connection[Any]
) -> None:
    with (
        connect(embedded_server.dsn()) as observer,
        connect(embedded_server.dsn(), application_name=application_name("loader")),
    ):
        names = [s.application_name for s in other_sessions(observer)]
    assert OTHER in names
    assert not [n for n in names if is_own_session(n)]


def _results(status: str = "running") -> Results:
    data = {
        "schema_version": 3,
        "run_name": "watch",
        "status": status,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": None,
        "environment": {
            "postgres_version": "18",
            "pgvector_version": "0.8",
            "server_kind": "external",
            "non_default_settings": {},
            "host": {"cpu_model": "x", "cores": 1, "ram_bytes": 1, "os": "linux"},
            "pgvbench_version": "0",
            "git_commit": None,
            "python_version": "3",
        },
        "spec": {},
        "runs": [],
    }
    return Results.from_dict(data)


def test_the_watch_sees_a_run_that_starts_later_and_ends_with_the_run(
    embedded_server: EmbeddedServer,
) -> None:
    results = _results()
    watch = SessionWatch(embedded_server.dsn(), results, poll_s=0.05).start()
    try:
        with psycopg.connect(
            embedded_server.dsn(), application_name="pgvbench/late-run", autocommit=True
        ) as late:
            pid = late.info.backend_pid
            for _ in range(400):  # waiting for an event, not timing it (at most ~20 s)
                if any(s.pid == pid for s in results.concurrent_runs):
                    break
                time.sleep(0.05)
            seen = [s for s in results.concurrent_runs if s.pid == pid]
            assert [s.application_name for s in seen] == ["pgvbench/late-run"]
        results.status = "complete"  # the run ended: the watch ends by itself
        assert watch.join(timeout=30)
    finally:
        watch.stop()


def _session(pid: int, state: str, seen: str) -> ConcurrentSession:
    return ConcurrentSession(
        pid=pid,
        application_name=OTHER,
        user=None,
        database=None,
        client=None,
        backend_start="2025-01-01T00:00:00Z",
        state=state,
        query_start=None,
        first_seen=seen,
        last_seen=seen,
    )


def test_merge_keeps_one_record_per_session() -> None:
    known: list[ConcurrentSession] = []
    assert merge_sessions(known, [_session(1, "idle", "T1")]) == 1
    assert merge_sessions(known, [_session(1, "active", "T2"), _session(2, "idle", "T2")]) == 1
    assert [(s.pid, s.state, s.first_seen, s.last_seen) for s in known] == [
        (1, "active", "T1", "T2"),
        (2, "idle", "T2", "T2"),
    ]


def test_concurrent_runs_round_trip_and_older_files_still_load(tmp_path: Path) -> None:
    results = _results("complete")
    results.concurrent_runs.append(_session(7, "active", "T1"))
    path = tmp_path / "results.json"
    write_results(results, path)
    assert load_results(path).concurrent_runs == results.concurrent_runs

    data = json.loads(path.read_text())
    del data["concurrent_runs"]  # a file from before the field existed
    path.write_text(json.dumps(data))
    assert load_results(path).concurrent_runs == []
