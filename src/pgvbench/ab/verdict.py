"""Per-metric verdicts of ``pgvbench ab`` from paired rounds (and paired recall queries).

QPS, p50, p99 and blocks/query: the ratio B/A over rounds (analysis.paired.paired_ratio:
geometric mean, Student-t interval on the logs). Recall: the mean difference B - A over
the recall queries (paired bootstrap). A metric regressed when its interval lies wholly
on the bad side AND the estimated change is at least the metric's minimum effect; an
interval that holds zero is a difference smaller than the noise. Codes only: the
sentences are report.py's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ..analysis.paired import paired_difference, paired_ratio
from .rules import DEFAULT_ALPHA, AbRule

Verdict = Literal["regression", "improvement", "unchanged", "skipped"]
# why: regressed | improved | below_noise (interval holds 0) | below_min_effect (a real
# difference, smaller than the minimum effect) | unavailable (not measured)
Why = Literal["regressed", "improved", "below_noise", "below_min_effect", "unavailable"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricVerdict:
    metric: str
    verdict: Verdict
    why: Why
    a: float | None = None  # A's typical value (geometric mean over rounds; mean recall)
    b: float | None = None
    change: float | None = None  # relative (B/A - 1) or absolute (B - A)
    low: float | None = None  # interval of the change
    high: float | None = None
    p_value: float | None = None
    n: int = 0  # rounds, or recall queries
    absolute: bool = False
    min_effect: float = 0.0
    level: float = 0.99

    @property
    def fails(self) -> bool:
        return self.verdict == "regression"

    def to_dict(self) -> dict[str, Any]:
        return {
            k: _r(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricVerdict:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def judge_ratio(
    rule: AbRule,
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> MetricVerdict:
    """Paired rounds of one metric (a[i], b[i] from round i)."""
    level = 1.0 - alpha
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if _positive(x) and _positive(y)]
    if len(pairs) < 2:
        return MetricVerdict(
            metric=rule.name,
            verdict="skipped",
            why="unavailable",
            min_effect=rule.min_effect,
            level=level,
            n=len(pairs),
        )
    xs = [float(x) for x, _ in pairs]  # type: ignore[arg-type]
    ys = [float(y) for _, y in pairs]  # type: ignore[arg-type]
    pr = paired_ratio(xs, ys, level=level)
    change = pr.ratio - 1.0
    # no spread (every round the same ratio, e.g. blocks of a deterministic plan): exact
    low = (pr.low if pr.low is not None else pr.ratio) - 1.0
    high = (pr.high if pr.high is not None else pr.ratio) - 1.0
    verdict, why = _decide(rule, change, low, high)
    return MetricVerdict(
        metric=rule.name,
        verdict=verdict,
        why=why,
        a=_geomean(xs),
        b=_geomean(ys),
        change=change,
        low=low,
        high=high,
        p_value=pr.p_value,
        n=pr.rounds,
        min_effect=rule.min_effect,
        level=level,
    )


def judge_recall(
    rule: AbRule,
    a_per_query: Sequence[float] | np.ndarray,
    b_per_query: Sequence[float] | np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> MetricVerdict:
    """Recall of the same queries under A and B: mean difference, bootstrap interval."""
    level = 1.0 - alpha
    bound = paired_difference(a_per_query, b_per_query, level=level, seed=seed)
    verdict, why = _decide(rule, bound.mean, bound.low, bound.high)
    return MetricVerdict(
        metric=rule.name,
        verdict=verdict,
        why=why,
        a=float(np.mean(a_per_query)),
        b=float(np.mean(b_per_query)),
        change=bound.mean,
        low=bound.low,
        high=bound.high,
        n=bound.n,
        absolute=True,
        min_effect=rule.min_effect,
        level=level,
    )


def _decide(rule: AbRule, change: float, low: float, high: float) -> tuple[Verdict, Why]:
    # express everything as "worse by": positive is the bad direction
    worse, worse_low, worse_high = (
        (-change, -high, -low) if rule.better == "higher" else (change, low, high)
    )
    if worse_low <= 0.0 <= worse_high:
        return "unchanged", "below_noise"
    if worse_low > 0.0:
        if worse >= rule.min_effect:
            return "regression", "regressed"
        return "unchanged", "below_min_effect"
    if -worse >= rule.min_effect:
        return "improvement", "improved"
    return "unchanged", "below_min_effect"


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _geomean(values: Sequence[float]) -> float:
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))


def _r(value: float) -> float:
    return float(f"{value:.6g}") if math.isfinite(value) else value
