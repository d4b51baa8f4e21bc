"""Filtered vector search (``[filtered]``): which way to run a filtered top-k wins, for
filters grouped by the share of rows they keep: ``WHERE agent_id = ?`` on the generated
agent data, or equality / range / ``&&`` predicates on any vector dataset's attributes.

spec.py parses the table (and resolves a vector dataset's predicates); source.py wraps
either kind of data in one FilterSource; predicates.py and workload.py draw the buckets'
queries, truth.py their exact filtered top-k; strategies.py creates what each strategy
needs; measure.py measures one strategy on one bucket; compare.py runs them all (notes.py
words the notes the record keeps); records.py holds the result; ranking.py picks each
bucket's winner; advice.py, report.py and plots.py turn the record into sentences, the
report section and its figure.

Two registered studies share the table name and all of this: :class:`FilteredSearch`
(agent runs; results.agent.filtered) and :class:`FilteredVectorSearch` (vector runs;
results.tuning.filtered, its report in the tuning part).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import RunFailed, SpecError
from ...plan.models import INDEX_QUERY_S, hnsw_build_seconds, ivfflat_build_seconds
from ...report.document import Block, Image
from ...results import AgentSection, Results, TuningSection
from ...server.connection import connect
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import report
from .advice import advice, summary_sentences
from .compare import compare_filtered
from .measure import plan_problem
from .ranking import RECALL_TARGET, winners
from .records import (
    BucketInfo,
    FilteredComparison,
    FilteredResult,
    FilteredRow,
    StrategySetup,
)
from .source import from_vectors
from .spec import (
    ABSENT_MEANS,
    DEFAULT_BUCKET_EDGES,
    STRATEGIES,
    FilteredSpec,
    dim_problem,
    parse,
    resolve,
)
from .truth import agent_buckets, bucket_labels, filtered_ground_truth, filtered_recall

__all__ = [
    "DEFAULT_BUCKET_EDGES",
    "STRATEGIES",
    "STUDY",
    "VECTOR_STUDY",
    "BucketInfo",
    "FilteredComparison",
    "FilteredResult",
    "FilteredRow",
    "FilteredSearch",
    "FilteredSpec",
    "FilteredVectorSearch",
    "StrategySetup",
    "agent_buckets",
    "bucket_labels",
    "compare_filtered",
    "filtered_ground_truth",
    "filtered_recall",
    "plan_problem",
    "summary_sentences",
    "winners",
]

# tests/integration/test_filtered.py checks the EXPLAIN test under its first name
_plan_problem = plan_problem


class FilteredSearch(Study[FilteredSpec, FilteredResult]):
    """Every strategy x selectivity bucket on a copy of the generated memories table."""

    name: ClassVar[str] = "filtered"
    title: ClassVar[str] = "Filtered vector search"
    applies_to: ClassVar[tuple[str, ...]] = ("agents",)
    section: ClassVar[str] = "agent"
    # its ground truth is the data as generated: before the workload writes
    stage: ClassVar[str] = "before"

    def parse(self, table: Table, ctx: SpecContext) -> FilteredSpec:
        return parse(table, ctx.kind)

    def spec_to_dict(self, spec: FilteredSpec) -> dict[str, Any]:
        # keys added with vector data are recorded only when set, so agent specs record
        # what they always did (compare refuses spec differences)
        data = super().spec_to_dict(spec)
        return {k: v for k, v in data.items() if k not in ABSENT_MEANS or v != ABSENT_MEANS[k]}

    def data_problem(self, spec: FilteredSpec, shape: DataShape) -> str | None:
        return dim_problem(spec, shape.dim, shape.dim_from)

    def estimate(
        self, spec: FilteredSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        data = experiment.agents.data if experiment.agents is not None else None
        if data is None:
            return []
        memories, dim = data.memories, data.dim
        hnsw = hnsw_build_seconds(memories, dim, 16, 64)
        builds, seconds = 0, 0.0
        if any(s.startswith("hnsw_") for s in spec.strategies):
            builds, seconds = builds + 1, seconds + hnsw
        if "ivfflat_iterative" in spec.strategies:
            builds += 1
            seconds += ivfflat_build_seconds(memories, dim, max(1, memories // 1000))
        if "partial_hot" in spec.strategies:
            builds, seconds = builds + 3, seconds + 0.1 * hnsw
        if "partitioned" in spec.strategies:
            builds, seconds = builds + data.tenants, seconds + hnsw
        points = len(spec.strategies) * (len(spec.bucket_edges) + 1)
        per_point = spec.measure_seconds + spec.queries_per_bucket * INDEX_QUERY_S + 0.2
        items = [
            PlanItem(what="filtered-search index builds", count=builds, seconds=seconds,
                     builds=builds),
            PlanItem(what="filtered-search points", count=points, seconds=points * per_point,
                     measurements=points),
        ]  # fmt: skip
        return [item for item in items if item.count > 0]

    def progress_label(self, spec: FilteredSpec) -> str:
        return f"filtered search: {len(spec.strategies)} strategies"

    def run(self, ctx: StudyContext, spec: FilteredSpec) -> FilteredResult:
        if ctx.agent_data is None:
            raise RunFailed("filtered search needs the generated agent platform ([agents])")
        return _compared(ctx, spec, dataset=ctx.agent_data)

    def _holder(self, results: Results, create: bool) -> AgentSection | TuningSection | None:
        """The results section that keeps the record (agent runs: results.agent)."""
        if results.agent is None and create:
            results.agent = AgentSection(selectivity={}, tables={})
        return results.agent

    def store(self, results: Results, result: FilteredResult) -> None:
        holder = self._holder(results, create=True)
        assert holder is not None
        holder.filtered = result.comparison.to_dict()
        holder.filtered_winners = {str(k): str(v) for k, v in result.winners.items()}

    def load(self, results: Results) -> FilteredResult | None:
        holder = self._holder(results, create=False)
        if holder is None or not isinstance(holder.filtered, dict):
            return None
        return FilteredResult(
            comparison=FilteredComparison.from_dict(holder.filtered),
            winners=holder.filtered_winners,
            run_name=results.run_name,
            recall_target=_recorded_target(results.spec),
        )

    def advice(self, result: FilteredResult) -> list[Recommendation]:
        return advice(result.comparison, recall_target=result.recall_target)

    def figures(self, result: FilteredResult, out_dir: Path) -> list[Image]:
        from .plots import plot_filtered_p99  # matplotlib: only when drawing

        path = plot_filtered_p99(result, out_dir / report.FILTERED_FIGURE)
        return [Image(path.name, report.FILTERED_ALT)] if path is not None else []

    def report(
        self, result: FilteredResult, images: Sequence[Image], results: Results
    ) -> list[Block]:
        image = next((i for i in images if i.src == report.FILTERED_FIGURE), None)
        return report.section(result, image)

    def validity(self, result: FilteredResult) -> list[str]:
        return report.validity_lines(result.comparison)

    def validity_summary(self, result: FilteredResult) -> str:
        """The Validity paragraph's sentence on the filtered rows (with a leading space;
        "" when none was measured). Not in the Study interface yet."""
        return report.validity_summary(result.comparison)


class FilteredVectorSearch(FilteredSearch):
    """The same comparison on a vector dataset's items table, filtering on its attributes."""

    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"

    def estimate(
        self, spec: FilteredSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        rows, dim = shape.rows, shape.dim
        hnsw = hnsw_build_seconds(rows, dim, 16, 64)
        builds, seconds = 0, 0.0
        if any(s.startswith("hnsw_") for s in spec.strategies):
            builds, seconds = builds + 1, seconds + hnsw
        if "ivfflat_iterative" in spec.strategies:
            builds += 1
            seconds += ivfflat_build_seconds(rows, dim, max(1, rows // 1000))
        if "partial_hot" in spec.strategies:
            builds, seconds = builds + spec.hot_labels, seconds + 0.1 * hnsw
        if "partitioned" in spec.strategies:
            builds, seconds = builds + spec.partitions + 1, seconds + hnsw
        predicates = len(spec.predicates or ("label", "range", "overlap"))
        arms = len(spec.strategies) + (len(spec.ef_values) - 1) * 5
        points = arms * (len(spec.bucket_edges) + 1) * predicates
        # each point fetches every query's ids and EXPLAIN ANALYZEs some first; iterative
        # scans on selective filters are slow (a 20k-row run averaged ~20 ms per query)
        checked = spec.queries_per_bucket + (spec.explain_queries or spec.queries_per_bucket)
        per_point = spec.measure_seconds + checked * _CHECK_QUERY_S + 0.2
        items = [
            PlanItem(what="filtered-search index builds", count=builds, seconds=seconds,
                     builds=builds),
            PlanItem(what="filtered-search points (at most)", count=points,
                     seconds=points * per_point, measurements=points),
        ]  # fmt: skip
        return [item for item in items if item.count > 0]

    def dataset_problem(self, spec: FilteredSpec, dataset: Any, where: str) -> str | None:
        try:
            resolve(spec, dataset.attributes, where)
        except SpecError as exc:
            return str(exc)
        return None

    def run(self, ctx: StudyContext, spec: FilteredSpec) -> FilteredResult:
        if ctx.vectors is None:
            raise RunFailed("filtered search on vector data needs the loaded items table")
        dataset = ctx.vectors.prepared.dataset
        where = str(ctx.spec.source_path) if ctx.spec.source_path else "<spec>"
        predicates = resolve(spec, dataset.attributes, where)
        missing = _missing_columns(ctx, [p.attribute for p in predicates])
        if missing:
            raise SpecError(
                f"{where}: [filtered] filters on {', '.join(missing)}, which the items table "
                f"{ctx.spec.schema}.{ctx.vectors.table} does not have as columns"
            )
        return _compared(
            ctx,
            spec,
            source=from_vectors(dataset, ctx.vectors.table),
            predicates=predicates,
            hot_agents=spec.hot_labels,
            partitions=spec.partitions,
        )

    def _holder(self, results: Results, create: bool) -> AgentSection | TuningSection | None:
        """Vector runs keep the record in results.tuning."""
        if results.tuning is None and create:
            results.tuning = TuningSection()
        return results.tuning


_CHECK_QUERY_S = 0.02
STUDY = FilteredSearch()
VECTOR_STUDY = FilteredVectorSearch()


def _compared(ctx: StudyContext, spec: FilteredSpec, **source: Any) -> FilteredResult:
    """The comparison with the spec's settings on ``source`` (the agent dataset, or a
    vector filter source with its predicates), and each bucket's winner."""
    comparison = compare_filtered(
        ctx.target.dsn,
        schema=ctx.spec.schema,
        prefix=ctx.spec.name,
        strategies=spec.strategies,
        k=spec.k,
        ef_search=spec.ef_values,
        max_scan_tuples=spec.max_scan_tuples,
        bucket_edges=spec.bucket_edges,
        queries_per_bucket=spec.queries_per_bucket,
        seed=ctx.spec.seed,
        measure_seconds=spec.measure_seconds,
        explain_queries=spec.explain_queries,
        rule=ctx.spec.query.recall_rule,
        **source,
    )
    return FilteredResult(
        comparison=comparison,
        winners=winners(comparison, recall_target=spec.recall_target),
        run_name=ctx.spec.name,
        recall_target=spec.recall_target,
    )


def _missing_columns(ctx: StudyContext, columns: Sequence[str]) -> list[str]:
    """The filter columns the items table lacks (a loader that did not add them)."""
    assert ctx.vectors is not None
    with connect(ctx.target.dsn) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped",
            (ctx.vectors.items_ident,),
        ).fetchall()
    present = {str(r[0]) for r in rows}
    return [c for c in dict.fromkeys(columns) if c not in present]


def _recorded_target(spec: Mapping[str, Any]) -> float:
    """The run's [filtered] recall_target as results.json recorded it (0.9 when absent)."""
    for section in ("agents", "studies"):
        table = spec.get(section)
        own = table.get("filtered") if isinstance(table, Mapping) else None
        value = own.get("recall_target") if isinstance(own, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return RECALL_TARGET
