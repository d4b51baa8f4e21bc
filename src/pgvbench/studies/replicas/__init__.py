"""Read replicas on PostgreSQL's own streaming replication ([replicas] in agent experiments).

The standbys come from ``[server] replicas = N`` (server/replicas.py: pg_basebackup from
the wheel, one slot each, stopped with the primary) or a multi-host ``--dsn``
(server/cluster.py). Measured: read QPS and p99 per number of standbys read from
(reads.py, interleaved), replay lag under the agent mix's writes and per-standby QPS
during it (mix.py), and recall right after a write (probes.py). results.json keeps the
record under ``agent.replicas``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...report.document import Block, Image
from ...results import AgentSection, Results
from ...spec.model import ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from . import advice as _advice
from . import report as _report
from . import spec as _spec
from .measure import measure_replicas
from .records import ReplicasResult
from .spec import ReplicasSpec

_CONNECT_S = 0.5  # per window: new connections and their prepared statements


class ReplicasStudy(Study[ReplicasSpec, ReplicasResult]):
    name = "replicas"
    title = "Read replicas"
    applies_to = ("agents",)
    section = "agent"
    stage = "after"  # its mix writes memories

    def parse(self, table: Table, ctx: SpecContext) -> ReplicasSpec:
        return _spec.parse(table, ctx)

    def estimate(
        self, spec: ReplicasSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        arms = spec.replicas + 1 + int(spec.load_balance and spec.replicas >= 2)
        windows = arms * spec.rounds
        seconds = windows * (spec.window_seconds + _CONNECT_S) + spec.mix_seconds + 5.0
        return [
            PlanItem(
                what=f"replicas: reads on 0..{spec.replicas} standbys, read/write mix",
                count=windows + 1,
                seconds=seconds,
                measurements=windows + 1,
            )
        ]

    def progress_label(self, spec: ReplicasSpec) -> str:
        return ""  # run() shows its parts as steps of their own

    def run(self, ctx: StudyContext, spec: ReplicasSpec) -> ReplicasResult:
        return measure_replicas(ctx, spec)

    def store(self, results: Results, result: ReplicasResult) -> None:
        if results.agent is None:
            results.agent = AgentSection(selectivity={}, tables={})
        results.agent.replicas = result.to_dict()

    def load(self, results: Results) -> ReplicasResult | None:
        agent = results.agent
        if agent is None or agent.replicas is None:
            return None
        return ReplicasResult.from_dict(agent.replicas)

    def advice(self, result: ReplicasResult) -> list[Recommendation]:
        return _advice.advice(result)

    def figures(self, result: ReplicasResult, out_dir: Path) -> list[Image]:
        from .plots import plot_lag, plot_reads  # matplotlib: only when drawing

        images = []
        if plot_reads(result, out_dir / _report.SCALING_FIGURE) is not None:
            images.append(Image(_report.SCALING_FIGURE, _report.SCALING_ALT))
        if result.mix is not None and plot_lag(result.mix, out_dir / _report.LAG_FIGURE):
            images.append(Image(_report.LAG_FIGURE, _report.LAG_ALT))
        return images

    def report(
        self, result: ReplicasResult, images: Sequence[Image], results: Results
    ) -> list[Block]:
        return _report.section(result, images)

    def validity(self, result: ReplicasResult) -> list[str]:
        return _report.validity(result)


STUDY = ReplicasStudy()

__all__ = ["STUDY", "ReplicasResult", "ReplicasStudy"]
