"""Figures of the vector-search sweep: recall vs throughput, latency vs recall, build cost.

Drawn from a :class:`~pgvbench.results.Results` alone (see figures.py for how figures are
made and saved). Every plot function writes one PNG and returns its path, or returns None
when the results hold nothing to draw (e.g. a run that failed early).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ..analysis import pareto_front, resolve_target_recall
from ..results import Results, SweepPoint
from .figures import (
    INVALID_COLOR,
    LINESTYLES,
    PALETTE,
    TARGET_COLOR,
    new_figure,
    save_figure,
    set_y_scale,
    tick_text,
    wants_log,
)
from .fmt import EXACT_KIND, format_sig, recall_name

# --- grouping points into drawable series ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Series:
    """The valid points of one index build (at one concurrency), in query-param order."""

    label: str
    color: str
    linestyle: str
    exact: bool
    points: list[SweepPoint]


def _build_labels(results: Results) -> list[str]:
    """Builds in run order, plus any label a point names that the build list lacks."""
    labels = [b.label for b in results.indexes]
    for point in results.runs:
        if point.index not in labels:
            labels.append(point.index)
    return labels


def _colors(results: Results) -> dict[str, str]:
    """One colour per build, stable across all figures of a run."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(_build_labels(results))}


def _param_key(point: SweepPoint) -> tuple[int, ...]:
    return tuple(v for _, v in sorted(point.query_params.items()))


def _param_text(point: SweepPoint) -> str:
    return ",".join(str(v) for v in _param_key(point))


def _series(results: Results, points: Sequence[SweepPoint]) -> list[_Series]:
    """Group valid points by build, and by concurrency when the run varied it."""
    colors = _colors(results)
    concurrencies = sorted({p.concurrency for p in points})
    split = len(concurrencies) > 1
    out: list[_Series] = []
    for label in _build_labels(results):
        for c_rank, conc in enumerate(concurrencies):
            members = [p for p in points if p.index == label and p.concurrency == conc]
            if not members:
                continue
            out.append(
                _Series(
                    label=f"{label} (c={conc})" if split else label,
                    color=colors[label],
                    linestyle=LINESTYLES[c_rank % len(LINESTYLES)],
                    exact=members[0].index_kind == EXACT_KIND,
                    points=sorted(members, key=_param_key),
                )
            )
    return out


def _param_note(points: Iterable[SweepPoint]) -> str:
    names = sorted({name for p in points for name in p.query_params})
    return f"point labels: {', '.join(names)}" if names else ""


# --- axes helpers ------------------------------------------------------------------------


def _set_recall_xlim(ax: Axes, recalls: Sequence[float], target: float) -> None:
    """Fit the recalls and keep the target line in view."""
    lo, hi = min([*recalls, target]), max([*recalls, target])
    pad = max(0.01, (hi - lo) * 0.05)
    ax.set_xlim(lo - pad, hi + pad)


def _annotate(ax: Axes, point: SweepPoint, x: float, y: float, color: str) -> None:
    text = _param_text(point)
    if text:
        ax.annotate(
            # offset clears the Pareto ring (radius ~6 pt) drawn around front points
            text,
            (x, y),
            xytext=(6, 5),
            textcoords="offset points",
            fontsize=7,
            color=color,
        )


def _target_line(ax: Axes, target: float, name: str) -> Line2D:
    return ax.axvline(
        target,
        color=TARGET_COLOR,
        linestyle=":",
        linewidth=1.3,
        label=f"target {name} ≥ {target:g}",
    )


def _invalid_handle() -> Line2D:
    return Line2D(
        [], [], marker="o", linestyle="none", markerfacecolor="none",
        markeredgecolor=INVALID_COLOR, label="invalid",
    )  # fmt: skip


def _recall(point: SweepPoint) -> float:
    assert point.recall is not None  # callers pass only points with recall
    return point.recall.mean


# --- recall vs QPS -----------------------------------------------------------------------


def plot_recall_vs_qps(
    results: Results, path: Path, *, target_recall: float | None = None
) -> Path | None:
    """Throughput against recall per build, with the Pareto front and the target."""
    points = [p for p in results.runs if p.recall is not None]
    log = wants_log(p.qps for p in points)
    if log:  # zero QPS cannot sit on a log axis
        points = [p for p in points if p.qps > 0]
    if not points:
        return None
    target = resolve_target_recall(results, target_recall)
    name = recall_name(results)

    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    handles = _draw_qps_series(ax, _series(results, [p for p in points if p.valid]))
    handles += _draw_front(ax, pareto_front(points))
    handles += _draw_invalid(ax, [p for p in points if not p.valid], lambda p: p.qps)
    handles.append(_target_line(ax, target, name))

    _set_recall_xlim(ax, [_recall(p) for p in points], target)
    set_y_scale(ax, [p.qps for p in points], log, tick_text)
    ax.set_xlabel(f"{name} (mean over queries)")
    ax.set_ylabel("queries per second" + (" (log scale)" if log else ""))
    ax.set_title(_param_note(points), fontsize=8, loc="left", color="#555555")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{results.run_name}: {name} vs throughput")
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return save_figure(fig, path)


def _draw_qps_series(ax: Axes, series: Sequence[_Series]) -> list[Artist]:
    handles: list[Artist] = []
    for s in series:
        xs = [_recall(p) for p in s.points]
        ys = [p.qps for p in s.points]
        (line,) = ax.plot(
            xs, ys, color=s.color, linestyle=s.linestyle, label=s.label,
            marker="*" if s.exact else "o", markersize=15 if s.exact else 5, zorder=3,
        )  # fmt: skip
        handles.append(line)
        for p, x, y in zip(s.points, xs, ys, strict=True):
            _annotate(ax, p, x, y, s.color)
    return handles


def _draw_front(ax: Axes, front: Sequence[SweepPoint]) -> list[Artist]:
    if not front:
        return []
    xs = [_recall(p) for p in front]
    ys = [p.qps for p in front]
    # "pre": between two front points the best reachable QPS is the right one's.
    ax.step(xs, ys, where="pre", color="black", linestyle="--", linewidth=1, alpha=0.6, zorder=2)
    ax.scatter(xs, ys, s=150, facecolors="none", edgecolors="black", linewidths=1.4, zorder=4)
    handle = Line2D(
        [], [], color="black", linestyle="--", linewidth=1, marker="o", markersize=10,
        markerfacecolor="none", markeredgecolor="black", label="Pareto front",
    )  # fmt: skip
    return [handle]


def _draw_invalid(
    ax: Axes, points: Sequence[SweepPoint], y_of: Callable[[SweepPoint], float]
) -> list[Artist]:
    if not points:
        return []
    xs = [_recall(p) for p in points]
    ys = [y_of(p) for p in points]
    ax.scatter(xs, ys, s=36, facecolors="none", edgecolors=INVALID_COLOR, zorder=3)
    for p, x, y in zip(points, xs, ys, strict=True):
        _annotate(ax, p, x, y, INVALID_COLOR)
    return [_invalid_handle()]


# --- build cost --------------------------------------------------------------------------


def plot_build_cost(results: Results, path: Path) -> Path | None:
    """Build time and index size per built index (the exact scan builds nothing)."""
    builds = [b for b in results.indexes if b.kind != EXACT_KIND]
    if not builds:
        return None
    colors = _colors(results)
    labels = [b.label for b in builds]
    bar_colors = [colors[b.label] for b in builds]

    fig = new_figure(11, 1.6 + 0.45 * len(builds))
    ax_time, ax_size = fig.subplots(1, 2, sharey=True)
    _hbars(ax_time, labels, [b.build_seconds for b in builds], bar_colors, " s")
    _hbars(ax_size, labels, [b.index_bytes / 1e6 for b in builds], bar_colors, " MB")
    ax_time.set_xlabel("build time (s)")
    ax_size.set_xlabel("index size (MB)")
    ax_time.invert_yaxis()  # first build on top, as in the tables
    fig.suptitle(f"{results.run_name}: index build cost")
    return save_figure(fig, path)


def _hbars(ax: Axes, labels: list[str], values: list[float], colors: list[str], unit: str) -> None:
    ys = list(range(len(labels)))
    bars = ax.barh(ys, values, color=colors, height=0.6)
    ax.bar_label(bars, labels=[format_sig(v) + unit for v in values], padding=3, fontsize=8)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.margins(x=0.2)  # room for the value labels
    ax.grid(True, axis="x", alpha=0.3)


# --- latency -----------------------------------------------------------------------------


def plot_latency(
    results: Results, path: Path, *, target_recall: float | None = None
) -> Path | None:
    """p50 (solid) and p99 (dashed) latency against recall per build."""
    points = [p for p in results.runs if p.recall is not None and p.latency_ms is not None]
    if not points:
        return None
    target = resolve_target_recall(results, target_recall)
    name = recall_name(results)
    latencies = [v for p in points for v in (_p50(p), _p99(p))]
    log = wants_log(latencies)

    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    handles = _draw_latency_series(ax, _series(results, [p for p in points if p.valid]))
    invalid = [p for p in points if not p.valid]
    handles += _draw_invalid(ax, invalid, _p50)
    if invalid:  # p99 of invalid points: same hollow grey, triangle like valid p99
        ax.scatter(
            [_recall(p) for p in invalid], [_p99(p) for p in invalid], s=36, marker="^",
            facecolors="none", edgecolors=INVALID_COLOR, zorder=3,
        )  # fmt: skip
    handles.append(_target_line(ax, target, name))

    _set_recall_xlim(ax, [_recall(p) for p in points], target)
    set_y_scale(ax, latencies, log, tick_text)
    ax.set_xlabel(f"{name} (mean over queries)")
    ax.set_ylabel("latency (ms)" + (" (log scale)" if log else ""))
    ax.set_title(_param_note(points) + "; labels at p50", fontsize=8, loc="left", color="#555")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{results.run_name}: latency vs {name}")
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return save_figure(fig, path)


def _p50(point: SweepPoint) -> float:
    assert point.latency_ms is not None  # callers pass only points with latency
    return point.latency_ms.p50


def _p99(point: SweepPoint) -> float:
    assert point.latency_ms is not None
    return point.latency_ms.p99


def _draw_latency_series(ax: Axes, series: Sequence[_Series]) -> list[Artist]:
    if not series:
        return []
    handles: list[Artist] = []
    for s in series:
        xs = [_recall(p) for p in s.points]
        marker, size = ("*", 14) if s.exact else ("o", 5)
        (line,) = ax.plot(
            xs, [_p50(p) for p in s.points], color=s.color, linestyle="-",
            marker=marker, markersize=size, label=s.label, zorder=3,
        )  # fmt: skip
        ax.plot(
            xs, [_p99(p) for p in s.points], color=s.color, linestyle="--", alpha=0.8,
            marker="*" if s.exact else "^", markersize=size, zorder=3,
        )  # fmt: skip
        handles.append(line)
        for p, x in zip(s.points, xs, strict=True):
            _annotate(ax, p, x, _p50(p), s.color)
    handles.append(Line2D([], [], color="black", linestyle="-", marker="o", label="p50"))
    handles.append(Line2D([], [], color="black", linestyle="--", marker="^", label="p99"))
    return handles
