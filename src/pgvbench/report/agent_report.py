"""The agent part of a report on its own (its recommendations first, then platform,
operations and the agent studies), for callers that want it without the whole document."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..results import Results
from ..studies.drift.report import DRIFT_FIGURE
from ..studies.filtered import STUDY as FILTERED
from ..studies.filtered.report import FILTERED_FIGURE
from ..studies.registry import REGISTRY
from .document import Block, Image
from .sections.agent_platform import agent_platform_section
from .sections.answers import agent_answers_blocks
from .sections.studies import StudyPart, agent_study_blocks

__all__ = [
    "DRIFT_FIGURE",
    "FILTERED_FIGURE",
    "agent_blocks",
    "plot_filtered_p99",
    "render_agent_figures",
]


def agent_blocks(results: Results, images: Sequence[Image]) -> list[Block]:
    """The agent sections, or [] for a run without agent experiments; ``images`` are the
    drawn agent figures (each study's section shows its own). They open with the agent
    part's recommendations (answers.py), as the whole report opens with all of them."""
    platform = agent_platform_section(results)
    if not platform:
        return []
    return [
        *agent_answers_blocks(results),
        *platform,
        *agent_study_blocks(results, _parts(results, images)),
    ]


def render_agent_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the agent studies' figures that have data into ``out_dir``."""
    return [
        image for part in _parts(results, ()) for image in part.study.figures(part.result, out_dir)
    ]


def plot_filtered_p99(results: Results, path: Path) -> Path | None:
    """The filtered-search p99 chart of a run at ``path``, or None with nothing to draw."""
    result = FILTERED.load(results)
    if result is None:
        return None
    from ..studies.filtered.plots import plot_filtered_p99 as plot  # matplotlib: on use

    return plot(result, path)


def _parts(results: Results, images: Sequence[Image]) -> list[StudyPart]:
    """The agent studies with records; each section picks its own figure by name."""
    parts = []
    for study in REGISTRY:
        result = study.load(results) if study.section == "agent" else None
        if result is not None:
            parts.append(StudyPart(study, result, images))
    return parts
