"""Statistics for interleaved measurements and margins: paired ratios, bootstrap bounds.

Everything pgvbench reports as a ratio or a difference (engine fidelity, A vs B, "x the
exact scan") comes from *paired* windows: A and B measured in the same round, a few
seconds apart, so a busy neighbour hits both. The unit of analysis is the round, not
the operation: operations within one window share its machine state and are not
independent. Ratios are averaged on the log scale (a 2x and a 0.5x round cancel), with a
Student-t interval over rounds, the usual paired test (``scipy.stats.ttest_rel`` on the
logs). Recall margins bootstrap over queries (``scipy.stats.bootstrap``): the recall
query set is a sample of the queries users will send.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped, unused-ignore]

DEFAULT_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairedRatio:
    """b / a over paired rounds: geometric mean of the per-round ratios, its interval.

    ``low``/``high`` are None with fewer than 2 rounds (no spread to estimate) or when
    every round gave the same ratio; ``p_value`` tests ratio == 1 (two-sided).
    """

    ratio: float
    low: float | None
    high: float | None
    p_value: float | None
    rounds: int
    level: float
    per_round: tuple[float, ...]  # b_i / a_i in round order

    @property
    def spread(self) -> tuple[float, float]:
        """Smallest and largest single-round ratio."""
        return min(self.per_round), max(self.per_round)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": _r(self.ratio),
            "low": _r(self.low),
            "high": _r(self.high),
            "p_value": None if self.p_value is None else float(f"{self.p_value:.4g}"),
            "rounds": self.rounds,
            "level": self.level,
            "per_round": [_r(x) for x in self.per_round],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedRatio:
        return cls(
            ratio=float(data["ratio"]),
            low=None if data.get("low") is None else float(data["low"]),
            high=None if data.get("high") is None else float(data["high"]),
            p_value=None if data.get("p_value") is None else float(data["p_value"]),
            rounds=int(data["rounds"]),
            level=float(data["level"]),
            per_round=tuple(float(x) for x in data["per_round"]),
        )


def paired_ratio(
    a: Sequence[float], b: Sequence[float], *, level: float = DEFAULT_LEVEL
) -> PairedRatio:
    """The ratio b/a from paired rounds (a[i] and b[i] measured in the same round).

    Rounds where either side is not a positive finite number are dropped (a window that
    measured nothing has no ratio); at least one usable round is required.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if _positive(x) and _positive(y)]
    if not pairs:
        raise ValueError("no round has a positive value on both sides")
    logs = np.log([y for _, y in pairs]) - np.log([x for x, _ in pairs])
    per_round = tuple(float(math.exp(v)) for v in logs)
    ratio = float(math.exp(float(logs.mean())))
    if logs.size < 2 or float(np.ptp(logs)) == 0.0:
        return PairedRatio(
            ratio=ratio,
            low=None,
            high=None,
            p_value=None,
            rounds=len(pairs),
            level=level,
            per_round=per_round,
        )
    test = stats.ttest_1samp(logs, 0.0)
    ci = test.confidence_interval(confidence_level=level)
    return PairedRatio(
        ratio=ratio,
        low=float(math.exp(ci.low)),
        high=float(math.exp(ci.high)),
        p_value=float(test.pvalue),
        rounds=len(pairs),
        level=level,
        per_round=per_round,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeanBound:
    """A mean over units (queries, windows) with a bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    level: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _r(self.mean),
            "low": _r(self.low),
            "high": _r(self.high),
            "level": self.level,
            "n": self.n,
        }


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> MeanBound:
    """Two-sided percentile-bootstrap interval of the mean (seeded: same data, same bound).

    ``low`` is also the one-sided lower bound at level (1 + level) / 2: with level 0.90
    the mean is at least ``low`` with 95% confidence.
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    mean = float(data.mean())
    if data.size == 1 or float(np.ptp(data)) == 0.0:
        return MeanBound(mean=mean, low=mean, high=mean, level=level, n=int(data.size))
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return MeanBound(
        mean=mean,
        low=float(min(ci.low, mean)),
        high=float(max(ci.high, mean)),
        level=level,
        n=int(data.size),
    )


def recall_lower_bound(
    per_query: Sequence[float] | np.ndarray, *, confidence: float = DEFAULT_LEVEL, seed: int = 0
) -> float:
    """One-sided lower confidence bound of mean recall over queries (bootstrap)."""
    level = 2.0 * confidence - 1.0  # two-sided level whose lower end is the one-sided bound
    return bootstrap_mean(per_query, level=level, seed=seed).low


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> MeanBound:
    """Mean of b - a over paired units (e.g. recall of the same queries), bootstrapped."""
    left = np.asarray(a, dtype=np.float64).reshape(-1)
    right = np.asarray(b, dtype=np.float64).reshape(-1)
    if left.shape != right.shape:
        raise ValueError(f"paired samples differ in length: {left.size} and {right.size}")
    return bootstrap_mean(right - left, level=level, seed=seed)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _r(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")
