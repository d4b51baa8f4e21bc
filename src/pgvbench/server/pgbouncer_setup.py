"""Everything around a PgBouncer process but the process: the binary and its version, the
checks on settings that go into its files unquoted, and pgbouncer.ini itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Literal, Protocol

from ..errors import ServerError

PoolMode = Literal["transaction", "session"]
AuthType = Literal["trust", "plain", "md5", "scram-sha-256"]

POOL_MODES: tuple[str, ...] = ("transaction", "session")
AUTH_TYPES: tuple[str, ...] = ("trust", "plain", "md5", "scram-sha-256")
SSL_MODES: tuple[str, ...] = (
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
)
PREPARED_STATEMENTS_SINCE = (1, 21, 0)
_SEARCH_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# Names and hosts go into pgbouncer.ini / a libpq conninfo unquoted: keep them to plain tokens.
_UNSAFE = re.compile(r"[\s'\"\\=#;\[\]\x00-\x1f\x7f]")


def find_pgbouncer() -> Path | None:
    """The ``pgbouncer`` binary on PATH, or in the sbin dirs a non-root PATH often lacks."""
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    for directory in _SEARCH_DIRS:
        candidate = Path(directory) / "pgbouncer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def pgbouncer_version(binary: Path | str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` from ``pgbouncer --version``."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"cannot run {binary} --version: {exc}") from None
    output = (result.stdout + result.stderr).strip()
    match = re.search(r"pgbouncer\D*?(\d+)\.(\d+)(?:\.(\d+))?", output, re.IGNORECASE)
    if result.returncode != 0 or match is None:
        first = output.splitlines()[0] if output else f"exit {result.returncode}"
        raise ServerError(f"{binary} --version did not report a PgBouncer version: {first}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def supports_prepared_statements(version: tuple[int, int, int]) -> bool:
    """Protocol-level prepared statements through transaction pooling (>= 1.21)."""
    return tuple(version) >= PREPARED_STATEMENTS_SINCE


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_token(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if _UNSAFE.search(value):
        raise ValueError(
            f"{name} {value!r} contains whitespace, quotes or other characters pgvbench "
            "does not write into pgbouncer.ini"
        )
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def userlist_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class IniSettings(Protocol):
    """The validated settings pgbouncer.ini is written from (a PgBouncer has them all)."""

    host: str
    upstream_port: int
    user: str
    dbname: str
    auth_type: AuthType
    pool_mode: PoolMode
    pool_size: int
    max_client_conn: int
    server_lifetime: int
    server_idle_timeout: int
    max_prepared_statements: int
    sslmode: str | None
    sslrootcert: str | None


def ini_text(b: IniSettings, *, port: int, workdir: Path, version: tuple[int, int, int]) -> str:
    """pgbouncer.ini for one start: listen on 127.0.0.1:``port``, files in ``workdir``."""
    upstream = f"host={b.host} port={b.upstream_port}"
    lines = [
        "; Written by pgvbench for one run; removed when PgBouncer is stopped.",
        "[databases]",
        f"{b.dbname} = {upstream} dbname={b.dbname}",
        f"* = {upstream}",  # any other database on the same server, same settings
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        f"listen_backlog = {max(128, min(b.max_client_conn, 4096))}",
        f"auth_type = {b.auth_type}",
        f"auth_file = {workdir / 'userlist.txt'}",
        f"admin_users = {b.user}",
        f"stats_users = {b.user}",
        f"pool_mode = {b.pool_mode}",
        f"default_pool_size = {b.pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {b.max_client_conn}",
        # Session settings are not tracked across server connections: in transaction
        # mode they must be SET LOCAL, so "options" (-c name=value) is refused.
        "ignore_startup_parameters = extra_float_digits",
        "server_reset_query = DISCARD ALL",
        "server_reset_query_always = 0",
        "server_check_delay = 30",
        f"server_lifetime = {b.server_lifetime}",
        f"server_idle_timeout = {b.server_idle_timeout}",
        "server_connect_timeout = 15",
        "query_wait_timeout = 120",
        "stats_period = 1",
        "log_connections = 0",
        "log_disconnections = 0",
        "log_pooler_errors = 1",
        "syslog = 0",
    ]
    if supports_prepared_statements(version):
        lines.append(f"max_prepared_statements = {b.max_prepared_statements}")
    if b.sslmode is not None:
        lines.append(f"server_tls_sslmode = {b.sslmode}")
    if b.sslrootcert is not None:
        lines.append(f"server_tls_ca_file = {b.sslrootcert}")
    return "\n".join(lines) + "\n"
