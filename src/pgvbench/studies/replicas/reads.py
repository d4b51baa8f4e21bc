"""Read throughput per number of standbys read from: the primary alone, the first 1..N
standbys with client i on standby i mod n, and libpq's load_balance_hosts=random over
all N; short windows, every arm once per round in a random order (mirrored rounds), so
the ratio to the primary-only arm is paired by round."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import psutil
import psycopg

from ...analysis.interleave import LATER_WINDOW_WARMUP_S, schedule
from ...analysis.paired import paired_ratio
from ...engine.histogram import LatencyHistogram
from ...engine.operations import Operation
from ...engine.outcome import EngineOutcome
from ...engine.spread import ByServer, SpreadProvider
from ...engine.threaded import LoadShape, run_load
from ...errors import RunFailed
from ...instrument.cpu import ServerCpuProbe
from ...server.cluster import balanced_dsn
from ...server.connection import parse_dsn
from .records import PRIMARY, ReadArm, ReadWindow

FIRST_WINDOW_WARMUP_S = 1.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Servers:
    """The cluster as the study reads it: the primary and the standbys (DSN, name)."""

    primary: str
    standbys: tuple[str, ...]
    names: tuple[str, ...]

    def address(self, index: int) -> tuple[str, str]:
        params = parse_dsn(self.standbys[index])
        return str(params.get("host") or ""), str(params.get("port") or "5432")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArmPlan:
    label: str
    replicas: int
    routing: str
    servers: tuple[str, ...]  # names, in ByServer kind order
    client_dsns: tuple[str, ...]  # one per client
    addresses: tuple[tuple[str, str], ...] = ()  # load_balance: each server's (host, port)

    def server_of(self, provider: SpreadProvider) -> Callable[[int], int]:
        """Which of ``servers`` client c reads from."""
        if self.routing != "load_balance":
            count = len(self.servers)
            return lambda client: client % count
        known: dict[int, int] = {}

        def find(client: int) -> int:
            if client not in known:
                address = provider.address(client)
                known[client] = self.addresses.index(address) if address in self.addresses else -1
            return known[client]

        return find


def plan_arms(servers: Servers, *, clients: int, load_balance: bool) -> list[ArmPlan]:
    """Primary only, 1..N standbys (per client), and libpq's random choice over N >= 2."""
    arms = [
        ArmPlan(
            label="primary only",
            replicas=0,
            routing=PRIMARY,
            servers=(PRIMARY,),
            client_dsns=(servers.primary,) * clients,
        )
    ]
    for n in range(1, len(servers.standbys) + 1):
        arms.append(
            ArmPlan(
                label=f"{n} standby" if n == 1 else f"{n} standbys",
                replicas=n,
                routing="per_client",
                servers=servers.names[:n],
                client_dsns=tuple(servers.standbys[c % n] for c in range(clients)),
            )
        )
    n = len(servers.standbys)
    if load_balance and n >= 2:
        arms.append(
            ArmPlan(
                label=f"{n} standbys, libpq random",
                replicas=n,
                routing="load_balance",
                servers=servers.names,
                client_dsns=(balanced_dsn(servers.standbys),) * clients,
                addresses=tuple(servers.address(i) for i in range(n)),
            )
        )
    return arms


def read_window(
    plan: ArmPlan,
    operation: Operation,
    *,
    clients: int,
    warmup_s: float,
    duration_s: float,
    seed: int,
    cpu: ServerCpuProbe | None,
    round_no: int = 0,
) -> tuple[ReadWindow, LatencyHistogram, EngineOutcome]:
    """One closed-loop window of ``plan``'s clients; its record, histogram and outcome."""
    provider = SpreadProvider(plan.client_dsns[:clients], operation)
    by_server = ByServer(
        operation, servers=plan.servers, clients=clients, server_of=plan.server_of(provider)
    )
    outcome = run_load(
        by_server,
        provider,
        LoadShape(clients=clients, warmup_s=warmup_s, duration_s=duration_s, seed=seed),
        probe_dsn=plan.client_dsns[0],
        server_cpu=cpu,
    )
    if outcome.aborted:
        raise RunFailed(f"reads on {plan.label} stopped: {outcome.aborted}")
    summary = outcome.latency.summary()
    window = ReadWindow(
        round=round_no,
        operations=outcome.operations,
        errors=outcome.errors,
        duration_s=outcome.duration_s,
        p99_ms=summary.p99 if summary else None,
        per_server={
            name: stats.operations for name, stats in outcome.per_kind.items() if stats.operations
        },
        server_cpu_cores=outcome.server_cpu_cores,
        host_busy_cores=outcome.host.busy_cores if outcome.host else None,
    )
    return window, outcome.latency, outcome


def measure_reads(
    servers: Servers,
    operation: Operation,
    *,
    clients: int,
    window_s: float,
    rounds: int,
    load_balance: bool,
    seed: int,
    cpu: ServerCpuProbe | None,
    on_window: Callable[[int, int, str], None] | None = None,
) -> list[ReadArm]:
    """Every arm ``rounds`` times, interleaved; arms in plan order."""
    plans = plan_arms(servers, clients=clients, load_balance=load_balance)
    order = schedule(list(range(len(plans))), rounds, seed=seed, mirrored=True)
    windows: list[list[ReadWindow]] = [[] for _ in plans]
    hists = [LatencyHistogram() for _ in plans]
    total = rounds * len(plans)
    done = 0
    for round_no, arms in enumerate(order):
        for index in arms:
            plan = plans[index]
            if on_window is not None:
                on_window(done, total, plan.label)
            window, hist, _ = read_window(
                plan,
                operation,
                clients=clients,
                warmup_s=FIRST_WINDOW_WARMUP_S if round_no == 0 else LATER_WINDOW_WARMUP_S,
                duration_s=window_s,
                seed=seed + round_no,
                cpu=cpu,
                round_no=round_no,
            )
            windows[index].append(window)
            hists[index].merge(hist)
            done += 1
    base = [w.qps for w in windows[0]]
    out = []
    for plan, arm_windows, hist in zip(plans, windows, hists, strict=True):
        ratio = None
        if plan.replicas and any(w.qps > 0 for w in arm_windows) and any(q > 0 for q in base):
            ratio = paired_ratio(base, [w.qps for w in arm_windows])
        out.append(
            ReadArm(
                label=plan.label,
                replicas=plan.replicas,
                routing=plan.routing,
                servers=plan.servers,
                windows=tuple(arm_windows),
                latency=hist.summary(),
                qps_ratio=ratio,
            )
        )
    return out


class ClusterCpuProbe(ServerCpuProbe):
    """CPU seconds of several postmasters and their backends (a primary and its standbys
    on this host)."""

    def __init__(self, postmaster_pids: Sequence[int]) -> None:
        self.probes = [ServerCpuProbe(pid) for pid in postmaster_pids]

    def seconds(self) -> float | None:
        total = 0.0
        for probe in self.probes:
            value = probe.seconds()
            if value is None:
                return None
            total += value
        return total


def postmaster_of(dsn: str) -> int | None:
    """The postmaster pid of the server at ``dsn`` when it runs on this host (the parent of
    this session's backend), else None."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return psutil.Process(int(row[0])).ppid() if row else None
    except (psycopg.Error, psutil.Error):
        return None
