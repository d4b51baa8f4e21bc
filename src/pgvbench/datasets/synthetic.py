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
#: Bounds of the heterogeneity parameters: beyond them one cluster holds nearly every row
#: (Zipf exponent 4) or spreads differ by more than 10^4 between clusters.
MAX_SIZE_SKEW = 4.0
MAX_SCALE_SPREAD = 3.0
#: Student-t degrees of freedom of the per-point tails: above 2 the variance is finite;
#: by 1000 they are Gaussian to the eye.
MIN_TAIL_DOF = 2.0
MAX_TAIL_DOF = 1000.0

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


def _nonnegative_arg(name: str, value: float, hi: float) -> float:
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= hi:
        raise DatasetError(
            f"synthetic dataset: {name} must be a number between 0 and {hi:g}, got {value!r}"
        )
    return number


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
    row_factors: np.ndarray | None = None,
) -> None:
    """Add each point's centre plus latent noise in its cluster's rank-d subspace.

    ``row_factors`` (one per row) also multiply the isotropic noise already in ``out``."""
    n_clusters, dim = centres.shape
    step = rows_per_chunk(dim, 4)
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=n_clusters))[:-1]
    for cluster, rows in enumerate(np.split(order, bounds)):
        if rows.size == 0:
            continue
        basis = _cluster_basis(seed, cluster, dim, rank, scale)
        latent = rng.standard_normal((rows.size, rank), dtype=np.float32)
        if row_factors is not None:
            latent *= row_factors[rows, None]
        for start in range(0, rows.size, step):
            chunk = rows[start : start + step]
            if row_factors is not None:
                out[chunk] *= row_factors[chunk, None]
            out[chunk] += latent[start : start + step] @ basis + centres[cluster]


def _scale_rows(out: np.ndarray, row_factors: np.ndarray) -> None:
    """Multiply each row by its factor, in chunks (no full-size temporary)."""
    step = rows_per_chunk(out.shape[1], 4)
    for start in range(0, out.shape[0], step):
        out[start : start + step] *= row_factors[start : start + step, None]


def _mixture_sampler(
    centres: np.ndarray,
    weights: np.ndarray,
    spread: float,
    seed: int,
    intrinsic_dim: int | None,
    factors: np.ndarray | None = None,
    tail_dof: float = 0.0,
) -> _Sampler:
    """Return ``sample(rng, m)`` drawing ``m`` i.i.d. points of the mixture; ``factors``
    (one per cluster, None: all 1) multiply each cluster's spread; ``tail_dof`` > 0 makes
    each point's noise Student-t with that many degrees of freedom."""
    n_clusters, dim = centres.shape
    # the per-point tails have a stream of their own, so the main stream's draws (and the
    # bytes of a dataset without tails) stay as they were
    tails = _generator(seed, 3) if tail_dof > 0 else None

    def row_factors(labels: np.ndarray) -> np.ndarray | None:
        if factors is None and tails is None:
            return None
        out = np.ones(labels.size) if factors is None else factors[labels]
        if tails is not None:
            out = out * np.sqrt(tail_dof / tails.chisquare(tail_dof, size=labels.size))
        return out.astype(np.float32)

    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        labels = rng.choice(n_clusters, size=m, p=weights)
        out = rng.standard_normal((m, dim), dtype=np.float32)
        per_row = row_factors(labels)
        if intrinsic_dim is None:
            out *= np.float32(spread)
            if per_row is not None:
                _scale_rows(out, per_row)
            _add_centres(out, centres, labels)
            return out
        out *= np.float32(spread * _ISOTROPIC_FRACTION)
        # Scaled so a cluster's radius matches the isotropic case: total variance
        # spread² x dim, concentrated in intrinsic_dim directions.
        scale = spread * math.sqrt(dim / intrinsic_dim)
        _add_subspace_noise(out, rng, labels, centres, seed, intrinsic_dim, scale, per_row)
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
    size_skew: float = 0.0,
    scale_spread: float = 0.0,
    tail_dof: float = 0.0,
) -> Dataset:
    """A Gaussian mixture: centres ~ N(0, 1)^dim, points = centre + spread x noise.

    Cluster weights are Dirichlet-distributed (uneven, deterministic from ``seed``).
    With ``intrinsic_dim`` each cluster's noise lies mostly in its own random
    ``intrinsic_dim``-dimensional subspace, like real embeddings, which keeps ANN
    recall realistic. Queries are fresh draws from the same distribution and never
    equal a base row. For cosine all vectors are unit length.

    Heterogeneity, as real embeddings have (both 0 by default: the bytes are those of
    earlier versions): ``size_skew`` > 0 gives Zipf cluster sizes, the i-th largest
    cluster's weight ~ i^-size_skew, in place of the Dirichlet weights; ``scale_spread``
    > 0 multiplies each cluster's spread by a log-normal factor exp(scale_spread x z),
    z ~ N(0, 1) (median 1), so some clusters are tight and others diffuse; ``tail_dof``
    > 0 makes each point's noise Student-t with that many degrees of freedom (a per-point
    scale sqrt(dof / chi2(dof))), so each cluster has a dense core, where queries are
    easy, and a sparse halo, where they are hard. Changing any keeps the same centres.
    """
    n = _int_arg("n", n, 1)
    dim = _int_arg("dim", dim, 1, MAX_DIM)
    n_queries = _int_arg("n_queries", n_queries, 1)
    clusters = _int_arg("clusters", clusters, 1)
    seed = _int_arg("seed", seed, 0)
    spread = _spread_arg(spread)
    if intrinsic_dim is not None:
        intrinsic_dim = _int_arg("intrinsic_dim", intrinsic_dim, 1, dim)
    size_skew = _nonnegative_arg("size_skew", size_skew, MAX_SIZE_SKEW)
    scale_spread = _nonnegative_arg("scale_spread", scale_spread, MAX_SCALE_SPREAD)
    tail_dof = _nonnegative_arg("tail_dof", tail_dof, MAX_TAIL_DOF)
    if 0 < tail_dof < MIN_TAIL_DOF:
        raise DatasetError(
            f"synthetic dataset: tail_dof must be 0 (Gaussian noise) or at least "
            f"{MIN_TAIL_DOF:g} (a finite variance), got {tail_dof!r}"
        )
    metric = coerce_metric(metric, "synthetic dataset")

    rng = _generator(seed)
    weights = rng.dirichlet(np.full(clusters, _DIRICHLET_ALPHA))
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    if size_skew > 0:  # drawn above all the same, so the centres do not move
        weights = np.arange(1, clusters + 1, dtype=np.float64) ** -size_skew
        weights /= weights.sum()
    factors = None
    if scale_spread > 0:  # a stream of its own: the main stream's draws stay as they were
        factors = np.exp(scale_spread * _generator(seed, 2).standard_normal(clusters))
    sampler = _mixture_sampler(centres, weights, spread, seed, intrinsic_dim, factors, tail_dof)
    base, queries = _draw(sampler, rng, n, n_queries, metric)
    suffix = "" if intrinsic_dim is None else f"-r{intrinsic_dim}"
    if size_skew > 0:
        suffix += f"-z{size_skew:g}"
    if scale_spread > 0:
        suffix += f"-s{scale_spread:g}"
    if tail_dof > 0:
        suffix += f"-t{tail_dof:g}"
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
