"""Merged per-client HDR histograms give the percentiles of all samples together."""

from __future__ import annotations

import numpy as np
import pytest

from pgvbench.engine.histogram import LatencyHistogram
from pgvbench.engine.outcome import per_second_series


@pytest.mark.parametrize("pct", [50.0, 90.0, 95.0, 99.0, 99.9, 100.0])
def test_merged_histogram_matches_concatenated_samples(pct: float) -> None:
    rng = np.random.default_rng(11)
    # 8 clients with different latency profiles (lognormal, some much slower)
    clients = [
        (rng.lognormal(mean=12 + i * 0.3, sigma=0.6, size=5000 + 700 * i)).astype(np.int64)
        for i in range(8)
    ]
    merged = LatencyHistogram()
    for samples in clients:
        per_client = LatencyHistogram()
        per_client.record_many(samples)
        merged.merge(per_client)
    everything = np.concatenate(clients)
    assert merged.count == everything.size
    # HdrHistogram's rank: the int(p/100 * n + 0.5)-th smallest sample (nearest rank)
    rank = max(1, int(pct / 100 * everything.size + 0.5))
    exact_ms = float(np.sort(everything)[rank - 1]) / 1e6
    # 3 significant digits: within 0.1% (plus one bucket of rounding)
    assert merged.percentile_ms(pct) == pytest.approx(exact_ms, rel=2e-3)


def test_max_of_client_p99_is_not_the_merged_p99() -> None:
    """The reason percentiles are merged: one slow client must not set the overall p99."""
    fast = np.full(10_000, 1_000_000, dtype=np.int64)  # 1 ms
    slow = np.full(100, 50_000_000, dtype=np.int64)  # 50 ms, 1% of one client's ops
    hists = []
    for samples in (fast, slow):
        h = LatencyHistogram()
        h.record_many(samples)
        hists.append(h)
    worst_client_p99 = max(h.percentile_ms(99.0) for h in hists)
    merged = LatencyHistogram()
    for h in hists:
        merged.merge(h)
    assert worst_client_p99 == pytest.approx(50.0, rel=2e-3)
    assert merged.percentile_ms(99.0) == pytest.approx(1.0, rel=2e-3)


def test_encode_decode_round_trip() -> None:
    h = LatencyHistogram()
    h.record_many(np.array([1_000, 2_000_000, 3_500_000_000], dtype=np.int64))
    back = LatencyHistogram.decode(h.encode())
    assert back.count == 3
    assert back.summary() == h.summary()


def test_per_second_series_counts_and_p99() -> None:
    start = 10_000_000_000
    ends = np.array(
        [start + 100, start + 900_000_000, start + 1_500_000_000, start - 5], dtype=np.int64
    )
    lats = np.array([1_000_000, 3_000_000, 2_000_000, 9], dtype=np.int64)
    series = per_second_series(ends, lats, start, 2.0)
    assert [s.ops for s in series] == [2, 1]
    assert series[1].p99_ms == pytest.approx(2.0)
    assert per_second_series(ends, lats, start, 0.0) == []
