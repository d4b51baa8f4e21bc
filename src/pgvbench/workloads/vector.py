"""Plain top-k vector search: the kNN operation and its plan check."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ..instrument.explain import walk_plan
from ..metrics import Metric


class KnnQuery:
    """``SELECT id ... ORDER BY embedding <op> $1 LIMIT k`` on one connection.

    Prepared on first use and sent with binary parameters: the cheapest path the
    client has, so the measurement is of the server, not of query building.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, table: str, metric: Metric, k: int
    ) -> None:
        register_vector(conn)
        self.conn = conn
        self.k = k
        self.sql = (
            sql.SQL("SELECT id FROM {} ORDER BY embedding {} %b LIMIT {}")
            .format(sql.Identifier(schema, table), sql.SQL(metric.operator), sql.Literal(k))
            .as_string(conn)
        )
        self._cur = conn.cursor(binary=True)

    def ids(self, vector: np.ndarray) -> list[int]:
        self._cur.execute(self.sql, (vector,), prepare=True)
        return [row[0] for row in self._cur.fetchall()]

    def explain(self, vector: np.ndarray) -> tuple[dict[str, Any], str]:
        """The plan as JSON (for checks) and as text (for humans)."""
        with self.conn.cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + self.sql, (vector,))
            row = cur.fetchone()
            assert row is not None
            raw = row[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            cur.execute("EXPLAIN " + self.sql, (vector,))
            text = "\n".join(str(r[0]) for r in cur.fetchall())
        return plan, text

    def set_param(self, name: str, value: int) -> None:
        self.conn.execute(
            sql.SQL("SET {} = {}").format(sql.Identifier(*name.split(".")), sql.Literal(str(value)))
        )


def index_names_in_plan(plan: dict[str, Any]) -> list[str]:
    """Every index a plan scans, depth first."""
    return [str(node["Index Name"]) for node in walk_plan(plan) if "Index Name" in node]


def check_plan(plan: dict[str, Any], intended_index: str | None) -> str | None:
    """None when the plan matches the intent, else a sentence saying what went wrong."""
    used = index_names_in_plan(plan)
    if intended_index is None:
        if used:
            return f"an exact scan was intended but the plan uses index {', '.join(used)}"
        return None
    if intended_index not in used:
        found = f"index {', '.join(used)}" if used else "no index (sequential scan)"
        return f"the plan uses {found} instead of {intended_index}; timings are not of that index"
    return None
