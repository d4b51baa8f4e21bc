"""A role that may not do what a run needs: exit 2, one paragraph naming the missing
privilege or setting and the statement that fixes it, nothing written.

Each test makes its own login role and database on the shared embedded server (trust
auth) and connects as that role through a DSN; both are dropped afterwards. Where the
message names a fix, the test applies exactly that statement and checks that
check_dsn then passes: the advice is proven, not just printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgvbench.cli import main
from pgvbench.db import schema as db_schema
from pgvbench.errors import ConnectError, ExtensionMissingError, PrivilegeError, SafetyError
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.server.external import check_dsn
from pgvbench.server.preflight import refusal_error
from support import write_toml

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Sandbox:
    server: EmbeddedServer
    role: str
    database: str
    extra_roles: list[str]

    @property
    def dsn(self) -> str:
        return (
            f"host={self.server.socket_dir} port={self.server.port} "
            f"user={self.role} dbname={self.database}"
        )

    def admin(self) -> psycopg.Connection[Any]:
        """A superuser connection to the sandbox database."""
        return connect(self.server.dsn(self.database))

    def execute(self, *statements: str) -> None:
        with self.admin() as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def add_role(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.extra_roles.append(name)
        self.execute(f"CREATE ROLE {name} LOGIN")
        return name


@pytest.fixture
def sandbox(embedded_server: EmbeddedServer) -> Iterator[Sandbox]:
    """A login role (no privileges beyond PUBLIC's) and a database with pgvector."""
    suffix = uuid.uuid4().hex[:8]
    box = Sandbox(embedded_server, f"pgvb_priv_{suffix}", f"priv_{suffix}", [])
    admin_dsn = embedded_server.dsn("postgres")
    try:
        with connect(admin_dsn) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(box.role)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(box.database)))
        yield box
    finally:
        with connect(admin_dsn) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(box.database)
                )
            )
            for role in [box.role, *box.extra_roles]:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PGVBENCH_DATA_DIR", str(tmp_path / "embedded-data"))


def _run_fails_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: dict[str, Any], dsn: str
) -> str:
    """`pgvbench run --dsn`: exit 2, one error paragraph, no results file; return it."""
    spec_path = write_toml(tmp_path / "spec.toml", {**spec, "index": [{"kind": "none"}]})
    out = tmp_path / "out"
    code = main(["run", str(spec_path), "--dsn", dsn, "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error: "), err
    assert err.count("pgvbench: error:") == 1, err
    assert "Traceback" not in err
    assert "\n" not in err.strip(), err  # one paragraph, one line
    assert not (out / "results.json").exists()
    return err


def _schemas(box: Sandbox) -> set[str]:
    with box.admin() as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname NOT IN ('information_schema', 'public')"
        ).fetchall()
    return {str(r[0]) for r in rows}


# --------------------------------------------------------------------------- CREATE on the db


def test_no_create_on_the_database(
    sandbox: Sandbox,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.execute("CREATE EXTENSION vector")
    schema = tiny_spec["experiment"]["schema"]

    err = _run_fails_cleanly(capsys, tmp_path, tiny_spec, sandbox.dsn)

    assert f"role '{sandbox.role}' may not create schemas" in err
    assert "CREATE privilege on the database" in err
    grant = f"GRANT CREATE ON DATABASE {sandbox.database} TO {sandbox.role};"
    assert grant in err
    precreate = f"CREATE SCHEMA {schema} AUTHORIZATION {sandbox.role};"
    assert precreate in err and f"COMMENT ON SCHEMA {schema} IS 'pgvbench:owned';" in err
    assert _schemas(sandbox) == set()  # nothing was created
    with pytest.raises(PrivilegeError):
        check_dsn(sandbox.dsn, schema=schema)

    sandbox.execute(grant)  # the fix it names
    check_dsn(sandbox.dsn, schema=schema)
    assert _schemas(sandbox) == set()  # check_dsn writes nothing


def test_a_schema_created_for_the_role_instead_of_the_grant(
    sandbox: Sandbox, tiny_spec: dict[str, Any]
) -> None:
    sandbox.execute("CREATE EXTENSION vector")
    schema = tiny_spec["experiment"]["schema"]
    sandbox.execute(  # the other fix the message names
        f"CREATE SCHEMA {schema} AUTHORIZATION {sandbox.role}",
        f"COMMENT ON SCHEMA {schema} IS 'pgvbench:owned'",
    )
    check_dsn(sandbox.dsn, schema=schema)
    with connect(sandbox.dsn) as conn:  # and the role can make its table there
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, "t_items", 4)


# --------------------------------------------------------------------------- pgvector's schema


def test_no_usage_on_the_schema_holding_the_vector_type(
    sandbox: Sandbox,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.execute(
        "CREATE SCHEMA ext",
        "CREATE EXTENSION vector SCHEMA ext",
        f"GRANT CREATE ON DATABASE {sandbox.database} TO {sandbox.role}",
    )
    schema = tiny_spec["experiment"]["schema"]

    err = _run_fails_cleanly(capsys, tmp_path, tiny_spec, sandbox.dsn)

    assert f"role '{sandbox.role}' has no USAGE privilege on schema 'ext'" in err
    assert "pgvector's vector type" in err
    assert f"GRANT USAGE ON SCHEMA ext TO {sandbox.role};" in err
    path_fix = f'ALTER ROLE {sandbox.role} SET search_path = "$user", public, ext;'
    assert path_fix in err  # ext is not on the search_path either: both fixes at once
    assert _schemas(sandbox) == {"ext"}

    sandbox.execute(f"GRANT USAGE ON SCHEMA ext TO {sandbox.role}")
    with pytest.raises(PrivilegeError) as info:  # usage alone: the type still does not resolve
        check_dsn(sandbox.dsn, schema=schema)
    assert "not on the search_path" in str(info.value) and path_fix in str(info.value)

    sandbox.execute(path_fix)
    check_dsn(sandbox.dsn, schema=schema)


# --------------------------------------------------------------------------- read-only


@pytest.mark.parametrize("source", ["role", "database", "role in database", "dsn options"])
def test_read_only_session(
    sandbox: Sandbox,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    role, db = sandbox.role, sandbox.database
    sandbox.execute("CREATE EXTENSION vector", f"GRANT CREATE ON DATABASE {db} TO {role}")
    dsn = sandbox.dsn
    setting = "default_transaction_read_only"
    if source == "role":
        sandbox.execute(f"ALTER ROLE {role} SET {setting} = on")
        fix: str | None = f"ALTER ROLE {role} RESET {setting};"
        where = f"set for role '{role}'"
    elif source == "database":
        sandbox.execute(f"ALTER DATABASE {db} SET {setting} = on")
        # sessions in that database are read-only, the superuser's too: lift it first
        fix = f"SET {setting} = off; ALTER DATABASE {db} RESET {setting};"
        where = f"set for database '{db}'"
    elif source == "role in database":
        sandbox.execute(f"ALTER ROLE {role} IN DATABASE {db} SET {setting} = on")
        fix = f"ALTER ROLE {role} IN DATABASE {db} RESET {setting};"
        where = f"set for role '{role}' in database '{db}'"
    else:
        dsn += f" options='-c {setting}=on'"
        fix, where = None, "set by the client"

    err = _run_fails_cleanly(capsys, tmp_path, tiny_spec, dsn)

    assert f"the session of role '{role}' is read-only: {setting} = on, {where}" in err
    if fix is not None:
        assert fix in err
        sandbox.execute(*fix.rstrip(";").split("; "))  # as psql runs them, one by one
        check_dsn(dsn, schema=tiny_spec["experiment"]["schema"])
    else:
        assert f"Remove -c {setting}=on from the DSN's options" in err
        check_dsn(sandbox.dsn, schema=tiny_spec["experiment"]["schema"])
    assert _schemas(sandbox) == set()


# --------------------------------------------------------------------------- foreign schema


@pytest.mark.parametrize("marked", [True, False], ids=["pgvbench-marked", "unmarked"])
def test_schema_owned_by_another_role(
    sandbox: Sandbox,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    marked: bool,
) -> None:
    role, db = sandbox.role, sandbox.database
    other = sandbox.add_role("pgvb_other")
    schema = tiny_spec["experiment"]["schema"]
    sandbox.execute(
        "CREATE EXTENSION vector",
        f"GRANT CREATE ON DATABASE {db} TO {role}",
        f"CREATE SCHEMA {schema} AUTHORIZATION {other}",
        f"CREATE TABLE {schema}.keep (id int)",
        f"ALTER TABLE {schema}.keep OWNER TO {other}",
    )
    if marked:
        sandbox.execute(f"COMMENT ON SCHEMA {schema} IS 'pgvbench:owned'")

    err = _run_fails_cleanly(capsys, tmp_path, tiny_spec, sandbox.dsn)

    assert f"role '{other}'" in err  # the owner is named
    assert f"ALTER SCHEMA {schema} OWNER TO {role};" in err
    assert '[experiment] schema = "<another name>"' in err
    error = PrivilegeError if marked else SafetyError
    with pytest.raises(error):
        check_dsn(sandbox.dsn, schema=schema)
    with sandbox.admin() as conn:  # untouched: same owner, same table, no table of ours
        row = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        assert row == (other,)
        tables = conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE nspname = %s",
            (schema,),
        ).fetchall()
        assert tables == [("keep",)]

    sandbox.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")  # the fix it names
    if not marked:
        sandbox.execute(f"COMMENT ON SCHEMA {schema} IS 'pgvbench:owned'")
    check_dsn(sandbox.dsn, schema=schema)


def test_marked_table_of_another_role_in_our_schema(sandbox: Sandbox) -> None:
    """An earlier run as another role left its table: it cannot be replaced, say so."""
    role, db = sandbox.role, sandbox.database
    other = sandbox.add_role("pgvb_other")
    sandbox.execute(
        "CREATE EXTENSION vector",
        f"GRANT CREATE ON DATABASE {db} TO {role}",
        f"CREATE SCHEMA s AUTHORIZATION {role}",
        "COMMENT ON SCHEMA s IS 'pgvbench:owned'",
        "CREATE TABLE s.t_items (id int)",
        "COMMENT ON TABLE s.t_items IS 'pgvbench:owned'",
        f"ALTER TABLE s.t_items OWNER TO {other}",
    )
    with connect(sandbox.dsn) as conn, pytest.raises(PrivilegeError) as info:
        db_schema.check_table_replaceable(conn, "s", "t_items")
    message = str(info.value)
    assert f"belongs to role '{other}'" in message
    assert "DROP TABLE s.t_items;" in message and f"OWNER TO {role}" in message


# --------------------------------------------------------------------------- hot standby


@contextlib.contextmanager
def _standby_of(server: EmbeddedServer) -> Iterator[str]:
    """A streaming standby of ``server`` (pg_basebackup -R) on its own port; its DSN."""
    root = Path(tempfile.mkdtemp(prefix="pgvb-standby-"))
    data = root / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    if server.run_as is not None:  # the server's system user writes the copy
        entry = pwd.getpwnam(server.run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    bin_dir = server.bin_dir
    try:
        backup = server._run(
            [
                str(bin_dir / "pg_basebackup"),
                *("-D", str(data), "-R", "-X", "stream", "-c", "fast"),
                *("-h", str(server.socket_dir), "-p", str(server.port), "-U", "postgres"),
            ]
        )
        assert backup.returncode == 0, backup.stdout
        with open(data / "postgresql.auto.conf", "a") as fh:  # read last: overrides
            fh.write(f"\nport = {port}\nunix_socket_directories = '{root}'\n")
        started = server._run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start"]
        )
        assert started.returncode == 0, started.stdout
        yield f"host={root} port={port} user=postgres dbname=pgvbench"
    finally:
        if (data / "postmaster.pid").exists():
            server._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def test_hot_standby_points_at_the_primary(
    embedded_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _standby_of(embedded_server) as dsn:
        with connect(dsn) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

        err = _run_fails_cleanly(capsys, tmp_path, tiny_spec, dsn)

        assert "is a hot standby (pg_is_in_recovery() is true)" in err
        assert "Point --dsn at the primary" in err
        assert "target_session_attrs=read-write" in err
        with pytest.raises(PrivilegeError, match="hot standby"):
            check_dsn(dsn, schema=tiny_spec["experiment"]["schema"])
        # a run that only reads (agent [[operation]]s without [data]) may use a standby
        check_dsn(dsn, writes=False)


# --------------------------------------------------------------------------- check_dsn


def test_check_dsn_tries_create_extension_without_keeping_it(sandbox: Sandbox) -> None:
    """pgvector available but not installed: a superuser may create it (checked in a
    rolled-back transaction); a plain role is told to ask the owner. Nothing installed."""
    superuser_dsn = sandbox.server.dsn(sandbox.database)
    check_dsn(superuser_dsn, schema="s_check")
    with pytest.raises(ExtensionMissingError, match="CREATE EXTENSION vector"):
        check_dsn(sandbox.dsn, schema="s_check")
    with sandbox.admin() as conn:
        installed = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
        assert installed.fetchone() == (0,)
    assert _schemas(sandbox) == set()


def test_check_dsn_names_an_unknown_option(embedded_server: EmbeddedServer) -> None:
    with pytest.raises(ConnectError, match="unknown option 'dbnam' \\(did you mean 'dbname'"):
        check_dsn(f"host={embedded_server.socket_dir} port={embedded_server.port} dbnam=x")


def test_check_dsn_reaches_the_second_host_after_a_silent_first(
    embedded_server: EmbeddedServer,
) -> None:
    """The budget is shared: a first host that never answers leaves time for the next."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent_port = silent.getsockname()[1]
        dsn = (
            f"host=127.0.0.1,127.0.0.1 port={silent_port},{embedded_server.port} "
            "user=postgres dbname=pgvbench"
        )
        check_dsn(dsn, schema="s_unused")
        with connect(dsn) as conn:
            assert conn.info.port == embedded_server.port


# --------------------------------------------------------------------------- mid-run


def test_a_refusal_met_mid_run_names_the_grant(sandbox: Sandbox) -> None:
    """The server's own words for a refusal check_dsn did not foresee (e.g. a privilege
    revoked during the run) become a PrivilegeError naming the GRANT."""
    sandbox.execute("CREATE SCHEMA ext")
    with (
        connect(sandbox.dsn) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege) as info,
    ):
        conn.execute("CREATE TABLE ext.t (id int)")
    error = refusal_error(info.value, role=sandbox.role)
    assert isinstance(error, PrivilegeError)
    assert "permission denied for schema ext" in str(error)
    assert f"GRANT USAGE, CREATE ON SCHEMA ext TO {sandbox.role};" in str(error)
