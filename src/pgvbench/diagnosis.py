"""What really went wrong: the root cause behind the error a run saw.

A server crash shows up as a broken connection, a refused reconnect or the crash watch's
interrupt; a privilege missing mid-run as a raw SQL error. These functions turn such
symptoms into the error that names the cause (ServerCrashed, PrivilegeError, RunFailed),
which the runner records in results.json and the CLI prints. They never touch the
database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from ._records import ResultsRecorder
from .engine.pq import ConnectionLost
from .engine.providers import ServerUnreachable
from .errors import ConnectError, PgvbenchError, RunFailed, ServerCrashed
from .progress import Reporter
from .server import cgroup
from .server.embedded import EmbeddedServer
from .server.preflight import refusal_error
from .server.watchdog import PostmasterWatch


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _lost_connection(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.QueryCanceled):
            return False  # a timeout, not a lost server
        # The load engine talks libpq directly: its own lost-connection errors count too.
        if isinstance(seen, ConnectError | psycopg.OperationalError):
            return True
        if isinstance(seen, ConnectionLost | ServerUnreachable):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _server_gone(server: EmbeddedServer, watch: PostmasterWatch, patience: float) -> bool:
    deadline = time.monotonic() + patience
    while True:
        if watch.crash is not None or not server.is_running():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def external_diagnosis(
    runner: ResultsRecorder,
) -> Callable[[BaseException], BaseException | None]:
    """A privilege refused mid-run names its GRANT (exit 2); a connection lost once the run
    had begun is a server fault (exit 1), not the 'cannot connect' of a bad DSN (exit 2)."""

    def diagnose(exc: BaseException) -> BaseException | None:
        refusal = refusal_error(exc)
        if refusal is not None:
            return refusal
        if runner.saved and _lost_connection(exc) and not isinstance(exc, RunFailed):
            return RunFailed(
                f"the connection to the server was lost during the run ({first_line(exc)}); "
                f"the points measured before were kept in {runner.results_path}. The server "
                "may have restarted, failed over or been shut down: see its log."
            )
        return None

    return diagnose


def crash_diagnosis(
    server: EmbeddedServer, watch: PostmasterWatch, runner: ResultsRecorder, reporter: Reporter
) -> Callable[[BaseException], BaseException | None]:
    """Turns the errors a server crash causes (a broken connection, the watch's interrupt,
    a refused reconnect) into the crash itself, named with the server log's last lines."""

    external = external_diagnosis(runner)

    def diagnose(exc: BaseException) -> BaseException | None:
        return crash(exc) or external(exc)

    def crash(exc: BaseException) -> BaseException | None:
        if isinstance(exc, PgvbenchError) and not isinstance(exc, ConnectError | RunFailed):
            return None  # already the diagnosis (a refused setting, a failed restart, ...)
        if isinstance(exc, ServerCrashed):
            return None
        oom = cgroup.oom_failure(server.data_dir, server.limits)  # [server] memory_limit
        if oom is not None and not isinstance(exc, KeyboardInterrupt):
            return RunFailed(f"{oom} The error the run saw: {first_line(exc)}")
        if watch.crash is None:
            if isinstance(exc, KeyboardInterrupt) or server.expected_down:
                return None  # the user's Ctrl-C or SIGTERM, or a restart pgvbench made
            # A dying postmaster closes its sockets before it is gone from the process
            # table: a lost connection waits a moment for the verdict, other errors do not.
            patience = 3.0 if _lost_connection(exc) else 0.0
            if not _server_gone(server, watch, patience):
                return None
        crash = watch.crash
        watch.stop()  # one failure at a time: no late interrupt during the clean-up
        pid = crash.postmaster_pid if crash is not None else server.postmaster_pid()
        which = f"postmaster pid {pid}" if pid else "its postmaster is gone"
        during = f" during '{reporter.active[-1]}'" if reporter.active else ""
        tail = server.log_tail(8)
        killed = (
            ""
            if "shutting down" in tail or "terminated by signal" in tail
            else (
                " The log has no shutdown message: the postmaster was killed (e.g. SIGKILL or "
                "the out-of-memory killer)."
            )
        )
        where = (
            f"; the points measured before were kept in {runner.results_path}"
            if runner.saved
            else ""
        )
        return ServerCrashed(
            f"the embedded PostgreSQL server stopped during the run without pgvbench "
            f"stopping it ({which}){during}{where}.{killed} Last lines of "
            f"{server.log_file}:\n{tail}"
        )

    return diagnose
