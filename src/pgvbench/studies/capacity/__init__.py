"""``[capacity]`` and ``pgvbench plan``: how each cost grows with the data, and what the
target size needs.

spec.py parses the levels, the index measured, the recall target and the target to answer
for; measure.py runs the scale sweep (one table per level, builds and queries through the
tuner's Candidate), backup.py times pg_basebackup / pg_dump / pg_restore per level;
records.py holds the figures; fits.py fits each quantity against rows with a held-out
check, answers.py turns fits into answers at the target, predict.py ties the two to the
record; advice.py / report.py / plots.py word and draw it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ...analysis.interleave import LATER_WINDOW_WARMUP_S, rounds_for
from ...errors import RunFailed
from ...plan.models import (
    LOAD_VALUES_PER_S,
    POINT_OVERHEAD_S,
    hnsw_build_seconds,
    ivfflat_build_seconds,
)
from ...report.document import Block, Image
from ...results import Results, TuningSection
from ...spec.model import INDEX_MAX_DIM, ExperimentSpec
from ...spec.table import Table
from ..base import DataShape, PlanItem, Recommendation, SpecContext, Study, StudyContext
from .records import CapacityRecord
from .spec import CapacitySpec, parse_capacity

__all__ = ["STUDY", "Capacity", "CapacityRecord", "CapacitySpec"]

RECALL_PASSES = 7  # the fixed knob, the ladder's top, ~log2(20) halvings
BACKUP_OVERHEAD_S = 6.0  # checkpoint, scratch database, four tool start-ups
WINDOW_OVERHEAD_S = 0.3  # prewarm, connections


class Capacity(Study[CapacitySpec, CapacityRecord]):
    """A sweep over data sizes, fitted, held out, extrapolated to a target."""

    name: ClassVar[str] = "capacity"
    title: ClassVar[str] = "Capacity: how costs grow with the data"
    applies_to: ClassVar[tuple[str, ...]] = ("vector",)
    section: ClassVar[str] = "tuning"
    stage: ClassVar[str] = "after"

    def parse(self, table: Table, ctx: SpecContext) -> CapacitySpec:
        spec = parse_capacity(table)
        if ctx.query.k > min(spec.levels):
            table.fail(
                "levels",
                f"start at {min(spec.levels):,} rows, fewer than [query] k = {ctx.query.k}",
            )
        if ctx.query.k > 100:
            table.fail("levels", f"with [query] k = {ctx.query.k}: k must be <= 100")
        return spec

    def data_problem(self, spec: CapacitySpec, shape: DataShape) -> str | None:
        if shape.rows < spec.largest:
            return (
                f"[capacity] levels go up to {spec.largest:,} rows, but the dataset has "
                f"{shape.rows:,} ({shape.rows_from}); every level is the first n rows of it, "
                f"so give the dataset at least {spec.largest:,} rows (`pgvbench plan` sets a "
                "synthetic dataset's n itself) or lower the levels"
            )
        if "hnsw" in spec.kinds and shape.dim > INDEX_MAX_DIM["vector"]:
            return (
                f"[capacity] builds vector indexes, which pgvector allows up to "
                f"{INDEX_MAX_DIM['vector']:,} dimensions; the data has {shape.dim:,} "
                f"({shape.dim_from})"
            )
        return None

    def estimate(
        self, spec: CapacitySpec, experiment: ExperimentSpec, shape: DataShape
    ) -> list[PlanItem]:
        query = experiment.query
        measure = spec.measure_seconds or query.measure_seconds
        builds = 0.0
        restores = 0.0
        for rows in spec.levels:
            for kind in spec.kinds:
                seconds = (
                    hnsw_build_seconds(rows, shape.dim, spec.m, spec.ef_construction)
                    if kind == "hnsw"
                    else ivfflat_build_seconds(rows, shape.dim, spec.lists or rows // 1000)
                )
                builds += seconds
                if kind == spec.kinds[0] and rows in spec.backup_levels:
                    restores += seconds + 2 * rows * shape.dim / LOAD_VALUES_PER_S
            builds += rows * shape.dim / LOAD_VALUES_PER_S
        # the recall passes, then two arms (fixed knob, target knob) of interleaved windows
        rounds = rounds_for(measure, spec.window_seconds)
        per_index = RECALL_PASSES * (query.recall_queries * 0.002 + POINT_OVERHEAD_S) + 2 * (
            measure + rounds * (LATER_WINDOW_WARMUP_S + WINDOW_OVERHEAD_S)
        )
        items = [
            PlanItem(
                what=f"capacity: {len(spec.levels)} data sizes, each loaded, built "
                f"({', '.join(spec.kinds)}) and measured",
                count=len(spec.levels) * len(spec.kinds),
                seconds=builds + len(spec.levels) * len(spec.kinds) * per_index,
                builds=len(spec.levels) * len(spec.kinds),
                measurements=2 * len(spec.levels) * len(spec.kinds),
            )
        ]
        if spec.backup_levels:
            items.append(
                PlanItem(
                    what="capacity: base backup, pg_dump and pg_restore (rebuilds the index)",
                    count=len(spec.backup_levels),
                    seconds=restores + BACKUP_OVERHEAD_S * len(spec.backup_levels),
                    builds=len(spec.backup_levels),
                )
            )
        return items

    def progress_label(self, spec: CapacitySpec) -> str:
        return ""  # the sweep shows its own steps

    def run(self, ctx: StudyContext, spec: CapacitySpec) -> CapacityRecord:
        from .measure import run_capacity

        if ctx.vectors is None:
            raise RunFailed("capacity: it needs a vector experiment's loaded table")
        return run_capacity(ctx, spec, spec_data=self.spec_to_dict(spec))

    def store(self, results: Results, result: CapacityRecord) -> None:
        if results.tuning is None:
            results.tuning = TuningSection()
        results.tuning.capacity = result.to_dict()

    def load(self, results: Results) -> CapacityRecord | None:
        data = results.tuning.capacity if results.tuning is not None else None
        return CapacityRecord.from_dict(data) if isinstance(data, dict) else None

    def advice(self, result: CapacityRecord) -> list[Recommendation]:
        from .advice import recommendations

        return recommendations(result)

    def figures(self, result: CapacityRecord, out_dir: Path) -> list[Image]:
        from .plots import draw_figures  # matplotlib: only when drawing

        return draw_figures(result, out_dir)

    def report(
        self, result: CapacityRecord, images: Sequence[Image], results: Results
    ) -> list[Block]:
        from .report import report_blocks

        return report_blocks(result, images, results)

    def outputs(self, result: CapacityRecord, results: Results, out_dir: Path) -> list[Path]:
        from .outputs import write_plan

        return write_plan(result, results, out_dir)

    def validity(self, result: CapacityRecord) -> list[str]:
        from .report import validity

        return validity(result)


STUDY = Capacity()
