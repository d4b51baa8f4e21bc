"""DDL inside pgvbench's own schema, with an ownership mark on everything created.

Safety rule: pgvbench only drops or alters objects that carry its mark (a COMMENT
it wrote when it created them). A schema or table of the same name that someone
else created makes pgvbench stop with an error instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..datasets.attributes import Attribute
from ..errors import PrivilegeError, SafetyError

OWNER_MARK = "pgvbench:owned"
# A row of vector(d) stored PLAIN must fit in one 8 kB page with its header.
MAX_PLAIN_DIM = 2000


def _comment(conn: psycopg.Connection[Any], query: str, params: tuple[str, ...]) -> str | None:
    row = conn.execute(query, params).fetchone()
    return None if row is None else (row[0] or "")


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema with our mark, or check that an existing one is ours."""
    if not check_schema(conn, schema):
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(schema), sql.Literal(OWNER_MARK)
            )
        )


def check_schema(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Whether ``schema`` exists; raise unless this role may use it as pgvbench's own.

    An existing schema must carry pgvbench's mark and belong to this role (or a role
    whose privileges it has). A missing one needs CREATE on the database. Every refusal
    names the owner or privilege and the statement that fixes it.
    """
    row = conn.execute(
        "SELECT current_user, current_database(), n.oid IS NOT NULL, "
        "pg_get_userbyid(n.nspowner), coalesce(pg_has_role(n.nspowner, 'USAGE'), false), "
        "obj_description(n.oid, 'pg_namespace'), "
        "has_database_privilege(current_database(), 'CREATE') "
        "FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = %s",
        (schema,),
    ).fetchone()
    assert row is not None
    role, database, exists, owner, owned, comment, may_create = row
    q = _quoter(conn)
    if not exists:
        if not may_create:
            raise PrivilegeError(
                f"role {role!r} may not create schemas in database {database!r} (it lacks the "
                f"CREATE privilege on the database), and pgvbench keeps its tables in a schema "
                f"of its own, {schema!r}. As the database owner or a superuser, run: GRANT "
                f"CREATE ON DATABASE {q(database)} TO {q(role)}; or create the schema for this "
                f"role: CREATE SCHEMA {q(schema)} AUTHORIZATION {q(role)}; COMMENT ON SCHEMA "
                f"{q(schema)} IS '{OWNER_MARK}';"
            )
        return False
    if comment != OWNER_MARK:
        who = f"role {role!r}, this DSN's" if owned else f"role {owner!r}"
        raise SafetyError(
            f"schema {schema!r} exists and was not created by pgvbench (it belongs to {who}); "
            f'pgvbench will not write into it. Set [experiment] schema = "<another name>" in '
            f"the spec (pgvbench creates that schema), or, if {schema!r} is meant for "
            f"pgvbench's tables, mark it"
            + ("" if owned else f" and give it to {role!r} (as {owner!r} or a superuser)")
            + ": "
            + ("" if owned else f"ALTER SCHEMA {q(schema)} OWNER TO {q(role)}; ")
            + f"COMMENT ON SCHEMA {q(schema)} IS '{OWNER_MARK}';"
        )
    if not owned:
        raise PrivilegeError(
            f"schema {schema!r} was created by pgvbench for role {owner!r} and belongs to it, "
            f"not to {role!r}, the role of this DSN; pgvbench writes only into schemas its "
            f"role owns. As {owner!r} or a superuser, run: ALTER SCHEMA {q(schema)} OWNER TO "
            f'{q(role)}; or set [experiment] schema = "<another name>" in the spec.'
        )
    return True


def sql_name(conn: psycopg.Connection[Any], name: str) -> str:
    """``name`` as an identifier to paste into SQL, quoted only where the server needs it
    (capitals, spaces, keywords), as the server's quote_ident does."""
    row = conn.execute("SELECT quote_ident(%s)", (name,)).fetchone()
    return str(row[0]) if row else sql.Identifier(name).as_string(conn)


def _quoter(conn: psycopg.Connection[Any]) -> Callable[[str], str]:
    return lambda name: sql_name(conn, name)


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
    """Raise SafetyError if ``schema.table`` exists without pgvbench's mark, PrivilegeError
    if it carries the mark but belongs to a role whose privileges this one lacks."""
    comment = _table_comment(conn, schema, table)
    if comment is None:
        return
    if comment != OWNER_MARK:
        raise SafetyError(
            f"table {schema}.{table} exists without pgvbench's mark; pgvbench will not drop it."
        )
    row = conn.execute(
        "SELECT current_user, pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is not None and not row[2]:
        role, owner = row[0], row[1]
        q = _quoter(conn)
        raise PrivilegeError(
            f"table {schema}.{table} from an earlier pgvbench run belongs to role {owner!r}, "
            f"so {role!r} cannot replace it. As {owner!r} or a superuser, run: DROP TABLE "
            f"{q(schema)}.{q(table)}; (or ALTER TABLE ... OWNER TO "
            f'{q(role)}), or set [experiment] schema = "<another name>" in the spec.'
        )


def create_vector_table(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    dim: int,
    attributes: Sequence[Attribute] = (),
) -> str:
    """(Re)create ``schema.table (id bigint, embedding vector(dim), <attributes>)``; return
    a storage note.

    The layout is a contract the studies rely on: id is the row index in the dataset's
    base, then the embedding, then one nullable column per attribute, in dataset order,
    named ``attr.name`` and typed ``attr.sql_type``.
    """
    drop_owned_table(conn, schema, table)
    ident = sql.Identifier(schema, table)
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(a.name), sql.SQL(a.sql_type)) for a in attributes
    ]
    conn.execute(
        sql.SQL("CREATE TABLE {} (id bigint NOT NULL, embedding vector({}) NOT NULL{})").format(
            ident,
            sql.Literal(dim),
            sql.SQL("").join(sql.SQL(", ") + c for c in columns),
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


def mark_owned(conn: psycopg.Connection[Any], kind: str, schema: str, name: str) -> None:
    """Write pgvbench's ownership mark on a relation it just created (``kind``: TABLE or
    INDEX), so later runs may drop or change it."""
    if kind not in ("TABLE", "INDEX"):
        raise ValueError(f"mark_owned: kind must be TABLE or INDEX, not {kind!r}")
    conn.execute(
        sql.SQL("COMMENT ON {} {} IS {}").format(
            sql.SQL(kind), sql.Identifier(schema, name), sql.Literal(OWNER_MARK)
        )
    )


@dataclasses.dataclass(frozen=True)
class RelationMarks:
    """Whether a relation and its schema carry pgvbench's mark, and what it is."""

    relkind: str  # pg_class.relkind: r table, i index, p partitioned table, I partitioned index
    owned: bool  # the relation carries the mark
    schema_owned: bool  # its schema carries the mark


def relation_marks(conn: psycopg.Connection[Any], schema: str, name: str) -> RelationMarks | None:
    """The marks of ``schema.name``, or None when no such relation exists."""
    row = conn.execute(
        "SELECT c.relkind, obj_description(c.oid, 'pg_class'), "
        "obj_description(n.oid, 'pg_namespace') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    if row is None:
        return None
    return RelationMarks(
        relkind=str(row[0]), owned=row[1] == OWNER_MARK, schema_owned=row[2] == OWNER_MARK
    )


def drop_owned_index(
    conn: psycopg.Connection[Any], schema: str, name: str, *, advice: str = ""
) -> None:
    """Drop an index pgvbench created; nothing if it is gone; refuse one without the mark.
    ``advice`` is appended to the refusal (what the user can change instead)."""
    marks = relation_marks(conn, schema, name)
    if marks is None:
        return
    if not marks.owned or marks.relkind not in ("i", "I"):
        raise SafetyError(
            f"{schema}.{name} exists without pgvbench's mark (or is not an index); pgvbench "
            f"will not drop it.{' ' + advice if advice else ''}"
        )
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
