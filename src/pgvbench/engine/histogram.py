"""Latency histograms: HDR (3 significant digits), mergeable, serialisable.

Percentiles of a run always come from one merged histogram, never from per-client
percentiles combined after the fact.
"""

from __future__ import annotations

import numpy as np
from hdrh.histogram import HdrHistogram

from ..results import Latency

LOWEST_NS = 1
HIGHEST_NS = 3_600 * 10**9  # one hour: any slower operation is clamped, never dropped
SIGNIFICANT_DIGITS = 3


class LatencyHistogram:
    """Nanosecond latencies of one operation type."""

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)

    def record_many(self, latencies_ns: np.ndarray) -> None:
        clipped = np.clip(latencies_ns, LOWEST_NS, HIGHEST_NS)
        values, counts = np.unique(clipped, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            self._h.record_value(value, count)

    def merge(self, other: LatencyHistogram) -> None:
        self._h.add(other._h)

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, pct: float) -> float:
        return float(self._h.get_value_at_percentile(pct)) / 1e6

    def summary(self) -> Latency | None:
        if self.count == 0:
            return None
        return Latency(
            p50=self.percentile_ms(50.0),
            p95=self.percentile_ms(95.0),
            p99=self.percentile_ms(99.0),
            p999=self.percentile_ms(99.9),
            max=float(self._h.get_max_value()) / 1e6,
            mean=float(self._h.get_mean_value()) / 1e6,
        )

    def encode(self) -> str:
        return bytes(self._h.encode()).decode("ascii")

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        hist = cls()
        hist._h.add(HdrHistogram.decode(encoded.encode("ascii")))
        return hist
