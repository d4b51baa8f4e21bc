"""Quantized HNSW indexes (``[quantization]``) against full precision: size, build
time, recall and single-client speed of halfvec and binary (with and without re-rank).

spec.py parses the table and holds its limits, sql.py writes each variant's index and
query, measure.py builds, measures and drops the indexes, records.py holds the result,
advice.py writes its notes and conclusions, report.py and plots.py the report section
and its figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from ...datasets.base import Dataset
from ...datasets.groundtruth import GroundTruth
from ...errors import RunFailed
from ...metrics import Metric
from ...plan.models import INDEX_QUERY_S, POINT_OVERHEAD_S, hnsw_build_seconds
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...report.document import Block, Image
from ...results import Results, TuningSection
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import report
from .advice import advice, recommendations, study_notes
from .measure import measure
from .records import QuantizationPoint, QuantizationStudy, QuantizedIndex
from .spec import VARIANTS, QuantizationSpec, check_k, dim_problem, parse_quantization
from .sql import query_sql

__all__ = [
    "STUDY",
    "VARIANTS",
    "Quantization",
    "QuantizationPoint",
    "QuantizationSpec",
    "QuantizationStudy",
    "QuantizedIndex",
    "measure_quantization",
    "parse_quantization",
    "query_sql",
    "recommendations",
]

_BUILD_COST = {"full": 1.0, "halfvec": 0.7, "binary": 0.3}  # of a full-precision build


def measure_quantization(
    *,
    dsn: str,
    schema: str,
    table: str,
    dataset: Dataset,
    metric: Metric,
    spec: QuantizationSpec,
    recall_queries: np.ndarray,
    truth: GroundTruth,
    load_queries: np.ndarray,
    measure_seconds: float,
    rule: RecallRule = DEFAULT_RULE,
) -> QuantizationStudy:
    """Measure every variant (measure.measure) and add the notes and conclusions
    results.json keeps with the record."""
    study = measure(
        dsn=dsn, schema=schema, table=table, dataset=dataset, metric=metric, spec=spec,
        recall_queries=recall_queries, truth=truth, load_queries=load_queries,
        measure_seconds=measure_seconds, rule=rule,
    )  # fmt: skip
    return dataclasses.replace(
        study, notes=tuple(study_notes(study)), recommendations=tuple(recommendations(study))
    )


class Quantization(Study[QuantizationSpec, QuantizationStudy]):
    """full vs halfvec vs binary HNSW indexes, each built, measured and dropped."""

    name: ClassVar[str] = "quantization"
    title: ClassVar[str] = "Quantized indexes"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"
    needs_index: ClassVar[bool] = False

    def parse(self, table: Table, ctx: SpecContext) -> QuantizationSpec:
        spec = parse_quantization(table)
        check_k(spec, where=ctx.where, query_k=ctx.query.k)
        return spec

    def data_problem(self, spec: QuantizationSpec, shape: DataShape) -> str | None:
        return dim_problem(spec, shape.dim, shape.dim_from)

    def estimate(
        self, spec: QuantizationSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        full = hnsw_build_seconds(shape.rows, shape.dim, spec.m, spec.ef_construction)
        builds = len(spec.variants)
        runs = sum(len(spec.overfetch) + 1 if v == "binary" else 1 for v in spec.variants)
        points = runs * len(spec.ef_search)
        query = experiment.query
        per_point = query.measure_seconds + query.recall_queries * INDEX_QUERY_S + POINT_OVERHEAD_S
        return [
            PlanItem(
                what="quantization builds",
                count=builds,
                seconds=sum(full * _BUILD_COST[v] for v in spec.variants),
                builds=builds,
            ),
            PlanItem(
                what="quantization points",
                count=points,
                seconds=points * per_point,
                measurements=points,
            ),
        ]

    def progress_label(self, spec: QuantizationSpec) -> str:
        return "quantization: full vs halfvec vs binary"

    def run(self, ctx: StudyContext, spec: QuantizationSpec) -> QuantizationStudy:
        vectors = ctx.vectors
        if vectors is None:
            raise RunFailed("quantization: it needs a vector experiment's loaded table")
        data = vectors.prepared
        return measure_quantization(
            dsn=ctx.target.dsn,
            schema=ctx.spec.schema,
            table=vectors.table,
            dataset=data.dataset,
            metric=data.dataset.metric,
            spec=spec,
            recall_queries=data.sets.recall.queries,
            truth=data.truth,
            load_queries=data.sets.load_stream,
            measure_seconds=ctx.spec.query.measure_seconds,
            rule=ctx.spec.query.recall_rule,
        )

    def store(self, results: Results, result: QuantizationStudy) -> None:
        if results.tuning is None:
            results.tuning = TuningSection()
        results.tuning.quantization = result.to_dict()

    def load(self, results: Results) -> QuantizationStudy | None:
        data = results.tuning.quantization if results.tuning is not None else None
        return QuantizationStudy.from_dict(data) if isinstance(data, dict) else None

    def advice(self, result: QuantizationStudy) -> list[Recommendation]:
        return advice(result)

    def figures(self, result: QuantizationStudy, out_dir: Path) -> list[Image]:
        from .plots import plot_quantization  # matplotlib: only when drawing

        path = plot_quantization(result, out_dir / report.FIGURE_NAME)
        return [Image(path.name, report.FIGURE_ALT)] if path is not None else []

    def report(
        self, result: QuantizationStudy, images: Sequence[Image], results: Results
    ) -> list[Block]:
        return report.blocks(result, images)


STUDY = Quantization()
