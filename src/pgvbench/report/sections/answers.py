"""The report's opening: every recommendation of the run, each with the margin its advice
code wrote into it, before any table.

The sources, in this order: the vector sweep's headline (summary.recommendation), the
concurrency advice (pool size at the knee, analysis.pool_advice), then each registered
study's ``advice()`` over its record (filtered strategies, drift, build, cache, result
cache, quantization). A study whose record no longer reads falls back to the sentences the
run stored (``agent.recommendations`` / ``tuning.recommendations``), so an old results file
still opens with what it advised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ...analysis.pool_advice import recommend_pool_size
from ...analysis.scalability import resolve_slo
from ...results import Results
from ...studies.base import Study
from ...studies.registry import REGISTRY
from ..document import Block, Bullets, Paragraph
from .summary import recommendation

VECTOR_TOPIC = "Vector search"
CONCURRENCY_TOPIC = "Concurrency"
AGENT_TOPIC = "Agents"
TUNING_TOPIC = "Tuning"
NOTHING = "Nothing was measured that supports a recommendation."


@dataclasses.dataclass(frozen=True)
class Answer:
    """One recommendation: what it is about (a report section's name) and the sentence."""

    topic: str
    text: str


def answers(results: Results, target: float | None, *, agent_only: bool = False) -> list[Answer]:
    """Every recommendation of the run, in report order. ``target`` is the recall target of
    the sweep's headline (None: no sweep line); ``agent_only`` keeps the agent part's
    (agent-mix concurrency and the agent studies)."""
    out: list[Answer] = []
    if results.runs and target is not None and not agent_only:
        out.append(Answer(VECTOR_TOPIC, recommendation(results, target)))
    points = [p for p in results.load_points if p.workload or not agent_only]
    if points:
        scoped = dataclasses.replace(results, load_points=points)
        out.append(Answer(CONCURRENCY_TOPIC, recommend_pool_size(scoped, resolve_slo(results))))
    out += _study_answers(results, agent_only=agent_only)
    return out


def answers_section(results: Results, target: float) -> list[Block]:
    """The report's opening: the sweep's headline as the lead paragraph when there is a
    sweep, then every other recommendation, one bullet each."""
    found = answers(results, target)
    if not found:
        agent = results.agent is not None or any(p.workload for p in results.load_points)
        # a plain run keeps the sweep's own sentence on why nothing can be recommended
        text = f"{_no_sweep(results)} {NOTHING}" if agent else recommendation(results, target)
        return [Paragraph(text, lead="Recommendation.", style="recommendation")]
    blocks: list[Block] = []
    rest = found
    if found[0].topic == VECTOR_TOPIC:
        blocks.append(Paragraph(found[0].text, lead="Recommendation.", style="recommendation"))
        rest = found[1:]
        if rest:
            blocks.append(Paragraph("The run's other recommendations, each with its margin:"))
    else:
        blocks.append(
            Paragraph(
                f"{_no_sweep(results)} Its recommendations, each with its margin "
                "(the sections below hold the measurements):",
                lead="Recommendations.",
                style="recommendation",
            )
        )
    if rest:
        blocks.append(Bullets([f"{a.topic}: {a.text}" for a in rest]))
    return blocks


def agent_answers_blocks(results: Results) -> list[Block]:
    """The agent part's recommendations, for the agent report's opening ([] without any)."""
    found = answers(results, None, agent_only=True)
    if not found:
        return []
    return [
        Paragraph(
            "Each with its margin (the sections below hold the measurements):",
            lead="Agent recommendations.",
            style="recommendation",
        ),
        Bullets([f"{a.topic}: {a.text}" for a in found]),
    ]


def _no_sweep(results: Results) -> str:
    if results.agent is not None or any(p.workload for p in results.load_points):
        return (
            "This agent run has no vector-search sweep: it measured the agent platform "
            "(see Dataset for what was timed)."
        )
    return "This run has no vector-search sweep."


def _study_answers(results: Results, *, agent_only: bool) -> list[Answer]:
    out: list[Answer] = []
    read: set[str] = set()  # the parts ("agent", "tuning") whose studies' records read
    for study in REGISTRY:
        if agent_only and study.section != "agent":
            continue
        texts = _advice(study, results)
        if texts is None:
            continue
        read.add(study.section)
        out += [Answer(study.title, text) for text in texts]
    stored: Sequence[tuple[str, str, list[str]]] = (
        ("agent", AGENT_TOPIC, results.agent.recommendations if results.agent else []),
        ("tuning", TUNING_TOPIC, results.tuning.recommendations if results.tuning else []),
    )
    for section, topic, texts in stored:
        if section in read or (agent_only and section != "agent"):
            continue
        out += [Answer(topic, text) for text in dict.fromkeys(texts)]
    return out


def _advice(study: Study[Any, Any], results: Results) -> list[str] | None:
    """The study's advice over its record; None when the run has no record that reads."""
    result = study.load(results)
    if result is None:
        return None
    return [r.text for r in study.advice(result)]
