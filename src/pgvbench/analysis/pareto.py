"""Which sweep points are worth running: the recall/QPS Pareto front and target picks.

Only points that are ``valid`` and carry a recall measurement take part: an
invalid point (too many errors, too short, ...) must never be recommended, and a
point without recall cannot be placed on the recall axis.

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


def fastest_at_recall(points: Sequence[SweepPoint], target: float) -> SweepPoint | None:
    """The highest-QPS measured point with ``recall.mean >= target``, or None.

    Ties on QPS go to the higher recall, then to :func:`point_order_key` order.
    """
    reaching = [p for p in measured_points(points) if _recall(p) >= target - _RECALL_EPSILON]
    if not reaching:
        return None
    return min(reaching, key=lambda p: (-p.qps, -_recall(p), point_order_key(p)))


def highest_recall(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The measured point with the highest recall (ties: faster, then stable order)."""
    measured = measured_points(points)
    if not measured:
        return None
    return min(measured, key=lambda p: (-_recall(p), -p.qps, point_order_key(p)))


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
