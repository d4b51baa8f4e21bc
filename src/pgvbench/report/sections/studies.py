"""The studies' part of the report: each registered study that has a record in the
results writes its own section (studies/<name>/report.py), in registry order, inside the
agent part or the tuning part, followed by that part's recommendations."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ...results import Results
from ...studies.base import Study
from ..document import Block, Bullets, Heading, Image, Paragraph, Table


@dataclasses.dataclass(frozen=True)
class StudyPart:
    """One study's record in a run, and the figures it drew for the report."""

    study: Study[Any, Any]
    result: Any
    images: Sequence[Image]


def agent_study_blocks(results: Results, parts: Sequence[StudyPart]) -> list[Block]:
    """The agent studies' sections and the agent recommendations ([] without agents)."""
    agent = results.agent
    if agent is None:
        return []
    blocks: list[Block] = []
    for part in parts:
        if part.study.section == "agent":
            blocks += part.study.report(part.result, part.images, results)
    blocks.append(Heading(2, "Agent recommendations"))
    if not agent.recommendations:
        blocks.append(Paragraph("Nothing was measured that supports a recommendation."))
    else:
        blocks.append(Bullets(list(agent.recommendations)))
    return blocks


def tuning_blocks(results: Results, parts: Sequence[StudyPart]) -> list[Block]:
    """Server configurations, the tuning studies' sections and the tuning recommendations
    ([] when the run had none)."""
    tuning = results.tuning
    if tuning is None:
        return []
    blocks: list[Block] = []
    if tuning.settings_sweep:
        blocks += _configurations(tuning.settings_sweep)
    for part in parts:
        if part.study.section == "tuning":
            blocks += part.study.report(part.result, part.images, results)
    if tuning.recommendations:
        blocks += [Heading(2, "Tuning recommendations"), Bullets(list(tuning.recommendations))]
    return blocks


def study_validity(parts: Sequence[StudyPart]) -> tuple[list[str], str]:
    """The studies' lines for the Validity section, and their sentences for its summary."""
    lines: list[str] = []
    summary = ""
    for part in parts:
        lines += part.study.validity(part.result)
        summary += part.study.validity_summary(part.result)
    return lines, summary


def _configurations(sweep: Sequence[dict[str, Any]]) -> list[Block]:
    return [
        Heading(2, "Server configurations"),
        Paragraph(
            "Each configuration of [[server.sweep]] was applied in turn on top of "
            "[server.settings]; builds and sweep points above carry its label."
        ),
        Table(
            ["configuration", "requested", "in effect (SHOW)", "not applied", "restarted"],
            [
                [
                    str(c.get("label", "")),
                    _pairs(c.get("requested", {})),
                    _pairs(c.get("in_effect", {})),
                    _pairs(c.get("not_applied", {})) or "—",
                    "yes" if c.get("restarted") else "no",
                ]
                for c in sweep
            ],
        ),
    ]


def _pairs(values: Any) -> str:
    if not isinstance(values, dict):
        return ""
    return ", ".join(f"{k} = {v}" for k, v in values.items())
