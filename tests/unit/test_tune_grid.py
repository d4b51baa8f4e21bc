"""The full grid's record (bench/tune_vs_grid.py's reference): its JSON round trip and the
best point meeting a target, with the tuner's own bounds."""

from __future__ import annotations

import json

import pytest

from pgvbench.studies.tune.grid import GridBuild, GridPoint, GridResult, best_feasible, feasible
from pgvbench.studies.tune.records import Config, KnobProbe, Latency
from pgvbench.studies.tune.spec import TuneSpec

MB = 2**20


def _point(value: int, low: float, qps: float, p99: float) -> GridPoint:
    return GridPoint(
        probe=KnobProbe(value=value, recall_mean=low + 0.01, recall_low=low, seconds=0.1),
        latency=Latency(qps=qps, p50_ms=p99 / 3, p95_ms=p99 * 0.8, p99_ms=p99, operations=100),
    )


def _build(m: int, points: list[GridPoint], *, index_mb: float = 10.0,
           reason: str | None = None) -> GridBuild:  # fmt: skip
    return GridBuild(
        config=Config(kind="hnsw", params={"m": m, "ef_construction": 64}),
        build_seconds=None if reason else 3.0,
        index_bytes=int(index_mb * MB),
        table_bytes=int(20 * MB),
        reason=reason,
        seconds=10.0,
        points=tuple(points),
    )


def _grid(*builds: GridBuild) -> GridResult:
    return GridResult(space={"m": [8, 16]}, rows=1000, dim=8, metric="l2", k=10, clients=2,
                      rate=None, confidence=0.95, warmup_s=0.1, measure_s=0.5,
                      builds=builds, wall_s=123.4, key="abc")  # fmt: skip


def test_round_trip_through_json() -> None:
    grid = _grid(
        _build(8, [_point(10, 0.80, 900.0, 2.0), _point(20, 0.96, 700.0, 3.0)]),
        _build(16, [], reason="build_failed"),
    )
    again = GridResult.from_dict(json.loads(json.dumps(grid.to_dict())))
    assert again == grid
    assert again.points == 2


def test_an_unknown_version_is_refused() -> None:
    data = _grid().to_dict()
    data["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        GridResult.from_dict(data)


def test_best_feasible_meets_recall_bound_and_latency_bound() -> None:
    fast_low_recall = _point(10, 0.90, 2000.0, 1.0)
    ok_slow = _point(40, 0.96, 800.0, 4.0)
    ok_fast = _point(20, 0.951, 1200.0, 6.0)  # over a 5 ms p99 bound
    grid = _grid(_build(8, [fast_low_recall, ok_fast]), _build(16, [ok_slow]))
    best = best_feasible(grid, TuneSpec(recall=0.95))
    assert best is not None and best.point is ok_fast and best.knob_value == 20
    best = best_feasible(grid, TuneSpec(recall=0.95, latency_ms=5.0))
    assert best is not None and best.point is ok_slow and best.config.params["m"] == 16
    assert best_feasible(grid, TuneSpec(recall=0.99)) is None


def test_budgets_and_objectives() -> None:
    small = _build(8, [_point(40, 0.96, 800.0, 4.0)], index_mb=5.0)
    big = _build(16, [_point(20, 0.97, 1500.0, 2.0)], index_mb=50.0)
    grid = _grid(small, big)
    assert not feasible(big, big.points[0], TuneSpec(max_index_mb=20.0))
    best = best_feasible(grid, TuneSpec(max_index_mb=20.0))
    assert best is not None and best.build is small
    best = best_feasible(grid, TuneSpec(objective="memory"))
    assert best is not None and best.build is small
    best = best_feasible(grid, TuneSpec(objective="p99"))
    assert best is not None and best.build is big
