"""Ground truth while rows are being written: the exact top-k of each stream entry over
the base plus the rows inserted before it was served, and the stale hits that follow."""

from __future__ import annotations

import dataclasses

import numpy as np

from ...datasets.groundtruth import GroundTruth
from ...engine.histogram import LatencyHistogram
from ...metrics import Metric


@dataclasses.dataclass
class Served:
    """What one cache configuration served over the whole stream."""

    ids: np.ndarray  # stream x k, -1 padded, in combined-base row numbers
    hit: np.ndarray  # bool per stream entry
    filled_at: np.ndarray  # writes done when the served result was computed
    served_at: np.ndarray  # writes done when it was served
    latency: LatencyHistogram
    hit_latency: LatencyHistogram
    miss_latency: LatencyHistogram
    seconds: float
    write_vectors: np.ndarray  # writes x dim
    write_ids: list[int]


def cross_distances(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """pgvector-convention distances between every row of ``a`` and every row of ``b``."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dots = a64 @ b64.T
    if metric is Metric.INNER_PRODUCT:
        return -dots
    na = np.einsum("ij,ij->i", a64, a64)[:, None]
    nb = np.einsum("ij,ij->i", b64, b64)[None, :]
    if metric is Metric.L2:
        out: np.ndarray = np.sqrt(np.maximum(na + nb - 2.0 * dots, 0.0))
        return out
    norms = np.sqrt(na * nb)
    sim = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    dist: np.ndarray = 1.0 - sim
    return dist


def truth_with_writes(
    base_ids: np.ndarray,
    base_dist: np.ndarray,
    vectors: np.ndarray,
    written: np.ndarray,
    served_at: np.ndarray,
    n_base: int,
    k: int,
    metric: Metric,
) -> GroundTruth:
    """Exact top-k of each entry over the base plus the rows written before it was served."""
    if written.shape[0] == 0:
        return GroundTruth(base_ids, base_dist, "exact", 0.0, False)
    w = written.shape[0]
    extra = cross_distances(vectors, written, metric)
    extra[np.arange(w)[None, :] >= served_at[:, None]] = np.inf
    ids = np.concatenate([base_ids, np.broadcast_to(n_base + np.arange(w), extra.shape)], axis=1)
    dist = np.concatenate([base_dist.astype(np.float64), extra], axis=1)
    order = np.lexsort((ids, dist), axis=-1)[:, :k]
    return GroundTruth(
        np.take_along_axis(ids, order, 1).astype(np.int64),
        np.take_along_axis(dist, order, 1).astype(np.float32),
        "exact incl. writes",
        0.0,
        False,
    )


def stale_hits(served: Served, truth: GroundTruth, n_base: int) -> int:
    """Hits whose true top-k holds a row written after the result was cached but not served."""
    stale = 0
    for i in np.flatnonzero(served.hit & (served.served_at > served.filled_at)):
        fresh = truth.ids[i][truth.ids[i] >= n_base] - n_base
        fresh = fresh[(fresh >= served.filled_at[i]) & (fresh < served.served_at[i])]
        if fresh.size and not np.isin(fresh + n_base, served.ids[i]).all():
            stale += 1
    return stale
