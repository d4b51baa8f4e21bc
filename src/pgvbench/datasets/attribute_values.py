"""Attribute values from arrays as files hold them: the kind is inferred from the dtype,
and the summary recorded in results.json (``DatasetInfo.attributes``).

ints -> int, floats -> float, bool -> bool, bytes/str -> text, datetime64 -> timestamp,
2-D int/str arrays (ann-benchmarks multi-labels, one row of L labels per vector) and
object arrays of lists -> int[] / text[], object arrays of dicts -> jsonb.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import DatasetError
from .attributes import LABEL_KINDS, SQL_TYPES, Attribute

#: an attribute name pgvbench puts into SQL unquoted: lower case, digits, underscores
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def objects(items: Iterable[Any]) -> np.ndarray:
    """A 1-D object array of ``items`` (numpy would turn equal-length tuples into 2-D)."""
    values = list(items)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _text(v: Any) -> Any:
    if v is None:
        return None
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def _element_kind(values: Sequence[Any]) -> str:
    """int[] when every element of every list is an integer, else text[]."""
    ints = all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool)
        for v in values
        if v is not None
        for x in v
        if x is not None
    )
    return "int[]" if ints else "text[]"


def _from_objects(array: np.ndarray, where: str) -> tuple[str, np.ndarray]:
    values = array.tolist()
    first = next((v for v in values if v is not None), None)
    if first is None or isinstance(first, (str, bytes)):
        return "text", objects(_text(v) for v in values)
    if isinstance(first, (list, tuple, np.ndarray)):
        rows = [None if v is None else tuple(np.asarray(v).tolist()) for v in values]
        kind = _element_kind(rows)
        if kind == "text[]":
            rows = [None if r is None else tuple(_text(x) for x in r) for r in rows]
        return kind, objects(rows)
    if isinstance(first, dict):
        return "jsonb", objects(None if v is None else json.dumps(v) for v in values)
    if isinstance(first, bool):
        return "bool", np.asarray(values, dtype=bool)
    if isinstance(first, int):
        return "int", np.asarray(values, dtype=np.int64)
    if isinstance(first, float):
        return "float", np.asarray([np.nan if v is None else v for v in values], dtype=float)
    raise DatasetError(
        f"{where}: values of Python type {type(first).__name__} are not an attribute kind; "
        f"use ints, floats, bools, strings, datetimes, lists of ints or strings, or dicts"
    )


def infer(array: np.ndarray, where: str) -> tuple[str, np.ndarray]:
    """(kind, values) of a per-row array; ``where`` names file and key in errors."""
    kind = array.dtype.kind
    if array.ndim == 2:
        if kind in "iu":
            return "int[]", objects(tuple(r) for r in array.astype(np.int64).tolist())
        if kind in "SUO":
            return "text[]", objects(tuple(_text(x) for x in r) for r in array.tolist())
        raise DatasetError(
            f"{where}: a 2-D {array.dtype} array is not a label column (2-D ints or strings "
            f"are multi-labels, one row per vector); got shape {array.shape}"
        )
    if array.ndim != 1:
        raise DatasetError(
            f"{where}: expected one value per row (1-D) or a row of labels per row (2-D), "
            f"got shape {array.shape}"
        )
    if kind == "b":
        return "bool", array
    if kind in "iu":
        return "int", array.astype(np.int64)
    if kind == "f":
        return "float", array.astype(np.float64)
    if kind in "SU":
        return "text", objects(_text(v) for v in array.tolist())
    if kind == "M":
        return "timestamp", array.astype("datetime64[us]")
    if kind == "O":
        return _from_objects(array, where)
    raise DatasetError(
        f"{where}: dtype {array.dtype} is not an attribute kind; use ints, floats, bools, "
        "strings, datetime64, or 2-D ints/strings for multi-labels"
    )


def attribute(
    name: str,
    values: np.ndarray,
    query_values: np.ndarray | None,
    *,
    origin: str,
    where: str,
    query_where: str = "",
) -> Attribute:
    """An Attribute of the kind the base values have; query values converted to it."""
    kind, base = infer(values, where)
    queries = None
    if query_values is not None:
        qkind, queries = infer(query_values, query_where or where)
        if qkind != kind and {qkind, kind} != {"int", "float"}:
            raise DatasetError(
                f"{query_where or where}: query values are {qkind} but the base rows' are "
                f"{kind} ({where}); both must hold the same kind of value"
            )
        if qkind != kind:  # int and float mix: both float
            kind, base, queries = "float", base.astype(float), queries.astype(float)
    return Attribute(name=name, kind=kind, values=base, query_values=queries, origin=origin)


def check_name(name: str, where: str) -> None:
    if not NAME_RE.match(name) or name in ("id", "embedding"):
        raise DatasetError(
            f"{where}: attribute name {name!r} must be a plain lower-case SQL identifier "
            "(letters, digits, underscores; not id or embedding), since it becomes a column "
            "of pgvbench's table"
        )


# --- the record in results.json --------------------------------------------------------


def _nulls(attr: Attribute) -> int:
    v = attr.values
    if attr.kind == "float":
        return int(np.isnan(v).sum())
    if attr.kind == "timestamp":
        return int(np.isnat(v).sum())
    if v.dtype == object:
        return sum(1 for x in v.tolist() if x is None)
    return 0


def _distinct(attr: Attribute) -> int | None:
    if attr.kind not in LABEL_KINDS:
        return None
    if attr.values.dtype == object:
        return len({x for x in attr.values.tolist() if x is not None})
    return int(np.unique(attr.values).shape[0])


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttributeInfo:
    """What was loaded as one attribute column (``DatasetInfo.attributes`` entries)."""

    name: str
    kind: str
    sql_type: str
    origin: str
    nulls: int
    distinct: int | None  # label kinds (int, text, bool) only
    query_values: bool  # each query carries its own value (e.g. test_labels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeInfo:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            sql_type=str(data.get("sql_type") or SQL_TYPES.get(str(data["kind"]), "")),
            origin=str(data.get("origin", "")),
            nulls=int(data.get("nulls", 0)),
            distinct=None if data.get("distinct") is None else int(data["distinct"]),
            query_values=bool(data.get("query_values", False)),
        )


def describe(attr: Attribute) -> AttributeInfo:
    return AttributeInfo(
        name=attr.name,
        kind=attr.kind,
        sql_type=attr.sql_type,
        origin=attr.origin,
        nulls=_nulls(attr),
        distinct=_distinct(attr),
        query_values=attr.query_values is not None,
    )
