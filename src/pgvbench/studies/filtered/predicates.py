"""Predicates built from a dataset's attributes, and the queries drawn for each bucket.

Three forms (no database here; truth.py computes each query's exact filtered top-k):

``eq``       ``col = $2`` on a label (int, text, bool): the query's own label when the
             dataset has one per query, else a label drawn by its frequency (seeded);
``range``    ``col BETWEEN $2 AND $3`` on a number or time: bounds are quantiles of the
             column, drawn so the share of rows kept falls in each bucket;
``overlap``  ``col && $2`` on an array (text[], int[]): one tag, drawn by its frequency.

A query's selectivity is the share of all rows its predicate keeps; queries are grouped
into buckets by that share (edges as ``bucket_edges``), from the real distribution.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...datasets.attributes import ARRAY_KINDS, LABEL_KINDS, RANGE_KINDS, Attribute

EQ, RANGE, OVERLAP = "eq", "range", "overlap"
#: spec name of each predicate -> its form and the attribute kinds it applies to
FORMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "label": (EQ, LABEL_KINDS),
    "range": (RANGE, RANGE_KINDS),
    "overlap": (OVERLAP, ARRAY_KINDS),
}
PREDICATES = tuple(FORMS)


@dataclasses.dataclass(frozen=True)
class Predicate:
    """One kind of filter a comparison measures: its name (bucket labels start with it),
    its form and the column it filters on."""

    name: str  # "label" | "range" | "overlap" ("agent" for agent data)
    kind: str  # EQ | RANGE | OVERLAP
    attribute: str


@dataclasses.dataclass(frozen=True, eq=False)
class Drawn:
    """Queries drawn for one predicate: filter value, vector and share of rows kept."""

    values: list[Any]  # eq: the label; range: (low, high); overlap: a tuple of tags
    vectors: np.ndarray  # float32 (n, dim)
    shares: np.ndarray  # float64 (n,)

    def __len__(self) -> int:
        return len(self.values)

    def take(self, idx: np.ndarray) -> Drawn:
        return Drawn([self.values[i] for i in idx], self.vectors[idx], self.shares[idx])


# --------------------------------------------------------------------------- matching


def matches(values: np.ndarray, kind: str, value: Any) -> np.ndarray:
    """Which rows the predicate keeps (NULL never matches)."""
    if kind == EQ:
        return np.asarray(values == value, dtype=bool)
    if kind == RANGE:
        low, high = value
        with np.errstate(invalid="ignore"):
            return np.asarray((values >= low) & (values <= high), dtype=bool)
    if kind == OVERLAP:
        tags = set(value)
        return np.fromiter(
            (v is not None and not tags.isdisjoint(v) for v in values), bool, len(values)
        )
    raise ValueError(f"unknown predicate form {kind!r}")


def label_counts(values: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Distinct non-NULL labels (python scalars) and their row counts, commonest first
    (ties by label)."""
    keep = np.array([v is not None for v in values], dtype=bool) if values.dtype == object else None
    present = values if keep is None else values[keep]
    labels, counts = np.unique(present, return_counts=True)
    order = np.lexsort((np.arange(labels.size), -counts))
    return [_scalar(x) for x in labels[order]], counts[order].astype(np.int64)


def tag_counts(values: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Distinct tags of an array column and how many rows hold each, commonest first."""
    counter: dict[Any, int] = {}
    for row in values:
        for tag in set(row or ()):
            counter[tag] = counter.get(tag, 0) + 1
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [t for t, _ in ordered], np.array([c for _, c in ordered], dtype=np.int64)


def tag_rows(values: np.ndarray) -> dict[Any, np.ndarray]:
    """Each tag of an array column -> the rows holding it (ascending): the rows a
    one-tag ``&&`` filter keeps."""
    rows: dict[Any, list[int]] = {}
    for i, row in enumerate(values):
        for tag in set(row or ()):
            rows.setdefault(tag, []).append(i)
    return {tag: np.asarray(r, dtype=np.int64) for tag, r in rows.items()}


def bucket_of(shares: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index of each share (a share equal to an edge belongs to the bucket above)."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), shares, side="right")


# --------------------------------------------------------------------------- drawing


def draw_labels(
    labels: Sequence[Any],
    counts: np.ndarray,
    pool: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    by_frequency: bool,
) -> list[Any]:
    """``n`` labels among ``labels[pool]``: by frequency, or each in turn (even spread)."""
    if pool.size == 0 or n <= 0:
        return []
    if by_frequency:
        weights = counts[pool] / counts[pool].sum()
        picked = rng.choice(pool, size=n, p=weights)
    else:
        order = rng.permutation(pool)
        picked = order[np.arange(n) % order.size]
    return [labels[int(i)] for i in picked]


def draw_own_labels(
    query_values: np.ndarray,
    share_of: dict[Any, float],
    edges: Sequence[float],
    bucket: int,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indexes of up to ``n`` queries whose own label lies in ``bucket`` (repeated when
    the bucket has fewer such queries)."""
    shares = np.array([share_of.get(_scalar(v), 0.0) for v in query_values], dtype=np.float64)
    pool = np.flatnonzero((shares > 0) & (bucket_of(shares, edges) == bucket))
    if pool.size == 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    order = rng.permutation(pool)
    return order[np.arange(n) % order.size].astype(np.int64)


def draw_ranges(
    values: np.ndarray, edges: Sequence[float], n: int, rng: np.random.Generator
) -> list[list[tuple[Any, Any]]]:
    """Per bucket, ``n`` (low, high) bounds whose intended share lies in the bucket: the
    share drawn log-uniformly within the bucket's edges, the bounds the quantiles at a
    random offset. Ties may keep more rows than intended; the caller regroups by the real
    share."""
    present = np.sort(values[not_null(values)], kind="stable")
    m = present.size
    total = values.shape[0]
    out: list[list[tuple[Any, Any]]] = []
    bounds = [0.0, *edges, 1.0]
    for b in range(len(bounds) - 1):
        low = max(bounds[b], 1.0 / total)
        high = min(bounds[b + 1], m / total)
        if b == len(bounds) - 2:  # the top bucket: up to twice its edge, at most half
            high = min(high, max(2 * bounds[b], 0.5))
        if m == 0 or high <= low:
            out.append([])
            continue
        target = np.exp(rng.uniform(np.log(low), np.log(high), size=n))
        drawn: list[tuple[Any, Any]] = []
        for share in target:
            width = max(1, min(m, round(share * total)))
            start = int(rng.integers(0, m - width + 1))
            drawn.append((_scalar(present[start]), _scalar(present[start + width - 1])))
        out.append(drawn)
    return out


def share_of_rows(
    values: np.ndarray, kind: str, drawn: Sequence[Any], total: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The share of all rows each filter keeps, and the rows (ascending) it keeps."""
    rows = [np.flatnonzero(matches(values, kind, v)) for v in drawn]
    return np.array([r.size / max(1, total) for r in rows], dtype=np.float64), rows


def not_null(values: np.ndarray) -> np.ndarray:
    """Rows with a value (not NULL, NaN, NaT, or an empty array)."""
    if values.dtype == object:
        return np.array([v is not None and v != () for v in values], dtype=bool)
    if values.dtype.kind == "f":
        return np.asarray(~np.isnan(values), dtype=bool)
    if values.dtype.kind == "M":
        return np.asarray(~np.isnat(values), dtype=bool)
    return np.ones(values.shape[0], dtype=bool)


def _scalar(x: Any) -> Any:
    """numpy scalars as python values (labels are dict keys and SQL parameters)."""
    if isinstance(x, np.datetime64):
        return x.astype("datetime64[us]")
    return x.item() if isinstance(x, np.generic) else x


# --------------------------------------------------------------------------- SQL text


def sql_text(kind: str, value: Any) -> str:
    """A filter value in PostgreSQL's text input form for a column of attribute ``kind``."""
    if kind in ARRAY_KINDS:
        return "{" + ",".join(_array_item(kind, v) for v in value) + "}"
    if kind == "timestamp":
        return timestamp_text(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return repr(float(value))
    return str(value)


def timestamp_text(value: Any) -> str:
    us = int(np.datetime64(value, "us").astype(np.int64))
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return moment.isoformat()


def _array_item(kind: str, v: Any) -> str:
    if kind == "int[]":
        return str(int(v))
    text = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


#: the OID of each parameter type a predicate binds (text format)
TYPE_OIDS: dict[str, int] = {
    "bigint": 20,
    "double precision": 701,
    "boolean": 16,
    "text": 25,
    "timestamptz": 1184,
    "text[]": 1009,
    "bigint[]": 1016,
    "uuid": 2950,
}

Encoder = Callable[[Any], str]


def label_of(value: Any) -> str:
    """How a filter value reads in notes and the report."""
    if isinstance(value, tuple):
        if len(value) == 2 and not isinstance(value[0], str):
            return f"{label_of(value[0])}..{label_of(value[1])}"
        return "{" + ", ".join(str(v) for v in value) + "}"
    if isinstance(value, np.datetime64):
        return timestamp_text(value)
    return str(value)


def attribute_kinds(attributes: Sequence[Attribute]) -> str:
    """``a (int), b (text[])``: what a dataset has, for error messages."""
    return ", ".join(f"{a.name} ({a.kind})" for a in attributes) or "no attribute"
