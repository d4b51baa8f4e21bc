"""A PgBouncer in front of the benchmarked server, run and owned by pgvbench.

pgvbench starts its own ``pgbouncer`` as a child process (never daemonised) with a
throwaway working directory holding ``pgbouncer.ini``, ``userlist.txt`` and the log.
It listens on 127.0.0.1 only, on a free port, with no Unix socket. Started as root,
PgBouncer (which refuses to run as root) runs as the same system user as the
embedded PostgreSQL server.

Things a benchmark through PgBouncer must respect:

* **Session settings in transaction mode.** A client gets *a* server connection for
  each transaction only, so a plain ``SET work_mem = ...`` lands on whichever server
  connection served that transaction and leaks to the next client that gets it, while
  the client's own next transaction may run on a connection without it. Set per-query
  settings with ``SET LOCAL`` inside the transaction (``BEGIN; SET LOCAL ...; query;
  COMMIT``). Session mode keeps a server connection per client and resets it with
  ``DISCARD ALL`` when the client leaves, so plain ``SET`` works there.
* **No ``options`` startup parameter.** Only ``extra_float_digits`` is ignored
  (``ignore_startup_parameters``); PgBouncer refuses a connection that sends
  ``options`` (e.g. ``-c work_mem=...``), rather than applying it to one server
  connection and leaking it to other clients. Settings folded into a DSN's
  ``options`` must therefore be applied with ``SET LOCAL`` instead.
* **Prepared statements.** Protocol-level (named) prepared statements survive
  transaction pooling only with PgBouncer >= 1.21 and ``max_prepared_statements`` > 0
  (see :func:`supports_prepared_statements`). Otherwise connect with psycopg's
  ``prepare_threshold=None`` (:meth:`PgBouncer.connect_kwargs`): unnamed statements,
  which psycopg uses for parameterised queries, are fine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from ..errors import ServerError
from . import system
from .embedded import DATABASE, SUPERUSER, EmbeddedServer
from .pgbouncer_setup import (
    AUTH_TYPES,
    POOL_MODES,
    SSL_MODES,
    AuthType,
    PoolMode,
    check_choice,
    check_int,
    check_token,
    find_pgbouncer,
    ini_text,
    pgbouncer_version,
    supports_prepared_statements,
    userlist_quote,
)

ADMIN_DATABASE = "pgbouncer"  # PgBouncer's admin console (SHOW POOLS, SHOW STATS ...)
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
_START_ATTEMPTS = 3  # a free port may be taken between probing it and PgBouncer binding it


class PgBouncer:
    """One PgBouncer process in front of one upstream PostgreSQL server.

    ``host`` is a TCP host or a Unix socket directory (an absolute path), as in libpq.
    Clients log in as ``user`` (the upstream user) through :meth:`dsn`. Without a
    ``password`` the upstream must trust that user (the embedded server does) and
    PgBouncer trusts its local clients; with one, PgBouncer logs in upstream with it
    and asks clients for it too (``auth_type`` scram-sha-256 by default), so the port
    does not hand the server out to any local user.

    ``workdir`` is where the per-start working directory is created (default: the
    system temp dir); the working directory itself is always fresh and is removed
    by :meth:`stop`.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        dbname: str,
        password: str | None = None,
        pool_mode: PoolMode = "transaction",
        pool_size: int = 20,
        clients: int = 0,
        max_client_conn: int | None = None,
        auth_type: AuthType | None = None,
        sslmode: str | None = None,
        sslrootcert: str | None = None,
        server_lifetime: int = 3600,
        server_idle_timeout: int = 600,
        max_prepared_statements: int = 0,
        workdir: Path | str | None = None,
        binary: Path | str | None = None,
    ) -> None:
        self.host = check_token("host", host)
        self.upstream_port = check_int("port", port, minimum=1, maximum=65535)
        self.user = check_token("user", user)
        self.dbname = check_token("dbname", dbname)
        if dbname == ADMIN_DATABASE:
            raise ValueError(f"dbname {dbname!r} is the name of PgBouncer's admin console")
        if password is not None and (not isinstance(password, str) or "\x00" in password):
            raise ValueError("password must be a string without NUL characters")
        if password is not None and ("\n" in password or "\r" in password):
            raise ValueError("password must not contain line breaks (userlist.txt is by line)")
        self._password = password or None
        self.pool_mode: PoolMode = check_choice(  # type: ignore[assignment]
            "pool_mode", pool_mode, POOL_MODES
        )
        self.pool_size = check_int("pool_size", pool_size, minimum=1)
        self.clients = check_int("clients", clients, minimum=0)
        if max_client_conn is None:
            max_client_conn = max(1000, 2 * self.clients)
        self.max_client_conn = check_int("max_client_conn", max_client_conn, minimum=1)
        if auth_type is None:
            auth_type = "trust" if self._password is None else "scram-sha-256"
        self.auth_type: AuthType = check_choice(  # type: ignore[assignment]
            "auth_type", auth_type, AUTH_TYPES
        )
        if self.auth_type != "trust" and self._password is None:
            raise ValueError(f"auth_type {auth_type!r} needs a password")
        self.sslmode = None if sslmode is None else check_choice("sslmode", sslmode, SSL_MODES)
        self.sslrootcert = None if sslrootcert is None else check_token("sslrootcert", sslrootcert)
        if self.sslmode in ("verify-ca", "verify-full") and self.sslrootcert is None:
            raise ValueError(f"sslmode {sslmode!r} needs sslrootcert (the CA file)")
        self.server_lifetime = check_int("server_lifetime", server_lifetime, minimum=0)
        self.server_idle_timeout = check_int("server_idle_timeout", server_idle_timeout, minimum=0)
        self.max_prepared_statements = check_int(
            "max_prepared_statements", max_prepared_statements, minimum=0
        )
        self._workdir_parent = None if workdir is None else Path(workdir).expanduser().resolve()
        self._binary = None if binary is None else Path(binary)
        self.run_as = system.run_as_user()

        self.version: tuple[int, int, int] | None = None
        self.port: int | None = None
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_dsn(cls, dsn: str, **kwargs: Any) -> PgBouncer:
        """A PgBouncer for the server a libpq DSN points to (password included, if any)."""
        try:
            params = pg_conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise ValueError("the DSN is not a valid connection string") from None
        host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST", ""))
        if not host:
            host = "localhost"
        if "," in host:
            raise ValueError("a DSN with several hosts cannot be put behind one PgBouncer")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        if not port.isdigit():
            raise ValueError(f"the DSN's port {port!r} is not a number")
        user = str(params.get("user") or os.environ.get("PGUSER") or pwd.getpwuid(os.getuid())[0])
        dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or user)
        password = params.get("password") or os.environ.get("PGPASSWORD") or None
        kwargs.setdefault("password", None if password is None else str(password))
        if params.get("sslmode"):
            kwargs.setdefault("sslmode", str(params["sslmode"]))
        if params.get("sslrootcert"):
            kwargs.setdefault("sslrootcert", str(params["sslrootcert"]))
        return cls(host=host, port=int(port), user=user, dbname=dbname, **kwargs)

    @classmethod
    def for_embedded(
        cls, server: EmbeddedServer, *, dbname: str | None = None, **kwargs: Any
    ) -> PgBouncer:
        """A PgBouncer in front of an :class:`EmbeddedServer`, over its Unix socket."""
        return cls(
            host=str(server.socket_dir),
            port=int(server.port),
            user=SUPERUSER,
            dbname=dbname or DATABASE,
            **kwargs,
        )

    def __repr__(self) -> str:  # never shows the password
        state = f"port={self.port}" if self.port is not None else "not started"
        return (
            f"PgBouncer(upstream={self.host}:{self.upstream_port}, user={self.user}, "
            f"dbname={self.dbname}, pool_mode={self.pool_mode}, pool_size={self.pool_size}, "
            f"{state})"
        )

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PgBouncer:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def log_file(self) -> Path | None:
        return None if self.workdir is None else self.workdir / "pgbouncer.log"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, check_upstream: bool = True) -> None:
        """Write the config into a fresh workdir, start PgBouncer, wait until it serves.

        With ``check_upstream`` one ``SELECT 1`` goes through it to the database, so a
        wrong host, user or password fails here, with PgBouncer's log, not mid-run.
        """
        if self.is_running():
            raise ServerError(f"{self!r} is already running")
        binary = self._binary or find_pgbouncer()
        if binary is None:
            raise ServerError(
                "pgbouncer is not installed (not on PATH nor in /usr/sbin). Install it, "
                "e.g. apt-get install pgbouncer, or run without PgBouncer."
            )
        self.version = pgbouncer_version(binary)
        if self.max_prepared_statements and not supports_prepared_statements(self.version):
            raise ServerError(
                f"max_prepared_statements needs PgBouncer >= 1.21; {binary} is "
                f"{'.'.join(map(str, self.version))}. Use max_prepared_statements=0 and "
                "connect with prepare_threshold=None."
            )
        self._make_workdir()
        assert self.workdir is not None
        try:
            self._write_userlist()
            for attempt in range(_START_ATTEMPTS):
                self.port = system.free_port()
                self._write_ini()
                self._spawn(binary)
                try:
                    self._wait_ready()
                    break
                except ServerError:
                    tail = self.log_tail()
                    self._terminate()
                    if "Address already in use" in tail and attempt + 1 < _START_ATTEMPTS:
                        continue
                    raise
            if check_upstream:
                self._check_upstream()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut PgBouncer down (SIGINT, then SIGTERM/SIGKILL after 5 s); remove the workdir."""
        if self._finalizer is not None:
            self._finalizer()  # runs _shutdown once
            self._finalizer = None
        elif self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._proc = None
        self.workdir = None
        self.port = None

    # ------------------------------------------------------------------ connecting

    def dsn(self, dbname: str | None = None) -> str:
        """libpq conninfo for a client connection through PgBouncer.

        Holds the password when PgBouncer asks clients for one: treat it like the DSN
        it came from (``redact_dsn`` before showing it).
        """
        if self.port is None:
            raise ServerError("PgBouncer is not running; call start() first")
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "dbname": dbname or self.dbname,
        }
        if self.auth_type != "trust" and self._password is not None:
            params["password"] = self._password
        return pg_conninfo.make_conninfo("", **params)

    def admin_dsn(self) -> str:
        """conninfo of PgBouncer's admin console (simple query protocol only)."""
        return self.dsn(ADMIN_DATABASE)

    def connect_kwargs(self) -> dict[str, Any]:
        """psycopg.connect() arguments clients need through this PgBouncer."""
        if self.pool_mode == "session" or (
            self.version is not None
            and supports_prepared_statements(self.version)
            and self.max_prepared_statements > 0
        ):
            return {}
        # Named statements would be prepared on one server connection and executed on
        # another: psycopg then fails with "prepared statement _pg3_0 does not exist".
        return {"prepare_threshold": None}

    def show_pools(self) -> list[dict[str, Any]]:
        """``SHOW POOLS``: cl_active, cl_waiting, sv_active, sv_idle, maxwait ... per pool."""
        return self._admin_query("SHOW POOLS")

    def show_stats(self) -> list[dict[str, Any]]:
        """``SHOW STATS``: total_xact_count, avg_wait_time ... per database."""
        return self._admin_query("SHOW STATS")

    def _admin_query(self, query: str) -> list[dict[str, Any]]:
        try:
            with (
                psycopg.connect(
                    self.admin_dsn(), autocommit=True, prepare_threshold=None, connect_timeout=5
                ) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(query)  # no parameters: psycopg sends a simple-protocol Query
                names = [col.name for col in cur.description or ()]
                return [
                    {name: _plain(value) for name, value in zip(names, row, strict=True)}
                    for row in cur.fetchall()
                ]
        except psycopg.Error as exc:
            raise ServerError(
                f"PgBouncer's admin console on port {self.port} refused {query}: "
                f"{str(exc).strip() or type(exc).__name__}"
            ) from None

    # ------------------------------------------------------------------ internals

    def _make_workdir(self) -> None:
        parent = self._workdir_parent or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="pgvbench-pgbouncer-", dir=parent))
        if self.run_as is not None:
            system.ensure_system_user(self.run_as)
            system.grant_traverse(self.workdir)
            self._chown(self.workdir)
        self.workdir.chmod(0o700)

    def _write_userlist(self) -> None:
        assert self.workdir is not None
        path = self.workdir / "userlist.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{userlist_quote(self.user)} {userlist_quote(self._password or '')}\n")
        self._chown(path)

    def _write_ini(self) -> None:
        assert self.workdir is not None and self.port is not None and self.version is not None
        path = self.workdir / "pgbouncer.ini"
        path.write_text(ini_text(self, port=self.port, workdir=self.workdir, version=self.version))
        path.chmod(0o600)
        self._chown(path)

    def _spawn(self, binary: Path) -> None:
        assert self.workdir is not None and self.log_file is not None
        system.raise_nofile_limit(self.max_client_conn + 2 * self.pool_size + 64)
        kwargs = system.as_user_kwargs(self.run_as, self.workdir)
        with open(self.log_file, "ab") as log:
            self._chown(self.log_file)
            # Foreground (no -d): stderr carries PgBouncer's log into the workdir.
            proc = subprocess.Popen(
                [str(binary), str(self.workdir / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.workdir),
                start_new_session=True,  # a Ctrl-C meant for pgvbench is not PgBouncer's
                **kwargs,
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _shutdown, proc, self.workdir)

    def _terminate(self) -> None:
        """Stop the process but keep the workdir (a retry writes a new ini into it)."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:
            _shutdown(self._proc, None)
            self._proc = None

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(
                    f"pgbouncer exited at start (exit {self._proc.returncode}). "
                    f"Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            try:
                with psycopg.connect(
                    self.admin_dsn(), autocommit=True, prepare_threshold=None, connect_timeout=1
                ) as conn:
                    conn.execute("SHOW VERSION")
                return
            except psycopg.Error as exc:
                last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
                time.sleep(0.05)
        raise ServerError(
            f"pgbouncer did not accept connections on 127.0.0.1:{self.port} within "
            f"{START_TIMEOUT_S:.0f} s ({last_error}). Last lines of {self.log_file}:\n"
            f"{self.log_tail()}"
        )

    def _check_upstream(self) -> None:
        try:
            with psycopg.connect(
                self.dsn(), autocommit=True, prepare_threshold=None, connect_timeout=5
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServerError(
                f"pgbouncer started but cannot reach database {self.dbname!r} on "
                f"{self.host}:{self.upstream_port} as {self.user!r}: {reason}. "
                f"Last lines of {self.log_file}:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 15) -> str:
        return system.log_tail(self.log_file, lines)

    def _chown(self, path: Path) -> None:
        system.chown(path, self.run_as)


def _plain(value: Any) -> Any:
    """Admin-console counters arrive as numeric (Decimal): make them JSON-friendly."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _shutdown(proc: subprocess.Popen[bytes], workdir: Path | None) -> None:
    """SIGINT (PgBouncer's safe shutdown), then SIGTERM, then SIGKILL; remove workdir."""
    try:
        for sig, grace in (
            (signal.SIGINT, STOP_GRACE_S),
            (signal.SIGTERM, 2.0),
            (signal.SIGKILL, 5.0),
        ):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
