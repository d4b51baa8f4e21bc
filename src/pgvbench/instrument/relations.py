"""Relations a collector watches, and the two steps every counter read shares.

Counters are never reset: deltas are taken between two readings, so pgvbench does not
disturb anyone else's statistics on a shared server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg


@dataclasses.dataclass(frozen=True)
class Relation:
    oid: int
    name: str
    kind: str  # "table" | "index"
    table: str  # the table an index belongs to (its own name for a table)


def resolve(conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]) -> list[Relation]:
    """The named tables (with all their indexes) and indexes of ``schema``.

    Raises LookupError naming any relation that does not exist.
    """
    rows = conn.execute(
        "SELECT c.oid::int8, c.relname, c.relkind::text, coalesce(t.relname, c.relname) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "LEFT JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, list(relations)),
    ).fetchall()
    found = {str(r[1]) for r in rows}
    missing = [r for r in relations if r not in found]
    if missing:
        names = ", ".join(f"{schema}.{m}" for m in missing)
        raise LookupError(f"relation(s) not found: {names}")
    out: dict[int, Relation] = {}
    tables: list[int] = []
    for oid, name, kind, table in rows:
        if kind in ("i", "I"):
            out[int(oid)] = Relation(int(oid), str(name), "index", str(table))
        else:
            out[int(oid)] = Relation(int(oid), str(name), "table", str(name))
            tables.append(int(oid))
    if tables:
        for oid, name, table in conn.execute(
            "SELECT i.indexrelid::int8, c.relname, t.relname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE i.indrelid = ANY(%s::oid[]) ORDER BY c.relname",
            (tables,),
        ):
            out.setdefault(int(oid), Relation(int(oid), str(name), "index", str(table)))
    return list(out.values())


def fresh(conn: psycopg.Connection[Any]) -> None:
    """Flush this session's pending statistics and drop any cached stats snapshot."""
    conn.execute("SELECT pg_stat_force_next_flush(), pg_stat_clear_snapshot()")


def counter_delta(after: dict[str, float], before: dict[str, float] | None) -> dict[str, float]:
    before = before or {}
    return {k: v - before.get(k, 0) for k, v in after.items()}


class RelationCollector:
    """Base of the collectors that watch named relations of one schema (and, for a table,
    its indexes); the names are resolved to oids at ``start()``."""

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, relations: Sequence[str]
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.relations = list(relations)
        self._rels: list[Relation] = []

    def _resolve(self) -> list[Relation]:
        return resolve(self.conn, self.schema, self.relations)

    def sample(self) -> None:
        return None
