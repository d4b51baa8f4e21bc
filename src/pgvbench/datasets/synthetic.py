"""Seeded synthetic datasets: Gaussian mixtures and uniform noise.

Everything is drawn from one PCG64 generator seeded by ``seed`` (plus per-cluster
streams derived from the same seed), so the same arguments always give the same
bytes, and so the same :meth:`Dataset.fingerprint`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

from pgvbench.datasets.base import Dataset, coerce_metric, normalize_rows_, rows_per_chunk
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric

MAX_DIM = 16000  # pgvector's limit for the `vector` type
#: Dirichlet concentration of the cluster weights: 2 gives clearly uneven but no
#: vanishing clusters.
_DIRICHLET_ALPHA = 2.0
#: With intrinsic_dim, the isotropic part of the noise relative to spread
#: (about 1% of the variance).
_ISOTROPIC_FRACTION = 0.1
#: Redraws of queries that coincide with a base vector before giving up.
_MAX_REDRAWS = 20

_Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _int_arg(name: str, value: int, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool):
        raise DatasetError(f"synthetic dataset: {name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # also accepts numpy integers
    except TypeError:
        raise DatasetError(f"synthetic dataset: {name} must be an integer, got {value!r}") from None
    if number < lo or (hi is not None and number > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise DatasetError(f"synthetic dataset: {name} must be {bound}, got {number}")
    return int(number)


def _spread_arg(spread: float) -> float:
    value = float(spread)
    if not math.isfinite(value) or value <= 0:
        raise DatasetError(f"synthetic dataset: spread must be a finite number > 0, got {spread!r}")
    return value


def _generator(seed: int, *stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=stream)))


def _cluster_basis(seed: int, cluster: int, dim: int, rank: int, scale: float) -> np.ndarray:
    """Orthonormal ``rank x dim`` basis of one cluster's subspace, times ``scale``.

    Drawn from its own seeded stream rather than stored, so that thousands of
    clusters in high dimension cost no memory and redraws reuse the same bases.
    """
    gaussian = _generator(seed, 1, cluster).standard_normal((dim, rank))
    q, _ = np.linalg.qr(gaussian)
    return (q.T * scale).astype(np.float32)


def _add_centres(out: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> None:
    step = rows_per_chunk(out.shape[1], 4)  # centres[labels] in full would double memory
    for start in range(0, out.shape[0], step):
        out[start : start + step] += centres[labels[start : start + step]]


def _add_subspace_noise(
    out: np.ndarray,
    rng: np.random.Generator,
    labels: np.ndarray,
    centres: np.ndarray,
    seed: int,
    rank: int,
    scale: float,
) -> None:
    """Add each point's centre plus latent noise in its cluster's rank-d subspace."""
    n_clusters, dim = centres.shape
    step = rows_per_chunk(dim, 4)
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=n_clusters))[:-1]
    for cluster, rows in enumerate(np.split(order, bounds)):
        if rows.size == 0:
            continue
        basis = _cluster_basis(seed, cluster, dim, rank, scale)
        latent = rng.standard_normal((rows.size, rank), dtype=np.float32)
        for start in range(0, rows.size, step):
            chunk = rows[start : start + step]
            out[chunk] += latent[start : start + step] @ basis + centres[cluster]


def _mixture_sampler(
    centres: np.ndarray, weights: np.ndarray, spread: float, seed: int, intrinsic_dim: int | None
) -> _Sampler:
    """Return ``sample(rng, m)`` drawing ``m`` i.i.d. points of the mixture."""
    n_clusters, dim = centres.shape

    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        labels = rng.choice(n_clusters, size=m, p=weights)
        out = rng.standard_normal((m, dim), dtype=np.float32)
        if intrinsic_dim is None:
            out *= np.float32(spread)
            _add_centres(out, centres, labels)
            return out
        out *= np.float32(spread * _ISOTROPIC_FRACTION)
        # Scaled so a cluster's radius matches the isotropic case: total variance
        # spread² x dim, concentrated in intrinsic_dim directions.
        scale = spread * math.sqrt(dim / intrinsic_dim)
        _add_subspace_noise(out, rng, labels, centres, seed, intrinsic_dim, scale)
        return out

    return sample


def _uniform_sampler(dim: int) -> _Sampler:
    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        out = rng.random((m, dim), dtype=np.float32)
        out *= np.float32(2.0)
        out -= np.float32(1.0)  # uniform in [-1, 1)
        return out

    return sample


def _row_keys(x: np.ndarray) -> np.ndarray:
    """Order-independent uint64 key of each row's first few values (bit exact).

    Equal rows get equal keys (``+ 0`` folds -0.0 into 0.0); unequal rows almost
    never do, and candidates are verified in full anyway.
    """
    bits = (x[:, :4] + np.float32(0)).view(np.uint32).astype(np.uint64)
    key = np.zeros(x.shape[0], dtype=np.uint64)
    for column in bits.T:
        key = key * np.uint64(0x9E3779B97F4A7C15) + column  # wraps mod 2**64 on purpose
    return key


def _colliding_queries(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Indices of query rows equal to some base row."""
    base_keys = _row_keys(base)
    query_keys = _row_keys(queries)
    candidates = np.flatnonzero(np.isin(query_keys, base_keys))
    hits = [
        i for i in candidates if (base[base_keys == query_keys[i]] == queries[i]).all(axis=1).any()
    ]
    return np.asarray(hits, dtype=np.intp)


def _draw(
    sample: _Sampler, rng: np.random.Generator, n: int, n_queries: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """Draw base and queries i.i.d.; redraw queries that coincide with a base row."""
    points = sample(rng, n + n_queries)
    if metric is Metric.COSINE:
        normalize_rows_(points)
    base, queries = points[:n], points[n:]
    for _ in range(_MAX_REDRAWS):
        clash = _colliding_queries(base, queries)
        if clash.size == 0:
            return base, queries
        fresh = sample(rng, clash.size)
        if metric is Metric.COSINE:
            normalize_rows_(fresh)
        queries[clash] = fresh
    raise DatasetError(
        f"synthetic dataset: could not draw {n_queries} queries distinct from the {n} base "
        f"vectors (dim={base.shape[1]}, metric={metric.value}); the space is too small for "
        "this many points: raise dim or spread, or lower n"
    )


def generate_clustered(
    *,
    n: int,
    dim: int,
    n_queries: int,
    clusters: int,
    spread: float,
    seed: int,
    metric: Metric,
    intrinsic_dim: int | None = None,
) -> Dataset:
    """A Gaussian mixture: centres ~ N(0, 1)^dim, points = centre + spread x noise.

    Cluster weights are Dirichlet-distributed (uneven, deterministic from ``seed``).
    With ``intrinsic_dim`` each cluster's noise lies mostly in its own random
    ``intrinsic_dim``-dimensional subspace, like real embeddings, which keeps ANN
    recall realistic. Queries are fresh draws from the same distribution and never
    equal a base row. For cosine all vectors are unit length.
    """
    n = _int_arg("n", n, 1)
    dim = _int_arg("dim", dim, 1, MAX_DIM)
    n_queries = _int_arg("n_queries", n_queries, 1)
    clusters = _int_arg("clusters", clusters, 1)
    seed = _int_arg("seed", seed, 0)
    spread = _spread_arg(spread)
    if intrinsic_dim is not None:
        intrinsic_dim = _int_arg("intrinsic_dim", intrinsic_dim, 1, dim)
    metric = coerce_metric(metric, "synthetic dataset")

    rng = _generator(seed)
    weights = rng.dirichlet(np.full(clusters, _DIRICHLET_ALPHA))
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    sampler = _mixture_sampler(centres, weights, spread, seed, intrinsic_dim)
    base, queries = _draw(sampler, rng, n, n_queries, metric)
    suffix = "" if intrinsic_dim is None else f"-r{intrinsic_dim}"
    return Dataset(
        name=f"clustered-{n}x{dim}-c{clusters}{suffix}-seed{seed}",
        source="synthetic:clustered",
        metric=metric,
        base=base,
        queries=queries,
        seed=seed,
    )


def generate_uniform(*, n: int, dim: int, n_queries: int, seed: int, metric: Metric) -> Dataset:
    """Points uniform in the cube [-1, 1)^dim (scaled to unit length for cosine).

    The hardest case for ANN indexes: no structure to exploit.
    """
    n = _int_arg("n", n, 1)
    dim = _int_arg("dim", dim, 1, MAX_DIM)
    n_queries = _int_arg("n_queries", n_queries, 1)
    seed = _int_arg("seed", seed, 0)
    metric = coerce_metric(metric, "synthetic dataset")

    base, queries = _draw(_uniform_sampler(dim), _generator(seed), n, n_queries, metric)
    return Dataset(
        name=f"uniform-{n}x{dim}-seed{seed}",
        source="synthetic:uniform",
        metric=metric,
        base=base,
        queries=queries,
        seed=seed,
    )
