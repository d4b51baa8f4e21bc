"""Which sweep points are worth running: the recall/QPS Pareto front and target picks.

Only points that are ``valid`` and carry a recall measurement take part: an
invalid point (too many errors, too short, ...) must never be recommended, and a
point without recall cannot be placed on the recall axis.

A point *clears* a target on the one-sided 95% lower confidence bound of its mean recall
(bootstrap over the recall queries: they are a sample of the queries users will send),
not on the mean itself; files without the bound fall back to the mean. With a p5 target
the 5th percentile must clear it too.

Ties are broken deterministically by :func:`point_order_key` (index label, then
query parameters, then concurrency), so the same results always give the same
answer regardless of the order the points were recorded in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..results import Results, SweepPoint

DEFAULT_TARGET_RECALL = 0.95

# Recall means are averages of fractions; allow float noise so a mean that is
# "0.95" up to rounding still meets a 0.95 target.
_RECALL_EPSILON = 1e-9


def measured_points(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The points that may be compared: valid and with a recall measurement."""
    return [p for p in points if p.valid and p.recall is not None]


def point_order_key(point: SweepPoint) -> tuple[str, tuple[tuple[str, int], ...], int]:
    """A total, stable order over points that is independent of recording order."""
    return (point.index, tuple(sorted(point.query_params.items())), point.concurrency)


def _recall(point: SweepPoint) -> float:
    # Only called on measured points; the assert documents (and narrows) that.
    assert point.recall is not None
    return point.recall.mean


def pareto_front(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Points not dominated in (recall.mean up, qps up), ordered by ascending recall.

    A point is dropped when another is at least as good on both axes and better
    on one. Of exact duplicates (same recall and QPS) only the first in
    :func:`point_order_key` order is kept.
    """
    best_first = sorted(
        measured_points(points),
        key=lambda p: (-_recall(p), -p.qps, point_order_key(p)),
    )
    front: list[SweepPoint] = []
    best_qps = float("-inf")
    for point in best_first:
        # Every earlier point has recall >= this one, so this point survives
        # only if it is strictly faster than all of them.
        if point.qps > best_qps:
            front.append(point)
            best_qps = point.qps
    front.reverse()
    return front


def recall_bound(point: SweepPoint) -> float:
    """The recall a target is judged on: the lower confidence bound, else the mean."""
    assert point.recall is not None
    low = point.recall.low
    return point.recall.mean if low is None else min(low, point.recall.mean)


def clears(point: SweepPoint, target: float, p5_target: float | None = None) -> bool:
    """Whether a measured point reaches the target (and the p5 target, when there is one)."""
    assert point.recall is not None
    if recall_bound(point) < target - _RECALL_EPSILON:
        return False
    return p5_target is None or point.recall.p5 >= p5_target - _RECALL_EPSILON


def fastest_at_recall(
    points: Sequence[SweepPoint], target: float, *, p5_target: float | None = None
) -> SweepPoint | None:
    """The highest-QPS measured point that :func:`clears` the target, or None.

    Ties on QPS go to the higher recall, then to :func:`point_order_key` order.
    """
    reaching = [p for p in measured_points(points) if clears(p, target, p5_target)]
    if not reaching:
        return None
    return min(reaching, key=lambda p: (-p.qps, -_recall(p), point_order_key(p)))


def knob_value(point: SweepPoint) -> int | None:
    """The point's query-time setting (ef_search / probes), None when the server set it."""
    return next(iter(point.query_params.values()), None)


def same_build(a: SweepPoint, b: SweepPoint) -> bool:
    return (a.index, a.concurrency, a.server_config) == (b.index, b.concurrency, b.server_config)


def safer_point(
    points: Sequence[SweepPoint],
    chosen: SweepPoint,
    target: float,
    margin: float,
    *,
    p5_target: float | None = None,
) -> SweepPoint | None:
    """The next larger ef_search/probes of the chosen point's build whose recall bound
    clears the target by at least ``margin`` (e.g. the build-to-build spread) on every
    build measured, or None."""
    value = knob_value(chosen)
    if value is None:
        return None
    for point in sorted(measured_points(points), key=lambda p: knob_value(p) or 0):
        knob = knob_value(point)
        if not same_build(point, chosen) or knob is None or knob <= value:
            continue
        spread = point.rebuilds
        worst = min(spread.recall) if spread is not None and spread.recall else _recall(point)
        if clears(point, target + margin, p5_target) and worst >= target - _RECALL_EPSILON:
            return point
    return None


def largest_knob(points: Sequence[SweepPoint], like: SweepPoint) -> SweepPoint:
    """The measured point of ``like``'s build with the largest ef_search/probes."""
    same = [p for p in measured_points(points) if same_build(p, like)] or [like]
    return max(same, key=lambda p: (knob_value(p) or 0, point_order_key(p)))


def highest_recall(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The measured point with the highest recall (ties: faster, then stable order)."""
    measured = measured_points(points)
    if not measured:
        return None
    return min(measured, key=lambda p: (-_recall(p), -p.qps, point_order_key(p)))


def resolve_target_p5(results: Results) -> float | None:
    """The spec's ``[query] target_recall_p5``, None when it sets none."""
    query: Any = results.spec.get("query")
    target = query.get("target_recall_p5") if isinstance(query, dict) else None
    if isinstance(target, int | float) and not isinstance(target, bool):
        return float(target)
    return None


def resolve_target_recall(results: Results, override: float | None = None) -> float:
    """The recall target: an explicit override, else the spec's, else 0.95."""
    if override is not None:
        return override
    query: Any = results.spec.get("query")
    target = query.get("target_recall") if isinstance(query, dict) else None
    # bool is an int subclass; a `true` in the spec is a mistake, not a target.
    if isinstance(target, int | float) and not isinstance(target, bool):
        return float(target)
    return DEFAULT_TARGET_RECALL
