"""The top of the report: title, timing, run status, the headline recommendation and the
list of sweep figures."""

from __future__ import annotations

from collections.abc import Sequence

from ...analysis.paired import PairedRatio
from ...analysis.pareto import fastest_at_recall, resolve_target_p5
from ...results import Results, SweepPoint, describe_status
from ..document import Block, Code, Heading, Image, Paragraph
from ..fmt import EXACT_KIND, format_params, format_qps, format_sig, recall_name
from .recall_margin import (
    index_shortfall,
    next_steps,
    recall_figures,
    spread_sentence,
    zero_recall_flag,
)


def title(results: Results) -> str:
    return f"pgvbench report: {results.run_name} ({describe_status(results)})"


def timing(results: Results) -> str:
    if results.finished_at is None:
        return f"Started {results.started_at}; {describe_status(results)}."
    return f"Started {results.started_at}, finished {results.finished_at}."


def status_section(results: Results) -> list[Block]:
    if results.status == "complete":
        return []
    blocks: list[Block] = [
        Paragraph(
            f"This run is {describe_status(results)}: the numbers below cover only what was "
            "measured "
            "before it stopped.",
            lead="Warning.",
            style="warning",
        )
    ]
    if results.failure:
        blocks.append(Code(results.failure))
    return blocks


def figures_section(
    images: Sequence[Image], *, has_load: bool = False, has_agent: bool = False
) -> list[Block]:
    if not images and has_agent:
        where = "Concurrency and the agent sections" if has_load else "the agent sections"
        return [Heading(2, "Figures"), Paragraph(f"No sweep figures; see {where} below.")]
    if not images and has_load:
        text = "No sweep figures; the concurrency figures are under Concurrency."
        return [Heading(2, "Figures"), Paragraph(text)]
    if not images:
        return [Heading(2, "Figures"), Paragraph("No figures: the run recorded no measurements.")]
    return [Heading(2, "Figures"), *images]


# --- recommendation ----------------------------------------------------------------------


def recommendation(results: Results, target: float) -> str:
    """The fastest configuration whose recall clears ``target`` with 95% confidence (and
    the spec's p5 target), with its margin, zero-recall queries and build-to-build spread."""
    name = recall_name(results)
    p5_target = resolve_target_p5(results)
    best = fastest_at_recall(results.runs, target, p5_target=p5_target)
    if best is None:
        return next_steps(results, name, target, p5_target)
    assert best.recall is not None  # fastest_at_recall only returns measured points
    return (
        f"At {name} ≥ {target:g} the fastest configuration is "
        f"{describe(best, results)}: {_headline_numbers(best, target, p5_target)}"
        f"{_versus_exact(best, results)}."
        + zero_recall_flag(best.recall)
        + spread_sentence(results, best, target, p5_target, best.index)
        + (index_shortfall(results, target) if best.index_kind == EXACT_KIND else "")
    )


def describe(point: SweepPoint, results: Results) -> str:
    """How a reader would name the configuration: build, query params, concurrency."""
    text = "the exact scan (no index)" if point.index_kind == EXACT_KIND else point.index
    if point.query_params:
        text += f" with {format_params(point.query_params)}"
    if _varies_concurrency(results):
        text += f" at concurrency {point.concurrency}"
    return text


def _headline_numbers(point: SweepPoint, target: float, p5_target: float | None) -> str:
    assert point.recall is not None  # fastest_at_recall only returns measured points
    text = f"{recall_figures(point.recall, target, p5_target)}, {format_qps(point.qps)} QPS"
    if point.latency_ms is not None:
        text += f", p99 {format_sig(point.latency_ms.p99)} ms"
    return text


def _versus_exact(best: SweepPoint, results: Results) -> str:
    if best.index_kind == EXACT_KIND:
        return ""
    paired = next(
        (
            v
            for v in results.versus_exact
            if v.index == best.index
            and v.query_params == best.query_params
            and v.concurrency == best.concurrency
        ),
        None,
    )
    if paired is not None:
        ratio = PairedRatio.from_dict(paired.ratio)
        if ratio.low is not None and ratio.high is not None:
            margin = f"{format_sig(ratio.low, 2)}-{format_sig(ratio.high, 2)}"
            how = f"{round(ratio.level * 100)}% interval {margin}"
        else:
            how = "no spread between rounds"
        return (
            f" — {format_sig(ratio.ratio, 2)}× the exact scan's QPS ({how}; "
            f"{ratio.rounds} interleaved rounds)"
        )
    exact = _exact_baseline(results, best.concurrency)
    if exact is None or exact.qps <= 0:
        return ""
    # measured minutes apart: the machine may have changed in between, say so
    return f" — {format_sig(best.qps / exact.qps, 2)}× the exact scan's QPS (not interleaved)"


def _exact_baseline(results: Results, concurrency: int) -> SweepPoint | None:
    """The exact-scan point to compare against: same concurrency if there is one."""
    exact = [p for p in results.runs if p.index_kind == EXACT_KIND and p.valid and p.qps > 0]
    same = [p for p in exact if p.concurrency == concurrency] or exact
    return max(same, key=lambda p: p.qps, default=None)


def _varies_concurrency(results: Results) -> bool:
    return len({p.concurrency for p in results.runs}) > 1
