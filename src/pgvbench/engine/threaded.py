"""The Python load engine: one thread per client, one process.

Why threads in one process: the hot path is libpq calls through psycopg's C wrapper,
which release the GIL while waiting on the server, with ~10 us of Python per
operation. Measured on 2 cores (quickstart data, HNSW ef_search 40) this matches
pgbench within a few percent at 1-4 clients while using < 0.1 core, so the client
does not take CPU from the server; processes would add IPC and start-up cost, and
asyncio adds per-operation overhead. psycopg_pool, a thread-based pool, also fits the
model as real applications use it. See docs/design.md. Where one process is the limit
(a server faster than its ceiling), ``[load] processes`` runs this engine in several
worker processes that start together (engine/multiproc.py).

Closed loop: each client issues its next operation when the last one ends (plus an
optional think time). Open loop: a dispatcher thread schedules arrivals (Poisson or
constant) at the target rate; a free client takes the next arrival; latency runs
from the *intended* start, so time spent queued behind a stall is counted (no
coordinated omission). Arrivals beyond ``max_inflight`` (queued + running) are
dropped and counted.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import psycopg

from ..instrument.cpu import ServerCpuProbe, client_cpu_seconds
from ..instrument.host import CpuReading, host_load, read_cpu
from ..results import HostLoad
from .histogram import LatencyHistogram
from .operations import Operation
from .outcome import EngineOutcome, KindStats, per_second_series
from .pq import ConnectionLost, OperationFailed
from .providers import ConnectionProvider, ServerUnreachable

_clock = time.perf_counter_ns
WATCHDOG_INTERVAL_S = 1.0
DRAIN_LIMIT_S = 10.0  # open loop: how long queued arrivals of the window may still finish
CONNECT_GRACE_S = 15.0  # how long a client may take to finish its last operation


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadShape:
    clients: int
    mode: str = "closed"  # closed | open
    warmup_s: float = 1.0
    duration_s: float = 5.0
    think_time_ms: float = 0.0
    rate: float = 0.0  # open loop: arrivals per second, all clients together
    arrival: str = "poisson"  # poisson | constant
    max_inflight: int = 0  # open loop: 0 means 10 x clients
    seed: int = 0
    first_seq: int = 0  # sequence numbers start here: inserts stay unique across points

    def __post_init__(self) -> None:
        if self.clients < 1:
            raise ValueError(f"clients must be >= 1, got {self.clients}")
        if self.mode not in ("closed", "open"):
            raise ValueError(f"mode must be closed or open, got {self.mode!r}")
        if self.mode == "open" and self.rate <= 0:
            raise ValueError("open loop needs rate > 0")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration must be > 0 and warm-up >= 0")

    @property
    def inflight_cap(self) -> int:
        return self.max_inflight or 10 * self.clients


@dataclasses.dataclass
class _ClientLog:
    """What one client saw; turned into histograms after the run."""

    intended: list[int] = dataclasses.field(default_factory=list)
    start: list[int] = dataclasses.field(default_factory=list)
    end: list[int] = dataclasses.field(default_factory=list)
    kinds: list[int] = dataclasses.field(default_factory=list)  # which operation of a mix
    errors: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)


class _Run:
    """State shared by the client threads, the dispatcher and the watchdog."""

    def __init__(self, shape: LoadShape) -> None:
        self.shape = shape
        self.stop = threading.Event()
        self.abort_reason: str | None = None
        self.t0 = 0
        self.measure_start = 0
        self.measure_end = 0
        self.jobs: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.inflight = 0
        self.inflight_lock = threading.Lock()
        self.dropped = 0
        self.lags: list[int] = []
        self.trouble = threading.Event()  # a connection was lost: the watchdog checks
        self.aborted_at: int | None = None

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
            self.aborted_at = _clock()
        self.stop.set()


def run_load(
    operation: Operation,
    provider: ConnectionProvider,
    shape: LoadShape,
    *,
    probe_dsn: str,
    server_cpu: ServerCpuProbe | None = None,
    on_second: Callable[[int, int], None] | None = None,
    start_at: Callable[[], int] | None = None,
) -> EngineOutcome:
    """Drive ``operation`` through ``provider`` in the given shape; return the measurements.

    ``probe_dsn`` is used by the watchdog to tell a dead server from failing
    operations: if no new connection can be made, the run is aborted within seconds.
    ``on_second(elapsed_s, ops_so_far)`` is called about once a second (progress).
    ``start_at()``, called once the connections are open, waits for and returns the
    clock time (``time.perf_counter_ns``) the run starts at: worker processes of one
    load point (engine/multiproc.py) start together.
    """
    names = operation.names
    provider.open(shape.clients)
    run = _Run(shape)
    logs = [_ClientLog() for _ in range(shape.clients)]
    target = _closed_client if shape.mode == "closed" else _open_client
    threads = [
        threading.Thread(
            target=target,
            args=(run, i, operation, provider, logs[i]),
            name=f"client-{i}",
            daemon=True,
        )
        for i in range(shape.clients)
    ]
    try:
        run.t0 = start_at() if start_at is not None else _clock()
    except BaseException:
        provider.close()
        raise
    run.measure_start = run.t0 + int(shape.warmup_s * 1e9)
    run.measure_end = run.measure_start + int(shape.duration_s * 1e9)
    for t in threads:
        t.start()
    dispatcher = None
    if shape.mode == "open":
        dispatcher = threading.Thread(target=_dispatch, args=(run,), name="dispatcher", daemon=True)
        dispatcher.start()
    try:
        cpu = _watch(run, probe_dsn, server_cpu, logs, on_second)
    except BaseException:
        run.abort("interrupted")
        raise
    finally:
        run.stop.set()
        for _ in threads:
            run.jobs.put(None)
        for t in threads:
            t.join(timeout=CONNECT_GRACE_S)
        if dispatcher is not None:
            dispatcher.join(timeout=CONNECT_GRACE_S)
        provider.close()
    return _summarise(run, logs, cpu, names)


def _closed_client(
    run: _Run, client: int, operation: Operation, provider: ConnectionProvider, log: _ClientLog
) -> None:
    think_s = run.shape.think_time_ms / 1000.0
    seq = run.shape.first_seq + client
    step = run.shape.clients
    style = provider.style
    start_list, end_list = log.start, log.end
    kinds = log.kinds
    while not run.stop.is_set():
        kind = operation.kind(seq)
        begin = _clock()
        if begin >= run.measure_end:
            break
        try:
            with provider.connection(client) as pgconn:
                operation.execute(pgconn, style, seq)
        except (OperationFailed, ConnectionLost) as exc:
            log.errors.append((_clock(), kind, _describe(exc)))
            if isinstance(exc, ConnectionLost):
                run.trouble.set()
        except ServerUnreachable as exc:
            log.errors.append((_clock(), kind, _describe(exc)))
            run.abort(f"server unreachable: {exc}")
            break
        else:
            end_list.append(_clock())
            start_list.append(begin)
            kinds.append(kind)
        seq += step
        if think_s:
            time.sleep(think_s)


def _open_client(
    run: _Run, client: int, operation: Operation, provider: ConnectionProvider, log: _ClientLog
) -> None:
    style = provider.style
    drain_deadline = None
    while True:
        job = run.jobs.get()
        if job is None:
            return
        intended, seq = job
        kind = operation.kind(seq)
        begin = _clock()
        if run.stop.is_set() and run.abort_reason is not None:
            return
        if begin > run.measure_end + int(DRAIN_LIMIT_S * 1e9):
            drain_deadline = begin
        if drain_deadline is None:
            try:
                with provider.connection(client) as pgconn:
                    operation.execute(pgconn, style, seq)
            except (OperationFailed, ConnectionLost) as exc:
                log.errors.append((_clock(), kind, _describe(exc)))
                if isinstance(exc, ConnectionLost):
                    run.trouble.set()
            except ServerUnreachable as exc:
                log.errors.append((_clock(), kind, _describe(exc)))
                run.abort(f"server unreachable: {exc}")
            else:
                log.end.append(_clock())
                log.start.append(begin)
                log.intended.append(intended)
                log.kinds.append(kind)
        with run.inflight_lock:
            run.inflight -= 1


def _dispatch(run: _Run) -> None:
    """Schedule arrivals from t0 to the end of the window; never catch up by bursting
    faster than the schedule, never skip: lateness is recorded as schedule lag."""
    shape = run.shape
    rng = np.random.default_rng(shape.seed)
    mean_gap_ns = 1e9 / shape.rate
    cap = shape.inflight_cap
    intended = float(run.t0)
    seq = shape.first_seq
    while not run.stop.is_set():
        gap = rng.exponential(mean_gap_ns) if shape.arrival == "poisson" else mean_gap_ns
        intended += gap
        at = int(intended)
        if at >= run.measure_end:
            break
        delay = (at - _clock()) / 1e9
        if delay > 0:
            time.sleep(delay)
        now = _clock()
        in_window = at >= run.measure_start
        with run.inflight_lock:
            full = run.inflight >= cap
            if not full:
                run.inflight += 1
        if full:
            if in_window:
                run.dropped += 1
            continue
        run.jobs.put((at, seq))
        if in_window:
            run.lags.append(now - at)
        seq += 1


def _watch(
    run: _Run,
    probe_dsn: str,
    server_cpu: ServerCpuProbe | None,
    logs: list[_ClientLog],
    on_second: Callable[[int, int], None] | None,
) -> tuple[float | None, float | None, HostLoad | None]:
    """Sample CPU at the window's edges, report progress, abort if the server is gone."""
    client_cpu = [0.0, 0.0]
    server = [0.0, 0.0]
    host: list[CpuReading | None] = [None, None]
    have_server = server_cpu is not None
    edges = [run.measure_start, run.measure_end]
    edge = 0
    last_tick = run.t0
    end_of_run = run.measure_end + (int(DRAIN_LIMIT_S * 1e9) if run.shape.mode == "open" else 0)
    while not run.stop.is_set():
        now = _clock()
        while edge < 2 and now >= edges[edge]:
            client_cpu[edge] = client_cpu_seconds()
            host[edge] = read_cpu()
            if server_cpu is not None:
                reading = server_cpu.seconds()
                have_server = have_server and reading is not None
                server[edge] = reading or 0.0
            edge += 1
        if edge == 2 and (run.shape.mode == "closed" or _drained(run) or now >= end_of_run):
            break
        if run.trouble.is_set():
            run.trouble.clear()
            if not _server_reachable(probe_dsn):
                run.abort("server unreachable: a new connection could not be made")
                break
        if on_second is not None and now - last_tick >= 1e9:
            last_tick = now
            on_second(int((now - run.t0) / 1e9), sum(len(log.end) for log in logs))
        next_edge = edges[edge] if edge < 2 else now + int(WATCHDOG_INTERVAL_S * 1e9)
        time.sleep(max(0.001, min(WATCHDOG_INTERVAL_S, (next_edge - now) / 1e9)))
    if edge < 2:
        return None, None, None
    window = run.shape.duration_s
    client = (client_cpu[1] - client_cpu[0]) / window
    server_cores = (server[1] - server[0]) / window if have_server else None
    assert host[0] is not None and host[1] is not None
    return (
        client,
        server_cores,
        host_load(host[0], host[1], client_cores=client, server_cores=server_cores),
    )


def _drained(run: _Run) -> bool:
    with run.inflight_lock:
        return run.inflight == 0


def _server_reachable(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _summarise(
    run: _Run,
    logs: list[_ClientLog],
    cpu: tuple[float | None, float | None, HostLoad | None],
    names: tuple[str, ...],
) -> EngineOutcome:
    ms, me = run.measure_start, run.measure_end
    if run.aborted_at is not None:
        me = max(ms, min(me, run.aborted_at))  # only the time actually measured
    duration_s = (me - ms) / 1e9
    open_loop = run.shape.mode == "open"
    total = LatencyHistogram()
    service = LatencyHistogram() if open_loop else None
    waits = LatencyHistogram() if open_loop else None
    ends: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    completed = 0
    per_kind = {name: KindStats() for name in names}
    for log in logs:
        start = np.asarray(log.start, dtype=np.int64)
        end = np.asarray(log.end, dtype=np.int64)
        kinds = np.asarray(log.kinds, dtype=np.int64)
        done = (end >= ms) & (end < me)
        completed += int(np.count_nonzero(done))
        if open_loop:
            intended = np.asarray(log.intended, dtype=np.int64)
            keep = (intended >= ms) & (intended < me)  # arrivals of the window, even if late
            latency = end[keep] - intended[keep]
            assert service is not None and waits is not None
            client_service, client_wait = LatencyHistogram(), LatencyHistogram()
            client_service.record_many(end[keep] - start[keep])
            client_wait.record_many(start[keep] - intended[keep])
            service.merge(client_service)
            waits.merge(client_wait)
        else:
            keep = (end >= ms) & (end < me)
            latency = end[keep] - start[keep]
        client_hist = LatencyHistogram()  # per client, then merged: never mixed percentiles
        client_hist.record_many(latency)
        total.merge(client_hist)
        if len(names) > 1:
            kept_kinds = kinds[keep]
            done_kinds = kinds[done]
            for index, name in enumerate(names):
                stats = per_kind[name]
                stats.latency.record_many(latency[kept_kinds == index])
                stats.operations += int(np.count_nonzero(done_kinds == index))
        ends.append(end[keep])
        lats.append(latency)
    errors: collections.Counter[str] = collections.Counter()
    for log in logs:
        for at, kind, message in log.errors:
            if ms <= at < me:
                errors[message] += 1
                if len(names) > 1:
                    per_kind[names[kind]].errors += 1
    if len(names) == 1:
        per_kind[names[0]] = KindStats(
            latency=total, operations=completed, errors=sum(errors.values())
        )
    all_end = np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)
    all_lat = np.concatenate(lats) if lats else np.empty(0, dtype=np.int64)
    return EngineOutcome(
        latency=total,
        operations=completed,
        errors=sum(errors.values()),
        duration_s=duration_s,
        warmup_s=run.shape.warmup_s,
        service=service,
        queue_wait=waits,
        dropped=run.dropped,
        error_messages=errors,
        timeseries=per_second_series(all_end, all_lat, ms, duration_s),
        schedule_lag_ms=(float(np.mean(run.lags)) / 1e6 if run.lags else None)
        if open_loop
        else None,
        client_cpu_cores=cpu[0],
        server_cpu_cores=cpu[1],
        per_kind=per_kind,
        aborted=run.abort_reason,
        host=cpu[2],
    )
