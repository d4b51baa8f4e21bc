"""The [replicas] table: how reads on the hot standbys ([server] replicas) are measured.

Three parts, in this order: read throughput per number of standbys read from
(interleaved windows), then the read/write mix (writes on the primary at a fixed rate,
reads spread over every standby, the primary's pg_stat_replication sampled), and during
that mix the recall-after-write probes (a row written on the primary, searched for on a
standby right after).
"""

from __future__ import annotations

import dataclasses

from ...errors import SpecError
from ...spec.table import Table
from ..base import SpecContext

KEYS = [
    "clients",
    "window_seconds",
    "rounds",
    "load_balance",
    "mix_seconds",
    "write_rate",
    "write_clients",
    "lag_interval_ms",
    "probes",
    "probe_delays_ms",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplicasSpec:
    replicas: int  # [server] replicas: the standbys measured (1..8)
    clients: int = 4  # read clients in every arm and in the mix
    window_seconds: float = 2.0  # one timed window per arm per round
    rounds: int = 4  # interleaved rounds over the arms
    load_balance: bool = True  # also an arm with libpq's load_balance_hosts=random
    mix_seconds: float = 20.0  # the read/write mix
    write_rate: float = 200.0  # write operations per second on the primary (open loop)
    write_clients: int = 2
    lag_interval_ms: float = 250.0  # pg_stat_replication sampling period
    probes: int = 100  # rows written then searched on a standby, spread over the mix
    probe_delays_ms: tuple[float, ...] = (0.0, 10.0, 100.0)  # after the commit returns


def parse(table: Table, ctx: SpecContext) -> ReplicasSpec:
    t = table
    t.only(KEYS)
    replicas = ctx.server.replicas if ctx.server is not None else 0
    if replicas < 1:
        raise SpecError(
            f"{ctx.where}: [replicas] measures reads on hot standbys, but [server] replicas "
            "is not set; add `replicas = 2` under [server] (the embedded server then starts "
            "2 standbys; with --dsn, list the primary and 2 standbys in its hosts)"
        )
    if len(ctx.indexes) == 1 and ctx.indexes[0].kind != "hnsw":
        raise SpecError(
            f"{ctx.where}: [replicas] searches memories through an HNSW index, but the "
            f'[[index]] is {ctx.indexes[0].label}; set kind = "hnsw" in [[index]]'
        )
    mix = t.number("mix_seconds", default=20.0, minimum=1.0, maximum=86400.0)
    probes = t.integer("probes", default=100, minimum=0, maximum=100_000)
    delays = _delays(t)
    if probes and max(delays) / 1000.0 * probes > mix:
        t.fail(
            "probes",
            f"= {probes} probes of up to {max(delays):g} ms each do not fit in mix_seconds = "
            f"{mix:g}; use fewer probes, shorter probe_delays_ms or a longer mix",
        )
    return ReplicasSpec(
        replicas=replicas,
        clients=t.integer("clients", default=4, minimum=1, maximum=1000),
        window_seconds=t.number("window_seconds", default=2.0, minimum=0.2, maximum=3600.0),
        rounds=t.integer("rounds", default=4, minimum=1, maximum=100),
        load_balance=_boolean(t, "load_balance", default=True),
        mix_seconds=mix,
        write_rate=t.number("write_rate", default=200.0, minimum=0.0, maximum=1e6),
        write_clients=t.integer("write_clients", default=2, minimum=1, maximum=1000),
        lag_interval_ms=t.number("lag_interval_ms", default=250.0, minimum=10.0, maximum=60_000),
        probes=probes,
        probe_delays_ms=delays,
    )


def _delays(t: Table) -> tuple[float, ...]:
    value = t.data.get("probe_delays_ms", [0, 10, 100])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    ok = (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 60_000
            for v in value
        )
    )
    if not ok:
        t.fail(
            "probe_delays_ms",
            f"= {value!r} must be a non-empty list of milliseconds 0..60000 (how long after "
            "the write's commit the standby is searched), e.g. [0, 10, 100]",
        )
    return tuple(sorted({float(v) for v in value}))


def _boolean(t: Table, key: str, *, default: bool) -> bool:
    value = t.data.get(key, default)
    if not isinstance(value, bool):
        t.fail(key, f"= {value!r} must be true or false")
    return bool(value)
