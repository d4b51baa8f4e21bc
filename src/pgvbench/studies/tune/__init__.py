"""``[tune]`` and ``pgvbench tune``: find the configuration that meets a target.

spec.py parses the target and the space, space.py resolves the space from the data,
measure.py builds one configuration and finds its smallest query knob meeting the recall
bound (bisection), search.py drives Optuna over builds (resumable from its SQLite
storage), confirm.py rebuilds the winner and measures it interleaved with the runner-up,
session.py ties them into one record; advice.py / apply.py / report.py / plots.py /
outputs.py word and draw it (tune.md, tune.html, apply.sql, postgresql.conf).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import RunFailed, TargetUnreachable
from ...plan.models import POINT_OVERHEAD_S, hnsw_build_seconds, ivfflat_build_seconds
from ...report.document import Block, Image
from ...results import Results, TuningSection
from ...spec.model import INDEX_MAX_DIM, ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from .records import TuneRecord
from .space import grid_configs, resolve_space
from .spec import TuneSpec, parse_tune

__all__ = ["STUDY", "Tune", "TuneRecord", "TuneSpec"]

BISECTION_PROBES = 6  # recall passes per build: the ladder's top, then ~log2(20) halvings


class Tune(Study[TuneSpec, TuneRecord]):
    """Optuna over index builds, each build's query knob bisected to the recall bound."""

    name: ClassVar[str] = "tune"
    title: ClassVar[str] = "Tuning for a target"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"

    def parse(self, table: Table, ctx: SpecContext) -> TuneSpec:
        spec = parse_tune(table)
        if ctx.query.k > 100:
            table.fail("recall", f"recall@k with [query] k = {ctx.query.k}: k must be <= 100")
        return spec

    def spec_to_dict(self, spec: TuneSpec) -> dict[str, Any]:
        data = super().spec_to_dict(spec)
        data.pop("resume", None)  # how it was invoked, not part of the experiment
        return data

    def data_problem(self, spec: TuneSpec, shape: DataShape) -> str | None:
        space = resolve_space(spec, rows=shape.rows, dim=shape.dim, k=10)
        if "vector" in space.storage and shape.dim > INDEX_MAX_DIM["vector"]:
            return (
                f"[tune] storage includes 'vector', but pgvector indexes vector columns up to "
                f"{INDEX_MAX_DIM['vector']:,} dimensions and the data has {shape.dim:,} "
                f"({shape.dim_from}); use storage = ['halfvec_index', 'halfvec_column']"
            )
        if spec.subsample is not None and spec.subsample >= shape.rows:
            return (
                f"[tune] subsample = {spec.subsample:,} is not smaller than the data's "
                f"{shape.rows:,} rows ({shape.rows_from}); remove subsample or lower it"
            )
        if not grid_configs(space):
            return "[tune]: the space holds no configuration pgvector can build"
        return None

    def estimate(
        self, spec: TuneSpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        space = resolve_space(spec, rows=shape.rows, dim=shape.dim, k=experiment.query.k)
        configs = grid_configs(space)
        builds = [
            hnsw_build_seconds(shape.rows, shape.dim, c.params["m"], c.params["ef_construction"])
            if c.kind == "hnsw"
            else ivfflat_build_seconds(shape.rows, shape.dim, c.params["lists"])
            for c in configs
        ]
        trials = min(spec.trials, len(configs))
        mean_build = sum(builds) / len(builds) if builds else 0.0
        query = experiment.query
        window = (spec.measure_seconds or query.measure_seconds) + (
            spec.warmup_seconds if spec.warmup_seconds is not None else query.warmup_seconds
        )
        per_trial = BISECTION_PROBES * (query.recall_queries * 0.004 + POINT_OVERHEAD_S) + window
        return [
            PlanItem(
                what=f"tune: builds proposed by the optimiser (of {len(configs)} in the space)",
                count=trials,
                seconds=trials * (mean_build + per_trial),
                builds=trials,
                measurements=trials,
            ),
            PlanItem(
                what="tune: winner rebuilt, interleaved with the runner-up",
                count=1,
                seconds=mean_build * 2 + 16.0,
                builds=2,
                measurements=16,
            ),
        ]

    def progress_label(self, spec: TuneSpec) -> str:
        return ""  # the session shows its own steps

    def run(self, ctx: StudyContext, spec: TuneSpec) -> TuneRecord:
        from .advice import unreachable_message
        from .session import run_session

        if ctx.vectors is None:
            raise RunFailed("tune: it needs a vector experiment's loaded table")
        record = run_session(ctx, spec)
        if record.winner is None:  # kept in results.json, then the user's to change
            if ctx.save_partial is not None:
                ctx.save_partial(record)
            raise TargetUnreachable(unreachable_message(record))
        return record

    def store(self, results: Results, result: TuneRecord) -> None:
        if results.tuning is None:
            results.tuning = TuningSection()
        results.tuning.tune = result.to_dict()

    def load(self, results: Results) -> TuneRecord | None:
        data = results.tuning.tune if results.tuning is not None else None
        return TuneRecord.from_dict(data) if isinstance(data, dict) else None

    def advice(self, result: TuneRecord) -> list[Recommendation]:
        from .advice import recommendations

        return recommendations(result)

    def figures(self, result: TuneRecord, out_dir: Path) -> list[Image]:
        from .plots import draw_figures  # matplotlib: only when drawing

        return draw_figures(result, out_dir)

    def report(self, result: TuneRecord, images: Sequence[Image], results: Results) -> list[Block]:
        from .report import report_blocks

        return report_blocks(result, images, results)

    def outputs(self, result: TuneRecord, results: Results, out_dir: Path) -> list[Path]:
        from .outputs import write_tune_outputs

        return write_tune_outputs(result, results, out_dir)

    def validity(self, result: TuneRecord) -> list[str]:
        from .report import validity

        return validity(result)


def with_resume(spec: TuneSpec, resume: bool) -> TuneSpec:
    return dataclasses.replace(spec, resume=resume)


STUDY = Tune()
