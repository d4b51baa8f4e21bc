"""Before anything is written: may this role do what a run needs on this server?

A run creates a schema (or uses its own), creates, loads and indexes tables with
``vector`` columns. :func:`preflight` checks each need right after connecting, with the
server's own answers (pg_is_in_recovery, transaction_read_only, has_*_privilege), and
stops with one paragraph naming the missing privilege or setting and the statement that
fixes it. :func:`refusal_error` turns the same refusals met later in a run (a privilege
revoked, a failover to a standby) into such a paragraph.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..db import schema as db_schema
from ..errors import PrivilegeError

_SETTING = "default_transaction_read_only"


def preflight(conn: psycopg.Connection[Any], *, schema: str | None) -> None:
    """Raise PrivilegeError (or SafetyError) unless a run may write what it needs.

    Checks, in order: the server is not a standby; the session is not read-only; the
    schema holding pgvector's type is usable; ``schema`` is pgvbench's and this role's,
    or may be created (None skips the schema check). Writes nothing.
    """
    check_writable(conn)
    check_vector_type(conn)
    if schema is not None:
        db_schema.check_schema(conn, schema)


def _q(conn: psycopg.Connection[Any], name: str) -> str:
    return db_schema.sql_name(conn, name)


def check_writable(conn: psycopg.Connection[Any]) -> None:
    """Refuse a hot standby and a read-only session, naming where read-only comes from."""
    row = conn.execute(
        "SELECT current_user, current_database(), pg_is_in_recovery(), "
        "current_setting('transaction_read_only'), current_setting(%s), "
        "(SELECT source FROM pg_settings WHERE name = %s)",
        (_SETTING, _SETTING),
    ).fetchone()
    assert row is not None
    role, database, in_recovery, read_only, default_read_only, source = row
    if in_recovery:
        raise PrivilegeError(
            "the server at this DSN is a hot standby (pg_is_in_recovery() is true), which "
            "is read-only, and pgvbench creates, loads and indexes its own tables. Point "
            "--dsn at the primary; with several hosts in the DSN, add "
            "target_session_attrs=read-write so that libpq picks the primary."
        )
    if read_only != "on":
        return
    r, d = _q(conn, role), _q(conn, database)
    if default_read_only != "on":
        where, fix = "in this session", f"Run ALTER ROLE {r} SET {_SETTING} = off"
    elif source == "user":
        where = f"set for role {role!r} (ALTER ROLE ... SET)"
        fix = f"As a superuser or a role with CREATEROLE, run: ALTER ROLE {r} RESET {_SETTING};"
    elif source == "database":
        where = f"set for database {database!r} (ALTER DATABASE ... SET)"
        # every session in that database is read-only, the owner's too: lift it first
        fix = (
            f"As the database owner or a superuser, run: SET {_SETTING} = off; ALTER "
            f"DATABASE {d} RESET {_SETTING};"
        )
    elif source == "database user":
        where = f"set for role {role!r} in database {database!r}"
        fix = f"As a superuser, run: ALTER ROLE {r} IN DATABASE {d} RESET {_SETTING};"
    elif source == "client":
        where = "set by the client"
        fix = (
            f"Remove -c {_SETTING}=on from the DSN's options, from PGOPTIONS or from the "
            "spec's [server.settings]"
        )
    else:
        where = f"set in the server's configuration (source: {source})"
        fix = (
            "Ask the administrator to turn it off, or override it for this role: ALTER ROLE "
            f"{r} SET {_SETTING} = off;"
        )
    raise PrivilegeError(
        f"the session of role {role!r} is read-only: {_SETTING} = on, {where}. pgvbench "
        f"creates, loads and indexes its own tables, so it must be able to write. {fix} "
        "(or connect as a role that may write)."
    )


def check_vector_type(conn: psycopg.Connection[Any]) -> None:
    """Refuse when pgvector's schema is not usable (no USAGE) or not on the search_path.

    Nothing to check while the extension is not installed: creating it is
    ensure_vector_extension's job, and its creator can use it.
    """
    row = conn.execute(
        "SELECT current_user, n.nspname, pg_get_userbyid(n.nspowner), "
        "has_schema_privilege(n.oid, 'USAGE'), to_regtype('vector') IS NOT NULL, "
        "current_setting('search_path') "
        "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'vector'"
    ).fetchone()
    if row is None:
        return
    role, nsp, owner, usage, resolves, search_path = row
    r, n = _q(conn, role), _q(conn, nsp)
    path_fix = (
        f"ALTER ROLE {r} SET search_path = {search_path}, {n}; (or set search_path in the "
        "spec's [server.settings])"
    )
    if not usage:
        on_path = "" if resolves else f" and put the schema on the role's search_path: {path_fix}"
        raise PrivilegeError(
            f"role {role!r} has no USAGE privilege on schema {nsp!r}, which holds pgvector's "
            "vector type, so it can neither create vector columns nor use pgvector's "
            f"operators. As {owner!r} (the schema's owner) or a superuser, run: GRANT USAGE "
            f"ON SCHEMA {n} TO {r};{on_path}"
        )
    if not resolves:
        raise PrivilegeError(
            f"pgvector is installed in schema {nsp!r}, which is not on the search_path of "
            f"role {role!r} ({search_path}), so pgvbench's tables and queries cannot name "
            f"the vector type and its operators. Add the schema: {path_fix}."
        )


# what the server says -> the statement that grants it ({kind} upper-cased, {name} as said)
_SUGGESTIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"permission denied for (?P<kind>database) (?P<name>\S+)"),
        "GRANT CREATE ON {kind} {name} TO {role}",
    ),
    (
        re.compile(r"permission denied for (?P<kind>schema) (?P<name>\S+)"),
        "GRANT USAGE, CREATE ON {kind} {name} TO {role}",
    ),
    (
        re.compile(r"permission denied for (?P<kind>table|sequence) (?P<name>\S+)"),
        "GRANT ALL ON {kind} {name} TO {role}",
    ),
    (
        re.compile(r"must be owner of (?P<kind>table|index|schema) (?P<name>\S+)"),
        "ALTER {kind} {name} OWNER TO {role}",
    ),
]


def refusal_error(exc: BaseException, *, role: str | None = None) -> PrivilegeError | None:
    """A PrivilegeError for a privilege or read-only refusal met mid-run (looked for in
    ``exc`` and its causes), or None for any other failure."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, PrivilegeError):
            return cur
        if isinstance(cur, (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction)):
            return _describe_refusal(cur, role)
        cur = cur.__cause__ or cur.__context__
    return None


def _describe_refusal(exc: psycopg.Error, role: str | None) -> PrivilegeError:
    primary = exc.diag.message_primary or str(exc).strip().splitlines()[0]
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return PrivilegeError(
            f"the server refused a write during the run ({primary}): it became read-only, "
            "either a failover turned it into a standby or default_transaction_read_only "
            "was switched on. Point --dsn at the primary (with several hosts, add "
            "target_session_attrs=read-write) and run again; results.json keeps what was "
            "measured before."
        )
    who = repr(role) if role else "the DSN's role"
    fix = ""
    for pattern, template in _SUGGESTIONS:
        found = pattern.search(primary)
        if found:
            statement = template.format(
                kind=found["kind"].upper(), name=found["name"], role=role or "<role>"
            )
            fix = f", e.g. {statement};"
            break
    return PrivilegeError(
        f"the server refused a statement during the run ({primary}): {who} lacks a "
        f"privilege the run needs. Grant it as the object's owner or a superuser{fix or ','}"
        " or use a role that has it, and run again; results.json keeps what was measured "
        "before."
    )
