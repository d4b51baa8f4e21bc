"""Host load around a measured window, from hand-made CPU counter readings (the deltas
psutil reads from /proc/stat)."""

from __future__ import annotations

import pytest

from pgvbench.instrument.host import CpuReading, host_load, merge_host_loads
from pgvbench.results import HostLoad, Sample


def _reading(at: float, busy: float, steal: float | None = 0.0, load: float = 1.0) -> CpuReading:
    return CpuReading(at=at, busy_s=busy, steal_s=steal, loadavg_1m=load)


def test_foreign_load_is_busy_cores_beyond_client_and_server() -> None:
    # 4 s window; the host's CPUs were busy 6 CPU-seconds: 1.5 cores
    load = host_load(
        _reading(10.0, 100.0, steal=5.0, load=0.8),
        _reading(14.0, 106.0, steal=5.4, load=1.6),
        client_cores=0.2,
        server_cores=0.9,
        cpu_count=2,
    )
    assert load is not None
    assert load.busy_cores == pytest.approx(1.5)
    assert load.steal_cores == pytest.approx(0.1)
    assert load.foreign_cores == pytest.approx(0.4)
    assert (load.loadavg_start, load.loadavg_end) == (0.8, 1.6)
    assert (load.client_cores, load.server_cores, load.cpu_count) == (0.2, 0.9, 2)


def test_foreign_load_is_clamped_at_zero() -> None:
    # the three figures come from different counters: a negative remainder is rounding
    load = host_load(
        _reading(0.0, 0.0), _reading(2.0, 2.0), client_cores=0.3, server_cores=0.8, cpu_count=2
    )
    assert load is not None and load.foreign_cores == 0.0


def test_without_the_server_cpu_foreign_load_is_unknown() -> None:
    # an external server may share the host: its work must not read as foreign load
    load = host_load(
        _reading(0.0, 0.0), _reading(1.0, 1.8), client_cores=0.1, server_cores=None, cpu_count=2
    )
    assert load is not None
    assert load.busy_cores == pytest.approx(1.8)
    assert load.foreign_cores is None


def test_without_steal_counters_steal_is_unknown() -> None:
    load = host_load(
        _reading(0.0, 0.0, steal=None),
        _reading(1.0, 1.0, steal=None),
        client_cores=0.1,
        server_cores=0.5,
        cpu_count=2,
    )
    assert load is not None and load.steal_cores is None
    assert load.foreign_cores == pytest.approx(0.4)


def test_an_empty_window_has_no_host_load() -> None:
    same = _reading(3.0, 9.0)
    assert host_load(same, same, client_cores=0.1, server_cores=0.1) is None


def test_windows_merge_weighted_by_length() -> None:
    a = HostLoad(loadavg_start=0.5, loadavg_end=0.7, busy_cores=1.0, foreign_cores=0.0)
    b = HostLoad(loadavg_start=0.9, loadavg_end=1.2, busy_cores=2.0, foreign_cores=0.9)
    merged = merge_host_loads([a, None, b], [1.0, 5.0, 2.0])
    assert merged is not None
    assert merged.busy_cores == pytest.approx(5.0 / 3.0, abs=1e-3)
    assert merged.foreign_cores == pytest.approx(0.6)
    assert (merged.loadavg_start, merged.loadavg_end) == (0.5, 1.2)
    assert merged.steal_cores is None
    assert merge_host_loads([None], [1.0]) is None


def test_a_sample_without_host_load_still_reads() -> None:
    from pgvbench.results import _build

    old = {"repeat": 0, "sequence": 0, "qps": 1.0, "operations": 1, "errors": 0,
           "duration_s": 1.0, "latency_ms": None}  # fmt: skip
    assert _build(Sample, old).host is None
    new = _build(Sample, {**old, "host": {"loadavg_start": 1, "loadavg_end": 2, "busy_cores": 1}})
    assert new.host is not None and new.host.busy_cores == 1
