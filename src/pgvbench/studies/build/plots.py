"""The build-tuning figure: build seconds vs maintenance_work_mem, one line per worker
count, a red X where the graph no longer fit. Imported only when figures are drawn."""

from __future__ import annotations

from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ...report.figures import PALETTE, TARGET_COLOR, new_figure, save_figure
from .records import BuildTuningPoint, BuildTuningStudy
from .sizes import format_size

_NO_FIT = TARGET_COLOR  # the palette's warning red


def _drawable(point: BuildTuningPoint) -> tuple[float, float, int, bool] | None:
    """(memory bytes, seconds, workers, fits) of a completed build, else None."""
    mem, secs = point.maintenance_work_mem_bytes, point.build_seconds
    if mem <= 0 or secs is None or point.error:
        return None
    return mem, secs, point.workers, point.graph_fits


def plot_build_tuning(study: BuildTuningStudy, path: Path) -> Path | None:
    """Build seconds vs maintenance_work_mem (log2 x), one line per worker count."""
    drawn = [d for d in (_drawable(p) for p in study.points) if d is not None]
    if not drawn:
        return None
    fig = new_figure(9, 5.5)
    ax = fig.add_subplot()
    handles: list[Artist] = []
    for i, workers in enumerate(sorted({d[2] for d in drawn})):
        series = sorted((d for d in drawn if d[2] == workers), key=lambda d: d[0])
        color = PALETTE[i % len(PALETTE)]
        label = "single-process" if workers == 0 else f"{workers} parallel worker"
        label += "s" if workers > 1 else ""
        (line,) = ax.plot(
            [d[0] for d in series], [d[1] for d in series], color=color, marker="o",
            markersize=6, linewidth=1.8, label=f"max_parallel_maintenance_workers = {workers} "
            f"({label})",
        )  # fmt: skip
        handles.append(line)
        misses = [d for d in series if not d[3]]
        if misses:
            ax.scatter(
                [d[0] for d in misses], [d[1] for d in misses], s=140, marker="X",
                color=_NO_FIT, zorder=3, edgecolors="white", linewidths=0.8,
            )  # fmt: skip
    if any(not d[3] for d in drawn):
        handles.append(
            Line2D(
                [],
                [],
                color=_NO_FIT,
                marker="X",
                linestyle="none",
                markersize=10,
                label="graph no longer fit into maintenance_work_mem",
            )
        )
    mems = sorted({d[0] for d in drawn})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(mems))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(v)))
    if len(mems) == 1:
        ax.set_xlim(mems[0] / 2, mems[0] * 2)
    ax.set_ylim(bottom=0, top=max(d[1] for d in drawn) * 1.12)
    ax.set_xlabel("maintenance_work_mem (log2 scale)")
    ax.set_ylabel("build seconds")
    ax.grid(True, which="major", alpha=0.3)
    title = f"{study.index or 'index'} build time"
    if study.rows:
        title += f" over {study.rows:,} rows"
    fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncols=1 if len(handles) > 3 else 2)
    return save_figure(fig, path)
