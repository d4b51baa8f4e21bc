"""The "Index build tuning" report section: advice, setup, its own figure, the table of
builds and the record's notes. No database, no matplotlib (plots.py draws)."""

from __future__ import annotations

from collections.abc import Sequence

from ...report.document import Block, Bullets, Heading, Image, KeyValues, Paragraph, Table
from ...report.fmt import DASH, format_sig
from .advice import advice
from .records import BuildTuningPoint, BuildTuningStudy, Phase

FIGURE_NAME = "build_tuning.png"
FIGURE_ALT = "Index build time vs maintenance_work_mem (x: graph did not fit)"


def blocks(study: BuildTuningStudy, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, advice, setup, figure, table and notes of the build study. Of ``images``
    only the study's own figure is shown."""
    out: list[Block] = [Heading(2, "Index build tuning")]
    texts = list(study.recommendations) or [r.text for r in advice(study)]
    if texts:
        out.append(Paragraph(" ".join(texts), lead="Build settings.", style="recommendation"))
    out.append(KeyValues(_setup_items(study)))
    out.extend(i for i in images if i.src == FIGURE_NAME)
    if study.points:
        out.append(
            Table(
                header=[
                    "maintenance_work_mem",
                    "workers",
                    "workers seen",
                    "build s",
                    "index MB",
                    "graph fits",
                    "longest phase",
                    "notes",
                ],
                rows=[_row(p) for p in study.points],
                flagged=[not p.graph_fits or bool(p.error) for p in study.points],
                numeric=frozenset({1, 2, 3, 4}),
            )
        )
    else:
        out.append(Paragraph("The study recorded no build.", style="warning"))
    notes = [n for n in study.notes if n]
    if notes:
        out.append(Bullets(notes))
    return out


def _setup_items(study: BuildTuningStudy) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = [("index", study.index or DASH)]
    if study.table:
        items.append(("table", study.table))
    items.append(("rows", f"{study.rows:,}"))
    if study.limits:
        items.append(("server limits", ", ".join(f"{k} = {v}" for k, v in study.limits.items())))
    return items


def _row(p: BuildTuningPoint) -> list[str]:
    if p.error:
        fits = DASH
    elif not p.graph_fits:
        after = p.fits_after_tuples
        fits = f"no, after {after:,} tuples" if after is not None else "no"
    else:
        fits = "yes"
    return [
        p.maintenance_work_mem or DASH,
        str(p.workers),
        str(p.workers_launched) if p.workers_launched is not None else DASH,
        format_sig(p.build_seconds) if p.build_seconds is not None else DASH,
        format_sig(p.index_bytes / 1024**2) if p.index_bytes is not None else DASH,
        fits,
        _longest_phase(p.phases),
        p.error or "",
    ]


def _longest_phase(phases: Sequence[Phase]) -> str:
    if not phases:
        return DASH
    secs, name = max((ph.seconds, ph.phase) for ph in phases)
    return f"{name} ({format_sig(secs)} s)"
