"""The cache study's record: one row per (shared_buffers, strategy), as results.json keeps
it under ``tuning.cache``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ...results import Results, TimeSlice, TuningSection
from .. import _fields as f

STEADY_TOLERANCE = 0.20  # steady: p99 within 20% of the warm p99 ...
STEADY_SECONDS = 3  # ... for this many consecutive seconds

# relation -> {"buffers": in shared_buffers, "pages": of its main fork, "percent": resident}
Residency = Mapping[str, Mapping[str, float]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheRow:
    """One (shared_buffers, strategy) measurement."""

    strategy: str
    shared_buffers: str | None  # SHOW value in effect (None: an older file without it)
    shared_buffers_mb: float
    index_mb: float
    heap_mb: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None  # measured window
    qps: float | None = None
    first_second_p99_ms: float | None = None  # from the very first query
    series_p99_ms: float | None = None  # p99 over the whole warm-up series
    time_to_warm_s: float | None = None  # None: never steady within the series
    series: tuple[TimeSlice, ...] = ()
    residency_before: Residency = dataclasses.field(default_factory=dict)
    residency_after: Residency = dataclasses.field(default_factory=dict)
    os_cache_dropped: bool = False
    os_cache_note: str = ""
    eviction: str = ""
    restarted: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "series":
                value = [{"t": s.t, "ops": s.ops, "p99_ms": s.p99_ms} for s in value]
            elif field.name.startswith("residency_"):
                value = {name: dict(entry) for name, entry in value.items()}
            elif field.name == "notes":
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheRow:
        return cls(
            strategy=f.text(data, "strategy", "?"),
            shared_buffers=f.opt_text(data, "shared_buffers"),
            shared_buffers_mb=f.float_or(data, "shared_buffers_mb", 0.0),
            index_mb=f.float_or(data, "index_mb", 0.0),
            heap_mb=f.float_or(data, "heap_mb", 0.0),
            p50_ms=f.opt_float(data, "p50_ms"),
            p95_ms=f.opt_float(data, "p95_ms"),
            p99_ms=f.opt_float(data, "p99_ms"),
            qps=f.opt_float(data, "qps"),
            first_second_p99_ms=f.opt_float(data, "first_second_p99_ms"),
            series_p99_ms=f.opt_float(data, "series_p99_ms"),
            time_to_warm_s=f.opt_float(data, "time_to_warm_s"),
            series=tuple(_slices(data)),
            residency_before=_residency(data.get("residency_before")),
            residency_after=_residency(data.get("residency_after")),
            os_cache_dropped=f.flag(data, "os_cache_dropped"),
            os_cache_note=f.text(data, "os_cache_note"),
            eviction=f.text(data, "eviction"),
            restarted=f.flag(data, "restarted"),
            notes=tuple(f.strings(data, "notes")),
        )

    def percent(self, when: str, relation: str) -> float | None:
        """% of ``relation`` resident ``when`` ("before" | "after") the run, if recorded."""
        part = self.residency_before if when == "before" else self.residency_after
        entry = part.get(relation)
        value = entry.get("percent") if entry is not None else None
        return None if value is None else float(value)


def _slices(data: Mapping[str, Any]) -> list[TimeSlice]:
    out: list[TimeSlice] = []
    for point in f.objects(data, "series"):
        t = f.opt_int(point, "t")
        if t is not None:
            out.append(
                TimeSlice(t=t, ops=f.int_or(point, "ops", 0), p99_ms=f.opt_float(point, "p99_ms"))
            )
    return out


def _residency(raw: Any) -> dict[str, dict[str, float]]:
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, entry in raw.items():
        if isinstance(entry, Mapping):
            out[str(name)] = {
                str(k): v
                for k, v in entry.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
    return out


@dataclasses.dataclass(kw_only=True)
class CacheStudy:
    """Every (shared_buffers, strategy) row of one ``[cache]`` run.

    Not frozen: rows are appended as they are measured and ``recommendations`` (the
    advice sentences, kept in results.json) are filled in once all rows are in.
    """

    schema: str
    table: str
    index_name: str
    k: int | None  # None: an older file without it
    target_kind: str
    strategies: list[str]
    measure_seconds: float
    warmup_series_seconds: float
    rows: list[CacheRow] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    recommendations: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "table": self.table,
            "index_name": self.index_name,
            "k": self.k,
            "target_kind": self.target_kind,
            "strategies": list(self.strategies),
            "measure_seconds": self.measure_seconds,
            "warmup_series_seconds": self.warmup_series_seconds,
            "rows": [row.to_dict() for row in self.rows],
            "notes": list(self.notes),
            "recommendations": list(self.recommendations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheStudy:
        """Read the JSON form back; fields an older or partial file lacks get defaults."""
        return cls(
            schema=f.text(data, "schema"),
            table=f.text(data, "table"),
            index_name=f.text(data, "index_name"),
            k=f.opt_int(data, "k"),
            target_kind=f.text(data, "target_kind"),
            strategies=f.strings(data, "strategies"),
            measure_seconds=f.float_or(data, "measure_seconds", 0.0),
            warmup_series_seconds=f.float_or(data, "warmup_series_seconds", 0.0),
            rows=[CacheRow.from_dict(row) for row in f.objects(data, "rows")],
            notes=f.strings(data, "notes"),
            recommendations=f.strings(data, "recommendations"),
        )


def time_to_steady(series: Sequence[TimeSlice], reference_p99_ms: float) -> float | None:
    """Seconds from the first query until p99 stays within 20% of the reference for 3 s."""
    limit = reference_p99_ms * (1 + STEADY_TOLERANCE)
    run = 0
    for i, s in enumerate(series):
        run = run + 1 if s.p99_ms is not None and s.p99_ms <= limit else 0
        if run == STEADY_SECONDS:
            return float(i + 1 - STEADY_SECONDS)
    return None


def from_results(results: Results) -> CacheStudy | None:
    """The cache record of a results file, or None when the run has none."""
    data = results.tuning.cache if results.tuning is not None else None
    return CacheStudy.from_dict(data) if isinstance(data, Mapping) else None


def into_results(results: Results, study: CacheStudy) -> None:
    """Keep the record's JSON form at ``tuning.cache``."""
    if results.tuning is None:
        results.tuning = TuningSection()
    results.tuning.cache = study.to_dict()
