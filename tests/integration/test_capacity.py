"""`pgvbench plan` on the real embedded server with tiny levels: the sweep measures every
field at every level, the record round-trips through JSON, backups and restores (finished
or interrupted) leave no directory, database or process behind, and the exit codes are
the house's: 0 done, 2 bad input before anything starts, 1 a server lost mid-sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from psycopg import sql

from pgvbench.cli import main
from pgvbench.db.schema import OWNER_MARK
from pgvbench.server import ownership
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from pgvbench.studies.capacity import backup as bk
from pgvbench.studies.capacity.records import CapacityRecord
from support import write_toml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEVELS = [1000, 2000, 4000]
TOOLS = ("pg_basebackup", "pg_dump", "pg_restore")


def plan_spec(name: str, **capacity: Any) -> dict[str, Any]:
    """1k/2k/4k x 16 clustered rows, a small HNSW build, short windows, backup at 1k."""
    return {
        "experiment": {"name": name, "seed": 7, "schema": f"s_{name}"},
        "dataset": {
            "source": "synthetic",
            "distribution": "clustered",
            "n": 500,  # plan sizes it to the largest level
            "dim": 16,
            "clusters": 8,
            "spread": 1.0,
            "metric": "l2",
            "queries": 200,
        },
        "query": {"k": 10, "recall_queries": 60, "warmup_seconds": 0.05, "measure_seconds": 0.2},
        "capacity": {
            "levels": LEVELS,
            "m": 8,
            "ef_construction": 32,
            "recall": 0.9,
            "ef_search": 20,
            "clients": 2,
            "window_seconds": 0.1,  # 3 interleaved rounds of 0.1 s windows per arm
            "measure_seconds": 0.3,
            "maintenance_work_mem": "64MB",
            "backup": [1000],
            "jobs": 2,
            **capacity,
        },
    }


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))


def _plan(spec: Path, out: Path, *extra: str) -> int:
    return main(["plan", str(spec), "--out", str(out), "-q", *extra])


def _scratch_databases(server: EmbeddedServer) -> list[str]:
    with connect(server.dsn()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
            (bk.DATABASE_PREFIX,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def _scratch_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{bk.DIR_PREFIX}*"))


def _tool_processes() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if p.name() in TOOLS]


def test_plan_measures_every_field_and_leaves_nothing_behind(
    embedded_server: EmbeddedServer,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_toml(tmp_path / "plan.toml", plan_spec(unique_name))
    out = tmp_path / "out"
    dirs_before = _scratch_dirs()
    code = _plan(spec, out, "--target-rows", "1M", "--target-qps", "500", "--p99-ms", "50",
                 "--data-dir", str(embedded_server.data_dir))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())["tuning"]["capacity"]
    record = CapacityRecord.from_dict(data)
    assert record.complete and record.level_rows == tuple(LEVELS)
    assert record.spec["target_rows"] == 1_000_000 and record.dim == 16
    assert record.server.ram_bytes and record.server.cores
    assert record.server.bytes_of("shared_buffers") and record.prewarmed
    for level in record.levels:
        assert level.load_seconds > 0 and level.heap_bytes > 0 and level.truth_seconds >= 0
        (ix,) = level.indexes
        assert ix.kind == "hnsw" and ix.reason is None, ix
        assert ix.build_seconds and ix.build_seconds > 0 and ix.index_bytes > 0
        assert ix.build_cpu_seconds is not None and ix.build_cpu_seconds >= 0
        # a build shorter than one progress poll (0.2 s) may show no phase at all
        assert all(p.seconds >= 0 for p in ix.phases)
        assert ix.phases or ix.build_seconds < 0.5
        assert ix.graph_fits  # 64MB holds a 4k x 16 graph
        assert ix.fixed_knob == 20 and ix.fixed_recall is not None and ix.fixed_latency
        assert ix.fixed_latency.qps > 0
        assert ix.knob is not None and ix.probes
        assert ix.recall is not None and ix.recall.low is not None and ix.recall.low >= 0.9
        lat = ix.latency
        assert lat is not None and lat.qps > 0 and lat.p99_ms > 0 and lat.clients == 2
        assert lat.server_cpu_cores is not None and lat.client_cpu_cores is not None
        assert ix.qps_per_core is not None and ix.qps_per_core > 0
        assert len(ix.window_qps) == 3 and len(ix.fixed_window_qps) == 3  # interleaved
    # backups at the smallest level only
    assert [lv.backup is not None for lv in record.levels] == [True, False, False]
    b = record.levels[0].backup
    assert b is not None and b.error is None, b
    assert b.basebackup_seconds and b.basebackup_bytes > 0 and b.cluster_bytes > 0
    assert b.dump_seconds and b.dump_bytes > 0 and b.jobs == 2
    assert b.restore_schema_seconds and b.restore_data_seconds and b.restore_index_seconds
    assert b.restored_rows == 1000 and b.restored_index_bytes > 0
    assert b.restore_index_cpu_seconds is not None and b.compression is None
    assert b.restore_settings == {"maintenance_work_mem": "64MB"}
    # the record round-trips through JSON unchanged
    again = CapacityRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    frame = record.frame("hnsw")
    assert list(frame["rows"]) == LEVELS and frame["build_seconds"].notna().all()
    # the report and plan.md show the held-out check and the answers
    plan = (out / "plan.md").read_text()
    assert "Held-out check" in plan and "At the target: 1,000,000 x 16" in plan
    assert (out / "capacity_hnsw.png").stat().st_size > 0
    assert "Capacity: how costs grow" in (out / "report.md").read_text()
    # nothing left: level tables, scratch databases and directories, tool processes
    with connect(embedded_server.dsn()) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (f"s_{unique_name}",)
        ).fetchall()
    assert [t[0] for t in tables] == [f"{unique_name}_items"]
    assert _scratch_databases(embedded_server) == []
    assert _scratch_dirs() - dirs_before == set()
    assert _tool_processes() == []


def test_an_interrupted_restore_removes_its_database_directory_and_process(
    embedded_server: EmbeddedServer, unique_name: str
) -> None:
    schema, table = f"s_{unique_name}", f"{unique_name}_c100"
    with connect(embedded_server.dsn()) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT g AS id, array_fill(g::real, ARRAY[4])::vector "
                    "AS embedding FROM generate_series(1, 100) g").format(
                sql.Identifier(schema, table))
        )  # fmt: skip
    target = bk.BackupTarget(
        server=embedded_server, dsn=embedded_server.dsn(), schema=schema, table=table,
        rows=100, jobs=1, settings={},
    )  # fmt: skip
    dirs_before = _scratch_dirs()
    seen: list[str] = []

    def stop_at_restore(step: str) -> None:
        seen.append(step)
        if "post-data" in step:  # the scratch database and the dump exist by now
            assert _scratch_databases(embedded_server) and _scratch_dirs() - dirs_before
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            bk.time_backup(target, on_step=stop_at_restore)
        assert any("pg_basebackup" in s for s in seen) and any("pg_dump" in s for s in seen)
        assert _scratch_databases(embedded_server) == []
        assert _scratch_dirs() - dirs_before == set()
        assert _tool_processes() == []
    finally:
        with connect(embedded_server.dsn()) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_ctrl_c_during_a_tool_stops_and_reaps_it(tmp_path: Path) -> None:
    main_thread = threading.get_ident()
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main_thread, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        bk.run_tool(["sleep", "30"], env=os.environ, log=tmp_path / "sleep.log")
    assert time.monotonic() - started < 15
    assert [p for p in psutil.Process().children(recursive=True) if p.name() == "sleep"] == []


def test_leftovers_of_a_dead_run_are_removed_and_nothing_unmarked(
    embedded_server: EmbeddedServer,
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_pid = gone.pid  # a pgvbench that died: its pid is no longer alive
    marked = f"{bk.DATABASE_PREFIX}{dead_pid}_abc123"
    unmarked = f"{bk.DATABASE_PREFIX}{dead_pid}_def456"
    folder = Path(tempfile.mkdtemp(prefix=bk.DIR_PREFIX))
    (folder / ownership.MARKER).write_text(json.dumps({"purpose": bk.PURPOSE, "pid": dead_pid}))
    foreign = Path(tempfile.mkdtemp(prefix=bk.DIR_PREFIX))
    (foreign / "keep.txt").write_text("not pgvbench's")
    with connect(embedded_server.dsn()) as conn:
        for name in (marked, unmarked):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(marked), sql.Literal(OWNER_MARK)))  # fmt: skip
    try:
        removed = bk.remove_leftovers(embedded_server.dsn())
        assert marked in removed and str(folder) in removed
        assert _scratch_databases(embedded_server) == [unmarked]
        assert not folder.exists() and (foreign / "keep.txt").exists()
    finally:
        with connect(embedded_server.dsn()) as conn:
            for name in (marked, unmarked):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        for path in (folder, foreign):
            if path.exists():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()


@pytest.mark.parametrize(
    ("extra", "capacity", "message"),
    [
        ((), {}, "--target-rows"),
        (("--target-rows", "1M", "--levels", "1000", "2000"), {}, "[capacity] levels"),
        (("--target-rows", "1M"), {"ef_construction": 4}, "[capacity] ef_construction"),
        (("--target-rows", "1M", "--p99-ms", "5"), {}, "[capacity] p99_ms needs target_qps"),
        (("--target-rows", "1M"), {"backup": [3000]}, "not among levels"),
    ],
)
def test_bad_input_is_exit_2_before_anything_starts(
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    capacity: dict[str, Any],
    message: str,
) -> None:
    spec = write_toml(tmp_path / "plan.toml", plan_spec(unique_name, **capacity))
    data_dir = tmp_path / "never"
    code = _plan(spec, tmp_path / "out", "--data-dir", str(data_dir), *extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error:") and message in err, err
    assert not data_dir.exists() and not (tmp_path / "out").exists()


def test_an_unreadable_target_rows_is_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(tmp_path / "x.toml"), "--target-rows", "lots"])
    assert exc.value.code == 2


@pytest.fixture
def doomed() -> Iterator[EmbeddedServer]:
    """A server of this test's own, to be killed mid-sweep."""
    with temporary_server("pgvbench-capacity-") as server:
        yield server


def test_a_server_lost_mid_sweep_is_exit_1_with_the_finished_levels_kept(
    doomed: EmbeddedServer, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_toml(tmp_path / "plan.toml", plan_spec(unique_name, backup=False))
    out = tmp_path / "out"
    second = f"{unique_name}_c{LEVELS[1]}"

    def kill_at_second_level() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with connect(doomed.dsn()) as conn:
                    row = conn.execute("SELECT to_regclass(%s)", (f"s_{unique_name}.{second}",))
                    if row.fetchone()[0] is not None:  # type: ignore[index]
                        break
            except Exception:
                return
            time.sleep(0.05)
        pid = doomed.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_at_second_level, daemon=True)
    killer.start()
    try:
        code = _plan(spec, out, "--target-rows", "1M", "--dsn", doomed.dsn())
    finally:
        killer.join(timeout=70)
        for proc in psutil.process_iter(["cwd"]):  # the dead server's orphaned backends
            if proc.info.get("cwd") == str(doomed.data_dir):
                proc.kill()
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("pgvbench: error:") == 1 and "Traceback" not in err
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "failed"
    record = CapacityRecord.from_dict(data["tuning"]["capacity"])
    assert not record.complete and record.level_rows == (LEVELS[0],)
    assert record.server.external and record.backup_skipped is None
