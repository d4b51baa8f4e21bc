"""The read/write mix: the agent mix's writes on the primary at a fixed rate (open loop),
its reads on every standby (client i on standby i mod N, closed loop), the primary's
pg_stat_replication sampled throughout, and the recall-after-write probes spread over
the window. Then: how long the standbys take to replay the rest, and each probe's search
once more."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ...engine.histogram import LatencyHistogram
from ...engine.outcome import EngineOutcome
from ...engine.spread import SpreadProvider
from ...engine.threaded import LoadShape, run_load
from ...errors import RunFailed
from ...instrument.cpu import ServerCpuProbe
from ...server.replicas import STREAM_TIMEOUT_S, replication_states
from .ops import AgentOps
from .probes import Prober
from .reads import ArmPlan, Servers, read_window
from .records import LagSample, MixResult, Probe, ReadArm, ReadWindow
from .spec import ReplicasSpec

WARMUP_S = 1.0
_CONFLICTS = (
    "SELECT coalesce(sum(confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin "
    "+ confl_deadlock), 0)::int8 FROM pg_stat_database_conflicts WHERE datname = "
    "current_database()"
)


class _Sampler:
    """pg_stat_replication on the primary every ``interval_s``; the latest per standby."""

    def __init__(
        self, primary: str, *, slots: Sequence[str], names: dict[str, str], interval_s: float
    ) -> None:
        self.primary = primary
        self.slots = list(slots)
        self.names = names  # slot or application_name -> standby name
        self.interval_s = interval_s
        self.samples: list[LagSample] = []
        self.latest: dict[str, LagSample] = {}
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.t0 = time.perf_counter()

    def run(self) -> None:
        try:
            with psycopg.connect(self.primary, autocommit=True, connect_timeout=5) as conn:
                while not self.stop.is_set():
                    now = time.perf_counter() - self.t0
                    for state in replication_states(conn, self.slots):
                        name = self.names.get(state.name, state.name)
                        sample = LagSample(
                            t=round(now, 3),
                            standby=name,
                            state=state.state,
                            lag_bytes=state.lag_bytes,
                            write_lag_s=state.write_lag_s,
                            flush_lag_s=state.flush_lag_s,
                            replay_lag_s=state.replay_lag_s,
                        )
                        self.samples.append(sample)
                        self.latest[name] = sample
                    self.stop.wait(self.interval_s)
        except BaseException as exc:  # reported by the caller after the join
            self.error = exc

    def lag_of(self, name: str) -> float | None:
        sample = self.latest.get(name)
        return None if sample is None else sample.replay_lag_s


def caught_up(primary: str, standbys: Sequence[str], timeout_s: float) -> float | None:
    """Seconds until every standby has replayed the primary's WAL as of this call (None:
    not within ``timeout_s``). Asked of the standbys: no privilege on the primary needed."""
    started = time.perf_counter()
    with psycopg.connect(primary, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    for dsn in standbys:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            while True:
                done = conn.execute(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", (row[0],)
                ).fetchone()
                if done is not None and done[0]:
                    break
                if time.perf_counter() - started > timeout_s:
                    return None
                time.sleep(0.05)
    return time.perf_counter() - started


def _conflicts(dsns: Sequence[str]) -> list[int]:
    out = []
    for dsn in dsns:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_CONFLICTS).fetchone()
            out.append(int(row[0]) if row else 0)
    return out


def measure_mix(
    servers: Servers,
    ops: AgentOps,
    spec: ReplicasSpec,
    *,
    slots: Sequence[str],
    seed: int,
    cpu: ServerCpuProbe | None,
) -> tuple[MixResult, list[Probe]]:
    names = {slot: servers.names[i] for i, slot in enumerate(slots)}
    sampler = _Sampler(
        servers.primary, slots=slots, names=names, interval_s=spec.lag_interval_ms / 1000.0
    )
    prober = Prober(
        ops,
        primary=servers.primary,
        standbys=servers.standbys,
        names=servers.names,
        delays_ms=spec.probe_delays_ms,
    )
    before = _conflicts(servers.standbys)
    prober.open()
    writes: dict[str, Any] = {}
    probes: list[tuple[int, list[Probe]]] = []
    failures: list[BaseException] = []
    threads = [threading.Thread(target=sampler.run, name="lag-sampler", daemon=True)]
    if spec.write_rate > 0:
        threads.append(
            threading.Thread(
                target=_write,
                args=(servers.primary, ops, spec, seed, writes, failures),
                name="writer",
                daemon=True,
            )
        )
    if spec.probes:
        threads.append(
            threading.Thread(
                target=_probe_all,
                args=(prober, spec, sampler, probes, failures),
                name="prober",
                daemon=True,
            )
        )
    plan = ArmPlan(
        label=f"{len(servers.standbys)} standbys, under writes",
        replicas=len(servers.standbys),
        routing="per_client",
        servers=servers.names,
        client_dsns=tuple(servers.standbys[c % len(servers.standbys)] for c in range(spec.clients)),
    )
    try:
        started = time.perf_counter()  # the writers' clock starts about now
        for thread in threads:
            thread.start()
        window, hist, _ = read_window(
            plan,
            ops.read,
            clients=spec.clients,
            warmup_s=WARMUP_S,
            duration_s=spec.mix_seconds,
            seed=seed,
            cpu=cpu,
        )
        for thread in threads[1:]:
            thread.join()
        sampler.stop.set()
        threads[0].join(timeout=5)
        for error in (*failures, sampler.error):
            if error is not None:
                raise RunFailed(f"the read/write mix failed: {error}") from error
        settled = caught_up(servers.primary, servers.standbys, STREAM_TIMEOUT_S)
        again = prober.again()
    finally:
        sampler.stop.set()
        prober.close()
    after = _conflicts(servers.standbys)
    written: EngineOutcome | None = writes.get("outcome")
    kinds = written.per_kind if written is not None else {}
    read = _arm(plan, window, hist)
    mix = MixResult(
        seconds=spec.mix_seconds,
        write_rate=spec.write_rate,
        write_operations=written.operations if written else 0,
        write_errors=written.errors if written else 0,
        write_seconds=written.duration_s if written else 0.0,
        write_latency=written.latency.summary() if written else None,
        write_kinds={name: stats.operations for name, stats in kinds.items()},
        read=read,
        samples=tuple(sampler.samples),
        conflicts={n: a - b for n, a, b in zip(servers.names, after, before, strict=True)},
        caught_up_s=settled,
        write_dropped=written.dropped if written else 0,
        window_start_s=round(started - sampler.t0 + WARMUP_S, 3),
        window_end_s=round(started - sampler.t0 + WARMUP_S + spec.mix_seconds, 3),
    )
    results = [
        dataclasses.replace(p, later_hit=again.get(seq)) for seq, batch in probes for p in batch
    ]
    return mix, results


def _arm(plan: ArmPlan, window: ReadWindow, hist: LatencyHistogram) -> ReadArm:
    return ReadArm(
        label=plan.label,
        replicas=plan.replicas,
        routing=plan.routing,
        servers=plan.servers,
        windows=(window,),
        latency=hist.summary(),
    )


def _write(
    primary: str,
    ops: AgentOps,
    spec: ReplicasSpec,
    seed: int,
    out: dict[str, Any],
    failures: list[BaseException],
) -> None:
    """The write mix on the primary, open loop at write_rate, over the readers' window."""
    clients = spec.write_clients
    try:
        outcome = run_load(
            ops.write,
            SpreadProvider((primary,) * clients, ops.write),
            LoadShape(
                clients=clients,
                mode="open",
                rate=spec.write_rate,
                warmup_s=WARMUP_S,
                duration_s=spec.mix_seconds,
                seed=seed,
            ),
            probe_dsn=primary,
        )
        if outcome.aborted:
            raise RunFailed(f"the writes on the primary stopped: {outcome.aborted}")
        out["outcome"] = outcome
    except BaseException as exc:
        failures.append(exc)


def _probe_all(
    prober: Prober,
    spec: ReplicasSpec,
    sampler: _Sampler,
    out: list[tuple[int, list[Probe]]],
    failures: list[BaseException],
) -> None:
    """The probes, evenly spread over the measured window (after the warm-up)."""
    start = time.perf_counter() + WARMUP_S
    gap = spec.mix_seconds / spec.probes
    lag_of: Callable[[str], float | None] = sampler.lag_of
    try:
        for index in range(spec.probes):
            wait = start + index * gap - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            batch = prober.probe(index, lag_of)
            out.append((prober.written[-1][0], batch))
    except BaseException as exc:
        failures.append(exc)
