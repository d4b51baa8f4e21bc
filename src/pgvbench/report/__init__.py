"""Reports of a run: figures (PNG), Markdown and a self-contained HTML page."""

from __future__ import annotations

from .render import ReportFiles, render_report
from .sweep_plots import plot_build_cost, plot_latency, plot_recall_vs_qps

__all__ = [
    "ReportFiles",
    "plot_build_cost",
    "plot_latency",
    "plot_recall_vs_qps",
    "render_report",
]
