"""The interleaving schedule and the paired statistics, checked against scipy."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
from scipy import stats

from pgvbench.analysis.interleave import rounds_for, schedule
from pgvbench.analysis.paired import (
    PairedRatio,
    bootstrap_mean,
    paired_difference,
    paired_ratio,
    recall_lower_bound,
)

# ------------------------------------------------------------------ schedule


def test_schedule_is_balanced_every_round() -> None:
    arms = ["python", "pgbench", "third"]
    rounds = schedule(arms, 40, seed=3)
    assert len(rounds) == 40
    for order in rounds:
        assert sorted(order) == sorted(arms)  # each arm exactly once per round


def test_schedule_is_randomized_not_alternating() -> None:
    rounds = schedule(["a", "b"], 200, seed=11)
    firsts = collections.Counter(order[0] for order in rounds)
    # each arm leads about half the rounds (binomial(200, 0.5): 100 +- 3 sigma = 21)
    assert 79 <= firsts["a"] <= 121
    # not a fixed pattern: both "a first" and "b first" occur in runs of several rounds
    patterns = {tuple(order) for order in rounds}
    assert patterns == {("a", "b"), ("b", "a")}
    assert rounds != schedule(["a", "b"], 200, seed=12)


def test_schedule_keeps_a_pair_back_to_back_in_random_order() -> None:
    arms = ["python", "pool4", "pool8", "pgbench", "bouncer"]
    rounds = schedule(arms, 200, seed=9, pairs=[("python", "pgbench")])
    firsts: collections.Counter[bool] = collections.Counter()
    positions: collections.Counter[int] = collections.Counter()
    for order in rounds:
        assert sorted(order) == sorted(arms)
        i, j = order.index("python"), order.index("pgbench")
        assert abs(i - j) == 1  # adjacent windows: the same machine as near as can be
        firsts[i < j] += 1
        positions[min(i, j)] += 1
    assert 79 <= firsts[True] <= 121  # python first in about half the rounds
    assert set(positions) == {0, 1, 2, 3}  # the pair moves around the round
    with pytest.raises(ValueError, match="pairs"):
        schedule(arms, 3, seed=1, pairs=[("python", "nope")])


def test_mirrored_schedule_balances_positions() -> None:
    arms = ["a", "b", "c", "d"]
    rounds = schedule(arms, 10, seed=4, pairs=[("a", "d")], mirrored=True)
    assert len(rounds) == 10
    for first, second in zip(rounds[::2], rounds[1::2], strict=True):
        assert second == first[::-1]  # ABBA: the drawn order, then its reverse
    for arm in arms:  # every arm has the same mean position: each pair sums to n - 1
        assert sum(order.index(arm) for order in rounds) == 5 * (len(arms) - 1)
    led = collections.Counter(order.index("a") < order.index("d") for order in rounds)
    assert led[True] == led[False] == 5  # the pair: each engine first in half the rounds
    odd = schedule(["a", "b"], 5, seed=4, mirrored=True)
    assert len(odd) == 5 and abs(sum(o[0] == "a" for o in odd) - 2.5) == 0.5


def test_schedule_is_repeatable_with_its_seed() -> None:
    assert schedule(["a", "b", "c"], 10, seed=5) == schedule(["a", "b", "c"], 10, seed=5)


def test_schedule_rejects_nothing_to_do() -> None:
    with pytest.raises(ValueError, match="rounds"):
        schedule(["a"], 0, seed=1)
    with pytest.raises(ValueError, match="arms"):
        schedule([], 3, seed=1)


def test_rounds_for_fills_the_time_with_a_floor() -> None:
    assert rounds_for(8.0, 2.0) == 4
    assert rounds_for(1.0, 2.0) == 3  # never fewer than 3 rounds: a spread needs some
    assert rounds_for(1.0, 2.0, minimum=1) == 1


# ------------------------------------------------------------------ paired ratio


def test_paired_ratio_matches_scipy_paired_t_test_on_logs() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(900, 1100, size=12)
    b = a * rng.normal(0.9, 0.03, size=12)
    result = paired_ratio(a.tolist(), b.tolist())
    reference = stats.ttest_rel(np.log(b), np.log(a))
    ci = reference.confidence_interval(confidence_level=0.95)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.low == pytest.approx(math.exp(ci.low), rel=1e-9)
    assert result.high == pytest.approx(math.exp(ci.high), rel=1e-9)
    assert result.ratio == pytest.approx(stats.gmean(b / a), rel=1e-9)
    assert result.low < result.ratio < result.high
    assert result.rounds == 12


def test_paired_ratio_cancels_a_shared_disturbance() -> None:
    # the machine halves both arms' speed in round 2: the paired ratio does not move
    a = [1000.0, 500.0, 1000.0, 1000.0]
    b = [900.0, 450.0, 900.0, 900.0]
    result = paired_ratio(a, b)
    assert result.ratio == pytest.approx(0.9)
    assert result.spread == pytest.approx((0.9, 0.9))
    assert result.low is None and result.p_value is None  # no spread at all


def test_paired_ratio_drops_rounds_without_a_measurement() -> None:
    result = paired_ratio([100.0, 0.0, 100.0], [90.0, 80.0, 92.0])
    assert result.rounds == 2
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([0.0], [1.0])
    with pytest.raises(ValueError, match="length"):
        paired_ratio([1.0, 2.0], [1.0])


def test_paired_ratio_round_trips_through_json_dict() -> None:
    result = paired_ratio([100.0, 101.0, 99.0], [95.0, 97.0, 92.0])
    again = PairedRatio.from_dict(result.to_dict())
    assert again.ratio == pytest.approx(result.ratio, rel=1e-5)
    assert again.per_round == pytest.approx(result.per_round, rel=1e-5)
    assert again.rounds == result.rounds


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_mean_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(1)
    values = rng.beta(8, 1, size=300)
    bound = bootstrap_mean(values, level=0.9, seed=4)
    reference = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=0.9,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(4),
    ).confidence_interval
    assert bound.low == pytest.approx(reference.low, rel=1e-9)
    assert bound.high == pytest.approx(reference.high, rel=1e-9)
    assert bound.low < bound.mean < bound.high


def test_recall_lower_bound_covers_the_true_mean() -> None:
    # 200 of 2000 draws from a recall distribution whose true mean is 0.95: the 95%
    # lower bound should sit below 0.95 in about 95 of 100 samples (at least 88 here)
    rng = np.random.default_rng(2024)
    population = np.concatenate([np.ones(1700), np.full(200, 0.7), np.full(100, 0.5)])
    true_mean = population.mean()
    covered = 0
    for i in range(100):
        sample = rng.choice(population, size=200)
        covered += recall_lower_bound(sample, seed=i) <= true_mean
    assert covered >= 88


def test_recall_lower_bound_is_below_the_mean_and_exact_when_constant() -> None:
    per_query = [1.0] * 180 + [0.6] * 20
    low = recall_lower_bound(per_query)
    assert low < float(np.mean(per_query))
    assert recall_lower_bound([0.9] * 50) == pytest.approx(0.9)


def test_paired_difference_is_the_bootstrap_of_the_differences() -> None:
    a = np.array([1.0, 0.9, 0.8, 1.0, 0.7, 0.9])
    b = a - np.array([0.1, 0.0, 0.1, 0.0, 0.1, 0.1])
    diff = paired_difference(a, b, seed=3)
    direct = bootstrap_mean(b - a, seed=3)
    assert diff.mean == pytest.approx(-1 / 15)
    assert (diff.low, diff.high) == pytest.approx((direct.low, direct.high))
    with pytest.raises(ValueError, match="length"):
        paired_difference([1.0, 2.0], [1.0])
