"""The dataset a spec will run on (from the spec, or the files' headers) and whether it
fits in this machine's memory."""

from __future__ import annotations

import dataclasses

import psutil

from ..datasets.files import DatasetHeader, probe_hdf5, probe_npy
from ..datasets.parquet import probe_parquet
from ..errors import DatasetError, SpecError
from ..spec.limits import check_dataset_shape
from ..spec.model import DatasetSpec, ExperimentSpec
from .models import MEMORY_FACTOR


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetShape:
    """The dataset as the run will see it: from the spec, or from the files' headers."""

    description: str  # e.g. "synthetic clustered 50,000 x 128 (l2)"
    rows: int
    dim: int
    queries: int


def dataset_shape(spec: ExperimentSpec, *, dsn: str | None = None) -> DatasetShape | None:
    """The dataset's shape; file datasets are opened (headers only) and checked; a table
    source's table is checked on ``dsn`` when one is given."""
    ds = spec.dataset
    if ds is None:
        data = spec.agents.data if spec.agents is not None else None
        if data is None:
            return None
        return DatasetShape(
            description=(
                f"agent platform: {data.memories:,} memories, {data.chunks:,} chunks, "
                f"{data.tasks:,} tasks, dim {data.dim} ({data.metric})"
            ),
            rows=data.memories + data.chunks,
            dim=data.dim,
            queries=0,
        )
    where = str(spec.source_path) if spec.source_path else "<spec>"
    if ds.source == "synthetic":
        problem = memory_problem(
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
            shape_from=f"[dataset] n = {ds.n:,}, dim = {ds.dim:,}, queries = {ds.queries:,}",
        )
        if problem:
            raise SpecError(f"{where}: {problem}; lower n or dim, or run on a larger machine")
        return DatasetShape(
            description=f"synthetic {ds.distribution} {ds.n:,} x {ds.dim} ({ds.metric})",
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
        )
    if ds.source == "table":
        return _table_shape(ds) if dsn is None else _table_shape_on(spec, ds, dsn)
    if ds.source == "hdf5":
        assert ds.path is not None
        header = probe_hdf5(
            ds.path,
            max_queries=ds.queries or None,
            attributes=ds.attributes,
            query_attributes=ds.query_attributes,
        )
    elif ds.source == "parquet":
        parquet = probe_parquet(ds)
        header = DatasetHeader(
            source=f"parquet:{ds.path or ds.base}",
            rows=parquet.rows,
            dim=parquet.dim,
            queries=parquet.queries,
            metric=ds.metric,
            base=parquet.base,
            queries_path=parquet.queries_path,
        )
    else:
        assert ds.base is not None and ds.queries_file is not None
        header = probe_npy(
            ds.base,
            ds.queries_file,
            metric=ds.metric,
            attributes=ds.attributes,
            query_attributes=ds.query_attributes,
        )
    check_dataset_shape(
        spec,
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
        base=header.base,
        queries_path=header.queries_path,
    )
    problem = memory_problem(
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
        shape_from=f"{header.base} holds {header.rows:,} x {header.dim:,} vectors and "
        f"{header.queries:,} queries",
    )
    if problem:
        raise DatasetError(f"{where}: {problem}; use a subset of the data or a larger machine")
    return DatasetShape(
        description=f"{header.source} {header.rows:,} x {header.dim} ({header.metric})",
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
    )


def _table_shape(ds: DatasetSpec) -> DatasetShape:
    """A table's rows and dimension are read from the server at run time: validate needs
    none, so it counts the sample (0 rows without one) and says so."""
    rows = f"{ds.sample:,} sampled rows" if ds.sample else "all rows"
    queries = (
        "held-out rows"
        if ds.queries_from == "sample"
        else f"queries from {ds.queries_table or ds.queries_file}"
    )
    unknown = (
        "row count, dimension and metric" if not ds.metric_given else "row count and dimension"
    )
    return DatasetShape(
        description=f"table {ds.table} ({ds.column}): {rows}, {queries}; its {unknown} are "
        "read from the server at run time (the estimate leaves out the copy and the builds)",
        rows=ds.sample or 0,
        dim=0,
        queries=ds.queries if ds.queries_from == "sample" else 0,
    )


def _table_shape_on(spec: ExperimentSpec, ds: DatasetSpec, dsn: str) -> DatasetShape:
    """The table checked on the server (catalog, planner estimate, one row)."""
    from ..datasets.table_source import probe

    found = probe(dsn, spec)
    src = found.source
    held_out = ds.queries if ds.queries_from == "sample" else 0
    if found.rows_estimate is None:
        rows, count = ds.sample or 0, "row count unknown (never analyzed)"
    else:
        rows = max(0, found.rows_estimate - held_out)
        rows = min(rows, ds.sample) if ds.sample else rows
        count = f"about {found.rows_estimate:,} rows (planner estimate)"
    dim = found.dim or 0
    check_table_memory(src.name, rows, dim, ds.queries)
    copied = f"{ds.sample:,} sampled" if ds.sample else "all copied"
    notes = "".join(f"; note: {n}" for n in src.notes)
    return DatasetShape(
        description=f"table {src.name} ({src.column} {src.vector_type}({dim or '?'})): "
        f"{count}, {copied}; metric {src.metric} from {src.metric_from}{notes}",
        rows=rows,
        dim=dim,
        queries=ds.queries if ds.queries_from == "sample" else 0,
    )


def check_table_memory(table: str, rows: int, dim: int, queries: int) -> None:
    """A table source's copy is read back into memory: refuse one that cannot fit."""
    problem = memory_problem(
        rows=rows, dim=dim, queries=queries, shape_from=f"{table}: {rows:,} x {dim} to copy"
    )
    if problem:
        raise DatasetError(f"[dataset] table = {table!r}: {problem}; set sample = <rows>")


def memory_estimate(*, rows: int, dim: int, queries: int) -> int:
    """Bytes a run needs for its dataset: float32 base + queries, x MEMORY_FACTOR."""
    return (rows + queries) * dim * 4 * MEMORY_FACTOR


def memory_problem(*, rows: int, dim: int, queries: int, shape_from: str) -> str | None:
    """Why this dataset cannot fit in this machine's RAM, or None."""
    need = memory_estimate(rows=rows, dim=dim, queries=queries)
    total = int(psutil.virtual_memory().total)
    if need <= total:
        return None
    return (
        f"the dataset cannot fit in memory ({shape_from}): a run needs about "
        f"{_bytes(need)} (float32 base vectors and queries, x{MEMORY_FACTOR} for ground truth "
        f"and copies) but this machine has {_bytes(total)} of RAM"
    )


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
