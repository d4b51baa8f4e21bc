"""Read replicas without a server: the spec's [server] replicas and [replicas] checks (exit 2
naming file, table and key), multi-host DSNs split per server, the records' JSON round
trip and what the advice and report derive from them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pgvbench.analysis.paired import paired_ratio
from pgvbench.cli import main
from pgvbench.errors import ConnectError
from pgvbench.report.document import Table
from pgvbench.results import Latency
from pgvbench.server.cluster import balanced_dsn, hosts_of
from pgvbench.server.connection import parse_dsn
from pgvbench.spec.parse import load_spec
from pgvbench.studies.replicas import STUDY
from pgvbench.studies.replicas.advice import advice
from pgvbench.studies.replicas.records import (
    LagSample,
    MixResult,
    Probe,
    ReadArm,
    ReadWindow,
    ReplicasResult,
)
from pgvbench.studies.replicas.summary import lag_summaries, visibility
from support import write_toml

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"

SPEC: dict[str, Any] = {
    "experiment": {"name": "rep", "kind": "agents", "seed": 3},
    "agents": {"tenants": 2, "agents": 4, "memories": 200, "chunks": 0, "tasks": 10, "dim": 8},
    "server": {"replicas": 2},
    "index": [{"kind": "hnsw", "m": 8, "ef_construction": 16, "ef_search": [20]}],
    "replicas": {"rounds": 1},
}


def _spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    for table, values in changes.items():
        if values is None:
            data.pop(table, None)
        else:
            data[table] = {**data.get(table, {}), **values}
    return data


def _exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any]) -> str:
    path = write_toml(tmp_path / "bad.toml", data)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err, err
    return err


def test_shipped_spec_starts_two_standbys() -> None:
    spec = load_spec(WORKLOADS / "replicas.toml")
    assert spec.server.replicas == 2
    assert spec.study_specs["replicas"].replicas == 2
    assert spec.to_dict()["server"]["replicas"] == 2


def test_no_replicas_keeps_the_recorded_spec_as_before(tmp_path: Path) -> None:
    data = _spec(server=None, replicas=None, workload={"mix": {"memory_recall": 1}})
    spec = load_spec(write_toml(tmp_path / "plain.toml", data))
    assert spec.server.replicas == 0
    assert "replicas" not in spec.to_dict()["server"]  # comparable with older results


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"server": {"replicas": 9}}, ["[server] replicas = 9 is above the maximum 8"]),
        ({"server": {"replicas": -1}}, ["[server] replicas = -1 is below the minimum 0"]),
        ({"server": {"replicas": "two"}}, ["[server] replicas = 'two' must be an integer"]),
        (
            {"server": {"replicas": 1, "sweep": [{"work_mem": "8MB"}]}},
            ["[server] replicas = 1 cannot be combined with [[server.sweep]]"],
        ),
        ({"server": {"replicas": 0}}, ["[replicas]", "[server] replicas is not set"]),
        (
            {"replicas": None, "workload": {"mix": {"memory_recall": 1}}},
            ["replicas = 2 starts hot standbys that nothing", "[replicas]"],
        ),
        ({"replicas": {"clientz": 2}}, ["[replicas] clientz is not a known key", "clients"]),
        ({"replicas": {"clients": 0}}, ["[replicas] clients = 0 is below the minimum 1"]),
        (
            {"replicas": {"probe_delays_ms": [-5]}},
            ["[replicas] probe_delays_ms", "list of milliseconds"],
        ),
        (
            {"replicas": {"probes": 1000, "mix_seconds": 5, "probe_delays_ms": [100]}},
            ["[replicas] probes = 1000", "do not fit in mix_seconds = 5"],
        ),
        (
            {"index": None, "replicas": {}},
            ["[replicas] searches memories through an HNSW index"],
        ),
    ],
)
def test_spec_mistakes_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], words: list[str]
) -> None:
    data = _spec(**{k: v for k, v in changes.items() if k != "index"})
    if "index" in changes:
        data["index"] = [{"kind": "ivfflat", "lists": 4, "probes": [1]}]
    err = _exit_2(tmp_path, capsys, data)
    for word in words:
        assert word in err, err


def test_multi_host_dsn_splits_per_server() -> None:
    hosts = hosts_of("host=a,b,c port=5432,5433,5434 user=u dbname=d target_session_attrs=any")
    assert [(parse_dsn(h)["host"], parse_dsn(h)["port"]) for h in hosts] == [
        ("a", "5432"),
        ("b", "5433"),
        ("c", "5434"),
    ]
    assert all("target_session_attrs" not in parse_dsn(h) for h in hosts)
    url = hosts_of("postgresql://u@a:5432,b:6543/d")
    assert [parse_dsn(h)["port"] for h in url] == ["5432", "6543"]
    assert all(parse_dsn(h)["dbname"] == "d" for h in url)
    one_port = hosts_of("host=a,b port=5555")
    assert [parse_dsn(h)["port"] for h in one_port] == ["5555", "5555"]
    with pytest.raises(ConnectError, match="3 servers but 2 values of port"):
        hosts_of("host=a,b,c port=1,2")


def test_balanced_dsn_lists_every_standby_for_libpq_to_pick() -> None:
    dsn = balanced_dsn(["host=/tmp/s1 port=5001 dbname=x", "host=/tmp/s2 port=5002 dbname=x"])
    params = parse_dsn(dsn)
    assert params["host"] == "/tmp/s1,/tmp/s2"
    assert params["port"] == "5001,5002"
    assert params["load_balance_hosts"] == "random"


def _lat(p99: float) -> Latency:
    return Latency(p50=p99 / 2, p95=p99 * 0.9, p99=p99, p999=p99, max=p99, mean=p99 / 2)


def _window(round_no: int, per_server: dict[str, int], cores: float) -> ReadWindow:
    return ReadWindow(
        round=round_no,
        operations=sum(per_server.values()),
        errors=0,
        duration_s=2.0,
        p99_ms=3.0,
        per_server=per_server,
        server_cpu_cores=cores,
        host_busy_cores=cores + 0.1,
    )


def _result() -> ReplicasResult:
    base = [_window(r, {"primary": 2000}, 1.6) for r in range(3)]
    two = [_window(r, {"replica1": 1050, "replica2": 1000}, 1.7) for r in range(3)]
    lb = [_window(r, {"replica1": 1800, "replica2": 200}, 1.7) for r in range(3)]
    ratio = paired_ratio([w.qps for w in base], [w.qps for w in two])
    arms = (
        ReadArm(
            label="primary only",
            replicas=0,
            routing="primary",
            servers=("primary",),
            windows=tuple(base),
            latency=_lat(3.0),
        ),
        ReadArm(
            label="2 standbys",
            replicas=2,
            routing="per_client",
            servers=("replica1", "replica2"),
            windows=tuple(two),
            latency=_lat(3.2),
            qps_ratio=ratio,
        ),
        ReadArm(
            label="2 standbys, libpq random",
            replicas=2,
            routing="load_balance",
            servers=("replica1", "replica2"),
            windows=tuple(lb),
            latency=_lat(3.5),
        ),
    )
    samples = tuple(
        LagSample(
            t=0.25 * i,
            standby=name,
            state="streaming",
            lag_bytes=0 if i % 2 else 4096,
            write_lag_s=0.0004,
            flush_lag_s=0.0005,
            replay_lag_s=None if i % 2 else 0.002,
        )
        for i in range(8)
        for name in ("replica1", "replica2")
    )
    mix = MixResult(
        seconds=2.0,
        write_rate=100.0,
        write_operations=200,
        write_errors=0,
        write_seconds=2.0,
        write_latency=_lat(4.0),
        write_kinds={"memory_write": 200},
        read=arms[1],
        samples=samples,
        conflicts={"replica1": 0, "replica2": 1},
        caught_up_s=0.01,
        write_dropped=3,
        window_start_s=0.2,
        window_end_s=1.6,
    )
    probes = tuple(
        Probe(
            standby="replica1",
            delay_ms=delay,
            since_commit_ms=delay + 0.2,
            hit=delay > 0 or i % 2 == 0,
            replayed=delay > 0 or i % 2 == 0,
            behind_bytes=0 if delay > 0 else 512,
            replay_lag_s=0.001,
            later_hit=True,
        )
        for i in range(10)
        for delay in (0.0, 10.0)
    )
    return ReplicasResult(
        standbys=("replica1", "replica2"),
        source="embedded",
        libpq_version=180006,
        load_balance=True,
        cpu_count=2,
        clients=4,
        k=10,
        arms=arms,
        mix=mix,
        probes=probes,
    )


def test_record_round_trip_and_what_it_supports(tmp_path: Path) -> None:
    result = _result()
    again = ReplicasResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()
    assert again.arms[1].server_qps() == {"replica1": 525.0, "replica2": 500.0}
    assert ReplicasResult.from_dict({}).arms == ()  # a cut-down file still reads

    first = visibility(result.probes)[0]
    assert (first.delay_ms, first.probes, first.hits, first.not_yet_visible) == (0.0, 10, 5, 5)
    assert visibility(result.probes)[1].recall == 1.0
    assert result.mix is not None
    assert len(result.mix.in_window()) == 12  # t 0.25 .. 1.5 of 0 .. 1.75, both standbys
    lag = lag_summaries(result.mix.samples)[0]
    assert lag.samples == 8 and lag.bytes_max == 4096
    assert lag.replay_max_s == pytest.approx(0.002)  # idle readings count as 0 s

    texts = [r.text for r in advice(result)]
    assert any("share this host's 2 cores" in t and "per server core" in t for t in texts)
    assert any("landed unevenly" in t and "replica1 90%" in t for t in texts)
    assert any("recovery conflicts" in t for t in texts)
    assert any("50% of 10 new memories" in t and "not yet visible" in t for t in texts)

    blocks = STUDY.report(again, [], None)  # type: ignore[arg-type]
    tables = [b for b in blocks if isinstance(b, Table)]
    assert len(tables) == 3  # reads per arm, the mix per standby, recall after write
    assert tables[0].rows[1][2] == "replica1 525, replica2 500"
    images = STUDY.figures(again, tmp_path)
    assert {i.src for i in images} == {"replicas_reads.png", "replicas_lag.png"}
