"""Application result caches (``[result_cache]``) in front of the kNN query: an exact-key
LRU (a hit needs the very same vector) and a semantic cache (reuse a result when the new
vector lies within ``delta`` of a cached one), fed a seeded Zipf stream of queries.

spec.py parses the table; stream.py, caches.py, serve.py, truth.py and measure.py
measure; records.py holds the result; advice.py and report.py turn it into sentences
and report blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, ParamSpec

from ...errors import RunFailed
from ...plan.models import INDEX_QUERY_S
from ...report.document import Block, Image
from ...results import Results
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import report as render
from .advice import advice, recommendations
from .caches import LruCache, SemanticCache, query_distances
from .measure import measure_caches
from .records import CacheRun, ResultCacheStudy, from_results, into_results
from .spec import ResultCacheSpec, parse_result_cache, queries_problem
from .stream import (
    che_lru_hit_rate,
    expected_lru_hit_rate,
    simulate_lru_hits,
    stream_vectors,
    zipf_probabilities,
    zipf_stream,
)

P = ParamSpec("P")

__all__ = [
    "STUDY",
    "CacheRun",
    "LruCache",
    "ResultCacheSpec",
    "ResultCacheStudy",
    "ResultCaches",
    "SemanticCache",
    "che_lru_hit_rate",
    "expected_lru_hit_rate",
    "measure_result_caches",
    "parse_result_cache",
    "query_distances",
    "recommendations",
    "simulate_lru_hits",
    "stream_vectors",
    "zipf_probabilities",
    "zipf_stream",
]


def _with_advice(measure: Callable[P, ResultCacheStudy]) -> Callable[P, ResultCacheStudy]:
    """``measure``, then the advice sentences results.json keeps with the record."""

    def measured(*args: P.args, **kwargs: P.kwargs) -> ResultCacheStudy:
        study = measure(*args, **kwargs)
        return dataclasses.replace(study, recommendations=tuple(recommendations(study)))

    return measured


# Every cache configuration of a spec against one table, with its advice.
measure_result_caches = _with_advice(measure_caches)


class ResultCaches(Study[ResultCacheSpec, ResultCacheStudy]):
    """LRU and semantic result caches on a Zipf stream, on the shared index build."""

    name: ClassVar[str] = "result_cache"
    title: ClassVar[str] = "Application result caches"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"
    needs_index: ClassVar[bool] = True

    def parse(self, table: Table, ctx: SpecContext) -> ResultCacheSpec:
        return parse_result_cache(table)

    def data_problem(self, spec: ResultCacheSpec, shape: DataShape) -> str | None:
        return queries_problem(spec, shape.queries, shape.queries_from)

    def estimate(
        self, spec: ResultCacheSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        configs = len(spec.lru_sizes) + len(spec.semantic_deltas)
        return [
            PlanItem(
                what="result cache configurations",
                count=configs,
                seconds=configs * spec.stream_length * INDEX_QUERY_S,
                measurements=configs,
            )
        ]

    def progress_label(self, spec: ResultCacheSpec) -> str:
        return "application result caches (LRU, semantic)"

    def run(self, ctx: StudyContext, spec: ResultCacheSpec) -> ResultCacheStudy:
        vectors, index = ctx.vectors, ctx.index
        if vectors is None or index is None:
            raise RunFailed("result cache study: it needs a vector experiment's shared index")
        dataset = vectors.prepared.dataset
        return measure_result_caches(
            dsn=ctx.target.dsn,
            schema=ctx.spec.schema,
            table=vectors.table,
            dataset=dataset,
            metric=dataset.metric,
            spec=spec,
            query_settings=index.query_settings,
            truth_fn=None,
            rule=ctx.spec.query.recall_rule,
        )

    def store(self, results: Results, result: ResultCacheStudy) -> None:
        into_results(results, result)

    def load(self, results: Results) -> ResultCacheStudy | None:
        return from_results(results)

    def advice(self, result: ResultCacheStudy) -> list[Recommendation]:
        return advice(result)

    def figures(self, result: ResultCacheStudy, out_dir: Path) -> list[Image]:
        return render.figures(result, out_dir)

    def report(
        self, result: ResultCacheStudy, images: Sequence[Image], results: Results
    ) -> list[Block]:
        return render.blocks(result, images)


STUDY = ResultCaches()
