"""Hot standbys of the embedded server on PostgreSQL's own streaming replication.

``[server] replicas = N`` gives the embedded primary N standbys made with the wheel's
``pg_basebackup -R`` (standby.signal and primary_conninfo written for us), each with
its own physical replication slot (the primary keeps the WAL a standby still needs),
its own free port and its own data directory beside the primary's::

    <data dir>-replicas/            created and marked by pgvbench
        replica1/                   a data directory (marker rewritten after the copy)
        replica1.pgvbench-claim     written before pg_basebackup starts: a copy killed
                                    half-way is still provably pgvbench's

The standbys belong to the run that started them: they start after the primary has its
settings, and stop before it, on success, error and Ctrl-C alike (the caller's
``finally``); even ``--keep-server`` keeps only the primary. A run killed outright
(SIGKILL) leaves them running: the next run on that data directory holds its run lock,
so anything it finds there is stale, and :meth:`ReplicaSet.clean_leftovers` stops it,
drops its slots and removes its directories. Only what carries pgvbench's mark is
touched.

Also here: what the primary says about its standbys (``pg_stat_replication``), for the
embedded standbys and for a real cluster's alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg

from ..errors import SafetyError, ServerError
from . import ownership, system
from .connection import connect
from .embedded import ADMIN_OPTIONS, OWNER_FILE, SUPERUSER, EmbeddedServer
from .ownership import DirState

MAX_REPLICAS = 8  # as spec/settings.py's: [server] replicas = 0..8
SLOT_PREFIX = "pgvbench_replica"
CLAIM_SUFFIX = ".pgvbench-claim"
STREAM_TIMEOUT_S = 60.0
DROP_SLOT_TIMEOUT_S = 10.0
_POLL_S = 0.05


def replica_root(primary_data_dir: Path) -> Path:
    """Where the standbys of the primary in ``primary_data_dir`` live."""
    return primary_data_dir.with_name(primary_data_dir.name + "-replicas")


def _stderr(message: str) -> None:
    print(f"pgvbench: {message}", file=sys.stderr)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StandbyState:
    """One row of the primary's pg_stat_replication (lags None when it reports none:
    an idle, caught-up standby, or a role without pg_read_all_stats)."""

    name: str  # the slot's name, else the standby's application_name
    state: str | None  # "streaming", "catchup", ...; None: the slot has no walsender
    lag_bytes: int | None  # WAL the primary has that the standby has not replayed
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None


_STATES_SQL = """
SELECT coalesce(s.slot_name, r.application_name),
       r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::int8,
       extract(epoch FROM r.write_lag)::float8,
       extract(epoch FROM r.flush_lag)::float8,
       extract(epoch FROM r.replay_lag)::float8
FROM pg_stat_replication r
FULL JOIN (SELECT slot_name, active_pid FROM pg_replication_slots
           WHERE slot_type = 'physical' AND slot_name = ANY(%s)) s ON s.active_pid = r.pid
ORDER BY 1
"""


def replication_states(
    conn: psycopg.Connection[Any], slots: Sequence[str] = ()
) -> list[StandbyState]:
    """What the primary on ``conn`` says about each standby streaming from it, and about
    each of ``slots`` (a slot without a walsender: state None)."""
    rows = conn.execute(_STATES_SQL, (list(slots),)).fetchall()
    return [
        StandbyState(
            name=str(row[0]),
            state=None if row[1] is None else str(row[1]),
            lag_bytes=None if row[2] is None else max(0, int(row[2])),
            write_lag_s=_float(row[3]),
            flush_lag_s=_float(row[4]),
            replay_lag_s=_float(row[5]),
        )
        for row in rows
    ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class ReplicaSet:
    """The standbys of one embedded primary for the length of a run."""

    def __init__(
        self,
        primary: EmbeddedServer,
        *,
        count: int,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if not 0 <= count <= MAX_REPLICAS:
            raise ValueError(f"replicas must be 0..{MAX_REPLICAS}, got {count}")
        self.primary = primary
        self.count = count
        self.root = replica_root(primary.data_dir)
        self.notify = notify or _stderr
        self.standbys: list[EmbeddedServer] = []
        self._lock_dir = primary.run_lock.path.parent

    # ------------------------------------------------------------------ names

    @staticmethod
    def name(index: int) -> str:
        return f"replica{index}"

    @staticmethod
    def slot(index: int) -> str:
        return f"{SLOT_PREFIX}{index}"

    @property
    def slots(self) -> list[str]:
        return [self.slot(i) for i in range(1, len(self.standbys) + 1)]

    @property
    def running(self) -> bool:
        return bool(self.standbys)

    def dsns(self) -> tuple[str, ...]:
        """One DSN per standby (Unix socket), in order."""
        return tuple(standby.dsn() for standby in self.standbys)

    # ------------------------------------------------------------------ start

    def start(
        self,
        *,
        timeout_s: float = STREAM_TIMEOUT_S,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """Make and start the standbys, then wait until each streams from the primary.

        Any failure or interrupt (``on_step`` is told each step, and may raise) stops and
        removes what this call made before the error propagates.
        """
        if self.standbys or self.count == 0:
            return
        step = on_step or (lambda _: None)
        self.clean_leftovers()
        try:
            self._make_root()
            for index in range(1, self.count + 1):
                step(f"pg_basebackup {self.name(index)}")
                standby = self._copy(index)
                step(f"start {self.name(index)}")
                standby.start_standby()
                step(f"started {self.name(index)}")
            step("wait for streaming")
            self.wait_streaming(timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        ports = ", ".join(f"{self.name(i + 1)} :{s.port}" for i, s in enumerate(self.standbys))
        self.notify(f"{len(self.standbys)} hot standby(s) streaming ({ports})")

    def _make_root(self) -> None:
        found = ownership.inspect(self.root)
        if found.state is DirState.MISSING:
            self.root.mkdir()  # beside the primary's data directory, which exists
            ownership.write_marker(self.root)
        elif found.state is not DirState.OWNED:
            raise ownership.refuse(found, action="put standbys in")
        # pgvbench's own; the server's user (as root: another user) only passes through to
        # the data directories, which are its own and 0700
        self.root.chmod(0o711)

    def _copy(self, index: int) -> EmbeddedServer:
        """pg_basebackup into a new directory; the standby, not started yet."""
        name, slot = self.name(index), self.slot(index)
        data_dir = self.root / name
        found = ownership.inspect(data_dir)
        if found.state is not DirState.MISSING:
            raise ownership.refuse(found, action="create a standby in")
        _claim(self.root / (name + CLAIM_SUFFIX))
        data_dir.mkdir(mode=0o700)
        system.chown(data_dir, self.primary.run_as)
        standby = EmbeddedServer(data_dir=data_dir, lock_dir=self._lock_dir, notify=self.notify)
        self.standbys.append(standby)  # from here on stop() removes it
        primary = self.primary
        source = (
            f"host={primary.socket_dir} port={primary.port} user={SUPERUSER} "
            f"application_name={name}"  # not "pgvbench...": that names pgvbench sessions
        )
        cmd = [
            str(primary.bin_dir / "pg_basebackup"),
            "-D",
            str(data_dir),
            "-d",
            source,
            "-R",  # standby.signal + primary_conninfo / primary_slot_name
            "-X",
            "stream",
            "-C",  # create the slot: WAL is kept for the standby from the copy's start on
            "-S",
            slot,
            "-c",
            "fast",
            "--no-sync",  # a benchmark's throwaway copy: no fsync of every file
        ]
        result = system.run_quiet(cmd, user=primary.run_as, home=data_dir)
        if result.returncode != 0:
            raise ServerError(
                f"pg_basebackup could not copy the embedded server for standby {name} "
                f"(exit {result.returncode}): {result.stdout.strip()[-600:]}"
            )
        # Its first start fsyncs every file of the copy (--no-sync left them to it): one
        # syncfs() of the file system instead takes ~0.1 s, not seconds (Linux only)
        if sys.platform.startswith("linux"):
            with open(data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                conf.write("recovery_init_sync_method = 'syncfs'\n")
        # the copy holds the primary's own files: its mark, its owner, its log
        ownership.write_marker(data_dir)
        (data_dir / OWNER_FILE).unlink(missing_ok=True)
        log = data_dir / "log" / "server.log"
        if log.exists():
            log.write_text("")
        return standby

    # ------------------------------------------------------------------ health

    def states(self) -> list[StandbyState]:
        with self._primary_admin() as conn:
            return replication_states(conn, self.slots)

    def wait_streaming(self, *, timeout_s: float = STREAM_TIMEOUT_S) -> None:
        """Until every standby's walsender reports "streaming"."""
        deadline = time.monotonic() + timeout_s
        slots = set(self.slots)
        with self._primary_admin() as conn:
            while True:
                states = {s.name: s.state for s in replication_states(conn, self.slots)}
                waiting = sorted(slot for slot in slots if states.get(slot) != "streaming")
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    index = self.slots.index(waiting[0])
                    standby = self.standbys[index]
                    raise ServerError(
                        f"standby {self.name(index + 1)} did not start streaming from the "
                        f"embedded server within {timeout_s:g} s (state "
                        f"{states.get(waiting[0]) or 'not connected'}). Last lines of "
                        f"{standby.log_file}:\n{standby.log_tail()}"
                    )
                time.sleep(_POLL_S)

    def wait_caught_up(self, *, timeout_s: float = STREAM_TIMEOUT_S) -> float:
        """Until every standby has replayed the primary's WAL as of this call; returns
        the seconds waited."""
        started = time.monotonic()
        with self._primary_admin() as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            target = str(row[0])
            while True:
                behind = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s "
                    "ON s.active_pid = r.pid WHERE s.slot_name = ANY(%s) "
                    "AND (r.replay_lsn IS NULL OR r.replay_lsn < %s::pg_lsn)",
                    (self.slots, target),
                ).fetchone()
                if behind is not None and int(behind[0]) == 0:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout_s:
                    raise ServerError(
                        f"the standbys did not replay the primary's WAL up to {target} "
                        f"within {timeout_s:g} s"
                    )
                time.sleep(_POLL_S)

    def _primary_admin(self) -> psycopg.Connection[Any]:
        return connect(self.primary.dsn(), options=ADMIN_OPTIONS)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop every standby this set started, drop its slot, remove its directory."""
        standbys, self.standbys = self.standbys, []
        for standby in reversed(standbys):
            _halt(standby, self.notify)
        self._drop_slots([self.slot(i) for i in range(1, len(standbys) + 1)])
        for standby in standbys:
            _remove(standby.data_dir, self.notify)
        self._remove_root()

    def clean_leftovers(self) -> None:
        """Stop and remove standbys a killed run left (the caller holds the run lock:
        nothing there is in use), and drop the primary's inactive pgvbench slots."""
        if self.standbys:
            return
        found = ownership.inspect(self.root)
        stale: list[str] = []
        if found.state is DirState.OWNED:
            for entry in sorted(self.root.iterdir()):
                if not entry.is_dir() or entry.is_symlink():
                    continue
                claim = self.root / (entry.name + CLAIM_SUFFIX)
                if ownership.inspect(entry).state is not DirState.OWNED and not claim.exists():
                    continue  # not provably ours: left as it is
                standby = EmbeddedServer(
                    data_dir=entry, lock_dir=self._lock_dir, notify=self.notify
                )
                _halt(standby, self.notify)
                _remove(entry, self.notify)
                stale.append(entry.name)
            for claim in self.root.glob("*" + CLAIM_SUFFIX):  # interrupted before its mkdir
                if not claim.with_name(claim.name.removesuffix(CLAIM_SUFFIX)).exists():
                    claim.unlink(missing_ok=True)
        dropped = self._drop_slots(None)
        if stale or dropped:
            self.notify(
                "a pgvbench run that ended without stopping them left standbys of this "
                f"server: stopped and removed {', '.join(stale) or 'none'}; dropped their "
                f"replication slots ({', '.join(dropped) or 'none'})"
            )
        self._remove_root()

    def _drop_slots(self, slots: list[str] | None) -> list[str]:
        """Drop these slots (None: every inactive slot named like pgvbench's) on the
        primary, waiting a moment for a stopping walsender to let go."""
        if not self.primary.is_running() or slots == []:
            return []  # no standby: nothing to connect for (the primary may be recovering)
        dropped: list[str] = []
        deadline = time.monotonic() + DROP_SLOT_TIMEOUT_S
        with self._primary_admin() as conn:
            while True:
                rows = conn.execute(
                    "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = "
                    "'physical' AND starts_with(slot_name, %s) AND (%s::text[] IS NULL OR "
                    "slot_name = ANY(%s))",
                    (SLOT_PREFIX, slots, slots),
                ).fetchall()
                for name, active in rows:
                    if not active:
                        with contextlib.suppress(psycopg.errors.ObjectInUse):
                            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                            dropped.append(str(name))
                left = [str(name) for name, active in rows if active]
                if not left or slots is None or time.monotonic() > deadline:
                    if left and slots is not None:
                        self.notify(
                            f"replication slot(s) {', '.join(left)} still in use; not dropped "
                            "(the primary keeps WAL for them: drop them with "
                            "pg_drop_replication_slot)"
                        )
                    return dropped
                time.sleep(_POLL_S)

    def _remove_root(self) -> None:
        """The standbys' root, once it holds nothing but its own mark."""
        if ownership.inspect(self.root).state is not DirState.OWNED:
            return
        if [p.name for p in self.root.iterdir()] == [ownership.MARKER]:
            (self.root / ownership.MARKER).unlink()
            with contextlib.suppress(OSError):
                self.root.rmdir()


def _claim(path: Path) -> None:
    body = {
        "created_by": "pgvbench",
        "pid": os.getpid(),
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "note": "pgvbench is making a standby in the directory of this name and may delete it",
    }
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")


def _halt(standby: EmbeddedServer, notify: Callable[[str], None]) -> None:
    """Stop a standby: pg_ctl (fast), else its processes themselves (found by their
    working directory, which PostgreSQL sets to the data directory)."""
    with contextlib.suppress(ServerError):
        standby.stop()
    processes = _processes_of(standby)
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if processes:
        psutil.wait_procs(processes, timeout=5)
        notify(f"standby {standby.data_dir.name} did not stop in time; its processes were ended")


def _processes_of(standby: EmbeddedServer) -> list[psutil.Process]:
    data_dir = str(standby.data_dir)
    binary = os.path.realpath(standby.bin_dir / "postgres")
    found = []
    for proc in psutil.process_iter(["exe", "cwd"]):
        with contextlib.suppress(psutil.Error):
            if proc.info.get("cwd") == data_dir and proc.info.get("exe") == binary:
                found.append(proc)
    return found


def _remove(data_dir: Path, notify: Callable[[str], None]) -> None:
    """Remove a standby's directory: only one pgvbench marked or claimed."""
    claim = data_dir.with_name(data_dir.name + CLAIM_SUFFIX)
    found = ownership.inspect(data_dir)
    if found.state in (DirState.OWNED, DirState.MISSING) or claim.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        claim.unlink(missing_ok=True)
        return
    notify(str(SafetyError(f"{data_dir} is not pgvbench's; left as it is")))
