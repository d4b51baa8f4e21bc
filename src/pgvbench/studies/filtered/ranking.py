"""Which strategy wins a bucket: the lowest latency among valid rows that reach the recall
and fill targets (no prose: advice.py and report.py word the outcome)."""

from __future__ import annotations

import math
from typing import Literal

from .records import FilteredComparison, FilteredRow

LatencyKey = Literal["p50", "p95", "p99"]
RECALL_TARGET = 0.9
FILL_TARGET = 0.99
#: measured on the bucket's hot labels (agents) only: it cannot answer for the whole bucket
HOT_ONLY = "partial_hot"


def latency_of(row: FilteredRow, key: LatencyKey) -> float | None:
    value: float | None = getattr(row, f"latency_{key}_ms")
    return value


def eligible(row: FilteredRow, recall_target: float, fill_target: float, key: LatencyKey) -> bool:
    return (
        row.valid
        and row.recall_mean is not None
        and row.recall_mean >= recall_target
        and row.fill_mean is not None
        and row.fill_mean >= fill_target
        and latency_of(row, key) is not None
    )


def ranked(
    comparison: FilteredComparison,
    bucket: str,
    recall_target: float,
    fill_target: float,
    key: LatencyKey,
    *,
    hot_only: bool = False,
) -> list[FilteredRow]:
    """The bucket's eligible rows, fastest first (ties: higher recall first): the strategies
    that serve every query of the bucket, or (``hot_only``) the one measured on its hot
    labels alone, which must not win a bucket whose other labels it cannot serve."""
    rows = [
        r
        for r in comparison.rows
        if r.bucket == bucket
        and (r.strategy == HOT_ONLY) == hot_only
        and eligible(r, recall_target, fill_target, key)
    ]
    return sorted(rows, key=lambda r: (latency_of(r, key) or math.inf, -(r.recall_mean or 0.0)))


def winners(
    comparison: FilteredComparison,
    *,
    recall_target: float = RECALL_TARGET,
    fill_target: float = FILL_TARGET,
    latency: LatencyKey = "p99",
) -> dict[str, str]:
    """bucket label -> the strategy (with its ef_search in a sweep: ``row.arm``) with the
    lowest latency among valid rows with recall
    >= ``recall_target`` and fill >= ``fill_target``; buckets where none qualifies are
    left out. ``partial_hot`` rows cover the bucket's hot labels only (see ``scope``), so they
    never win a bucket: :func:`hot_alternative` says when they beat its winner on those."""
    out: dict[str, str] = {}
    for info in comparison.buckets:
        best = ranked(comparison, info.label, recall_target, fill_target, latency)
        if best:
            out[info.label] = best[0].arm
    return out


def hot_alternative(
    comparison: FilteredComparison,
    bucket: str,
    *,
    recall_target: float = RECALL_TARGET,
    fill_target: float = FILL_TARGET,
    key: LatencyKey = "p99",
) -> FilteredRow | None:
    """The hot-labels-only row (``partial_hot``) that qualifies and is faster than the
    bucket's winner (or qualifies where nothing else does); None otherwise."""
    hot = ranked(comparison, bucket, recall_target, fill_target, key, hot_only=True)
    if not hot:
        return None
    best = ranked(comparison, bucket, recall_target, fill_target, key)
    if best and (latency_of(hot[0], key) or math.inf) >= (latency_of(best[0], key) or math.inf):
        return None
    return hot[0]
