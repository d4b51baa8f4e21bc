"""[server] memory_limit / cpus on a real embedded server: every server process inside the
cgroup, the limits in its files and in the results' environment, the cgroup gone after
stop (Ctrl-C included), bad values and --dsn refused with exit 2."""

from __future__ import annotations

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
from pgvbench.environment import collect_environment
from pgvbench.errors import ServerError
from pgvbench.server import cgroup
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.machine import host_cpus
from pgvbench.spec.model import MachineLimits
from support import write_toml

pytestmark = pytest.mark.integration

MIB = 1024**2
LIMIT = 384 * MIB
CPUS = host_cpus()[-1:]  # the last CPU, as `cpus = 1` picks


def _unavailable() -> str | None:
    try:
        cgroup.check_available(MachineLimits(memory_bytes=LIMIT, cpus=CPUS))
    except ServerError as exc:
        return str(exc)
    return None


needs_cgroups = pytest.mark.skipif(
    _unavailable() is not None, reason=f"cgroup controllers unavailable: {_unavailable()}"
)


@pytest.fixture
def data_root() -> Iterator[Path]:
    # outside pytest's 0700 tmp tree: the server's own system user must reach it
    root = Path(tempfile.mkdtemp(prefix="pgvbench-cgroup-"))
    try:
        yield root
    finally:
        server = EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks")
        if server.initialized:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _dirs(data_dir: Path) -> list[Path]:
    found = cgroup.hierarchies()
    name = cgroup.cgroup_name(data_dir)
    return [found[c].root / name for c in ("memory", "cpuset")]


def _server_pids(server: EmbeddedServer) -> list[int]:
    pid = server.postmaster_pid()
    assert pid is not None
    return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]


@needs_cgroups
def test_every_server_process_runs_inside_the_limits_until_stop(data_root: Path) -> None:
    data_dir = data_root / "data"
    server = EmbeddedServer(data_dir=data_root / "data", lock_dir=data_root / "locks")
    limits = MachineLimits(memory_bytes=LIMIT, cpus=CPUS)
    assert server.ensure_started(fresh=True, owner="run", limits=limits)
    group = cgroup.ServerCgroup(data_dir=data_dir, limits=limits)
    memory_dir, cpuset_dir = _dirs(data_dir)
    assert group.dirs and all(d.is_dir() for d in (memory_dir, cpuset_dir))

    with connect(server.dsn()) as conn:
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        # the processes forked at startup (checkpointer, walwriter, io workers...) and this
        # session's backend: every one inside, for both controllers
        pids = _server_pids(server)
        assert backend in pids and len(pids) >= 5
        for pid in pids:
            assert group.holds(pid), (pid, Path(f"/proc/{pid}/cgroup").read_text())
        env = collect_environment(conn, server_kind="embedded")
    # the limits as the kernel holds them, and as the results record them
    assert int((memory_dir / "memory.limit_in_bytes").read_text()) == LIMIT
    memsw = memory_dir / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        assert int(memsw.read_text()) == LIMIT
    assert (cpuset_dir / "cpuset.cpus").read_text().strip() == str(CPUS[0])
    assert env.server_limits is not None
    assert env.server_limits.memory_bytes == LIMIT
    assert env.server_limits.cpus == list(CPUS) or len(CPUS) == os.cpu_count()
    assert env.server_limits.set_by_pgvbench
    assert env.server_ram_bytes() == LIMIT

    # the page cache the server brings in is charged to the cgroup: the limit counts it
    with connect(server.dsn()) as conn:
        conn.execute(
            "CREATE TABLE filler AS SELECT g, repeat('x', 900) AS pad "
            "FROM generate_series(1, 40000) g"
        )  # ~40 MB
        conn.execute("CHECKPOINT")
    server.stop()
    assert not memory_dir.exists()
    assert server.ensure_started(owner="run", limits=limits)  # evicts, then reads anew
    with connect(server.dsn()) as conn:
        conn.execute("SELECT count(*) FROM filler").fetchone()
    stat = dict(line.split() for line in (memory_dir / "memory.stat").read_text().splitlines())
    assert int(stat.get("cache", stat.get("file", "0"))) > 20 * MIB, stat

    # a restart (e.g. a setting that needs one) comes back inside the same cgroup
    server.restart()
    assert all(group.holds(pid) for pid in _server_pids(server))

    # a later run without limits, or with others, does not silently use this server
    with pytest.raises(ServerError, match="already running under"):
        server.ensure_started(owner="run", limits=None)
    server.hand_over()  # as --keep-server leaves it: not a dead run's leftover
    other = MachineLimits(memory_bytes=LIMIT * 2, cpus=CPUS)
    with pytest.raises(ServerError, match="under other"):
        server.ensure_started(owner="run", limits=other)

    # a backend that outgrows the limit is killed by the kernel; the run's error says why
    server.limits = limits
    assert cgroup.oom_failure(data_dir, limits) is None
    with pytest.raises(psycopg.OperationalError), connect(server.dsn()) as conn:
        conn.execute("SELECT length(repeat('x', 300000000) || repeat('y', 300000000))")
    failure = cgroup.oom_failure(data_dir, limits)
    assert failure is not None and "memory_limit" in failure, failure

    assert server.stop()
    assert not memory_dir.exists() and not cpuset_dir.exists()
    assert not (data_dir / cgroup.RECORD_FILE).exists()


@needs_cgroups
def test_ctrl_c_removes_the_cgroup(tiny_spec: dict[str, Any], tmp_path: Path) -> None:
    tiny_spec["server"] = {"memory_limit": "384MB", "cpus": 1}
    tiny_spec["query"]["measure_seconds"] = 1.0
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10, 20]}]
    spec_path = write_toml(tmp_path / "limited.toml", tiny_spec)
    root = Path(tempfile.mkdtemp(prefix="pgvbench-cgroup-int-"))
    data_dir = root / "data"
    env = {**os.environ, "PGVBENCH_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "pgvbench.cli", "run", str(spec_path), "--out",
            str(tmp_path / "out"), "--data-dir", str(data_dir), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        # the results file exists once the server runs and the run has started measuring
        deadline = time.monotonic() + 90
        while not (tmp_path / "out" / "results.json").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        memory_dir = _dirs(data_dir)[0]
        assert memory_dir.is_dir()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert not memory_dir.exists() and not _dirs(data_dir)[1].exists()
        assert not (data_dir / "postmaster.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server = EmbeddedServer(data_dir=data_dir, lock_dir=root / "locks")
        if server.initialized:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ({"memory_limit": "2 parsecs"}, '"512MB" or "2GB"'),
        ({"memory_limit": 2048}, "a size with a unit"),
        ({"memory_limit": "100TB"}, "more than this host's"),
        ({"memory_limit": "128MB"}, "shared_buffers"),
        ({"cpus": 0}, "an integer 1.."),
        ({"cpus": len(host_cpus()) + 1}, "an integer 1.."),
        ({"cpus": "0-999"}, "which this process may not use"),
        ({"cpus": "one"}, "a CPU list"),
    ],
)
def test_bad_values_exit_2_naming_the_key(
    server: dict[str, Any],
    says: str,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec_path = write_toml(tmp_path / "bad.toml", {**tiny_spec, "server": server})
    assert main(["validate", str(spec_path)]) == 2
    err = capsys.readouterr().err
    key = next(iter(server))
    assert f"{spec_path}: [server] {key}" in err and says in err, err


def test_limits_with_dsn_exit_2(
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    spec_path = write_toml(tmp_path / "dsn.toml", {**tiny_spec, "server": {"cpus": 1}})
    out = tmp_path / "out"
    # refused before any connection: nothing needs to listen there
    dsn = "postgresql://postgres@127.0.0.1:1/nope"
    argv = ["run", str(spec_path), "--dsn", dsn, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot limit a server reached with --dsn" in err, err
    assert not out.exists()
