"""[server] memory_limit / cpus: the notations, where the controllers are mounted, and the
limits as the results record them (the RAM and cores the advice then reasons with)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pgvbench.results import Environment, HostInfo, ServerLimits, _build
from pgvbench.server.cgroup import cgroup_name, hierarchies
from pgvbench.server.cgroup_read import oom_kills
from pgvbench.spec.machine import format_cpu_list, parse_cpu_list, parse_size
from pgvbench.spec.parse import parse_spec

GIB = 1024**3


@pytest.mark.parametrize(
    ("text", "size"),
    [("512MB", 512 * 1024**2), ("2GB", 2 * GIB), ("1.5 GiB", int(1.5 * GIB)), ("64kB", 65536)],
)
def test_sizes_read_like_postgresql_settings(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["2", "2 parsecs", "GB", "-1GB", ""])
def test_not_a_size(text: str) -> None:
    assert parse_size(text) is None


@pytest.mark.parametrize(
    ("text", "cpus"), [("0", (0,)), ("0-1", (0, 1)), ("0-2,5", (0, 1, 2, 5)), ("3,1", (1, 3))]
)
def test_cpu_lists_round_trip(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus
    assert parse_cpu_list(format_cpu_list(cpus)) == cpus


@pytest.mark.parametrize("text", ["", "a", "2-1", "1,,2", "-1"])
def test_not_a_cpu_list(text: str) -> None:
    assert parse_cpu_list(text) is None


def test_controllers_found_on_v1_v2_and_hybrid_hosts(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = tmp_path / "mounts"
    # hybrid: v1 memory wins over a v2 mount offering it; cpuset comes from v2
    mounts.write_text(
        "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
        f"cgroup2 {unified} cgroup2 rw,relatime 0 0\n"
        "cgroup /sys/fs/cgroup/cpu\\040set cgroup ro,relatime,cpu 0 0\n"
    )
    found = hierarchies(mounts)
    assert found["memory"].version == 1
    assert found["memory"].root == Path("/sys/fs/cgroup/memory")
    assert found["cpuset"].version == 2 and found["cpuset"].root == unified
    (unified / "cgroup.controllers").write_text("")  # a hybrid v2 mount: no controllers
    assert "cpuset" not in hierarchies(mounts)
    mounts.write_text("cgroup /sys/fs/cgroup/cpuset cgroup ro,relatime,cpuset 0 0\n")
    assert hierarchies(mounts)["cpuset"].read_only


def test_one_cgroup_name_per_data_dir(tmp_path: Path) -> None:
    a, b = cgroup_name(tmp_path / "a"), cgroup_name(tmp_path / "b")
    assert a.startswith("pgvbench-") and a != b and a == cgroup_name(tmp_path / "a")


def _env(limits: ServerLimits | None) -> Environment:
    host = HostInfo(cpu_model="x", cores=8, ram_bytes=64 * GIB, os="Linux")
    return Environment(
        postgres_version="18",
        pgvector_version="0.8",
        server_kind="embedded",
        non_default_settings={},
        host=host,
        pgvbench_version="0",
        git_commit=None,
        python_version="3.11",
        server_limits=limits,
    )


def test_the_limit_is_the_ram_and_the_cpuset_the_cores() -> None:
    plain = _env(None)
    assert plain.server_ram_bytes() == 64 * GIB and plain.server_cores() == 8
    limited = _env(ServerLimits(cgroup_version=1, memory_bytes=2 * GIB, cpus=[7]))
    assert limited.server_ram_bytes() == 2 * GIB and limited.server_cores() == 1
    memory_only = _env(ServerLimits(cgroup_version=2, memory_bytes=2 * GIB))
    assert memory_only.server_cores() == 8


def test_limits_round_trip_and_older_files_load_without_them() -> None:
    limits = ServerLimits(
        cgroup_version=1, memory_bytes=GIB, memsw_bytes=GIB, cpus=[1], set_by_pgvbench=True
    )
    data = dataclasses.asdict(_env(limits))
    assert _build(Environment, data) == _env(limits)
    del data["server_limits"]
    assert _build(Environment, data).server_limits is None


def test_the_spec_records_limits_only_when_set() -> None:
    base = {
        "experiment": {"name": "m"},
        "dataset": {"source": "synthetic", "n": 100, "dim": 4},
        "index": [{"kind": "none"}],
    }
    assert "memory_limit_bytes" not in parse_spec(base).to_dict()["server"]
    spec = parse_spec({**base, "server": {"memory_limit": "1GB", "cpus": 1}})
    assert spec.server.limits is not None
    assert spec.server.limits.memory_bytes == GIB and len(spec.server.limits.cpus) == 1
    assert spec.to_dict()["server"]["memory_limit_bytes"] == GIB


def test_oom_kills_read_from_v1_and_v2_files(tmp_path: Path) -> None:
    assert oom_kills(tmp_path) == 0
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kills(tmp_path) == 2
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n")
    assert oom_kills(tmp_path) == 3
