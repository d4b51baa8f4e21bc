"""Plain-English advice from load points: which pooling to use, and Little's-law notes.

Reads the series, knees and USL fits of scalability.py and usl.py; writes sentences
only (no measurement here).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ..advice_margin import Margin, ahead_clause, from_rounds, from_samples, within_noise
from ..report.fmt import format_qps, format_sig
from ..results import LoadPoint, Results
from ..spec.model import POOLING_STRATEGIES
from .scalability import (
    LoadSeries,
    clients_text,
    knee,
    littles_law,
    load_series,
    p99,
    plain_number,
    point_label,
    pool_label,
    pool_wait_ms_per_op,
    rank,
    series_of,
    sketch_text,
)
from .usl import EVIDENCE_CLIENT_COUNTS, MIN_CLIENT_COUNTS

LITTLE_TOLERANCE = 0.2  # |L / expected - 1| above this gets a note
# A pool wait this large a share of mean latency is what makes the tail, not the server.
_POOL_WAIT_SHARE = 0.25
# R² below this: the curve is a poor description of the points; N* is only a hint.
_GOOD_FIT_R2 = 0.8


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
    busy = (
        f"{plain_number(expected) if expected.is_integer() else format_sig(expected)} busy clients"
    )
    if ratio < 1.0:
        return (
            f"L = X·W is only {ratio:.2f}× the {busy}: the client may add waiting time "
            "outside the measured latency (Python overhead, GIL, connection checkout)"
        )
    return (
        f"L = X·W is {ratio:.2f}× the {busy}: throughput and latency windows disagree "
        "(operations counted outside the measured window?)"
    )


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
    cores = results.environment.server_cores()  # a [server] cpus cpuset, else the host's
    sustained = (
        f"{format_qps(best.qps)} QPS at {clients_text(best.clients)} "
        f"with p99 {format_sig(p99(best))} ms ≤ SLO {format_sig(slo_p99_ms)} ms"
        + _per_core(best.qps, results)
    )
    runner_up = knees[1] if len(knees) > 1 else None
    margin = qps_margin(runner_up, best) if runner_up is not None else None
    if runner_up is not None and margin is not None and margin.noise is not None:
        if not margin.decisive:
            lead = (
                within_noise(best.strategy, runner_up.strategy, margin)
                + f": {_configuration(best, cores)} sustained {sustained}"
            )
        else:
            lead = f"Use {_configuration(best, cores)}: it sustained {sustained}, " + ahead_clause(
                runner_up.strategy, margin, measure="QPS"
            )
    else:
        lead = f"Use {_configuration(best, cores)}: it sustained {sustained}"
        if runner_up is not None and margin is not None:
            lead += ", " + ahead_clause(runner_up.strategy, margin, measure="QPS")
    clauses = [
        lead,
        _usl_clause(best_series),
        _pool_wait_clause(best_series, slo_p99_ms),
        _others_clause(knees[1:], valid, best.strategy),
        _suspect_clause(best),
    ]
    return "; ".join(c for c in clauses if c) + _invalid_tail(python) + "."


def qps_margin(reference: LoadPoint, point: LoadPoint) -> Margin | None:
    """``point``'s throughput over ``reference``'s against the noise of both.

    Two points of one client count ran the same interleaved rounds: their windows are
    pairs, and the paired ratio's interval is the noise. Otherwise the noise is the spread
    over repeats when both points were measured more than once, else over their one-second
    windows (full seconds only); None when a point has neither measured throughput nor
    windows.
    """
    if (
        reference.clients == point.clients
        and len(reference.window_qps) == len(point.window_qps) >= 2
    ):
        try:
            return from_rounds(reference.window_qps, point.window_qps)
        except ValueError:  # no round measured on both sides: fall back to the spreads
            pass
    a, b = _repeat_qps(reference), _repeat_qps(point)
    basis = "repeats"
    if len(a) < 2 or len(b) < 2:
        a, b = _window_qps(reference), _window_qps(point)
        basis = "one-second windows"
    if len(a) < 2 or len(b) < 2:
        a, b, basis = [reference.qps], [point.qps], "windows"
    if not any(x > 0 for x in a) or not b:
        return None
    return from_samples(a, b, basis=basis)


def _repeat_qps(point: LoadPoint) -> list[float]:
    return [s.qps for s in point.samples if s.operations > 0]


def _window_qps(point: LoadPoint) -> list[float]:
    """Operations per full second of the measured window (a last partial second is left out)."""
    full = math.floor(point.duration_s)
    return [float(s.ops) for s in point.timeseries if s.t < full]


def _strategy_knees(valid: Sequence[LoadPoint], slo: float) -> list[LoadPoint]:
    """Each strategy's knee (over all its pool sizes and modes), best first."""
    knees = []
    for strategy in dict.fromkeys(p.strategy for p in valid):
        point = knee([p for p in valid if p.strategy == strategy], slo)
        if point is not None:
            knees.append(point)
    return sorted(knees, key=lambda p: (-p.qps, p.clients, rank(p.strategy, POOLING_STRATEGIES)))


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


def _per_core(qps: float, results: Results) -> str:
    """Per server core, when the server had a cpuset of its own ([server] cpus): its
    cores are then known, and the client ran beside them, not on them."""
    limits = results.environment.server_limits
    if limits is None or not limits.cpus:
        return ""
    n = len(limits.cpus)
    return f" ({format_qps(qps / n)} QPS per server core, {n} core{'s' if n > 1 else ''})"


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
    if not fit.evidence:  # a curve through every point: no peak or R² to quote
        return (
            f"the USL curve is a {sketch_text(fit)}, not evidence of where throughput peaks "
            f"(needs {EVIDENCE_CLIENT_COUNTS} client counts)"
        )
    quality = f"R² {fit.r_squared:.2f}" + ("" if fit.r_squared >= _GOOD_FIT_R2 else ", a poor fit")
    measured = max(p.clients for p in series.valid_points)
    if math.isinf(fit.n_star):
        if fit.alpha <= 0:
            return f"the USL fit ({quality}) shows linear scaling over the measured clients"
        return (
            f"the USL fit ({quality}) finds no coherency penalty: throughput levels off "
            f"near {format_qps(fit.peak_qps)} QPS rather than falling"
        )
    if fit.n_star <= measured:
        return (
            f"beyond N*≈{format_sig(fit.n_star, 2)} clients the USL fit ({quality}) predicts "
            "throughput falls"
        )
    return (
        f"the USL fit ({quality}) puts the peak at N*≈{format_sig(fit.n_star, 2)} clients, past "
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
                f"at {clients_text(p.clients)} operations waited {format_sig(wait)} ms each "
                f"for a pool connection ({share:.0%} of mean latency), which explains its p99 of "
                f"{format_sig(p99(p))} ms"
            )
    return ""


def _others_clause(others: Sequence[LoadPoint], valid: Sequence[LoadPoint], best: str) -> str:
    parts = [f"{p.strategy} {format_qps(p.qps)} QPS ({clients_text(p.clients)})" for p in others]
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
        f"No load point met p99 ≤ SLO {format_sig(slo)} ms: "
        f"the lowest p99 was {format_sig(p99(lowest))} ms "
        f"({point_label(lowest)}, {format_qps(lowest.qps)} QPS); use fewer clients, a pool, "
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
        f"the pgbench reference reached {format_qps(reference.qps)} QPS at "
        f"{clients_text(reference.clients)} with p99 {format_sig(p99(reference))} ms "
        f"≤ SLO {format_sig(slo)} ms."
    )


def _first_reason(points: Sequence[LoadPoint]) -> str:
    return next(("; ".join(p.notes) for p in points if p.notes), "no reason recorded")
