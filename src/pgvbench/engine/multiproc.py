"""One load point driven by several worker processes (``[load] processes = N``).

One Python process runs its clients' Python code under one GIL: about one core of
client work (docs/design.md, "The engine's ceiling"). Against a server that answers
faster than that, the clients are spread over N worker processes, each running the
threaded engine (engine/threaded.py) for its share of the clients.

- Start: workers come from a forkserver (spawn where there is none), never a plain fork
  of this threaded process. Each opens its connections, says it is ready and waits; the
  parent then sends one start time on the shared monotonic clock, so every worker's
  warm-up and measured window are the same wall interval.
- Merge: counts are summed and histograms merged (HDR counts, exact: never an average of
  percentiles). Client CPU is the workers' sum; the server's CPU and the host load are
  read by the parent at the window's edges. The per-second series sums operations; its
  p99 is the largest worker's p99 of that second (an upper bound: per-second histograms
  do not cross the process boundary).
- Stop: an error in a worker (an exception, or the process dying) stops the others and
  is raised here; Ctrl-C or any exception here tells every worker to stop, waits briefly,
  then terminates and finally kills what is left. A worker whose parent disappears stops
  itself.
- Open loop: the rate (and ``max_inflight``) is split across workers in proportion to
  their clients, each with its own arrival seed.
"""

from __future__ import annotations

import _thread
import contextlib
import dataclasses
import math
import multiprocessing
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

import psycopg
from psycopg import conninfo

from ..errors import RunFailed
from ..instrument.cpu import ServerCpuProbe
from ..instrument.host import CpuReading, host_load, read_cpu
from ..server.connection import tag_dsn
from .concurrent import merge_concurrent, pack_outcome, unpack_outcome
from .operations import SESSION, ConnStyle, Operation
from .outcome import EngineOutcome
from .providers import ConnectionProvider, ConnectPerOpProvider, DirectProvider, ServerUnreachable
from .threaded import CONNECT_GRACE_S, DRAIN_LIMIT_S, LoadShape, run_load

_clock = time.perf_counter_ns  # CLOCK_MONOTONIC: one clock for every process on the host
READY_TIMEOUT_S = 60.0  # a worker's start: interpreter, imports, its connections
START_LEAD_S = 0.1  # between "start at t0" going out and t0
STOP_GRACE_S = 5.0  # a stopped worker closes its connections within this
POLL_S = 0.2
SEQ_SPAN = 1_000_000_000  # LoadShape.first_seq of consecutive load points differ by this


@dataclasses.dataclass(frozen=True, kw_only=True)
class Connect:
    """How a worker reaches the server: picklable (a provider holds live connections)."""

    dsn: str
    style: ConnStyle = SESSION
    per_operation: bool = False  # connect_per_op: a new connection for every operation

    def provider(self, operation: Operation) -> ConnectionProvider:
        if self.per_operation:
            return ConnectPerOpProvider(self.dsn, operation, self.style)
        return DirectProvider(self.dsn, operation, self.style)


def _worker_dsn(dsn: str, worker: int) -> str:
    """The run's session name plus ``/load-<worker>``: pg_stat_activity tells the workers
    apart, and they still count as this run's own sessions (server/connection.py)."""
    tagged = tag_dsn(dsn)
    try:
        params = conninfo.conninfo_to_dict(tagged)
    except psycopg.ProgrammingError:
        return dsn  # unparsable here: the connection attempt reports it
    params["application_name"] = f"{params.get('application_name')}/load-{worker}"
    return conninfo.make_conninfo("", **params)


def connect_like(provider: ConnectionProvider) -> Connect:
    """The Connect that gives each worker what ``provider`` gives one process.

    A psycopg pool is one process's pool: the spec parser refuses it with processes > 1.
    """
    if isinstance(provider, ConnectPerOpProvider):
        return Connect(dsn=provider.dsn, style=provider.style, per_operation=True)
    if isinstance(provider, DirectProvider):
        return Connect(dsn=provider.dsn, style=provider.style)
    raise ValueError(f"{type(provider).__name__} cannot be split over worker processes")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerReport:
    """One worker's share of a load point."""

    index: int
    pid: int
    clients: int
    t0_ns: int  # the start time it was given
    started_ns: int  # when it actually began (clock read after waiting for t0)
    finished_ns: int  # when its engine returned
    outcome: EngineOutcome

    @property
    def window_ns(self) -> tuple[int, int]:
        """Its measured window on the shared clock (warm-up excluded)."""
        start = self.t0_ns + int(self.outcome.warmup_s * 1e9)
        return start, start + int(self.outcome.duration_s * 1e9)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessesOutcome:
    merged: EngineOutcome
    workers: tuple[WorkerReport, ...]


def split_shape(shape: LoadShape, processes: int) -> list[LoadShape]:
    """Each worker's shape: clients as even as can be (no worker without a client), the
    open-loop rate and in-flight cap in proportion, disjoint sequence numbers, own seed."""
    n = max(1, min(processes, shape.clients))
    span = SEQ_SPAN // n
    shapes = []
    for w in range(n):
        clients = shape.clients // n + (1 if w < shape.clients % n else 0)
        share = clients / shape.clients
        shapes.append(
            dataclasses.replace(
                shape,
                clients=clients,
                rate=shape.rate * share,
                max_inflight=math.ceil(shape.max_inflight * share) if shape.max_inflight else 0,
                seed=shape.seed + w,
                first_seq=shape.first_seq + w * span,
            )
        )
    return shapes


def run_load_processes(
    operation: Operation,
    connect: Connect,
    shape: LoadShape,
    *,
    processes: int,
    probe_dsn: str,
    server_cpu: ServerCpuProbe | None = None,
    on_second: Callable[[int, int], None] | None = None,
) -> ProcessesOutcome:
    """``run_load`` with the clients spread over ``processes`` worker processes.

    Raises ServerUnreachable when a worker could not connect (as run_load does), and
    RunFailed when a worker failed otherwise or died.
    """
    try:
        pickle.dumps(operation)
    except Exception as exc:  # closures, open handles: say so before any process starts
        raise TypeError(
            f"operation {operation.name!r} cannot be sent to a worker process ({exc})"
        ) from None
    shapes = split_shape(shape, processes)
    context = _context()
    progress = context.Array("q", len(shapes), lock=False)
    workers: list[tuple[Any, Connection]] = []

    def worker_connect(w: int) -> Connect:
        return dataclasses.replace(connect, dsn=_worker_dsn(connect.dsn, w))

    try:
        for w, part in enumerate(shapes):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_worker,
                args=(w, operation, worker_connect(w), part, probe_dsn, theirs, progress),
                name=f"pgvbench-load-{w}",
                daemon=True,
            )
            process.start()
            theirs.close()
            workers.append((process, mine))
        return _coordinate(workers, shapes, progress, server_cpu, on_second)
    finally:
        _stop_all(workers)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # the server imports the engine once; each worker is then a fork of it (~ms, not ~1 s)
    context.set_forkserver_preload([__name__])
    return context


def _coordinate(
    workers: list[tuple[Any, Connection]],
    shapes: list[LoadShape],
    progress: Any,
    server_cpu: ServerCpuProbe | None,
    on_second: Callable[[int, int], None] | None,
) -> ProcessesOutcome:
    pipes = [pipe for _, pipe in workers]
    ready: set[int] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(ready) < len(workers):
        pending = [w for w in range(len(workers)) if w not in ready]
        for w, message in _receive(workers, pending, deadline, "to connect"):
            if message[0] != "ready":
                _raise(w, message)
            ready.add(w)
    t0 = _clock() + int(START_LEAD_S * 1e9)
    for pipe in pipes:
        pipe.send(("start", t0))
    shape = shapes[0]
    edges = (t0 + int(shape.warmup_s * 1e9), t0 + int((shape.warmup_s + shape.duration_s) * 1e9))
    host: list[CpuReading] = []
    server: list[float | None] = []
    reports: dict[int, tuple[Any, ...]] = {}
    drain = DRAIN_LIMIT_S if shape.mode == "open" else 0.0
    deadline = time.monotonic() + (edges[1] - _clock()) / 1e9 + drain + CONNECT_GRACE_S + 30
    last_tick = t0
    while len(reports) < len(workers):
        now = _clock()
        while len(host) < 2 and now >= edges[len(host)]:
            host.append(read_cpu())
            server.append(server_cpu.seconds() if server_cpu is not None else None)
        if on_second is not None and now - last_tick >= 1e9 and now > t0:
            last_tick = now
            on_second(int((now - t0) / 1e9), sum(progress))
        wake = edges[len(host)] if len(host) < 2 else now + int(POLL_S * 1e9)
        pending = [w for w in range(len(workers)) if w not in reports]
        timeout = max(0.001, (wake - now) / 1e9)
        for w, message in _receive(workers, pending, deadline, "to finish", timeout):
            if message[0] != "done":
                _raise(w, message)
            reports[w] = message
    while len(host) < 2:  # the last result came in before the end edge was read
        host.append(read_cpu())
        server.append(server_cpu.seconds() if server_cpu is not None else None)
    return _merged(workers, shapes, reports, host, server)


def _receive(
    workers: list[tuple[Any, Connection]],
    pending: list[int],
    deadline: float,
    doing: str,
    timeout: float = POLL_S,
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """Messages of the ``pending`` workers within ``timeout``; a worker that died or the
    deadline raises."""
    if time.monotonic() > deadline:
        raise RunFailed(f"load worker processes took too long {doing}; they were stopped")
    pipes = {id(workers[w][1]): w for w in pending}
    for pipe in wait([workers[w][1] for w in pending], timeout=min(timeout, POLL_S)):
        assert isinstance(pipe, Connection)
        w = pipes[id(pipe)]
        try:
            yield w, pipe.recv()
        except EOFError:
            code = workers[w][0].exitcode
            raise RunFailed(
                f"load worker {w} ended without a result (exit code {code}); the others "
                "were stopped"
            ) from None


def _raise(w: int, message: tuple[Any, ...]) -> None:
    kind, text = message[1], message[2]
    if kind == "ServerUnreachable":
        raise ServerUnreachable(text)
    raise RunFailed(f"load worker {w} failed: {kind}: {text}")


def _stop_all(workers: list[tuple[Any, Connection]]) -> None:
    """Ask, wait, terminate, kill: no worker outlives its load point."""
    for _, pipe in workers:
        with contextlib.suppress(OSError, ValueError):
            pipe.send(("stop",))
    deadline = time.monotonic() + STOP_GRACE_S
    for process, _ in workers:
        process.join(max(0.0, deadline - time.monotonic()))
    for step in ("terminate", "kill"):
        for process, _ in workers:
            if process.is_alive():
                getattr(process, step)()
        for process, _ in workers:
            process.join(2.0)
    for process, pipe in workers:
        pipe.close()
        with contextlib.suppress(ValueError):
            process.close()


# ---------------------------------------------------------------------- merging


def _merged(
    workers: list[tuple[Any, Connection]],
    shapes: list[LoadShape],
    reports: dict[int, tuple[Any, ...]],
    host: list[CpuReading],
    server: list[float | None],
) -> ProcessesOutcome:
    parts = []
    for w, (process, _) in enumerate(workers):
        _, started, finished, t0, packed = reports[w]
        parts.append(
            WorkerReport(
                index=w,
                pid=int(process.pid),
                clients=shapes[w].clients,
                t0_ns=t0,
                started_ns=started,
                finished_ns=finished,
                outcome=unpack_outcome(packed),
            )
        )
    merged = merge_concurrent([p.outcome for p in parts])
    wall = host[1].at - host[0].at
    s0, s1 = server
    if s0 is not None and s1 is not None and wall > 0:
        merged.server_cpu_cores = (s1 - s0) / wall
    merged.host = host_load(
        host[0], host[1], client_cores=merged.client_cpu_cores, server_cores=merged.server_cpu_cores
    )
    return ProcessesOutcome(merged=merged, workers=tuple(parts))


# ---------------------------------------------------------------------- the worker


def _worker(
    index: int,
    operation: Operation,
    connect: Connect,
    shape: LoadShape,
    probe_dsn: str,
    pipe: Connection,
    progress: Any,
) -> None:
    """One worker process: its clients through run_load, started at the parent's t0.

    Only the parent decides when to stop: a terminal's Ctrl-C reaches the whole process
    group, so SIGINT is ignored here unless the parent asked to stop (or vanished).
    """
    stopping = threading.Event()
    started = threading.Event()
    done = threading.Event()  # the result is out: a stop now only ends the process
    t0 = [0]

    def on_signal(signum: int, frame: object) -> None:
        if done.is_set():
            return
        if stopping.is_set() or signum == signal.SIGTERM:
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def listen() -> None:
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the parent is gone
                message = ("stop",)
            if message[0] == "start":
                t0[0] = message[1]
                started.set()
                continue
            if not done.is_set():
                stopping.set()
                _thread.interrupt_main()
            return

    def start_at() -> int:
        pipe.send(("ready",))
        while not started.wait(POLL_S):
            pass
        delay = (t0[0] - _clock()) / 1e9
        if delay > 0:
            time.sleep(delay)
        began[0] = _clock()
        return t0[0]

    def tick(elapsed: int, ops: int) -> None:
        progress[index] = ops

    began = [0]
    threading.Thread(target=listen, name="pgvbench-load-control", daemon=True).start()
    try:
        outcome = run_load(
            operation,
            connect.provider(operation),
            shape,
            probe_dsn=probe_dsn,
            on_second=tick,
            start_at=start_at,
        )
        finished = _clock()
        done.set()
        with contextlib.suppress(OSError):
            pipe.send(("done", began[0], finished, t0[0], pack_outcome(outcome)))
    except KeyboardInterrupt:
        return  # stopped by the parent: it is no longer waiting for a result
    except BaseException as exc:
        done.set()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        with contextlib.suppress(OSError):
            pipe.send(("error", type(exc).__name__, text[:300]))
