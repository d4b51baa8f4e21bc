"""The report's parts that say what the data bounds (no database): each predicate's
column (label cardinality, commonest and rarest shares, labels no query used), each
bucket's selectivity, the wording of a vector dataset's comparison, and the ef_search
sweep per bucket."""

from __future__ import annotations

from collections.abc import Sequence

from ...report import fmt
from ...report.document import Block, Bullets, Heading, Paragraph, Table
from ...report.fmt import DASH
from .records import BucketInfo, FilteredComparison, FilteredRow

_count = fmt.format_count
_pct = fmt.format_percent
_fixed = fmt.format_fixed
_sig = fmt.format_number

_FORMS = {"eq": "equality", "range": "range (BETWEEN)", "overlap": "overlap (&&)"}
_NOUNS = {"eq": "labels", "overlap": "tags", "range": "filters"}


def setup_text(c: FilteredComparison) -> str:
    """What was measured on a vector dataset, in one paragraph."""
    filters = ", ".join(
        f"{p.name} ({_FORMS.get(p.form, p.form)} on {p.attribute})" for p in c.predicates
    )
    ef = ", ".join(str(e) for e in c.ef_values) if c.swept else str(c.ef_search)
    sweep = " (each HNSW strategy at every value)" if c.swept else ""
    return (
        f"Top-{c.k} nearest rows of {c.dataset or 'the dataset'} on {c.table} "
        f"({_count(c.memories)} rows, {c.dim} dimensions, {c.metric}) under each filter: "
        f"{filters or DASH}. Every strategy runs on the same rows; filters are grouped by the "
        f"share of all rows they keep. hnsw.ef_search={ef}{sweep}, hnsw.max_scan_tuples="
        f"{c.max_scan_tuples}; one client, {_sig(c.measure_seconds)} s per row, up to "
        f"{c.queries_per_bucket} query vectors per bucket. Recall is tie-aware against the "
        "exact top-k over only the rows the filter keeps; fill is rows returned / min(k, rows "
        "matching), below 1 when the index ran out of candidates. Buffers are shared hit + "
        "read per query (EXPLAIN ANALYZE)."
    )


def blocks(c: FilteredComparison) -> list[Block]:
    """What the data holds: one row per predicate, and the labels no query used."""
    if not c.predicates:
        return []
    rows = [
        [
            p.name,
            f"{p.attribute} ({p.attribute_kind})",
            _count(p.rows_with_value),
            _count(p.cardinality),
            _share(p.commonest, p.commonest_share),
            _share(p.rarest, p.rarest_share),
            _query_value(c.source, p.own_query_labels, p.form),
            _count(p.used),
            _count(p.unused) if p.form != "range" else DASH,
        ]
        for p in c.predicates
    ]
    header = [
        "Predicate", "Column", "Rows with a value", "Distinct values", "Commonest (share)",
        "Rarest (share)", "Query's value", "Used by queries", "Unused",
    ]  # fmt: skip
    out: list[Block] = [
        Heading(3, "What the data holds"),
        Table(header, rows, numeric=frozenset({2, 3, 7, 8})),
    ]
    unused = [_unused_line(p.name, p.form, p.unused, p.cardinality, p.unused_examples)
              for p in c.predicates if p.unused]  # fmt: skip
    if unused:
        out += [
            Paragraph(
                "no query filtered on these, so the results say nothing about them:",
                lead="Unused values:",
            ),
            Bullets(unused),
        ]
    return out


def _query_value(source: str, own: bool, form: str) -> str:
    if form == "range":
        return "quantile bounds"
    if source == "agents":
        return "each agent in turn"
    return "its own label" if own else "drawn by frequency"


def _share(label: str, share: float | None) -> str:
    return DASH if share is None else f"{label or DASH} ({_pct(share)})"


def _unused_line(name: str, form: str, unused: int, total: int, examples: Sequence[str]) -> str:
    named = list(examples)
    noun = _NOUNS.get(form, "values")
    listed = ", ".join(str(x) for x in named)
    more = f" and {_count(unused - len(named))} more" if unused > len(named) else ""
    return f"{name}: {_count(unused)} of {_count(total)} {noun}: {listed}{more}"


def buckets_table(c: FilteredComparison) -> list[Block]:
    """Each bucket of each predicate: its filters and the share of rows they kept."""
    rows = [
        [
            b.label,
            b.attribute or DASH,
            _count(b.agents),
            _count(b.queries),
            _count(b.hot_queries),
            _pct(b.share_min),
            _pct(b.share_median),
            _pct(b.share_max),
        ]
        for b in c.buckets
    ]
    header = [
        "Bucket (share of rows kept)", "Column", "Labels / filters", "Queries",
        "Hot-label queries", "Kept min", "Kept median", "Kept max",
    ]  # fmt: skip
    return [Table(header, rows, numeric=frozenset({2, 3, 4, 5, 6, 7}))]


def bucket_subject(info: BucketInfo | None, bucket: str) -> str:
    """``Filters on label keeping 0.1-1% of the rows (12 labels)``."""
    if info is None:
        return f"Filters {bucket}"
    span = bucket.removeprefix(f"{info.predicate} ")
    noun = "labels" if info.predicate == "label" else "tags" if info.predicate == "overlap" else ""
    count = f" ({_count(info.agents)} {noun or 'filters'})"
    return f"Filters on {info.attribute or info.predicate} keeping {span} of the rows{count}"


def sweep_blocks(c: FilteredComparison) -> list[Block]:
    """Recall and p99 of every strategy at every ef_search, per bucket (sweeps only)."""
    if not c.swept:
        return []
    swept = [r for r in c.rows if r.ef_search is not None and r.n_queries]
    if not swept:
        return []
    header = ["Bucket", "Strategy", *(f"ef_search {e}: recall / p99 ms" for e in c.ef_values)]
    keyed: dict[tuple[str, str], dict[int, FilteredRow]] = {}
    for r in swept:
        keyed.setdefault((r.bucket, r.strategy), {})[r.ef_search or 0] = r
    rows = [
        [bucket, strategy, *(_cell(by_ef.get(e)) for e in c.ef_values)]
        for (bucket, strategy), by_ef in keyed.items()
    ]
    return [
        Heading(3, "ef_search sweep"),
        Paragraph(
            "The strategies that set hnsw.ef_search, measured at each value in the same "
            "interleaved rounds; a winner above names the value it won at."
        ),
        Table(header, rows),
    ]


def _cell(row: FilteredRow | None) -> str:
    if row is None:
        return DASH
    flag = "" if row.valid else " ⚠"
    return f"{_fixed(row.recall_mean)} / {_sig(row.latency_p99_ms)}{flag}"
