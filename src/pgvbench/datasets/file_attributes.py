"""Attributes (labels, tenants, dates) from ann-benchmarks HDF5 files and .npy arrays.

HDF5: by default a file's ``train_labels`` (one value or one row of labels per train row)
becomes the attribute ``label``, with ``test_labels`` as each query's own label. The spec
may name them instead: ``attributes = { tenant = "train_tenant" }``; a ``train_X`` named
there takes ``test_X`` as its query values when the file has it and ``query_attributes``
does not say otherwise. Per-row datasets the file has but the run did not load are listed
(:func:`hdf5_unloaded`), never silently dropped.

.npy: ``attributes = { label = "labels.npy" }``, one array per attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import DatasetError
from .attribute_values import attribute, check_name
from .attributes import Attribute

DEFAULT_LABELS = ("label", "train_labels", "test_labels")
# datasets of an ann-benchmarks file that are not attributes
_ANN_KEYS = ("train", "test", "neighbors", "distances")


def _row_datasets(f: h5py.File, rows: int) -> list[str]:
    """Top-level datasets with one entry per ``rows`` (candidates for attributes)."""
    out = []
    for key in f:
        node = f[key]
        if isinstance(node, h5py.Dataset) and node.ndim >= 1 and node.shape[0] == rows:
            out.append(str(key))
    return sorted(k for k in out if k not in _ANN_KEYS)


def _hdf5_names(
    f: h5py.File, attributes: Mapping[str, str], query_attributes: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(column -> base dataset, column -> query dataset), defaults applied."""
    name, train_key, _ = DEFAULT_LABELS
    if not attributes:
        if train_key not in f:
            return {}, {}
        attributes = {name: train_key}
    queries = dict(query_attributes)
    for column, key in attributes.items():
        if column not in queries and key.startswith("train_"):
            test = "test_" + key.removeprefix("train_")
            if test in f:
                queries[column] = test
    return dict(attributes), queries


def _where(path: Path, column: str, key: str, *, default: bool) -> str:
    if default:  # the user wrote nothing: say why pgvbench read it
        return (
            f"{path}: {key!r} (loaded by default as the attribute {column!r}; name the "
            "attributes under [dataset] attributes to choose others)"
        )
    return f"{path}: [dataset] attributes.{column} = {key!r}"


def _read(node: Any, rows: int) -> np.ndarray:
    if h5py.check_string_dtype(node.dtype) is not None:
        return np.asarray(node.asstr()[:rows], dtype=object)
    return np.asarray(node[:rows])


def hdf5_attributes(
    f: h5py.File,
    path: Path,
    *,
    rows: int,
    queries: int,
    attributes: Mapping[str, str],
    query_attributes: Mapping[str, str],
) -> tuple[Attribute, ...]:
    """The attributes of an open ann-benchmarks file: ``rows`` train rows, the first
    ``queries`` test rows."""
    base_names, query_names = _hdf5_names(f, attributes, query_attributes)
    allowed = _row_datasets(f, rows)
    out = []
    for column, key in base_names.items():
        where = _where(path, column, key, default=not attributes)
        check_name(column, where)
        node = _h5_node(f, key, where, allowed, rows)
        qkey = query_names.get(column)
        qvalues, qwhere = None, ""
        if qkey is not None:
            qwhere = f"{path}: [dataset] query_attributes.{column} = {qkey!r}"
            tests = _row_datasets_min(f, queries)
            qnode = _h5_node(f, qkey, qwhere, tests, queries, at_least=True)
            qvalues = _read(qnode, queries)
        origin = f"{key} in {path.name}" + (f" (queries: {qkey})" if qkey else "")
        out.append(
            attribute(
                column,
                _read(node, rows),
                qvalues,
                origin=origin,
                where=f"{path}: {key!r}",
                query_where=f"{path}: {qkey!r}",
            )
        )
    for column in query_names:
        if column not in base_names:
            raise DatasetError(
                f"{path}: [dataset] query_attributes.{column} names no attribute; it must be "
                f"one of the attributes: {', '.join(base_names) or '(none)'}"
            )
    return tuple(out)


def _row_datasets_min(f: h5py.File, rows: int) -> list[str]:
    return sorted(
        str(k)
        for k in f
        if isinstance(f[k], h5py.Dataset)
        and f[k].ndim >= 1
        and f[k].shape[0] >= rows
        and k not in _ANN_KEYS
    )


def _h5_node(
    f: h5py.File, key: str, where: str, allowed: list[str], rows: int, *, at_least: bool = False
) -> Any:
    names = ", ".join(allowed) or "(none)"
    node = f.get(key)
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(
            f"{where}: the file has no dataset {key!r}; datasets with one value per row: {names}"
        )
    length = node.shape[0] if node.ndim else 0
    if length != rows and not (at_least and length >= rows):
        raise DatasetError(
            f"{where}: {key!r} has {length:,} entries but there are {rows:,} rows; it needs "
            f"one per row (datasets that fit: {names})"
        )
    return node


def hdf5_unloaded(path: Path, *, rows: int, loaded: Mapping[str, str]) -> list[str]:
    """Per-row datasets of the file that no attribute loaded (for the run's notes)."""
    with h5py.File(path, "r") as f:
        base_names, query_names = _hdf5_names(f, loaded, {})
        test_rows = f["test"].shape[0] if "test" in f else -1
        used = set(base_names.values()) | set(query_names.values())
        candidates = set(_row_datasets(f, rows)) | set(_row_datasets(f, test_rows))
    return sorted(candidates - used)


def hdf5_check(
    path: Path,
    f: h5py.File,
    *,
    rows: int,
    queries: int,
    attributes: Mapping[str, str],
    query_attributes: Mapping[str, str],
) -> None:
    """Header check of the spec's attribute names against the file (no values read)."""
    base_names, query_names = _hdf5_names(f, attributes, query_attributes)
    allowed = _row_datasets(f, rows)
    for column, key in base_names.items():
        where = _where(path, column, key, default=not attributes)
        check_name(column, where)
        _h5_node(f, key, where, allowed, rows)
    for column, key in query_names.items():
        where = f"{path}: [dataset] query_attributes.{column} = {key!r}"
        if column not in base_names:
            raise DatasetError(
                f"{where}: names no attribute; use one of: {', '.join(base_names) or '(none)'}"
            )
        _h5_node(f, key, where, _row_datasets_min(f, queries), queries, at_least=True)


# --- .npy ------------------------------------------------------------------------------


def _npy_array(path: Path, where: str, *, header_only: bool = False) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{where}: file {path} not found; paths are relative to the spec")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if header_only else None)
    except ValueError as exc:
        raise DatasetError(
            f"{where}: {path} is not a plain .npy array ({exc}); save labels as ints, "
            "floats, bools, fixed-width strings (dtype 'U') or datetime64"
        ) from None
    except OSError as exc:
        raise DatasetError(f"{where}: cannot read {path} ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise DatasetError(f"{where}: {path} is an archive; save one array per file")
    return array


def npy_attributes(
    attributes: Mapping[str, str],
    query_attributes: Mapping[str, str],
    *,
    rows: int,
    queries: int,
) -> tuple[Attribute, ...]:
    """Attributes from .npy files (paths already resolved against the spec's folder)."""
    out = []
    for column in query_attributes:
        if column not in attributes:
            raise DatasetError(
                f"[dataset] query_attributes.{column} names no attribute; use one of: "
                f"{', '.join(attributes) or '(none)'}"
            )
    for column, file in attributes.items():
        where = f"[dataset] attributes.{column} = {file!r}"
        check_name(column, where)
        values = _npy_length(_npy_array(Path(file), where), rows, where, Path(file))
        qfile = query_attributes.get(column)
        qvalues = None
        qwhere = ""
        if qfile is not None:
            qwhere = f"[dataset] query_attributes.{column} = {qfile!r}"
            qvalues = _npy_length(_npy_array(Path(qfile), qwhere), queries, qwhere, Path(qfile))
        origin = Path(file).name + (f" (queries: {Path(qfile).name})" if qfile else "")
        out.append(
            attribute(
                column,
                values,
                qvalues,
                origin=origin,
                where=f"{file}",
                query_where=f"{qfile}",
            )
        )
    return tuple(out)


def _npy_length(array: np.ndarray, rows: int, where: str, path: Path) -> np.ndarray:
    if array.ndim == 0 or array.shape[0] != rows:
        raise DatasetError(
            f"{where}: {path} has shape {array.shape} but there are {rows:,} rows; it needs "
            "one value (or one row of labels) per row"
        )
    return array


def npy_check(
    attributes: Mapping[str, str],
    query_attributes: Mapping[str, str],
    *,
    rows: int,
    queries: int,
) -> None:
    """Header check of the spec's .npy attribute files: present, plain arrays, one entry
    per row (per query); the values are read only by :func:`npy_attributes`."""
    for column, file in attributes.items():
        where = f"[dataset] attributes.{column} = {file!r}"
        check_name(column, where)
        _npy_length(_npy_array(Path(file), where, header_only=True), rows, where, Path(file))
    for column, file in query_attributes.items():
        where = f"[dataset] query_attributes.{column} = {file!r}"
        if column not in attributes:
            raise DatasetError(
                f"{where}: names no attribute; use one of: {', '.join(attributes) or '(none)'}"
            )
        array = _npy_array(Path(file), where, header_only=True)
        _npy_length(array, queries, where, Path(file))
