"""How hard a dataset is for nearest-neighbour search: local intrinsic dimensionality and
relative contrast per query, the two measures the ANN benchmarking literature uses.

- LID by maximum likelihood over the k nearest neighbours (Levina & Bickel 2004; Amsaleg
  et al. 2015; as used by Aumüller & Ceccarello, "The role of local intrinsic
  dimensionality in benchmarking nearest neighbor search", 2019, with k = 100):
  ``LID(q) = -( (1/k) sum_i ln(d_i / d_k) )^-1``. High LID: distances concentrate
  locally, neighbours are hard to tell apart.
- Relative contrast (He, Kumar & Chang, ICML 2012): ``RC(q) = D_mean(q) / D_min(q)``,
  the mean distance to the base (over a seeded sample) over the nearest neighbour's
  distance. RC near 1: the nearest neighbour is barely nearer than a random point.

Distances are true metric distances: Euclidean (not squared) for l2, the cosine distance
1 - cos for cosine. A negative inner product is not a distance (it can be negative, and
ln(d_i / d_k) is then meaningless), so ip data is measured with the cosine distance of
the normalised vectors, recorded in ``distance``. Pure numpy; the kNN is exact
(``datasets.groundtruth.exact_knn``, faiss brute force) on a bounded query sample.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from ..datasets.base import normalize_rows_, rows_per_chunk
from ..datasets.groundtruth import MAX_K, exact_knn
from ..errors import DatasetError
from ..metrics import Metric

#: As in Aumüller & Ceccarello: the MLE over the 100 nearest neighbours.
DEFAULT_K = 100
#: Queries measured: the medians are stable to about 1% at this size and the cost stays
#: a fraction of a second on the quickstart data.
DEFAULT_QUERIES = 500
#: Base rows the mean distance of RC averages over (seeded sample; all rows when fewer).
DEFAULT_BASE_SAMPLE = 10_000

_DISTANCE = {
    Metric.L2: "euclidean",
    Metric.COSINE: "cosine distance (1 - cos)",
    Metric.INNER_PRODUCT: "cosine distance of the normalised vectors (ip is not a distance)",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spread:
    """A per-query measure's distribution over the measured queries."""

    median: float
    p10: float
    p90: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            nan = float("nan")
            return cls(median=nan, p10=nan, p90=nan, mean=nan)
        p10, median, p90 = np.percentile(finite, [10, 50, 90])
        return cls(median=float(median), p10=float(p10), p90=float(p90), mean=float(finite.mean()))

    def to_dict(self) -> dict[str, float | None]:
        return {k: _r(v) for k, v in dataclasses.asdict(self).items()}  # NaN is not JSON

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spread:
        def value(name: str) -> float:
            raw = data.get(name)
            return float("nan") if raw is None else float(raw)

        return cls(**{f.name: value(f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Difficulty:
    """LID and relative contrast of one dataset over a sample of its queries."""

    lid: Spread
    rc: Spread
    k: int  # neighbours of the LID estimate
    queries: int  # queries measured (a seeded sample)
    queries_from: str  # "queries" (the dataset's own) or "base" (base rows, self excluded)
    base_rows: int  # rows searched for the k nearest
    base_sample: int  # rows the mean distance of RC averages over
    metric: str
    distance: str  # the distance both measures use
    skipped: int  # queries left out: a zero nearest or k-th distance (duplicates)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lid"], out["rc"] = self.lid.to_dict(), self.rc.to_dict()
        out["seconds"] = round(self.seconds, 4)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Difficulty:
        return cls(
            lid=Spread.from_dict(data["lid"]),
            rc=Spread.from_dict(data["rc"]),
            k=int(data["k"]),
            queries=int(data["queries"]),
            queries_from=str(data["queries_from"]),
            base_rows=int(data["base_rows"]),
            base_sample=int(data["base_sample"]),
            metric=str(data["metric"]),
            distance=str(data["distance"]),
            skipped=int(data.get("skipped", 0)),
            seconds=float(data["seconds"]),
        )


def lid_mle(distances: np.ndarray) -> np.ndarray:
    """LID per row of ascending neighbour distances (nq x k): -1 / mean(ln(d_i / d_k)).

    Zero distances (duplicates of the query) carry no scale and are left out of a row's
    mean; a row whose k-th distance is 0, or whose distances are all equal, gives NaN.
    """
    d = np.asarray(distances, dtype=np.float64)
    dk = d[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(d / dk)
        usable = (d > 0) & (dk > 0)
        count = usable.sum(axis=1)
        total = np.where(usable, logs, 0.0).sum(axis=1)
        mean = total / count
        lid: np.ndarray = np.where((count > 0) & (mean < 0), -1.0 / mean, np.nan)
    return lid


def mean_distances(
    base_rows: np.ndarray, queries: np.ndarray, metric: Metric, exclude: np.ndarray | None
) -> np.ndarray:
    """Mean distance of each query to ``base_rows`` (float64), in blocks of queries.

    ``exclude[i]`` is the row of ``base_rows`` that is query i itself (-1: none), left
    out of its mean. ``metric`` is l2 or cosine (ip is measured as cosine).
    """
    b = np.asarray(base_rows, dtype=np.float64)
    if metric is Metric.COSINE:
        b = _unit(b)
    b_sq = np.einsum("ij,ij->i", b, b)
    out = np.empty(queries.shape[0], dtype=np.float64)
    step = max(1, rows_per_chunk(b.shape[0]) // 2)  # the q x sample block stays ~16 MB
    for start in range(0, queries.shape[0], step):
        q = np.asarray(queries[start : start + step], dtype=np.float64)
        if metric is Metric.COSINE:
            q = _unit(q)
            block = 1.0 - q @ b.T
        else:
            sq = np.einsum("ij,ij->i", q, q)[:, None] + b_sq[None, :] - 2.0 * (q @ b.T)
            block = np.sqrt(np.maximum(sq, 0.0))
        if exclude is None:
            out[start : start + step] = block.mean(axis=1)
            continue
        mine = exclude[start : start + step]
        rows = np.flatnonzero(mine >= 0)
        block[rows, mine[rows]] = np.nan
        out[start : start + step] = np.nanmean(block, axis=1)
    return out


def measure_difficulty(
    base: np.ndarray,
    metric: Metric,
    *,
    queries: np.ndarray | None = None,
    k: int = DEFAULT_K,
    max_queries: int = DEFAULT_QUERIES,
    base_sample: int = DEFAULT_BASE_SAMPLE,
    seed: int = 0,
) -> Difficulty:
    """LID and RC of ``queries`` against ``base`` (both: a seeded sample of
    ``max_queries`` queries). Without ``queries`` the queries are base rows, and each is
    left out of its own neighbours and mean. ``k`` is lowered to the rows available."""
    started = time.perf_counter()
    metric = Metric(metric)
    n = int(base.shape[0])
    from_base = queries is None
    available = n - 1 if from_base else n
    if available < 2:
        raise DatasetError(f"difficulty: needs at least 3 base rows, got {n}")
    k = max(2, min(k, MAX_K - 1 if from_base else MAX_K, available))
    rng = np.random.default_rng(seed)
    pool = n if queries is None else int(queries.shape[0])
    picked = np.sort(rng.choice(pool, min(max_queries, pool), replace=False))
    search = base[picked] if queries is None else queries[picked]
    knn_metric = Metric.L2 if metric is Metric.L2 else Metric.COSINE
    ids, dist = exact_knn(base, search, k + 1 if from_base else k, knn_metric)
    if from_base:
        ids, dist = _drop_self(ids, dist, picked)
    sample = np.arange(n) if base_sample >= n else np.sort(rng.choice(n, base_sample, False))
    exclude = None
    if from_base:  # the position of each query's own row in the sample, or -1
        where = np.searchsorted(sample, picked)
        where = np.minimum(where, sample.size - 1)
        exclude = np.where(sample[where] == picked, where, -1)
    d_mean = mean_distances(base[sample], search, knn_metric, exclude)
    d_min = dist[:, 0].astype(np.float64)
    lid = lid_mle(dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        rc = np.where(d_min > 0, d_mean / d_min, np.nan)
    skipped = int((~np.isfinite(lid) | ~np.isfinite(rc)).sum())
    return Difficulty(
        lid=Spread.of(lid),
        rc=Spread.of(rc),
        k=k,
        queries=int(picked.size),
        queries_from="base" if from_base else "queries",
        base_rows=n,
        base_sample=int(sample.size),
        metric=metric.value,
        distance=_DISTANCE[metric],
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def _drop_self(ids: np.ndarray, dist: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own row from its k+1 neighbours (the farthest when absent,
    which happens only when duplicates of the query fill the list)."""
    nq, width = ids.shape
    hit = ids == own[:, None]
    drop = np.where(hit.any(axis=1), hit.argmax(axis=1), width - 1)
    keep = np.ones_like(hit)
    keep[np.arange(nq), drop] = False
    return ids[keep].reshape(nq, width - 1), dist[keep].reshape(nq, width - 1)


def _unit(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=np.float64, copy=True)
    normalize_rows_(out)
    return out


def _r(value: float) -> float | None:
    return float(f"{value:.5g}") if np.isfinite(value) else None
