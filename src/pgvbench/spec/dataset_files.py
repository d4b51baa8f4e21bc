"""[dataset] of file sources (hdf5, npy, parquet): their keys, and the attributes they may
carry (``attributes`` / ``query_attributes``: column name in pgvbench's table -> where it
is read from). The file contents are checked later, from their headers (plan/shape.py)."""

from __future__ import annotations

import re
from pathlib import Path

from ..metrics import Metric
from .model import DatasetSpec
from .table import Table

_COMMON = ["source", "metric"]
#: [dataset] layout values of source = "parquet"
PARQUET_LAYOUTS = ("vectordbbench", "columns")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _metric(t: Table, *, required: bool = False) -> Metric:
    return Metric(t.choice("metric", [m.value for m in Metric], default="l2", required=required))


def _check_name(t: Table, key: str, name: str) -> None:
    if not _NAME.match(name) or name in ("id", "embedding"):
        t.fail(
            key,
            f"names the column {name!r}; an attribute name must be a plain lower-case SQL "
            "identifier (letters, digits, underscores; not id or embedding), since it becomes "
            "a column of pgvbench's table",
        )


def attribute_map(
    t: Table, key: str, *, base_dir: Path | None = None, lists: bool = False
) -> dict[str, str]:
    """``key = { column = "source" }`` (or, with ``lists``, ``key = ["column", ...]``, each
    read from the source column of the same name). ``base_dir`` resolves file paths."""
    value = t.data.get(key, {})
    if lists and isinstance(value, list):
        if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
            t.fail(key, f"= {value!r} must be a list of distinct column names")
        value = {v: v for v in value}
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        shape = "a list of column names or " if lists else ""
        t.fail(key, f'= {value!r} must be {shape}a table of column = "source name" pairs')
    out: dict[str, str] = {}
    for column, source in value.items():
        _check_name(t, key, column)
        if base_dir is not None:
            path = Path(source).expanduser()
            source = str(path if path.is_absolute() else base_dir / path)
        out[column] = source
    return out


def _query_map(t: Table, attributes: dict[str, str], base_dir: Path | None) -> dict[str, str]:
    queries = attribute_map(t, "query_attributes", base_dir=base_dir)
    for column in queries:
        if column not in attributes:
            t.fail(
                "query_attributes",
                f"names {column!r}, which is not one of the attributes: "
                f"{', '.join(attributes) or '(none: add it to attributes)'}",
            )
    return queries


def hdf5(t: Table, base_dir: Path) -> DatasetSpec:
    t.only([*_COMMON, "path", "queries", "attributes", "query_attributes"])
    if "metric" in t.data:
        t.fail("metric", "is read from the HDF5 file's 'distance' attribute; remove it")
    attributes = attribute_map(t, "attributes")
    return DatasetSpec(
        source="hdf5",
        metric=Metric.L2,  # replaced by the file's distance attribute on load
        path=t.path("path", base_dir),
        queries=t.integer("queries", default=0, minimum=0),
        attributes=attributes,
        query_attributes=_query_map(t, attributes, None),
    )


def npy(t: Table, base_dir: Path) -> DatasetSpec:
    t.only([*_COMMON, "base", "queries_file", "attributes", "query_attributes"])
    attributes = attribute_map(t, "attributes", base_dir=base_dir)
    return DatasetSpec(
        source="npy",
        metric=_metric(t, required=True),
        base=t.path("base", base_dir),
        queries_file=t.path("queries_file", base_dir),
        attributes=attributes,
        query_attributes=_query_map(t, attributes, base_dir),
    )


def parquet(t: Table, base_dir: Path) -> DatasetSpec:
    layout = t.choice("layout", PARQUET_LAYOUTS, required=True)
    if layout == "vectordbbench":
        t.only([*_COMMON, "layout", "path", "queries", "attributes"])
        return DatasetSpec(
            source="parquet",
            layout=layout,
            metric=_metric(t, required=True),
            path=t.path("path", base_dir),
            queries=t.integer("queries", default=0, minimum=0),
            attributes=attribute_map(t, "attributes", lists=True),
        )
    t.only([*_COMMON, "layout", "base", "queries_file", "column", "id_column", "attributes"])
    column = t.string("column", default="embedding")
    id_column = t.string("id_column", default="")
    attributes = attribute_map(t, "attributes", lists=True)
    for source in attributes.values():
        if source in (column, id_column):
            t.fail("attributes", f"names {source!r}, the vector or id column; list the others")
    return DatasetSpec(
        source="parquet",
        layout=layout,
        metric=_metric(t, required=True),
        base=t.path("base", base_dir),
        queries_file=t.path("queries_file", base_dir),
        column=column,
        id_column=id_column,
        attributes=attributes,
    )
