"""EXPLAIN (ANALYZE, BUFFERS) of one sample query, summarised."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg


def walk_plan(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    yield node
    for child in node.get("Plans", []):
        yield from walk_plan(child)


def explain_analyze(
    conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None = None
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one query, summarised.

    ``sql`` uses psycopg placeholders (``%s``). Returns planning/execution ms, shared
    blocks hit/read (execution, and planning), the indexes scanned, whether any node is
    a sequential scan, the node types and the rows the top node returned. The query is
    really executed: do not pass statements with side effects you do not want.
    """
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
        params,
    ).fetchone()
    if row is None:
        raise RuntimeError("EXPLAIN returned no plan")
    doc = row[0]
    if isinstance(doc, str):
        doc = json.loads(doc)
    top = doc[0]
    plan: dict[str, Any] = top["Plan"]
    nodes = list(walk_plan(plan))
    planning = top.get("Planning", {})
    indexes = [str(n["Index Name"]) for n in nodes if "Index Name" in n]
    return {
        "planning_ms": round(float(top.get("Planning Time", 0.0)), 4),
        "execution_ms": round(float(top.get("Execution Time", 0.0)), 4),
        "shared_hit": int(plan.get("Shared Hit Blocks", 0)),
        "shared_read": int(plan.get("Shared Read Blocks", 0)),
        "planning_shared_hit": int(planning.get("Shared Hit Blocks", 0)),
        "planning_shared_read": int(planning.get("Shared Read Blocks", 0)),
        "index_used": indexes[0] if indexes else None,
        "indexes": indexes,
        "seq_scan": any(n.get("Node Type") == "Seq Scan" for n in nodes),
        "node_types": [str(n.get("Node Type")) for n in nodes],
        "rows": float(plan.get("Actual Rows", 0)),
        "loops": int(plan.get("Actual Loops", 1)),
    }
