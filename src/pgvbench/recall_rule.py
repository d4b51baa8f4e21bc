"""When a returned neighbour counts as a hit: the recall tolerance of ``[query] recall_epsilon``.

A returned id is a hit when its true distance to the query is at most the k-th true
distance plus a tolerance, so any of several points tied at the k-th distance counts.

- The default follows ann-benchmarks (``knn_threshold``: ``d_k + epsilon`` with
  ``epsilon = 1e-3``, absolute, in the metric's own distance: Euclidean distance, not its
  square; 1 - cosine similarity), so recall can be put beside published ann-benchmarks plots.
- ``"strict"`` is pgvbench's earlier rule: ``d_k + 1e-5 x max(1, |d_k|)``; results files
  written before the rule was recorded used it.
- A number sets an absolute epsilon (``0`` counts exact ties only).

Kept free of numpy so that the spec and results modules can import it at start-up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

STRICT_SPELLING = "strict"
ANN_BENCHMARKS_EPSILON = 1e-3
STRICT_EPSILON = 1e-5


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecallRule:
    """Hit when distance <= d_k + epsilon (absolute) or d_k + epsilon x max(1, |d_k|)."""

    epsilon: float
    relative: bool = False

    def limit(self, kth: float) -> float:
        """The largest distance that still counts as a hit, given the k-th true distance."""
        scale = max(1.0, abs(kth)) if self.relative else 1.0
        return kth + self.epsilon * scale

    @property
    def spec_value(self) -> float | str:
        """The ``[query] recall_epsilon`` spelling of this rule."""
        return STRICT_SPELLING if self == STRICT else self.epsilon

    def describe(self) -> str:
        """How the report names the rule, e.g. "within 0.001 of the k-th true distance"."""
        if self.relative:
            text = f"within {self.epsilon:g} × max(1, |d_k|) of the k-th true distance d_k"
            return text + (" (strict)" if self == STRICT else "")
        if self.epsilon == 0:
            return "exact ties with the k-th true distance only"
        how = "absolute, as ann-benchmarks" if self == ANN_BENCHMARKS else "absolute"
        return f"within {self.epsilon:g} of the k-th true distance ({how})"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecallRule:
        return cls(epsilon=float(data["epsilon"]), relative=bool(data.get("relative", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "relative": self.relative}


ANN_BENCHMARKS = RecallRule(epsilon=ANN_BENCHMARKS_EPSILON)
STRICT = RecallRule(epsilon=STRICT_EPSILON, relative=True)
DEFAULT_RULE = ANN_BENCHMARKS


def rule_from_spec(value: float | str) -> RecallRule:
    """The rule a validated ``recall_epsilon`` value names ("strict" or a number >= 0)."""
    if value == STRICT_SPELLING:
        return STRICT
    return RecallRule(epsilon=float(value))
