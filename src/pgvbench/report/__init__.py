"""Reports of a run: figures (PNG), Markdown and a self-contained HTML page."""

from __future__ import annotations

from .plots import plot_build_cost, plot_latency, plot_recall_vs_qps
from .render import ReportFiles, render_report

__all__ = [
    "ReportFiles",
    "plot_build_cost",
    "plot_latency",
    "plot_recall_vs_qps",
    "render_report",
]
