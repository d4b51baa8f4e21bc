"""The decision rule of the regression gate, on plain samples.

A metric regressed when the change is both *significant* and *large enough*:

- with repeats on both sides, a two-sided Mann-Whitney U test must give p < alpha and the
  median must move by more than the metric's minimum effect in the bad direction (asv's
  rule; the effect floor keeps a significant 1% wobble from failing CI);
- with a single sample on either side (or too few repeats for p < alpha to be reachable)
  there is no test: the minimum effect alone decides, and the verdict says so;
- recall is compared as an absolute drop of its mean (it is measured once per point over
  a fixed query set, so it has no repeats to test);
- when the base pools three or more runs (``pgvbench merge``), the minimum effect is
  raised to ``noise_k`` times the run-to-run variation seen between those runs: repeats
  within one run share that run's machine state, index build and client process, so they
  understate how far a fresh run can land (measured: 5-8% between runs on a 2-core VM,
  against 1-3% within one).
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


MIN_RUNS_FOR_NOISE = 3


def run_noise(rule: MetricRule, base_runs: Sequence[Sequence[float]]) -> float | None:
    """Spread of the per-run medians: relative (CV) or absolute (SD); None if < 3 runs."""
    medians = [statistics.median(g) for g in base_runs if g]
    if len(medians) < MIN_RUNS_FOR_NOISE:
        return None
    sd = statistics.stdev(medians)
    if rule.absolute:
        return sd
    mean = statistics.fmean(medians)
    return sd / abs(mean) if mean else None


def decide(
    rule: MetricRule,
    base: Sequence[float],
    current: Sequence[float],
    *,
    alpha: float,
    base_runs: Sequence[Sequence[float]] = (),
    noise_k: float = 3.0,
) -> Decision:
    """Judge ``current`` against ``base`` for one metric (samples: one value per repeat).

    ``base_runs`` are the base samples grouped by source run (a merged baseline); with
    three or more groups the minimum effect becomes max(rule's, noise_k x their spread).
    """
    if not base or not current:
        raise ValueError("decide needs at least one sample on each side")
    b, c = statistics.median(base), statistics.median(current)
    sign = 1.0 if rule.better == "lower" else -1.0  # + means worse
    noise = run_noise(rule, base_runs)
    floor = rule.min_effect
    floor_note = f"minimum effect {_fmt(rule, floor)}"
    if noise is not None and noise_k * noise > floor:
        floor = noise_k * noise
        floor_note = (
            f"minimum effect {_fmt(rule, floor)} = {noise_k:g} x the base's run-to-run "
            f"variation ({_fmt(rule, noise)} over {len(base_runs)} runs)"
        )
    if rule.absolute:
        change = c - b
        worse = sign * change
        verdict = _by_effect(worse, floor)
        return Decision(
            b,
            c,
            change,
            None,
            "absolute",
            verdict,
            f"{'drop' if change < 0 else 'change'} {abs(change):.4f} vs {floor_note} (absolute)",
        )
    change = (c - b) / b if b != 0 else (0.0 if c == 0 else math.inf)
    worse = sign * change
    effect_note = f"{abs(change):.1%} vs {floor_note}"
    n_b, n_c = len(base), len(current)
    if n_b >= 2 and n_c >= 2 and min_p_value(n_b, n_c) < alpha:
        p = _mann_whitney(base, current)
        if p < alpha:
            verdict = _by_effect(worse, floor)
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
    return Decision(b, c, change, None, "threshold", _by_effect(worse, floor), why)


def _fmt(rule: MetricRule, value: float) -> str:
    return f"{value:.4g}" if rule.absolute else f"{value:.1%}"


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
