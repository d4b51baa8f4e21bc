"""What any load engine (python threads, pgbench) hands back for one load point."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from ..instrument.host import merge_host_loads
from ..results import HostLoad, OperationStats, Sample, TimeSlice
from .histogram import LatencyHistogram


@dataclasses.dataclass
class KindStats:
    """One kind of operation within a mix: its own histogram and counts."""

    latency: LatencyHistogram = dataclasses.field(default_factory=LatencyHistogram)
    operations: int = 0
    errors: int = 0


@dataclasses.dataclass
class EngineOutcome:
    """Measurements of one measured window, warm-up excluded.

    ``latency`` is what a user of the system saw: in open loop it runs from each
    operation's intended start, so queueing behind a stall is counted (no coordinated
    omission). ``service`` (real start -> end) and ``queue_wait`` (intended -> real start)
    split it in open loop and are None in closed loop.
    """

    latency: LatencyHistogram
    operations: int
    errors: int
    duration_s: float
    warmup_s: float
    service: LatencyHistogram | None = None
    queue_wait: LatencyHistogram | None = None
    dropped: int = 0
    error_messages: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )
    timeseries: list[TimeSlice] = dataclasses.field(default_factory=list)
    schedule_lag_ms: float | None = None
    client_cpu_cores: float | None = None
    server_cpu_cores: float | None = None
    aborted: str | None = None  # why the engine stopped early (e.g. server unreachable)
    per_kind: dict[str, KindStats] = dataclasses.field(default_factory=dict)
    host: HostLoad | None = None  # what the host was doing around the window

    @property
    def qps(self) -> float:
        return self.operations / self.duration_s if self.duration_s > 0 else 0.0


def per_second_series(
    end_ns: np.ndarray, latency_ns: np.ndarray, start_ns: int, duration_s: float
) -> list[TimeSlice]:
    """Operations completed and their p99 per second of the measured window."""
    seconds = int(np.ceil(duration_s))
    if seconds <= 0:
        return []
    bucket = ((end_ns - start_ns) // 1_000_000_000).astype(np.int64)
    keep = (bucket >= 0) & (bucket < seconds)
    bucket, lat = bucket[keep], latency_ns[keep]
    order = np.argsort(bucket, kind="stable")
    bucket, lat = bucket[order], lat[order]
    edges = np.searchsorted(bucket, np.arange(seconds + 1))
    series: list[TimeSlice] = []
    for t in range(seconds):
        chunk = lat[edges[t] : edges[t + 1]]
        p99 = float(np.percentile(chunk, 99)) / 1e6 if chunk.size else None
        series.append(TimeSlice(t=t, ops=int(chunk.size), p99_ms=p99))
    return series


def merge_outcomes(outcomes: list[EngineOutcome]) -> EngineOutcome:
    """One outcome for several repeats of the same point: histograms merged, counts summed.

    The time series are laid end to end (repeat 2's first second follows repeat 1's
    last); CPU figures are duration-weighted means.
    """
    if not outcomes:
        raise ValueError("merge_outcomes needs at least one outcome")
    if len(outcomes) == 1:
        return outcomes[0]

    def merged(hists: list[LatencyHistogram | None]) -> LatencyHistogram | None:
        present = [h for h in hists if h is not None]
        if not present:
            return None
        total = LatencyHistogram()
        for h in present:
            total.merge(h)
        return total

    def weighted(values: list[tuple[float | None, float]]) -> float | None:
        known = [(v, w) for v, w in values if v is not None]
        weight = sum(w for _, w in known)
        return sum(v * w for v, w in known) / weight if known and weight > 0 else None

    latency = merged([o.latency for o in outcomes])
    assert latency is not None
    per_kind: dict[str, KindStats] = {}
    for o in outcomes:
        for name, stats in o.per_kind.items():
            into = per_kind.setdefault(name, KindStats())
            into.latency.merge(stats.latency)
            into.operations += stats.operations
            into.errors += stats.errors
    series: list[TimeSlice] = []
    for o in outcomes:
        offset = len(series)
        series.extend(dataclasses.replace(s, t=s.t + offset) for s in o.timeseries)
    errors: collections.Counter[str] = collections.Counter()
    for o in outcomes:
        errors.update(o.error_messages)
    durations = [o.duration_s for o in outcomes]
    return EngineOutcome(
        latency=latency,
        operations=sum(o.operations for o in outcomes),
        errors=sum(o.errors for o in outcomes),
        duration_s=sum(durations),
        warmup_s=sum(o.warmup_s for o in outcomes),
        service=merged([o.service for o in outcomes]),
        queue_wait=merged([o.queue_wait for o in outcomes]),
        dropped=sum(o.dropped for o in outcomes),
        error_messages=errors,
        timeseries=series,
        schedule_lag_ms=weighted(
            [(o.schedule_lag_ms, d) for o, d in zip(outcomes, durations, strict=True)]
        ),
        client_cpu_cores=weighted(
            [(o.client_cpu_cores, d) for o, d in zip(outcomes, durations, strict=True)]
        ),
        server_cpu_cores=weighted(
            [(o.server_cpu_cores, d) for o, d in zip(outcomes, durations, strict=True)]
        ),
        aborted=next((o.aborted for o in outcomes if o.aborted), None),
        per_kind=per_kind,
        host=merge_host_loads([o.host for o in outcomes], durations),
    )


def sample_of(
    outcome: EngineOutcome,
    *,
    repeat: int,
    sequence: int,
    shared_blks_per_query: float | None = None,
) -> Sample:
    """The per-repeat record of one measured window."""
    return Sample(
        repeat=repeat,
        sequence=sequence,
        qps=round(outcome.qps, 2),
        operations=outcome.operations,
        errors=outcome.errors,
        duration_s=round(outcome.duration_s, 4),
        latency_ms=outcome.latency.summary(),
        shared_blks_per_query=(
            round(shared_blks_per_query, 3) if shared_blks_per_query is not None else None
        ),
        operations_detail=operation_details(outcome),
        host=outcome.host,
    )


def operation_details(outcome: EngineOutcome) -> dict[str, OperationStats]:
    """Per-operation counts and latency of a (possibly mixed) load point."""
    window = outcome.duration_s
    return {
        name: OperationStats(
            operations=stats.operations,
            errors=stats.errors,
            qps=round(stats.operations / window, 2) if window > 0 else 0.0,
            latency_ms=stats.latency.summary(),
        )
        for name, stats in outcome.per_kind.items()
    }
