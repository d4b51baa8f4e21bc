"""Datasets from Parquet files, read with pyarrow in record batches.

Two layouts ([dataset] source = "parquet", layout = ...):

``vectordbbench``: VectorDBBench's custom-dataset folder: ``train.parquet`` (or the
multi-file ``train-NN-of-MM.parquet`` / ``shuffle_train*.parquet``) with ``id`` and ``emb``
(list<float>), ``test.parquet`` (``id``, ``emb``), optional ``neighbors.parquet`` (``id`` of
a test row, ``neighbors_id``: train ids of its true neighbours, mapped to row indexes and
spot-checked like HDF5 neighbours) and optional ``scalar_labels.parquet`` (``id`` + label
columns, joined by id into attributes).

``columns``: ``base`` and ``queries_file`` with a named vector ``column``; ``attributes``
are columns of the base file, and of the queries file where it has them (query values).

Memory: the vectors are written batch by batch into the one float32 array the run keeps;
a batch holds at most CHUNK_BYTES of float64-equivalent values, so nothing else of the
size of the data is ever materialised. Attribute columns are read whole (one value a row).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DatasetError
from ..metrics import Metric
from .attribute_values import check_name, objects
from .attributes import Attribute
from .base import CHUNK_BYTES, Dataset
from .files import _check_nonzero

VDB_ID, VDB_VECTOR, VDB_NEIGHBORS = "id", "emb", "neighbors_id"
VDB_TEST, VDB_GT, VDB_LABELS = "test.parquet", "neighbors.parquet", "scalar_labels.parquet"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParquetShape:
    """Rows and dim from the files' metadata (and one row of the vector column)."""

    rows: int
    dim: int
    queries: int
    base: Path
    queries_path: Path


def _open(path: Path, what: str) -> pq.ParquetFile:
    if not path.is_file():
        raise DatasetError(f"{path}: {what} Parquet file not found; check the path")
    try:
        # pre_buffer (pyarrow's default) keeps every row group read so far cached until
        # the file is closed: the whole vector column again beside our float32 array
        return pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None


def _require(pf: pq.ParquetFile, path: Path, column: str, key: str) -> pa.DataType:
    names = pf.schema_arrow.names
    if column not in names:
        raise DatasetError(
            f"{path}: has no column {column!r} ({key}); its columns: {', '.join(names)}"
        )
    return pf.schema_arrow.field(column).type


def _vector_dim(pf: pq.ParquetFile, path: Path, column: str, key: str) -> int:
    kind = _require(pf, path, column, key)
    if pa.types.is_fixed_size_list(kind):
        return int(kind.list_size)
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise DatasetError(
            f"{path}: column {column!r} ({key}) is {kind}, not a list of floats (a vector)"
        )
    if pf.metadata.num_rows == 0:
        raise DatasetError(f"{path}: has no rows")
    first = next(pf.iter_batches(batch_size=1, columns=[column])).column(0)
    if first.null_count:
        raise DatasetError(f"{path}: column {column!r} row 0 is NULL; every row needs a vector")
    return len(first[0].values)


def _vectors(pf: pq.ParquetFile, path: Path, column: str, dim: int, rows: int) -> np.ndarray:
    """Column ``column``'s first ``rows`` rows as a float32 (rows x dim) array."""
    out = np.empty((rows, dim), dtype=np.float32)
    _fill(pf, path, column, out)
    return out


def _fill(pf: pq.ParquetFile, path: Path, column: str, out: np.ndarray) -> None:
    """Write column ``column`` into ``out`` (rows x dim float32), batch by batch."""
    rows, dim = out.shape
    batch = max(1, CHUNK_BYTES // (8 * max(1, dim)))
    at = 0
    for record in pf.iter_batches(batch_size=batch, columns=[column]):
        if at >= rows:
            break
        arr = record.column(0)
        n = min(len(arr), rows - at)
        arr = arr.slice(0, n)
        _check_rows(arr, path, column, dim, at)
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        block = out[at : at + n]
        block[...] = flat.reshape(n, dim)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise DatasetError(
                f"{path}: column {column!r} row {at + int(np.argmax(bad))} has NaN or infinite "
                "values (or values too large for float32); clean the data before benchmarking"
            )
        at += n
    if at < rows:
        raise DatasetError(f"{path}: read {at:,} rows but the metadata says {rows:,}")


def _check_rows(arr: pa.Array, path: Path, column: str, dim: int, at: int) -> None:
    if arr.null_count:
        row = at + int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
        raise DatasetError(
            f"{path}: column {column!r} row {row} is NULL; every row needs a {dim}-d vector"
        )
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if (lengths != dim).any():
        i = int(np.argmax(lengths != dim))
        raise DatasetError(
            f"{path}: column {column!r} row {at + i} has {int(lengths[i])} values, but the "
            f"first row has {dim}; every vector must have the same dimension"
        )
    values = arr.flatten()
    if values.null_count:
        i = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False))) // dim
        raise DatasetError(
            f"{path}: column {column!r} row {at + i} has a NULL element; vectors must be complete"
        )
    if not pa.types.is_floating(values.type) and not pa.types.is_integer(values.type):
        raise DatasetError(f"{path}: column {column!r} holds {values.type}, not float values")


def _ids(pf: pq.ParquetFile, path: Path, column: str) -> np.ndarray:
    kind = _require(pf, path, column, "id column")
    if not pa.types.is_integer(kind):
        raise DatasetError(f"{path}: id column {column!r} is {kind}, expected integers")
    col = pf.read(columns=[column]).column(0)
    if col.null_count:
        raise DatasetError(f"{path}: id column {column!r} has NULLs")
    return np.asarray(col.to_numpy(), dtype=np.int64)


# --- attributes ------------------------------------------------------------------------


def arrow_values(col: pa.ChunkedArray | pa.Array, where: str) -> tuple[str, np.ndarray]:
    """(attribute kind, values) of an Arrow column, keeping its type."""
    kind = col.type
    if pa.types.is_dictionary(kind):
        col, kind = col.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind):
        if col.null_count:  # int64 has no NULL: NaN in a float column keeps them
            return "float", col.cast(pa.float64()).fill_null(np.nan).to_numpy()
        return "int", col.to_numpy().astype(np.int64)
    if pa.types.is_floating(kind):
        return "float", col.cast(pa.float64()).fill_null(np.nan).to_numpy()
    if pa.types.is_boolean(kind):
        if col.null_count:
            raise DatasetError(f"{where}: a bool column with NULLs; fill them or cast to text")
        return "bool", col.to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text", objects(col.to_pylist())
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        us = col.cast(pa.timestamp("us")) if pa.types.is_date(kind) else col
        if pa.types.is_timestamp(kind):
            us = pc.cast(col, pa.timestamp("us", tz=kind.tz))
        return "timestamp", np.asarray(us.to_numpy(zero_copy_only=False), "datetime64[us]")
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        inner = kind.value_type
        rows = [None if v is None else tuple(v) for v in col.to_pylist()]
        if pa.types.is_integer(inner):
            return "int[]", objects(rows)
        if pa.types.is_string(inner) or pa.types.is_large_string(inner):
            return "text[]", objects(rows)
        raise DatasetError(f"{where}: a list of {inner} is not an attribute; use ints or strings")
    if pa.types.is_struct(kind) or pa.types.is_map(kind):
        is_map = pa.types.is_map(kind)
        return "jsonb", objects(
            None if v is None else json.dumps(dict(v) if is_map else v, default=str)
            for v in col.to_pylist()
        )
    raise DatasetError(
        f"{where}: Arrow type {kind} is not an attribute kind; use integers, floats, bools, "
        "strings, timestamps, dates, lists of ints or strings, structs or maps"
    )


def _attribute(
    name: str,
    col: Any,
    qcol: Any,
    *,
    origin: str,
    where: str,
    query_where: str = "",
) -> Attribute:
    kind, values = arrow_values(col, where)
    queries = None
    if qcol is not None:
        qkind, queries = arrow_values(qcol, query_where)
        if qkind != kind:
            if {qkind, kind} != {"int", "float"}:
                raise DatasetError(
                    f"{query_where}: query values are {qkind} but the base rows' are {kind} "
                    f"({where}); both must hold the same kind of value"
                )
            kind, values, queries = "float", values.astype(float), queries.astype(float)
    return Attribute(name=name, kind=kind, values=values, query_values=queries, origin=origin)


# --- layout = "vectordbbench" ----------------------------------------------------------


def train_files(folder: Path) -> list[Path]:
    """VectorDBBench's train files: train.parquet, else train-NN-of-MM.parquet, else the
    shuffled shuffle_train*.parquet (the same rows in another order)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: [dataset] path must be a folder holding train.parquet")
    for pattern in ("train.parquet", "train-*.parquet", "shuffle_train*.parquet"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    names = ", ".join(sorted(p.name for p in folder.glob("*.parquet"))) or "(no .parquet files)"
    raise DatasetError(
        f"{folder}: no train.parquet (nor train-*.parquet, shuffle_train*.parquet); the "
        f"folder holds: {names}"
    )


def _vdb_shape(folder: Path, max_queries: int) -> tuple[list[pq.ParquetFile], list[Path], int]:
    paths = train_files(folder)
    files = [_open(p, "train") for p in paths]
    dim = _vector_dim(files[0], paths[0], VDB_VECTOR, "train vectors")
    for pf, path in zip(files[1:], paths[1:], strict=True):
        other = _vector_dim(pf, path, VDB_VECTOR, "train vectors")
        if other != dim:
            raise DatasetError(f"{path}: vectors have dim {other}, {paths[0]} has {dim}")
    return files, paths, dim


def probe_vectordbbench(folder: Path, *, max_queries: int = 0) -> ParquetShape:
    files, paths, dim = _vdb_shape(folder, max_queries)
    test = _open(folder / VDB_TEST, "test")
    qdim = _vector_dim(test, folder / VDB_TEST, VDB_VECTOR, "test vectors")
    if qdim != dim:
        raise DatasetError(f"{folder / VDB_TEST}: queries have dim {qdim} but train has {dim}")
    nq = test.metadata.num_rows
    return ParquetShape(
        rows=sum(pf.metadata.num_rows for pf in files),
        dim=dim,
        queries=min(nq, max_queries) if max_queries else nq,
        base=paths[0],
        queries_path=folder / VDB_TEST,
    )


def _rows_of(ids: np.ndarray, train_ids: np.ndarray, order: np.ndarray, where: str) -> np.ndarray:
    """Row indexes of ``ids`` among ``train_ids`` (``order`` sorts train_ids)."""
    at = np.searchsorted(train_ids, ids, sorter=order)
    at = np.minimum(at, train_ids.size - 1)
    rows = order[at]
    missing = train_ids[rows] != ids
    if missing.any():
        raise DatasetError(
            f"{where}: id {int(ids[np.argmax(missing)])} is not an id of the train rows"
        )
    return rows


def load_vectordbbench(
    folder: Path, *, metric: Metric, max_queries: int = 0, attributes: Mapping[str, str]
) -> Dataset:
    files, paths, dim = _vdb_shape(folder, max_queries)
    rows = sum(pf.metadata.num_rows for pf in files)
    base = np.empty((rows, dim), dtype=np.float32)
    ids = np.empty(rows, dtype=np.int64)
    at = 0
    for pf, path in zip(files, paths, strict=True):
        n = pf.metadata.num_rows
        _fill(pf, path, VDB_VECTOR, base[at : at + n])
        ids[at : at + n] = _ids(pf, path, VDB_ID)
        at += n
    order = np.argsort(ids, kind="stable")
    if (np.diff(ids[order]) == 0).any():
        dup = int(ids[order][np.argmax(np.diff(ids[order]) == 0)])
        raise DatasetError(f"{folder}: train id {dup} appears twice; ids must be unique")
    test_path = folder / VDB_TEST
    test = _open(test_path, "test")
    nq = test.metadata.num_rows
    nq = min(nq, max_queries) if max_queries else nq
    queries = _vectors(test, test_path, VDB_VECTOR, dim, nq)
    test_ids = _ids(test, test_path, VDB_ID)[:nq]
    _check_nonzero(base, str(paths[0]), metric)
    _check_nonzero(queries, str(test_path), metric)
    return Dataset(
        name=folder.name,
        source=f"parquet:{folder}",
        metric=metric,
        base=base,
        queries=queries,
        neighbors=_vdb_neighbors(folder, test_ids, ids, order),
        attributes=_vdb_labels(folder, attributes, ids, order),
    )


def _vdb_neighbors(
    folder: Path, test_ids: np.ndarray, train_ids: np.ndarray, order: np.ndarray
) -> np.ndarray | None:
    path = folder / VDB_GT
    if not path.is_file():
        return None
    pf = _open(path, "neighbors")
    _require(pf, path, VDB_NEIGHBORS, "ground truth")
    table = pf.read(columns=[VDB_ID, VDB_NEIGHBORS])
    gt_ids = table.column(VDB_ID).to_numpy().astype(np.int64)
    lists = table.column(VDB_NEIGHBORS)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    if lists.null_count or (lengths != lengths[0]).any():
        raise DatasetError(f"{path}: {VDB_NEIGHBORS!r} lists must all have the same length")
    k = int(lengths[0])
    flat = lists.combine_chunks().flatten().to_numpy().astype(np.int64)
    where = {int(t): i for i, t in enumerate(gt_ids.tolist())}
    missing = [int(t) for t in test_ids.tolist() if int(t) not in where]
    if missing:
        raise DatasetError(f"{path}: no neighbours for test id {missing[0]}")
    pick = np.array([where[int(t)] for t in test_ids.tolist()], dtype=np.int64)
    neighbor_ids = flat.reshape(-1, k)[pick]
    rows = _rows_of(neighbor_ids.reshape(-1), train_ids, order, f"{path}: {VDB_NEIGHBORS!r}")
    return rows.reshape(-1, k)


def _vdb_labels(
    folder: Path, attributes: Mapping[str, str], train_ids: np.ndarray, order: np.ndarray
) -> tuple[Attribute, ...]:
    path = folder / VDB_LABELS
    if not path.is_file():
        if attributes:
            raise DatasetError(
                f"{folder}: [dataset] attributes names columns of {VDB_LABELS}, which the "
                "folder does not have"
            )
        return ()
    pf = _open(path, "scalar labels")
    _require(pf, path, VDB_ID, "id column")
    columns = dict(attributes) or {c: c for c in pf.schema_arrow.names if c != VDB_ID}
    for name, column in columns.items():
        check_name(name, f"{path}: column {column!r} ([dataset] attributes)")
        _require(pf, path, column, f"[dataset] attributes.{name}")
    table = pf.read(columns=[VDB_ID, *columns.values()])
    label_ids = table.column(VDB_ID).to_numpy().astype(np.int64)
    rows = _rows_of(label_ids, train_ids, order, f"{path}: {VDB_ID!r}")
    source = np.full(train_ids.size, -1, dtype=np.int64)
    source[rows] = np.arange(rows.size)
    take = pa.array(source, mask=source < 0)  # train rows without a label row: NULL
    return tuple(
        _attribute(
            name,
            table.column(column).take(take),
            None,
            origin=f"{column} in {VDB_LABELS}",
            where=f"{path}: column {column!r}",
        )
        for name, column in columns.items()
    )


# --- layout = "columns" ----------------------------------------------------------------


def probe_columns(
    base: Path, queries: Path, *, column: str, id_column: str, attributes: Mapping[str, str]
) -> ParquetShape:
    bf, qf = _open(base, "base"), _open(queries, "queries")
    dim = _vector_dim(bf, base, column, "[dataset] column")
    qdim = _vector_dim(qf, queries, column, "[dataset] column")
    if qdim != dim:
        raise DatasetError(f"{queries}: queries have dim {qdim} but {base} has dim {dim}")
    if id_column:
        _require(bf, base, id_column, "[dataset] id_column")
    for name, source in attributes.items():
        _require(bf, base, source, f"[dataset] attributes ({name})")
    return ParquetShape(
        rows=bf.metadata.num_rows,
        dim=dim,
        queries=qf.metadata.num_rows,
        base=base,
        queries_path=queries,
    )


def load_columns(
    base: Path,
    queries: Path,
    *,
    metric: Metric,
    column: str,
    id_column: str,
    attributes: Mapping[str, str],
) -> Dataset:
    shape = probe_columns(base, queries, column=column, id_column=id_column, attributes=attributes)
    bf, qf = _open(base, "base"), _open(queries, "queries")
    if id_column:
        ids = _ids(bf, base, id_column)
        if np.unique(ids).size != ids.size:
            raise DatasetError(f"{base}: id column {id_column!r} has repeated ids")
    attrs = _column_attributes(bf, qf, base, queries, attributes)
    vectors = _vectors(bf, base, column, shape.dim, shape.rows)
    query_vectors = _vectors(qf, queries, column, shape.dim, shape.queries)
    _check_nonzero(vectors, str(base), metric)
    _check_nonzero(query_vectors, str(queries), metric)
    return Dataset(
        name=base.stem,
        source=f"parquet:{base}",
        metric=metric,
        base=vectors,
        queries=query_vectors,
        attributes=attrs,
    )


def _column_attributes(
    bf: pq.ParquetFile,
    qf: pq.ParquetFile,
    base: Path,
    queries: Path,
    attributes: Mapping[str, str],
) -> tuple[Attribute, ...]:
    if not attributes:
        return ()
    table = bf.read(columns=list(attributes.values()))
    in_queries = [c for c in attributes.values() if c in qf.schema_arrow.names]
    qtable = qf.read(columns=in_queries) if in_queries else None
    out = []
    for name, source in attributes.items():
        check_name(name, f"{base}: column {source!r} ([dataset] attributes)")
        qcol = qtable.column(source) if qtable is not None and source in in_queries else None
        origin = f"{source} in {base.name}" + (f" (queries: {queries.name})" if qcol else "")
        out.append(
            _attribute(
                name,
                table.column(source),
                qcol,
                origin=origin,
                where=f"{base}: column {source!r}",
                query_where=f"{queries}: column {source!r}",
            )
        )
    return tuple(out)


def unloaded_parquet(spec: Any, dataset: Dataset) -> list[str]:
    """Columns of the base (or scalar labels) file not loaded as attributes."""
    if spec.layout == "columns":
        names: Sequence[str] = _open(Path(spec.base), "base").schema_arrow.names
        used = {spec.column, spec.id_column, *spec.attributes.values()}
    else:
        folder = Path(spec.path)
        path = folder / VDB_LABELS
        names = _open(path, "scalar labels").schema_arrow.names if path.is_file() else []
        used = {VDB_ID, *(a.origin.split(" in ")[0] for a in dataset.attributes)}
        # other files of the folder, e.g. VectorDBBench's filtered ground truth
        # (neighbors_labels_label_1p.parquet): pgvbench computes its own
        read = {*(p.name for p in train_files(folder)), VDB_TEST, VDB_GT, VDB_LABELS}
        files = sorted(p.name for p in folder.glob("*.parquet") if p.name not in read)
        return [n for n in names if n not in used] + files
    return [n for n in names if n not in used]


def load_parquet(spec: Any) -> Dataset:
    """The dataset a [dataset] source = "parquet" spec describes (a DatasetSpec)."""
    if spec.layout == "vectordbbench":
        return load_vectordbbench(
            Path(spec.path),
            metric=spec.metric,
            max_queries=spec.queries,
            attributes=spec.attributes,
        )
    return load_columns(
        Path(spec.base),
        Path(spec.queries_file),
        metric=spec.metric,
        column=spec.column,
        id_column=spec.id_column,
        attributes=spec.attributes,
    )


def probe_parquet(spec: Any) -> ParquetShape:
    if spec.layout == "vectordbbench":
        return probe_vectordbbench(Path(spec.path), max_queries=spec.queries)
    return probe_columns(
        Path(spec.base),
        Path(spec.queries_file),
        column=spec.column,
        id_column=spec.id_column,
        attributes=spec.attributes,
    )
