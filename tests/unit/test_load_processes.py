"""[load] processes: the spec key, how clients and rate are split, exact merging."""

from __future__ import annotations

import copy
import os
import pickle
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pgvbench.engine.concurrent import merge_concurrent, pack_outcome, unpack_outcome
from pgvbench.engine.histogram import LatencyHistogram
from pgvbench.engine.multiproc import split_shape
from pgvbench.engine.operations import SqlOperation, encode_int4
from pgvbench.engine.outcome import EngineOutcome, KindStats, per_second_series
from pgvbench.engine.threaded import LoadShape
from pgvbench.errors import SpecError
from pgvbench.spec.parse import load_spec
from support import write_toml

SPEC: dict[str, Any] = {
    "experiment": {"name": "processes", "seed": 1},
    "dataset": {"source": "synthetic", "n": 1000, "dim": 8, "metric": "l2", "queries": 200},
    "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10, 40]}],
    "load": {"clients": [4]},
}


def _spec(tmp_path: Path, **load: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["load"].update(load)
    return load_spec(write_toml(tmp_path / "spec.toml", data))


def _error(tmp_path: Path, **load: Any) -> str:
    with pytest.raises(SpecError) as info:
        _spec(tmp_path, **load)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'spec.toml'}: [load] processes ")
    return message


def test_processes_defaults_to_one_and_is_not_recorded_then(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert spec.load is not None and spec.load.processes == 1
    assert "processes" not in spec.to_dict()["load"]  # older results compare equal
    two = _spec(tmp_path, processes=2)
    assert two.load is not None and two.load.processes == 2
    assert two.to_dict()["load"]["processes"] == 2


@pytest.mark.parametrize("value", [0, -1, (os.cpu_count() or 1) * 4 + 1, "2", 1.5, True])
def test_processes_out_of_range_names_the_allowed_values(tmp_path: Path, value: Any) -> None:
    most = (os.cpu_count() or 1) * 4
    assert f"must be an integer from 1 to {most}" in _error(tmp_path, processes=value)


def test_processes_refuse_a_psycopg_pool(tmp_path: Path) -> None:
    message = _error(tmp_path, processes=2, pooling=[{"strategy": "psycopg_pool"}])
    assert "psycopg_pool" in message and "direct, connect_per_op and pgbouncer" in message


def test_clients_rate_and_sequences_are_split() -> None:
    shape = LoadShape(clients=5, mode="open", rate=1000.0, max_inflight=20, seed=3, first_seq=7)
    parts = split_shape(shape, 2)
    assert [p.clients for p in parts] == [3, 2]
    assert sum(p.rate for p in parts) == pytest.approx(1000.0)
    assert [p.rate for p in parts] == pytest.approx([600.0, 400.0])  # the same per client
    assert [p.max_inflight for p in parts] == [12, 8]
    assert [p.seed for p in parts] == [3, 4]  # independent arrival streams
    assert parts[1].first_seq - parts[0].first_seq == 500_000_000  # disjoint sequences
    assert {p.warmup_s for p in parts} == {shape.warmup_s}
    assert {p.duration_s for p in parts} == {shape.duration_s}
    # never a worker without a client
    assert [p.clients for p in split_shape(LoadShape(clients=2), 4)] == [1, 1]


def _outcome(latencies_ns: np.ndarray, errors: int = 0) -> EngineOutcome:
    hist = LatencyHistogram()
    hist.record_many(latencies_ns)
    ends = np.sort(np.random.default_rng(len(latencies_ns)).integers(0, 2e9, len(latencies_ns)))
    out = EngineOutcome(
        latency=hist,
        operations=len(latencies_ns),
        errors=errors,
        duration_s=2.0,
        warmup_s=0.5,
        timeseries=per_second_series(ends, latencies_ns, 0, 2.0),
        client_cpu_cores=0.25,
        per_kind={"q": KindStats(latency=hist, operations=len(latencies_ns), errors=errors)},
    )
    if errors:
        out.error_messages["boom"] = errors
    return out


def test_merging_is_exact_not_an_average_of_percentiles() -> None:
    rng = np.random.default_rng(0)
    fast = rng.integers(100_000, 200_000, 9000)  # 0.1-0.2 ms
    slow = rng.integers(5_000_000, 9_000_000, 1000)  # 5-9 ms
    parts = [
        unpack_outcome(pack_outcome(_outcome(fast))),
        unpack_outcome(pack_outcome(_outcome(slow, errors=3))),
    ]
    merged = merge_concurrent(parts)
    reference = LatencyHistogram()
    reference.record_many(np.concatenate([fast, slow]))
    assert merged.operations == merged.latency.count == 10_000
    for pct in (50.0, 89.0, 91.0, 99.0, 99.9):
        assert merged.latency.percentile_ms(pct) == reference.percentile_ms(pct)
    assert merged.latency.encode() == reference.encode()
    assert merged.per_kind["q"].operations == 10_000 and merged.per_kind["q"].errors == 3
    assert merged.errors == 3 and merged.error_messages["boom"] == 3
    assert merged.client_cpu_cores == pytest.approx(0.5)  # the workers' sum
    assert merged.duration_s == 2.0
    assert [s.ops for s in merged.timeseries] == [
        a.ops + b.ops for a, b in zip(parts[0].timeseries, parts[1].timeseries, strict=True)
    ]


def test_a_table_operation_pickles_for_the_workers() -> None:
    op = SqlOperation(
        name="point",
        sql="SELECT $1",
        types=[23],
        params=[[encode_int4(i)] for i in range(3)],
        settings={},
    )
    again = pickle.loads(pickle.dumps(op))
    assert again.params(4) == op.params(4) == [encode_int4(1)]


def test_agent_workloads_refuse_processes(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "workloads" / "agent_memory.toml"
    data = tomllib.loads(shipped.read_text())
    data["load"]["processes"] = 2
    data["load"]["pooling"] = [{"strategy": "direct"}]
    path = write_toml(tmp_path / "agents.toml", data)
    with pytest.raises(SpecError, match=r"\[load\] processes = 2 is not available for agent"):
        load_spec(path)
