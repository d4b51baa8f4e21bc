"""Render a run's results as ``report.md`` and a self-contained ``report.html``.

The report is built once as a small document model (headings, paragraphs,
tables, ...) and then written twice, so the Markdown and HTML always say the
same thing. Both are rendered from a :class:`~pgvbench.results.Results` alone,
deterministically: the same results give byte-identical files.

This module is the entry point only: it draws the figures, assembles the sections
(sections/ for the core ones; each registered study's own, studies/registry.py) in the
report's order and writes both files.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from .._atomic import write_bytes_atomic
from ..analysis import resolve_target_recall
from ..analysis.scalability import resolve_slo
from ..results import Results
from ..studies.registry import REGISTRY
from .document import Block, Code, Heading, Image, Paragraph
from .html import to_html
from .load_plots import (
    plot_load_timeseries,
    plot_p99_vs_clients,
    plot_pool_wait,
    plot_throughput_vs_clients,
)
from .markdown import to_markdown
from .sections.agent_platform import agent_platform_section
from .sections.answers import answers_section
from .sections.concurrency import concurrency_section
from .sections.setup import dataset_section, environment_section, load_section
from .sections.studies import StudyPart, agent_study_blocks, study_validity, tuning_blocks
from .sections.summary import figures_section, status_section, timing, title
from .sections.sweep import builds_section, sweep_section
from .sections.validity import validity_section
from .sweep_plots import plot_build_cost, plot_latency, plot_recall_vs_qps

MD_NAME = "report.md"
HTML_NAME = "report.html"


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    md: Path
    html: Path
    images: list[Path]


_Plotter = Callable[[Results, Path, float], Path | None]
_FIGURES: tuple[tuple[str, str, _Plotter], ...] = (
    (
        "recall_vs_qps.png",
        "Recall vs throughput",
        lambda r, p, t: plot_recall_vs_qps(r, p, target_recall=t),
    ),
    ("latency.png", "Latency vs recall", lambda r, p, t: plot_latency(r, p, target_recall=t)),
    ("build_cost.png", "Index build cost", lambda r, p, _t: plot_build_cost(r, p)),
)
# Concurrency figures; the float passed is the p99 SLO (ms).
_LOAD_FIGURES: tuple[tuple[str, str, _Plotter], ...] = (
    (
        "throughput_vs_clients.png",
        "Throughput vs clients (dashed: USL fit; dotted: a sketch, too few points)",
        lambda r, p, _s: plot_throughput_vs_clients(r, p),
    ),
    (
        "p99_vs_clients.png",
        "Latency vs clients (p99 thick, p50 thin)",
        lambda r, p, s: plot_p99_vs_clients(r, p, slo_p99_ms=s),
    ),
    ("pool_wait.png", "Pool wait per operation", lambda r, p, _s: plot_pool_wait(r, p)),
    (
        "load_timeseries.png",
        "Per-second throughput and p99 at each series' largest client count",
        lambda r, p, s: plot_load_timeseries(r, p, slo_p99_ms=s),
    ),
)


def render_report(
    results: Results, out_dir: Path, *, target_recall: float | None = None
) -> ReportFiles:
    """Write figures, ``report.md`` and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = resolve_target_recall(results, target_recall)
    figures = _render_figures(results, out_dir, _FIGURES, target)
    load_figures = (
        _render_figures(results, out_dir, _LOAD_FIGURES, resolve_slo(results))
        if results.load_points
        else []
    )
    studies = _study_parts(results, out_dir)
    blocks = build_document(
        results,
        target,
        [Image(p.name, alt) for p, alt in figures],
        load_images=[Image(p.name, alt) for p, alt in load_figures],
        studies=studies,
    )
    md_path, html_path = out_dir / MD_NAME, out_dir / HTML_NAME
    write_bytes_atomic(md_path, to_markdown(blocks).encode("utf-8"))
    write_bytes_atomic(html_path, to_html(blocks, title(results), out_dir).encode("utf-8"))
    images = [p for p, _ in figures] + [p for p, _ in load_figures]
    images += [out_dir / image.src for part in studies for image in part.images]
    for part in studies:  # the studies' own files (tune.md, apply.sql) from the same record
        part.study.outputs(part.result, results, out_dir)
    return ReportFiles(md=md_path, html=html_path, images=images)


def _render_figures(
    results: Results,
    out_dir: Path,
    plots: Sequence[tuple[str, str, _Plotter]],
    threshold: float,
) -> list[tuple[Path, str]]:
    drawn: list[tuple[Path, str]] = []
    for name, alt, plot in plots:
        path = plot(results, out_dir / name, threshold)
        if path is not None:
            drawn.append((path, alt))
    return drawn


def _study_parts(results: Results, out_dir: Path) -> list[StudyPart]:
    """Each registered study with a record in ``results``, its figures drawn."""
    parts = []
    for study in REGISTRY:
        result = study.load(results)
        if result is not None:
            parts.append(StudyPart(study, result, study.figures(result, out_dir)))
    return parts


def build_document(
    results: Results,
    target: float,
    images: Sequence[Image],
    *,
    load_images: Sequence[Image] = (),
    studies: Sequence[StudyPart] = (),
) -> list[Block]:
    """The whole report, section by section."""
    platform = agent_platform_section(results)
    agent = [*platform, *(agent_study_blocks(results, studies) if platform else [])]
    tuning = tuning_blocks(results, studies)
    study_lines, study_summary = study_validity(studies)
    return [
        Heading(1, title(results)),
        Paragraph(timing(results)),
        *status_section(results),
        *answers_section(results, target),
        *figures_section(images, has_load=bool(results.load_points), has_agent=bool(agent)),
        *dataset_section(results.dataset, recall_rule=results.recall_rule, run=results),
        *load_section(results.load),
        *environment_section(results.environment),
        *builds_section(results.indexes),
        *sweep_section(results),
        *concurrency_section(results, load_images),
        *agent,
        *tuning,
        *validity_section(results, study_lines=study_lines, study_summary=study_summary),
        Heading(2, "Workload spec"),
        Code(json.dumps(results.spec, indent=2, sort_keys=True)),
    ]
