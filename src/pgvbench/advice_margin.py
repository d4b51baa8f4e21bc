"""The margin of an "X beats Y" sentence: the difference, the noise it was measured
against, and whether the difference clears that noise.

Every study that tells the user to use one thing over another words its margin through
this module, so the sentences read alike:

- paired rounds (A and B in the same round, :mod:`pgvbench.analysis.paired`): the noise is
  the confidence interval of the paired ratio; decisive when it excludes 1;
- independent samples of each arm (repeats, one-second windows): the noise is half the
  range of each arm, added (the two ranges touch when the difference equals it); decisive
  when the difference exceeds it, i.e. the ranges do not overlap;
- recall of the same queries under both arms: a bootstrap interval of the mean difference
  over queries (``paired_difference``); decisive when it excludes 0.

With a single measurement per arm there is no noise to compare against: the margin says
so and is never decisive. Pure functions, no database.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .analysis.paired import PairedRatio, paired_difference, paired_ratio

Scale = Literal["relative", "absolute"]
EvidenceValue = float | int | str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Margin:
    """How far B is from A, against the noise of the measurement.

    ``difference`` is B relative to A (``b / a - 1``) for ``relative`` margins and ``b - a``
    for ``absolute`` ones (recall); ``noise`` the half-width of the band the difference must
    leave, in the same unit (None: not measurable, one measurement per arm); ``basis`` what
    the noise was measured over ("paired rounds", "repeats", "windows", "queries") and ``n``
    how many of those units the smaller arm had.
    """

    difference: float
    noise: float | None
    decisive: bool
    scale: Scale
    basis: str
    n: int

    def evidence(self, prefix: str = "margin_") -> dict[str, EvidenceValue]:
        """The margin's figures for ``Recommendation.evidence``."""
        out: dict[str, EvidenceValue] = {
            f"{prefix}difference": round(self.difference, 4),
            f"{prefix}decisive": "yes" if self.decisive else "no",
            f"{prefix}basis": self.basis,
            f"{prefix}n": self.n,
        }
        if self.noise is not None:
            out[f"{prefix}noise"] = round(self.noise, 4)
        return out


def from_paired(ratio: PairedRatio) -> Margin:
    """The margin of a paired ratio (B/A over rounds): its interval is the noise."""
    difference = ratio.ratio - 1.0
    if ratio.low is None or ratio.high is None:
        identical = ratio.rounds >= 2  # every round gave the same ratio: no spread at all
        return Margin(
            difference=difference,
            noise=0.0 if identical else None,
            decisive=identical and difference != 0.0,
            scale="relative",
            basis="paired rounds",
            n=ratio.rounds,
        )
    noise = max(ratio.high - ratio.ratio, ratio.ratio - ratio.low)
    return Margin(
        difference=difference,
        noise=noise,
        decisive=ratio.low > 1.0 or ratio.high < 1.0,
        scale="relative",
        basis="paired rounds",
        n=ratio.rounds,
    )


def from_rounds(a: Sequence[float], b: Sequence[float]) -> Margin:
    """The margin of B over A from paired rounds (``a[i]`` and ``b[i]`` in round i)."""
    return from_paired(paired_ratio(a, b))


def from_samples(a: Sequence[float], b: Sequence[float], *, basis: str = "repeats") -> Margin:
    """The margin of B over A from independent samples of each (repeats or windows).

    Relative to A's mean; the noise is both arms' half-ranges added, so "decisive" means
    the two ranges do not overlap. Non-finite samples are ignored.
    """
    left = [float(x) for x in a if math.isfinite(x)]
    right = [float(x) for x in b if math.isfinite(x)]
    if not left or not right:
        raise ValueError("each arm needs at least one finite sample")
    base = float(np.mean(left))
    if base == 0.0:
        raise ValueError("arm A's mean is 0: no relative difference")
    difference = float(np.mean(right)) / base - 1.0
    n = min(len(left), len(right))
    if n < 2:
        return Margin(
            difference=difference, noise=None, decisive=False, scale="relative", basis=basis, n=n
        )
    noise = (float(np.ptp(left)) + float(np.ptp(right))) / 2.0 / abs(base)
    return Margin(
        difference=difference,
        noise=noise,
        decisive=abs(difference) > noise,
        scale="relative",
        basis=basis,
        n=n,
    )


def from_recall(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    basis: str = "queries",
    seed: int = 0,
) -> Margin:
    """The margin of B's recall over A's on the same queries (bootstrap over queries;
    ``basis`` names the unit when it is another, e.g. the requests of a stream)."""
    bound = paired_difference(a, b, seed=seed)
    return Margin(
        difference=bound.mean,
        noise=max(bound.high - bound.mean, bound.mean - bound.low),
        decisive=bound.low > 0.0 or bound.high < 0.0,
        scale="absolute",
        basis=basis,
        n=bound.n,
    )


def from_tolerance(difference: float, tolerance: float, *, basis: str) -> Margin:
    """An absolute difference (recall) against a spread measured outside this run, e.g.
    what separates two HNSW graphs of the same rows; ``basis`` says where it comes from."""
    return Margin(
        difference=difference,
        noise=tolerance,
        decisive=abs(difference) >= tolerance,
        scale="absolute",
        basis=basis,
        n=0,
    )


def from_single(
    a: float,
    b: float,
    *,
    basis: str = "windows",
    noise: float | None = None,
    n: int = 1,
) -> Margin:
    """One measurement per arm: B relative to A.

    ``noise`` (relative) is the spread of the same kind of measurement observed elsewhere
    in the run, e.g. how far two one-second p99s of a steady window drift apart
    (:func:`relative_range`), over ``n`` of ``basis``; without it there is nothing to weigh
    the difference against and the margin is never decisive.
    """
    if a == 0.0:
        raise ValueError("arm A is 0: no relative difference")
    difference = b / a - 1.0
    return Margin(
        difference=difference,
        noise=noise,
        decisive=noise is not None and abs(difference) > noise,
        scale="relative",
        basis=basis,
        n=n,
    )


def relative_range(values: Sequence[float]) -> float | None:
    """(max - min) / mean of ``values``: how far two of them drift apart (None: < 2 values)."""
    kept = [float(v) for v in values if math.isfinite(v)]
    if len(kept) < 2 or float(np.mean(kept)) == 0.0:
        return None
    return float(np.ptp(kept)) / abs(float(np.mean(kept)))


# --------------------------------------------------------------------------- wording


def difference_text(margin: Margin) -> str:
    """``+23%`` (relative) or ``+0.012`` (absolute, recall)."""
    if margin.scale == "relative":
        return (
            f"{margin.difference:+.0%}"
            if abs(margin.difference) >= 0.1
            else (f"{margin.difference:+.1%}")
        )
    return f"{margin.difference:+.3f}"


def noise_text(margin: Margin) -> str:
    """``±5% over 3 repeats``; ``one measurement each, no spread measured`` without noise."""
    if margin.noise is None:
        return "one measurement each, no spread measured"
    band = (
        (f"±{margin.noise:.0%}" if margin.noise >= 0.1 else f"±{margin.noise:.1%}")
        if margin.scale == "relative"
        else f"±{margin.noise:.3f}"
    )
    if margin.n == 0:  # a spread measured elsewhere: the basis says where
        return f"{band}, {margin.basis}"
    units = margin.basis if margin.n != 1 else margin.basis.rstrip("s")
    return f"{band} over {margin.n} {units}"


def margin_clause(margin: Margin) -> str:
    """``margin +23% against noise ±5% over 3 repeats`` (the winner's sentence quotes it)."""
    return f"margin {difference_text(margin)} against noise {noise_text(margin)}"


def ahead_clause(loser: str, margin: Margin, *, measure: str = "") -> str:
    """``ahead of direct by +23% QPS (noise ±4.0% over 3 repeats)``: the winner's margin.

    Without a measured spread the lead is named as what it is, one measurement each.
    """
    what = f"{difference_text(margin)}{f' {measure}' if measure else ''}"
    if margin.noise is None:
        return (
            f"ahead of {loser} by {what} in one measurement each (no spread measured: "
            "repeat to confirm)"
        )
    return f"ahead of {loser} by {what} (noise {noise_text(margin)})"


def versus(margin: Margin, what: str = "") -> str:
    """``QPS +20%, beyond the noise of ±5.0% over 4 windows``: a difference and its verdict."""
    if margin.noise == 0.0 and margin.difference == 0.0 and margin.n > 0:
        return f"{what} the same over all {margin.n} {margin.basis}".lstrip()
    head = f"{what} {difference_text(margin)}" if what else difference_text(margin)
    if margin.noise is None:
        return f"{head} in one measurement each, no spread measured"
    verdict = "beyond" if margin.decisive else "within"
    return f"{head}, {verdict} the noise of {noise_text(margin)}"


def within_noise(first: str, second: str, margin: Margin) -> str:
    """The sentence that replaces a winner when the difference does not clear the noise."""
    if margin.noise is None:
        return (
            f"{first} and {second} differ by {difference_text(margin)} in a single "
            "measurement each, with no spread to weigh it against; treat it as a hint and "
            "measure with repeats before picking"
        )
    return (
        f"{first} and {second} are within the noise of this run ({difference_text(margin)}, "
        f"noise {noise_text(margin)}); pick on other grounds or measure longer"
    )
