"""Analysis of sweep results: Pareto fronts and recall-targeted picks."""

from __future__ import annotations

from .pareto import (
    DEFAULT_TARGET_RECALL,
    fastest_at_recall,
    highest_recall,
    measured_points,
    pareto_front,
    point_order_key,
    resolve_target_recall,
)

__all__ = [
    "DEFAULT_TARGET_RECALL",
    "fastest_at_recall",
    "highest_recall",
    "measured_points",
    "pareto_front",
    "point_order_key",
    "resolve_target_recall",
]
