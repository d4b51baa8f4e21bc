"""The index builds, the sweep table (one row per measured point) and the repeats' spread."""

from __future__ import annotations

from collections.abc import Sequence

from ...analysis import pareto_front, point_order_key
from ...results import IndexBuild, Results, SweepPoint
from ..document import Block, Heading, Paragraph, Table
from ..fmt import (
    DASH,
    EXACT_KIND,
    format_optional,
    format_params,
    format_qps,
    format_sig,
    latency_cells,
)


def builds_section(builds: Sequence[IndexBuild]) -> list[Block]:
    if not builds:
        return [Heading(2, "Index builds"), Paragraph("No index was built.")]
    header = ["Index", "Kind", "Build s", "Size MB", "Phases", "Build settings", "Notices"]
    return [
        Heading(2, "Index builds"),
        Table(header, [_build_row(b) for b in builds], numeric=frozenset({2, 3})),
    ]


def _build_row(build: IndexBuild) -> list[str]:
    built = build.kind != EXACT_KIND
    return [
        build.label,
        build.kind,
        format_sig(build.build_seconds) if built else DASH,
        format_sig(build.index_bytes / 1e6) if built else DASH,
        "; ".join(f"{ph.phase} {format_sig(ph.seconds)} s" for ph in build.phases) or DASH,
        ", ".join(f"{k}={v}" for k, v in sorted(build.build_settings.items())) or DASH,
        "; ".join(build.notices) or DASH,
    ]


_MEASURED = [
    "Index", "Query params", "Conc.", "Recall mean", "Recall ≥", "Recall p5", "Recall min", "QPS",
    "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms",
]  # fmt: skip
_BLOCKS = "Blocks/query"
_COUNTS = ["Ops", "Errors"]
_VERDICT = ["Valid", "Front", "Notes"]


def sweep_section(results: Results) -> list[Block]:
    points = sweep_order(results)
    if not points:
        return [Heading(2, "Sweep"), Paragraph("No sweep point was measured.")]
    front = {id(p) for p in pareto_front(points)}
    # the column is there whenever pg_stat_statements measured a point, repeats or not
    blocks = any(blocks_per_query(p) is not None for p in points)
    header = [*_MEASURED, *([_BLOCKS] if blocks else []), *_COUNTS, *_VERDICT]
    intro = (
        "Recall ≥: the mean's one-sided 95% lower bound (bootstrap over the recall queries), "
        "which the headline judges against the target; Recall min counts the queries that "
        "found none of their true neighbours. "
        "Front ● marks points on the recall/QPS Pareto front (valid points only). "
        "Rows marked ⚠ INVALID must not be used; the reason is in Notes and under Validity."
    )
    if blocks:
        intro += " Blocks/query: shared buffers hit + read per query (pg_stat_statements)."
    return [
        Heading(2, "Sweep"),
        Paragraph(intro),
        Table(
            header,
            [_sweep_row(p, id(p) in front, blocks) for p in points],
            flagged=[not p.valid for p in points],
            numeric=frozenset(range(2, len(header) - len(_VERDICT))),
        ),
        *_repeats_blocks(points),
    ]


def blocks_per_query(point: SweepPoint) -> float | None:
    """Shared buffers hit + read per query over all repeats, from pg_stat_statements."""
    st = point.statements
    if st is not None:
        return st.shared_blks_hit_per_call + st.shared_blks_read_per_call
    per_sample = [s.shared_blks_per_query for s in point.samples]
    measured = [b for b in per_sample if b is not None]
    if not measured or len(measured) < len(per_sample):
        return None
    return sum(measured) / len(measured)


def _repeats_blocks(points: list[SweepPoint]) -> list[Block]:
    """With [experiment] repeats: how far the repeats of each point spread (noise)."""
    repeated = [p for p in points if len(p.samples) > 1]
    if not repeated:
        return []

    def spread(values: list[float]) -> str:
        return f"{format_sig(min(values))}–{format_sig(max(values))}" if values else DASH

    rows = []
    for p in repeated:
        lats = [s.latency_ms for s in p.samples if s.latency_ms is not None]
        blocks = [s.shared_blks_per_query for s in p.samples if s.shared_blks_per_query]
        rows.append(
            [
                p.index,
                format_params(p.query_params) or DASH,
                str(len(p.samples)),
                spread([s.qps for s in p.samples]),
                spread([lat.p50 for lat in lats]),
                spread([lat.p99 for lat in lats]),
                spread([b for b in blocks if b is not None]),
            ]
        )
    return [
        Heading(3, "Repeats"),
        Paragraph(
            "Each point was measured several times, interleaved with the other points of its "
            "build (A B A B); the table above merges the repeats. Ranges over the repeats "
            "show the noise within this run; `pgvbench compare` tests differences against it."
        ),
        Table(
            ["Index", "Query params", "Repeats", "QPS", "p50 ms", "p99 ms", "Blocks/query"],
            rows,
            numeric=frozenset(range(2, 7)),
        ),
    ]


def sweep_order(results: Results) -> list[SweepPoint]:
    """Points in build order (as built), then by query params and concurrency."""
    position = {b.label: i for i, b in enumerate(results.indexes)}
    unknown = len(position)  # points naming a build the run did not record go last
    return sorted(
        results.runs,
        key=lambda p: (position.get(p.index, unknown), _param_values(p), point_order_key(p)),
    )


def _param_values(point: SweepPoint) -> tuple[int, ...]:
    # numeric order (ef_search 40 before 100), which point_order_key's tuples also give
    return tuple(v for _, v in sorted(point.query_params.items()))


def _sweep_row(p: SweepPoint, on_front: bool, blocks: bool) -> list[str]:
    recall = _recall_cells(p)
    latency = latency_cells(p.latency_ms, ("p50", "p95", "p99", "p999", "max"))
    return [
        p.index,
        format_params(p.query_params) or DASH,
        str(p.concurrency),
        *recall,
        format_qps(p.qps),
        *latency,
        *([format_optional(blocks_per_query(p))] if blocks else []),
        f"{p.operations:,}",
        f"{p.errors:,}",
        "yes" if p.valid else "⚠ INVALID",
        "●" if on_front else "",
        notes_text(p),
    ]


def _recall_cells(p: SweepPoint) -> list[str]:
    """Mean, its 95% lower bound, p5, and min with the count of queries at recall 0."""
    r = p.recall
    if r is None:
        return [DASH] * 4
    low = DASH if r.low is None else f"{r.low:.3f}"
    floor = f"{r.min:.3f}" + (f" ({r.zero:,} at 0)" if r.zero else "")
    return [f"{r.mean:.3f}", low, f"{r.p5:.3f}", floor]


def notes_text(point: SweepPoint) -> str:
    """A point's notes for a table cell; an invalid point always says why (or that it can't)."""
    if point.notes:
        return "; ".join(point.notes)
    return "" if point.valid else "no reason recorded"
