"""Datasets from files: ann-benchmarks HDF5, NumPy ``.npy`` and ``.fvecs``.

Each format has a header probe (shape, dim, dtype, metric; no vector data read), used by
``pgvbench validate`` and before a full read, so a missing, misnamed or truncated file
fails with one message that names it, before anything else happens.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pgvbench.datasets.base import Dataset, coerce_metric, rows_per_chunk
from pgvbench.datasets.file_attributes import (
    hdf5_attributes,
    hdf5_check,
    npy_attributes,
    npy_check,
)
from pgvbench.errors import DatasetError
from pgvbench.metrics import ANN_BENCHMARKS_DISTANCES, Metric

_VECTOR_SUFFIXES = (".npy", ".fvecs")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclasses.dataclass(frozen=True, kw_only=True)
class VectorsHeader:
    """What a vectors file's header says: rows x dim of ``dtype`` (no data read)."""

    path: Path
    rows: int
    dim: int
    dtype: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetHeader:
    """The shape of a file dataset, from headers only."""

    source: str  # e.g. "hdf5:/data/glove-100-angular.hdf5"
    rows: int
    dim: int
    queries: int  # query rows available (after an HDF5 max_queries cap)
    metric: Metric
    base: Path  # the file holding the base vectors (names it in messages)
    queries_path: Path


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise DatasetError(f"{path}: {what} file not found; check the path")
    if not path.is_file():
        raise DatasetError(f"{path}: {what} path is not a regular file")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"{path}: {what} file is not readable by this user; check its mode")


def _first_bytes(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _check_shape(node: Any, where: str, *, what: str) -> tuple[int, int]:
    """Rows and dim of a 2-D float matrix (a numpy array or an HDF5 dataset, read from its
    metadata); ``what`` names it in the message ("array", "dataset")."""
    if node.ndim != 2:
        raise DatasetError(f"{where}: expected a 2-D {what} (rows x dim), got shape {node.shape}")
    if node.dtype.kind != "f":
        raise DatasetError(
            f"{where}: expected float vectors, got dtype {node.dtype}; convert the data to float32"
        )
    if node.shape[0] == 0 or node.shape[1] == 0:
        raise DatasetError(f"{where}: array is empty (shape {node.shape})")
    return int(node.shape[0]), int(node.shape[1])


def _check_vectors(array: np.ndarray, where: str) -> np.ndarray:
    """Validate a 2-D float matrix and return it as float32 C-contiguous."""
    _check_shape(array, where, what="array")
    out = np.ascontiguousarray(array, dtype=np.float32)
    _check_finite(out, where)
    return out


def _check_finite(array: np.ndarray, where: str) -> None:
    """Reject NaN/inf (also float64 values too large for float32), row-chunked."""
    step = rows_per_chunk(array.shape[1], 1)
    for start in range(0, array.shape[0], step):
        ok = np.isfinite(array[start : start + step]).all(axis=1)
        if not ok.all():
            row = start + int(np.argmin(ok))
            raise DatasetError(
                f"{where}: row {row} contains NaN or infinite values (or values too large "
                "for float32); clean the data before benchmarking"
            )


def _check_nonzero(array: np.ndarray, where: str, metric: Metric) -> None:
    """Cosine distance divides by the norm: a zero row has no direction, pgvector returns
    NaN for it and recall becomes meaningless, so refuse it like a NaN row."""
    if metric != Metric.COSINE:
        return
    step = rows_per_chunk(array.shape[1], 1)
    first, count = -1, 0
    for start in range(0, array.shape[0], step):
        zero = ~array[start : start + step].any(axis=1)
        n = int(zero.sum())
        if n and first < 0:
            first = start + int(np.argmax(zero))
        count += n
    if count:
        raise DatasetError(
            f"{where}: row {first} is a zero vector ({count:,} zero rows in all); cosine "
            "distance is undefined for zero vectors (pgvector returns NaN), so remove those "
            'rows or use metric = "l2" or "ip"'
        )


def _check_dims(base: np.ndarray, queries: np.ndarray, base_where: str, query_where: str) -> None:
    _check_dim_match(base.shape[1], queries.shape[1], base_where, query_where)


def _check_dim_match(base_dim: int, query_dim: int, base_where: str, query_where: str) -> None:
    if base_dim != query_dim:
        raise DatasetError(
            f"{query_where}: queries have dim {query_dim} but {base_where} has dim "
            f"{base_dim}; both must come from the same embedding model"
        )


# --- ann-benchmarks HDF5 ---------------------------------------------------------------


def _h5_dataset(f: h5py.File, key: str, path: Path, *, required: bool) -> Any:
    if key not in f:
        if required:
            raise DatasetError(
                f"{path}: HDF5 dataset {key!r} is missing; an ann-benchmarks file needs "
                "'train' and 'test' (and optionally 'neighbors', 'distances')"
            )
        return None
    node = f[key]
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{path}: {key!r} is an HDF5 group, expected a dataset")
    return node


def _h5_metric(f: h5py.File, path: Path) -> Metric:
    raw = f.attrs.get("distance")
    allowed = ", ".join(sorted(ANN_BENCHMARKS_DISTANCES))
    if raw is None:
        raise DatasetError(f"{path}: attribute 'distance' is missing; set it to one of {allowed}")
    name = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        return ANN_BENCHMARKS_DISTANCES[name.strip().lower()]
    except KeyError:
        raise DatasetError(
            f"{path}: attribute 'distance' is {name!r}, which pgvbench does not support; "
            f"allowed values: {allowed}"
        ) from None


def _h5_shape(node: Any, path: Path, key: str) -> tuple[int, int]:
    """Rows and dim of a vectors dataset, from its metadata."""
    return _check_shape(node, f"{path}: {key!r}", what="dataset")


def _h5_vectors(node: Any, path: Path, key: str, rows: int | None) -> np.ndarray:
    where = f"{path}: {key!r}"
    _h5_shape(node, path, key)
    selection = slice(None) if rows is None else slice(0, rows)
    # Convert while reading, so a float64 file never exists twice in memory.
    return _check_vectors(node.astype(np.float32)[selection], where)


def _h5_neighbors(node: Any, path: Path, nq: int, n: int) -> np.ndarray | None:
    if node is None:
        return None
    where = f"{path}: 'neighbors'"
    if node.ndim != 2 or node.dtype.kind not in "iu":
        raise DatasetError(
            f"{where}: expected a 2-D integer dataset, got shape {node.shape} dtype {node.dtype}"
        )
    if node.shape[0] < nq:
        raise DatasetError(f"{where}: has {node.shape[0]} rows but 'test' has {nq} queries")
    ids = np.asarray(node[:nq], dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise DatasetError(
            f"{where}: ids must lie in [0, {n}) (the rows of 'train'); found "
            f"{int(ids.min())}..{int(ids.max())}"
        )
    return ids


def _h5_distances(node: Any, path: Path, nq: int) -> np.ndarray | None:
    if node is None:
        return None
    if node.ndim != 2 or node.dtype.kind != "f" or node.shape[0] < nq:
        raise DatasetError(
            f"{path}: 'distances': expected a 2-D float dataset with at least {nq} rows, "
            f"got shape {node.shape} dtype {node.dtype}"
        )
    return np.asarray(node[:nq], dtype=np.float32)


def _open_hdf5(path: Path) -> h5py.File:
    _require_file(path, "HDF5 dataset")
    head = _first_bytes(path, len(_HDF5_SIGNATURE))
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        what = (
            "not a readable HDF5 file"
            if head == _HDF5_SIGNATURE
            else "not a readable HDF5 file (it does not start with the HDF5 signature)"
        )
        raise DatasetError(f"{path}: {what} ({exc}); download it again or check the path") from None


def probe_hdf5(
    path: Path,
    *,
    max_queries: int | None = None,
    attributes: Mapping[str, str] | None = None,
    query_attributes: Mapping[str, str] | None = None,
) -> DatasetHeader:
    """Check an ann-benchmarks file's metadata (datasets, shapes, dtypes, distance), and
    that the attributes the spec names are per-row datasets of it."""
    path = Path(path)
    if max_queries is not None and max_queries < 1:
        raise DatasetError(f"{path}: max_queries must be >= 1, got {max_queries}")
    f = _open_hdf5(path)
    try:
        with f:
            metric = _h5_metric(f, path)
            rows, dim = _h5_shape(_h5_dataset(f, "train", path, required=True), path, "train")
            nq, qdim = _h5_shape(_h5_dataset(f, "test", path, required=True), path, "test")
            _check_dim_match(dim, qdim, "'train'", f"{path}: 'test'")
            nq = min(nq, max_queries) if max_queries else nq
            neighbors = _h5_dataset(f, "neighbors", path, required=False)
            if neighbors is not None and (
                neighbors.ndim != 2 or neighbors.dtype.kind not in "iu" or neighbors.shape[0] < nq
            ):
                raise DatasetError(
                    f"{path}: 'neighbors': expected a 2-D integer dataset with at least {nq} "
                    f"rows, got shape {neighbors.shape} dtype {neighbors.dtype}"
                )
            hdf5_check(
                path,
                f,
                rows=rows,
                queries=nq,
                attributes=attributes or {},
                query_attributes=query_attributes or {},
            )
    except OSError as exc:
        raise DatasetError(f"{path}: HDF5 file is corrupt or truncated ({exc})") from None
    return DatasetHeader(
        source=f"hdf5:{path}",
        rows=rows,
        dim=dim,
        queries=nq,
        metric=metric,
        base=path,
        queries_path=path,
    )


def load_hdf5(
    path: Path,
    *,
    max_queries: int | None = None,
    attributes: Mapping[str, str] | None = None,
    query_attributes: Mapping[str, str] | None = None,
) -> Dataset:
    """Read an ann-benchmarks HDF5 file (``train``, ``test``, optional ``neighbors``).

    ``max_queries`` keeps only the first queries (and their neighbour rows). Attributes:
    column -> dataset name (default: ``train_labels`` as ``label``, datasets/file_attributes.py).
    """
    path = Path(path)
    if max_queries is not None and max_queries < 1:
        raise DatasetError(f"{path}: max_queries must be >= 1, got {max_queries}")
    f = _open_hdf5(path)
    try:
        with f:
            return _read_ann_benchmarks(
                f, path, max_queries, attributes or {}, query_attributes or {}
            )
    except OSError as exc:  # h5py reports truncated/corrupt chunks as OSError
        raise DatasetError(f"{path}: HDF5 file is corrupt or truncated ({exc})") from None


def _read_ann_benchmarks(
    f: h5py.File,
    path: Path,
    max_queries: int | None,
    attributes: Mapping[str, str],
    query_attributes: Mapping[str, str],
) -> Dataset:
    metric = _h5_metric(f, path)
    train = _h5_vectors(_h5_dataset(f, "train", path, required=True), path, "train", None)
    test = _h5_vectors(_h5_dataset(f, "test", path, required=True), path, "test", max_queries)
    _check_dims(train, test, "'train'", f"{path}: 'test'")
    _check_nonzero(train, f"{path}: 'train'", metric)
    _check_nonzero(test, f"{path}: 'test'", metric)
    nq = test.shape[0]
    neighbors_node = _h5_dataset(f, "neighbors", path, required=False)
    distances_node = _h5_dataset(f, "distances", path, required=False)
    return Dataset(
        name=path.stem,
        source=f"hdf5:{path}",
        metric=metric,
        base=train,
        queries=test,
        neighbors=_h5_neighbors(neighbors_node, path, nq, train.shape[0]),
        distances=_h5_distances(distances_node, path, nq),
        attributes=hdf5_attributes(
            f,
            path,
            rows=train.shape[0],
            queries=nq,
            attributes=attributes,
            query_attributes=query_attributes,
        ),
    )


# --- .npy / .fvecs ---------------------------------------------------------------------

_NPY_MAGIC = np.lib.format.MAGIC_PREFIX  # b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"  # .npz archives


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _probe_npy(path: Path) -> VectorsHeader:
    """Shape and dtype from a .npy header; refuses what np.load would only half-explain."""
    head = _first_bytes(path, 64)
    if head.startswith(_ZIP_MAGIC):
        raise DatasetError(
            f"{path}: not a NumPy .npy file but an .npz archive (several arrays); save the "
            "vectors alone with numpy.save(path, array)"
        )
    if not head.startswith(_NPY_MAGIC):
        kind = "it looks like a text file" if head and _looks_like_text(head) else "no .npy header"
        raise DatasetError(
            f"{path}: not a NumPy .npy file ({kind}: a .npy file starts with the bytes "
            "\\x93NUMPY); write the vectors with numpy.save(path, array.astype('float32'))"
        )
    try:
        with open(path, "rb") as fh:
            major, _minor = np.lib.format.read_magic(fh)
            if major == 1:
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            data_offset = fh.tell()
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except (ValueError, EOFError, SyntaxError) as exc:
        raise DatasetError(
            f"{path}: not a readable .npy file: its header is damaged ({exc}); write it again "
            "with numpy.save"
        ) from None
    if dtype.hasobject:
        raise DatasetError(
            f"{path}: not a readable .npy file for pgvbench: it stores Python objects "
            f"(dtype {dtype}), which would need unpickling; save the vectors as a float32 array"
        )
    if len(shape) != 2:
        raise DatasetError(f"{path}: expected a 2-D array (rows x dim), got shape {shape}")
    if dtype.kind != "f":
        raise DatasetError(
            f"{path}: expected float vectors, got dtype {dtype}; convert the data to float32"
        )
    rows, dim = int(shape[0]), int(shape[1])
    if rows == 0 or dim == 0:
        raise DatasetError(f"{path}: array is empty (shape {shape})")
    need = rows * dim * dtype.itemsize
    if size - data_offset < need:
        raise DatasetError(
            f"{path}: .npy file is truncated: its header says {rows:,} x {dim} {dtype} "
            f"({need:,} bytes of data) but it holds {max(0, size - data_offset):,}; copy or "
            "download it again"
        )
    return VectorsHeader(path=path, rows=rows, dim=dim, dtype=str(dtype))


def _probe_fvecs(path: Path) -> VectorsHeader:
    """TEXMEX ``.fvecs`` rows are an int32 dim then dim float32s: the first int + size tell."""
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"{path}: .fvecs file is empty")
    head = _first_bytes(path, 4)
    dim = int.from_bytes(head, "little", signed=True) if len(head) == 4 else 0
    row_bytes = 4 * (dim + 1)
    if dim <= 0 or size % row_bytes != 0:
        raise DatasetError(
            f"{path}: not a valid .fvecs file (header says dim={dim}, but the file size "
            f"{size:,} bytes is not a whole number of rows); check the file is .fvecs and not "
            ".bvecs/.ivecs"
        )
    return VectorsHeader(path=path, rows=size // row_bytes, dim=dim, dtype="float32")


def probe_vectors(path: Path, what: str) -> VectorsHeader:
    """Rows, dim and dtype of a .npy / .fvecs file from its header (no vectors read)."""
    path = Path(path)
    _require_file(path, what)
    suffix = path.suffix.lower()
    if suffix not in _VECTOR_SUFFIXES:
        raise DatasetError(
            f"{path}: unsupported {what} file type {suffix or '(none)'}; use .npy or .fvecs"
        )
    try:
        return _probe_fvecs(path) if suffix == ".fvecs" else _probe_npy(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _read_fvecs(path: Path) -> np.ndarray:
    """Read TEXMEX ``.fvecs``: per row an int32 dim, then dim float32 values."""
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        raise DatasetError(f"{path}: .fvecs file is empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) != 0:
        raise DatasetError(
            f"{path}: not a valid .fvecs file (header says dim={dim}, but the file size "
            "is not a whole number of rows); check the file is .fvecs and not .bvecs/.ivecs"
        )
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise DatasetError(f"{path}: .fvecs rows have differing dims; all rows must be {dim}-d")
    return rows[:, 1:].view("<f4")


def _read_vectors(path: Path, what: str) -> np.ndarray:
    path = Path(path)
    probe_vectors(path, what)  # a text file named .npy says so, not numpy's pickle hint
    if path.suffix.lower() == ".fvecs":
        return _check_vectors(_read_fvecs(path), str(path))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise DatasetError(f"{path}: expected a single array in a .npy file, not an archive")
    return _check_vectors(array, str(path))


def probe_npy(
    base_path: Path,
    queries_path: Path,
    *,
    metric: Metric | str,
    attributes: Mapping[str, str] | None = None,
    query_attributes: Mapping[str, str] | None = None,
) -> DatasetHeader:
    """The shape of a .npy / .fvecs dataset from its two headers (and its attribute
    files' headers)."""
    base_path, queries_path = Path(base_path), Path(queries_path)
    metric = coerce_metric(metric, str(base_path))
    base = probe_vectors(base_path, "base vectors")
    queries = probe_vectors(queries_path, "query vectors")
    _check_dim_match(base.dim, queries.dim, str(base_path), str(queries_path))
    npy_check(attributes or {}, query_attributes or {}, rows=base.rows, queries=queries.rows)
    kind = base_path.suffix.lower().lstrip(".")
    return DatasetHeader(
        source=f"{kind}:{base_path}",
        rows=base.rows,
        dim=base.dim,
        queries=queries.rows,
        metric=metric,
        base=base_path,
        queries_path=queries_path,
    )


def load_npy(
    base_path: Path,
    queries_path: Path,
    *,
    metric: Metric,
    attributes: Mapping[str, str] | None = None,
    query_attributes: Mapping[str, str] | None = None,
) -> Dataset:
    """Read base and query vectors from ``.npy`` or ``.fvecs`` files; attributes: column ->
    a .npy file of one value per base row (query_attributes: per query)."""
    base_path, queries_path = Path(base_path), Path(queries_path)
    metric = coerce_metric(metric, str(base_path))
    base = _read_vectors(base_path, "base vectors")
    queries = _read_vectors(queries_path, "query vectors")
    _check_dims(base, queries, str(base_path), str(queries_path))
    _check_nonzero(base, str(base_path), metric)
    _check_nonzero(queries, str(queries_path), metric)
    kind = base_path.suffix.lower().lstrip(".")
    return Dataset(
        name=base_path.stem,
        source=f"{kind}:{base_path}",
        metric=metric,
        base=base,
        queries=queries,
        attributes=npy_attributes(
            attributes or {},
            query_attributes or {},
            rows=base.shape[0],
            queries=queries.shape[0],
        ),
    )
