"""Connecting to a server: fail fast, never print a password.

Timeouts. libpq's ``connect_timeout`` is per host, and psycopg enforces it per address
(a name resolving to two addresses, or ``host=a,b``, gets it twice). pgvbench's own
default is a budget for the whole DSN: the addresses are tried in turn, each with a
share of what is left, and none is started once the budget is spent, so a DSN listing
several silent hosts still fails within ``CONNECT_TIMEOUT_S`` (plus libpq's 2 s floor
for the last attempt). A ``connect_timeout`` the user sets (in the DSN, as a keyword or
in PGCONNECT_TIMEOUT) is used as libpq defines it, per host, as psql would.

Session names. Every connection of a run carries ``application_name`` =
``pgvbench/<pid>.<token>`` (see :func:`application_name`), set on the :class:`Target`'s
DSN, so pools, loaders and pgbench alike are named; runs of other pgvbench processes on
the same server are then told apart from this one's in pg_stat_activity.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import pq

from ..errors import ConnectError, ExtensionMissingError

CONNECT_TIMEOUT_S = 5  # budget for the whole DSN: an unreachable one fails well within 10 s
MIN_ATTEMPT_TIMEOUT_S = 2  # libpq and psycopg round any connect_timeout below 2 s up to 2
APP_PREFIX = "pgvbench"
MAX_APP_NAME = 63  # NAMEDATALEN - 1: the server truncates longer names
LIBPQ_DOCS = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"

# psycopg.connect() arguments that are not connection parameters
_CONNECTION_ARGS = ("autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory")
_UNKNOWN_OPTION = re.compile(
    r'(?:invalid connection option|invalid URI query parameter:) "([^"]*)"'
)


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a run sends its SQL.

    ``kind`` is "embedded" (pgvbench owns the server: it may change settings and
    restart) or "external" (session-level settings only, never restarted). The DSN is
    stored with this process's ``application_name`` (see :func:`tag_dsn`), so every
    connection a run opens from it is recognisable in pg_stat_activity.
    """

    dsn: str
    kind: str
    bin_dir: Path | None = None  # client tools (pgbench) matching the server, if known
    postmaster_pid: int | None = None  # for server CPU readings (embedded server only)
    # hot standbys to read from ([server] replicas, or a multi-host --dsn): one DSN each
    replicas: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.dsn:
            object.__setattr__(self, "dsn", tag_dsn(self.dsn))
        object.__setattr__(self, "replicas", tuple(tag_dsn(d) for d in self.replicas))

    @property
    def can_restart(self) -> bool:
        return self.kind == "embedded"

    @property
    def display(self) -> str:
        return redact_dsn(self.dsn)


@functools.cache
def session_tag() -> str:
    """``pgvbench/<pid>.<random>``: names this process's sessions (the random part tells
    apart equal pids on two client hosts)."""
    return f"{APP_PREFIX}/{os.getpid()}.{secrets.token_hex(2)}"


def application_name(role: str | None = None) -> str:
    """The application_name of this process's sessions, e.g. ``pgvbench/4242.1a2b`` or,
    for a helper connection, ``pgvbench/4242.1a2b/wait-sampler``."""
    name = session_tag() if role is None else f"{session_tag()}/{role}"
    return _truncate(name)


def is_own_session(name: str | None) -> bool:
    """Whether an application_name belongs to a session of this process."""
    return name is not None and (name == session_tag() or name.startswith(session_tag() + "/"))


def tag_dsn(dsn: str) -> str:
    """The DSN with this process's application_name (a name the user set is kept after
    it: ``pgvbench/<pid>.<token>/<theirs>``). An unparseable DSN is returned as it is:
    connecting to it reports the problem."""
    try:
        params = pg_conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return dsn
    theirs = params.get("application_name")
    if is_own_session(str(theirs) if theirs is not None else None):
        return dsn
    params["application_name"] = application_name(str(theirs) if theirs else None)
    return pg_conninfo.make_conninfo("", **params)


def _truncate(name: str) -> str:
    encoded = name.encode()
    if len(encoded) <= MAX_APP_NAME:
        return name
    return encoded[:MAX_APP_NAME].decode(errors="ignore")


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe to print or store."""
    try:
        params = pg_conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    if "password" in params:
        params["password"] = "***"
    return pg_conninfo.make_conninfo("", **params)


def libpq_options() -> list[str]:
    """The connection options this libpq accepts (debug-only ones left out)."""
    return [
        d.keyword.decode() for d in pq.Conninfo.get_defaults() if not d.dispchar.startswith(b"D")
    ]


def parse_dsn(dsn: str, **params: Any) -> dict[str, Any]:
    """The DSN's parameters (``params`` on top), or ConnectError saying what is wrong with
    it. Never quotes a password: an unknown option is named by its key only."""
    try:
        parsed = pg_conninfo.conninfo_to_dict(dsn, **params)
    except psycopg.ProgrammingError as exc:
        raise _parse_error(dsn, exc) from None
    timeout = parsed.get("connect_timeout")
    if timeout is not None:
        try:
            int(float(str(timeout)))
        except ValueError:
            raise ConnectError(
                f"the DSN's connect_timeout {str(timeout)!r} is not a number of seconds; "
                "write e.g. connect_timeout=10, or leave it out for pgvbench's default "
                f"({CONNECT_TIMEOUT_S} s for the whole DSN)."
            ) from None
    return parsed


def _parse_error(dsn: str, exc: psycopg.ProgrammingError) -> ConnectError:
    text = str(exc).strip()
    unknown = _UNKNOWN_OPTION.search(text)
    if unknown:
        name = unknown.group(1)
        valid = libpq_options()
        close = difflib.get_close_matches(name.lower(), valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return ConnectError(
            f"the DSN has an unknown option {name!r}{hint}; valid options are libpq's: "
            f"{', '.join(valid)} (see {LIBPQ_DOCS}). Fix or remove it; settings of the "
            "server such as work_mem go in options='-c work_mem=64MB' or in the spec's "
            "[server.settings]."
        )
    # libpq's other parse errors quote the DSN (a URL whole), so they may hold the
    # password: show the parser's words only for a DSN that cannot contain one.
    detail = text.splitlines()[0] if text else ""
    if not detail or "password" in dsn.lower() or "@" in dsn:
        detail = "its quoting or punctuation is wrong"
    return ConnectError(
        f"the DSN is not a valid connection string ({detail}). Use key=value pairs, "
        "e.g. 'host=db.example.com port=5432 user=bench dbname=bench', or a URL, e.g. "
        "'postgresql://bench@db.example.com:5432/bench'."
    )


def _user_timeout(params: dict[str, Any]) -> bool:
    """Whether the user chose a connect_timeout (DSN, keyword or PGCONNECT_TIMEOUT)."""
    if params.get("connect_timeout") not in (None, ""):
        return True
    for default in pq.Conninfo.get_defaults():  # libpq's view, environment included
        if default.keyword == b"connect_timeout":
            return default.val not in (None, b"")
    return False


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection, failing within the timeout budget with a ConnectError.

    ``kwargs`` are psycopg.connect()'s: connection parameters (application_name,
    connect_timeout, ...) override the DSN's; autocommit defaults to True.
    """
    conn_args = {k: kwargs.pop(k) for k in _CONNECTION_ARGS if k in kwargs}
    conn_args.setdefault("autocommit", True)
    params = parse_dsn(dsn, **kwargs)
    try:
        if _user_timeout(params):
            return psycopg.connect(pg_conninfo.make_conninfo("", **params), **conn_args)
        return _connect_within(params, conn_args, CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError as exc:
        raise _parse_error(dsn, exc) from None
    except psycopg.OperationalError as exc:
        raise _connect_error(dsn, exc) from None


def _connect_within(
    params: dict[str, Any], conn_args: dict[str, Any], budget_s: float
) -> psycopg.Connection[Any]:
    """Try the DSN's addresses in turn within ``budget_s`` for all of them."""
    # One attempt per host and per address a name resolves to, as psycopg makes them
    # (load_balance_hosts and target_session_attrs included). DNS lookups happen here.
    attempts = pg_conninfo.conninfo_attempts(params)
    deadline = time.monotonic() + budget_s
    errors: list[psycopg.OperationalError] = []
    for i, attempt in enumerate(attempts):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        share = math.ceil(remaining / (len(attempts) - i))  # what is left, shared fairly
        attempt["connect_timeout"] = max(MIN_ATTEMPT_TIMEOUT_S, share)
        try:
            return psycopg.connect(pg_conninfo.make_conninfo("", **attempt), **conn_args)
        except psycopg.OperationalError as exc:
            errors.append(exc)
    assert errors, "a DSN always gives at least one attempt"
    last = errors[-1]
    if len(attempts) > 1:
        tried = f"{len(errors)} of {len(attempts)}"
        if len(errors) == len(attempts):
            tried = f"all {len(attempts)}"
        note = (
            f" ({tried} addresses tried within pgvbench's {budget_s:g} s budget for the whole "
            "DSN; to give each host longer, set connect_timeout=<seconds> in the DSN)"
        )
        raise psycopg.OperationalError(_first_line(last) + note)
    raise last


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect_error(dsn: str, exc: psycopg.OperationalError) -> ConnectError:
    return ConnectError(
        f"cannot connect to {redact_dsn(dsn)}: {_first_line(exc)}. Check that the server is "
        "running and reachable, and the host, port, user and database in the DSN."
    )


def ensure_vector_extension(conn: psycopg.Connection[Any]) -> str:
    """Make sure pgvector is usable in this database; return its version.

    Creates the extension only when it is available but not yet installed.
    """
    version = _installed_vector(conn)
    if version is not None:
        return version
    _create_vector(conn, dry_run=False)
    version = _installed_vector(conn)
    assert version is not None
    return version


def check_vector_extension(conn: psycopg.Connection[Any]) -> None:
    """ensure_vector_extension without writing: raise what it would raise.

    When pgvector is available but not installed, CREATE EXTENSION is tried in a
    transaction that is rolled back, so a missing privilege shows now.
    """
    if _installed_vector(conn) is None:
        _create_vector(conn, dry_run=True)


def _installed_vector(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return None if row is None else str(row[0])


def _create_vector(conn: psycopg.Connection[Any], *, dry_run: bool) -> None:
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
        with conn.transaction(force_rollback=dry_run):
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        raise ExtensionMissingError(
            "pgvector is available on the server but not enabled in this database, and this "
            "user may not create it. Ask the database owner to run: CREATE EXTENSION vector;"
        ) from None
    except psycopg.errors.ReadOnlySqlTransaction:
        raise ExtensionMissingError(
            "pgvector is available on the server but not enabled in this database, and the "
            "session is read-only (a standby, or default_transaction_read_only = on), so it "
            "cannot be created now. On the primary, ask the database owner to run: CREATE "
            "EXTENSION vector;"
        ) from None
