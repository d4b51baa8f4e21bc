"""The agent-workload part of the report: platform, operations, filtered search, churn.

Built on :mod:`.render`'s document model, so it comes out the same in Markdown and
HTML. ``Results.agent.filtered`` / ``drift`` / ``update_cost`` are the JSON form of the
records of ``workloads.filtered`` / ``workloads.drift``; they are read with ``.get``
because a results file written by an older pgvbench may lack fields (or whole parts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..analysis.scalability import load_series
from ..results import AgentSection, Latency, LoadPoint, OperationStats, Results
from ..results import _build as build_record  # the results file's own JSON -> dataclass
from ..workloads.drift import DriftResult
from .agent_plots import (
    bucket_order,
    filtered_rows,
    number,
    plot_filtered_p99,
    strategy_order,
)
from .document import Block, Bullets, Heading, Image, Paragraph, Table
from .drift_plots import plot_recall_over_time
from .fmt import format_qps, format_sig

_DASH = "—"  # a value that was not measured (as in render.py)
FILTERED_FIGURE = "filtered_p99.png"
FILTERED_ALT = "Filtered top-k: p99 per selectivity bucket and strategy"
DRIFT_FIGURE = "recall_over_time.png"
DRIFT_ALT = "Recall while memories are inserted and expired"


# --- entry points ------------------------------------------------------------------------


def render_agent_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the agent figures that have data; the Images name them relative to out_dir."""
    agent = results.agent
    if agent is None:  # both figures draw agent records only
        return []
    drawn = [
        (plot_filtered_p99(results, out_dir / FILTERED_FIGURE), FILTERED_ALT),
        (_plot_drift(agent, out_dir / DRIFT_FIGURE), DRIFT_ALT),
    ]
    return [Image(path.name, alt) for path, alt in drawn if path is not None]


def _plot_drift(agent: AgentSection, path: Path) -> Path | None:
    record = drift_record(agent)
    return plot_recall_over_time(record, path) if isinstance(record, DriftResult) else None


def drift_record(agent: AgentSection) -> DriftResult | str | None:
    """The drift record rebuilt from its JSON form (the plot takes the dataclass), or why
    not: a record missing fields (an older writer) is still tabled, but not drawn."""
    if agent.drift is None:
        return None
    try:
        return build_record(DriftResult, agent.drift)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return f"the drift record cannot be read back ({exc})"


def agent_blocks(results: Results, images: Sequence[Image]) -> list[Block]:
    """The agent sections, or [] for a run without agent experiments."""
    points = _workload_points(results)
    agent = results.agent
    if agent is None and not points:
        return []
    by_name = {image.src: image for image in images}
    blocks: list[Block] = []
    if agent is not None:
        blocks += _platform_section(agent)
    blocks += _operations_section(points)
    if agent is not None:
        blocks += _filtered_section(agent, by_name.get(FILTERED_FIGURE))
        blocks += _churn_section(agent, by_name.get(DRIFT_FIGURE))
        blocks += _recommendations_section(agent)
    return blocks


# --- small formatting helpers ------------------------------------------------------------


def _count(value: Any) -> str:
    """A row count: 12,345 (non-integers keep 3 significant digits)."""
    x = number(value)
    if x is None:
        return _DASH
    return f"{x:,.0f}" if x.is_integer() else format_sig(x)


def _sig(value: Any, digits: int = 3) -> str:
    x = number(value)
    return _DASH if x is None else format_sig(x, digits)


def _fixed(value: Any, decimals: int = 3) -> str:
    x = number(value)
    return _DASH if x is None else f"{x:.{decimals}f}"


def _pct(value: Any) -> str:
    """A ratio as a percentage, 2 significant digits so tiny shares do not print as 0%."""
    x = number(value)
    return _DASH if x is None else format_sig(100 * x, 2) + "%"


def _share(part: Any, total: Any) -> str:
    """``part`` as a percentage of ``total``."""
    p, t = number(part), number(total)
    return _DASH if p is None or t is None or t <= 0 else _pct(p / t)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a JSON list (anything else: none)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _latency_cells(latency: Latency | None, fields: Sequence[str]) -> list[str]:
    if latency is None:
        return [_DASH] * len(fields)
    return [format_sig(float(getattr(latency, f))) for f in fields]


def _json_latency(value: Any, fields: Sequence[str]) -> list[str]:
    """Latency cells from a JSON Latency dict (or None)."""
    data = value if isinstance(value, dict) else {}
    return [_sig(data.get(f)) for f in fields]


# --- agent platform ----------------------------------------------------------------------


def _platform_section(agent: AgentSection) -> list[Block]:
    return [Heading(2, "Agent platform"), *_tables_table(agent), *_selectivity_table(agent)]


def _tables_table(agent: AgentSection) -> list[Block]:
    heading = Heading(3, "Tables")
    if not agent.tables:
        return [heading, Paragraph("No table was loaded.")]
    rows: list[list[str]] = []
    for kind, info in agent.tables.items():
        seconds = number(info.get("seconds"))
        n = number(info.get("rows"))
        rate = format_qps(n / seconds) if n is not None and seconds else _DASH
        rows.append([kind, _count(n), _sig(seconds), rate])
    total_rows = sum(number(i.get("rows")) or 0.0 for i in agent.tables.values())
    total_s = sum(number(i.get("seconds")) or 0.0 for i in agent.tables.values())
    rows.append(["total", _count(total_rows), format_sig(total_s), _DASH])
    return [
        heading,
        Paragraph("Rows loaded with COPY per table, before the secondary and vector indexes."),
        Table(["Table", "Rows", "Load s", "Rows/s"], rows, numeric=frozenset({1, 2, 3})),
    ]


_SELECTIVITY_HEADER = [
    "Rows", "Values", "Total rows", "Min", "Median", "p99", "Max", "Mean", "Median share",
    "Max share",
]  # fmt: skip


def _selectivity_table(agent: AgentSection) -> list[Block]:
    heading = Heading(3, "Selectivity")
    if not agent.selectivity:
        return [heading, Paragraph("No selectivity statistics were recorded.")]
    rows = [_selectivity_row(name, stats) for name, stats in agent.selectivity.items()]
    return [
        heading,
        Paragraph(
            "Rows per filter value (e.g. memories per agent): how much of a table a filter "
            "on one agent or tenant keeps. Values is the number of agents or tenants; the "
            "shares are of the table's total rows."
        ),
        Table(_SELECTIVITY_HEADER, rows, numeric=frozenset(range(1, 10))),
    ]


def _selectivity_row(name: str, stats: Mapping[str, Any]) -> list[str]:
    total = stats.get("total")
    return [
        name.replace("_", " "),
        _count(stats.get("buckets")),
        _count(total),
        *[_count(stats.get(key)) for key in ("min", "median", "p99", "max")],
        _sig(stats.get("mean")),
        _share(stats.get("median"), total),
        _share(stats.get("max"), total),
    ]


# --- operations --------------------------------------------------------------------------


def _workload_points(results: Results) -> list[LoadPoint]:
    """Agent-mix load points, in the concurrency tables' order (series, then clients)."""
    points = [p for p in results.load_points if p.workload]
    if not points:
        return []
    return [p for s in load_series(points) for p in s.points]


_OPS_HEADER = [
    "Series", "Clients", "Operation", "Share", "QPS", "p50 ms", "p95 ms", "p99 ms", "Errors",
    "Tail",
]  # fmt: skip
_TAIL_MARK = "▲ slowest p99"


def _operations_section(points: Sequence[LoadPoint]) -> list[Block]:
    if not points:
        return []
    workloads = ", ".join(sorted({p.workload for p in points if p.workload}))
    intro = Paragraph(
        f"Each load point ran the operation mix {workloads}; the rows split it by operation "
        "(latency measured by the client, per operation). Share is the operation's part "
        f"of the point's operations; {_TAIL_MARK} marks the operation with the highest p99 "
        "at each point: the one that sets the tail. Rows of ⚠ INVALID points must not be used."
    )
    detailed = [p for p in points if p.operations_detail]
    if not detailed:
        return [
            Heading(2, "Operations"),
            intro,
            Paragraph("No per-operation breakdown was recorded."),
        ]
    labels = _series_labels(detailed)
    rows: list[list[str]] = []
    flagged: list[bool] = []
    for point in detailed:
        for row in _operation_rows(point, labels[id(point)]):
            rows.append(row)
            flagged.append(not point.valid)
    return [
        Heading(2, "Operations"),
        intro,
        *_tail_summary(detailed),
        Table(_OPS_HEADER, rows, flagged=flagged, numeric=frozenset(range(1, 9)) - {2}),
    ]


def _series_labels(points: Sequence[LoadPoint]) -> dict[int, str]:
    return {id(p): s.label for s in load_series(points) for p in s.points}


def _slowest(point: LoadPoint) -> str | None:
    """The operation with the highest p99 at ``point`` (None if none has a latency)."""
    timed = _p99s(point.operations_detail)
    return max(timed)[1] if timed else None


def _p99s(operations: Mapping[str, OperationStats]) -> list[tuple[float, str]]:
    return [(op.latency_ms.p99, name) for name, op in operations.items() if op.latency_ms]


def _operation_rows(point: LoadPoint, label: str) -> list[list[str]]:
    total = sum(op.operations for op in point.operations_detail.values())
    slowest = _slowest(point)
    return [
        [
            label,
            str(point.clients),
            name,
            _share(op.operations, total),
            format_qps(op.qps),
            *_latency_cells(op.latency_ms, ("p50", "p95", "p99")),
            f"{op.errors:,}",
            _TAIL_MARK if name == slowest else "",
        ]
        for name, op in point.operations_detail.items()
    ]


def _tail_summary(points: Sequence[LoadPoint]) -> list[Block]:
    """Which operation is slowest at p99 most often, with its numbers at the most clients."""
    counts = Counter(name for p in points if (name := _slowest(p)) is not None)
    if not counts:
        return []
    name, times = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    valid = [p for p in points if p.valid and name in p.operations_detail] or list(points)
    busiest = max(valid, key=lambda p: p.clients)
    text = f"{name} has the highest p99 at {times} of {len(points)} load points"
    op = busiest.operations_detail.get(name)
    if op is not None and op.latency_ms is not None:
        text += (
            f"; at {busiest.clients} clients its p99 is {format_sig(op.latency_ms.p99)} ms"
            f"{_next_slowest(busiest, name)}"
        )
    return [Paragraph(text + ".", lead="Tail.")]


def _next_slowest(point: LoadPoint, name: str) -> str:
    others = [(p99, n) for p99, n in _p99s(point.operations_detail) if n != name]
    if not others:
        return ""
    p99, other = max(others)
    return f" (next: {other} at {format_sig(p99)} ms)"


# --- filtered vector search --------------------------------------------------------------


def _filtered_section(agent: AgentSection, image: Image | None) -> list[Block]:
    filtered = agent.filtered
    if filtered is None:
        return []
    rows = filtered_rows(filtered)
    blocks: list[Block] = [
        Heading(2, "Filtered vector search"),
        Paragraph(_filtered_setup(filtered)),
    ]
    blocks += _buckets_table(filtered)
    if image is not None:
        blocks.append(image)
    blocks += _winner_blocks(agent, filtered, rows)
    if rows:
        blocks.append(_filtered_table(agent, filtered, rows))
    else:
        blocks.append(Paragraph("No strategy x bucket row was measured."))
    blocks += _setups_table(filtered)
    notes = [str(n) for n in filtered.get("notes") or []]
    if notes:
        blocks += [Heading(3, "Notes"), Bullets(notes)]
    return blocks


def _filtered_setup(filtered: Mapping[str, Any]) -> str:
    """What was measured, in one paragraph."""
    g = filtered.get
    table = f" on {g('table')}" if g("table") else ""
    size = (
        f" ({_count(g('memories'))} memories, {_count(g('agents'))} agents, "
        f"{g('dim', '?')} dimensions, {g('metric', '?')})"
        if g("memories") is not None
        else ""
    )
    scope = "one agent within its tenant" if g("tenant_filter") else "one agent"
    text = (
        f"Top-{g('k', 'k')} nearest memories of {scope}{table}{size}, run by each strategy "
        f"on the same rows; agents are grouped by their share of all memories. "
        f"hnsw.ef_search={g('ef_search', '?')}, hnsw.max_scan_tuples="
        f"{g('max_scan_tuples', '?')}; one client, {_sig(g('measure_seconds'))} s per row, "
        f"up to {g('queries_per_bucket', '?')} query vectors per bucket. "
    )
    return text + (
        "Recall is tie-aware against the exact top-k over only the rows the filter keeps; "
        "fill is rows returned / min(k, rows matching), below 1 when the index ran out of "
        "candidates. Buffers are shared hit + read per query (EXPLAIN ANALYZE)."
    )


def _buckets_table(filtered: Mapping[str, Any]) -> list[Block]:
    buckets = _dicts(filtered.get("buckets"))
    if not buckets:
        return []
    rows = [
        [
            str(b.get("label", "?")),
            _count(b.get("agents")),
            _count(b.get("memories")),
            _count(b.get("queries")),
            _count(b.get("hot_queries")),
        ]
        for b in buckets
    ]
    header = ["Bucket (share of memories)", "Agents", "Memories", "Queries", "Hot-agent queries"]
    return [Table(header, rows, numeric=frozenset({1, 2, 3, 4}))]


_FILTERED_HEADER = [
    "Bucket", "Strategy", "Scope", "Queries", "Rows matching", "Recall mean", "Recall p5",
    "Fill mean", "Fill min", "p50 ms", "p95 ms", "p99 ms", "QPS", "Buffers/query", "Winner",
    "Valid", "Notes",
]  # fmt: skip
_FILTERED_NUMERIC = frozenset(range(3, 14))


def _filtered_table(
    agent: AgentSection, filtered: Mapping[str, Any], rows: Sequence[dict[str, Any]]
) -> Table:
    """Rows grouped by bucket (smallest share first), strategies in run order."""
    buckets = bucket_order(filtered, rows)
    strategies = strategy_order(rows)
    ordered = sorted(
        rows,
        key=lambda r: (
            buckets.index(str(r.get("bucket"))),
            strategies.index(str(r.get("strategy"))),
        ),
    )
    return Table(
        _FILTERED_HEADER,
        [_filtered_row(r, agent.filtered_winners) for r in ordered],
        flagged=[not r.get("valid", True) for r in ordered],
        numeric=_FILTERED_NUMERIC,
    )


def _filtered_row(row: Mapping[str, Any], winners: Mapping[str, str]) -> list[str]:
    g = row.get
    won = winners.get(str(g("bucket"))) == g("strategy")
    valid = bool(g("valid", True))
    notes = "; ".join(str(n) for n in g("notes") or [])
    return [
        str(g("bucket", "?")),
        str(g("strategy", "?")),
        str(g("scope") or _DASH),
        _count(g("n_queries")),
        _sig(g("rows_matching_mean")),
        _fixed(g("recall_mean")),
        _fixed(g("recall_p5")),
        _fixed(g("fill_mean")),
        _fixed(g("fill_min")),
        _sig(g("latency_p50_ms")),
        _sig(g("latency_p95_ms")),
        _sig(g("latency_p99_ms")),
        _qps(g("qps")),
        _sig(g("buffers_per_query")),
        "★" if won else "",
        "yes" if valid else "⚠ INVALID",
        notes or ("" if valid else "no reason recorded"),
    ]


def _ms(value: Any) -> str:
    x = number(value)
    return _DASH if x is None else f"{format_sig(x)} ms"


def _qps(value: Any) -> str:
    x = number(value)
    return _DASH if x is None else format_qps(x)


def _winner_blocks(
    agent: AgentSection, filtered: Mapping[str, Any], rows: Sequence[dict[str, Any]]
) -> list[Block]:
    """One sentence per bucket that was measured: who wins, with the numbers."""
    measured = [b for b in bucket_order(filtered, rows) if _bucket_measured(filtered, rows, b)]
    if not measured:
        return []
    sentences = [_winner_sentence(b, agent.filtered_winners, filtered, rows) for b in measured]
    intro = (
        "per bucket, the strategy with the lowest p99 among valid rows that reach the run's "
        "recall and fill targets (★ in the table and the figure)."
    )
    return [Paragraph(intro, lead="Winners:"), Bullets(sentences)]


def _bucket_measured(
    filtered: Mapping[str, Any], rows: Sequence[dict[str, Any]], bucket: str
) -> bool:
    info = _bucket_info(filtered, bucket)
    if info is not None and number(info.get("queries")) == 0:
        return False
    return any(str(r.get("bucket")) == bucket and number(r.get("n_queries")) for r in rows)


def _bucket_info(filtered: Mapping[str, Any], bucket: str) -> dict[str, Any] | None:
    return next((b for b in _dicts(filtered.get("buckets")) if str(b.get("label")) == bucket), None)


def _winner_sentence(
    bucket: str,
    winners: Mapping[str, str],
    filtered: Mapping[str, Any],
    rows: Sequence[dict[str, Any]],
) -> str:
    info = _bucket_info(filtered, bucket)
    agents = f" ({_count(info.get('agents'))} agents)" if info is not None else ""
    subject = f"Agents with {bucket} of the memories{agents}"
    strategy = winners.get(bucket)
    if strategy is None:
        return f"{subject}: no strategy reached the recall and fill targets."
    row = next(
        (r for r in rows if str(r.get("bucket")) == bucket and r.get("strategy") == strategy),
        None,
    )
    if row is None:
        return f"{subject}: {strategy}."
    scope = " (hot agents only)" if strategy == "partial_hot" else ""
    return (
        f"{subject}: {strategy}{scope}, p99 {_ms(row.get('latency_p99_ms'))} at recall "
        f"{_fixed(row.get('recall_mean'), 2)} (p5 {_fixed(row.get('recall_p5'), 2)}), "
        f"fill {_fixed(row.get('fill_mean'), 2)}."
    )


def _setups_table(filtered: Mapping[str, Any]) -> list[Block]:
    setups = _dicts(filtered.get("setups"))
    if not setups:
        return []
    rows = [
        [
            str(s.get("strategy", "?")),
            _sig(s.get("setup_seconds")),
            _sig((number(s.get("index_bytes")) or 0.0) / 1e6) if s.get("index_bytes") else _DASH,
            ", ".join(f"{k}={v}" for k, v in sorted((s.get("settings") or {}).items())) or _DASH,
            "; ".join(str(n) for n in s.get("notes") or []),
        ]
        for s in setups
    ]
    header = ["Strategy", "Setup s", "Index MB", "Session settings", "Notes"]
    return [Heading(3, "Strategy setup"), Table(header, rows, numeric=frozenset({1, 2}))]


def filtered_validity(results: Results) -> tuple[list[str], str]:
    """For the Validity section: a line per invalid filtered row, and a summary sentence
    (with a leading space; "" when the run compared no filtered strategies)."""
    rows = filtered_rows(results.agent.filtered if results.agent is not None else None)
    measured = [r for r in rows if number(r.get("n_queries"))]
    if not measured:
        return [], ""
    invalid = [r for r in measured if not r.get("valid", True)]
    lines = [
        f"Filtered {r.get('strategy', '?')} at {r.get('bucket', '?')}: INVALID — "
        + ("; ".join(str(n) for n in r.get("notes") or []) or "no reason recorded")
        for r in invalid
    ]
    if not invalid:
        return [], f" All {len(measured)} filtered-search rows are valid."
    return lines, f" Invalid filtered-search rows: {len(invalid)} of {len(measured)}."


# --- churn -------------------------------------------------------------------------------


def _churn_section(agent: AgentSection, image: Image | None) -> list[Block]:
    drift, cost = agent.drift, agent.update_cost
    if drift is None and cost is None:
        return []
    blocks: list[Block] = [Heading(2, "Churn")]
    if drift is not None:
        blocks += _drift_blocks(agent, drift, image)
    if cost is not None:
        blocks += _update_cost_blocks(cost)
    return blocks


def _drift_blocks(
    agent: AgentSection, drift: Mapping[str, Any], image: Image | None
) -> list[Block]:
    blocks: list[Block] = [Heading(3, "Recall over time"), Paragraph(_drift_setup(drift))]
    if image is not None:
        blocks.append(image)
    elif isinstance(reason := drift_record(agent), str):
        blocks.append(Paragraph(f"No recall-over-time figure: {reason}."))
    blocks += _checkpoints_table(drift)
    blocks += _hot_table(drift)
    notes = [str(n) for n in drift.get("notes") or []]
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _drift_setup(drift: Mapping[str, Any]) -> str:
    g = drift.get
    text = (
        f"A writer inserted memories at {_sig(g('insert_rate'))} rows/s and expired them at "
        f"{_sig(g('expire_rate'))} rows/s (achieved {_sig(g('achieved_insert_rate'))} and "
        f"{_sig(g('achieved_expire_rate'))}) for {_sig(g('duration_s'))} s on "
        f"{g('table', 'the memories table')} ({_count(g('initial_rows'))} rows at the start), "
        f"while {_count(g('queries'))} queries measured recall@{g('k', 'k')} "
        f"(ef_search {g('ef_search', '?')}) every {_sig(g('interval_s'))} s against exact "
        "ground truth over the rows live at that moment."
    )
    if g("autovacuum") is False:
        text += " Autovacuum was off on the table during the run."
    vacuum_at, vacuum_s = number(g("vacuum_at_s")), number(g("vacuum_seconds"))
    if vacuum_at is not None:
        took = f", taking {format_sig(vacuum_s)} s" if vacuum_s is not None else ""
        text += f" A manual VACUUM ran at {format_sig(vacuum_at)} s{took}."
    batch = g("write_batch_ms")
    if isinstance(batch, dict):
        p50, p99 = _json_latency(batch, ("p50", "p99"))
        text += f" One writer transaction took p50 {p50} ms, p99 {p99} ms."
    return text


_CHECKPOINT_HEADER = [
    "t s", "Checkpoint", "Live rows", "Inserted", "Deleted", "Churn", "Dead tuples",
    "Recall mean", "Recall p5", "Recall (start GT)", "Rows returned", "Query p99 ms",
]  # fmt: skip


def _checkpoints_table(drift: Mapping[str, Any]) -> list[Block]:
    checkpoints = _dicts(drift.get("checkpoints"))
    if not checkpoints:
        return [Paragraph("No checkpoint was recorded.")]
    rows = [
        [
            _sig(c.get("t")),
            str(c.get("label") or _DASH).replace("_", " "),
            _count(c.get("live_rows")),
            _count(c.get("inserted")),
            _count(c.get("deleted")),
            _pct(c.get("churn")),
            _count(c.get("dead_tuples")),
            _fixed(c.get("recall_mean")),
            _fixed(c.get("recall_p5")),
            _fixed(c.get("recall_frozen_gt")),
            _sig(c.get("returned_mean")),
            _sig(c.get("query_p99_ms")),
        ]
        for c in checkpoints
    ]
    note = Paragraph(
        "Recall (start GT) scores the same results against the ground truth of the start: "
        "what a benchmark that ignores the writes would report. Rows returned below k means "
        "dead tuples used up the ef_search candidates (pgvector #244)."
    )
    numeric = frozenset(range(len(_CHECKPOINT_HEADER))) - {1}
    return [note, Table(_CHECKPOINT_HEADER, rows, numeric=numeric)]


def _hot_table(drift: Mapping[str, Any]) -> list[Block]:
    hot = drift.get("hot")
    if not isinstance(hot, dict) or not hot:
        return []
    rows = [
        [
            str(table),
            _count(s.get("updates")),
            _count(s.get("hot_updates")),
            _pct(s.get("hot_ratio")),
        ]
        for table, s in sorted(hot.items())
        if isinstance(s, dict)
    ]
    return [
        Heading(3, "HOT updates during the churn"),
        Table(["Table", "Updates", "HOT updates", "HOT ratio"], rows, numeric=frozenset({1, 2, 3})),
    ]


_PHASE_HEADER = [
    "Phase", "Table", "Column", "HNSW index", "Fillfactor", "Updates", "p50 ms", "p95 ms",
    "p99 ms", "HOT ratio", "Same page", "Same-page p50 ms", "Moved p50 ms",
    "Indexes on the column",
]  # fmt: skip
_PHASE_NUMERIC = frozenset(range(4, 13))


def _update_cost_blocks(cost: Mapping[str, Any]) -> list[Block]:
    phases = _dicts(cost.get("phases"))
    blocks: list[Block] = [
        Heading(3, "Update cost with and without the HNSW index"),
        Paragraph(_update_setup(cost)),
    ]
    if phases:
        rows = [_phase_row(p) for p in phases]
        blocks.append(Table(_PHASE_HEADER, rows, numeric=_PHASE_NUMERIC))
    else:
        blocks.append(Paragraph("No update phase was measured."))
    notes = [str(n) for n in cost.get("notes") or []]
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _update_setup(cost: Mapping[str, Any]) -> str:
    g = cost.get
    text = (
        f"Single-row updates of {g('column', 'a non-vector column')} by primary key on "
        f"{g('table', 'the memories table')} ({_count(g('rows'))} rows, "
        f"{_sig(g('avg_row_bytes'))} bytes per row on average), with the HNSW index "
        f"{g('index', '')} present, then dropped; a non-HOT update re-inserts the row into "
        "every index, HNSW included (pgvector #875)."
    )
    p50, p99 = number(g("p50_ratio")), number(g("p99_ratio"))
    if p50 is not None or p99 is not None:
        text += f" With / without the index: p50 {_ratio(p50)}, p99 {_ratio(p99)}"
        moved = number(g("moved_p50_ratio"))
        text += "." if moved is None else f"; p50 of the non-HOT (moved) updates {_ratio(moved)}."
    text += (
        " Same page: updates whose new row version stayed on its page (HOT unless an index "
        "covers the column); moved: the new version went to another page, so every index "
        "was written."
    )
    rebuild = number(g("index_rebuild_seconds"))
    if rebuild is not None:
        text += f" Rebuilding the index afterwards took {format_sig(rebuild)} s."
    if g("index_restored") is False:
        text += " ⚠ The HNSW index was NOT restored: later measurements ran without it."
    return text


def _ratio(value: float | None) -> str:
    return _DASH if value is None else f"{format_sig(value, 2)}×"


_PHASE_NAMES = {
    "hnsw": "with HNSW index",
    "no_hnsw": "without HNSW index",
    "tasks_status": "task status",
}


def _phase_name(name: str) -> str:
    if name.startswith("hnsw_fillfactor"):
        return f"with HNSW index, fillfactor {name.removeprefix('hnsw_fillfactor')}"
    return _PHASE_NAMES.get(name, name)


def _phase_row(phase: Mapping[str, Any]) -> list[str]:
    g = phase.get
    hnsw = g("hnsw_index")
    return [
        _phase_name(str(g("name", "?"))),
        str(g("table") or _DASH),
        str(g("column") or _DASH),
        _DASH if hnsw is None else ("yes" if hnsw else "no"),
        _count(g("fillfactor")),
        _count(g("updates")),
        *_json_latency(g("latency_ms"), ("p50", "p95", "p99")),
        _pct(g("hot_ratio")),
        _share(g("same_page"), g("updates")),
        *_json_latency(g("same_page_latency_ms"), ("p50",)),
        *_json_latency(g("moved_latency_ms"), ("p50",)),
        ", ".join(str(i) for i in g("blocking_indexes") or []) or _DASH,
    ]


# --- recommendations ---------------------------------------------------------------------


def _recommendations_section(agent: AgentSection) -> list[Block]:
    heading = Heading(2, "Agent recommendations")
    if not agent.recommendations:
        return [heading, Paragraph("Nothing was measured that supports a recommendation.")]
    return [heading, Bullets(list(agent.recommendations))]
