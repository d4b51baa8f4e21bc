"""The Validity section names the windows measured under foreign load (host load recorded
around each window), says in one line when there were none, and stays silent for a results
file written before host load was recorded."""

from __future__ import annotations

from pgvbench.report.sections.validity import (
    FOREIGN_CORES_FLAG,
    STEAL_SHARE_FLAG,
    host_load_validity,
    under_foreign_load,
    validity_section,
)
from pgvbench.results import HostLoad, Latency, LoadPoint, Recall, Results, Sample, SweepPoint
from study_support import results_for

LAT = Latency(p50=1.0, p95=1.5, p99=2.0, p999=3.0, max=4.0, mean=1.1)


def _host(foreign: float | None, steal: float | None = 0.0) -> HostLoad:
    return HostLoad(
        loadavg_start=1.2, loadavg_end=1.9, busy_cores=1.8, steal_cores=steal,
        foreign_cores=foreign, client_cores=0.1, server_cores=0.9, cpu_count=2,
    )  # fmt: skip


def _sample(repeat: int, host: HostLoad | None) -> Sample:
    return Sample(
        repeat=repeat, sequence=repeat, qps=100.0, operations=100, errors=0, duration_s=1.0,
        latency_ms=LAT, host=host,
    )  # fmt: skip


def _sweep(ef: int, hosts: list[HostLoad | None]) -> SweepPoint:
    return SweepPoint(
        index="hnsw(m=16,ef_construction=64)", index_kind="hnsw",
        index_params={"m": 16, "ef_construction": 64}, query_params={"hnsw.ef_search": ef},
        k=10, concurrency=1, recall=Recall(mean=0.95, p5=0.9, min=0.8), qps=100.0,
        latency_ms=LAT, operations=100, errors=0, duration_s=1.0, warmup_s=0.1, valid=True,
        samples=[_sample(i, h) for i, h in enumerate(hosts)],
    )  # fmt: skip


def _load(clients: int, hosts: list[HostLoad | None]) -> LoadPoint:
    return LoadPoint(
        engine="python", index="hnsw(m=16,ef_construction=64)", query_params={},
        strategy="direct", pool={}, clients=clients, mode="closed", target_rate=None,
        arrival=None, think_time_ms=0.0, qps=100.0, operations=100, errors=0, dropped=0,
        duration_s=1.0, warmup_s=0.1, latency_ms=LAT,
        samples=[_sample(i, h) for i, h in enumerate(hosts)],
    )  # fmt: skip


def _results(runs: list[SweepPoint], loads: list[LoadPoint]) -> Results:
    results = results_for()
    results.runs, results.load_points = runs, loads
    return results


def _text(results: Results) -> str:
    return "\n".join(str(getattr(b, "text", "")) + str(getattr(b, "items", "")) for b in
                     validity_section(results))  # fmt: skip


def test_thresholds() -> None:
    assert under_foreign_load(_host(FOREIGN_CORES_FLAG))
    assert not under_foreign_load(_host(FOREIGN_CORES_FLAG - 0.01))
    assert not under_foreign_load(_host(None))  # unknown server CPU: not flagged on busy cores
    assert under_foreign_load(_host(0.0, steal=2 * STEAL_SHARE_FLAG))  # 5% of 2 cores = 0.1


def test_flagged_windows_name_the_point_and_the_amount() -> None:
    results = _results(
        [_sweep(40, [_host(1.4), _host(0.1)]), _sweep(80, [_host(0.0)])],
        [_load(4, [_host(0.0, steal=0.3)])],
    )
    lines, summary = host_load_validity(results)
    assert summary == (
        " 2 of 4 measured windows ran under foreign load (≥ 0.5 core of other work beyond "
        "this benchmark's client and server, or steal ≥ 5% of the CPU time): the machine was "
        "shared, so their throughput and latency may be worse and noisier than it gives alone."
    )
    assert lines == [
        "hnsw(m=16,ef_construction=64) with hnsw.ef_search=40: foreign load in 1 of 2 windows "
        "— 1.4 cores of other work on average; 1-minute load average 1.2 → 1.9 on 2 cores",
        "Load direct at 4 clients: foreign load in its window — 0 cores of other work on "
        "average, steal 15% of the CPU time; 1-minute load average 1.2 → 1.9 on 2 cores",
    ]
    text = _text(results)
    assert "ef_search=40: foreign load in 1 of 2 windows" in text
    assert "2 of 4 measured windows ran under foreign load" in text


def test_a_quiet_run_says_so_in_one_line() -> None:
    results = _results([_sweep(40, [_host(0.2)])], [_load(1, [_host(0.0)])])
    assert host_load_validity(results) == (
        [],
        " No measured window ran under foreign load (≥ 0.5 core of other work beyond this "
        "benchmark's client and server, or steal ≥ 5% of the CPU time).",
    )
    blocks = validity_section(results)
    assert len(blocks) == 2  # heading and one paragraph: nothing to list
    assert "No measured window ran under foreign load" in _text(results)


def test_results_without_host_load_render_as_before() -> None:
    results = _results([_sweep(40, [None])], [_load(1, [None])])
    assert host_load_validity(results) == ([], "")
    assert "foreign load" not in _text(results)
