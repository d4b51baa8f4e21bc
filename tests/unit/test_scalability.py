"""Concurrency analysis: USL fit, series, knee, Little's law and the pool recommendation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from pgvbench.analysis.pool_advice import littles_law_check, recommend_pool_size
from pgvbench.analysis.scalability import (
    DEFAULT_SLO_P99_MS,
    knee,
    littles_law,
    load_series,
    pool_label,
    pool_wait_ms_per_op,
    resolve_slo,
    series_label,
)
from pgvbench.analysis.usl import fit_usl, usl
from pgvbench.results import Environment, HostInfo, Latency, LoadPoint, Results, Sample, TimeSlice

CLIENTS = [1, 2, 4, 8, 16, 32, 64]
POOL8 = {"min_size": 8, "max_size": 8, "timeout_s": 30.0, "max_waiting": 0}


def _noisy(gamma: float, alpha: float, beta: float, seed: int = 7) -> list[float]:
    """USL throughput with 2% multiplicative Gaussian noise (fixed seed: reproducible)."""
    rng = np.random.default_rng(seed)
    return [usl(n, gamma, alpha, beta) * (1 + rng.normal(0, 0.02)) for n in CLIENTS]


def point(
    clients: int,
    qps: float,
    *,
    p99: float | None = None,
    mean_ms: float | None = None,
    strategy: str = "direct",
    engine: str = "python",
    pool: dict[str, Any] | None = None,
    **changes: Any,
) -> LoadPoint:
    mean = mean_ms if mean_ms is not None else clients / qps * 1000.0
    latency = Latency(
        p50=mean * 0.9,
        p95=mean * 1.8,
        p99=p99 if p99 is not None else mean * 2.5,
        p999=mean * 4,
        max=mean * 8,
        mean=mean,
    )
    base = LoadPoint(
        engine=engine,
        index="hnsw(m=16,ef_construction=64)",
        query_params={"hnsw.ef_search": 40},
        strategy=strategy,
        pool=dict(pool or {}),
        clients=clients,
        mode="closed",
        target_rate=None,
        arrival=None,
        think_time_ms=0.0,
        qps=qps,
        operations=int(qps * 10),
        errors=0,
        dropped=0,
        duration_s=10.0,
        warmup_s=1.0,
        latency_ms=latency,
    )
    return dataclasses.replace(base, **changes)


def results_with(points: list[LoadPoint], *, cores: int = 4, slo: float = 20.0) -> Results:
    return Results(
        run_name="scal",
        status="complete",
        started_at="2025-03-01T10:00:00+00:00",
        finished_at="2025-03-01T10:05:00+00:00",
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={},
            host=HostInfo(cpu_model="cpu", cores=cores, ram_bytes=2**34, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit=None,
            python_version="3.11.9",
        ),
        spec={"load": {"slo_p99_ms": slo}},
        load_points=points,
    )


def usl_series(
    gamma: float,
    alpha: float,
    beta: float,
    *,
    strategy: str = "direct",
    pool: dict[str, Any] | None = None,
    clients: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
    tail: float = 2.5,
) -> list[LoadPoint]:
    """Exact USL throughput; p99 = tail x the Little's-law mean latency."""
    out = []
    for n in clients:
        qps = usl(n, gamma, alpha, beta)
        out.append(point(n, qps, p99=n / qps * 1000 * tail, strategy=strategy, pool=pool))
    return out


# --- USL fit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gamma", "alpha", "beta"),
    [(1000.0, 0.05, 0.002), (1200.0, 0.02, 0.0005), (800.0, 0.3, 0.01)],
)
def test_fit_recovers_known_parameters_from_noisy_data(
    gamma: float, alpha: float, beta: float
) -> None:
    fit = fit_usl(CLIENTS, _noisy(gamma, alpha, beta))
    assert fit is not None
    assert fit.points == len(CLIENTS)
    assert fit.gamma == pytest.approx(gamma, rel=0.05)
    assert fit.alpha == pytest.approx(alpha, abs=0.04)
    assert fit.beta == pytest.approx(beta, rel=0.25)
    true_n_star = math.sqrt((1 - alpha) / beta)
    assert fit.n_star == pytest.approx(true_n_star, rel=0.15)
    assert fit.n_star == pytest.approx(math.sqrt((1 - fit.alpha) / fit.beta))
    assert fit.peak_qps == pytest.approx(fit.predict(fit.n_star))
    assert fit.peak_qps == pytest.approx(usl(true_n_star, gamma, alpha, beta), rel=0.05)
    assert fit.r_squared > 0.98


def test_fit_of_exact_data_is_exact() -> None:
    fit = fit_usl(CLIENTS, [usl(n, 1500.0, 0.08, 0.001) for n in CLIENTS])
    assert fit is not None
    assert fit.gamma == pytest.approx(1500.0, rel=1e-4)
    assert fit.alpha == pytest.approx(0.08, rel=1e-3)
    assert fit.beta == pytest.approx(0.001, rel=1e-3)
    assert fit.n_star == pytest.approx(math.sqrt(0.92 / 0.001), rel=1e-3)
    assert fit.r_squared == pytest.approx(1.0)


def test_no_coherency_penalty_means_no_peak() -> None:
    fit = fit_usl(CLIENTS, [usl(n, 500.0, 0.1, 0.0) for n in CLIENTS])
    assert fit is not None
    assert fit.beta == 0.0
    assert math.isinf(fit.n_star)
    assert fit.peak_qps == pytest.approx(500.0 / 0.1, rel=1e-3)  # the ceiling gamma/alpha


def test_linear_scaling_has_no_peak_and_no_ceiling() -> None:
    fit = fit_usl([1, 2, 4], [100.0, 200.0, 400.0])
    assert fit is not None
    assert fit.alpha == 0.0 and fit.beta == 0.0
    assert math.isinf(fit.n_star) and math.isinf(fit.peak_qps)


def test_three_points_are_enough() -> None:
    fit = fit_usl([2, 8, 32], [usl(n, 900.0, 0.05, 0.003) for n in (2, 8, 32)])
    assert fit is not None and fit.points == 3


@pytest.mark.parametrize(
    ("clients", "qps"),
    [
        ([], []),
        ([4], [1000.0]),
        ([1, 2], [100.0, 190.0]),
        ([1, 1, 2, 2], [100.0, 101.0, 190.0, 191.0]),  # 4 points, 2 distinct counts
        ([1, 2, 4], [100.0, 0.0, 350.0]),  # a zero-QPS point does not count
        ([1, 2, 4], [100.0, math.nan, 350.0]),
    ],
)
def test_too_few_client_counts_give_no_fit(clients: list[int], qps: list[float]) -> None:
    assert fit_usl(clients, qps) is None


def test_optimiser_failure_gives_no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("Optimal parameters not found: maxfev exceeded")

    monkeypatch.setattr("scipy.optimize.curve_fit", fail)  # fit_usl imports it when called
    assert fit_usl(CLIENTS, [usl(n, 1000.0, 0.05, 0.002) for n in CLIENTS]) is None


# --- series ------------------------------------------------------------------------------


def test_series_group_by_configuration_and_order_by_clients() -> None:
    pooled4 = [point(n, 100.0 * n, strategy="psycopg_pool", pool={**POOL8, "max_size": 4,
               "min_size": 4}) for n in (8, 2, 4)]  # fmt: skip
    pooled16 = [point(n, 90.0 * n, strategy="psycopg_pool", pool={**POOL8, "max_size": 16,
                "min_size": 16}) for n in (2, 4, 8)]  # fmt: skip
    reference = [point(n, 120.0 * n, engine="pgbench") for n in (2, 4, 8)]
    direct = [point(n, 110.0 * n) for n in (4, 2, 8)]
    series = load_series([*reference, *pooled16, *pooled4, *direct])
    assert [s.label for s in series] == [
        "direct",
        "psycopg_pool max_size=4",
        "psycopg_pool max_size=16",
        "pgbench direct",
    ]
    for s in series:
        assert [p.clients for p in s.points] == [2, 4, 8]
    assert [s.fit is not None for s in series] == [True, True, True, False]
    assert series[-1].reference and not series[-1].usl_eligible


def test_open_loop_series_are_separate_and_not_fitted() -> None:
    closed = [point(n, 100.0 * n) for n in (1, 2, 4)]
    opened = [point(n, 500.0, mode="open", target_rate=500.0, arrival="poisson") for n in (1, 2, 4)]
    series = load_series([*opened, *closed])
    assert [s.label for s in series] == ["direct", "direct open 500/s"]
    assert series[0].fit is not None and series[1].fit is None


def test_only_valid_points_feed_the_fit() -> None:
    points = usl_series(1000.0, 0.05, 0.002)
    clean = load_series(points)[0].fit
    outlier = point(64, 50.0, valid=False, notes=["too many errors"])
    dirty = load_series([*points, outlier])[0].fit
    assert clean is not None and dirty is not None
    assert dirty.points == clean.points == 6
    assert dirty.gamma == pytest.approx(clean.gamma)


def test_labels() -> None:
    assert pool_label(POOL8) == "max_size=8"
    assert pool_label({**POOL8, "min_size": 2, "timeout_s": 5.0}) == (
        "max_size=8 min_size=2 timeout_s=5"
    )
    assert pool_label({"pool_mode": "transaction", "pool_size": 20}) == ("transaction pool_size=20")
    assert series_label("pgbench", "pgbouncer", {"pool_mode": "session", "pool_size": 4},
                        "closed", None) == "pgbench pgbouncer session pool_size=4"  # fmt: skip


# --- knee --------------------------------------------------------------------------------


def test_knee_is_the_fastest_point_within_the_slo() -> None:
    points = [
        point(2, 1000.0, p99=4.0),
        point(4, 1800.0, p99=8.0),
        point(8, 2500.0, p99=19.9),
        point(16, 2700.0, p99=35.0),  # faster, but over the SLO
    ]
    assert knee(points, 20.0) is points[2]
    assert knee(points, 20.0 - 0.2) is points[1]
    assert knee(points, 40.0) is points[3]


def test_knee_skips_invalid_and_unmeasured_points() -> None:
    good = point(4, 1800.0, p99=8.0)
    invalid = point(8, 2500.0, p99=10.0, valid=False)
    unmeasured = point(16, 3000.0, latency_ms=None)
    suspect = point(2, 1000.0, p99=4.0, suspect=True)
    assert knee([suspect, invalid, unmeasured, good], 20.0) is good
    assert knee([invalid, unmeasured], 20.0) is None


def test_knee_none_when_nothing_meets_the_slo() -> None:
    assert knee([point(2, 1000.0, p99=30.0)], 20.0) is None
    assert knee([], 20.0) is None


def test_knee_tie_goes_to_fewer_clients() -> None:
    a, b = point(16, 2000.0, p99=9.0), point(8, 2000.0, p99=9.5)
    assert knee([a, b], 20.0) is b


# --- Little's law and pool wait ----------------------------------------------------------


def test_littles_law_matches_clients_in_a_closed_loop() -> None:
    p = point(8, 1000.0, mean_ms=8.0)
    assert littles_law(p) == pytest.approx(8.0)
    check = littles_law_check(p)
    assert check is not None
    assert check.in_flight == pytest.approx(8.0)
    assert check.expected == 8 and check.ratio == pytest.approx(1.0)
    assert check.note == ""


def test_littles_law_notes_time_outside_the_measured_latency() -> None:
    check = littles_law_check(point(16, 2000.0, mean_ms=5.0))  # L = 10 of 16 clients
    assert check is not None
    assert check.ratio == pytest.approx(0.625)
    assert "0.62× the 16 busy clients" in check.note
    assert "outside the measured latency" in check.note
    over = littles_law_check(point(4, 1000.0, mean_ms=6.0))  # L = 6 > 4 clients
    assert over is not None and over.ratio == pytest.approx(1.5)
    assert "disagree" in over.note
    within = littles_law_check(point(10, 1000.0, mean_ms=8.5))  # 15% off: no note
    assert within is not None and within.note == ""


def test_littles_law_discounts_think_time() -> None:
    # each client: 4 ms in the query + 4 ms thinking -> 1000 QPS from 8 clients, 4 busy
    check = littles_law_check(point(8, 1000.0, mean_ms=4.0, think_time_ms=4.0))
    assert check is not None
    assert check.expected == pytest.approx(4.0)
    assert check.ratio == pytest.approx(1.0) and check.note == ""


def test_littles_law_is_informational_in_open_loop() -> None:
    check = littles_law_check(point(8, 500.0, mean_ms=2.0, mode="open", target_rate=500.0))
    assert check is not None and check.ratio == pytest.approx(0.125)
    assert check.note == ""


def test_littles_law_without_latency() -> None:
    assert littles_law_check(point(8, 500.0, latency_ms=None)) is None
    assert math.isnan(littles_law(point(8, 500.0, latency_ms=None)))


def test_pool_wait_per_operation() -> None:
    p = point(16, 1000.0, pool_stats={"requests_wait_ms": 25_000, "requests_num": 10_000})
    assert pool_wait_ms_per_op(p) == pytest.approx(2.5)
    assert pool_wait_ms_per_op(point(16, 1000.0)) is None
    assert pool_wait_ms_per_op(point(16, 1000.0, pool_stats={"requests_num": 3})) is None


def test_resolve_slo() -> None:
    assert resolve_slo(results_with([], slo=12.5)) == 12.5
    empty = results_with([])
    empty.spec = {}
    assert resolve_slo(empty) == DEFAULT_SLO_P99_MS
    empty.spec = {"load": None}
    assert resolve_slo(empty) == DEFAULT_SLO_P99_MS


# --- recommendation ----------------------------------------------------------------------


def _three_strategies() -> list[LoadPoint]:
    direct = usl_series(900.0, 0.06, 0.004, tail=4.0)  # long tail: over the SLO at 32
    pooled = usl_series(1000.0, 0.03, 0.003, strategy="psycopg_pool", pool=POOL8)
    per_op = [
        point(n, qps, p99=4.0 * n, strategy="connect_per_op")
        for n, qps in zip((1, 2, 4, 8), (200.0, 330.0, 410.0, 400.0), strict=True)
    ]
    return [*direct, *pooled, *per_op]


def test_recommendation_names_best_strategy_and_slo() -> None:
    points = _three_strategies()
    results = results_with(points, cores=4, slo=20.0)
    pooled = [p for p in points if p.strategy == "psycopg_pool"]
    best = knee(pooled, 20.0)
    assert best is not None and knee(points, 20.0) is best
    text = recommend_pool_size(results, 20.0)
    assert text.startswith("Use psycopg_pool max_size=8 (≈ 2×cores): it sustained ")
    assert f"{best.qps:,.0f} QPS at {best.clients} clients" in text
    assert "≤ SLO 20.0 ms" in text
    assert "USL fit (R² 1.00)" in text
    assert "N*≈18" in text  # sqrt(0.97 / 0.003) = 17.98
    direct = knee([p for p in points if p.strategy == "direct"], 20.0)
    assert direct is not None and direct.clients == 16
    assert (
        f"at their best within the SLO, direct {direct.qps:,.0f} QPS (16 clients), "
        "connect_per_op 410 QPS (4 clients)."
    ) in text
    assert text.endswith(".") and text.count(". ") == 0  # one sentence


def test_recommendation_when_no_point_meets_the_slo() -> None:
    results = results_with(_three_strategies())
    text = recommend_pool_size(results, 0.5)
    assert text.startswith("No load point met p99 ≤ SLO 0.500 ms")
    # lowest p99: the pool at 1 client, 1000 QPS -> 1 ms mean, 2.5 ms p99
    assert "the lowest p99 was 2.50 ms (psycopg_pool max_size=8 at 1 client, 1,000 QPS)" in text


def test_recommendation_for_a_single_point_run() -> None:
    results = results_with([point(4, 2000.0, p99=5.0)], cores=2)
    text = recommend_pool_size(results, 20.0)
    assert text.startswith("Use direct connections, one per client (4 ≈ 2×cores)")
    assert "2,000 QPS at 4 clients with p99 5.00 ms ≤ SLO 20.0 ms" in text
    assert "only 1 client count measured, too few to fit the USL (needs 3)" in text


def test_recommendation_warns_about_suspect_and_invalid_points() -> None:
    points = usl_series(900.0, 0.05, 0.003, clients=(1, 2, 4))
    points[-1] = dataclasses.replace(points[-1], suspect=True, notes=["client CPU saturated"])
    points.append(point(8, 9000.0, p99=1.0, valid=False, notes=["errors"]))
    text = recommend_pool_size(results_with(points), 20.0)
    assert "at 4 clients" in text  # the faster invalid point is not recommended
    assert "flagged suspect (client CPU saturated)" in text
    assert text.endswith("(1 invalid load point was left out).")


def test_recommendation_when_every_point_is_invalid() -> None:
    points = [point(n, 100.0 * n, valid=False, notes=["server restarted"]) for n in (1, 2)]
    text = recommend_pool_size(results_with(points), 20.0)
    assert "No valid load point" in text and "server restarted" in text


def test_recommendation_names_pool_wait_behind_the_tail() -> None:
    points = []
    for n in (2, 4, 8, 16, 32):
        qps = 4000.0
        mean = n / qps * 1000
        wait_ms = max(0.0, mean - 2.0) * qps * 10  # past 8 clients they queue for the pool
        points.append(
            point(n, qps, p99=mean * 2.5, strategy="psycopg_pool", pool=POOL8,
                  pool_stats={"requests_wait_ms": int(wait_ms)})
        )  # fmt: skip
    text = recommend_pool_size(results_with(points), 9.0)
    assert "4,000 QPS at 2 clients" in text  # the knee: same QPS, fewest clients
    # 16 clients is the first point over the SLO; its mean latency is 4 ms, 2 ms of it waiting
    assert (
        "at 16 clients operations waited 2.00 ms each for a pool connection "
        "(50% of mean latency), which explains its p99 of 10.0 ms"
    ) in text
    assert recommend_pool_size(results_with(points), 30.0).count("waited") == 0


def test_recommendation_with_only_pgbench_points() -> None:
    points = [point(n, 1000.0 * n, p99=2.0, engine="pgbench") for n in (1, 2)]
    text = recommend_pool_size(results_with(points), 20.0)
    assert text.startswith("No python-engine load point was measured")
    assert "pgbench reference reached 2,000 QPS at 2 clients" in text


# --- the recommendation's margin ---------------------------------------------------------------


def _repeats(p: LoadPoint, *qps: float) -> LoadPoint:
    samples = [
        Sample(repeat=i, sequence=i, qps=q, operations=int(q * 10), errors=0, duration_s=10.0,
               latency_ms=p.latency_ms)
        for i, q in enumerate(qps)
    ]  # fmt: skip
    return dataclasses.replace(p, samples=samples)


def _two_strategies(direct: tuple[float, ...], pooled: tuple[float, ...]) -> Results:
    a = _repeats(point(4, sum(direct) / len(direct), p99=5.0), *direct)
    b = _repeats(
        point(4, sum(pooled) / len(pooled), p99=5.0, strategy="psycopg_pool", pool=POOL8), *pooled
    )
    return results_with([a, b])


def test_recommendation_names_the_winner_with_its_margin() -> None:
    text = recommend_pool_size(_two_strategies((1000, 1010, 990), (1300, 1290, 1310)), 20.0)
    assert text.startswith("Use psycopg_pool max_size=8 (≈ 2×cores): it sustained 1,300 QPS")
    assert "ahead of direct by +30% QPS (noise ±2.0% over 3 repeats)" in text


def test_recommendation_within_the_noise_names_no_winner() -> None:
    text = recommend_pool_size(_two_strategies((1000, 1150, 900), (1050, 960, 1130)), 20.0)
    assert not text.startswith("Use")
    assert text.startswith(
        "psycopg_pool and direct are within the noise of this run (+3.0%, noise ±21% over 3 "
        "repeats); pick on other grounds or measure longer: psycopg_pool max_size=8"
    )


def test_recommendation_margin_falls_back_to_one_second_windows() -> None:
    slices = [TimeSlice(t=t, ops=1000 + 10 * (t % 2), p99_ms=5.0) for t in range(10)]
    a = point(4, 1005.0, p99=5.0, timeseries=slices)
    b = point(4, 1500.0, p99=5.0, strategy="psycopg_pool", pool=POOL8,
              timeseries=[dataclasses.replace(s, ops=s.ops + 495) for s in slices])  # fmt: skip
    text = recommend_pool_size(results_with([a, b]), 20.0)
    assert "ahead of direct by +49% QPS (noise ±1.0% over 10 one-second windows)" in text


def test_recommendation_margin_pairs_the_interleaved_windows_of_one_client_count() -> None:
    # the machine slows both arms alike in round 2: paired, the +20% stays clear of the noise
    # although each arm's own windows spread 2x
    a = dataclasses.replace(point(4, 1000.0, p99=5.0), window_qps=[1000.0, 500.0, 1000.0, 990.0])
    b = dataclasses.replace(
        point(4, 1200.0, p99=5.0, strategy="psycopg_pool", pool=POOL8),
        window_qps=[1200.0, 610.0, 1195.0, 1190.0],
    )
    text = recommend_pool_size(results_with([a, b]), 20.0)
    assert text.startswith("Use psycopg_pool max_size=8")
    assert "ahead of direct by +20% QPS (noise ±1.7% over 4 paired rounds)" in text
    # unpaired, the same windows would be within the noise
    c = dataclasses.replace(b, clients=8)
    assert "paired rounds" not in recommend_pool_size(results_with([a, c]), 20.0)
