"""External servers (--dsn): checked before any work, session-level settings only, never
restarted."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from ..errors import ServerError, SpecError
from ..results import ServerSettingsInfo
from .connection import check_vector_extension, connect
from .preflight import check_writable, preflight

_SESSION_CONTEXTS = ("user", "superuser")


def check_dsn(dsn: str, *, schema: str | None = None, writes: bool = True) -> None:
    """Everything a run needs from ``dsn``, checked before the dataset and ground truth
    are built: the DSN parses (an unknown option is named), the server answers within
    the connect timeout, pgvector is installed or may be created. With ``writes`` (every
    run that loads data: vector experiments, agent experiments with [data]) also: the
    server is not a standby, the session is not read-only, pgvector's schema is usable,
    and ``schema`` (the spec's [experiment] schema) is pgvbench's and this role's, or may
    be created.

    Raises ConnectError, ExtensionMissingError, PrivilegeError or SafetyError (all exit
    2, one paragraph). Writes nothing: CREATE EXTENSION, when needed, is tried in a
    transaction that is rolled back.
    """
    try:
        with connect(dsn) as conn:
            if writes:
                check_writable(conn)  # first: a read-only session would refuse the dry run
            check_vector_extension(conn)
            if writes:
                preflight(conn, schema=schema)
    except psycopg.errors.QueryCanceled as exc:
        raise ServerError(
            f"the server cancelled pgvbench's first checks ({exc.diag.message_primary or exc}): "
            "a statement_timeout (in the DSN's options, PGOPTIONS, or set for the role or "
            "database) is too short for any work. Remove it, or set it for pgvbench's role "
            "to several seconds or more; [query] statement_timeout_ms bounds the measured "
            "queries."
        ) from None


def session_settings(
    dsn: str, settings: Mapping[str, str], *, source: str = "spec: [server.settings]"
) -> tuple[str, ServerSettingsInfo]:
    """Fold settings a session may change into the DSN's ``options``; report the rest.

    libpq sends ``options`` with every new connection, so every connection a run
    opens (loader, sweeps, pollers) gets the same session settings.
    """
    applicable: dict[str, str] = {}
    not_applied: dict[str, str] = {}
    with connect(dsn) as conn:
        for name, value in settings.items():
            row = conn.execute(
                "SELECT context FROM pg_settings WHERE name = %s", (name,)
            ).fetchone()
            if row is None and "." not in name:
                not_applied[name] = "unknown setting on this server"
                continue
            context = str(row[0]) if row else "user"  # extension GUCs (hnsw.*) are per session
            if context not in _SESSION_CONTEXTS:
                not_applied[name] = (
                    f"context {context!r}: needs a server restart or configuration reload, "
                    "which pgvbench does not do to external servers; set it on the server"
                )
                continue
            try:
                conn.execute(
                    sql.SQL("SET {} = {}").format(
                        sql.Identifier(*name.split(".")), sql.Literal(value)
                    )
                )
            except psycopg.errors.InvalidParameterValue as exc:
                # a wrong value is the spec's mistake here as on the embedded server
                raise SpecError(
                    f"{source} {name} = {value!r} was refused by "
                    f"PostgreSQL: {exc.diag.message_primary or exc}"
                ) from None
            except psycopg.Error as exc:
                not_applied[name] = f"refused by the server: {exc.diag.message_primary or exc}"
                continue
            applicable[name] = value
        in_effect = {}
        for name in applicable:
            row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
            in_effect[name] = str(row[0]) if row and row[0] is not None else ""
    options = " ".join(f"-c {name}={_escape(value)}" for name, value in applicable.items())
    params = pg_conninfo.conninfo_to_dict(dsn)
    if options:
        params["options"] = f"{params.get('options', '')} {options}".strip()
    new_dsn = pg_conninfo.make_conninfo("", **params)
    info = ServerSettingsInfo(
        requested=dict(settings),
        in_effect=in_effect,
        not_applied=not_applied,
        restarted=False,
        method="session",
    )
    return new_dsn, info


def _escape(value: str) -> str:
    # libpq options: backslash escapes spaces inside a value
    return value.replace("\\", "\\\\").replace(" ", "\\ ")
