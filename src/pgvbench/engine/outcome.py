"""What any load engine (python threads, pgbench) hands back for one load point."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from ..results import TimeSlice
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
