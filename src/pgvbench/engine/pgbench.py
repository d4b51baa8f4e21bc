"""pgbench as a reference load engine: same measured window and histograms as ours.

pgbench is the yardstick users trust, so a load point can be re-run with it and the two
engines compared. pgbench writes one log line per transaction; we rebuild the same
window (warm-up excluded), HDR histograms and per-second series from those lines
rather than trusting its summary, which covers the whole run including warm-up.

Behaviour of pgbench 18 this module relies on (checked against 18.6):

* ``-T`` takes whole seconds only, so the run is rounded up and the window cut from logs.
* Only serialization/deadlock errors count as "failed transactions"; any other SQL
  error (e.g. a statement timeout) aborts that client, pgbench exits 2 and prints
  "client N script S aborted in command C query Q: ERROR: ..." on stderr. An aborted
  client is reported as one error and in ``EngineOutcome.aborted``.
* Exit 1 means pgbench could not start (bad option, script error, connection refused).
* With ``-R`` the log's ``time`` column runs from the scheduled start (lag included)
  and a 7th column holds the schedule lag; all times are microseconds.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg import conninfo as pg_conninfo

from ..errors import RunFailed
from ..instrument.cpu import ServerCpuProbe
from ..instrument.host import host_load, read_cpu
from .histogram import LatencyHistogram
from .outcome import EngineOutcome, per_second_series

TIMEOUT_GRACE_S = 60
# pgbench may stop a few ms after its timer starts its clients; a window ending exactly
# at -T would lose the last transactions, so the run gets at least this much slack.
END_MARGIN_S = 0.1
STDERR_TAIL_LINES = 15
STDOUT_TAIL_LINES = 20
# pgvector's distance operators; anything else would be pasted into SQL unchecked.
OPERATORS = frozenset({"<->", "<#>", "<=>", "<+>", "<~>", "<%>"})
# Words pgbench writes in place of a transaction's time, mapped to negative codes so
# the whole log parses as integers.
_FAILED, _SKIPPED = -1, -2
_LOG_WORDS = {
    b"failed": _FAILED,
    b"serialization": _FAILED,
    b"deadlock": _FAILED,
    b"skipped": _SKIPPED,
}
_TPS_RE = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
_ABORT_RE = re.compile(r"client \d+ (?:script \d+ )?aborted[^:]*: (.*)")


@dataclasses.dataclass(frozen=True)
class PgbenchRun:
    """One pgbench load point: our measurements plus what pgbench itself said."""

    outcome: EngineOutcome
    tps_reported: float | None  # pgbench's own figure, warm-up included
    command: list[str]  # as run, never holding a password
    stdout_tail: str


@dataclasses.dataclass(frozen=True)
class _Log:
    """Per-transaction columns of all log files (microseconds; negative time = code)."""

    time_us: np.ndarray
    end_us: np.ndarray
    lag_us: np.ndarray | None


def find_pgbench(bin_dir: Path | None) -> Path | None:
    """The wheel's pgbench next to the embedded server, else the one on PATH."""
    if bin_dir is not None:
        candidate = bin_dir / "pgbench"
        return candidate if candidate.is_file() else None
    found = shutil.which("pgbench")
    return Path(found) if found else None


def knn_script(
    *, items_table: str, queries_table: str, n_queries: int, operator: str, k: int
) -> str:
    """A pgbench script running one kNN query for a random stored query vector.

    Table names must already be quoted, qualified identifiers.
    """
    if operator not in OPERATORS:
        raise ValueError(f"unknown distance operator {operator!r}")
    if n_queries < 1 or k < 1:
        raise ValueError("n_queries and k must be at least 1")
    return (
        f"\\set qid random(0, {n_queries - 1})\n"
        f"SELECT id FROM {items_table} ORDER BY embedding {operator} "
        f"(SELECT embedding FROM {queries_table} WHERE id = :qid) LIMIT {k};\n"
    )


def run_pgbench(
    *,
    pgbench: Path,
    conninfo: str,
    script: str,
    clients: int,
    threads: int | None,
    warmup_s: float,
    duration_s: float,
    rate: float | None,
    session_settings: dict[str, str],
    statement_timeout_ms: int,
    workdir: Path,
    prepared: bool = True,
    random_seed: int | None = None,
    server_cpu: ServerCpuProbe | None = None,
) -> PgbenchRun:
    """Run ``script`` under pgbench (closed loop, or open loop at ``rate`` tx/s).

    ``random_seed`` fixes pgbench's random numbers (``random()`` in the script and the
    open-loop Poisson schedule), making runs repeatable; None lets pgbench pick one.
    ``server_cpu`` (the embedded server) adds the server's CPU; the host load is read
    around the whole pgbench run (its log, not our clock, marks the window inside it).
    """
    if clients < 1 or duration_s <= 0 or warmup_s < 0 or (rate is not None and rate <= 0):
        raise ValueError("clients >= 1, duration_s > 0, warmup_s >= 0 and rate > 0 required")
    if not (pgbench.is_file() and os.access(pgbench, os.X_OK)):
        raise RunFailed(f"pgbench not found or not executable at {pgbench}")
    target, password, options = _split_conninfo(conninfo)
    settings = {**session_settings, "statement_timeout": str(statement_timeout_ms)}
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = _write_script(workdir, script)
    jobs = min(threads or os.cpu_count() or 1, clients)  # pgbench wants threads <= clients
    run_s = math.ceil(warmup_s + duration_s + END_MARGIN_S)
    command = [
        str(pgbench), "-n", "-M", "prepared" if prepared else "simple",
        "-c", str(clients), "-j", str(jobs), "-T", str(run_s),
        "-f", str(script_path), "--log", f"--log-prefix={workdir / 'pgbench'}",
        *(["-R", str(float(rate))] if rate is not None else []),
        *([f"--random-seed={random_seed}"] if random_seed is not None else []),
        target,
    ]  # fmt: skip
    env = _child_env(password, _pgoptions(options, settings))
    host0, server0 = read_cpu(), _seconds(server_cpu)
    pid, rc, stdout, stderr, cpu_cores = _execute(command, env, run_s + TIMEOUT_GRACE_S, password)
    host1, server1 = read_cpu(), _seconds(server_cpu)
    wall = host1.at - host0.at
    server_cores = (
        (server1 - server0) / wall if server0 is not None and server1 is not None else None
    )
    if rc != 0 and rc != 2:  # 2 = the run went but clients aborted; partial results follow
        raise RunFailed(
            f"pgbench exited with status {rc}: {_tail(stderr, STDERR_TAIL_LINES) or '(no output)'}"
        )
    log = _read_logs(workdir, pid, open_loop=rate is not None)
    outcome = _outcome(log, warmup_s=warmup_s, duration_s=duration_s, open_loop=rate is not None)
    outcome.client_cpu_cores = cpu_cores
    outcome.server_cpu_cores = server_cores
    outcome.host = host_load(host0, host1, client_cores=cpu_cores, server_cores=server_cores)
    if rc == 2:
        _add_aborts(outcome, stderr)
    tps = _TPS_RE.search(stdout)
    return PgbenchRun(
        outcome=outcome,
        tps_reported=float(tps.group(1)) if tps else None,
        command=command,
        stdout_tail=_tail(stdout, STDOUT_TAIL_LINES),
    )


# ---------------------------------------------------------------------- the child process


def _seconds(probe: ServerCpuProbe | None) -> float | None:
    return probe.seconds() if probe is not None else None


def _split_conninfo(conninfo: str) -> tuple[str, str | None, str | None]:
    """(conninfo without password or options, password, options)."""
    try:
        params = pg_conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        # libpq's message may quote the DSN, password included: do not repeat it
        raise RunFailed("the connection string for pgbench cannot be parsed") from None
    password = params.pop("password", None)
    # conninfo options would override PGOPTIONS wholesale; merge them there instead
    options = params.pop("options", None)
    target = pg_conninfo.make_conninfo("", **{k: str(v) for k, v in params.items()})
    return target, (str(password) if password else None), (str(options) if options else None)


def _pgoptions(existing: str | None, settings: dict[str, str]) -> str:
    # libpq splits PGOPTIONS on spaces; a literal space or backslash is backslash-escaped
    parts = [existing] if existing else []
    for name, value in settings.items():
        escaped = f"{name}={value}".replace("\\", "\\\\").replace(" ", "\\ ")
        parts.append(f"-c {escaped}")
    return " ".join(parts)


def _child_env(password: str | None, pgoptions: str) -> dict[str, str]:
    env = {**os.environ, "PGOPTIONS": pgoptions}
    if password is not None:
        env["PGPASSWORD"] = password  # never on the command line, where ps shows it
    return env


def _write_script(workdir: Path, script: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="pgbench-script-", suffix=".sql", dir=workdir)
    with os.fdopen(fd, "w") as fh:
        fh.write(script)
    return Path(name)


def _execute(
    command: list[str], env: dict[str, str], timeout_s: float, password: str | None
) -> tuple[int, int, str, str, float | None]:
    """Run pgbench; (pid, exit status, stdout, stderr, client CPU cores)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    except OSError as exc:
        raise RunFailed(f"cannot run pgbench at {command[0]}: {exc.strerror}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RunFailed(f"pgbench did not finish within {timeout_s:.0f} s and was killed") from None
    except BaseException:  # e.g. Ctrl-C: do not leave pgbench running
        proc.kill()
        proc.communicate()
        raise
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # RUSAGE_CHILDREN covers every reaped child of this process: pgbench is the only one
    # during a load point, so the delta is its CPU time
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if password:
        stdout, stderr = stdout.replace(password, "***"), stderr.replace(password, "***")
    return proc.pid, proc.returncode, stdout, stderr, (cpu / wall if wall > 0 else None)


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------- the logs


def _read_logs(workdir: Path, pid: int, *, open_loop: bool) -> _Log:
    """All of this run's log files (one per pgbench thread), concatenated."""
    ncols = 7 if open_loop else 6  # client tx time script epoch us [lag]
    files = sorted([*workdir.glob(f"pgbench.{pid}"), *workdir.glob(f"pgbench.{pid}.*")])
    tables = [_parse_log(path, ncols) for path in files]
    data = np.concatenate(tables) if tables else np.empty((0, ncols), dtype=np.int64)
    return _Log(
        time_us=data[:, 2],
        end_us=data[:, 4] * 1_000_000 + data[:, 5],
        lag_us=data[:, 6] if open_loop else None,
    )


def _parse_log(path: Path, ncols: int) -> np.ndarray:
    # np.fromstring over the whole file is ~10x faster than splitting lines in Python
    text = path.read_bytes()
    for word, code in _LOG_WORDS.items():
        text = text.replace(word, str(code).encode())
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if values.size % ncols:
        raise RunFailed(f"{path}: unexpected pgbench log format (expected {ncols} columns)")
    return values.reshape(-1, ncols)


def _outcome(log: _Log, *, warmup_s: float, duration_s: float, open_loop: bool) -> EngineOutcome:
    """The measured window's histograms and counts."""
    ok_all = log.time_us >= 0
    if not ok_all.any():
        failed = int(np.count_nonzero(log.time_us == _FAILED))
        return EngineOutcome(
            latency=LatencyHistogram(),
            operations=0,
            errors=failed,
            duration_s=duration_s,
            warmup_s=warmup_s,
            service=LatencyHistogram() if open_loop else None,
            queue_wait=LatencyHistogram() if open_loop else None,
        )
    # the run starts when its first transaction did (or was scheduled to, in open loop)
    start_us = int((log.end_us[ok_all] - log.time_us[ok_all]).min())
    lo = start_us + round(warmup_s * 1e6)
    in_window = (log.end_us >= lo) & (log.end_us < lo + round(duration_s * 1e6))
    ok = in_window & ok_all
    latency_ns = log.time_us[ok] * 1000
    latency = LatencyHistogram()
    latency.record_many(latency_ns)
    outcome = EngineOutcome(
        latency=latency,
        operations=int(np.count_nonzero(ok)),
        errors=int(np.count_nonzero(in_window & (log.time_us == _FAILED))),
        duration_s=duration_s,
        warmup_s=warmup_s,
        dropped=int(np.count_nonzero(in_window & (log.time_us == _SKIPPED))),
        timeseries=per_second_series((log.end_us[ok] - lo) * 1000, latency_ns, 0, duration_s),
    )
    if outcome.errors:
        # pgbench only lets serialization/deadlock errors fail a transaction (see above)
        outcome.error_messages["failed transaction (serialization or deadlock)"] += outcome.errors
    if log.lag_us is not None:
        lag_us = log.lag_us[ok]
        outcome.service, outcome.queue_wait = LatencyHistogram(), LatencyHistogram()
        outcome.service.record_many((log.time_us[ok] - lag_us) * 1000)
        outcome.queue_wait.record_many(lag_us * 1000)
        outcome.schedule_lag_ms = float(lag_us.mean()) / 1e3 if lag_us.size else None
    return outcome


def _add_aborts(outcome: EngineOutcome, stderr: str) -> None:
    """Record why pgbench exited 2; each aborted client lost one transaction to an error."""
    reasons: collections.Counter[str] = collections.Counter()
    for line in stderr.splitlines():
        match = _ABORT_RE.search(line)
        if match:
            reasons[" ".join(match.group(1).split())[:200]] += 1
    if not reasons:  # exit 2 without a client message: say what pgbench did say
        outcome.aborted = f"pgbench: {_tail(stderr, 3) or 'run aborted'}"
        return
    outcome.errors += reasons.total()
    outcome.error_messages.update(reasons)
    first = next(iter(reasons))
    outcome.aborted = f"pgbench aborted {reasons.total()} client(s): {first}"
