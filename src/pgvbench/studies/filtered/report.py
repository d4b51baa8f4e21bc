"""The "Filtered vector search" report section and its validity lines (no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...report import fmt
from ...report.document import Block, Bullets, Heading, Image, Paragraph, Table
from ...report.fmt import (
    DASH,
    format_qps,
    format_sig,
)
from . import bounds
from .advice import runner_up_clause
from .notes import INVALIDATING
from .ranking import hot_alternative
from .records import BucketInfo, FilteredComparison, FilteredResult, FilteredRow

FILTERED_FIGURE = "filtered_p99.png"
FILTERED_ALT = "Filtered top-k: p99 per selectivity bucket and strategy"

# the shared formatters under the short names this module's tables use
_count = fmt.format_count
_fixed = fmt.format_fixed
_sig = fmt.format_number


def section(result: FilteredResult, image: Image | None) -> list[Block]:
    """The section: setup, buckets, figure, winners, the strategy x bucket table, setups."""
    c = result.comparison
    blocks: list[Block] = [Heading(2, "Filtered vector search"), Paragraph(_setup_text(c))]
    blocks += bounds.blocks(c)
    blocks += _buckets_table(c)
    if image is not None:
        blocks.append(image)
    blocks += _winner_blocks(c, result.winners)
    if c.rows:
        blocks.append(_rows_table(c, result.winners))
    else:
        blocks.append(Paragraph("No strategy x bucket row was measured."))
    blocks += bounds.sweep_blocks(c)
    blocks += _setups_table(c)
    if c.notes:
        blocks += [Heading(3, "Notes"), Bullets(list(c.notes))]
    return blocks


def validity_lines(comparison: FilteredComparison) -> list[str]:
    """A line per invalid row that was measured, with its notes."""
    return [
        f"Filtered {r.arm} at {r.bucket}: INVALID — " + ("; ".join(r.notes) or "no reason recorded")
        for r in _measured(comparison)
        if not r.valid
    ]


def validity_summary(comparison: FilteredComparison) -> str:
    """The sentence for the Validity paragraph, with a leading space ("" when no row was
    measured)."""
    measured = _measured(comparison)
    if not measured:
        return ""
    invalid = sum(1 for r in measured if not r.valid)
    if not invalid:
        return f" All {len(measured)} filtered-search rows are valid."
    return f" Invalid filtered-search rows: {invalid} of {len(measured)}."


def bucket_order(comparison: FilteredComparison, rows: Sequence[FilteredRow]) -> list[str]:
    """Bucket labels smallest share first (the comparison's order), then any others."""
    labels = [b.label for b in comparison.buckets]
    for r in rows:
        if r.bucket not in labels:
            labels.append(r.bucket)
    return labels


def strategy_order(rows: Sequence[FilteredRow]) -> list[str]:
    """Strategies (arms, with ef_search in a sweep) in the order the comparison ran them."""
    return list(dict.fromkeys(r.arm for r in rows))


# --- parts ---------------------------------------------------------------------------------


def _measured(comparison: FilteredComparison) -> list[FilteredRow]:
    return [r for r in comparison.rows if r.n_queries]


def _setup_text(c: FilteredComparison) -> str:
    """What was measured, in one paragraph."""
    if c.source == "vectors":
        return bounds.setup_text(c)
    table = f" on {c.table}" if c.table else ""
    size = (
        f" ({_count(c.memories)} memories, {_count(c.agents)} agents, "
        f"{c.dim} dimensions, {c.metric})"
    )
    scope = "one agent within its tenant" if c.tenant_filter else "one agent"
    text = (
        f"Top-{c.k} nearest memories of {scope}{table}{size}, run by each strategy "
        f"on the same rows; agents are grouped by their share of all memories. "
        f"hnsw.ef_search={c.ef_search}, hnsw.max_scan_tuples="
        f"{c.max_scan_tuples}; one client, {_sig(c.measure_seconds)} s per row, "
        f"up to {c.queries_per_bucket} query vectors per bucket. "
    )
    return text + (
        "Recall is tie-aware against the exact top-k over only the rows the filter keeps; "
        "fill is rows returned / min(k, rows matching), below 1 when the index ran out of "
        "candidates. Buffers are shared hit + read per query (EXPLAIN ANALYZE)."
    )


def _buckets_table(c: FilteredComparison) -> list[Block]:
    if not c.buckets:
        return []
    if c.source == "vectors":
        return bounds.buckets_table(c)
    rows = [
        [
            b.label,
            _count(b.agents),
            _count(b.memories),
            _count(b.queries),
            _count(b.hot_queries),
        ]
        for b in c.buckets
    ]
    header = ["Bucket (share of memories)", "Agents", "Memories", "Queries", "Hot-agent queries"]
    return [Table(header, rows, numeric=frozenset({1, 2, 3, 4}))]


_ROWS_HEADER = [
    "Bucket", "Strategy", "Scope", "Queries", "Rows matching", "Recall mean", "Recall p5",
    "Fill mean", "Fill min", "p50 ms", "p95 ms", "p99 ms", "QPS", "Buffers/query", "Winner",
    "Valid", "Notes",
]  # fmt: skip
_ROWS_NUMERIC = frozenset(range(3, 14))


def _rows_table(c: FilteredComparison, winners: Mapping[str, str]) -> Table:
    """Rows grouped by bucket (smallest share first), strategies in run order."""
    buckets = bucket_order(c, c.rows)
    strategies = strategy_order(c.rows)
    ordered = sorted(c.rows, key=lambda r: (buckets.index(r.bucket), strategies.index(r.arm)))
    return Table(
        _ROWS_HEADER,
        [_row_cells(r, winners) for r in ordered],
        flagged=[not r.valid for r in ordered],
        numeric=_ROWS_NUMERIC,
    )


def _row_cells(row: FilteredRow, winners: Mapping[str, str]) -> list[str]:
    notes = "; ".join(row.notes)
    return [
        row.bucket,
        row.arm,
        row.scope or DASH,
        _count(row.n_queries),
        _sig(row.rows_matching_mean),
        _fixed(row.recall_mean),
        _fixed(row.recall_p5),
        _fixed(row.fill_mean),
        _fixed(row.fill_min),
        _sig(row.latency_p50_ms),
        _sig(row.latency_p95_ms),
        _sig(row.latency_p99_ms),
        DASH if row.qps is None else format_qps(row.qps),
        _sig(row.buffers_per_query),
        "★" if winners.get(row.bucket) == row.arm else "",
        _validity_cell(row),
        notes or ("" if row.valid else "no reason recorded"),
    ]


def _validity_cell(row: FilteredRow) -> str:
    """ "yes", "⚠ INVALID" (a plan check or a failure), or "not measured" (a strategy that
    does not apply to the predicate, a bucket without a hot label): no fault of the row."""
    if row.valid:
        return "yes"
    faulty = any(k in n for n in row.notes for k in INVALIDATING)
    return "not measured" if row.n_queries == 0 and not faulty else "⚠ INVALID"


def _winner_blocks(c: FilteredComparison, winners: Mapping[str, str]) -> list[Block]:
    """One sentence per bucket that was measured: who wins, with the numbers."""
    measured = [b for b in bucket_order(c, c.rows) if _bucket_measured(c, b)]
    if not measured:
        return []
    sentences = [_winner_sentence(c, b, winners) for b in measured]
    intro = (
        "per bucket, the strategy with the lowest p99 among valid rows that reach the run's "
        "recall and fill targets (★ in the table and the figure)."
    )
    return [Paragraph(intro, lead="Winners:"), Bullets(sentences)]


def _bucket_info(c: FilteredComparison, bucket: str) -> BucketInfo | None:
    return next((b for b in c.buckets if b.label == bucket), None)


def _bucket_measured(c: FilteredComparison, bucket: str) -> bool:
    info = _bucket_info(c, bucket)
    if info is not None and info.queries == 0:
        return False
    return any(r.bucket == bucket and r.n_queries for r in c.rows)


def _winner_sentence(c: FilteredComparison, bucket: str, winners: Mapping[str, str]) -> str:
    info = _bucket_info(c, bucket)
    if c.source == "vectors":
        subject = bounds.bucket_subject(info, bucket)
    else:
        agents = f" ({_count(info.agents)} agents)" if info is not None else ""
        subject = f"Agents with {bucket} of the memories{agents}"
    strategy = winners.get(bucket)
    hot_row = hot_alternative(c, bucket)
    hot = (
        ""
        if hot_row is None or hot_row.latency_p99_ms is None
        else f" For its hot {_who(c)} alone, {hot_row.arm} (a partial index each) answers in "
        f"p99 {format_sig(hot_row.latency_p99_ms)} ms, but serves no other {_who(c)[:-1]}."
    )
    if strategy is None:
        return f"{subject}: no strategy reached the recall and fill targets.{hot}"
    row = c.row(strategy, bucket)
    if row is None:
        return f"{subject}: {strategy}."
    p99 = DASH if row.latency_p99_ms is None else f"{format_sig(row.latency_p99_ms)} ms"
    margin = runner_up_clause(c, bucket)  # the margin over the next strategy, or a tie
    return (
        f"{subject}: {strategy}, p99 {p99} at recall "
        f"{_fixed(row.recall_mean, 2)} (p5 {_fixed(row.recall_p5, 2)}), "
        f"fill {_fixed(row.fill_mean, 2)}{f'; {margin}' if margin else ''}.{hot}"
    )


def _who(c: FilteredComparison) -> str:
    return "agents" if c.source == "agents" else "labels"


def _setups_table(c: FilteredComparison) -> list[Block]:
    if not c.setups:
        return []
    rows = [
        [
            s.strategy,
            _sig(s.setup_seconds),
            _sig(s.index_bytes / 1e6) if s.index_bytes else DASH,
            ", ".join(f"{k}={v}" for k, v in sorted(s.settings.items())) or DASH,
            "; ".join(s.notes),
        ]
        for s in c.setups
    ]
    header = ["Strategy", "Setup s", "Index MB", "Session settings", "Notes"]
    return [Heading(3, "Strategy setup"), Table(header, rows, numeric=frozenset({1, 2}))]


# --- numbers -------------------------------------------------------------------------------
