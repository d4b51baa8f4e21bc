"""The result-cache study's record, as results.json keeps it under ``tuning.result_cache``.

A field a file lacks reads back as a default: 0 for counts, NaN for a measured figure
(the report shows both as a dash), None where None is a real value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ...results import Results, TuningSection
from .. import _fields as f


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheRun:
    """One cache configuration over the whole stream."""

    kind: str  # "lru" | "semantic"
    size: int
    delta: float | None
    requests: int
    hits: int
    hit_rate: float
    expected_hit_rate: float | None  # lru, jitter 0: simulation of the same stream
    analytic_hit_rate: float | None  # lru: Che approximation (steady state)
    p50_ms: float
    p99_ms: float
    mean_ms: float
    hit_p50_ms: float | None
    miss_p50_ms: float | None
    miss_p99_ms: float | None
    recall_mean: float
    recall_p5: float
    recall_min: float
    hit_recall_mean: float | None  # recall of the results served from the cache
    writes: int
    stale_hits: int
    stale_hit_fraction: float | None  # of hits; None without writes or hits
    seconds: float
    latency_hdr: str  # encoded HDR histogram of all requests
    # Each request's recall in stream order (empty in files written before issue 12): every
    # configuration serves the same stream, so two runs pair up request by request.
    recall_per_request: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "lru":
            return f"lru size {self.size}"
        return f"semantic size {self.size} delta {self.delta:g}"

    def to_dict(self) -> dict[str, Any]:
        out = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        out["recall_per_request"] = list(self.recall_per_request)
        out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheRun:
        nan = math.nan
        return cls(
            kind=f.text(data, "kind"),
            size=f.int_or(data, "size", 0),
            delta=f.opt_float(data, "delta"),
            requests=f.int_or(data, "requests", 0),
            hits=f.int_or(data, "hits", 0),
            hit_rate=f.float_or(data, "hit_rate", nan),
            expected_hit_rate=f.opt_float(data, "expected_hit_rate"),
            analytic_hit_rate=f.opt_float(data, "analytic_hit_rate"),
            p50_ms=f.float_or(data, "p50_ms", nan),
            p99_ms=f.float_or(data, "p99_ms", nan),
            mean_ms=f.float_or(data, "mean_ms", nan),
            hit_p50_ms=f.opt_float(data, "hit_p50_ms"),
            miss_p50_ms=f.opt_float(data, "miss_p50_ms"),
            miss_p99_ms=f.opt_float(data, "miss_p99_ms"),
            recall_mean=f.float_or(data, "recall_mean", nan),
            recall_p5=f.float_or(data, "recall_p5", nan),
            recall_min=f.float_or(data, "recall_min", nan),
            hit_recall_mean=f.opt_float(data, "hit_recall_mean"),
            writes=f.int_or(data, "writes", 0),
            stale_hits=f.int_or(data, "stale_hits", 0),
            stale_hit_fraction=f.opt_float(data, "stale_hit_fraction"),
            seconds=f.float_or(data, "seconds", nan),
            latency_hdr=f.text(data, "latency_hdr"),
            recall_per_request=_recalls(data.get("recall_per_request")),
        )


def _recalls(raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(float(v) for v in raw if isinstance(v, (int, float)) and not isinstance(v, bool))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResultCacheStudy:
    """Every cache configuration of one ``[result_cache]`` run, over one stream."""

    table: str  # schema-qualified
    metric: str
    k: int
    zipf: float
    stream_length: int
    distinct_queries: int
    jitter: float
    writes_per_second: float
    query_settings: Mapping[str, str]
    runs: tuple[CacheRun, ...]
    notes: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()  # the advice sentences, kept in results.json

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "metric": self.metric,
            "k": self.k,
            "zipf": self.zipf,
            "stream_length": self.stream_length,
            "distinct_queries": self.distinct_queries,
            "jitter": self.jitter,
            "writes_per_second": self.writes_per_second,
            "query_settings": dict(self.query_settings),
            "runs": [run.to_dict() for run in self.runs],
            "notes": list(self.notes),
            "recommendations": list(self.recommendations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultCacheStudy:
        """Read the JSON form back; fields an older or partial file lacks get defaults."""
        return cls(
            table=f.text(data, "table"),
            metric=f.text(data, "metric"),
            k=f.int_or(data, "k", 0),
            zipf=f.float_or(data, "zipf", math.nan),
            stream_length=f.int_or(data, "stream_length", 0),
            distinct_queries=f.int_or(data, "distinct_queries", 0),
            jitter=f.float_or(data, "jitter", math.nan),
            writes_per_second=f.float_or(data, "writes_per_second", math.nan),
            query_settings=f.str_map(data, "query_settings"),
            runs=tuple(CacheRun.from_dict(run) for run in f.objects(data, "runs")),
            notes=tuple(f.strings(data, "notes")),
            recommendations=tuple(f.strings(data, "recommendations")),
        )


def from_results(results: Results) -> ResultCacheStudy | None:
    """The result-cache record of a results file, or None when the run has none."""
    data = results.tuning.result_cache if results.tuning is not None else None
    return ResultCacheStudy.from_dict(data) if isinstance(data, Mapping) else None


def into_results(results: Results, study: ResultCacheStudy) -> None:
    """Keep the record's JSON form at ``tuning.result_cache``."""
    if results.tuning is None:
        results.tuning = TuningSection()
    results.tuning.result_cache = study.to_dict()
