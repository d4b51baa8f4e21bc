"""DDL inside pgvbench's own schema, with an ownership mark on everything created.

Safety rule: pgvbench only drops or alters objects that carry its mark (a COMMENT
it wrote when it created them). A schema or table of the same name that someone
else created makes pgvbench stop with an error instead.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..errors import SafetyError

OWNER_MARK = "pgvbench:owned"
# A row of vector(d) stored PLAIN must fit in one 8 kB page with its header.
MAX_PLAIN_DIM = 2000


def _comment(conn: psycopg.Connection[Any], query: str, params: tuple[str, ...]) -> str | None:
    row = conn.execute(query, params).fetchone()
    return None if row is None else (row[0] or "")


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema with our mark, or check that an existing one is ours."""
    comment = _comment(
        conn,
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        (schema,),
    )
    if comment is None:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(schema), sql.Literal(OWNER_MARK)
            )
        )
    elif comment != OWNER_MARK:
        raise SafetyError(
            f"schema {schema!r} exists and was not created by pgvbench; pgvbench will not "
            'write into it. Set [experiment] schema = "<another name>" in the spec.'
        )


def table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    return _table_comment(conn, schema, table) is not None


def _table_comment(conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
    return _comment(
        conn,
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )


def drop_owned_table(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    """Drop a table pgvbench created earlier; refuse anything else."""
    comment = _table_comment(conn, schema, table)
    if comment is None:
        return
    if comment != OWNER_MARK:
        raise SafetyError(
            f"table {schema}.{table} exists without pgvbench's mark; pgvbench will not drop it."
        )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, table)))


def check_table_replaceable(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    """Raise SafetyError if ``schema.table`` exists without pgvbench's mark."""
    comment = _table_comment(conn, schema, table)
    if comment is not None and comment != OWNER_MARK:
        raise SafetyError(
            f"table {schema}.{table} exists without pgvbench's mark; pgvbench will not drop it."
        )


def create_vector_table(conn: psycopg.Connection[Any], schema: str, table: str, dim: int) -> str:
    """(Re)create ``schema.table (id bigint, embedding vector(dim))``; return a storage note."""
    drop_owned_table(conn, schema, table)
    ident = sql.Identifier(schema, table)
    conn.execute(
        sql.SQL("CREATE TABLE {} (id bigint NOT NULL, embedding vector({}) NOT NULL)").format(
            ident, sql.Literal(dim)
        )
    )
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(OWNER_MARK)))
    if dim <= MAX_PLAIN_DIM:
        # PLAIN keeps vectors inline: no TOAST detours on every distance computation.
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN embedding SET STORAGE PLAIN").format(ident)
        )
        return "storage PLAIN"
    return f"storage EXTENDED (dim {dim} > {MAX_PLAIN_DIM} does not fit a page inline)"


def relation_bytes(conn: psycopg.Connection[Any], schema: str, name: str) -> int:
    row = conn.execute(
        "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
        (schema, name),
    ).fetchone()
    return int(row[0]) if row else 0
