"""``source = "table"``: a user's existing table as the run's dataset.

The table is read, never written: db/table_copy.py copies the (sampled) rows into the
run's items table in one snapshot; here the copy is read back in id order (a server-side
cursor, in batches) into a :class:`Dataset`, so ground truth and recall run as for any
dataset, and what was copied is recorded as a :class:`TableSourceInfo`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..db import table_catalog, table_copy
from ..db.table_catalog import SourceColumn, SourceTable
from ..errors import DatasetError
from ..metrics import Metric
from ..results import LoadInfo
from ..server.connection import connect
from ..spec.model import ExperimentSpec
from .attributes import Attribute
from .base import Dataset
from .files import _read_vectors
from .table_record import TableSourceInfo as TableSourceInfo  # re-exported

#: copy_method = "auto": the faster of the two on the bench (bench/table_copy.py, figures
#: in its docstring): INSERT ... SELECT
AUTO_METHOD = "insert_select"
READ_BATCH = 5000  # rows per round trip of the read-back cursor


@dataclasses.dataclass(frozen=True)
class TableData:
    dataset: Dataset
    info: TableSourceInfo
    load: LoadInfo


def inspect(conn: psycopg.Connection[Any], spec: ExperimentSpec) -> SourceTable:
    """Catalog checks of the spec's table (and queries_table): exit 2 before any write."""
    ds = spec.dataset
    assert ds is not None and ds.source == "table"
    if ds.table == f"{spec.schema}.{spec.name}_items":
        raise DatasetError(
            f"[dataset] table = {ds.table!r} is the table this run loads into; copy it to a "
            "table of its own first, or give the run another [experiment] name"
        )
    src = table_catalog.inspect_table(
        conn,
        table=ds.table,
        column=ds.column,
        id_column=ds.id_column,
        attributes=list(ds.attributes),
        metric=ds.metric if ds.metric_given else None,
    )
    if ds.queries_table:
        table_catalog.inspect_queries_table(conn, ds.queries_table, ds.column, src.dim)
    if ds.queries_file is not None and src.dim is not None:
        _check_query_dim(_read_vectors(ds.queries_file, "queries_file"), src.dim, ds.queries_file)
    return src


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableProbe:
    """A table source as `pgvbench validate --dsn` sees it: catalog and one row."""

    source: SourceTable
    rows_estimate: int | None  # pg_class.reltuples; None before the table's first ANALYZE
    dim: int | None  # None: the table has no vector yet


def probe(dsn: str, spec: ExperimentSpec) -> TableProbe:
    """The catalog checks a run makes first, the planner's row estimate and the dimension
    (from the typmod, or the first vector): cheap, read only, nothing written."""
    with connect(dsn) as conn:
        src = inspect(conn, spec)
        row = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            (sql.Identifier(src.schema, src.table).as_string(conn),),
        ).fetchone()
        dim = src.dim
        if dim is None:
            first = conn.execute(
                sql.SQL("SELECT vector_dims({c}) FROM {t} WHERE {c} IS NOT NULL LIMIT 1").format(
                    c=sql.Identifier(src.column), t=src.ident
                )
            ).fetchone()
            dim = int(first[0]) if first else None
    estimate = int(row[0]) if row is not None and row[0] is not None and row[0] >= 0 else None
    return TableProbe(source=src, rows_estimate=estimate, dim=dim)


def read_table_sample(dsn: str, spec: ExperimentSpec, rows: int) -> tuple[np.ndarray, Metric]:
    """A seeded sample of the spec's table (``sample`` rows, else ``rows``) and its metric,
    after the same catalog checks as a run; read only (``pgvbench twin``)."""
    ds = spec.dataset
    assert ds is not None
    with connect(dsn) as conn:
        src = inspect(conn, spec)
        vectors = table_copy.read_sample(conn, src, spec.seed, ds.sample or rows)
    if vectors.shape[0] < 2:
        raise DatasetError(
            f"[dataset] table = {ds.table!r} has {vectors.shape[0]} vector(s); a twin needs a "
            "sample of at least a few thousand"
        )
    return vectors, src.metric


def _check_query_dim(queries: np.ndarray, dim: int, path: Path) -> None:
    if queries.shape[1] != dim:
        raise DatasetError(
            f"[dataset] queries_file = {str(path)!r}: its vectors have dimension "
            f"{queries.shape[1]}, the table's have {dim}; queries must come from the same model"
        )


def table_dataset(
    dsn: str,
    spec: ExperimentSpec,
    src: SourceTable,
    *,
    schema: str,
    table: str,
    check_size: Callable[[int, int], None] | None = None,
) -> TableData:
    """Copy the spec's table into ``schema.table`` and read it back as a Dataset;
    ``check_size(rows, dim)`` may refuse it once the snapshot's size is known."""
    ds = spec.dataset
    assert ds is not None
    method = ds.copy_method or AUTO_METHOD
    held_out = ds.queries if ds.queries_from == "sample" else 0
    snap = table_copy.copy_table(
        dsn,
        src,
        schema=schema,
        table=table,
        seed=spec.seed,
        sample=ds.sample,
        held_out=held_out,
        method=method,
        queries_table=ds.queries_table,
        queries_limit=ds.queries,
        check_size=check_size,
    )
    with connect(dsn) as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
        table_bytes = _relation_bytes(conn, schema, table)
    base, values = read_copy(dsn, schema, table, snap.rows_copied, snap.dim, src.attributes)
    if ds.queries_file is not None:
        queries = _read_vectors(ds.queries_file, "queries_file")[: ds.queries]
        _check_query_dim(queries, snap.dim, ds.queries_file)
        queries_from = f"queries_file {ds.queries_file}"
    else:
        assert snap.query_vectors is not None
        queries = snap.query_vectors
        queries_from = "held-out rows" if held_out else f"queries_table {ds.queries_table}"
    attributes = tuple(
        Attribute(
            a.name,
            a.kind,
            _values(a, values[a.name]),
            query_values=_values(a, snap.query_values[a.name]) if held_out else None,
            origin=f"{src.name}.{a.name} ({a.source_type})",
        )
        for a in src.attributes
    )
    dataset = Dataset(
        name=src.name,
        source="table",
        metric=src.metric,
        base=base,
        queries=queries,
        seed=spec.seed,
        attributes=attributes,
    )
    info = TableSourceInfo(
        table=src.name,
        column=src.column,
        id_column=src.id_column,
        vector_type=src.vector_type,
        dim=snap.dim,
        metric=str(src.metric),
        metric_from=src.metric_from,
        rows_in_source=snap.rows_in_source,
        null_vectors=snap.null_vectors,
        rows_copied=snap.rows_copied,
        sample=ds.sample,
        seed=spec.seed,
        queries_from=queries_from,
        held_out=held_out,
        snapshot_at=snap.taken_at,
        copy_method=method,
        copy_method_from="spec" if ds.copy_method else "auto",
        copy_seconds=round(snap.seconds, 4),
        checksum=snap.checksum,
        attributes=tuple(
            {"name": a.name, "source_type": a.source_type, "kind": a.kind} for a in src.attributes
        ),
        notes=src.notes,
    )
    load = LoadInfo(
        table=f"{schema}.{table}",
        rows=snap.rows_copied,
        seconds=round(snap.seconds, 4),
        rows_per_second=round(snap.rows_copied / snap.seconds, 1) if snap.seconds > 0 else 0.0,
        table_bytes=table_bytes,
    )
    return TableData(dataset=dataset, info=info, load=load)


def _relation_bytes(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    from ..db.schema import relation_bytes

    return relation_bytes(conn, schema, table)


def read_copy(
    dsn: str, schema: str, table: str, n: int, dim: int, attributes: Sequence[SourceColumn]
) -> tuple[np.ndarray, dict[str, list[Any]]]:
    """pgvbench's copy in id order: (n x dim float32 vectors, attribute values by name)."""
    from pgvector.psycopg import register_vector

    base = np.empty((n, dim), dtype=np.float32)
    values: dict[str, list[Any]] = {a.name: [] for a in attributes}
    cols = [sql.Identifier(n) for n in ("id", "embedding", *(a.name for a in attributes))]
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(", ").join(cols), sql.Identifier(schema, table)
    )
    with connect(dsn, autocommit=False) as conn:
        register_vector(conn)
        with conn.cursor("pgvbench_table_read", binary=True) as cur:
            cur.itersize = READ_BATCH
            cur.execute(query)
            at = 0
            while batch := cur.fetchmany(READ_BATCH):
                ids = [r[0] for r in batch]
                if ids[0] != at or ids[-1] != at + len(batch) - 1:
                    raise AssertionError(f"{schema}.{table}: ids are not 0..n-1 at row {at}")
                base[at : at + len(batch)] = table_copy.as_array([r[1] for r in batch])
                for i, a in enumerate(attributes):
                    values[a.name].extend(r[2 + i] for r in batch)
                at += len(batch)
        conn.commit()
    if at != n:
        raise AssertionError(f"{schema}.{table}: read {at} rows, copied {n}")
    return base, values


def _values(attr: SourceColumn, raw: list[Any]) -> np.ndarray:
    """Values as psycopg returns them -> the attribute kind's storage (see Attribute)."""
    kind = attr.kind
    if kind in ("int", "bool"):
        return np.asarray(raw, dtype=np.int64 if kind == "int" else np.bool_)
    if kind == "float":
        return np.asarray([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
    if kind == "timestamp":
        return np.asarray([_micros(v) for v in raw], dtype="datetime64[us]")
    out = np.empty(len(raw), dtype=object)
    for i, v in enumerate(raw):
        if v is None or kind == "text":
            out[i] = v
        elif kind == "jsonb":
            out[i] = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        else:  # text[] / int[]
            out[i] = tuple(v)
    return out


def _micros(value: Any) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "us")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(value, "us")
    return np.datetime64(value, "us")
