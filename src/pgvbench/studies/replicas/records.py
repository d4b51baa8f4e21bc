"""What the replicas study measures, as typed records with a JSON form (results.json keeps
it under ``agent.replicas``). Readers are lenient (studies/_fields.py): a field an older
or cut-down file lacks reads as a stand-in, so the report shows what the file holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...analysis.paired import PairedRatio
from ...results import Latency
from .._fields import flag, float_or, int_or, objects, opt_float, opt_int, strings, text

PRIMARY = "primary"
ROUTINGS = ("primary", "per_client", "load_balance")


def _counts(data: Mapping[str, Any], key: str) -> dict[str, int]:
    raw = data.get(key)
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): int(v) for k, v in raw.items() if isinstance(v, (int, float))}


def _latency(data: Mapping[str, Any], key: str) -> Latency | None:
    raw = data.get(key)
    if not isinstance(raw, Mapping):
        return None
    fields = [f.name for f in dataclasses.fields(Latency)]
    values = {name: opt_float(raw, name) for name in fields}
    if any(v is None for v in values.values()):
        return None
    return Latency(**{k: float(v) for k, v in values.items() if v is not None})


# --------------------------------------------------------------------------- reads


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadWindow:
    """One timed window of one arm."""

    round: int
    operations: int
    errors: int
    duration_s: float
    p99_ms: float | None
    per_server: dict[str, int]  # operations by the server they ran on
    server_cpu_cores: float | None  # every server of the cluster together (embedded)
    host_busy_cores: float | None

    @property
    def qps(self) -> float:
        return self.operations / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "qps": round(self.qps, 2)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadWindow:
        return cls(
            round=int_or(data, "round", 0),
            operations=int_or(data, "operations", 0),
            errors=int_or(data, "errors", 0),
            duration_s=float_or(data, "duration_s", 0.0),
            p99_ms=opt_float(data, "p99_ms"),
            per_server=_counts(data, "per_server"),
            server_cpu_cores=opt_float(data, "server_cpu_cores"),
            host_busy_cores=opt_float(data, "host_busy_cores"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadArm:
    """Reads from a set of servers: the primary alone, the first n standbys (client i on
    standby i mod n), or libpq's random choice among them per connection."""

    label: str
    replicas: int  # standbys read from; 0 = the primary
    routing: str  # one of ROUTINGS
    servers: tuple[str, ...]
    windows: tuple[ReadWindow, ...]
    latency: Latency | None  # every window's histogram merged
    qps_ratio: PairedRatio | None = None  # over the primary-only arm, paired by round

    @property
    def operations(self) -> int:
        return sum(w.operations for w in self.windows)

    @property
    def errors(self) -> int:
        return sum(w.errors for w in self.windows)

    @property
    def qps(self) -> float:
        seconds = sum(w.duration_s for w in self.windows)
        return self.operations / seconds if seconds > 0 else 0.0

    def server_qps(self) -> dict[str, float]:
        seconds = sum(w.duration_s for w in self.windows)
        totals: dict[str, int] = {}
        for window in self.windows:
            for server, ops in window.per_server.items():
                totals[server] = totals.get(server, 0) + ops
        return {s: ops / seconds for s, ops in totals.items()} if seconds > 0 else {}

    @property
    def server_cpu_cores(self) -> float | None:
        values = [w.server_cpu_cores for w in self.windows if w.server_cpu_cores is not None]
        return sum(values) / len(values) if values else None

    @property
    def qps_per_core(self) -> float | None:
        cores = self.server_cpu_cores
        return self.qps / cores if cores else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "replicas": self.replicas,
            "routing": self.routing,
            "servers": list(self.servers),
            "qps": round(self.qps, 2),
            "server_qps": {k: round(v, 2) for k, v in self.server_qps().items()},
            "server_cpu_cores": self.server_cpu_cores,
            "qps_per_core": self.qps_per_core,
            "latency": dataclasses.asdict(self.latency) if self.latency else None,
            "qps_ratio": self.qps_ratio.to_dict() if self.qps_ratio else None,
            "windows": [w.to_dict() for w in self.windows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadArm:
        ratio = data.get("qps_ratio")
        return cls(
            label=text(data, "label", "?"),
            replicas=int_or(data, "replicas", 0),
            routing=text(data, "routing", PRIMARY),
            servers=tuple(strings(data, "servers")),
            windows=tuple(ReadWindow.from_dict(w) for w in objects(data, "windows")),
            latency=_latency(data, "latency"),
            qps_ratio=PairedRatio.from_dict(dict(ratio)) if isinstance(ratio, Mapping) else None,
        )


# --------------------------------------------------------------------------- lag


@dataclasses.dataclass(frozen=True, kw_only=True)
class LagSample:
    """One pg_stat_replication reading for one standby (t: seconds into the mix)."""

    t: float
    standby: str
    state: str | None
    lag_bytes: int | None
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LagSample:
        state = data.get("state")
        return cls(
            t=float_or(data, "t", 0.0),
            standby=text(data, "standby", "?"),
            state=None if state is None else str(state),
            lag_bytes=opt_int(data, "lag_bytes"),
            write_lag_s=opt_float(data, "write_lag_s"),
            flush_lag_s=opt_float(data, "flush_lag_s"),
            replay_lag_s=opt_float(data, "replay_lag_s"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MixResult:
    """The read/write mix: writes on the primary at a fixed rate, reads on every standby."""

    seconds: float
    write_rate: float  # requested writes per second
    write_operations: int
    write_errors: int
    write_seconds: float
    write_latency: Latency | None
    write_kinds: dict[str, int]  # operations per write kind (memory_write, ...)
    read: ReadArm  # the reads during the mix (one window)
    samples: tuple[LagSample, ...]
    conflicts: dict[str, int]  # standby -> queries cancelled by recovery conflicts
    caught_up_s: float | None  # after the mix: until every standby had replayed it all
    write_dropped: int = 0  # open-loop arrivals dropped: the primary did not keep up
    # the writers' timed window, in the samples' clock (lag is summarised over it: before
    # it pg_stat_replication still shows the last lag of earlier writes)
    window_start_s: float | None = None
    window_end_s: float | None = None

    @property
    def write_qps(self) -> float:
        return self.write_operations / self.write_seconds if self.write_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "write_rate": self.write_rate,
            "write_operations": self.write_operations,
            "write_errors": self.write_errors,
            "write_seconds": self.write_seconds,
            "write_qps": round(self.write_qps, 2),
            "write_latency": dataclasses.asdict(self.write_latency) if self.write_latency else None,
            "write_kinds": dict(self.write_kinds),
            "read": self.read.to_dict(),
            "samples": [s.to_dict() for s in self.samples],
            "conflicts": dict(self.conflicts),
            "caught_up_s": self.caught_up_s,
            "write_dropped": self.write_dropped,
            "window_start_s": self.window_start_s,
            "window_end_s": self.window_end_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixResult:
        read = data.get("read")
        return cls(
            seconds=float_or(data, "seconds", 0.0),
            write_rate=float_or(data, "write_rate", 0.0),
            write_operations=int_or(data, "write_operations", 0),
            write_errors=int_or(data, "write_errors", 0),
            write_seconds=float_or(data, "write_seconds", 0.0),
            write_latency=_latency(data, "write_latency"),
            write_kinds=_counts(data, "write_kinds"),
            read=ReadArm.from_dict(read if isinstance(read, Mapping) else {}),
            samples=tuple(LagSample.from_dict(s) for s in objects(data, "samples")),
            conflicts=_counts(data, "conflicts"),
            caught_up_s=opt_float(data, "caught_up_s"),
            write_dropped=int_or(data, "write_dropped", 0),
            window_start_s=opt_float(data, "window_start_s"),
            window_end_s=opt_float(data, "window_end_s"),
        )

    def in_window(self) -> tuple[LagSample, ...]:
        """The lag samples of the writers' timed window (all of them when it is unknown)."""
        start, end = self.window_start_s, self.window_end_s
        if start is None or end is None:
            return self.samples
        return tuple(s for s in self.samples if start <= s.t <= end)


# --------------------------------------------------------------------------- visibility


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe:
    """One row written on the primary, searched for on a standby ``since_commit_ms`` after
    its commit returned: ``hit`` if the search returned it in its top k, ``replayed`` if
    the standby had replayed the WAL up to the commit by then (``behind_bytes`` short of
    it otherwise); ``later_hit`` is the same search once every standby caught up (an
    HNSW miss, not a visibility one, when it is False too)."""

    standby: str
    delay_ms: float  # the delay asked for
    since_commit_ms: float  # the delay that was (commit returned -> search sent)
    hit: bool
    replayed: bool | None  # None: the standby did not say (an external server's role)
    behind_bytes: int | None
    replay_lag_s: float | None  # the primary's replay_lag for that standby at the moment
    later_hit: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Probe:
        replayed, later = data.get("replayed"), data.get("later_hit")
        return cls(
            standby=text(data, "standby", "?"),
            delay_ms=float_or(data, "delay_ms", 0.0),
            since_commit_ms=float_or(data, "since_commit_ms", 0.0),
            hit=flag(data, "hit"),
            replayed=None if replayed is None else bool(replayed),
            behind_bytes=opt_int(data, "behind_bytes"),
            replay_lag_s=opt_float(data, "replay_lag_s"),
            later_hit=None if later is None else bool(later),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplicasResult:
    standbys: tuple[str, ...]  # names, in order ("replica1", ... or the DSN's hosts)
    source: str  # "embedded" | "external"
    libpq_version: int  # psycopg's libpq (load_balance_hosts needs 160000+)
    load_balance: bool  # the libpq load_balance_hosts=random arm was measured
    cpu_count: int | None  # the host's cores, which an embedded primary and standbys share
    clients: int
    k: int
    arms: tuple[ReadArm, ...] = ()
    mix: MixResult | None = None
    probes: tuple[Probe, ...] = ()
    problem: str | None = None  # set when a part could not be measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "standbys": list(self.standbys),
            "source": self.source,
            "libpq_version": self.libpq_version,
            "load_balance": self.load_balance,
            "cpu_count": self.cpu_count,
            "clients": self.clients,
            "k": self.k,
            "arms": [a.to_dict() for a in self.arms],
            "mix": self.mix.to_dict() if self.mix else None,
            "probes": [p.to_dict() for p in self.probes],
            "problem": self.problem,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplicasResult:
        mix = data.get("mix")
        return cls(
            standbys=tuple(strings(data, "standbys")),
            source=text(data, "source", "embedded"),
            libpq_version=int_or(data, "libpq_version", 0),
            load_balance=flag(data, "load_balance"),
            cpu_count=opt_int(data, "cpu_count"),
            clients=int_or(data, "clients", 0),
            k=int_or(data, "k", 10),
            arms=tuple(ReadArm.from_dict(a) for a in objects(data, "arms")),
            mix=MixResult.from_dict(mix) if isinstance(mix, Mapping) else None,
            probes=tuple(Probe.from_dict(p) for p in objects(data, "probes")),
            problem=None if data.get("problem") is None else str(data["problem"]),
        )
