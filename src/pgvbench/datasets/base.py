"""The in-memory dataset every workload runs against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from pgvbench.datasets.attributes import Attribute, check_attributes
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric


def _frozen(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """A read-only C-contiguous array of ``dtype``, copying only if needed.

    When no copy is needed a view is frozen, so the caller's array stays writable.
    """
    out = np.ascontiguousarray(array, dtype=dtype)
    if out is array:
        out = array.view()
    out.flags.writeable = False
    return out


def _vectors(array: np.ndarray, what: str, source: str) -> np.ndarray:
    if array.ndim != 2:
        raise DatasetError(
            f"{source}: {what} must be a 2-D array (rows x dim), got shape {array.shape}"
        )
    return _frozen(array, np.float32)


def _per_query(
    array: np.ndarray | None, dtype: type[np.generic], what: str, source: str, nq: int
) -> np.ndarray | None:
    if array is None:
        return None
    if array.ndim != 2 or array.shape[0] != nq:
        raise DatasetError(
            f"{source}: {what} must have shape ({nq}, K) to match the queries, got {array.shape}"
        )
    return _frozen(array, dtype)


def coerce_metric(metric: Metric | str, where: str) -> Metric:
    """Accept a Metric or its spec spelling; anything else is a DatasetError."""
    try:
        return Metric(metric)
    except ValueError:
        allowed = ", ".join(m.value for m in Metric)
        raise DatasetError(f"{where}: unknown metric {metric!r}; use one of {allowed}") from None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Base vectors, query vectors and the metric they are compared with.

    Arrays are stored as read-only float32 C-contiguous views so that the cached
    :meth:`fingerprint` cannot go stale; ``eq=False`` because array equality is
    element-wise (compare fingerprints instead).
    """

    name: str
    source: str
    metric: Metric
    base: np.ndarray
    queries: np.ndarray
    seed: int | None = None
    neighbors: np.ndarray | None = None
    distances: np.ndarray | None = None
    # columns beside the vectors (labels, dates, tags); not part of the fingerprint: the
    # unfiltered ground truth does not depend on them
    attributes: tuple[Attribute, ...] = ()
    _fingerprint: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        base = _vectors(self.base, "base", self.source)
        queries = _vectors(self.queries, "queries", self.source)
        if base.shape[0] == 0 or base.shape[1] == 0:
            raise DatasetError(f"{self.source}: base is empty (shape {base.shape})")
        if queries.shape[1] != base.shape[1]:
            raise DatasetError(
                f"{self.source}: queries have dim {queries.shape[1]} but base has dim "
                f"{base.shape[1]}; both must come from the same embedding model"
            )
        nq = queries.shape[0]
        neighbors = _per_query(self.neighbors, np.int64, "neighbors", self.source, nq)
        distances = _per_query(self.distances, np.float32, "distances", self.source, nq)
        # Frozen dataclass: normalised values must be written past __setattr__.
        object.__setattr__(self, "metric", coerce_metric(self.metric, self.source))
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "queries", queries)
        object.__setattr__(self, "neighbors", neighbors)
        object.__setattr__(self, "distances", distances)
        object.__setattr__(
            self,
            "attributes",
            check_attributes(self.attributes, base.shape[0], nq, self.source),
        )

    @property
    def n(self) -> int:
        """Number of base vectors."""
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.base.shape[1])

    @property
    def n_queries(self) -> int:
        """Number of query vectors."""
        return int(self.queries.shape[0])

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name``, or None."""
        return next((a for a in self.attributes if a.name == name), None)

    def fingerprint(self) -> str:
        """Content hash of base, queries and metric (hex); a cache key and table suffix.

        Names, sources and seeds are deliberately excluded: two routes to the same
        vectors share ground truth and tables.
        """
        if not self._fingerprint:
            self._fingerprint.append(self._compute_fingerprint())
        return self._fingerprint[0]

    def _compute_fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16, person=b"pgvbench-ds-v1")
        h.update(f"{self.metric.value}|{self.base.shape}|{self.queries.shape}|".encode())
        h.update(self.base.data)  # C-contiguous, so hashed in place without a copy
        h.update(self.queries.data)
        return h.hexdigest()


#: Byte budget of the temporaries that row-wise chunked work may allocate.
CHUNK_BYTES = 32 << 20


def rows_per_chunk(dim: int, itemsize: int = 8, budget: int = CHUNK_BYTES) -> int:
    """How many rows of ``dim`` values of ``itemsize`` bytes fit in ``budget``."""
    return max(1, budget // max(1, dim * itemsize))


def normalize_rows_(x: np.ndarray) -> None:
    """Scale the rows of float array ``x`` to unit L2 norm in place.

    All-zero rows stay zero (they have no direction). Norms are summed in float64
    for accuracy, chunked so the float64 temporary stays within CHUNK_BYTES.
    """
    step = rows_per_chunk(x.shape[1])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        norms[norms == 0] = 1.0
        block /= norms.astype(block.dtype)[:, None]
