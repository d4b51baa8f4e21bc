"""Cache-state study (``[cache]``): how much latency depends on what is in shared_buffers
and the OS page cache.

A freshly built or loaded index is warm, so a naive benchmark measures the best case;
production after a restart or failover starts cold, and an index larger than
shared_buffers never becomes fully warm (VectorDBBench #385: 1030 QPS warm vs 4 QPS).
Per shared_buffers size the study measures cold, warm and autoprewarm (measure.py);
it restarts the embedded server, so it runs last.

spec.py parses the table, buffers.py / server_config.py / measure.py measure, records.py
holds the result, advice.py and report.py turn it into sentences and report blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, ParamSpec

from ...engine.operations import Operation, knn_operation
from ...errors import RunFailed
from ...plan.models import RESTART_S
from ...report.document import Block, Image
from ...results import Results
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import report as render
from .advice import advice, recommendations
from .measure import measure_states
from .records import CacheRow, CacheStudy, from_results, into_results, time_to_steady
from .spec import STRATEGIES, CacheSpec, parse_cache, size_bytes

P = ParamSpec("P")

__all__ = [
    "STRATEGIES",
    "STUDY",
    "CacheRow",
    "CacheSpec",
    "CacheStates",
    "CacheStudy",
    "measure_cache_states",
    "parse_cache",
    "recommendations",
    "size_bytes",
    "time_to_steady",
]


def _with_advice(measure: Callable[P, CacheStudy]) -> Callable[P, CacheStudy]:
    """``measure``, then the advice sentences results.json keeps with the record."""

    def measured(*args: P.args, **kwargs: P.kwargs) -> CacheStudy:
        study = measure(*args, **kwargs)
        study.recommendations = recommendations(study)
        return study

    return measured


# Every (shared_buffers, strategy) of a spec, with its advice; the server is restored after.
measure_cache_states = _with_advice(measure_states)


class CacheStates(Study[CacheSpec, CacheStudy]):
    """cold / warm / autoprewarm per shared_buffers size, on the shared index build."""

    name: ClassVar[str] = "cache"
    title: ClassVar[str] = "Cache state"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"
    needs_index: ClassVar[bool] = True
    restarts_server: ClassVar[bool] = True

    def parse(self, table: Table, ctx: SpecContext) -> CacheSpec:
        return parse_cache(table)

    def estimate(
        self, spec: CacheSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        sizes = max(1, len(spec.shared_buffers))
        seconds = 0.0
        for strategy in spec.strategies:
            if strategy == "warm":
                seconds += spec.measure_seconds + 1.0  # pg_prewarm first
            else:
                seconds += RESTART_S + spec.warmup_series_seconds + spec.measure_seconds
        points = sizes * len(spec.strategies)
        return [
            PlanItem(
                what="cache states",
                count=points,
                seconds=sizes * (seconds + RESTART_S),
                measurements=points,
            )
        ]

    def progress_label(self, spec: CacheSpec) -> str:
        return "cache states: cold / warm / autoprewarm"

    def run(self, ctx: StudyContext, spec: CacheSpec) -> CacheStudy:
        vectors, index = ctx.vectors, ctx.index
        if vectors is None or index is None:
            raise RunFailed("cache study: it needs a vector experiment's shared index build")
        operator = vectors.prepared.dataset.metric.operator
        k = ctx.spec.query.k

        def query_op() -> Operation:
            return knn_operation(
                items=vectors.items_ident,
                queries=None,
                operator=operator,
                k=k,
                vectors=vectors.prepared.sets.load_stream,
                vector_oid=vectors.vector_oid,
                settings=index.query_settings,
            )

        return measure_cache_states(
            target=ctx.target,
            server=ctx.server,
            spec=spec,
            schema=ctx.spec.schema,
            table=vectors.table,
            index_name=index.name,
            query_op_factory=query_op,
            k=k,
            base_settings=ctx.spec.server.settings,
        )

    def store(self, results: Results, result: CacheStudy) -> None:
        into_results(results, result)

    def load(self, results: Results) -> CacheStudy | None:
        return from_results(results)

    def advice(self, result: CacheStudy) -> list[Recommendation]:
        return advice(result)

    def figures(self, result: CacheStudy, out_dir: Path) -> list[Image]:
        return render.figures(result, out_dir)

    def report(self, result: CacheStudy, images: Sequence[Image], results: Results) -> list[Block]:
        return render.blocks(result, images)


STUDY = CacheStates()
