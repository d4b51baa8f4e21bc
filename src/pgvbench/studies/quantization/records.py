"""The quantization record as results.json keeps it (``results.tuning.quantization``).

``to_dict`` writes the form earlier versions wrote; ``from_dict`` reads it back and
never raises on a field of the wrong type (that field gets its default), so the report
shows what a file from another version or a stopped run does hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .. import _fields as f


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantizedIndex:
    """One HNSW index built for a variant (dropped again after it was measured)."""

    variant: str  # full | halfvec | binary
    index: str
    definition: str
    build_seconds: float
    index_bytes: int
    notices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "index": self.index,
            "definition": self.definition,
            "build_seconds": self.build_seconds,
            "index_bytes": self.index_bytes,
            "notices": list(self.notices),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizedIndex:
        return cls(
            variant=f.text(data, "variant"),
            index=f.text(data, "index"),
            definition=f.text(data, "definition"),
            build_seconds=f.float_or(data, "build_seconds", 0.0),
            index_bytes=f.int_or(data, "index_bytes", 0),
            notices=tuple(f.strings(data, "notices")),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantizationPoint:
    """One variant at one (ef_search, overfetch): recall and single-client speed."""

    variant: str  # full | halfvec | binary | binary_norerank
    ef_search: int
    overfetch: int  # candidates fetched = k x overfetch (1 without re-rank)
    recall_mean: float
    recall_p5: float
    recall_min: float
    qps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    index: str
    index_bytes: int
    build_seconds: float
    plan_ok: bool
    plan_note: str | None  # what the plan used instead of the index (check_plan)
    capped: bool  # k x overfetch > ef_search: HNSW returns at most ef_search candidates
    # Added with the margins of issue 12 (empty in older files): each recall query's recall
    # (the same queries at every point, so points pair up) and each timed window's QPS.
    recall_per_query: tuple[float, ...] = ()
    window_qps: tuple[float, ...] = ()
    # Each window's place in the study's run order (empty in files written before the
    # points were interleaved): window i of every point ran in round i, so they pair up.
    window_sequence: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        out["recall_per_query"] = list(self.recall_per_query)
        out["window_qps"] = list(self.window_qps)
        out["window_sequence"] = list(self.window_sequence)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizationPoint:
        return cls(
            variant=f.text(data, "variant"),
            ef_search=f.int_or(data, "ef_search", 0),
            overfetch=f.int_or(data, "overfetch", 1),
            recall_mean=f.float_or(data, "recall_mean", 0.0),
            recall_p5=f.float_or(data, "recall_p5", 0.0),
            recall_min=f.float_or(data, "recall_min", 0.0),
            qps=f.float_or(data, "qps", 0.0),
            p50_ms=f.opt_float(data, "p50_ms"),
            p99_ms=f.opt_float(data, "p99_ms"),
            errors=f.int_or(data, "errors", 0),
            index=f.text(data, "index"),
            index_bytes=f.int_or(data, "index_bytes", 0),
            build_seconds=f.float_or(data, "build_seconds", 0.0),
            plan_ok=f.flag(data, "plan_ok"),
            plan_note=f.opt_text(data, "plan_note"),
            capped=f.flag(data, "capped"),
            recall_per_query=tuple(_numbers(data, "recall_per_query")),
            window_qps=tuple(_numbers(data, "window_qps")),
            window_sequence=tuple(int(v) for v in _numbers(data, "window_sequence")),
        )


def _numbers(data: Mapping[str, Any], key: str) -> list[float]:
    raw = data.get(key)
    if not isinstance(raw, list):
        return []
    return [float(v) for v in raw if isinstance(v, (int, float)) and not isinstance(v, bool)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantizationStudy:
    """Every variant's index and points, on one table."""

    table: str
    metric: str
    dim: int
    rows: int
    k: int
    m: int
    ef_construction: int
    indexes: tuple[QuantizedIndex, ...]
    points: tuple[QuantizationPoint, ...]
    notes: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "metric": self.metric,
            "dim": self.dim,
            "rows": self.rows,
            "k": self.k,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "indexes": [ix.to_dict() for ix in self.indexes],
            "points": [p.to_dict() for p in self.points],
            "notes": list(self.notes),
            "recommendations": list(self.recommendations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizationStudy:
        return cls(
            table=f.text(data, "table"),
            metric=f.text(data, "metric"),
            dim=f.int_or(data, "dim", 0),
            rows=f.int_or(data, "rows", 0),
            k=f.int_or(data, "k", 0),
            m=f.int_or(data, "m", 0),
            ef_construction=f.int_or(data, "ef_construction", 0),
            indexes=tuple(QuantizedIndex.from_dict(ix) for ix in f.objects(data, "indexes")),
            points=tuple(QuantizationPoint.from_dict(p) for p in f.objects(data, "points")),
            notes=tuple(f.strings(data, "notes")),
            recommendations=tuple(f.strings(data, "recommendations")),
        )
