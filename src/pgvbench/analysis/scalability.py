"""Concurrency analysis of load points: series, the Universal Scalability Law, the knee.

Load points are grouped into series that differ only in the number of clients
(same engine, pooling strategy, pool parameters, mode and target rate). Python-engine
closed-loop series are fitted with Gunther's Universal Scalability Law (usl.py).
pgbench series are kept apart as a reference: they show what the server does without
the Python client in the way. The advice in words is pool_advice.py.

Only ``valid`` points are fitted or recommended; ``suspect`` points (client-bound)
take part but are called out, since they may understate what the server can do.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from ..report.fmt import format_sig
from ..results import LoadPoint, Results
from ..spec.model import ENGINES, LOAD_MODES, POOLING_STRATEGIES
from .usl import USL_PARAMETERS, UslFit, fit_usl

DEFAULT_SLO_P99_MS = 50.0  # LoadSpec's default, for results whose spec lacks [load]
REFERENCE_ENGINE = "pgbench"
_NOT_IMPLIED = object()
# Pool parameters left out of labels when they hold psycopg_pool's defaults.
_IMPLIED_DEFAULTS: dict[str, Any] = {"timeout_s": 30.0, "max_waiting": 0}
_POOL_KEY_ORDER = ("pool_mode", "max_size", "pool_size", "min_size", "timeout_s", "max_waiting")


# --- series ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoadSeries:
    """Load points that differ only in the client count, ordered by clients."""

    engine: str
    strategy: str
    pool: dict[str, Any]
    mode: str
    target_rate: float | None
    points: tuple[LoadPoint, ...]
    fit: UslFit | None  # None when not eligible, too few points, or no convergence

    @property
    def label(self) -> str:
        return series_label(self.engine, self.strategy, self.pool, self.mode, self.target_rate)

    @property
    def reference(self) -> bool:
        """A pgbench series: drawn and tabled as a reference, never recommended."""
        return self.engine == REFERENCE_ENGINE

    @property
    def usl_eligible(self) -> bool:
        return self.engine == "python" and self.mode == "closed"

    @property
    def valid_points(self) -> list[LoadPoint]:
        return [p for p in self.points if p.valid]

    @property
    def evidence_fit(self) -> UslFit | None:
        """The fit when it is evidence (residual degrees of freedom, see usl.py); None for
        a sketch, which text and advice must not rest on."""
        return self.fit if self.fit is not None and self.fit.evidence else None


def sketch_text(fit: UslFit) -> str:
    """How the report names a fit that is not evidence: ``sketch: 3 points for 3 parameters``."""
    n = fit.client_counts
    return f"sketch: {n} point{'s' if n != 1 else ''} for {USL_PARAMETERS} parameters"


def load_series(points: Sequence[LoadPoint]) -> list[LoadSeries]:
    """Group points into series (python before pgbench, strategies in spec order)."""
    groups: dict[tuple[str, str, str, str, float | None], list[LoadPoint]] = {}
    for p in points:
        groups.setdefault(_series_key(p), []).append(p)
    ordered = sorted(groups.values(), key=lambda members: _series_order(members[0]))
    return [_make_series(members) for members in ordered]


def series_of(point: LoadPoint, series: Sequence[LoadSeries]) -> LoadSeries:
    """The series ``point`` belongs to (compared by identity)."""
    return next(s for s in series if any(p is point for p in s.points))


def _series_key(p: LoadPoint) -> tuple[str, str, str, str, float | None]:
    # pool values are JSON scalars; a canonical dump makes the dict hashable
    return (p.engine, p.strategy, json.dumps(p.pool, sort_keys=True), p.mode, p.target_rate)


def _series_order(p: LoadPoint) -> tuple[Any, ...]:
    return (
        rank(p.engine, ENGINES),
        rank(p.strategy, POOLING_STRATEGIES),
        p.strategy,
        _pool_sort_key(p.pool),
        rank(p.mode, LOAD_MODES),
        p.target_rate or 0.0,
    )


def rank(value: str, known: Sequence[str]) -> int:
    return known.index(value) if value in known else len(known)


def _pool_sort_key(pool: dict[str, Any]) -> tuple[tuple[str, int, float, str], ...]:
    """Numbers numerically (max_size 4 before 16), anything else as text."""
    out = []
    for key in _ordered_pool_keys(pool):
        value = pool[key]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        out.append((key, 0 if numeric else 1, float(value) if numeric else 0.0, str(value)))
    return tuple(out)


def _make_series(members: list[LoadPoint]) -> LoadSeries:
    first = members[0]
    ordered = tuple(sorted(members, key=lambda p: p.clients))
    series = LoadSeries(
        engine=first.engine,
        strategy=first.strategy,
        pool=dict(first.pool),
        mode=first.mode,
        target_rate=first.target_rate,
        points=ordered,
        fit=None,
    )
    if not series.usl_eligible:
        return series
    valid = series.valid_points
    fit = fit_usl([p.clients for p in valid], [p.qps for p in valid])
    return dataclasses.replace(series, fit=fit)


def _ordered_pool_keys(pool: dict[str, Any]) -> list[str]:
    known = [k for k in _POOL_KEY_ORDER if k in pool]
    return known + sorted(k for k in pool if k not in _POOL_KEY_ORDER)


def pool_label(pool: dict[str, Any]) -> str:
    """Compact pool parameters: ``max_size=8``, ``transaction pool_size=20``.

    min_size equal to max_size and psycopg_pool's default timeout / max_waiting are
    left out; the point table shows every parameter.
    """
    parts: list[str] = []
    for key in _ordered_pool_keys(pool):
        value = pool[key]
        if key == "min_size" and value == pool.get("max_size"):
            continue
        if _IMPLIED_DEFAULTS.get(key, _NOT_IMPLIED) == value:
            continue
        parts.append(str(value) if key == "pool_mode" else f"{key}={plain_number(value)}")
    return " ".join(parts)


def pool_params_text(pool: dict[str, Any]) -> str:
    """Every pool parameter, for tables: ``max_size=8, min_size=8, timeout_s=30, ...``."""
    return ", ".join(f"{k}={plain_number(pool[k])}" for k in _ordered_pool_keys(pool))


def series_label(
    engine: str, strategy: str, pool: dict[str, Any], mode: str, target_rate: float | None
) -> str:
    """``psycopg_pool max_size=8``, ``pgbench direct``, ``direct open 500/s``."""
    parts = [engine] if engine != "python" else []
    parts.append(strategy)
    if pool:
        parts.append(pool_label(pool))
    if mode == "open":
        parts.append(f"open {format_sig(target_rate)}/s" if target_rate else "open")
    return " ".join(p for p in parts if p)


def point_label(point: LoadPoint) -> str:
    """A series label plus the client count: how text names one load point."""
    label = series_label(point.engine, point.strategy, point.pool, point.mode, point.target_rate)
    return f"{label} at {clients_text(point.clients)}"


def clients_text(n: int) -> str:
    """``1 client``, ``16 clients``."""
    return f"{n} client{'s' if n != 1 else ''}"


# --- knee, Little's law, pool wait -------------------------------------------------------------


def knee(points: Sequence[LoadPoint], slo_p99_ms: float) -> LoadPoint | None:
    """The highest-throughput valid point whose p99 is within the SLO.

    Ties go to fewer clients (the cheaper configuration), then to the lower p99.
    """
    within = [
        p
        for p in points
        if p.valid and p.latency_ms is not None and p.latency_ms.p99 <= slo_p99_ms and p.qps > 0
    ]
    return min(within, key=lambda p: (-p.qps, p.clients, p99(p)), default=None)


def p99(point: LoadPoint) -> float:
    """p99 latency in ms (inf when unmeasured, so it never meets an SLO)."""
    return point.latency_ms.p99 if point.latency_ms is not None else math.inf


def littles_law(point: LoadPoint) -> float:
    """L = X * W: mean operations in flight (throughput x mean latency in seconds)."""
    if point.latency_ms is None:
        return math.nan
    return point.qps * point.latency_ms.mean / 1000.0


def pool_wait_ms_per_op(point: LoadPoint) -> float | None:
    """Mean time an operation waited for a pool connection (psycopg_pool stats)."""
    if not point.pool_stats or point.operations <= 0:
        return None
    wait = point.pool_stats.get("requests_wait_ms")
    return None if wait is None else wait / point.operations


def resolve_slo(results: Results) -> float:
    """The spec's [load] slo_p99_ms, else LoadSpec's default."""
    load: Any = results.spec.get("load")
    slo = load.get("slo_p99_ms") if isinstance(load, dict) else None
    if isinstance(slo, int | float) and not isinstance(slo, bool) and slo > 0:
        return float(slo)
    return DEFAULT_SLO_P99_MS


def plain_number(value: Any) -> str:
    """30.0 -> 30, 2.5 -> 2.5: pool parameters as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
