"""The one error hierarchy of pgvbench.

Every error a user can cause or fix derives from :class:`PgvbenchError`; the CLI
maps the branches to exit codes (see ``exit_code``)::

    PgvbenchError                    exit 2 unless noted
    ├── SpecError                    a workload spec file is invalid (names file + key)
    ├── DatasetError                 a dataset file is missing, unreadable or misshapen
    ├── ResultsError                 a results file is missing, corrupt or of an unknown version
    │   └── IncompatibleResults      two results files measured different things (compare)
    ├── ServerError                  the embedded server cannot be set up / started
    │   ├── ConnectError             a --dsn cannot be reached (fails fast)
    │   └── PrivilegeError           the role lacks a privilege, or the session is read-only
    ├── ExtensionMissingError        the server lacks pgvector (says how to install it)
    ├── SafetyError                  pgvbench refused to touch an object it did not create
    ├── OutputError                  an output directory or file cannot be written (checked first)
    ├── TargetUnreachable            `tune`: no configuration in the space meets the target
    └── RunFailed                    a run started but could not finish (exit 1)
        └── ServerCrashed            the server died mid-run (names the crash, log tail)

    Terminated (a KeyboardInterrupt) SIGTERM/SIGHUP: "terminated (SIGTERM)", exit 143 (HUP: 129)

Messages are written for the person at the terminal: what went wrong, where, and
what to do about it. They never include a password.
"""

from __future__ import annotations


class PgvbenchError(Exception):
    """Root of every error pgvbench raises on purpose."""

    exit_code = 2


class SpecError(PgvbenchError):
    """A workload spec is invalid."""


class DatasetError(PgvbenchError):
    """A dataset cannot be generated or read."""


class ResultsError(PgvbenchError):
    """A results file cannot be read."""


class IncompatibleResults(ResultsError):
    """Two results files cannot be compared: dataset, spec or versions differ."""


class ServerError(PgvbenchError):
    """The PostgreSQL server cannot be prepared."""


class ConnectError(ServerError):
    """The server at a DSN cannot be reached."""


class PrivilegeError(ServerError):
    """The server refuses what a run must do: a missing privilege, a read-only session or
    standby, a schema owned by another role. The message names the GRANT that fixes it."""


class ExtensionMissingError(PgvbenchError):
    """A required extension is not installed on the server."""


class SafetyError(PgvbenchError):
    """pgvbench refused an action that could touch objects it did not create."""


class OutputError(PgvbenchError):
    """An output directory or file cannot be written; found before any work starts."""


class TargetUnreachable(PgvbenchError):
    """No configuration the tuner measured meets the target (the record is still saved):
    the target or the space is the user's to change."""


class RunFailed(PgvbenchError):
    """A run started but did not complete; partial results may have been written."""

    exit_code = 1


class ServerCrashed(RunFailed):
    """The server stopped during a run without pgvbench stopping it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: ends a run the way Ctrl-C does, recorded as a termination."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def name(self) -> str:
        return {1: "SIGHUP", 15: "SIGTERM"}.get(self.signum, f"signal {self.signum}")
