"""Figure of a drift measurement: recall over time while rows are written and expired
(one PNG written atomically, None when there is nothing to draw)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.ticker import FuncFormatter

from ...report.figures import PALETTE, new_figure, save_figure
from ...report.fmt import format_sig
from .records import DriftResult

_RECALL = PALETTE[0]
_FROZEN = "#9a9a9a"  # the grey of a reference line, not a series of its own
_LIVE = PALETTE[4]
_DEAD = PALETTE[2]
_VACUUM = PALETTE[6]


def plot_recall_over_time(drift: DriftResult, path: Path) -> Path | None:
    """Recall mean and p5 (left axis), live rows and dead tuples (right axis) over time.

    The recall of the same results against the ground truth of the start is drawn
    dotted: the gap is what a benchmark that froze its ground truth would misreport.
    """
    points = drift.checkpoints
    if not points:
        return None
    fig = new_figure(10, 5.5)
    ax = fig.add_subplot()
    rows = ax.twinx()
    ts = [c.t for c in points]
    handles: list[Artist] = []
    (line,) = ax.plot(
        ts, [c.recall_mean for c in points], color=_RECALL, marker="o", markersize=4,
        linewidth=1.8, label=f"recall@{drift.k} mean",
    )  # fmt: skip
    handles.append(line)
    (line,) = ax.plot(
        ts, [c.recall_p5 for c in points], color=_RECALL, linestyle="--", linewidth=1.2,
        label=f"recall@{drift.k} p5",
    )  # fmt: skip
    handles.append(line)
    frozen = [c.recall_frozen_gt for c in points]
    if any(v is not None for v in frozen):
        (line,) = ax.plot(
            ts, [float("nan") if v is None else v for v in frozen], color=_FROZEN,
            linestyle=":", linewidth=1.4, label="mean vs ground truth of the start",
        )  # fmt: skip
        handles.append(line)
    (line,) = rows.plot(
        ts, [c.live_rows for c in points], color=_LIVE, linewidth=1.2, alpha=0.8,
        label="live rows",
    )  # fmt: skip
    handles.append(line)
    (line,) = rows.plot(
        ts, [c.dead_tuples for c in points], color=_DEAD, linewidth=1.2, alpha=0.8,
        label="dead tuples",
    )  # fmt: skip
    handles.append(line)
    vacuum = next((c for c in points if c.label == "after_vacuum"), None)
    if vacuum is not None:
        label = "VACUUM"
        if drift.vacuum_seconds is not None:
            label += f" ({format_sig(drift.vacuum_seconds)} s)"
        handles.append(
            ax.axvline(vacuum.t, color=_VACUUM, linestyle="-.", linewidth=1.2, label=label)
        )
    lows = [c.recall_p5 for c in points] + [v for v in frozen if v is not None]
    ax.set_ylim(max(0.0, min(lows) - 0.05), 1.005)
    ax.set_ylabel(f"recall@{drift.k}")
    ax.set_xlabel("writer seconds (checkpoint pauses excluded)")
    rows.set_ylim(bottom=0)
    rows.set_ylabel("rows")
    rows.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(
        f"{drift.table}: recall while inserting {format_sig(drift.insert_rate)} and expiring "
        f"{format_sig(drift.expire_rate)} rows/s (ef_search {drift.ef_search})"
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3))
    return save_figure(fig, path)
