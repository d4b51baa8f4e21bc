"""Concurrency analysis of load points: series, the Universal Scalability Law, the knee.

Load points are grouped into series that differ only in the number of clients
(same engine, pooling strategy, pool parameters, mode and target rate). Python-engine
closed-loop series are fitted with Gunther's Universal Scalability Law

    X(N) = gamma * N / (1 + alpha * (N - 1) + beta * N * (N - 1))

whose peak sits at N* = sqrt((1 - alpha) / beta). pgbench series are kept apart as a
reference: they show what the server does without the Python client in the way.

Only ``valid`` points are fitted or recommended; ``suspect`` points (client-bound)
take part but are called out, since they may understate what the server can do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..results import LoadPoint, Results
from ..spec.model import ENGINES, LOAD_MODES, POOLING_STRATEGIES

DEFAULT_SLO_P99_MS = 50.0  # LoadSpec's default, for results whose spec lacks [load]
MIN_CLIENT_COUNTS = 3  # three parameters need at least three distinct N
LITTLE_TOLERANCE = 0.2  # |L / expected - 1| above this gets a note
REFERENCE_ENGINE = "pgbench"
# A pool wait this large a share of mean latency is what makes the tail, not the server.
_POOL_WAIT_SHARE = 0.25
# R² below this: the curve is a poor description of the points; N* is only a hint.
_GOOD_FIT_R2 = 0.8
# Several starting points: the USL surface has flat valleys where one start can stall.
_STARTS = ((0.01, 1e-4), (0.1, 1e-3), (0.3, 1e-2), (0.01, 1e-1))
# alpha or beta whose effect at the largest measured N is below this are taken as 0.
_NEGLIGIBLE = 1e-6
_NOT_IMPLIED = object()
# Pool parameters left out of labels when they hold psycopg_pool's defaults.
_IMPLIED_DEFAULTS: dict[str, Any] = {"timeout_s": 30.0, "max_waiting": 0}
_POOL_KEY_ORDER = ("pool_mode", "max_size", "pool_size", "min_size", "timeout_s", "max_waiting")

FloatArray = npt.NDArray[np.float64]


# --- the Universal Scalability Law ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UslFit:
    """A fitted USL curve: X(N) = gamma*N / (1 + alpha(N-1) + beta*N(N-1))."""

    gamma: float  # λ in Gunther's notation: throughput of one client, no contention (QPS)
    alpha: float  # contention (serialised fraction), 0..1
    beta: float  # coherency (crosstalk) penalty, >= 0
    r_squared: float
    n_star: float  # clients at peak throughput; inf when beta == 0
    peak_qps: float  # X(N*), or the ceiling gamma/alpha when beta == 0 (inf if alpha == 0 too)
    points: int  # measurements the fit used

    def predict(self, clients: float) -> float:
        return usl(clients, self.gamma, self.alpha, self.beta)


def usl(clients: float, gamma: float, alpha: float, beta: float) -> float:
    n = clients
    return gamma * n / (1.0 + alpha * (n - 1.0) + beta * n * (n - 1.0))


def _usl_array(n: FloatArray, gamma: float, alpha: float, beta: float) -> FloatArray:
    return gamma * n / (1.0 + alpha * (n - 1.0) + beta * n * (n - 1.0))


def fit_usl(clients: Sequence[float], throughput: Sequence[float]) -> UslFit | None:
    """Least-squares USL fit; None with fewer than 3 distinct client counts or no convergence.

    Points with N < 1 or a non-positive / non-finite throughput are ignored.
    """
    pairs = [
        (float(n), float(x))
        for n, x in zip(clients, throughput, strict=True)
        if n >= 1 and math.isfinite(x) and x > 0
    ]
    if len({n for n, _ in pairs}) < MIN_CLIENT_COUNTS:
        return None
    n_arr = np.array([n for n, _ in pairs], dtype=np.float64)
    x_arr = np.array([x for _, x in pairs], dtype=np.float64)
    # Fit on a normalised scale so all three parameters are O(1) for the optimiser;
    # the best per-client throughput is close to gamma (exactly gamma at N = 1).
    scale = float(np.max(x_arr / n_arr))
    params = _best_fit(n_arr, x_arr / scale)
    if params is None:
        return None
    gamma, alpha, beta = params[0] * scale, params[1], params[2]
    n_max = float(np.max(n_arr))
    if beta * n_max * n_max < _NEGLIGIBLE:  # optimiser dust, not a measured penalty
        beta = 0.0
    if alpha * n_max < _NEGLIGIBLE:
        alpha = 0.0
    predicted = _usl_array(n_arr, gamma, alpha, beta)
    n_star = math.sqrt((1.0 - alpha) / beta) if beta > 0 else math.inf
    return UslFit(
        gamma=gamma,
        alpha=alpha,
        beta=beta,
        r_squared=_r_squared(x_arr, predicted),
        n_star=n_star,
        peak_qps=_peak(gamma, alpha, beta, n_star),
        points=len(pairs),
    )


def _best_fit(n: FloatArray, x: FloatArray) -> tuple[float, float, float] | None:
    """The lowest-residual curve_fit over a few starts, or None if none converged."""
    # scipy's import costs ~0.3 s; only a report with load points pays it.
    from scipy.optimize import (  # type: ignore[import-untyped, unused-ignore]
        OptimizeWarning,
        curve_fit,
    )

    best: tuple[float, tuple[float, float, float]] | None = None
    for alpha0, beta0 in _STARTS:
        try:
            with warnings.catch_warnings():
                # 3 points for 3 parameters leave no covariance estimate; we do not use it.
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                found, _cov = curve_fit(
                    _usl_array,
                    n,
                    x,
                    p0=(1.0, alpha0, beta0),
                    bounds=([1e-12, 0.0, 0.0], [np.inf, 1.0, np.inf]),
                    maxfev=20_000,
                    ftol=1e-12,
                    xtol=1e-12,
                    gtol=1e-12,
                )
        except (RuntimeError, ValueError):  # no convergence / infeasible numbers
            continue
        params = (float(found[0]), float(found[1]), float(found[2]))
        if not all(math.isfinite(v) for v in params):
            continue
        sse = float(np.sum((x - _usl_array(n, *params)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, params)
    return None if best is None else best[1]


def _r_squared(observed: FloatArray, predicted: FloatArray) -> float:
    ss_res = float(np.sum((observed - predicted) ** 2))
    ss_tot = float(np.sum((observed - np.mean(observed)) ** 2))
    mean = float(np.mean(observed))
    if ss_tot <= (1e-9 * mean) ** 2 * len(observed):
        # flat throughput: R² is undefined; call a curve within 1% of it a perfect fit
        rms = math.sqrt(ss_res / len(observed))
        return 1.0 if rms <= 0.01 * mean else 0.0
    return 1.0 - ss_res / ss_tot


def _peak(gamma: float, alpha: float, beta: float, n_star: float) -> float:
    if math.isinf(n_star):
        return gamma / alpha if alpha > 0 else math.inf
    return usl(max(n_star, 1.0), gamma, alpha, beta)  # N* < 1: one client is already best


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
        _rank(p.engine, ENGINES),
        _rank(p.strategy, POOLING_STRATEGIES),
        p.strategy,
        _pool_sort_key(p.pool),
        _rank(p.mode, LOAD_MODES),
        p.target_rate or 0.0,
    )


def _rank(value: str, known: Sequence[str]) -> int:
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
        parts.append(str(value) if key == "pool_mode" else f"{key}={_plain(value)}")
    return " ".join(parts)


def pool_params_text(pool: dict[str, Any]) -> str:
    """Every pool parameter, for tables: ``max_size=8, min_size=8, timeout_s=30, ...``."""
    return ", ".join(f"{k}={_plain(pool[k])}" for k in _ordered_pool_keys(pool))


def series_label(
    engine: str, strategy: str, pool: dict[str, Any], mode: str, target_rate: float | None
) -> str:
    """``psycopg_pool max_size=8``, ``pgbench direct``, ``direct open 500/s``."""
    parts = [engine] if engine != "python" else []
    parts.append(strategy)
    if pool:
        parts.append(pool_label(pool))
    if mode == "open":
        parts.append(f"open {_sig(target_rate)}/s" if target_rate else "open")
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


@dataclasses.dataclass(frozen=True)
class LittleCheck:
    """Little's law against the client count.

    In a closed loop every client is either waiting for an operation or thinking,
    so L = X*W should equal clients - X*think_time (just ``clients`` without think
    time). ``ratio`` = L / expected; in an open loop it is informational only.
    """

    in_flight: float
    expected: float
    ratio: float
    note: str  # empty when consistent (or open loop)


def littles_law_check(point: LoadPoint) -> LittleCheck | None:
    """L, the in-flight count the loop implies, their ratio and a note when off by > 20%."""
    if point.latency_ms is None or point.qps <= 0:
        return None
    in_flight = littles_law(point)
    thinking = point.qps * point.think_time_ms / 1000.0 if point.mode == "closed" else 0.0
    expected = point.clients - thinking
    if expected <= 0:
        note = "think time accounts for every client; Little's law cannot be checked"
        return LittleCheck(in_flight, expected, math.nan, note)
    ratio = in_flight / expected
    return LittleCheck(in_flight, expected, ratio, _little_note(point, ratio, expected))


def _little_note(point: LoadPoint, ratio: float, expected: float) -> str:
    if point.mode != "closed" or abs(ratio - 1.0) <= LITTLE_TOLERANCE:
        return ""
    busy = f"{_plain(expected) if expected.is_integer() else _sig(expected)} busy clients"
    if ratio < 1.0:
        return (
            f"L = X·W is only {ratio:.2f}× the {busy}: the client may add waiting time "
            "outside the measured latency (Python overhead, GIL, connection checkout)"
        )
    return (
        f"L = X·W is {ratio:.2f}× the {busy}: throughput and latency windows disagree "
        "(operations counted outside the measured window?)"
    )


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


# --- the recommendation ------------------------------------------------------------------------


def recommend_pool_size(results: Results, slo_p99_ms: float) -> str:
    """One plain-English sentence: which pooling to use and the evidence for it."""
    python = [p for p in results.load_points if p.engine == "python"]
    if not python:
        return _no_python_points(results, slo_p99_ms)
    valid = [p for p in python if p.valid]
    if not valid:
        return (
            f"No valid load point was measured (all {len(python)} python-engine points are "
            f"invalid: {_first_reason(python)}), so no pool size can be recommended."
        )
    series = load_series(results.load_points)
    knees = _strategy_knees(valid, slo_p99_ms)
    if not knees:
        return _nothing_meets_slo(valid, series, slo_p99_ms) + _invalid_tail(python) + "."
    best = knees[0]
    best_series = series_of(best, series)
    clauses = [
        f"Use {_configuration(best, results.environment.host.cores)}: it sustained "
        f"{_qps(best.qps)} QPS at {clients_text(best.clients)} with p99 {_sig(p99(best))} ms "
        f"≤ SLO {_sig(slo_p99_ms)} ms",
        _usl_clause(best_series),
        _pool_wait_clause(best_series, slo_p99_ms),
        _others_clause(knees[1:], valid, best.strategy),
        _suspect_clause(best),
    ]
    return "; ".join(c for c in clauses if c) + _invalid_tail(python) + "."


def _strategy_knees(valid: Sequence[LoadPoint], slo: float) -> list[LoadPoint]:
    """Each strategy's knee (over all its pool sizes and modes), best first."""
    knees = []
    for strategy in dict.fromkeys(p.strategy for p in valid):
        point = knee([p for p in valid if p.strategy == strategy], slo)
        if point is not None:
            knees.append(point)
    return sorted(knees, key=lambda p: (-p.qps, p.clients, _rank(p.strategy, POOLING_STRATEGIES)))


def _configuration(point: LoadPoint, cores: int) -> str:
    """How to set it up: ``psycopg_pool max_size=8 (≈ 4×cores)``."""
    if point.strategy == "direct":
        hint = _cores_hint(point.clients, cores)
        return f"direct connections, one per client ({point.clients}{hint})"
    if point.strategy == "connect_per_op":
        return "connect_per_op (a new connection per query)"
    size = _pool_size(point)
    hint = _cores_hint(size, cores) if size is not None else ""
    pool = pool_label(point.pool)
    text = f"{point.strategy} {pool}" if pool else point.strategy
    return f"{text} ({hint.removeprefix(' ')})" if hint else text


def _pool_size(point: LoadPoint) -> int | None:
    value = point.pool.get("max_size", point.pool.get("pool_size"))
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cores_hint(connections: int, cores: int) -> str:
    if cores <= 0:
        return ""
    ratio = connections / cores
    return f" ≈ {ratio:.0f}×cores" if ratio >= 10 else f" ≈ {ratio:.2g}×cores"


def _usl_clause(series: LoadSeries) -> str:
    if not series.usl_eligible:
        return ""
    fit = series.fit
    if fit is None:
        counts = len({p.clients for p in series.valid_points})
        return (
            f"only {counts} client count{'s' if counts != 1 else ''} measured, too few to "
            f"fit the USL (needs {MIN_CLIENT_COUNTS})"
        )
    quality = f"R² {fit.r_squared:.2f}" + ("" if fit.r_squared >= _GOOD_FIT_R2 else ", a poor fit")
    measured = max(p.clients for p in series.valid_points)
    if math.isinf(fit.n_star):
        if fit.alpha <= 0:
            return f"the USL fit ({quality}) shows linear scaling over the measured clients"
        return (
            f"the USL fit ({quality}) finds no coherency penalty: throughput levels off "
            f"near {_qps(fit.peak_qps)} QPS rather than falling"
        )
    if fit.n_star <= measured:
        return (
            f"beyond N*≈{_sig(fit.n_star, 2)} clients the USL fit ({quality}) predicts "
            "throughput falls"
        )
    return (
        f"the USL fit ({quality}) puts the peak at N*≈{_sig(fit.n_star, 2)} clients, past "
        f"the {measured} measured"
    )


def _pool_wait_clause(series: LoadSeries, slo: float) -> str:
    """Name the pool wait when it is a large share of latency where the SLO is missed."""
    for p in series.valid_points:
        wait = pool_wait_ms_per_op(p)
        if p99(p) <= slo or wait is None or p.latency_ms is None or p.latency_ms.mean <= 0:
            continue
        share = wait / p.latency_ms.mean
        if share >= _POOL_WAIT_SHARE:
            return (
                f"at {clients_text(p.clients)} operations waited {_sig(wait)} ms each for a pool "
                f"connection ({share:.0%} of mean latency), which explains its p99 of "
                f"{_sig(p99(p))} ms"
            )
    return ""


def _others_clause(others: Sequence[LoadPoint], valid: Sequence[LoadPoint], best: str) -> str:
    parts = [f"{p.strategy} {_qps(p.qps)} QPS ({clients_text(p.clients)})" for p in others]
    reached = {p.strategy for p in others} | {best}
    missed = [s for s in dict.fromkeys(p.strategy for p in valid) if s not in reached]
    text = f"at their best within the SLO, {', '.join(parts)}" if parts else ""
    if missed:
        never = f"{' and '.join(missed)} met the SLO at no point"
        text = f"{text}; {never}" if text else never
    return text


def _suspect_clause(point: LoadPoint) -> str:
    if not point.suspect:
        return ""
    why = "; ".join(point.notes) or "client-bound"
    return f"caution: that point is flagged suspect ({why}), so the server may do more"


def _invalid_tail(python: Sequence[LoadPoint]) -> str:
    invalid = sum(not p.valid for p in python)
    if not invalid:
        return ""
    return f" ({invalid} invalid load point{'s were' if invalid != 1 else ' was'} left out)"


def _nothing_meets_slo(valid: Sequence[LoadPoint], series: Sequence[LoadSeries], slo: float) -> str:
    measured = [p for p in valid if p.latency_ms is not None and p.qps > 0]
    if not measured:
        return (
            "No valid load point completed operations with a latency measurement, "
            "so no pool size can be recommended"
        )
    lowest = min(measured, key=lambda p: (p99(p), -p.qps, p.clients))
    text = (
        f"No load point met p99 ≤ SLO {_sig(slo)} ms: the lowest p99 was {_sig(p99(lowest))} ms "
        f"({point_label(lowest)}, {_qps(lowest.qps)} QPS); use fewer clients, a pool, "
        "or a looser SLO"
    )
    wait = _pool_wait_clause(series_of(lowest, series), slo)
    return f"{text}; {wait}" if wait else text


def _no_python_points(results: Results, slo: float) -> str:
    reference = knee(results.load_points, slo)
    if reference is None:
        return "No python-engine load point was measured, so no pool size can be recommended."
    return (
        "No python-engine load point was measured, so no pool size can be recommended; "
        f"the pgbench reference reached {_qps(reference.qps)} QPS at "
        f"{clients_text(reference.clients)} with p99 {_sig(p99(reference))} ms "
        f"≤ SLO {_sig(slo)} ms."
    )


def _first_reason(points: Sequence[LoadPoint]) -> str:
    return next(("; ".join(p.notes) for p in points if p.notes), "no reason recorded")


# --- number text (report.plots has the same rules, but importing it would pull matplotlib) ----


def _sig(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.{digits}g}")
    if abs(rounded) >= 10 ** (digits - 1):
        return f"{rounded:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    return f"{rounded:.{decimals}f}"


def _qps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else _sig(value)


def _plain(value: Any) -> str:
    """30.0 -> 30, 2.5 -> 2.5: pool parameters as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
