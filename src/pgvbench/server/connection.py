"""Connecting to a server: fail fast, never print a password."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from ..errors import ConnectError, ExtensionMissingError

CONNECT_TIMEOUT_S = 5  # a DSN that cannot be reached fails well within 10 s


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a run sends its SQL.

    ``kind`` is "embedded" (pgvbench owns the server: it may change settings and
    restart) or "external" (session-level settings only, never restarted).
    """

    dsn: str
    kind: str
    bin_dir: Path | None = None  # client tools (pgbench) matching the server, if known
    postmaster_pid: int | None = None  # for server CPU readings (embedded server only)

    @property
    def can_restart(self) -> bool:
        return self.kind == "embedded"

    @property
    def display(self) -> str:
        return redact_dsn(self.dsn)


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe to print or store."""
    try:
        params = pg_conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    if "password" in params:
        params["password"] = "***"
    return pg_conninfo.make_conninfo("", **params)


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection with a short timeout, mapping failure to ConnectError."""
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    kwargs.setdefault("autocommit", True)
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.ProgrammingError as exc:
        # libpq's parse errors quote the DSN (a URL whole), so they may hold the password:
        # show the parser's words only for a DSN that cannot contain one.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not detail or "password" in dsn.lower() or "@" in dsn:
            detail = "its quoting or punctuation is wrong"
        raise ConnectError(
            f"the DSN is not a valid connection string ({detail}). Use key=value pairs, "
            "e.g. 'host=db.example.com port=5432 user=bench dbname=bench', or a URL, e.g. "
            "'postgresql://bench@db.example.com:5432/bench'."
        ) from None
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectError(
            f"cannot connect to {redact_dsn(dsn)}: {reason}. Check that the server is "
            "running and reachable, and the host, port, user and database in the DSN."
        ) from None


def ensure_vector_extension(conn: psycopg.Connection[Any]) -> str:
    """Make sure pgvector is usable in this database; return its version.

    Creates the extension only when it is available but not yet installed.
    """
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row:
        return str(row[0])
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if not available:
        raise ExtensionMissingError(
            "the server has no pgvector extension. Install it on the server (Debian/Ubuntu: "
            "apt-get install postgresql-<major>-pgvector; from source: "
            "https://github.com/pgvector/pgvector#installation; Docker: use the "
            "pgvector/pgvector image), or run without --dsn to use the embedded server, "
            "which ships it."
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        raise ExtensionMissingError(
            "pgvector is available on the server but not enabled in this database, and this "
            "user may not create it. Ask the database owner to run: CREATE EXTENSION vector;"
        ) from None
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None
    return str(row[0])
