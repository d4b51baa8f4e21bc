"""Tie-aware recall@k of approximate search results against exact ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgvbench.datasets.base import coerce_metric
from pgvbench.datasets.groundtruth import GroundTruth, check_k, pair_distances
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric
from pgvbench.recall_rule import DEFAULT_RULE, RecallRule


def _pad_results(returned_ids: Sequence[Sequence[int]] | np.ndarray, nq: int, k: int) -> np.ndarray:
    """First k returned ids of each query as an nq x k int64 array, -1 where missing."""
    if isinstance(returned_ids, np.ndarray) and returned_ids.ndim == 2:
        rows = returned_ids.shape[0]
        width = min(k, returned_ids.shape[1])
        padded = np.full((rows, k), -1, dtype=np.int64)
        padded[:, :width] = returned_ids[:, :width]
    else:
        rows = len(returned_ids)
        padded = np.full((rows, k), -1, dtype=np.int64)
        for i, row in enumerate(returned_ids):
            head = np.asarray(row, dtype=np.int64).reshape(-1)[:k]
            padded[i, : head.size] = head
    if rows != nq:
        raise DatasetError(
            f"recall: got results for {rows} queries but the ground truth has {nq}; pass one "
            "result row per query, in query order"
        )
    return padded


def _drop_duplicates(ids: np.ndarray) -> np.ndarray:
    """Replace repeated ids within a row by -1 so that each id counts once."""
    ordered = np.sort(ids, axis=1)
    repeat = np.zeros_like(ordered, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    ordered[repeat] = -1
    return ordered


def _kth_limits(
    gt: GroundTruth,
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    metric: Metric,
    rule: RecallRule,
) -> np.ndarray:
    """Per query, the largest distance that still counts as a hit (see RecallRule).

    The k-th distance is recomputed in float64 (not read from gt's float32) so
    that a point tied with it compares equal even with an epsilon of 0.
    """
    far = np.argmax(gt.distances[:, :k], axis=1)
    kth_ids = gt.ids[np.arange(gt.ids.shape[0]), far]
    kth = pair_distances(base, queries, np.arange(kth_ids.size), kth_ids, metric)
    scale = np.maximum(1.0, np.abs(kth)) if rule.relative else 1.0
    limits: np.ndarray = kth + rule.epsilon * scale
    return limits


def tie_aware_recall(
    returned_ids: Sequence[Sequence[int]] | np.ndarray,
    gt: GroundTruth,
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    metric: Metric,
    *,
    rule: RecallRule = DEFAULT_RULE,
) -> np.ndarray:
    """Per-query recall@k in [0, 1] (float64, one value per query).

    A returned id is a hit if its true distance to the query is at most the k-th
    true distance plus the rule's tolerance (default: 1e-3 absolute, as ann-benchmarks;
    ``recall_rule.STRICT``: 1e-5 x max(1, |d_k|)), so any of several points tied at the
    k-th distance counts. Only the first k returned ids are considered; repeats
    count once; ids outside [0, n) count 0; fewer than k results simply count less.
    """
    metric = coerce_metric(metric, "recall")
    n = base.shape[0]
    check_k(k, n, "recall")
    nq = gt.ids.shape[0]
    if gt.k < k:
        raise DatasetError(f"recall: ground truth has k={gt.k} but recall@{k} was asked for")
    ids = _drop_duplicates(_pad_results(returned_ids, nq, k))
    valid = (ids >= 0) & (ids < n)
    # Members of the true top-k are hits by definition: only the others need distances.
    row = np.arange(nq, dtype=np.int64)[:, None]
    truth_keys = (row * n + gt.ids[:, :k]).reshape(-1)
    member = valid & np.isin(row * n + ids, truth_keys)
    hits = member.copy()
    check = valid & ~member
    if check.any():
        qi, col = np.nonzero(check)
        limit = _kth_limits(gt, queries, base, k, metric, rule)
        dist = pair_distances(base, queries, qi, ids[qi, col], metric)
        hits[qi, col] = dist <= limit[qi]
    recall: np.ndarray = hits.sum(axis=1) / k
    return recall


def summarize_recall(per_query: np.ndarray | Sequence[float]) -> tuple[float, float, float]:
    """(mean, 5th percentile, minimum) of per-query recall."""
    values = _values(per_query)
    p5 = float(np.percentile(values, 5, method="linear"))
    return float(values.mean()), p5, float(values.min())


def recall_tail(per_query: np.ndarray | Sequence[float]) -> tuple[float, int]:
    """(1st percentile, number of queries with recall 0) of per-query recall."""
    values = _values(per_query)
    return float(np.percentile(values, 1, method="linear")), int(np.count_nonzero(values == 0))


def _values(per_query: np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(per_query, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise DatasetError("recall: no per-query values to summarise (were any queries run?)")
    return values
