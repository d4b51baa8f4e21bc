"""What the drift study reads from the catalog and the statistics views: the table's
counters, its HNSW indexes, which indexes cover a column, its fillfactor."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...db.schema import relation_marks
from ...errors import RunFailed, SafetyError
from ...metrics import Metric
from .records import HotStats


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableStats:
    n_live_tup: int
    n_dead_tup: int
    n_tup_upd: int
    n_tup_hot_upd: int
    vacuum_count: int
    autovacuum_count: int


def table_stats(conn: psycopg.Connection[Any], schema: str, table: str) -> TableStats:
    """Current counters: flush this backend's pending stats first (they lag up to 1 s)."""
    conn.execute("SELECT pg_stat_force_next_flush()")  # takes effect when the backend idles
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, vacuum_count, "
        "autovacuum_count FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (schema, table),
    ).fetchone()
    values = [0] * 6 if row is None else [int(v or 0) for v in row]
    names = [f.name for f in dataclasses.fields(TableStats)]
    return TableStats(**dict(zip(names, values, strict=True)))


def hot_delta(before: TableStats, after: TableStats) -> HotStats:
    updates = after.n_tup_upd - before.n_tup_upd
    hot = after.n_tup_hot_upd - before.n_tup_hot_upd
    return HotStats(updates, hot, round(hot / updates, 4) if updates > 0 else None)


def regclass(schema: str, table: str) -> str:
    return sql.Identifier(schema, table).as_string(None)


def require_owned_table(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    """The schema and table must carry pgvbench's mark before we change either."""
    marks = relation_marks(conn, schema, table)
    if marks is None:
        raise RunFailed(
            f"table {schema}.{table} does not exist; create and load the agent schema first"
        )
    if not (marks.owned and marks.schema_owned):
        raise SafetyError(
            f"{schema}.{table} was not created by pgvbench (no ownership mark); pgvbench will "
            "not drop its indexes or change its settings"
        )


def relation_exists(conn: psycopg.Connection[Any], schema: str, name: str) -> bool:
    return relation_marks(conn, schema, name) is not None


@dataclasses.dataclass(frozen=True)
class HnswIndex:
    name: str
    definition: str
    opclass: str


def hnsw_indexes(conn: psycopg.Connection[Any], schema: str, table: str) -> list[HnswIndex]:
    """Full (non-partial) HNSW indexes on the plain ``embedding`` column."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), opc.opcname "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am am ON am.oid = i.relam "
        "JOIN pg_opclass opc ON opc.oid = x.indclass[0] "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
        "WHERE x.indrelid = %s::regclass AND am.amname = 'hnsw' AND x.indpred IS NULL "
        "AND a.attname = 'embedding' ORDER BY i.relname",
        (regclass(schema, table),),
    ).fetchall()
    return [HnswIndex(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def pick_hnsw(indexes: Sequence[HnswIndex], metric: Metric) -> HnswIndex | None:
    """The index whose operator class serves ``metric``, else the first one."""
    for index in indexes:
        if index.opclass == metric.opclass():
            return index
    return indexes[0] if indexes else None


def indexes_on_columns(
    conn: psycopg.Connection[Any], schema: str, table: str, columns: Sequence[str]
) -> list[str]:
    """Indexes whose key, expression or predicate uses one of ``columns``: no HOT then.

    pg_depend records an index's dependency on every column it reads, expressions and
    WHERE clauses included.
    """
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_depend d "
        "JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'i' "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s::regclass AND a.attname = ANY(%s) ORDER BY 1",
        (regclass(schema, table), list(columns)),
    ).fetchall()
    return [str(r[0]) for r in rows]


def fillfactor(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        "SELECT coalesce((SELECT split_part(o, '=', 2) FROM unnest(c.reloptions) o "
        "WHERE o LIKE 'fillfactor=%%'), '100') FROM pg_class c WHERE c.oid = %s::regclass",
        (regclass(schema, table),),
    ).fetchone()
    return int(row[0]) if row else 100


def index_defs(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass "
        "ORDER BY indexrelid",
        (regclass(schema, table),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def heap_bytes(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        "SELECT pg_relation_size(%s::regclass)", (regclass(schema, table),)
    ).fetchone()
    return int(row[0]) if row else 0


def count_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    ).fetchone()
    return int(row[0]) if row else 0


def ids(conn: psycopg.Connection[Any], schema: str, table: str, *, ordered: bool) -> list[Any]:
    """Every row's primary key (ordered by it when the caller needs a stable order)."""
    order = sql.SQL(" ORDER BY id") if ordered else sql.SQL("")
    rows = conn.execute(
        sql.SQL("SELECT id FROM {}{}").format(sql.Identifier(schema, table), order)
    ).fetchall()
    return [r[0] for r in rows]
