"""The embedded server's data directory: created by pgvbench, initdb'd, marked, configured.

pgvbench creates the directory (and any missing parents) itself, so a failure removes
exactly what it made and nothing that was there before.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import ServerError
from . import ownership, system
from .locations import missing_dirs

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


def create_data_dir(
    data_dir: Path,
    *,
    initdb: Path,
    superuser: str,
    run: Callable[[list[str]], subprocess.CompletedProcess[str]],
    grant_access: Callable[[], None],
) -> None:
    """mkdir, ``grant_access()``, initdb (via ``run``) and the ownership marker; on any
    failure, remove what this call created."""
    created = missing_dirs(data_dir)
    try:
        data_dir.mkdir(parents=True)
    except OSError as exc:
        for parent in created[1:]:
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise ServerError(
            f"cannot create the data directory {data_dir}: "
            f"{exc.strerror or exc} ({exc.filename or data_dir}). Choose a --data-dir "
            "(or PGVBENCH_DATA_DIR) in a writable location."
        ) from None
    try:
        grant_access()
        result = run(
            [
                str(initdb),
                "-D",
                str(data_dir),
                "-U",
                superuser,
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
                f"initdb failed in {data_dir}; pgvbench removed what it had created "
                f"for it ({made}) and nothing else. Check the free space and permissions "
                "there, or choose another --data-dir. initdb said:\n"
                + "\n".join((cause or lines)[-4:])
            )
        ownership.write_marker(data_dir)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        for parent in created[1:]:
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if still empty
        raise


def grant_access(
    data_dir: Path, bin_dir: Path, *, run_as: str | None, notify: Callable[[str], None]
) -> None:
    """As root: let the server's system user reach its data dir and the binaries."""
    if run_as is None:
        return
    system.ensure_system_user(run_as)
    changed: list[str] = []
    for path in (data_dir, bin_dir):
        changed += system.grant_traverse(path)
    if changed:
        notify(
            f"running as root: PostgreSQL runs as the system user {run_as}, so "
            f"pgvbench added search permission for others (o+x, no listing) to "
            f"{', '.join(sorted(set(changed)))}"
        )
    # Only ever a directory pgvbench created (callers checked the marker).
    system.chown(data_dir, run_as)
    data_dir.chmod(0o700)


def write_conf(conf_file: Path, *, port: int, socket_dir: Path, run_as: str | None) -> None:
    """pgvbench.conf (included by postgresql.conf): the port, the socket, instrumentation."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    system.chown(socket_dir, run_as)
    conf_file.write_text(BASE_CONF.format(port=port, socket_dir=socket_dir))
    system.chown(conf_file, run_as)
