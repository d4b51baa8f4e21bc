"""Recall drift and update cost while memories churn ([drift] in agent experiments).

First the cost of single-row updates with and without the HNSW index (update_cost.py),
then recall over time while a writer inserts and expires memories (churn.py), against
exact ground truth over the rows live at each checkpoint. One record holds both parts
(records.py); results.json keeps them as ``agent.update_cost`` and ``agent.drift``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import RunFailed
from ...plan.models import INDEX_QUERY_S, build_seconds
from ...report.document import Block, Image
from ...results import AgentSection, Results
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import advice as _advice
from . import spec as _spec
from .churn import measure_drift
from .records import DriftStudyResult
from .report import DRIFT_ALT, DRIFT_FIGURE, churn_section
from .spec import DriftSpec
from .update_cost import measure_update_cost


class DriftStudy(Study[DriftSpec, DriftStudyResult]):
    name = "drift"
    title = "Churn"
    applies_to = ("agents",)
    section = "agent"
    stage = "after"  # measured last: the churn rewrites the memories table

    def parse(self, table: Table, ctx: SpecContext) -> DriftSpec:
        return _spec.parse(table, ctx)

    def estimate(
        self, spec: DriftSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        data = experiment.agents.data if experiment.agents is not None else None
        if data is None:  # custom operations on the user's tables: nothing to churn
            return []
        rebuild = build_seconds(experiment.indexes[0], data.memories, data.dim)
        checkpoints = max(1, math.ceil(spec.duration_seconds / spec.interval_seconds))
        seconds = spec.duration_seconds + 2 * spec.update_samples * INDEX_QUERY_S + rebuild
        return [
            PlanItem(
                what="drift: update cost and churn",
                count=1,
                seconds=seconds,
                builds=1,  # the HNSW index rebuilt after the no_hnsw phase
                measurements=checkpoints,
            )
        ]

    def progress_label(self, spec: DriftSpec) -> str:
        return ""  # run() shows its two parts as steps of their own, as before

    def run(self, ctx: StudyContext, spec: DriftSpec) -> DriftStudyResult:
        dataset, agents = ctx.agent_data, ctx.spec.agents
        if dataset is None or agents is None or agents.data is None:
            raise RunFailed("[drift] needs the generated agent platform ([agents] data)")
        experiment = ctx.spec
        k = agents.workload.k if agents.workload else 10
        with ctx.reporter.task(
            f"update cost with / without the HNSW index ({spec.update_samples} updates)"
        ):
            cost = measure_update_cost(
                ctx.target.dsn,
                schema=experiment.schema,
                prefix=experiment.name,
                updates=spec.update_samples,
                seed=experiment.seed,
            )
        if ctx.save_partial is not None:  # kept if the churn part fails
            ctx.save_partial(DriftStudyResult(update_cost=cost, drift=None))
        with ctx.reporter.task(f"recall drift over {spec.duration_seconds:g} s of churn"):
            drift = measure_drift(
                ctx.target.dsn,
                schema=experiment.schema,
                prefix=experiment.name,
                dataset=dataset,
                k=k,
                metric=agents.data.metric,
                ef_search=spec.ef_search,
                duration_s=spec.duration_seconds,
                insert_rate=spec.insert_rate,
                expire_rate=spec.expire_rate,
                interval_s=spec.interval_seconds,
                queries=spec.queries,
                seed=experiment.seed,
                rule=experiment.query.recall_rule,
            )
        return DriftStudyResult(update_cost=cost, drift=drift)

    def store(self, results: Results, result: DriftStudyResult) -> None:
        if results.agent is None:
            results.agent = AgentSection(selectivity={}, tables={})
        data = result.to_dict()
        if data["update_cost"] is not None:
            results.agent.update_cost = data["update_cost"]
        if data["drift"] is not None:
            results.agent.drift = data["drift"]

    def load(self, results: Results) -> DriftStudyResult | None:
        agent = results.agent
        if agent is None or (agent.drift is None and agent.update_cost is None):
            return None
        parts: dict[str, Any] = {"update_cost": agent.update_cost, "drift": agent.drift}
        return DriftStudyResult.from_dict(parts)

    def advice(self, result: DriftStudyResult) -> list[Recommendation]:
        return _advice.advice(result)

    def figures(self, result: DriftStudyResult, out_dir: Path) -> list[Image]:
        if result.drift is None or result.drift_problem is not None:
            return []  # a record that did not read back whole is tabled, not drawn
        from .plot import plot_recall_over_time  # matplotlib: only when drawing

        path = plot_recall_over_time(result.drift, out_dir / DRIFT_FIGURE)
        return [] if path is None else [Image(path.name, DRIFT_ALT)]

    def report(
        self, result: DriftStudyResult, images: Sequence[Image], results: Results
    ) -> list[Block]:
        return churn_section(result, images)


STUDY = DriftStudy()

__all__ = ["STUDY", "DriftStudy", "DriftStudyResult"]
