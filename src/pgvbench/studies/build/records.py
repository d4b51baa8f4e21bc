"""The build-tuning record as results.json keeps it (``results.tuning.build_tuning``).

``to_dict`` writes the form earlier versions wrote (plus ``dataset_rows`` and ``cores``,
the figures the advice is computed for); ``from_dict`` reads every earlier form back and
never raises on a field of the wrong type: a value it cannot read becomes its default
(None for a figure not measured), so the report shows what is there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .. import _fields as f


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase:
    """One phase of pg_stat_progress_create_index and the seconds the build spent in it."""

    phase: str
    seconds: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildTuningPoint:
    """One build at one (maintenance_work_mem, max_parallel_maintenance_workers)."""

    maintenance_work_mem: str
    maintenance_work_mem_bytes: int
    workers: int  # max_parallel_maintenance_workers requested
    workers_launched: int | None  # most parallel workers seen at once (pg_stat_activity)
    build_seconds: float | None  # None: the build failed (see error)
    index_bytes: int | None
    graph_fits: bool  # False: pgvector said the graph no longer fits
    fits_after_tuples: int | None  # tuples in memory when it stopped fitting
    phases: tuple[Phase, ...] = ()
    notices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The build completed (it has a time and no error)."""
        return self.error is None and self.build_seconds is not None

    @property
    def seconds(self) -> float:
        """Build seconds; infinity for a build that did not complete (sorts last)."""
        return self.build_seconds if self.build_seconds is not None else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "maintenance_work_mem": self.maintenance_work_mem,
            "maintenance_work_mem_bytes": self.maintenance_work_mem_bytes,
            "workers": self.workers,
            "workers_launched": self.workers_launched,
            "build_seconds": self.build_seconds,
            "index_bytes": self.index_bytes,
            "graph_fits": self.graph_fits,
            "fits_after_tuples": self.fits_after_tuples,
            "phases": [{"phase": p.phase, "seconds": p.seconds} for p in self.phases],
            "notices": list(self.notices),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildTuningPoint:
        return cls(
            maintenance_work_mem=f.text(data, "maintenance_work_mem"),
            maintenance_work_mem_bytes=f.int_or(data, "maintenance_work_mem_bytes", 0),
            workers=f.int_or(data, "workers", 0),
            workers_launched=f.opt_int(data, "workers_launched"),
            build_seconds=f.opt_float(data, "build_seconds"),
            index_bytes=f.opt_int(data, "index_bytes"),
            graph_fits=data.get("graph_fits") is not False,
            fits_after_tuples=f.opt_int(data, "fits_after_tuples"),
            phases=tuple(
                Phase(phase=f.text(ph, "phase"), seconds=f.float_or(ph, "seconds", 0.0))
                for ph in f.objects(data, "phases")
            ),
            notices=tuple(f.strings(data, "notices")),
            error=f.opt_text(data, "error"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildTuningStudy:
    """One index build measured at every (memory, workers) combination of the spec."""

    index: str  # IndexSpec.label
    kind: str
    params: Mapping[str, int]
    metric: str
    table: str
    rows: int  # rows with a vector: the tuples an index build reads
    limits: Mapping[str, str]  # server settings that cap parallel workers or memory
    restored: Mapping[str, str]  # session values put back afterwards
    points: tuple[BuildTuningPoint, ...] = ()
    notes: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()
    # what the advice is for (newer files): the dataset's rows and the host's CPU cores
    dataset_rows: int | None = None
    cores: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "params": dict(self.params),
            "metric": self.metric,
            "table": self.table,
            "rows": self.rows,
            "limits": dict(self.limits),
            "restored": dict(self.restored),
            "points": [p.to_dict() for p in self.points],
            "notes": list(self.notes),
            "recommendations": list(self.recommendations),
            "dataset_rows": self.dataset_rows,
            "cores": self.cores,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildTuningStudy:
        params = data.get("params")
        return cls(
            index=f.text(data, "index"),
            kind=f.text(data, "kind"),
            params={
                str(k): v
                for k, v in (params.items() if isinstance(params, Mapping) else ())
                if isinstance(v, int) and not isinstance(v, bool)
            },
            metric=f.text(data, "metric"),
            table=f.text(data, "table"),
            rows=f.int_or(data, "rows", 0),
            limits=f.str_map(data, "limits"),
            restored=f.str_map(data, "restored"),
            points=tuple(BuildTuningPoint.from_dict(p) for p in f.objects(data, "points")),
            notes=tuple(f.strings(data, "notes")),
            recommendations=tuple(f.strings(data, "recommendations")),
            dataset_rows=f.opt_int(data, "dataset_rows"),
            cores=f.opt_int(data, "cores"),
        )
