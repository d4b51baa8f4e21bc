"""Attribute columns generated beside synthetic vectors ([[dataset.labels]]).

The model, so that filtering by a query's own label behaves as on real labelled data (a
topic, a language, a customer: rows that share a label tend to lie near each other):

* **Regions.** The space is cut into ``regions`` (the spec's ``clusters``) Voronoi cells
  around anchors drawn (seeded) from the base rows; every base row and query belongs to
  its nearest anchor's cell (L2; on clustered data the cells follow the clusters).
* **Labels** (kind int or text). Exact Zipf counts: label r (0 the commonest; text
  ``"<name>_<r>"``) holds ``n x (r + 1)**-skew / H`` rows, at least one when n allows, so
  the commonest labels hold several % and most of a large vocabulary well under 0.1%.
  Each label gets a random place on a line, and the rows, sorted by region, take the
  labels in that order: a rare label sits inside one region, a common one spans a few
  regions, and every region has its own few labels. Then a share ``1 - locality`` of the
  rows swap labels at random, which keeps every count (the Zipf law is exact) and adds
  the noise real data has.
* **Tags** (kind text[] or int[]). A row's first tag is drawn as a label is, from a Zipf
  vocabulary; its other slots copy the first tag of random rows of its region. Each row
  keeps 1 .. 2 x per_row - 1 slots (uniform), duplicates dropped.
* **Timestamps**: uniform over ``days`` from ``start`` (UTC), independent of the vectors.
* **Query values.** ``own``: the value of a random base row in the query's region (its
  neighbourhood's label, as a user filtering on their own data); ``frequency``: the value
  of a random base row (a label drawn by frequency, unrelated to the query); ``none``.

Everything is vectorised numpy and seeded by the experiment seed; each column draws from a
stream keyed by its name, so adding a column leaves the others unchanged. The vectors are
untouched: the dataset's fingerprint is the same with or without labels.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np

from ..spec.labels import LABEL_KINDS, TAG_KINDS, LabelsSpec
from .attributes import Attribute
from .base import Dataset, rows_per_chunk

_STREAM = 0x1ABE15  # spawn key of every label stream, apart from the vector generator's
_SECONDS_PER_DAY = 86_400  # timestamps are whole seconds


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAM, *key)))
    )


def with_labels(
    dataset: Dataset, labels: Sequence[LabelsSpec], *, seed: int, regions: int
) -> Dataset:
    """``dataset`` with the generated columns ``labels`` describe (itself when none)."""
    if not labels:
        return dataset
    attributes = generate_labels(dataset, labels, seed=seed, regions=regions)
    return dataclasses.replace(dataset, attributes=(*dataset.attributes, *attributes))


def generate_labels(
    dataset: Dataset, labels: Sequence[LabelsSpec], *, seed: int, regions: int
) -> tuple[Attribute, ...]:
    """One Attribute per spec, with query values unless its ``queries`` is "none"."""
    space = Regions.of(dataset, regions, seed)
    return tuple(_column(spec, space, seed) for spec in labels)


@dataclasses.dataclass(frozen=True)
class Regions:
    """Each base row's and query's region, and the base rows grouped by region."""

    base: np.ndarray  # region of each base row
    queries: np.ndarray  # region of each query
    starts: np.ndarray  # rows of region g: by_region[starts[g] : starts[g] + counts[g]]
    counts: np.ndarray

    @classmethod
    def of(cls, dataset: Dataset, regions: int, seed: int) -> Regions:
        rng = _rng(seed, 0)
        n = dataset.n
        count = max(1, min(regions, n))
        anchors = dataset.base[np.sort(rng.choice(n, size=count, replace=False))]
        base = _nearest(dataset.base, anchors)
        counts = np.bincount(base, minlength=count)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        return cls(base, _nearest(dataset.queries, anchors), starts, counts)

    def rows_in_order(self, rng: np.random.Generator) -> np.ndarray:
        """Base row indices sorted by region, in random order within a region."""
        shuffled = rng.permutation(self.base.size)
        return shuffled[np.argsort(self.base[shuffled], kind="stable")]

    def random_rows(self, rng: np.random.Generator, regions: np.ndarray) -> np.ndarray:
        """For each entry of ``regions``, a random position among that region's base rows
        (an index into ``rows_in_order``'s result)."""
        return np.asarray(
            self.starts[regions]
            + (rng.random(regions.size) * self.counts[regions]).astype(np.int64)
        )

    def row_near(self, rng: np.random.Generator, by_region: np.ndarray) -> np.ndarray:
        """For each query, a random base row of its region."""
        return np.asarray(by_region[self.random_rows(rng, self.queries)])


def _nearest(points: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Index of each point's nearest anchor (L2), in row chunks of bounded memory."""
    half_norms = 0.5 * np.einsum("ij,ij->i", anchors, anchors)
    out = np.empty(points.shape[0], dtype=np.int64)
    step = rows_per_chunk(anchors.shape[0], 4)
    for start in range(0, points.shape[0], step):
        # argmin |x - a|^2 = argmin (|a|^2 / 2 - x.a): |x|^2 is the same for every anchor
        scores = half_norms - points[start : start + step] @ anchors.T
        out[start : start + step] = np.argmin(scores, axis=1)
    return out


def zipf_counts(total: int, values: int, skew: float) -> np.ndarray:
    """Rows of each rank 0 .. values-1: ``total x (r+1)**-skew / H``, at least 1 each while
    total allows; largest-remainder rounding, so they sum to ``total`` exactly."""
    floor = 1 if total >= values else 0
    rest = total - floor * values
    weights = np.arange(1, values + 1, dtype=np.float64) ** -float(skew)
    exact = rest * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    short = rest - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return np.asarray(counts + floor)


def _regional_ranks(
    spec: LabelsSpec, space: Regions, rng: np.random.Generator, place: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each base row's value rank, tied to its region, and the rows sorted by region."""
    n = space.base.size
    counts = zipf_counts(n, spec.values, spec.skew)
    along = np.argsort(place)  # the ranks in their order along the line
    sequence = np.repeat(along, counts[along])
    by_region = space.rows_in_order(rng)
    ranks = np.empty(n, dtype=np.int64)
    ranks[by_region] = sequence
    swap = rng.permutation(n)[: round((1.0 - spec.locality) * n)]
    ranks[swap] = ranks[rng.permutation(swap)]
    return ranks, by_region


def _column(spec: LabelsSpec, space: Regions, seed: int) -> Attribute:
    rng = _rng(seed, 1, zlib.crc32(spec.name.encode()))
    origin = f"generated ({spec.kind})"
    if spec.kind == "timestamp":
        start = np.datetime64(spec.start, "s").astype(np.int64)
        seconds = start + rng.integers(0, spec.days * _SECONDS_PER_DAY, space.base.size)
        values = seconds.astype("datetime64[s]").astype("datetime64[us]")
        return _with_queries(spec, values, space, rng, np.arange(space.base.size), origin)
    place = rng.permutation(spec.values)
    if spec.kind in LABEL_KINDS:
        ranks, by_region = _regional_ranks(spec, space, rng, place)
        if spec.kind == "text":
            return _with_queries(
                spec, _words(spec.name, spec.values)[ranks], space, rng, by_region, origin
            )
        return _with_queries(spec, ranks, space, rng, by_region, origin)
    assert spec.kind in TAG_KINDS
    ranks, by_region = _regional_ranks(spec, space, rng, place)
    slots = np.empty((space.base.size, 2 * spec.per_row - 1), dtype=np.int64)
    slots[:, 0] = ranks
    for j in range(1, slots.shape[1]):
        # the first tag of a random row of the same region: the region's own tags, by
        # frequency, without another sort
        slots[:, j] = ranks[by_region[space.random_rows(rng, space.base)]]
    keep = rng.integers(1, slots.shape[1] + 1, space.base.size)
    tags = _tag_tuples(slots, keep, spec)
    return _with_queries(spec, tags, space, rng, by_region, origin)


def _words(name: str, values: int) -> np.ndarray:
    return np.array([f"{name}_{r}" for r in range(values)], dtype=object)


def _tag_tuples(slots: np.ndarray, keep: np.ndarray, spec: LabelsSpec) -> np.ndarray:
    """Each row's first ``keep`` slots as a sorted tuple without duplicates."""
    ranks = np.where(np.arange(slots.shape[1]) < keep[:, None], slots, -1)
    ranks.sort(axis=1)
    valid = ranks >= 0
    valid[:, 1:] &= ranks[:, 1:] != ranks[:, :-1]  # a repeat of its left neighbour goes
    flat = ranks[valid]
    ends = np.cumsum(valid.sum(axis=1)).tolist()
    # one flat list sliced per row: the per-row Python work is the tuple itself
    items = (_words(spec.name, spec.values)[flat] if spec.kind == "text[]" else flat).tolist()
    tuples = (tuple(items[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True))
    return np.fromiter(tuples, dtype=object, count=len(ends))


def _with_queries(
    spec: LabelsSpec,
    values: np.ndarray,
    space: Regions,
    rng: np.random.Generator,
    by_region: np.ndarray,
    origin: str,
) -> Attribute:
    if spec.queries == "none":
        return Attribute(name=spec.name, kind=spec.kind, values=values, origin=origin)
    if spec.queries == "own":
        rows = space.row_near(rng, by_region)
    else:
        rows = rng.integers(0, space.base.size, space.queries.size)
    return Attribute(
        name=spec.name, kind=spec.kind, values=values, query_values=values[rows], origin=origin
    )
