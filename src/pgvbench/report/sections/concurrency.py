"""The concurrency part: load points, the Universal Scalability Law fit and Little's law."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...analysis.pool_advice import littles_law_check, recommend_pool_size
from ...analysis.scalability import (
    LoadSeries,
    clients_text,
    knee,
    load_series,
    point_label,
    pool_params_text,
    pool_wait_ms_per_op,
    resolve_slo,
    sketch_text,
)
from ...analysis.usl import EVIDENCE_CLIENT_COUNTS, MIN_CLIENT_COUNTS, USL_PARAMETERS
from ...results import LoadPoint, Results
from ..document import Block, Heading, Image, Paragraph, Table
from ..fmt import DASH, format_optional, format_params, format_qps, format_sig, latency_cells


def concurrency_section(results: Results, images: Sequence[Image]) -> list[Block]:
    if not results.load_points:
        return []
    slo = resolve_slo(results)
    series = load_series(results.load_points)
    return [
        Heading(2, "Concurrency"),
        Paragraph("", lead=recommend_pool_size(results, slo), style="recommendation"),
        Paragraph(_knee_sentence(results.load_points, slo)),
        Paragraph(_load_setup(results, slo)),
        *images,
        *_load_points_table(series),
        *_usl_table(series),
        *_little_table(series),
    ]


def load_order(results: Results) -> list[LoadPoint]:
    """Load points as the tables list them: series by series, by clients."""
    if not results.load_points:
        return []
    return [p for s in load_series(results.load_points) for p in s.points]


def _knee_sentence(points: Sequence[LoadPoint], slo: float) -> str:
    best = knee([p for p in points if p.engine == "python"], slo)
    reference = knee([p for p in points if p.engine == "pgbench"], slo)
    if best is None:
        text = f"No python-engine load point met p99 ≤ SLO {format_sig(slo)} ms."
    else:
        text = (
            f"Highest throughput within p99 ≤ SLO {format_sig(slo)} ms: {point_label(best)}, "
            f"{format_qps(best.qps)} QPS (p99 {format_sig(_p99(best))} ms)."
        )
    if reference is not None:
        text += (
            f" pgbench reference: {format_qps(reference.qps)} QPS at "
            f"{clients_text(reference.clients)} (p99 {format_sig(_p99(reference))} ms)."
        )
    return text


def _p99(point: LoadPoint) -> float:
    assert point.latency_ms is not None  # knee() only returns points with latency
    return point.latency_ms.p99


def _load_setup(results: Results, slo: float) -> str:
    """What was run, and the pool-size rule of thumb to read the numbers against."""
    first = results.load_points[0]
    params = format_params(first.query_params)
    target = f"{first.index} with {params}" if params else first.index
    durations = sorted({(p.duration_s, p.warmup_s) for p in results.load_points})
    timing = ", ".join(
        f"{format_sig(d, 2)} s after {format_sig(w, 2)} s warm-up" for d, w in durations
    )
    cores = results.environment.server_cores()  # a [server] cpus cpuset, else the host's
    return (
        f"Load on {target}; each point measured for {timing}; SLO p99 ≤ {format_sig(slo)} ms. "
        f"Rule of thumb (HikariCP): pool size ≈ 2 × cores + effective spindles, "
        f"i.e. {2 * cores} + spindles on this {cores}-core "
        f"{'server' if results.environment.server_limits else 'host'}."
    )


_LOAD_HEADER = [
    "Engine", "Strategy", "Pool", "Clients", "Mode", "QPS", "p50 ms", "p95 ms", "p99 ms",
    "p99.9 ms", "Errors", "Dropped", "Pool wait ms/op", "Client CPU cores",
    "Server CPU cores", "Fidelity",
]  # fmt: skip
_OPEN_HEADER = ["Queue wait p99 ms", "Service p99 ms", "Sched. lag ms"]


def _load_points_table(series: Sequence[LoadSeries]) -> list[Block]:
    points = [p for s in series for p in s.points]
    open_loop = any(p.mode == "open" for p in points)
    header = [*_LOAD_HEADER, *(_OPEN_HEADER if open_loop else []), "Valid", "Notes"]
    rows = [_load_row(p, open_loop) for p in points]
    return [
        Heading(3, "Load points"),
        Paragraph(
            "Latency is measured by the client (open loop: from the intended start, so queueing "
            "counts). Pool wait is psycopg_pool's requests_wait_ms / operations. Fidelity is "
            "python QPS / pgbench QPS at the same SQL and clients, the two engines alternating in "
            "short windows (the arms of one client count run in random order each round); "
            "in brackets its 95% interval over those rounds. ⚠ suspect: the load "
            "generator may be the limit; ⚠ INVALID rows must not be used."
        ),
        Table(
            header,
            rows,
            flagged=[not p.valid for p in points],
            numeric=frozenset(range(3, len(header) - 2)) - {4},
        ),
    ]


def _load_row(p: LoadPoint, open_loop: bool) -> list[str]:
    wait = pool_wait_ms_per_op(p)
    row = [
        p.engine,
        p.strategy,
        pool_params_text(p.pool) or DASH,
        str(p.clients),
        _mode_text(p),
        format_qps(p.qps),
        *latency_cells(p.latency_ms, ("p50", "p95", "p99", "p999")),
        f"{p.errors:,}",
        f"{p.dropped:,}",
        DASH if wait is None else format_sig(wait),
        format_optional(p.client_cpu_cores, 2),
        format_optional(p.server_cpu_cores, 2),
        _fidelity_cell(p),
    ]
    if open_loop:
        row += [
            *latency_cells(p.queue_wait_ms, ("p99",)),
            *latency_cells(p.service_ms, ("p99",)),
            format_optional(p.schedule_lag_ms, 3),
        ]
    return [*row, _validity_word(p), _load_notes(p)]


def _fidelity_cell(p: LoadPoint) -> str:
    """The interleaved figure and its interval over the paired rounds, when recorded."""
    if p.fidelity is None:
        return DASH
    interval = p.fidelity_interval or {}
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return f"{p.fidelity:.2f}"
    return f"{p.fidelity:.2f} ({low:.2f}-{high:.2f})"


def _mode_text(p: LoadPoint) -> str:
    if p.mode == "open":
        rate = f" {format_sig(p.target_rate)}/s" if p.target_rate else ""
        return f"open{rate}" + (f" {p.arrival}" if p.arrival else "")
    think = f", think {format_sig(p.think_time_ms)} ms" if p.think_time_ms else ""
    return f"{p.mode}{think}"


def _validity_word(p: LoadPoint) -> str:
    if not p.valid:
        return "⚠ INVALID"
    return "⚠ suspect" if p.suspect else "yes"


def _load_notes(p: LoadPoint) -> str:
    notes = list(p.notes)
    if p.error_messages:
        message, count = max(p.error_messages.items(), key=lambda kv: (kv[1], kv[0]))
        notes.append(f"most frequent error ({count:,}×): {message}")
    if not notes and not p.valid:
        return "no reason recorded"
    return "; ".join(notes)


_USL_HEADER = ["Series", "Points", "γ QPS/client", "α", "β", "N*", "Peak QPS", "R²", "Note"]


def _usl_table(series: Sequence[LoadSeries]) -> list[Block]:
    fitted = [s for s in series if s.usl_eligible]
    intro = (
        "X(N) = γN / (1 + α(N−1) + βN(N−1)) fitted to the valid points of each python "
        "closed-loop series: α is contention, β coherency cost; throughput peaks at "
        "N* = √((1−α)/β). pgbench and open-loop series are not fitted. A fit is evidence "
        f"only with at least {EVIDENCE_CLIENT_COUNTS} client counts, two more than its "
        f"{USL_PARAMETERS} parameters: with fewer the curve passes through every point "
        "(R² 1 by construction), so it is shown as a sketch, without R², and no advice "
        "rests on it."
    )
    blocks: list[Block] = [Heading(3, "Universal Scalability Law"), Paragraph(intro)]
    if not fitted:
        return [*blocks, Paragraph("No python closed-loop series to fit.")]
    rows = [_usl_row(s) for s in fitted]
    return [*blocks, Table(_USL_HEADER, rows, numeric=frozenset(range(1, 8)))]


def _usl_row(s: LoadSeries) -> list[str]:
    valid = s.valid_points
    fit = s.fit
    if fit is None:
        counts = len({p.clients for p in valid})
        note = (
            f"too few client counts ({counts}; needs {MIN_CLIENT_COUNTS})"
            if counts < MIN_CLIENT_COUNTS
            else "the fit did not converge"
        )
        return [s.label, str(len(valid)), *[DASH] * 6, note]
    measured = max(p.clients for p in valid)
    if math.isinf(fit.n_star):
        n_star, note = "∞", "no coherency penalty: throughput levels off, no peak"
    else:
        n_star = format_sig(fit.n_star)
        note = "peak beyond the measured clients" if fit.n_star > measured else ""
    peak = "∞" if math.isinf(fit.peak_qps) else format_qps(fit.peak_qps)
    if not fit.evidence:
        note = "; ".join(n for n in (f"{sketch_text(fit)}: not evidence", note) if n)
    return [
        s.label,
        str(fit.points),
        format_sig(fit.gamma),
        format_sig(fit.alpha),
        format_sig(fit.beta),
        n_star,
        peak + (" (ceiling)" if math.isinf(fit.n_star) and fit.alpha > 0 else ""),
        f"{fit.r_squared:.3f}" if fit.evidence else DASH,
        note,
    ]


def _count(value: float) -> str:
    """Clients as a count (16, not 16.0), unless think time made it fractional."""
    return str(int(value)) if value.is_integer() else format_sig(value)


_LITTLE_HEADER = ["Series", "Clients", "QPS", "Mean ms", "L = X·W", "Expected", "Ratio", "Note"]


def _little_table(series: Sequence[LoadSeries]) -> list[Block]:
    rows: list[list[str]] = []
    for s in series:
        for p in s.points:
            check = littles_law_check(p)
            if check is None or p.latency_ms is None:
                continue
            note = check.note or ("open loop: informational" if p.mode == "open" else "")
            rows.append(
                [
                    s.label,
                    str(p.clients),
                    format_qps(p.qps),
                    format_sig(p.latency_ms.mean),
                    format_sig(check.in_flight),
                    _count(check.expected),
                    DASH if math.isnan(check.ratio) else f"{check.ratio:.2f}",
                    note,
                ]
            )
    intro = (
        "Little's law: operations in flight L = throughput × mean latency. In a closed loop "
        "each client always has one operation in flight unless it is thinking, so L should "
        "match the busy clients (Expected); a ratio off by more than 20% is noted."
    )
    blocks: list[Block] = [Heading(3, "Little's law cross-check"), Paragraph(intro)]
    if not rows:
        return [*blocks, Paragraph("No load point has both throughput and latency.")]
    return [*blocks, Table(_LITTLE_HEADER, rows, numeric=frozenset(range(1, 7)))]
