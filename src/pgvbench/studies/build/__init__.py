"""Index-build tuning (``[build_tuning]``): build time vs maintenance_work_mem and
parallel maintenance workers, on one of the spec's [[index]] builds.

spec.py parses the table (sizes.py: PostgreSQL memory sizes), measure.py builds and drops
the index once per combination, records.py holds the result, advice.py writes its notes
and the advice, report.py and plots.py the report section and its figure.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import psycopg

from ...errors import RunFailed
from ...metrics import Metric
from ...plan.models import build_seconds
from ...report.document import Block, Image
from ...results import Results, TuningSection
from ...server.connection import connect
from ...spec.model import ExperimentSpec, IndexSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import report
from .advice import advice, graph_bytes_estimate, recommend_build, study_notes
from .measure import measure, notice_tuples
from .records import BuildTuningPoint, BuildTuningStudy
from .sizes import format_size, memory_worker_cap, parse_size
from .spec import BuildTuningSpec, parse_build_tuning, tuned_index

__all__ = [
    "STUDY",
    "BuildTuning",
    "BuildTuningPoint",
    "BuildTuningSpec",
    "BuildTuningStudy",
    "build_tuning_blocks",
    "build_tuning_figures",
    "format_size",
    "graph_bytes_estimate",
    "measure_build_tuning",
    "memory_worker_cap",
    "notice_tuples",
    "parse_build_tuning",
    "parse_size",
    "recommend_build",
    "study_notes",
]


def measure_build_tuning(
    *,
    dsn: str,
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    index_spec: IndexSpec,
    metric: Metric,
    spec: BuildTuningSpec,
    on_point: Callable[[BuildTuningPoint], None] | None = None,
) -> BuildTuningStudy:
    """Measure every combination of ``spec`` (measure.measure) and add the notes
    results.json keeps with the record."""
    study = measure(
        dsn=dsn, conn=conn, schema=schema, table=table, index_spec=index_spec,
        metric=metric, spec=spec, on_point=on_point,
    )  # fmt: skip
    return dataclasses.replace(study, notes=tuple(study_notes(study)))


class BuildTuning(Study[BuildTuningSpec, BuildTuningStudy]):
    """One index build per (maintenance_work_mem, max_parallel_maintenance_workers)."""

    name: ClassVar[str] = "build_tuning"
    title: ClassVar[str] = "Index build tuning"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"
    needs_index: ClassVar[bool] = False

    def parse(self, table: Table, ctx: SpecContext) -> BuildTuningSpec:
        return parse_build_tuning(table, ctx.indexes)

    def estimate(
        self, spec: BuildTuningSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        index = tuned_index(spec, experiment.indexes)
        combos = spec.combinations()
        one = build_seconds(index, shape.rows, shape.dim) if index is not None else 0.0
        # parallel workers shorten a build, less than linearly
        seconds = sum(one / (1 + 0.7 * workers) for _, workers in combos)
        return [
            PlanItem(
                what="build tuning builds", count=len(combos), seconds=seconds, builds=len(combos)
            )
        ]

    def progress_label(self, spec: BuildTuningSpec) -> str:
        of = f" of {spec.index}" if spec.index else ""  # "": the first hnsw build
        return f"build tuning: {len(spec.combinations())} builds{of}"

    def run(self, ctx: StudyContext, spec: BuildTuningSpec) -> BuildTuningStudy:
        vectors = ctx.vectors
        if vectors is None:
            raise RunFailed("build tuning: it needs a vector experiment's loaded table")
        index_spec = tuned_index(spec, ctx.spec.indexes)
        if index_spec is None:
            raise RunFailed("build tuning needs an index to build; 'none' is an exact scan")
        dataset = vectors.prepared.dataset
        with connect(ctx.target.dsn) as conn:
            study = measure_build_tuning(
                dsn=ctx.target.dsn,
                conn=conn,
                schema=ctx.spec.schema,
                table=vectors.table,
                index_spec=index_spec,
                metric=dataset.metric,
                spec=spec,
            )
        # the advice is for the dataset's rows on this host's cores
        return dataclasses.replace(study, dataset_rows=dataset.n, cores=os.cpu_count() or 1)

    def store(self, results: Results, result: BuildTuningStudy) -> None:
        if results.tuning is None:
            results.tuning = TuningSection()
        results.tuning.build_tuning = result.to_dict()

    def load(self, results: Results) -> BuildTuningStudy | None:
        data = results.tuning.build_tuning if results.tuning is not None else None
        if not isinstance(data, dict):
            return None
        study = BuildTuningStudy.from_dict(data)
        if study.cores is None:
            # older records: the run's host, as the report read it before the record kept it
            study = dataclasses.replace(study, cores=max(1, results.environment.host.cores or 1))
        return study

    def advice(self, result: BuildTuningStudy) -> list[Recommendation]:
        return advice(result)

    def figures(self, result: BuildTuningStudy, out_dir: Path) -> list[Image]:
        from .plots import plot_build_tuning  # matplotlib: only when drawing

        path = plot_build_tuning(result, out_dir / report.FIGURE_NAME)
        return [Image(path.name, report.FIGURE_ALT)] if path is not None else []

    def report(
        self, result: BuildTuningStudy, images: Sequence[Image], results: Results
    ) -> list[Block]:
        return report.blocks(result, images)


STUDY = BuildTuning()


def build_tuning_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the study's figure for a results file; [] when it has no study to draw."""
    study = STUDY.load(results)
    return [] if study is None else STUDY.figures(study, out_dir)


def build_tuning_blocks(results: Results, images: Sequence[Image] = ()) -> list[Block]:
    """The study's report section for a results file; [] when it has none."""
    study = STUDY.load(results)
    return [] if study is None else STUDY.report(study, images, results)
