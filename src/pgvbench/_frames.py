"""A results file's records as pandas DataFrames, for notebooks and ``pgvbench export``.

Tables (one row each per):

* ``points``: sweep point (``runs``), with its build's ``build_seconds`` and
  ``index_bytes`` joined by index label (and server configuration);
* ``load``: load point (``load_points``);
* ``capacity``: measured level and index kind of the capacity study
  (``tuning.capacity.levels``, written by studies/capacity/records.py): the level's
  ``rows``, ``load_seconds``, ``heap_bytes`` and ``backup.*``, the index's ``kind``,
  ``build_seconds``, ``index_bytes``, ``knob``, ``recall.*``, ``latency.*`` and
  ``qps_per_core`` (latency.qps / latency.server_cpu_cores): the columns
  studies/capacity/fits.py fits.

Every row starts with the run's context (``run_name``, ``dataset``, ``dataset_rows``,
``dim``, ``metric``). Nested objects are flattened with dotted names
(``latency_ms.p99``, ``recall.mean``, ``query_params.hnsw.ef_search``); notes are joined
with "; "; lists (per-repeat samples, time series, window lists) and the raw histograms,
plans, collector deltas and error texts are left out: they are in results.json.

This module works on the file's dict form and never imports results.py, so that
``Results.to_frame`` can import it lazily without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ResultsError

TABLES = ("points", "load", "capacity")
# where each table's records sit in a results file's dict form
PATHS: dict[str, tuple[str, ...]] = {
    "points": ("runs",),
    "load": ("load_points",),
    "capacity": ("tuning", "capacity", "levels"),
}
# fields left out of every table (bulky, or free text keyed by message)
_LEFT_OUT = frozenset(
    {"histogram", "plan", "collectors", "error_messages", "timeseries", "samples", "rebuilds"}
)
_JOINED = frozenset({"notes", "notices"})  # lists of strings kept as one "; "-joined column


def _records(data: Mapping[str, Any], table: str) -> list[Mapping[str, Any]]:
    node: Any = data
    for key in PATHS[table]:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, list):
        return []
    return [item for item in node if isinstance(item, Mapping)]


def tables_in(data: Mapping[str, Any]) -> list[str]:
    """The tables this results file has rows for, in TABLES order."""
    return [table for table in TABLES if _records(data, table)]


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in _LEFT_OUT:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            if key in _JOINED:
                out[name] = "; ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def _context(data: Mapping[str, Any]) -> dict[str, Any]:
    dataset = data.get("dataset")
    dataset = dataset if isinstance(dataset, Mapping) else {}
    return {
        "run_name": data.get("run_name"),
        "dataset": dataset.get("name"),
        "dataset_rows": dataset.get("n"),
        "dim": dataset.get("dim"),
        "metric": dataset.get("metric"),
    }


def _builds(data: Mapping[str, Any]) -> dict[tuple[Any, Any], dict[str, Any]]:
    """(label, server_config) -> the build's time and size; the first build of each."""
    builds: dict[tuple[Any, Any], dict[str, Any]] = {}
    raw = data.get("indexes")
    for build in raw if isinstance(raw, list) else []:
        if isinstance(build, Mapping):
            key = (build.get("label"), build.get("server_config"))
            builds.setdefault(
                key,
                {
                    "build_seconds": build.get("build_seconds"),
                    "index_bytes": build.get("index_bytes"),
                },
            )
    return builds


def _capacity_rows(levels: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per level and index kind (a level whose indexes all failed still has one)."""
    out = []
    for level in levels:
        base = _flatten({k: v for k, v in level.items() if k != "indexes"})
        indexes = level.get("indexes")
        found = (
            [ix for ix in indexes if isinstance(ix, Mapping)] if isinstance(indexes, list) else []
        )
        for ix in found or [{}]:
            config = ix.get("config")
            kind = config.get("kind") if isinstance(config, Mapping) else None
            latency = ix.get("latency")
            latency = latency if isinstance(latency, Mapping) else {}
            qps, cores = _number(latency.get("qps")), _number(latency.get("server_cpu_cores"))
            per_core = qps / cores if qps is not None and cores is not None and cores > 0 else None
            out.append({**base, "kind": kind, **_flatten(ix), "qps_per_core": per_core})
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def rows(data: Mapping[str, Any], table: str) -> list[dict[str, Any]]:
    """The table's rows as plain dicts (the DataFrame's content, without pandas)."""
    context = _context(data)
    if table == "capacity":
        return [{**context, **row} for row in _capacity_rows(_records(data, table))]
    builds = _builds(data) if table == "points" else {}
    out = []
    for record in _records(data, table):
        row = {**context, **_flatten(record)}
        if table == "points":
            key = (record.get("index"), record.get("server_config"))
            row.update(builds.get(key, {"build_seconds": None, "index_bytes": None}))
        out.append(row)
    return out


def resolve_table(data: Mapping[str, Any], table: str | None, *, source: str) -> str:
    """``table``, checked against what the file has; None: the first it has."""
    present = tables_in(data)
    has = ", ".join(present) if present else "none of them"
    if table is None:
        if not present:
            raise ResultsError(
                f"{source}: nothing to export: the file has no sweep points, load points or "
                "capacity levels (tables points, load, capacity); was the run interrupted "
                "before its first measurement?"
            )
        return present[0]
    if table not in TABLES:
        raise ResultsError(
            f"{source}: no table {table!r}; the tables are {', '.join(TABLES)} and this file "
            f"has rows for {has}"
        )
    if table not in present:
        raise ResultsError(
            f"{source}: the file has no {table!r} rows ({_describe(table)}); it has rows for {has}"
        )
    return table


def _describe(table: str) -> str:
    return {
        "points": "sweep points, from [[index]] and [query]",
        "load": "load points, from [load]",
        "capacity": "capacity levels, from [capacity] or pgvbench plan",
    }[table]


def frame(data: Mapping[str, Any], table: str | None = None, *, source: str = "<results>") -> Any:
    """One table of a results file's dict form as a pandas DataFrame (see the module
    docstring); ``table`` None: the first table the file has. ResultsError (naming
    ``source`` and the tables it has) for an unknown table or one without rows."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    chosen = resolve_table(data, table, source=source)
    return pd.DataFrame.from_records(_columns_first(rows(data, chosen)))


def _columns_first(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every column (in first-seen order), so pandas keeps that order. A
    record absent in some rows (null) and present in others has only its dotted columns."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    nested = {name.split(".", 1)[0] for name in names if "." in name}
    keep = [name for name in names if name not in nested]
    return [{name: record.get(name) for name in keep} for record in records]
