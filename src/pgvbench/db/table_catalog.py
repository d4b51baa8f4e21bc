"""A user's table as the catalog describes it: the vector column's type and dimension,
the id column, the attribute columns and their kinds, the metric from an index's opclass,
and the privileges to read it. Read before anything is written; every problem is bad
input (exit 2) naming the table, column or grant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..datasets.attributes import SQL_TYPES
from ..errors import DatasetError, PrivilegeError
from ..metrics import Metric
from .schema import sql_name

#: PostgreSQL base type (pg_type.typname) -> attribute kind
PG_KINDS: dict[str, str] = {
    **dict.fromkeys(("int2", "int4", "int8"), "int"),
    **dict.fromkeys(("float4", "float8", "numeric"), "float"),
    "bool": "bool",
    **dict.fromkeys(("text", "varchar", "bpchar"), "text"),
    **dict.fromkeys(("timestamp", "timestamptz", "date"), "timestamp"),
    **dict.fromkeys(("_text", "_varchar"), "text[]"),
    **dict.fromkeys(("_int2", "_int4", "_int8"), "int[]"),
    **dict.fromkeys(("jsonb", "json"), "jsonb"),
}
VECTOR_TYPES = ("vector", "halfvec")
_METRIC_OPS = {"l2_ops": Metric.L2, "cosine_ops": Metric.COSINE, "ip_ops": Metric.INNER_PRODUCT}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceColumn:
    """An attribute column of the user's table and the kind it is loaded as."""

    name: str
    source_type: str  # format_type() on the server, e.g. "timestamp with time zone"
    typname: str  # pg_type.typname, e.g. "timestamptz"
    kind: str  # attribute kind (datasets.attributes)

    def select(self) -> sql.Composable:
        """The column cast to its kind's SQL type; times without a zone are taken as UTC."""
        col = sql.Identifier(self.name)
        if self.typname in ("timestamp", "date"):
            expr: sql.Composable = sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(col)
        else:
            expr = sql.SQL("{}::{}").format(col, sql.SQL(SQL_TYPES[self.kind]))
        return sql.SQL("{} AS {}").format(expr, col)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceTable:
    """The user's table as the catalog describes it (read before anything is written)."""

    schema: str
    table: str
    column: str
    vector_type: str  # "vector" | "halfvec"
    dim: int | None  # from the typmod; None: read from the rows
    id_column: str
    id_type: str
    id_unique: bool  # a unique index on the id column alone
    attributes: tuple[SourceColumn, ...]
    metric: Metric
    metric_from: str  # "spec" or "index <name> (<opclass>)"
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)


def split_name(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    return schema, table


def _relation(conn: psycopg.Connection[Any], name: str, what: str) -> int:
    schema, table = split_name(name)
    row = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema, table),
    ).fetchone()
    if row is None:
        db = conn.execute("SELECT current_database()").fetchone()
        raise DatasetError(
            f"[dataset] {what} = {name!r}: no such table or view in database "
            f"{db[0] if db else '?'!r} on this server (names are case-sensitive, "
            f'"schema.table"); check the name, or the --dsn the run targets'
        )
    _check_select(conn, int(row[0]), name, what)
    return int(row[0])


def _check_select(conn: psycopg.Connection[Any], oid: int, name: str, what: str) -> None:
    row = conn.execute(
        "SELECT current_user, has_schema_privilege(%s, 'USAGE'), has_table_privilege(%s, 'SELECT')",
        (split_name(name)[0], oid),
    ).fetchone()
    assert row is not None
    role, usage, select = row
    if usage and select:
        return

    def q(ident: str) -> str:
        return sql_name(conn, ident)

    schema_name, table_name = split_name(name)
    grants = [] if usage else [f"GRANT USAGE ON SCHEMA {q(schema_name)} TO {q(role)};"]
    if not select:
        grants.append(f"GRANT SELECT ON {q(schema_name)}.{q(table_name)} TO {q(role)};")
    raise PrivilegeError(
        f"[dataset] {what} = {name!r}: role {role!r} may not read it, and pgvbench reads the "
        f"table (it never writes to it). As its owner or a superuser, run: {' '.join(grants)}"
    )


def _columns(conn: psycopg.Connection[Any], oid: int) -> dict[str, tuple[int, str, str, int]]:
    """name -> (attnum, format_type, typname, typmod)."""
    rows = conn.execute(
        "SELECT a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), t.typname, "
        "a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (oid,),
    ).fetchall()
    return {str(r[0]): (int(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}


def _column(
    cols: dict[str, tuple[int, str, str, int]], name: str, table: str, key: str
) -> tuple[int, str, str, int]:
    if name not in cols:
        raise DatasetError(
            f"[dataset] {key} = {name!r}: {table} has no such column; its columns are "
            f"{', '.join(cols) or '(none)'}"
        )
    return cols[name]


def _vector_column(
    cols: dict[str, tuple[int, str, str, int]], name: str, table: str
) -> tuple[int, str, int | None]:
    attnum, ftype, typname, typmod = _column(cols, name, table, "column")
    if typname not in VECTOR_TYPES:
        raise DatasetError(
            f"[dataset] column = {name!r}: {table}.{name} is of type {ftype}, not a pgvector "
            f"vector or halfvec column; name the column holding the embeddings"
        )
    return attnum, typname, typmod if typmod > 0 else None


def _index_metrics(conn: psycopg.Connection[Any], oid: int, attnum: int) -> list[tuple[str, str]]:
    """(index name, opclass) of the indexes whose first key is the vector column."""
    rows = conn.execute(
        "SELECT i.relname, o.opcname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_opclass o ON o.oid = x.indclass[0] WHERE x.indrelid = %s AND x.indkey[0] = %s "
        "ORDER BY i.relname",
        (oid, attnum),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def opclass_metric(opclass: str) -> Metric | None:
    """vector_cosine_ops -> cosine, halfvec_l2_ops -> l2; None for any other opclass."""
    kind, _, suffix = opclass.partition("_")
    return _METRIC_OPS.get(suffix) if kind in VECTOR_TYPES else None


def _metric(
    indexes: list[tuple[str, str]], spec_metric: Metric | None, name: str
) -> tuple[Metric, str, tuple[str, ...]]:
    found = [(ix, op, m) for ix, op in indexes if (m := opclass_metric(op)) is not None]
    notes: list[str] = []
    if spec_metric is not None:
        for ix, op, m in found:
            if m != spec_metric:
                notes.append(f"metric {spec_metric} from the spec; index {ix} uses {op} ({m})")
        return spec_metric, "spec", tuple(notes)
    if not found:
        raise DatasetError(
            f"[dataset] metric: {name} has no pgvector index on the column to take the metric "
            f'from; set metric = "l2", "cosine" or "ip" in [dataset] (the distance your '
            f"application queries with)"
        )
    ix, op, m = found[0]
    for other, other_op, other_m in found[1:]:
        if other_m != m:
            notes.append(f"index {other} uses {other_op} ({other_m}); {ix} was taken")
    return m, f"index {ix} ({op})", tuple(notes)


def _id_unique(conn: psycopg.Connection[Any], oid: int, attnum: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = %s AND indisunique "
        "AND indnkeyatts = 1 AND indkey[0] = %s AND indpred IS NULL)",
        (oid, attnum),
    ).fetchone()
    return bool(row and row[0])


def inspect_table(
    conn: psycopg.Connection[Any],
    *,
    table: str,
    column: str,
    id_column: str,
    attributes: Sequence[str],
    metric: Metric | None,
) -> SourceTable:
    """The user's table from the catalog; DatasetError / PrivilegeError (exit 2) on a
    missing table or column, a column of the wrong type or missing privileges."""
    oid = _relation(conn, table, "table")
    cols = _columns(conn, oid)
    attnum, vector_type, dim = _vector_column(cols, column, table)
    id_attnum, id_type, _, _ = _column(cols, id_column, table, "id")
    attrs: list[SourceColumn] = []
    for name in attributes:
        _, ftype, typname, _ = _column(cols, name, table, "attributes")
        kind = PG_KINDS.get(typname)
        if kind is None:
            raise DatasetError(
                f"[dataset] attributes: {table}.{name} is of type {ftype}, which pgvbench "
                f"cannot load as an attribute (it loads integers, floats, numeric, boolean, "
                f"text/varchar, timestamps and dates, text[]/int[] and json/jsonb); leave it out"
            )
        attrs.append(SourceColumn(name=name, source_type=ftype, typname=typname, kind=kind))
    chosen, metric_from, notes = _metric(_index_metrics(conn, oid, attnum), metric, table)
    schema, rel = split_name(table)
    return SourceTable(
        schema=schema,
        table=rel,
        column=column,
        vector_type=vector_type,
        dim=dim,
        id_column=id_column,
        id_type=id_type,
        id_unique=_id_unique(conn, oid, id_attnum),
        attributes=tuple(attrs),
        metric=chosen,
        metric_from=metric_from,
        notes=notes,
    )


def inspect_queries_table(
    conn: psycopg.Connection[Any], name: str, column: str, dim: int | None
) -> None:
    """A queries_table exists, is readable and has the vector column (of ``dim``)."""
    oid = _relation(conn, name, "queries_table")
    cols = _columns(conn, oid)
    _, _, qdim = _vector_column(cols, column, name)
    if dim is not None and qdim is not None and qdim != dim:
        raise DatasetError(
            f"[dataset] queries_table = {name!r}: its {column} column has dimension {qdim}, "
            f"the table's has {dim}; queries must come from the same embedding model"
        )
