"""The gate's decision rule on synthetic samples: false positives, power, minimum effect."""

from __future__ import annotations

import numpy as np
import pytest

from pgvbench.compare import RULES, decide, min_p_value

P50 = RULES["p50"]
QPS = RULES["qps"]
ALPHA = 0.01


def _draw(rng: np.random.Generator, n: int, median: float, cv: float) -> list[float]:
    """Latency-like samples: log-normal around ``median`` with coefficient of variation cv."""
    return [float(x) for x in median * np.exp(rng.normal(0.0, cv, n))]


def test_aa_draws_rarely_flag() -> None:
    """Same distribution on both sides: regressions at most at the configured level."""
    seeds = 1000
    flagged = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        # a noisy machine: 8% run-to-run variation, so the 5% minimum effect alone would cry
        base, current = _draw(rng, 7, 0.30, 0.08), _draw(rng, 7, 0.30, 0.08)
        if decide(P50, base, current, alpha=ALPHA).verdict == "regression":
            flagged += 1
    assert flagged / seeds <= ALPHA


def test_aa_p_values_are_roughly_uniform() -> None:
    """The test itself is calibrated: ~alpha of A/A draws are significant (either way)."""
    significant = 0
    seeds = 1000
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        d = decide(P50, _draw(rng, 10, 1.0, 0.05), _draw(rng, 10, 1.0, 0.05), alpha=0.05)
        assert d.p_value is not None
        significant += d.p_value < 0.05
    assert 0.02 <= significant / seeds <= 0.08


def test_ten_percent_slowdown_with_enough_repeats_is_flagged() -> None:
    flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        base, current = _draw(rng, 7, 0.30, 0.03), _draw(rng, 7, 0.33, 0.03)
        d = decide(P50, base, current, alpha=ALPHA)
        flagged += d.verdict == "regression"
        assert d.method == "mann-whitney"
    assert flagged >= 190


def test_throughput_drop_is_a_regression_and_a_rise_an_improvement() -> None:
    rng = np.random.default_rng(1)
    base = _draw(rng, 7, 3000.0, 0.02)
    assert decide(QPS, base, _draw(rng, 7, 2600.0, 0.02), alpha=ALPHA).verdict == "regression"
    assert decide(QPS, base, _draw(rng, 7, 3400.0, 0.02), alpha=ALPHA).verdict == "improvement"


def test_two_percent_shift_below_the_minimum_effect_is_not_flagged() -> None:
    """Significant (tiny noise, many repeats) but smaller than the 5% floor: unchanged."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        base, current = _draw(rng, 20, 0.30, 0.002), _draw(rng, 20, 0.306, 0.002)
        d = decide(P50, base, current, alpha=ALPHA)
        assert d.p_value is not None and d.p_value < ALPHA  # the test does see it
        assert d.verdict == "unchanged"


def test_large_but_insignificant_change_is_not_flagged() -> None:
    """Overlapping samples: +10% median but p >= alpha -> unchanged, and the reason says so."""
    base = [1.0, 1.3, 0.9, 1.2, 1.0, 1.1, 0.8]
    current = [1.2, 0.9, 1.3, 1.1, 1.25, 1.0, 1.15]
    d = decide(P50, base, current, alpha=ALPHA)
    assert d.change > 0.05
    assert d.verdict == "unchanged"
    assert "not significant" in d.reason


def test_single_sample_falls_back_to_the_threshold_and_says_so() -> None:
    d = decide(P50, [0.30], [0.36], alpha=ALPHA)
    assert (d.method, d.verdict, d.p_value) == ("threshold", "regression", None)
    assert "single sample" in d.reason
    assert decide(P50, [0.30], [0.31], alpha=ALPHA).verdict == "unchanged"


def test_too_few_repeats_for_the_level_fall_back_to_the_threshold() -> None:
    assert min_p_value(3, 3) == pytest.approx(0.1)
    d = decide(P50, [0.30, 0.31, 0.30], [0.40, 0.41, 0.40], alpha=ALPHA)
    assert d.method == "threshold"
    assert "cannot reach" in d.reason
    assert min_p_value(5, 5) < ALPHA  # five a side is the least for alpha 0.01


def test_recall_is_an_absolute_drop() -> None:
    recall = RULES["recall"]
    assert decide(recall, [0.97], [0.95], alpha=ALPHA).verdict == "regression"
    assert decide(recall, [0.97], [0.965], alpha=ALPHA).verdict == "unchanged"
    assert decide(recall, [0.95], [0.97], alpha=ALPHA).verdict == "improvement"
    d = decide(recall, [0.97], [0.95], alpha=ALPHA)
    assert d.change == pytest.approx(-0.02) and d.method == "absolute"


def test_identical_constant_samples_are_unchanged() -> None:
    d = decide(RULES["blocks"], [600.0] * 7, [600.0] * 7, alpha=ALPHA)
    assert d.verdict == "unchanged" and d.p_value == 1.0


def test_constant_proxy_shift_beyond_the_effect_is_flagged() -> None:
    """Shared blocks per query barely vary: a 30% rise is a clean, significant regression."""
    d = decide(RULES["blocks"], [600.0] * 7, [780.0] * 7, alpha=ALPHA)
    assert d.verdict == "regression"


def test_base_of_three_runs_raises_the_floor_to_its_run_to_run_noise() -> None:
    """Repeats within a run understate a fresh run's spread; a base pooled from runs that
    differ by ~5% as a whole needs a larger change than 5% before it calls a regression."""
    runs = [[0.300 * f + 0.001 * i for i in range(7)] for f in (0.95, 1.0, 1.05)]
    base = [x for run in runs for x in run]
    shifted = [0.330 + 0.001 * i for i in range(7)]  # +10%: beyond 5%, within 3 x noise
    d = decide(P50, base, shifted, alpha=ALPHA, base_runs=runs)
    assert d.verdict == "unchanged"
    assert "run-to-run variation" in d.reason and "over 3 runs" in d.reason
    slow = [0.390 + 0.001 * i for i in range(7)]  # +30%
    assert decide(P50, base, slow, alpha=ALPHA, base_runs=runs).verdict == "regression"
    # two groups are not enough to estimate the noise: the plain 5% floor applies
    assert decide(P50, base, shifted, alpha=ALPHA, base_runs=runs[:2]).verdict == "regression"
    # noise_k = 0 turns it off
    assert decide(P50, base, shifted, alpha=ALPHA, base_runs=runs, noise_k=0).verdict == (
        "regression"
    )
