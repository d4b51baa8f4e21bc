"""The tuning session's figures: the trade-off of every trial (recall vs QPS with the Pareto
front and the target region; recall vs the latency percentile with its bound) and the
convergence (best objective so far vs tuning time, against the grid's estimated time).
Same conventions as the other report figures (report.figures); imported only to draw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ...report.document import Image
from ...report.figures import (
    PALETTE,
    TARGET_COLOR,
    new_figure,
    save_figure,
    set_y_scale,
    tick_text,
    wants_log,
)
from .facts import best_so_far, objective_value, runner_up_trial, target_spec, winner_trial
from .records import Trial, TuneRecord
from .report import CONVERGENCE_ALT, CONVERGENCE_FIGURE, TRADEOFF_ALT, TRADEOFF_FIGURE
from .spec import TuneSpec
from .words import recall_low, secs_text

_MARKERS = {"vector": "o", "halfvec_index": "s", "halfvec_column": "^"}
_KIND_COLOR = {"hnsw": PALETTE[0], "ivfflat": PALETTE[1]}
_SHADE = "#59a14f"


@dataclasses.dataclass(frozen=True)
class _Point:
    trial: Trial
    recall: float  # the lower bound the target is checked against
    qps: float
    latency: float
    feasible: bool


def draw_figures(record: TuneRecord, out_dir: Path) -> list[Image]:
    """Both figures into ``out_dir``; the ones with something to draw, as report Images."""
    images = []
    path = plot_tradeoff(record, out_dir / TRADEOFF_FIGURE)
    if path is not None:
        images.append(Image(path.name, TRADEOFF_ALT))
    path = plot_convergence(record, out_dir / CONVERGENCE_FIGURE)
    if path is not None:
        images.append(Image(path.name, CONVERGENCE_ALT))
    return images


def _points(record: TuneRecord, spec: TuneSpec) -> list[_Point]:
    out = []
    for t in record.trials:
        ev = t.evaluation
        if ev.recall is None or ev.latency is None or ev.reason == "duplicate":
            continue
        out.append(
            _Point(t, recall_low(ev.recall), ev.latency.qps,
                   ev.latency.percentile(spec.latency), ev.feasible)
        )  # fmt: skip
    return out


def plot_tradeoff(record: TuneRecord, path: Path) -> Path | None:
    """Recall vs QPS (and vs the latency percentile when the target bounds it)."""
    spec = target_spec(record)
    points = _points(record, spec)
    if not points:
        return None
    panels = 2 if spec.latency_ms is not None else 1
    fig = new_figure(6.0 * panels + 1.0, 5.5)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    qps_ax = axes[0]
    _scatter(qps_ax, points, lambda p: p.qps)
    front = _pareto(points)
    qps_ax.plot([p.recall for p in front], [p.qps for p in front], color="#555555",
                linewidth=1.2, drawstyle="steps-pre", zorder=1)  # fmt: skip
    qps_ax.set_ylabel("QPS")
    set_y_scale(qps_ax, [p.qps for p in points], wants_log(p.qps for p in points), tick_text)
    if panels == 2 and spec.latency_ms is not None:
        lat_ax = axes[1]
        _scatter(lat_ax, points, lambda p: p.latency)
        lat_ax.axhline(spec.latency_ms, color=TARGET_COLOR, linestyle="--", linewidth=1.2)
        lat_ax.set_ylabel(f"{spec.latency} ms")
        lat_ax.set_ylim(bottom=0, top=max(max(p.latency for p in points), spec.latency_ms) * 1.15)
    for ax in axes:
        _target(ax, spec, points, bound=None if ax is qps_ax else spec.latency_ms)
        _mark(ax, record, points, qps=ax is qps_ax)
        ax.set_xlabel(f"recall@{record.k} ({spec.confidence:.0%} lower bound)")
        ax.grid(True, alpha=0.3)
    missed = sum(1 for t in record.trials if t.evaluation.reason == "recall_unreachable")
    title = f"{len(points)} timed trials"
    if missed:
        title += f"; {missed} more missed the recall bound at every knob (not timed)"
    fig.suptitle(title)
    fig.legend(handles=_legend(points), loc="outside lower center", ncols=3)
    return save_figure(fig, path)


def _scatter(ax: Axes, points: list[_Point], value: Callable[[_Point], float]) -> None:
    for p in points:
        config = p.trial.evaluation.config
        color = _KIND_COLOR.get(config.kind, PALETTE[2])
        ax.scatter(
            [p.recall], [value(p)], marker=_MARKERS.get(config.storage, "o"), s=46,
            facecolors=color if p.feasible else "none", edgecolors=color, linewidths=1.4,
            zorder=3,
        )  # fmt: skip


def _pareto(points: list[_Point]) -> list[_Point]:
    """Points no other beats on both recall and QPS, by ascending recall."""
    front: list[_Point] = []
    best = float("-inf")
    for p in sorted(points, key=lambda p: (-p.recall, -p.qps)):
        if p.qps > best:
            front.append(p)
            best = p.qps
    return front[::-1]


def _target(ax: Axes, spec: TuneSpec, points: list[_Point], *, bound: float | None) -> None:
    """The recall bound's line and the target region shaded (below ``bound`` too)."""
    left = min(min(p.recall for p in points), spec.recall)
    right = max(max(p.recall for p in points), spec.recall)
    pad = max(0.005, (right - left) * 0.08)
    ax.set_xlim(left - pad, min(1.0 + pad / 2, right + pad))
    if bound is None:
        ax.axvspan(spec.recall, 1.0 + pad, color=_SHADE, alpha=0.10, zorder=0)
    else:
        ax.add_patch(Rectangle((spec.recall, 0), 1.0 + pad - spec.recall, bound,
                               color=_SHADE, alpha=0.12, zorder=0))  # fmt: skip
    ax.axvline(spec.recall, color=TARGET_COLOR, linestyle="--", linewidth=1.2)


def _mark(ax: Axes, record: TuneRecord, points: list[_Point], *, qps: bool) -> None:
    """The winner (star) and the runner-up (diamond), labelled."""
    by_number = {p.trial.number: p for p in points}
    for trial, marker, word in (
        (winner_trial(record), "*", "winner"),
        (runner_up_trial(record), "D", "runner-up"),
    ):
        p = by_number.get(trial.number) if trial is not None else None
        if p is None:
            continue
        y = p.qps if qps else p.latency
        ax.scatter([p.recall], [y], marker=marker, s=260 if marker == "*" else 110,
                   facecolors="none", edgecolors="black", linewidths=1.3, zorder=4)  # fmt: skip
        if not qps:  # labelled once, in the QPS panel
            continue
        ax.annotate(f"{word}: {p.trial.evaluation.config.label}", (p.recall, y),
                    textcoords="offset points", xytext=(8, 8), fontsize=8)  # fmt: skip


def _legend(points: list[_Point]) -> list[Line2D]:
    handles = []
    for kind in sorted({p.trial.evaluation.config.kind for p in points}):
        handles.append(Line2D([], [], color=_KIND_COLOR.get(kind, PALETTE[2]), marker="o",
                              linestyle="none", label=kind))  # fmt: skip
    storages = sorted({p.trial.evaluation.config.storage for p in points})
    if len(storages) > 1:
        for storage in storages:
            handles.append(Line2D([], [], color="#555555", marker=_MARKERS.get(storage, "o"),
                                  linestyle="none", label=storage))  # fmt: skip
    handles += [
        Line2D([], [], color="#555555", marker="o", markerfacecolor="none", linestyle="none",
               label="missed a bound (hollow)"),
        Line2D([], [], color="#555555", linewidth=1.2, label="Pareto front"),
        Line2D([], [], color=TARGET_COLOR, linestyle="--", label="target"),
    ]  # fmt: skip
    return handles


def plot_convergence(record: TuneRecord, path: Path) -> Path | None:
    """Best feasible objective so far vs the session's time, with the grid's estimate."""
    spec = target_spec(record)
    best = best_so_far(record)
    if not best:
        return None
    end = max([record.elapsed_s, *(t.finished_s for t in record.trials)])
    grid = record.grid_estimate_s
    fits = 0 < grid <= 3 * end
    scale, unit = (3600.0, "h") if max(end, grid if fits else 0) > 3 * 3600 else (60.0, "min")
    fig = new_figure(9, 5)
    ax = fig.add_subplot()
    seen = [(t.finished_s, objective_value(t.evaluation, spec)) for t in record.trials]
    xs = [x / scale for x, v in seen if v is not None]
    ax.scatter(xs, [v for _x, v in seen if v is not None], s=24, color=PALETTE[0],
               alpha=0.35, zorder=2, label="trial meeting every bound")  # fmt: skip
    missed = [x / scale for x, v in seen if v is None]
    if missed:  # ticks along the bottom: when the search tried builds that missed a bound
        ax.scatter(missed, [0.0] * len(missed), transform=ax.get_xaxis_transform(),
                   marker="|", s=120, color="#9a9a9a", zorder=2,
                   label="trial missing a bound")  # fmt: skip
    steps = [*best, (end, best[-1][1])]
    ax.plot([x / scale for x, _ in steps], [v for _, v in steps], color=PALETTE[0],
            drawstyle="steps-post", linewidth=2, zorder=3, label="best so far")  # fmt: skip
    ax.axvline(end / scale, color="#555555", linestyle=":", linewidth=1.2)
    ax.annotate(f"session: {secs_text(end)}", (end / scale, 0.06),
                xycoords=("data", "axes fraction"), xytext=(-4, 0), textcoords="offset points",
                fontsize=8, ha="right")  # fmt: skip
    title = "Best objective so far"
    if fits:
        ax.axvline(grid / scale, color=TARGET_COLOR, linestyle="--", linewidth=1.2)
        ax.annotate(f"full grid (estimate): {secs_text(grid)}", (grid / scale, 0.06),
                    xycoords=("data", "axes fraction"), xytext=(-4, 0),
                    textcoords="offset points", fontsize=8, ha="right")  # fmt: skip
        ax.set_xlim(0, max(end, grid) * 1.05 / scale)
    else:
        ax.set_xlim(0, end * 1.05 / scale)
        if grid > 0:
            title += f" (grid estimate: {secs_text(grid)}, {grid / end:.0f}x this session)"
    ax.set_xlabel(f"tuning time ({unit})")
    ax.set_ylabel(_objective_label(spec))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def _objective_label(spec: TuneSpec) -> str:
    if spec.objective == "qps":
        return "QPS (higher is better)"
    if spec.objective == "memory":
        return "memory MB, index + heap (lower is better)"
    return f"{spec.latency} ms (lower is better)"
