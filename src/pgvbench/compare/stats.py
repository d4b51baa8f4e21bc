"""The decision rule of the regression gate, on plain samples.

A metric regressed when the change is both *significant* and *large enough*:

- with repeats on both sides, a two-sided Mann-Whitney U test must give p < alpha and the
  median must move by more than the metric's minimum effect in the bad direction (asv's
  rule; the effect floor keeps a significant 1% wobble from failing CI);
- with a single sample on either side (or too few repeats for p < alpha to be reachable)
  there is no test: the minimum effect alone decides, and the verdict says so;
- recall is compared as an absolute drop of its mean (it is measured once per point over
  a fixed query set, so it has no repeats to test).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from typing import Literal

from scipy.stats import mannwhitneyu  # type: ignore[import-untyped, unused-ignore]

Verdict = Literal["regression", "improvement", "unchanged"]
Method = Literal["mann-whitney", "threshold", "absolute"]


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """How one metric is judged."""

    name: str
    better: Literal["higher", "lower"]
    min_effect: float  # relative (0.05 = 5%) unless ``absolute``
    absolute: bool = False
    unit: str = ""
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Decision:
    base: float
    current: float
    change: float  # relative (current/base - 1) or absolute (current - base)
    p_value: float | None
    method: Method
    verdict: Verdict
    reason: str


def min_p_value(n_base: int, n_current: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give for these sizes."""
    return min(1.0, 2.0 / math.comb(n_base + n_current, n_base))


def decide(
    rule: MetricRule,
    base: Sequence[float],
    current: Sequence[float],
    *,
    alpha: float,
) -> Decision:
    """Judge ``current`` against ``base`` for one metric (samples: one value per repeat)."""
    if not base or not current:
        raise ValueError("decide needs at least one sample on each side")
    b, c = statistics.median(base), statistics.median(current)
    sign = 1.0 if rule.better == "lower" else -1.0  # + means worse
    if rule.absolute:
        change = c - b
        worse = sign * change
        verdict = _by_effect(worse, rule.min_effect)
        return Decision(
            b,
            c,
            change,
            None,
            "absolute",
            verdict,
            f"{'drop' if change < 0 else 'change'} {abs(change):.4f} vs allowed "
            f"{rule.min_effect:g} (absolute)",
        )
    change = (c - b) / b if b != 0 else (0.0 if c == 0 else math.inf)
    worse = sign * change
    effect_note = f"{abs(change):.1%} vs minimum effect {rule.min_effect:.0%}"
    n_b, n_c = len(base), len(current)
    if n_b >= 2 and n_c >= 2 and min_p_value(n_b, n_c) < alpha:
        p = _mann_whitney(base, current)
        if p < alpha:
            verdict = _by_effect(worse, rule.min_effect)
            why = f"p = {p:.2g} < {alpha:g}; {effect_note}"
        else:
            verdict = "unchanged"
            why = f"p = {p:.2g} >= {alpha:g}: not significant ({effect_note})"
        return Decision(b, c, change, p, "mann-whitney", verdict, why)
    if n_b >= 2 and n_c >= 2:
        why = (
            f"threshold only: {n_b} vs {n_c} repeats cannot reach p < {alpha:g} "
            f"(smallest p {min_p_value(n_b, n_c):.2g}); {effect_note}"
        )
    else:
        why = f"threshold only (single sample, no significance test); {effect_note}"
    return Decision(b, c, change, None, "threshold", _by_effect(worse, rule.min_effect), why)


def _by_effect(worse: float, min_effect: float) -> Verdict:
    if worse > min_effect:
        return "regression"
    if -worse > min_effect:
        return "improvement"
    return "unchanged"


def _mann_whitney(base: Sequence[float], current: Sequence[float]) -> float:
    if len(set(base)) == 1 and set(base) == set(current):
        return 1.0  # identical constant samples: scipy would warn about the ties
    result = mannwhitneyu(list(base), list(current), alternative="two-sided")
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p
