"""The replicas study's measurement: reads per number of standbys, then the read/write mix
with its lag samples and recall-after-write probes. Returns typed records only."""

from __future__ import annotations

import dataclasses
import os

from psycopg import pq

from ...errors import RunFailed
from ...server.cluster import load_balancing_supported
from ...server.connection import connect, parse_dsn
from ...server.replicas import SLOT_PREFIX, STREAM_TIMEOUT_S, ReplicaSet
from ..base import StudyContext
from .mix import caught_up, measure_mix
from .ops import build_ops, vector_oid
from .reads import ClusterCpuProbe, Servers, measure_reads, postmaster_of
from .records import ReplicasResult
from .spec import ReplicasSpec

# a standby replays the load and the index build before reads are timed on it
CATCH_UP_TIMEOUT_S = max(STREAM_TIMEOUT_S, 600.0)


def cluster_of(ctx: StudyContext) -> tuple[Servers, list[str], str]:
    """The servers to read from, the primary's slots for them (embedded) and the source."""
    target = ctx.target
    if not target.replicas:
        raise RunFailed(
            "[replicas] found no standbys to read from: the embedded server starts them "
            "with [server] replicas = N; with --dsn, list the primary and its standbys "
            "in the DSN's hosts"
        )
    embedded = target.kind == "embedded"
    count = len(target.replicas)
    if embedded:
        names = tuple(ReplicaSet.name(i) for i in range(1, count + 1))
        slots = [f"{SLOT_PREFIX}{i}" for i in range(1, count + 1)]
    else:
        names = tuple(_host_name(dsn) for dsn in target.replicas)
        slots = []
    servers = Servers(primary=target.dsn, standbys=target.replicas, names=names)
    return servers, slots, "embedded" if embedded else "external"


def _host_name(dsn: str) -> str:
    params = parse_dsn(dsn)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}"


def measure_replicas(ctx: StudyContext, spec: ReplicasSpec) -> ReplicasResult:
    dataset, agents = ctx.agent_data, ctx.spec.agents
    if dataset is None or agents is None or agents.data is None:
        raise RunFailed("[replicas] needs the generated agent platform ([agents] data)")
    experiment = ctx.spec
    servers, slots, source = cluster_of(ctx)
    with connect(servers.primary) as conn:
        oid = vector_oid(conn, schema=experiment.schema, prefix=experiment.name)
    ops = build_ops(experiment, dataset, metric=agents.data.metric, vector_oid=oid)
    cpu = None
    if source == "embedded":  # every server on this host: their CPU is measurable
        pids = [postmaster_of(dsn) for dsn in (servers.primary, *servers.standbys)]
        if all(pid is not None for pid in pids):
            cpu = ClusterCpuProbe([pid for pid in pids if pid is not None])
    result = ReplicasResult(
        standbys=servers.names,
        source=source,
        libpq_version=pq.version(),
        load_balance=False,
        cpu_count=os.cpu_count(),
        clients=spec.clients,
        k=ops.k,
    )
    with ctx.reporter.task("standbys replay the load and the index build"):
        if caught_up(servers.primary, servers.standbys, CATCH_UP_TIMEOUT_S) is None:
            raise RunFailed(
                f"the standbys had not replayed the primary's WAL after {CATCH_UP_TIMEOUT_S:g} s"
            )
    balance = spec.load_balance and load_balancing_supported() and len(servers.standbys) >= 2
    arms_total = (len(servers.standbys) + 1 + int(balance)) * spec.rounds
    with ctx.reporter.task("reads per number of standbys", total=arms_total) as task:

        def shown(done: int, total: int, label: str) -> None:
            task.update(completed=done, description=f"reads: {label}")

        arms = measure_reads(
            servers,
            ops.read,
            clients=spec.clients,
            window_s=spec.window_seconds,
            rounds=spec.rounds,
            load_balance=balance,
            seed=experiment.seed,
            cpu=cpu,
            on_window=shown,
        )
    result = dataclasses.replace(result, arms=tuple(arms), load_balance=balance)
    if ctx.save_partial is not None:
        ctx.save_partial(result)
    with ctx.reporter.task(
        f"read/write mix for {spec.mix_seconds:g} s ({spec.write_rate:g} writes/s, "
        f"{spec.probes} recall-after-write probes)"
    ):
        mix, probes = measure_mix(servers, ops, spec, slots=slots, seed=experiment.seed, cpu=cpu)
    return dataclasses.replace(result, mix=mix, probes=tuple(probes))
