"""merge_outcomes: the repeats of one point become one outcome whose percentiles are those
of every raw sample pooled (never an average of per-repeat percentiles)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from pgvbench.engine.histogram import LatencyHistogram
from pgvbench.engine.outcome import EngineOutcome, KindStats, merge_outcomes
from pgvbench.results import TimeSlice

# HDR with 3 significant digits: any recorded value comes back within 2**-10 relative.
RESOLUTION = 2.0**-10


def _hist(samples_ns: np.ndarray) -> LatencyHistogram:
    hist = LatencyHistogram()
    hist.record_many(samples_ns)
    return hist


def _outcome(
    samples_ns: np.ndarray,
    *,
    duration_s: float,
    errors: int = 0,
    messages: dict[str, int] | None = None,
    seconds: int = 2,
    client_cpu: float | None = None,
    open_loop: bool = False,
    aborted: str | None = None,
    kinds: dict[str, tuple[np.ndarray, int]] | None = None,
) -> EngineOutcome:
    return EngineOutcome(
        latency=_hist(samples_ns),
        operations=int(samples_ns.size),
        errors=errors,
        duration_s=duration_s,
        warmup_s=0.5,
        service=_hist(samples_ns // 2) if open_loop else None,
        queue_wait=_hist(samples_ns // 4) if open_loop else None,
        dropped=3 if open_loop else 0,
        error_messages=collections.Counter(messages or {}),
        timeseries=[TimeSlice(t=t, ops=10 * (t + 1), p99_ms=1.0) for t in range(seconds)],
        client_cpu_cores=client_cpu,
        aborted=aborted,
        per_kind={
            name: KindStats(latency=_hist(lat), operations=int(lat.size), errors=errs)
            for name, (lat, errs) in (kinds or {}).items()
        },
    )


@pytest.fixture
def repeats() -> list[np.ndarray]:
    """Three repeats of different speed: the second is 3x slower with a heavy tail."""
    rng = np.random.default_rng(11)
    return [
        rng.lognormal(np.log(1e6), 0.3, 2500).astype(np.int64),
        rng.lognormal(np.log(3e6), 0.8, 4000).astype(np.int64),
        rng.lognormal(np.log(1.2e6), 0.2, 3500).astype(np.int64),
    ]


def _bracket(values: np.ndarray, pct: float) -> tuple[float, float]:
    """The order statistics around a percentile, in ms, widened by HDR's resolution."""
    low = float(np.percentile(values, pct, method="lower")) / 1e6
    high = float(np.percentile(values, pct, method="higher")) / 1e6
    return low * (1 - RESOLUTION), high * (1 + RESOLUTION)


def test_percentiles_are_those_of_all_raw_samples(repeats: list[np.ndarray]) -> None:
    merged = merge_outcomes([_outcome(s, duration_s=1.0) for s in repeats])
    pooled = np.concatenate(repeats)
    assert merged.latency.count == merged.operations == pooled.size == 10_000
    for pct in (50.0, 95.0, 99.0, 99.9):
        low, high = _bracket(pooled, pct)
        assert low <= merged.latency.percentile_ms(pct) <= high, pct
    summary = merged.latency.summary()
    assert summary is not None
    assert summary.max == pytest.approx(pooled.max() / 1e6, rel=RESOLUTION)
    assert summary.mean == pytest.approx(pooled.mean() / 1e6, rel=RESOLUTION)
    # and it is not the mean of the per-repeat p99s, which understates the slow repeat
    per_repeat = np.mean([np.percentile(s, 99) for s in repeats]) / 1e6
    assert abs(merged.latency.percentile_ms(99.0) / per_repeat - 1) > 0.1


def test_counts_errors_and_time_add_up(repeats: list[np.ndarray]) -> None:
    outcomes = [
        _outcome(repeats[0], duration_s=1.0, errors=2, messages={"timeout": 2}),
        _outcome(repeats[1], duration_s=2.0, errors=5, messages={"timeout": 1, "reset": 4}),
        _outcome(repeats[2], duration_s=1.5),
    ]
    merged = merge_outcomes(outcomes)
    assert merged.operations == 10_000
    assert merged.errors == 7
    assert merged.error_messages == collections.Counter({"timeout": 3, "reset": 4})
    assert merged.duration_s == pytest.approx(4.5)
    assert merged.warmup_s == pytest.approx(1.5)
    assert merged.qps == pytest.approx(10_000 / 4.5)
    assert merged.aborted is None
    # closed loop on every side: no open-loop split appears from nowhere
    assert merged.service is None and merged.queue_wait is None and merged.dropped == 0
    # the inputs are left as they were
    assert outcomes[0].latency.count == 2500 and outcomes[0].errors == 2


def test_time_series_are_laid_end_to_end(repeats: list[np.ndarray]) -> None:
    merged = merge_outcomes(
        [
            _outcome(repeats[0], duration_s=2.0, seconds=2),
            _outcome(repeats[1], duration_s=3.0, seconds=3),
        ]
    )
    assert [s.t for s in merged.timeseries] == [0, 1, 2, 3, 4]
    assert [s.ops for s in merged.timeseries] == [10, 20, 10, 20, 30]


def test_open_loop_histograms_merge_and_drops_add_up(repeats: list[np.ndarray]) -> None:
    merged = merge_outcomes([_outcome(s, duration_s=1.0, open_loop=True) for s in repeats])
    assert merged.service is not None and merged.queue_wait is not None
    assert merged.service.count == merged.queue_wait.count == 10_000
    low, high = _bracket(np.concatenate(repeats) // 2, 99.0)
    assert low <= merged.service.percentile_ms(99.0) <= high
    assert merged.dropped == 9


def test_cpu_is_duration_weighted_and_unknown_values_are_skipped(
    repeats: list[np.ndarray],
) -> None:
    merged = merge_outcomes(
        [
            _outcome(repeats[0], duration_s=1.0, client_cpu=0.5),
            _outcome(repeats[1], duration_s=3.0, client_cpu=1.5),
            _outcome(repeats[2], duration_s=2.0, client_cpu=None),
        ]
    )
    assert merged.client_cpu_cores == pytest.approx((0.5 * 1 + 1.5 * 3) / 4)
    assert merged.server_cpu_cores is None


def test_per_kind_stats_merge_and_the_first_abort_is_kept(repeats: list[np.ndarray]) -> None:
    a, b, c = repeats
    merged = merge_outcomes(
        [
            _outcome(a, duration_s=1.0, kinds={"knn": (a[:2000], 1), "insert": (a[2000:], 0)}),
            _outcome(b, duration_s=1.0, kinds={"knn": (b, 2)}, aborted="server unreachable"),
            _outcome(c, duration_s=1.0, aborted="later"),
        ]
    )
    knn, insert = merged.per_kind["knn"], merged.per_kind["insert"]
    assert (knn.operations, knn.errors, knn.latency.count) == (6000, 3, 6000)
    assert (insert.operations, insert.errors, insert.latency.count) == (500, 0, 500)
    low, high = _bracket(np.concatenate([a[:2000], b]), 95.0)
    assert low <= knn.latency.percentile_ms(95.0) <= high
    assert merged.aborted == "server unreachable"


def test_one_outcome_is_itself_and_none_is_an_error(repeats: list[np.ndarray]) -> None:
    single = _outcome(repeats[0], duration_s=1.0)
    assert merge_outcomes([single]) is single
    with pytest.raises(ValueError, match="at least one"):
        merge_outcomes([])
