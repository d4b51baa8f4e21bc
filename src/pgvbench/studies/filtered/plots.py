"""The filtered-search figure: p99 per selectivity bucket and strategy, recall on each bar.

Same conventions as the other report figures (report.figures): ``Figure`` + Agg canvas,
one PNG, written atomically; None (and no file) when no row has a p99 to draw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.patches import Patch

from ...report.figures import PALETTE, new_figure, save_figure, set_y_scale, tick_text, wants_log
from .ranking import FILL_TARGET, eligible
from .records import FilteredComparison, FilteredResult, FilteredRow
from .report import bucket_order

_INVALID_HATCH = "///"
_WINNER_MARK = "★"


@dataclasses.dataclass(frozen=True)
class _Bar:
    x: float
    p99: float
    recall: float | None
    fill: float | None
    valid: bool
    winner: bool
    ef_search: int | None = None


def plot_filtered_p99(result: FilteredResult, path: Path) -> Path | None:
    """p99 per selectivity bucket, one bar per strategy, recall written above each bar.

    Bars make the latency ranking within a bucket obvious; the recall (and fill, when
    rows are missing) above each bar keeps a fast-but-wrong strategy from looking good.
    """
    comparison, winners = result.comparison, result.winners
    rows = [r for r in comparison.rows if r.latency_p99_ms is not None]
    if not rows:
        return None
    if comparison.swept:  # one bar per strategy and bucket: its best ef_search
        rows = _best_arms(rows, winners, result.recall_target)
    buckets = [b for b in bucket_order(comparison, rows) if any(r.bucket == b for r in rows)]
    # run order over all rows, so a strategy keeps its colour and slot where it has no bar
    drawn = {r.strategy for r in rows}
    strategies = list(dict.fromkeys(r.strategy for r in comparison.rows if r.strategy in drawn))
    width = 0.8 / len(strategies)

    fig = new_figure(max(11.0, 0.9 * len(buckets) + 4), 6)
    ax = fig.add_subplot()
    handles: list[Artist] = []
    p99s: list[float] = []
    for s_rank, strategy in enumerate(strategies):
        color = PALETTE[s_rank % len(PALETTE)]
        offset = (s_rank - (len(strategies) - 1) / 2) * width
        bars = [
            _bar(r, buckets.index(r.bucket) + offset, winners)
            for r in rows
            if r.strategy == strategy
        ]
        _draw_bars(ax, bars, width, color)
        handles.append(Patch(facecolor=color, label=strategy))
        p99s += [b.p99 for b in bars]
    handles += _key(rows, winners)

    log = wants_log(p99s) and min(p99s) > 0
    set_y_scale(ax, p99s, log, tick_text)
    # headroom for the rotated recall labels above the tallest bar
    ax.set_ylim(top=max(p99s) * (4 if log else 1.4))
    if log:
        ax.set_ylim(bottom=min(p99s) / 2)
    if comparison.source == "vectors":
        ax.set_xticks(range(len(buckets)), [b.replace(" ", "\n", 1) for b in buckets])
        ax.set_xlabel("filters grouped by the share of all rows they keep")
    else:
        ax.set_xticks(range(len(buckets)), [f"{b}\nof memories" for b in buckets])
        ax.set_xlabel("agents grouped by their share of all memories")
    ax.set_ylabel("p99 latency (ms)" + (" (log scale)" if log else ""))
    ax.set_title(_subtitle(comparison), fontsize=8, loc="left", color="#555555")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.suptitle(f"{result.run_name}: filtered top-k per strategy and selectivity")
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return save_figure(fig, path)


def _bar(row: FilteredRow, x: float, winners: Mapping[str, str]) -> _Bar:
    assert row.latency_p99_ms is not None  # callers pass only rows with a p99
    return _Bar(
        x=x,
        p99=row.latency_p99_ms,
        recall=row.recall_mean,
        fill=row.fill_mean,
        valid=row.valid,
        winner=winners.get(row.bucket) == row.arm,
        ef_search=row.ef_search,
    )


def _draw_bars(ax: Any, bars: Sequence[_Bar], width: float, color: str) -> None:
    for bar in bars:
        ax.bar(
            bar.x, bar.p99, width=width * 0.92, color=color,
            alpha=1.0 if bar.valid else 0.4, hatch=None if bar.valid else _INVALID_HATCH,
            edgecolor="black" if bar.winner else color, linewidth=1.6 if bar.winner else 0.5,
            zorder=3,
        )  # fmt: skip
        ax.annotate(
            _label(bar), (bar.x, bar.p99), xytext=(0, 3), textcoords="offset points",
            rotation=90, ha="center", va="bottom", fontsize=7,
            color="black" if bar.valid else "#777777",
        )  # fmt: skip


def _label(bar: _Bar) -> str:
    """``★ R 0.98``; the fill is added only when rows were missing (fill < 1)."""
    text = "R —" if bar.recall is None else f"R {bar.recall:.2f}"
    if bar.fill is not None and bar.fill < 0.995:
        text += f" F {bar.fill:.2f}"
    if bar.ef_search is not None:
        text += f" @{bar.ef_search}"
    return f"{_WINNER_MARK} {text}" if bar.winner else text


def _key(rows: Sequence[FilteredRow], winners: Mapping[str, str]) -> list[Artist]:
    """Legend entries for the marks that occur."""
    handles: list[Artist] = []
    if winners:
        handles.append(
            Patch(facecolor="white", edgecolor="black", linewidth=1.6,
                  label=f"{_WINNER_MARK} bucket winner")
        )  # fmt: skip
    if any(not r.valid for r in rows):
        handles.append(
            Patch(facecolor="#cccccc", hatch=_INVALID_HATCH, edgecolor="#777777", label="invalid")
        )
    return handles


def _subtitle(comparison: FilteredComparison) -> str:
    parts = ["above bars: R = recall mean, F = fill (rows returned / min(k, rows matching))"]
    parts.append(f"k={comparison.k}")
    if comparison.swept:
        values = ", ".join(str(e) for e in comparison.ef_values)
        parts.append(f"ef_search {values}: each bar at its best value (@ef)")
    else:
        parts.append(f"ef_search={comparison.ef_search}")
    return "; ".join(parts)


def _best_arms(
    rows: Sequence[FilteredRow], winners: Mapping[str, str], recall_target: float
) -> list[FilteredRow]:
    """Per strategy and bucket one row: the winning arm, else the fastest that reaches the
    targets, else the one with the highest recall."""
    groups: dict[tuple[str, str], list[FilteredRow]] = {}
    for r in rows:
        groups.setdefault((r.bucket, r.strategy), []).append(r)
    out: list[FilteredRow] = []
    for (bucket, _), group in groups.items():
        won = [r for r in group if winners.get(bucket) == r.arm]
        ok = [r for r in group if eligible(r, recall_target, FILL_TARGET, "p99")]
        if won:
            out.append(won[0])
        elif ok:
            out.append(min(ok, key=lambda r: r.latency_p99_ms or 0.0))
        else:
            out.append(max(group, key=lambda r: r.recall_mean or 0.0))
    return out
