"""The agent platform's core sections: the tables loaded, filter selectivity, and the
operation mix split by operation (with the one that sets the tail latency).

``Results.agent`` tables and selectivity are JSON dicts, read with ``.get`` because a
results file written by an older pgvbench may lack fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...analysis.scalability import load_series
from ...results import AgentSection, LoadPoint, OperationStats, Results
from .. import fmt
from ..document import Block, Heading, Paragraph, Table
from ..fmt import (
    DASH,
    format_qps,
    format_sig,
    latency_cells,
    number,
)

# the shared formatters under the short names this module's tables use
_count = fmt.format_count
_sig = fmt.format_number
_share = fmt.format_share


def agent_platform_section(results: Results) -> list[Block]:
    """Agent platform and Operations, or [] for a run without agent experiments."""
    points = _workload_points(results)
    agent = results.agent
    if agent is None and not points:
        return []
    blocks: list[Block] = []
    if agent is not None:
        blocks += _platform_section(agent)
    blocks += _operations_section(points)
    return blocks


# --- small formatting helpers ------------------------------------------------------------


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
        rate = format_qps(n / seconds) if n is not None and seconds else DASH
        rows.append([kind, _count(n), _sig(seconds), rate])
    total_rows = sum(number(i.get("rows")) or 0.0 for i in agent.tables.values())
    total_s = sum(number(i.get("seconds")) or 0.0 for i in agent.tables.values())
    rows.append(["total", _count(total_rows), format_sig(total_s), DASH])
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
            *latency_cells(op.latency_ms, ("p50", "p95", "p99")),
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
