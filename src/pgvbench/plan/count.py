"""Counting a spec's work and printing it (``pgvbench validate``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..spec.model import ExperimentSpec, IndexSpec, LoadSpec
from ..spec.parse import load_spec
from ..studies.base import DataShape, PlanItem, Study
from ..studies.registry import studies_for, studies_in
from .models import (
    INDEX_QUERY_S,
    LOAD_VALUES_PER_S,
    LONG_RUN_S,
    MANY_BUILDS,
    POINT_OVERHEAD_S,
    RESTART_S,
    SCAN_VALUES_PER_S,
    TRUTH_FLOPS,
    build_seconds,
    load_plan,
    load_point_seconds,
    versus_exact_seconds,
)
from .shape import DatasetShape, dataset_shape


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunPlan:
    """Everything a spec will do, counted; ``estimated_seconds`` is a rough estimate."""

    source: str  # the spec file
    kind: str  # "vector" | "agents"
    dataset: DatasetShape | None
    server_configs: int  # [[server.sweep]] entries (1 without a sweep)
    repeats: int
    index_builds: int  # every CREATE INDEX: [[index]] builds x configs, plus the studies'
    sweep_points: int  # distinct sweep points (x server configurations)
    load_points: int  # distinct load points (x server configurations)
    measurements: int  # timed windows: sweep and load points x repeats, study points
    studies: tuple[str, ...]
    items: tuple[PlanItem, ...]
    estimated_seconds: float
    warnings: tuple[str, ...]


def validate(path: Path, *, dsn: str | None = None) -> RunPlan:
    """Parse a spec, check its dataset files' headers against it, and count its work.

    Raises the same errors a run would (SpecError, DatasetError), before any work starts.
    ``dsn``: a table source's table is checked on that server (catalog only).
    """
    spec = load_spec(path)
    return plan_run(spec, dataset_shape(spec, dsn=dsn))


def plan_run(spec: ExperimentSpec, shape: DatasetShape | None) -> RunPlan:
    """Count the work of ``spec`` on a dataset of ``shape`` and estimate its duration."""
    counter = _Counter(spec, shape)
    if spec.kind == "agents":
        counter.agents()
    else:
        counter.vector()
    return counter.finish()


def format_plan(plan: RunPlan) -> list[str]:
    """The plan as lines for stdout: a summary line, then one line per kind of work."""
    head = (
        f"{plan.source}: ok ({_n(plan.index_builds, 'index build')}, "
        f"{_n(plan.sweep_points, 'sweep point')}, {_n(plan.load_points, 'load point')})"
    )
    lines = [head]
    if plan.dataset is not None:
        extra = f", {plan.dataset.queries:,} queries" if plan.dataset.queries else ""
        lines.append(f"  dataset: {plan.dataset.description}{extra}")
    if plan.server_configs > 1:
        lines.append(f"  server configurations: {plan.server_configs} ([[server.sweep]])")
    if plan.studies:
        lines.append(f"  studies: {', '.join(plan.studies)}")
    width = max((len(item.what) for item in plan.items), default=0)
    for item in plan.items:
        lines.append(f"  {item.what:<{width}}  {item.count:>6,}  ~{_duration(item.seconds)}")
    lines.append(
        f"  estimated time: about {_duration(plan.estimated_seconds)} (rough: the spec's "
        "measured windows, plus builds modelled on HNSW m=16, ef_construction=64 over "
        "100k x 128 vectors = 18.6 s on 2 cores)"
    )
    return lines


class _Counter:
    """Accumulates the plan's items; one method per experiment kind."""

    def __init__(self, spec: ExperimentSpec, shape: DatasetShape | None) -> None:
        self.spec = spec
        self.shape = shape
        self.rows = shape.rows if shape else 0
        self.dim = shape.dim if shape else 0
        self.configs = max(1, len(spec.server.sweep))
        self.items: list[PlanItem] = []
        self.builds = 0
        self.sweep_points = 0
        self.load_points = 0
        self.measurements = 0
        self.studies: list[str] = []

    def add(self, what: str, count: int, seconds: float) -> None:
        if count > 0:
            self.items.append(PlanItem(what=what, count=count, seconds=seconds))

    def _query_s(self, index: IndexSpec | None) -> float:
        """One top-k query: through an index, or an exact scan of every row."""
        if index is None or index.kind == "none":
            return self.rows * self.dim / SCAN_VALUES_PER_S
        return INDEX_QUERY_S

    # ------------------------------------------------------------------ vector experiments

    def vector(self) -> None:
        spec, q, repeats = self.spec, self.spec.query, self.spec.repeats
        recall_n = q.recall_queries
        setup = self.rows * self.dim / LOAD_VALUES_PER_S
        setup += recall_n * self.rows * self.dim / TRUTH_FLOPS
        self.add("data, load and ground truth", 1, setup)
        if self.configs > 1:
            self.add("server configurations applied", self.configs, self.configs * RESTART_S)

        built = [ix for ix in spec.indexes if ix.kind != "none"]
        build_s = sum(build_seconds(ix, self.rows, self.dim) for ix in built)
        self.builds += len(built) * self.configs
        self.add("index builds", len(built) * self.configs, build_s * self.configs)

        points = 0
        sweep_s = 0.0
        for ix in spec.indexes:
            values = max(1, len(ix.sweep_values))
            points += values
            window = q.warmup_seconds + q.measure_seconds
            recall_pass = recall_n * self._query_s(ix)
            sweep_s += values * (recall_pass + repeats * (window + POINT_OVERHEAD_S))
        self.sweep_points = points * self.configs
        self.measurements += self.sweep_points * repeats
        self.add(
            f"sweep points x {_n(repeats, 'repeat')}",
            self.sweep_points,
            sweep_s * self.configs,
        )
        if built and any(ix.kind == "none" for ix in spec.indexes):
            compared = len(built) * self.configs
            self.measurements += compared
            self.add(
                "best point vs exact scan, interleaved",
                compared,
                compared * versus_exact_seconds(q.measure_seconds),
            )
        extra = (q.rebuilds - 1) * self.configs  # [query] rebuilds: build, recall, one window
        if extra and built:
            window = q.warmup_seconds + q.measure_seconds + POINT_OVERHEAD_S
            per = sum(
                max(1, len(ix.sweep_values)) * (recall_n * self._query_s(ix) + window)
                for ix in built
            )
            self.builds += len(built) * extra
            self.measurements += sum(max(1, len(ix.sweep_values)) for ix in built) * extra
            self.add("rebuilds (recall and one window per point)", len(built) * extra,
                     extra * (build_s + per))  # fmt: skip
        if spec.load is not None:
            load = spec.load
            n = load_plan(load)
            self.load_points = n * self.configs
            self.measurements += self.load_points * repeats
            window = load_point_seconds(load)
            self.add(
                f"load points x {_n(repeats, 'repeat')}",
                self.load_points,
                self.load_points * repeats * window,
            )
        self._vector_studies()

    def _vector_studies(self) -> None:
        spec = self.spec
        shape = self._shape()
        shared_index_counted = False
        for study in studies_in(spec.kind, "after"):
            study_spec = spec.study_specs.get(study.name)
            if study_spec is None:
                continue
            if study.needs_index and not shared_index_counted:
                shared_index_counted = True  # one build serves every study that needs it
                index = next((ix for ix in spec.indexes if ix.kind != "none"), None)
                self.builds += 1
                self.add(
                    "index build for the cache studies",
                    1,
                    build_seconds(index, self.rows, self.dim) if index else 0.0,
                )
            self._study(study, study_spec, shape)
        if not spec.collectors:
            self.studies.append("collectors off")

    def _study(self, study: Study[Any, Any], study_spec: Any, shape: DataShape) -> None:
        self.studies.append(study.name)
        for item in study.estimate(study_spec, self.spec, shape):
            self.builds += item.builds
            self.measurements += item.measurements
            if item.count > 0:
                self.items.append(item)

    def _shape(self) -> DataShape:
        return DataShape(
            rows=self.rows,
            dim=self.dim,
            queries=self.shape.queries if self.shape else 0,
            rows_from="the dataset",
            dim_from="the dataset",
            queries_from="the dataset",
        )

    # ------------------------------------------------------------------ agent experiments

    def agents(self) -> None:
        spec = self.spec
        ag = spec.agents
        assert ag is not None
        repeats = spec.repeats
        data = ag.data
        index = spec.indexes[0]
        if data is not None:
            rows = data.memories + data.chunks
            other = data.agents + data.tasks * (1 + data.messages_per_task)
            self.add(
                "data generation and load",
                1,
                rows * data.dim / LOAD_VALUES_PER_S + other / 50_000,
            )
            if index.kind != "none":
                seconds = build_seconds(index, data.memories, data.dim) + build_seconds(
                    index, data.chunks, data.dim
                )
                self.builds += 2
                self.add("index builds (memories, chunks)", 2, seconds)
        if ag.workload is not None or ag.operations:
            self.studies.append("workload")
            load = spec.load or LoadSpec(index=index.label, query_params={}, clients=(1, 4))
            n = load_plan(load, custom_operations=True)
            self.load_points = n
            self.measurements += n * repeats
            window = load_point_seconds(load)
            self.add(f"load points x {_n(repeats, 'repeat')}", n, n * repeats * window)
        if data is not None:  # the agent studies measure the generated platform
            shape = self._shape()
            for study in studies_for(spec.kind):
                study_spec = spec.study_specs.get(study.name)
                if study_spec is not None:
                    self._study(study, study_spec, shape)

    # ------------------------------------------------------------------ result

    def finish(self) -> RunPlan:
        total = sum(item.seconds for item in self.items)
        warnings: list[str] = []
        if total > LONG_RUN_S:
            warnings.append(
                f"{self.spec.source_path or '<spec>'}: this spec will run for about "
                f"{_duration(total)} (a rough estimate; the longest part: "
                f"{_longest(self.items)}); lower the repeats, sweep values or durations for "
                "a quicker run"
            )
        if self.builds > MANY_BUILDS:
            warnings.append(
                f"{self.spec.source_path or '<spec>'}: this spec builds {self.builds} indexes "
                f"(more than {MANY_BUILDS}): every [[index]] is built once per server "
                f"configuration ({self.configs}), plus the studies' builds; check that this "
                "is intended"
            )
        return RunPlan(
            source=str(self.spec.source_path or "<spec>"),
            kind=self.spec.kind,
            dataset=self.shape,
            server_configs=self.configs,
            repeats=self.spec.repeats,
            index_builds=self.builds,
            sweep_points=self.sweep_points,
            load_points=self.load_points,
            measurements=self.measurements,
            studies=tuple(self.studies),
            items=tuple(self.items),
            estimated_seconds=total,
            warnings=tuple(warnings),
        )


def _longest(items: Sequence[PlanItem]) -> str:
    top = max(items, key=lambda item: item.seconds)
    return f"{top.count:,} {top.what}, ~{_duration(top.seconds)}"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "1 s" if seconds > 0 else "0 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
