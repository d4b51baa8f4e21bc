"""Figures of the concurrency (load) points: throughput, latency and pool wait against
clients, and the per-second timeline of each series.

Drawn from a :class:`~pgvbench.results.Results` alone (see figures.py for how figures are
made and saved). Every plot function writes one PNG and returns its path, or returns None
when the results hold no load point to draw.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..analysis.scalability import (
    LoadSeries,
    load_series,
    pool_wait_ms_per_op,
    resolve_slo,
    sketch_text,
)
from ..analysis.usl import UslFit
from ..results import Latency, LoadPoint, Results
from .figures import (
    PALETTE,
    TARGET_COLOR,
    new_figure,
    save_figure,
    set_y_scale,
    tick_text,
    wants_log,
)
from .fmt import format_sig

_REFERENCE_COLOR = "#8c8c8c"  # pgbench: a reference, not a choice, so no palette colour


@dataclasses.dataclass(frozen=True)
class _LoadStyle:
    series: LoadSeries
    color: str


def _load_styles(results: Results) -> list[_LoadStyle]:
    """Every load series with its colour, the same in all concurrency figures."""
    styles: list[_LoadStyle] = []
    rank = 0
    for s in load_series(results.load_points):
        if s.reference:
            styles.append(_LoadStyle(s, _REFERENCE_COLOR))
            continue
        styles.append(_LoadStyle(s, PALETTE[rank % len(PALETTE)]))
        rank += 1
    return styles


def _clients_axis(ax: Axes, clients: Iterable[int]) -> None:
    """log2 x axis with a labelled tick at every measured client count."""
    ticks = sorted(set(clients))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ticks) == 1:  # a single count gives log axes no span to show
        ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)
    ax.set_xlabel("clients (log2 scale)")


def _draw_markers(
    ax: Axes, points: Sequence[LoadPoint], y_of: Callable[[LoadPoint], float], color: str
) -> None:
    """Valid points filled, suspect ones hollow, invalid ones as an x."""
    for members, face in (
        ([p for p in points if p.valid and not p.suspect], color),
        ([p for p in points if p.valid and p.suspect], "none"),
    ):
        if members:
            ax.scatter(
                [p.clients for p in members], [y_of(p) for p in members], s=40,
                facecolors=face, edgecolors=color, linewidths=1.4, zorder=4,
            )  # fmt: skip
    invalid = [p for p in points if not p.valid]
    if invalid:  # "x" is an unfilled marker: it takes a plain colour, not edge/face
        ax.scatter(
            [p.clients for p in invalid], [y_of(p) for p in invalid], marker="x", s=50,
            color=color, linewidths=1.6, zorder=4,
        )  # fmt: skip


def _marker_key(points: Sequence[LoadPoint]) -> list[Artist]:
    """Legend entries for the marker kinds that occur."""
    grey = "#555555"
    handles: list[Artist] = []
    if any(p.valid and p.suspect for p in points):
        handles.append(
            Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                   markeredgecolor=grey, label="suspect (client-bound)")
        )  # fmt: skip
    if any(not p.valid for p in points):
        handles.append(
            Line2D([], [], marker="x", linestyle="none", color=grey, label="invalid")
        )  # fmt: skip
    return handles


def _legend(fig: Figure, handles: list[Artist]) -> None:
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)


def _finish_from_zero(
    fig: Figure,
    ax: Axes,
    handles: list[Artist],
    points: Sequence[LoadPoint],
    *,
    ylabel: str,
    note: str,
    title: str,
) -> None:
    """Clients on x, a linear y axis from zero, the grey note above the axes, the legend."""
    _clients_axis(ax, (p.clients for p in points))
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(tick_text))
    ax.set_ylabel(ylabel)
    ax.set_title(note, fontsize=8, loc="left", color="#555555")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    _legend(fig, handles)


def plot_throughput_vs_clients(results: Results, path: Path) -> Path | None:
    """QPS against clients per series, with the fitted USL curve and N* marked."""
    styles = [st for st in _load_styles(results) if st.series.points]
    if not styles:
        return None
    points = [p for st in styles for p in st.series.points]
    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    handles: list[Artist] = []
    for st in styles:
        handles.append(_draw_throughput_series(ax, st))
    handles += _marker_key(points)
    if any(st.series.evidence_fit is not None for st in styles):
        handles.append(
            Line2D([], [], marker="D", linestyle="none", color="#555555", label="N* (USL peak)")
        )
    _finish_from_zero(
        fig, ax, handles, points,
        ylabel="queries per second",
        note="markers: measured; dashed: USL fit (valid python closed-loop points); dotted: a "
        "sketch (too few points for the fit to be evidence); grey: pgbench",
        title=f"{results.run_name}: throughput vs clients",
    )  # fmt: skip
    return save_figure(fig, path)


def _draw_throughput_series(ax: Axes, st: _LoadStyle) -> Artist:
    s, color = st.series, st.color
    valid = s.valid_points
    if s.reference:
        (line,) = ax.plot(
            [p.clients for p in valid], [p.qps for p in valid], color=color, linewidth=1,
            marker=".", markersize=5, label=f"{s.label} (reference)", zorder=2,
        )  # fmt: skip
        _draw_markers(ax, [p for p in s.points if not p.valid], lambda p: p.qps, color)
        return line
    _draw_markers(ax, s.points, lambda p: p.qps, color)
    if s.fit is None:  # no curve to follow: join the measurements instead
        ax.plot(
            [p.clients for p in valid], [p.qps for p in valid], color=color,
            linewidth=1, alpha=0.5, zorder=3,
        )  # fmt: skip
        return Line2D([], [], color=color, marker="o", linewidth=1, label=s.label)
    if not s.fit.evidence:  # a curve through every point: drawn dotted, no R², no N*
        _draw_usl_curve(ax, s.fit, [p.clients for p in valid], color, sketch=True)
        label = f"{s.label} ({sketch_text(s.fit)})"
        return Line2D([], [], color=color, marker="o", linestyle=":", label=label)
    _draw_usl_curve(ax, s.fit, [p.clients for p in valid], color)
    label = f"{s.label} (USL R² {s.fit.r_squared:.2f})"
    return Line2D([], [], color=color, marker="o", linestyle="--", label=label)


def _draw_usl_curve(
    ax: Axes, fit: UslFit, clients: Sequence[int], color: str, *, sketch: bool = False
) -> None:
    lo, hi = float(min(clients)), float(max(clients))
    peak_shown = not sketch and math.isfinite(fit.n_star) and lo <= fit.n_star <= 2 * hi
    if peak_shown:  # extend the curve a little past N* so the turn is visible
        hi = max(hi, fit.n_star * 1.15)
    xs = [lo * (hi / lo) ** (i / 199) for i in range(200)]
    ys = [fit.predict(x) for x in xs]
    ax.plot(
        xs, ys, color=color, linestyle=":" if sketch else "--", linewidth=1.0 if sketch else 1.4
    )
    if peak_shown:
        ax.plot(
            [fit.n_star], [fit.peak_qps], marker="D", markersize=7, color=color,
            markeredgecolor="black", linestyle="none", zorder=5,
        )  # fmt: skip
        ax.annotate(
            f"N*≈{format_sig(fit.n_star, 2)}", (fit.n_star, fit.peak_qps), xytext=(6, 6),
            textcoords="offset points", fontsize=8, color=color,
        )  # fmt: skip


def _lat(point: LoadPoint) -> Latency:
    assert point.latency_ms is not None  # callers pass only points with latency
    return point.latency_ms


def plot_p99_vs_clients(
    results: Results, path: Path, *, slo_p99_ms: float | None = None
) -> Path | None:
    """p99 (thick) and p50 (thin) latency against clients per series, with the SLO.

    The SLO defaults to the spec's [load] slo_p99_ms.
    """
    slo = resolve_slo(results) if slo_p99_ms is None else slo_p99_ms
    styles = [
        _LoadStyle(dataclasses.replace(st.series, points=_with_latency(st.series)), st.color)
        for st in _load_styles(results)
    ]
    styles = [st for st in styles if st.series.points]
    if not styles:
        return None
    points = [p for st in styles for p in st.series.points]
    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    handles = [_draw_latency_vs_clients(ax, st) for st in styles]
    handles += _marker_key(points)
    handles.append(Line2D([], [], color="black", linewidth=1.8, label="p99"))
    handles.append(Line2D([], [], color="black", linewidth=0.8, alpha=0.7, label="p50"))
    handles.append(
        ax.axhline(slo, color=TARGET_COLOR, linestyle=":", linewidth=1.3,
                   label=f"SLO p99 ≤ {format_sig(slo)} ms")
    )  # fmt: skip
    values = [v for p in points for v in (_lat(p).p50, _lat(p).p99)] + [slo]
    log = wants_log(values) and min(values) > 0
    set_y_scale(ax, values, log, tick_text)
    _clients_axis(ax, (p.clients for p in points))
    ax.set_ylabel("latency (ms)" + (" (log scale)" if log else ""))
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{results.run_name}: latency vs clients")
    _legend(fig, handles)
    return save_figure(fig, path)


def _with_latency(series: LoadSeries) -> tuple[LoadPoint, ...]:
    return tuple(p for p in series.points if p.latency_ms is not None)


def _draw_latency_vs_clients(ax: Axes, st: _LoadStyle) -> Artist:
    s, color = st.series, st.color
    valid = s.valid_points
    xs = [p.clients for p in valid]
    width = 1.0 if s.reference else 1.8
    label = f"{s.label} (reference)" if s.reference else s.label
    (line,) = ax.plot(
        xs, [_lat(p).p99 for p in valid], color=color, linewidth=width, label=label, zorder=3
    )
    ax.plot(xs, [_lat(p).p50 for p in valid], color=color, linewidth=0.8, alpha=0.7, zorder=3)
    _draw_markers(ax, s.points, lambda p: _lat(p).p99, color)
    return line


def plot_pool_wait(results: Results, path: Path) -> Path | None:
    """Mean pool wait per operation against clients for the psycopg_pool series."""
    drawn: list[tuple[_LoadStyle, list[tuple[LoadPoint, float]]]] = []
    for st in _load_styles(results):
        if st.series.strategy != "psycopg_pool":
            continue
        waits = [(p, w) for p in st.series.points if (w := pool_wait_ms_per_op(p)) is not None]
        if waits:
            drawn.append((st, waits))
    if not drawn:
        return None
    fig = new_figure(11, 5)
    ax = fig.add_subplot()
    handles: list[Artist] = []
    for st, waits in drawn:
        (line,) = ax.plot(
            [p.clients for p, _ in waits if p.valid], [w for p, w in waits if p.valid],
            color=st.color, linewidth=1.5, label=st.series.label, zorder=3,
        )  # fmt: skip
        _draw_markers(ax, [p for p, _ in waits], _pool_wait, st.color)
        handles.append(line)
    points = [p for _, waits in drawn for p, _ in waits]
    handles += _marker_key(points)
    _finish_from_zero(
        fig, ax, handles, points,
        ylabel="pool wait per operation (ms, mean)",
        note="psycopg_pool get_stats(): requests_wait_ms / operations",
        title=f"{results.run_name}: time spent waiting for a pool connection",
    )  # fmt: skip
    return save_figure(fig, path)


def _pool_wait(point: LoadPoint) -> float:
    wait = pool_wait_ms_per_op(point)
    assert wait is not None  # callers pass only points with pool stats
    return wait


def plot_load_timeseries(
    results: Results, path: Path, *, slo_p99_ms: float | None = None
) -> Path | None:
    """Per-second throughput and p99 of each series' largest-client (valid) point."""
    slo = resolve_slo(results) if slo_p99_ms is None else slo_p99_ms
    picks: list[tuple[_LoadStyle, LoadPoint]] = []
    for st in _load_styles(results):
        with_slices = [p for p in st.series.points if p.timeseries]
        if with_slices:
            # an invalid point's tail would squash every other line; show it only if alone
            pick = max(with_slices, key=lambda p: (p.valid, p.clients))
            picks.append((st, pick))
    if not picks:
        return None
    fig = new_figure(11, 7)
    ax_ops, ax_p99 = fig.subplots(2, 1, sharex=True)
    handles: list[Artist] = []
    for st, point in picks:
        ts = [s.t for s in point.timeseries]
        width = 0.9 if st.series.reference else 1.4
        label = f"{st.series.label} (c={point.clients})"
        if not point.valid:
            label += " INVALID"
        (line,) = ax_ops.plot(
            ts, [s.ops for s in point.timeseries], color=st.color, linewidth=width, label=label
        )
        p99s = [math.nan if s.p99_ms is None else s.p99_ms for s in point.timeseries]
        ax_p99.plot(ts, p99s, color=st.color, linewidth=width)
        handles.append(line)
    handles.append(
        ax_p99.axhline(slo, color=TARGET_COLOR, linestyle=":", linewidth=1.3,
                       label=f"SLO p99 ≤ {format_sig(slo)} ms")
    )  # fmt: skip
    ax_ops.set_ylabel("operations per second")
    ax_ops.set_ylim(bottom=0)
    ax_ops.yaxis.set_major_formatter(FuncFormatter(tick_text))
    p99_values = [s.p99_ms for _, p in picks for s in p.timeseries if s.p99_ms is not None]
    log = wants_log([*p99_values, slo])
    set_y_scale(ax_p99, [*p99_values, slo], log, tick_text)
    if not log:
        ax_p99.set_ylim(bottom=0)
    ax_p99.set_ylabel("p99 per second (ms)" + (" (log scale)" if log else ""))
    ax_p99.set_xlabel("seconds into the measured window")
    for ax in (ax_ops, ax_p99):
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{results.run_name}: per-second load at each series' largest client count")
    _legend(fig, handles)
    return save_figure(fig, path)
