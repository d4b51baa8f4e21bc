"""Exact k-nearest-neighbour ground truth, in pgvector's distance convention.

Distances are what pgvector's operators return, so that ascending order means
nearer for every metric: l2 -> Euclidean distance (``<->``), cosine -> 1 - cosine
similarity (``<=>``), ip -> negative inner product (``<#>``).

faiss does the heavy lifting (BLAS-blocked brute force); the k winners' distances
are then recomputed in float64 so that they are exact and ties sort by id.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgvbench._atomic import write_bytes_atomic
from pgvbench.datasets.base import Dataset, coerce_metric, normalize_rows_, rows_per_chunk
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric

log = logging.getLogger(__name__)

MAX_K = 100
#: Size of one converted/normalised base block: bounds the extra memory of cosine
#: (or non-float32) ground truth to well under 2 GB even for 1M x 768.
BASE_BLOCK_BYTES = 256 << 20
#: Queries whose file neighbours are re-derived exactly before the file is trusted.
SPOT_CHECK_QUERIES = 10
#: Relative slack for the spot check: files are often computed in float32.
_SPOT_CHECK_RTOL = 1e-4


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The true k nearest base rows of every query, nearest first."""

    ids: np.ndarray  # int64, nq x k
    distances: np.ndarray  # float32, nq x k, pgvector convention, ascending
    method: str  # how it was obtained, for reports
    seconds: float  # wall time of the call that produced this object
    cached: bool  # True when read from the on-disk cache

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])


# --- exact distances -------------------------------------------------------------------


def _check_ids(ids: np.ndarray, n: int, where: str) -> None:
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise DatasetError(
            f"{where}: ids must lie in [0, {n}), found {int(ids.min())}..{int(ids.max())}"
        )


def _pair_distances_chunk(b: np.ndarray, q: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances between row i of ``b`` and row i of ``q`` (float64, overwrites ``b``)."""
    if metric is Metric.L2:
        b -= q  # the difference, not |b|²+|q|²-2bq, so there is no cancellation
        l2: np.ndarray = np.sqrt(np.einsum("ij,ij->i", b, b))
        return l2
    dots: np.ndarray = np.einsum("ij,ij->i", b, q)
    if metric is Metric.INNER_PRODUCT:
        return -dots
    norms = np.sqrt(np.einsum("ij,ij->i", b, b) * np.einsum("ij,ij->i", q, q))
    # A zero vector has no direction: treat it as orthogonal (distance 1).
    similarity: np.ndarray = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return 1.0 - similarity


def pair_distances(
    base: np.ndarray,
    queries: np.ndarray,
    query_idx: np.ndarray,
    base_idx: np.ndarray,
    metric: Metric,
) -> np.ndarray:
    """Exact float64 distances between ``queries[query_idx[i]]`` and ``base[base_idx[i]]``."""
    metric = coerce_metric(metric, "pair_distances")
    base_idx = np.asarray(base_idx, dtype=np.int64).reshape(-1)
    query_idx = np.asarray(query_idx, dtype=np.int64).reshape(-1)
    _check_ids(base_idx, base.shape[0], "base ids")
    _check_ids(query_idx, queries.shape[0], "query ids")
    out = np.empty(base_idx.size, dtype=np.float64)
    step = rows_per_chunk(base.shape[1])
    for start in range(0, out.size, step):
        sl = slice(start, start + step)
        b = base[base_idx[sl]].astype(np.float64)
        q = queries[query_idx[sl]].astype(np.float64)
        out[sl] = _pair_distances_chunk(b, q, metric)
    return out


def true_distances_batch(
    base: np.ndarray, queries: np.ndarray, ids: np.ndarray, metric: Metric
) -> np.ndarray:
    """Exact float64 distances from each query to the ids in its row (nq x m)."""
    ids = np.asarray(ids, dtype=np.int64)
    nq, m = ids.shape
    query_idx = np.repeat(np.arange(nq, dtype=np.int64), m)
    return pair_distances(base, queries, query_idx, ids.reshape(-1), metric).reshape(nq, m)


def true_distances(
    base: np.ndarray, query_vector: np.ndarray, ids: np.ndarray, metric: Metric
) -> np.ndarray:
    """Exact float64 distances from one query vector to ``base[ids]``."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    query = np.asarray(query_vector).reshape(1, -1)
    return pair_distances(base, query, np.zeros(ids.size, dtype=np.int64), ids, metric)


def sort_neighbours(ids: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (distance, id): nearest first, ties in a stable id order."""
    order = np.lexsort((ids, distances), axis=-1)
    return np.take_along_axis(ids, order, -1), np.take_along_axis(distances, order, -1)


# --- exact k-NN ------------------------------------------------------------------------


def _check_knn_inputs(base: np.ndarray, queries: np.ndarray, k: int) -> None:
    if base.ndim != 2 or queries.ndim != 2:
        raise DatasetError(
            f"exact_knn: base and queries must be 2-D, got {base.shape} and {queries.shape}"
        )
    if base.shape[1] != queries.shape[1]:
        raise DatasetError(
            f"exact_knn: queries have dim {queries.shape[1]} but base has dim {base.shape[1]}"
        )
    check_k(k, base.shape[0], "exact_knn")


def check_k(k: int, n: int, where: str) -> None:
    """k must be 1..MAX_K and at most the number of base vectors."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= MAX_K:
        raise DatasetError(f"{where}: k must be an integer from 1 to {MAX_K}, got {k!r}")
    if k > n:
        raise DatasetError(f"{where}: k={k} exceeds the number of base vectors ({n}); lower k")


def _base_blocks(
    base: np.ndarray, metric: Metric, block_rows: int | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, float32 C-contiguous block)`` covering ``base``.

    A float32 C-contiguous base is passed to faiss whole (no copy) for l2/ip;
    cosine needs normalised copies, so it always goes block by block.
    """
    n, dim = base.shape
    direct = base.dtype == np.float32 and base.flags.c_contiguous and metric is not Metric.COSINE
    if block_rows is None:
        block_rows = n if direct else rows_per_chunk(dim, 4, BASE_BLOCK_BYTES)
    for start in range(0, n, block_rows):
        rows = base[start : start + block_rows]
        if metric is Metric.COSINE:
            block = np.array(rows, dtype=np.float32, order="C", copy=True)
            normalize_rows_(block)
        else:
            block = np.ascontiguousarray(rows, dtype=np.float32)  # a view when direct
        yield start, block


def _faiss_knn(
    base: np.ndarray, queries: np.ndarray, k: int, metric: Metric, block_rows: int | None
) -> np.ndarray:
    """faiss candidate ids (nq x k), merging per-block top-k with a ResultHeap."""
    import faiss  # ~0.1 s to load: only when ground truth is computed, not on every start

    faiss_metric = faiss.METRIC_L2 if metric is Metric.L2 else faiss.METRIC_INNER_PRODUCT
    heap = faiss.ResultHeap(queries.shape[0], k, keep_max=faiss_metric != faiss.METRIC_L2)
    for start, block in _base_blocks(base, metric, block_rows):
        dist, ids = faiss.knn(queries, block, min(k, block.shape[0]), metric=faiss_metric)
        heap.add_result(dist, np.where(ids >= 0, ids + start, -1))
    heap.finalize()
    ids = np.asarray(heap.I, dtype=np.int64)
    if (ids < 0).any():
        raise DatasetError(
            "exact_knn: faiss found fewer than k neighbours; the vectors probably contain "
            "NaN or infinite values"
        )
    return ids


def exact_knn(
    base: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: Metric,
    *,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest base rows of each query: (ids int64 nq x k, distances float32 nq x k).

    Sorted ascending by pgvector distance, ties by id. ``block_rows`` forces the
    base to be searched in blocks of that many rows (merged exactly); by default a
    float32 base is searched in place for l2/ip and in ~256 MB blocks for cosine.
    """
    metric = coerce_metric(metric, "exact_knn")
    _check_knn_inputs(base, queries, k)
    if block_rows is not None and block_rows < 1:
        raise DatasetError(f"exact_knn: block_rows must be >= 1, got {block_rows}")
    nq = queries.shape[0]
    if nq == 0:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
    search = np.array(queries, dtype=np.float32, order="C", copy=True)
    if metric is Metric.COSINE:
        normalize_rows_(search)
    ids = _faiss_knn(base, search, k, metric, block_rows)
    distances = true_distances_batch(base, queries, ids, metric)
    ids, distances = sort_neighbours(ids, distances)
    return ids, distances.astype(np.float32)


# --- ground truth with cache -----------------------------------------------------------


def _cache_path(cache_dir: Path, dataset: Dataset, k: int) -> Path:
    return Path(cache_dir) / f"{dataset.fingerprint()}-{dataset.metric.value}-k{k}.npz"


def _load_cache(path: Path, nq: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Read a cache entry; None when absent or unusable (it is then recomputed)."""
    if not path.exists():
        return None
    try:
        # Our own file object: np.load leaks its handle when the zip is corrupt.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
            ids = np.asarray(archive["ids"])
            distances = np.asarray(archive["distances"])
            method = str(archive["method"])
        if ids.shape != (nq, k) or distances.shape != (nq, k):
            raise ValueError(f"shape {ids.shape}/{distances.shape}, expected {(nq, k)}")
        if ids.dtype != np.int64 or distances.dtype != np.float32:
            raise ValueError(f"dtypes {ids.dtype}/{distances.dtype}")
        if ids.min() < 0 or ids.max() >= n or not np.isfinite(distances).all():
            raise ValueError("ids out of range or non-finite distances")
    except Exception as exc:  # any corruption just means "recompute"; never fatal
        log.warning("ignoring unusable ground-truth cache %s (%s); recomputing", path, exc)
        return None
    return ids, distances, method


def _save_cache(path: Path, ids: np.ndarray, distances: np.ndarray, method: str) -> None:
    """Write atomically so readers never see half a file."""
    buf = io.BytesIO()  # ids + distances of the recall queries only: small
    np.savez(buf, ids=ids, distances=distances, method=np.array(method))
    try:
        write_bytes_atomic(path, buf.getvalue())
    except OSError as exc:  # a cache that cannot be written only costs time later
        log.warning("could not write ground-truth cache %s: %s", path, exc)


def _spot_check(dataset: Dataset, ids: np.ndarray, distances: np.ndarray, k: int) -> int:
    """Check file neighbours of a few random queries against exact k-NN (tie-aware).

    Every listed neighbour must be no farther than the exact k-th distance; which
    of several tied points a file lists does not matter.
    """
    nq = ids.shape[0]
    sample = np.sort(
        np.random.default_rng(0).choice(nq, min(SPOT_CHECK_QUERIES, nq), replace=False)
    )
    _, exact = exact_knn(dataset.base, dataset.queries[sample], k, dataset.metric)
    kth = exact[:, -1].astype(np.float64)
    limit = kth + _SPOT_CHECK_RTOL * np.maximum(1.0, np.abs(kth))
    worst = distances[sample].max(axis=1)
    bad = np.flatnonzero(worst > limit)
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"{dataset.source}: 'neighbors' disagree with exact {k}-NN under metric "
            f"{dataset.metric.value} (query {int(sample[i])}: listed neighbour at distance "
            f"{worst[i]:.6g}, exact {k}-th distance {kth[i]:.6g}); the file's ground truth "
            "is wrong or uses another metric: fix the file or delete its 'neighbors' dataset "
            "so pgvbench computes exact ground truth"
        )
    return sample.size


def _from_file_neighbors(dataset: Dataset, k: int) -> tuple[np.ndarray, np.ndarray, str]:
    assert dataset.neighbors is not None
    ids = np.ascontiguousarray(dataset.neighbors[:, :k], dtype=np.int64)
    _check_ids(ids, dataset.n, f"{dataset.source}: 'neighbors'")
    ordered = np.sort(ids, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise DatasetError(
            f"{dataset.source}: 'neighbors' lists the same id twice for a query; the file's "
            "ground truth is corrupt: fix it or delete its 'neighbors' dataset"
        )
    # The file's own distances may use another convention (or be rounded): recompute.
    distances = true_distances_batch(dataset.base, dataset.queries, ids, dataset.metric)
    checked = _spot_check(dataset, ids, distances, k)
    ids, distances = sort_neighbours(ids, distances)
    method = (
        f"file neighbors from {dataset.source} (first {k} columns; distances recomputed "
        f"exactly; {checked} random queries spot-checked against exact k-NN)"
    )
    return ids, distances.astype(np.float32), method


def ground_truth(dataset: Dataset, k: int, *, cache_dir: Path | None) -> GroundTruth:
    """Ground truth for ``dataset`` at ``k``, from cache, file neighbours or exact k-NN.

    Cached as ``<cache_dir>/<fingerprint>-<metric>-k<k>.npz``; ``cache_dir=None``
    disables the cache.
    """
    started = time.perf_counter()
    check_k(k, dataset.n, f"ground truth for {dataset.name}")
    path = None if cache_dir is None else _cache_path(cache_dir, dataset, k)
    if path is not None:
        hit = _load_cache(path, dataset.n_queries, k, dataset.n)
        if hit is not None:
            ids, distances, method = hit
            return GroundTruth(
                ids, distances, f"cache {path.name} ({method})", _since(started), True
            )
    neighbors = dataset.neighbors
    if neighbors is not None and neighbors.shape[1] >= k:
        ids, distances, method = _from_file_neighbors(dataset, k)
    else:
        ids, distances = exact_knn(dataset.base, dataset.queries, k, dataset.metric)
        method = f"exact k-NN (faiss brute force, {dataset.metric.value})"
        if neighbors is not None:
            method += f"; file neighbors have only {neighbors.shape[1]} columns < k={k}"
    if path is not None:
        _save_cache(path, ids, distances, method)
    return GroundTruth(ids, distances, method, _since(started), False)


def _since(started: float) -> float:
    return time.perf_counter() - started
