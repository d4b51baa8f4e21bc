"""Hot standbys of the embedded server on real streaming replication: they stream, see the
primary's writes, serve reads, and leave no process, slot or directory behind: after a
stop, an interrupted start, a killed run (the next one cleans up) and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from pgvbench.cli import main
from pgvbench.engine.operations import SqlOperation
from pgvbench.errors import ConnectError
from pgvbench.server.cluster import find_cluster
from pgvbench.server.connection import parse_dsn
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from pgvbench.server.replicas import SLOT_PREFIX, ReplicaSet, replica_root
from pgvbench.studies.replicas.reads import Servers, measure_reads
from support import write_toml

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def primary() -> Iterator[EmbeddedServer]:
    """A primary of this file's own (its standbys copy everything in it); each test leaves
    it without standbys, slots or their directories, as it asserts."""
    with temporary_server("pgvbench-rep-") as server:
        yield server


def _postgres_under(root: Path) -> list[psutil.Process]:
    """Server processes whose working directory (PostgreSQL's data dir) is under ``root``."""
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        with contextlib.suppress(psutil.Error):
            cwd = proc.info.get("cwd") or ""
            if proc.info.get("name") == "postgres" and cwd.startswith(str(root)):
                found.append(proc)
    return found


def _slots(server: EmbeddedServer) -> list[str]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
    return [str(r[0]) for r in rows]


def _assert_gone(server: EmbeddedServer) -> None:
    root = replica_root(server.data_dir)
    assert not _postgres_under(root), "a standby process outlived its stop"
    assert not root.exists(), sorted(p.name for p in root.iterdir())
    assert not [s for s in _slots(server) if s.startswith(SLOT_PREFIX)]


def test_standby_streams_sees_writes_serves_reads_and_stops_clean(
    primary: EmbeddedServer,
) -> None:
    replicas = ReplicaSet(primary, count=1, notify=lambda _: None)
    try:
        replicas.start()
        (state,) = replicas.states()
        assert (state.name, state.state) == (f"{SLOT_PREFIX}1", "streaming")
        (standby_dsn,) = replicas.dsns()
        standby = replicas.standbys[0]
        assert standby.port != primary.port
        marker = standby.data_dir / ".pgvbench-owned"
        assert marker.exists() and (standby.data_dir / "standby.signal").exists()
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE rep_t (id int PRIMARY KEY)")
            conn.execute("INSERT INTO rep_t SELECT generate_series(1, 100)")
        replicas.wait_caught_up(timeout_s=30)
        with psycopg.connect(standby_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), count(*) FROM rep_t").fetchone()
            assert row == (True, 100)
            before = _commits(conn)
        op = SqlOperation(
            name="count", sql="SELECT count(*) FROM rep_t WHERE id > $1", types=[23],
            params=[[(5).to_bytes(4, "big")]], settings={},
        )  # fmt: skip
        servers = Servers(primary=primary.dsn(), standbys=(standby_dsn,), names=("replica1",))
        arms = measure_reads(
            servers, op, clients=2, window_s=0.3, rounds=1, load_balance=False, seed=1, cpu=None
        )
        assert [a.label for a in arms] == ["primary only", "1 standby"]
        assert set(arms[0].server_qps()) == {"primary"}
        assert set(arms[1].server_qps()) == {"replica1"} and arms[1].operations > 0
        with psycopg.connect(standby_dsn, autocommit=True) as conn:
            assert _commits(conn) - before >= arms[1].operations  # the standby served them
        # --dsn: one multi-host DSN, standby first; pg_is_in_recovery() finds the primary
        multi = (
            f"host={standby.socket_dir},{primary.socket_dir} port={standby.port},{primary.port} "
            "user=postgres dbname=pgvbench"
        )
        cluster = find_cluster(multi, standbys=1)
        assert parse_dsn(cluster.primary)["port"] == str(primary.port)
        assert [parse_dsn(d)["port"] for d in cluster.standbys] == [str(standby.port)]
        with pytest.raises(ConnectError, match="replicas = 2, but --dsn lists 1 standby"):
            find_cluster(multi, standbys=2)
    finally:
        replicas.stop()
    _assert_gone(primary)


def _commits(conn: psycopg.Connection[Any]) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_interrupted_start_and_a_killed_runs_standbys_are_cleaned_up(
    primary: EmbeddedServer,
) -> None:
    def interrupt(step: str) -> None:
        if step == "start replica2":  # replica1 runs, replica2 is copied, not started
            raise KeyboardInterrupt

    replicas = ReplicaSet(primary, count=2, notify=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        replicas.start(on_step=interrupt)
    _assert_gone(primary)
    # a run killed outright leaves its standby running; the next one stops and removes it
    left = ReplicaSet(primary, count=1, notify=lambda _: None)
    left.start()
    assert _postgres_under(replica_root(primary.data_dir))
    notices: list[str] = []
    ReplicaSet(primary, count=0, notify=notices.append).clean_leftovers()
    _assert_gone(primary)
    assert any("left standbys" in n and "replica1" in n for n in notices), notices


def _tiny_spec(name: str, **replicas: Any) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "kind": "agents", "seed": 5, "schema": f"s_{name}"},
        "agents": {
            "tenants": 2, "agents": 8, "memories": 1500, "chunks": 0, "tasks": 40, "dim": 16,
            "doc_kb": [0.1, 0.3],
        },
        "server": {"replicas": 1},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 16, "ef_search": [20]}],
        "replicas": {
            "clients": 2, "window_seconds": 0.3, "rounds": 1, "mix_seconds": 2.0,
            "write_rate": 50, "write_clients": 1, "lag_interval_ms": 50, "probes": 6,
            "probe_delays_ms": [0, 50], **replicas,
        },
    }  # fmt: skip


def test_run_with_a_standby_end_to_end(tmp_path: Path, unique_name: str) -> None:
    spec = write_toml(tmp_path / "rep.toml", _tiny_spec(unique_name))
    root = Path(tempfile.mkdtemp(prefix="pgvbench-rep-run-"))
    data_dir, out = root / "data", tmp_path / "out"
    try:
        code = main(["run", str(spec), "--out", str(out), "--data-dir", str(data_dir), "--quiet"])
        assert code == 0
        body = json.loads((out / "results.json").read_text())
        rep = body["agent"]["replicas"]
        assert rep["standbys"] == ["replica1"] and rep["source"] == "embedded"
        assert [a["label"] for a in rep["arms"]] == ["primary only", "1 standby"]
        assert rep["arms"][1]["server_qps"]["replica1"] > 0
        assert rep["mix"]["write_operations"] > 0 and rep["mix"]["samples"]
        assert {s["standby"] for s in rep["mix"]["samples"]} == {"replica1"}
        assert len(rep["probes"]) == 12 and all(p["later_hit"] is not None for p in rep["probes"])
        report = (out / "report.md").read_text()
        assert "## Read replicas" in report and "Recall right after a write" in report
        assert not _postgres_under(root)  # the primary and the standby are stopped
        assert not replica_root(data_dir).exists()
    finally:
        EmbeddedServer(data_dir=data_dir).stop()
        shutil.rmtree(root, ignore_errors=True)


def test_ctrl_c_mid_run_stops_the_standbys(tmp_path: Path, unique_name: str) -> None:
    # a long mix, so the interrupt lands while the standby runs
    spec = write_toml(tmp_path / "rep.toml", _tiny_spec(unique_name, mix_seconds=60.0))
    root = Path(tempfile.mkdtemp(prefix="pgvbench-rep-int-"))
    data_dir = root / "data"
    env = {**os.environ, "PGVBENCH_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "pgvbench.cli", "run", str(spec), "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(data_dir), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _postgres_under(replica_root(data_dir)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _postgres_under(replica_root(data_dir)), "the standby never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert not _postgres_under(root), "a server outlived the interrupted run"
        assert not replica_root(data_dir).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        EmbeddedServer(data_dir=data_dir).stop()
        shutil.rmtree(root, ignore_errors=True)
