"""The full grid over a tuner's space: every build of ``grid_configs(space)`` measured at
every value of its knob ladder, with the tuner's own Candidate (the same build, recall
and timed-window code), so the grid and the tuner answer the same question alike.

It is the reference bench/tune_vs_grid.py holds the tuner against: the best QPS a
grid finds among points meeting the target, and the wall time it took to find it.
Figures only, no prose.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._fields import float_or, int_or, objects, opt_float, opt_text, text
from .measure import Bench, Candidate, TuneTables
from .records import Config, KnobProbe, Latency
from .space import Space, grid_configs
from .spec import TuneSpec

VERSION = 1
MB = 2**20


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridPoint:
    """One (build, knob value): its recall over the recall queries, one timed window."""

    probe: KnobProbe
    latency: Latency

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.probe.to_dict(), "latency": self.latency.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridPoint:
        return cls(
            probe=KnobProbe.from_dict(data.get("probe") or {}),
            latency=Latency.from_dict(data.get("latency") or {}),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridBuild:
    """One build of the grid and every point measured on it (none when it failed)."""

    config: Config
    build_seconds: float | None  # None: the build failed
    index_bytes: int
    table_bytes: int
    reason: str | None  # build_failed | build_over: no index, no points
    seconds: float  # wall time of this build and all its points
    points: tuple[GridPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "build_seconds": self.build_seconds,
            "index_bytes": self.index_bytes,
            "table_bytes": self.table_bytes,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "points": [p.to_dict() for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridBuild:
        return cls(
            config=Config.from_dict(data.get("config") or {}),
            build_seconds=opt_float(data, "build_seconds"),
            index_bytes=int_or(data, "index_bytes", 0),
            table_bytes=int_or(data, "table_bytes", 0),
            reason=opt_text(data, "reason"),
            seconds=float_or(data, "seconds", 0.0),
            points=tuple(GridPoint.from_dict(p) for p in objects(data, "points")),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridResult:
    """The whole grid: every build, its points, and the grid's wall time."""

    space: Mapping[str, Any]  # Space.to_dict()
    rows: int
    dim: int
    metric: str
    k: int
    clients: int
    rate: float | None
    confidence: float  # of every point's recall lower bound
    warmup_s: float
    measure_s: float
    builds: tuple[GridBuild, ...]
    wall_s: float  # the whole grid, builds and points, start to end
    key: str = ""  # what produced it (bench/tune_vs_grid.py's cache key)

    @property
    def points(self) -> int:
        return sum(len(b.points) for b in self.builds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "space": dict(self.space),
            "rows": self.rows,
            "dim": self.dim,
            "metric": self.metric,
            "k": self.k,
            "clients": self.clients,
            "rate": self.rate,
            "confidence": self.confidence,
            "warmup_s": self.warmup_s,
            "measure_s": self.measure_s,
            "builds": [b.to_dict() for b in self.builds],
            "wall_s": round(self.wall_s, 3),
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridResult:
        version = int_or(data, "version", VERSION)
        if version != VERSION:
            raise ValueError(f"grid result version {version}; this pgvbench reads {VERSION}")
        space = data.get("space")
        return cls(
            space=dict(space) if isinstance(space, Mapping) else {},
            rows=int_or(data, "rows", 0),
            dim=int_or(data, "dim", 0),
            metric=text(data, "metric", "l2"),
            k=int_or(data, "k", 10),
            clients=int_or(data, "clients", 1),
            rate=opt_float(data, "rate"),
            confidence=float_or(data, "confidence", 0.95),
            warmup_s=float_or(data, "warmup_s", 0.0),
            measure_s=float_or(data, "measure_s", 0.0),
            builds=tuple(GridBuild.from_dict(b) for b in objects(data, "builds")),
            wall_s=float_or(data, "wall_s", 0.0),
            key=text(data, "key"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridBest:
    """The grid's best point meeting a target."""

    build: GridBuild
    point: GridPoint

    @property
    def config(self) -> Config:
        return self.build.config

    @property
    def knob_value(self) -> int:
        return self.point.probe.value


def run_grid(
    bench: Bench,
    tables: TuneTables,
    space: Space,
    *,
    on_step: Callable[[str], None] | None = None,
    key: str = "",
) -> GridResult:
    """Build every configuration of ``space`` in turn and measure it at every value of
    its knob ladder (recall, then one timed window), dropping each index after."""
    started = time.perf_counter()
    configs = grid_configs(space)
    builds: list[GridBuild] = []
    for i, config in enumerate(configs):
        if on_step is not None:
            on_step(f"grid build {i + 1}/{len(configs)}: {config.label}")
        builds.append(_measure_build(bench, tables, space, config, on_step))
    t = bench.target
    return GridResult(
        space=space.to_dict(),
        rows=bench.rows,
        dim=bench.dim,
        metric=str(bench.metric),
        k=bench.k,
        clients=t.clients,
        rate=t.rate,
        confidence=t.confidence,
        warmup_s=bench.warmup_s,
        measure_s=bench.measure_s,
        builds=tuple(builds),
        wall_s=time.perf_counter() - started,
        key=key,
    )


def _measure_build(
    bench: Bench,
    tables: TuneTables,
    space: Space,
    config: Config,
    on_step: Callable[[str], None] | None,
) -> GridBuild:
    started = time.perf_counter()
    with Candidate(bench, tables, config, on_step=on_step) as candidate:
        built = candidate.built
        points = (
            tuple(
                GridPoint(probe=candidate.recall(value), latency=candidate.latency(value))
                for value in space.knob_ladder(config)
            )
            if built.exists
            else ()
        )
    return GridBuild(
        config=config,
        build_seconds=built.seconds if built.exists else None,
        index_bytes=built.index_bytes,
        table_bytes=built.table_bytes,
        reason=built.reason,
        seconds=time.perf_counter() - started,
        points=points,
    )


def feasible(build: GridBuild, point: GridPoint, target: TuneSpec) -> bool:
    """Does ``point`` meet the target's bounds, as the tuner checks them: the recall
    lower bound, the latency percentile bound, the index / build / memory budgets?"""
    if build.reason is not None or point.probe.recall_low < target.recall:
        return False
    if target.latency_ms is not None and point.latency.percentile(target.latency) > (
        target.latency_ms
    ):
        return False
    for limit, used in (
        (target.max_index_mb, build.index_bytes / MB),
        (target.max_build_seconds, build.build_seconds or 0.0),
        (target.max_memory_mb, (build.index_bytes + build.table_bytes) / MB),
    ):
        if limit is not None and used > limit:
            return False
    return True


def best_feasible(grid: GridResult, target: TuneSpec) -> GridBest | None:
    """The grid's best point on the target's objective among points meeting its bounds
    (QPS: highest; p99: lowest percentile; memory: smallest index + heap, then QPS)."""
    chosen: GridBest | None = None
    for build in grid.builds:
        for point in build.points:
            if feasible(build, point, target) and (
                chosen is None or _better(target, build, point, chosen)
            ):
                chosen = GridBest(build=build, point=point)
    return chosen


def _better(target: TuneSpec, build: GridBuild, point: GridPoint, than: GridBest) -> bool:
    if target.objective == "p99":
        stat = target.latency
        return point.latency.percentile(stat) < than.point.latency.percentile(stat)
    if target.objective == "memory":
        memory = build.index_bytes + build.table_bytes
        other = than.build.index_bytes + than.build.table_bytes
        if memory != other:
            return memory < other
    return point.latency.qps > than.point.latency.qps
