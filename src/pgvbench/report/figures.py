"""Making and saving the report's figures: one DPI, one palette, one atomic save.

Uses ``matplotlib.figure.Figure`` with the Agg canvas rather than pyplot: no global
backend switch at import, no GUI, no figure registry to leak memory. Every plot
function writes one PNG atomically and returns its path, or returns None when the
results hold nothing to draw.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib loads on the first figure drawn, not with the report code
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from .._atomic import write_bytes_atomic

DPI = 110
# Tableau 10: distinguishable, colour-blind friendlier than matplotlib's old default.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
LINESTYLES = ("-", "--", "-.", ":")
INVALID_COLOR = "#9a9a9a"
TARGET_COLOR = "#c0392b"


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly; no pyplot backend selection
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically; return the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    write_bytes_atomic(path, buf.getvalue())
    return path


def wants_log(values: Iterable[float]) -> bool:
    """Log scale when the positive values span more than 10x."""
    positive = [v for v in values if v > 0]
    return len(positive) > 1 and max(positive) / min(positive) > 10


def tick_text(value: float, _pos: int | None = None) -> str:
    """Axis tick text: 5,000 / 200 / 5 / 0.5 (no trailing zeros, no 1e3)."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def set_y_scale(
    ax: Axes, values: Sequence[float], log: bool, formatter: Callable[[float, int | None], str]
) -> None:
    """Log scale (1-2-5 ticks over a few decades) or linear; ticks printed by ``formatter``."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    if log:
        ax.set_yscale("log")
        positive = [v for v in values if v > 0]
        if max(positive) / min(positive) <= 1000:
            # a few decades only get 1-2 labelled ticks by default; 1-2-5 reads better
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(formatter))
