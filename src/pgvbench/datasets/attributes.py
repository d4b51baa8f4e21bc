"""Attributes: the columns a dataset carries beside its vectors (labels, tenants, dates,
tags), loaded as real columns and filtered on by the ``[filtered]`` study.

Every source produces the same record: one value per base row, and optionally one per
query (ann-benchmarks' ``test_labels``: the query's own label). Values keep the kind the
source has them in, so the column gets the matching PostgreSQL type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import DatasetError

#: attribute kind -> PostgreSQL column type
SQL_TYPES: Mapping[str, str] = {
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "text": "text",
    "timestamp": "timestamptz",
    "text[]": "text[]",
    "int[]": "bigint[]",
    "jsonb": "jsonb",
}
KINDS = tuple(SQL_TYPES)
#: kinds a range predicate applies to (numbers and times)
RANGE_KINDS = ("int", "float", "timestamp")
#: kinds an overlap (``&&``) predicate applies to
ARRAY_KINDS = ("text[]", "int[]")
#: kinds an equality predicate (a label) applies to
LABEL_KINDS = ("int", "text", "bool")

# numpy dtype each kind is stored in: object kinds hold str / tuple / JSON text, None = NULL
_DTYPES: Mapping[str, str] = {
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "text": "object",
    "timestamp": "datetime64[us]",
    "text[]": "object",
    "int[]": "object",
    "jsonb": "object",
}


def _column(values: np.ndarray, kind: str, what: str, rows: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != rows:
        raise DatasetError(
            f"{what}: expected {rows:,} values (one per row), got shape {array.shape}"
        )
    try:
        out = array.astype(_DTYPES[kind], copy=False)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{what}: values are not of kind {kind!r}: {exc}") from None
    out = out.view() if out is array else out
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Attribute:
    """One filterable column: ``values[i]`` belongs to base row i, ``query_values[j]`` (when
    the source has them) to query j.

    Storage by kind: int -> int64, float -> float64 (NaN = NULL), bool -> bool, text ->
    object of str, timestamp -> datetime64[us] (UTC; NaT = NULL), text[] / int[] -> object
    of tuples, jsonb -> object of JSON text. None is NULL in the object kinds.
    """

    name: str  # the column name in pgvbench's table (a plain identifier)
    kind: str  # one of KINDS
    values: np.ndarray
    query_values: np.ndarray | None = None
    origin: str = ""  # where it was read from, for notes ("train_labels in x.hdf5")

    def __post_init__(self) -> None:
        if self.kind not in SQL_TYPES:
            allowed = ", ".join(KINDS)
            raise DatasetError(
                f"attribute {self.name!r}: unknown kind {self.kind!r}; use {allowed}"
            )

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def checked(self, rows: int, queries: int, source: str) -> Attribute:
        """This attribute with its arrays in canonical dtypes, lengths checked."""
        what = f"{source}: attribute {self.name!r}"
        values = _column(self.values, self.kind, what, rows)
        qv = self.query_values
        if qv is not None:
            qv = _column(qv, self.kind, f"{what} (queries)", queries)
        return dataclasses.replace(self, values=values, query_values=qv)

    def take(self, rows: np.ndarray | slice) -> Attribute:
        """The attribute of a subset of the base rows (query values unchanged)."""
        return dataclasses.replace(self, values=self.values[rows])

    def take_queries(self, queries: np.ndarray | slice) -> Attribute:
        """The attribute of a subset of the queries."""
        qv = self.query_values
        return dataclasses.replace(self, query_values=None if qv is None else qv[queries])


def check_attributes(
    attributes: Sequence[Attribute], rows: int, queries: int, source: str
) -> tuple[Attribute, ...]:
    """Attributes with canonical arrays; names unique and not taken by id/embedding."""
    seen: set[str] = set()
    out: list[Attribute] = []
    for attr in attributes:
        if attr.name in ("id", "embedding") or attr.name in seen:
            raise DatasetError(
                f"{source}: attribute name {attr.name!r} is used twice or clashes with the "
                "id/embedding columns; rename it"
            )
        seen.add(attr.name)
        out.append(attr.checked(rows, queries, source))
    return tuple(out)
