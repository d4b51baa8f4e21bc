"""A sweep point's recall records in results.json (``results.Recall``, ``results.BuildSpread``):
kept apart so results.py stays one screenful of records per concern."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Recall:
    """Per-query recall@k over the recall queries, summarised (fields after min: absent in
    older files)."""

    mean: float
    p5: float
    min: float
    low: float | None = None  # one-sided 95% lower bound of the mean (bootstrap over queries)
    p1: float | None = None
    zero: int | None = None  # queries whose recall was 0: none of their true neighbours found
    queries: int | None = None  # how many queries the figures are over


@dataclasses.dataclass
class BuildSpread:
    """One operating point measured on every build of its index ([query] rebuilds = N):
    the first value is the sweep's own build, the others fresh builds of the same spec."""

    recall: list[float]  # mean recall per build
    qps: list[float]  # one timed window per build

    @property
    def recall_spread(self) -> float:
        return max(self.recall) - min(self.recall) if self.recall else 0.0
