"""Figures of the agent experiments (filtered vector search), from results alone.

Same conventions as :mod:`.plots`: ``Figure`` + Agg canvas, one PNG per function,
written atomically; None (and no file) when the results hold nothing to draw. The
agent records are read in their JSON form (``Results.agent.filtered`` is a dict) with
``.get``, so a results file written by an older version still plots what it has.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.patches import Patch

from ..results import Results
from .figures import PALETTE, new_figure, save_figure, set_y_scale, tick_text, wants_log

_INVALID_HATCH = "///"
_WINNER_MARK = "★"


def number(value: Any) -> float | None:
    """A finite float, or None (missing, null, NaN: JSON can hold all three)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def filtered_rows(filtered: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The comparison's rows that are dicts (a hand-edited file may hold anything)."""
    if not filtered:
        return []
    return [r for r in filtered.get("rows") or [] if isinstance(r, dict)]


def bucket_order(filtered: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Bucket labels smallest share first (the comparison's order), then any others."""
    labels = [str(b.get("label")) for b in filtered.get("buckets") or [] if isinstance(b, dict)]
    for r in rows:
        if str(r.get("bucket")) not in labels:
            labels.append(str(r.get("bucket")))
    return labels


def strategy_order(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Strategies in the order the comparison ran them."""
    return list(dict.fromkeys(str(r.get("strategy")) for r in rows))


@dataclasses.dataclass(frozen=True)
class _Bar:
    x: float
    p99: float
    recall: float | None
    fill: float | None
    valid: bool
    winner: bool


def plot_filtered_p99(results: Results, path: Path) -> Path | None:
    """p99 per selectivity bucket, one bar per strategy, recall written above each bar.

    Bars make the latency ranking within a bucket obvious; the recall (and fill, when
    rows are missing) above each bar keeps a fast-but-wrong strategy from looking good.
    """
    filtered = results.agent.filtered if results.agent is not None else None
    rows = [r for r in filtered_rows(filtered) if number(r.get("latency_p99_ms")) is not None]
    if filtered is None or not rows:
        return None
    winners = results.agent.filtered_winners if results.agent is not None else {}
    buckets = [
        b for b in bucket_order(filtered, rows) if any(str(r.get("bucket")) == b for r in rows)
    ]
    # run order over all rows, so a strategy keeps its colour and slot where it has no bar
    drawn = {str(r.get("strategy")) for r in rows}
    strategies = [s for s in strategy_order(filtered_rows(filtered)) if s in drawn]
    width = 0.8 / len(strategies)

    fig = new_figure(11, 6)
    ax = fig.add_subplot()
    handles: list[Artist] = []
    p99s: list[float] = []
    for s_rank, strategy in enumerate(strategies):
        color = PALETTE[s_rank % len(PALETTE)]
        offset = (s_rank - (len(strategies) - 1) / 2) * width
        bars = [
            _bar(r, buckets.index(str(r.get("bucket"))) + offset, winners)
            for r in rows
            if str(r.get("strategy")) == strategy
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
    ax.set_xticks(range(len(buckets)), [f"{b}\nof memories" for b in buckets])
    ax.set_xlabel("agents grouped by their share of all memories")
    ax.set_ylabel("p99 latency (ms)" + (" (log scale)" if log else ""))
    ax.set_title(_subtitle(filtered), fontsize=8, loc="left", color="#555555")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.suptitle(f"{results.run_name}: filtered top-k per strategy and selectivity")
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return save_figure(fig, path)


def _bar(row: Mapping[str, Any], x: float, winners: Mapping[str, str]) -> _Bar:
    p99 = number(row.get("latency_p99_ms"))
    assert p99 is not None  # callers pass only rows with a p99
    return _Bar(
        x=x,
        p99=p99,
        recall=number(row.get("recall_mean")),
        fill=number(row.get("fill_mean")),
        valid=bool(row.get("valid", True)),
        winner=winners.get(str(row.get("bucket"))) == row.get("strategy"),
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
    return f"{_WINNER_MARK} {text}" if bar.winner else text


def _key(rows: Sequence[Mapping[str, Any]], winners: Mapping[str, str]) -> list[Artist]:
    """Legend entries for the marks that occur."""
    handles: list[Artist] = []
    if winners:
        handles.append(
            Patch(facecolor="white", edgecolor="black", linewidth=1.6,
                  label=f"{_WINNER_MARK} bucket winner")
        )  # fmt: skip
    if any(not r.get("valid", True) for r in rows):
        handles.append(
            Patch(facecolor="#cccccc", hatch=_INVALID_HATCH, edgecolor="#777777", label="invalid")
        )
    return handles


def _subtitle(filtered: Mapping[str, Any]) -> str:
    parts = ["above bars: R = recall mean, F = fill (rows returned / min(k, rows matching))"]
    k, ef = filtered.get("k"), filtered.get("ef_search")
    if k is not None:
        parts.append(f"k={k}")
    if ef is not None:
        parts.append(f"ef_search={ef}")
    return "; ".join(parts)
