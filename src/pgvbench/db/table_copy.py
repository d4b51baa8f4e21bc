"""A user's table copied into pgvbench's schema: one REPEATABLE READ snapshot in which
the sample is chosen, the held-out queries are read, the rows are copied into pgvbench's
own schema and a checksum is taken.

pgvbench never writes to the user's table or schema: every statement on it is a SELECT.
The copy is ``INSERT ... SELECT`` in the snapshot's own transaction, or a binary COPY out
of the snapshot's session streamed into a second session's ``COPY FROM STDIN``
(bench/table_copy.py measures both). Rows get ids 0..n-1 in a seeded order: the hash of
the source id under the run's seed, so the same seed picks the same sample and queries.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..datasets.attributes import Attribute
from ..errors import DatasetError, RunFailed
from ..server.connection import connect
from . import schema as db_schema
from .table_catalog import SourceTable, split_name

# aliases inside the copy query: never a user's column name in practice
_H, _SRC, _VEC = "_pgvb_h", "_pgvb_src_id", "_pgvb_vec"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Snapshot:
    """What the one REPEATABLE READ snapshot saw and copied."""

    taken_at: str  # transaction_timestamp() of the snapshot, ISO
    rows_in_source: int  # rows with a vector
    null_vectors: int  # rows whose vector is NULL (never copied)
    dim: int
    rows_copied: int
    held_out: int
    query_vectors: np.ndarray | None  # held-out rows (float32), or queries_table rows
    query_values: dict[str, list[Any]]  # held-out rows' attribute values
    method: str  # "insert_select" | "copy"
    seconds: float  # the copy statement(s) alone
    checksum: str  # of the selected rows on the source, in the snapshot
    copy_checksum: str  # of pgvbench's copy, after commit


def _ranked(src: SourceTable, seed: int, offset: int, limit: int | None) -> sql.Composed:
    """The copied rows: (id 0..n-1 in the seeded order, vector, attributes...)."""
    attrs = [a.select() for a in src.attributes]
    inner = sql.SQL(
        "SELECT hashtextextended({id}::text, {seed}) AS {h}, {id} AS {srcid}, "
        "{col}::vector AS {vec}{attrs} FROM {tbl} WHERE {col} IS NOT NULL "
        "ORDER BY 1, 2 {limit} OFFSET {offset}"
    ).format(
        id=sql.Identifier(src.id_column),
        seed=sql.Literal(seed),
        h=sql.Identifier(_H),
        srcid=sql.Identifier(_SRC),
        col=sql.Identifier(src.column),
        vec=sql.Identifier(_VEC),
        attrs=sql.SQL("").join(sql.SQL(", ") + a for a in attrs),
        tbl=src.ident,
        limit=sql.SQL("LIMIT {}").format(sql.Literal(limit)) if limit is not None else sql.SQL(""),
        offset=sql.Literal(offset),
    )
    names = [sql.Identifier(a.name) for a in src.attributes]
    return sql.SQL(
        "SELECT (row_number() OVER (ORDER BY {h}, {srcid}) - 1)::bigint AS id, "
        "{vec} AS embedding{attrs} FROM ({inner}) AS s"
    ).format(
        h=sql.Identifier(_H),
        srcid=sql.Identifier(_SRC),
        vec=sql.Identifier(_VEC),
        attrs=sql.SQL("").join(sql.SQL(", ") + n for n in names),
        inner=inner,
    )


def _checksum_sql(rows: sql.Composable, src: SourceTable) -> sql.Composed:
    """Order-independent: the sum of a 64-bit hash of each row (id, the vector's binary
    form, the attributes' text). vector_send, not the vector's text: its float-to-decimal
    output made the checksum 3.7x slower (50k x 384: 0.88 s against 0.24 s)."""
    attrs = [sql.Identifier(a.name) for a in src.attributes]
    row = sql.SQL("concat(id, ':', encode(vector_send(embedding), 'base64'){attrs})").format(
        attrs=sql.SQL(", ':', ROW({})::text").format(sql.SQL(", ").join(attrs))
        if attrs
        else sql.SQL("")
    )
    return sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended({row}, 0)::numeric), 0) FROM ({rows}) AS r"
    ).format(row=row, rows=rows)


def _counts(conn: psycopg.Connection[Any], src: SourceTable) -> tuple[int, int, int]:
    """(rows with a vector, NULL vectors, dim) in the snapshot; exit 2 on bad ids or dims."""
    col, idc = sql.Identifier(src.column), sql.Identifier(src.id_column)
    distinct = sql.SQL("count(*)") if src.id_unique else sql.SQL("count(DISTINCT {})").format(idc)
    nulls = [
        sql.SQL("count({})").format(sql.Identifier(a.name))
        for a in src.attributes
        if a.kind in ("int", "bool")  # no NULL in these kinds' arrays
    ]
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), count({col}), count({idc}), {distinct}, {dims}{nulls} FROM {tbl}"
        ).format(
            col=col,
            # the typmod gives the dimension; else every vector is read once to check it
            dims=sql.SQL("0, 0")
            if src.dim is not None
            else sql.SQL("min(vector_dims({c})), max(vector_dims({c}))").format(c=col),
            idc=idc,
            distinct=distinct,
            nulls=sql.SQL("").join(sql.SQL(", ") + n for n in nulls),
            tbl=src.ident,
        )
    ).fetchone()
    assert row is not None
    total, vectors, ids, unique, low, high = (int(v or 0) for v in row[:6])
    if ids < total or unique < total:
        raise DatasetError(
            f"[dataset] id = {src.id_column!r}: {src.name}.{src.id_column} must be unique and "
            f"not NULL ({total:,} rows, {ids:,} ids, {unique:,} distinct); name a unique "
            f"column (the primary key)"
        )
    int_attrs = [a for a in src.attributes if a.kind in ("int", "bool")]
    for attr, count in zip(int_attrs, row[6:], strict=True):
        if int(count) < total:
            raise DatasetError(
                f"[dataset] attributes: {src.name}.{attr.name} has NULL in {total - count:,} "
                f"rows; a {attr.source_type} attribute needs a value on every row (leave it "
                f"out, or use a view that fills them)"
            )
    if vectors and low != high:
        raise DatasetError(
            f"[dataset] column = {src.column!r}: {src.name}.{src.column} has no declared "
            f"dimension and its vectors have {low} to {high} dimensions; every vector must "
            f"have the same"
        )
    if src.dim is not None:
        low = src.dim
    return vectors, total - vectors, low


def as_array(vectors: list[Any]) -> np.ndarray:
    """pgvector's binary loader's values (Vector objects) as one float32 array."""
    return np.stack([np.asarray(v.to_numpy(), dtype=np.float32) for v in vectors])


def _fetch_queries(
    conn: psycopg.Connection[Any], src: SourceTable, seed: int, held_out: int
) -> tuple[np.ndarray, dict[str, list[Any]]]:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    rows = conn.execute(_ranked(src, seed, 0, held_out), binary=True).fetchall()
    vectors = as_array([r[1] for r in rows])
    values = {a.name: [r[2 + i] for r in rows] for i, a in enumerate(src.attributes)}
    return vectors, values


def read_sample(
    conn: psycopg.Connection[Any], src: SourceTable, seed: int, rows: int
) -> np.ndarray:
    """The first ``rows`` vectors of the seeded order a run would copy, read in one READ
    ONLY REPEATABLE READ transaction: nothing is written anywhere (``pgvbench twin``)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        vectors, _ = _fetch_queries(conn, src, seed, rows)
    return vectors


def read_queries_table(
    conn: psycopg.Connection[Any], name: str, column: str, limit: int, seed: int
) -> np.ndarray:
    """The queries_table's vectors (in this transaction's snapshot), at most ``limit``,
    chosen by seed from the rows sorted by value (the physical order is not stable)."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    col = sql.Identifier(column)
    rows = conn.execute(
        sql.SQL("SELECT {}::vector FROM {} WHERE {} IS NOT NULL").format(
            col, sql.Identifier(*split_name(name)), col
        ),
        binary=True,
    ).fetchall()
    if not rows:
        raise DatasetError(f"[dataset] queries_table = {name!r}: it has no vectors")
    vectors = as_array([r[0] for r in rows])
    vectors = vectors[np.lexsort(vectors.T[::-1])]
    if len(vectors) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(vectors), limit, replace=False))
        vectors = vectors[keep]
    return vectors


def _create_copy_table(
    conn: psycopg.Connection[Any], schema: str, table: str, dim: int, src: SourceTable
) -> None:
    # placeholders: create_vector_table reads only each attribute's name and kind
    attrs = [Attribute(a.name, a.kind, np.empty(0)) for a in src.attributes]
    db_schema.create_vector_table(conn, schema, table, dim, attrs)


def _columns_list(src: SourceTable) -> sql.Composable:
    names = ["id", "embedding", *(a.name for a in src.attributes)]
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _copy_rows(
    reader: psycopg.Connection[Any],
    dsn: str,
    method: str,
    rows: sql.Composable,
    target: sql.Identifier,
    create: Any,
    columns: sql.Composable,
) -> float:
    """Copy ``rows`` (read in ``reader``'s snapshot) into ``target``; seconds of the copy."""
    if method == "insert_select":
        create(reader)
        start = time.perf_counter()
        reader.execute(sql.SQL("INSERT INTO {} ({}) {}").format(target, columns, rows))
        return time.perf_counter() - start
    with connect(dsn, autocommit=False) as writer:
        create(writer)
        start = time.perf_counter()
        with (
            reader.cursor().copy(
                sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(rows)
            ) as out,
            writer.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, columns)
            ) as into,
        ):
            for chunk in out:
                into.write(chunk)
        seconds = time.perf_counter() - start
        writer.commit()
    return seconds


def _copy_out(rows: sql.Composable) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(rows)


def copy_table(
    dsn: str,
    src: SourceTable,
    *,
    schema: str,
    table: str,
    seed: int,
    sample: int | None,
    held_out: int,
    method: str,
    queries_table: str = "",
    queries_limit: int = 0,
    check_size: Callable[[int, int], None] | None = None,
) -> Snapshot:
    """Choose, copy and checksum the rows in one REPEATABLE READ snapshot of ``src``.

    ``check_size(rows, dim)`` may refuse the copy (raise) once the snapshot's row count and
    dimension are known, before anything is written."""
    with connect(dsn, autocommit=False) as reader:
        # one snapshot for the counts, the sample, the queries, the copy and the checksum;
        # read only unless the copy is an INSERT in this same transaction
        read_only = " READ ONLY" if method == "copy" else ""
        reader.execute(f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ{read_only}")
        stamp = reader.execute("SELECT transaction_timestamp()::text").fetchone()
        rows_in, nulls, dim = _counts(reader, src)
        if sample is not None and sample + held_out > rows_in:
            raise DatasetError(
                f"[dataset] sample = {sample:,}: {src.name} has {rows_in:,} rows with a vector"
                + (f", and {held_out:,} are held out as queries" if held_out else "")
                + f"; lower sample to at most {max(0, rows_in - held_out):,} or leave it out"
            )
        if rows_in - held_out < 1:
            raise DatasetError(
                f"[dataset] queries = {held_out:,}: {src.name} has only {rows_in:,} rows with "
                f"a vector, none would be left to search; hold out fewer"
            )
        if check_size is not None:
            check_size(min(rows_in - held_out, sample or rows_in), dim)
        queries: np.ndarray | None = None
        values: dict[str, list[Any]] = {}
        if held_out:
            queries, values = _fetch_queries(reader, src, seed, held_out)
        elif queries_table:
            queries = read_queries_table(reader, queries_table, src.column, queries_limit, seed)
        rows = _ranked(src, seed, held_out, sample)
        seconds = _copy_rows(
            reader,
            dsn,
            method,
            rows,
            sql.Identifier(schema, table),
            lambda c: _create_copy_table(c, schema, table, dim, src),
            _columns_list(src),
        )
        n, checksum = _checksum(reader, _checksum_sql(rows, src))
        reader.commit()
    with connect(dsn) as conn:
        copied, copy_checksum = _checksum(
            conn,
            _checksum_sql(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table)), src),
        )
    if (copied, copy_checksum) != (n, checksum):
        raise RunFailed(
            f"the copy of {src.name} in {schema}.{table} does not match the source: "
            f"{copied:,} rows, checksum {copy_checksum} copied; {n:,} rows, checksum {checksum} "
            f"selected in the snapshot"
        )
    return Snapshot(
        taken_at=str(stamp[0]) if stamp else "",
        rows_in_source=rows_in,
        null_vectors=nulls,
        dim=dim,
        rows_copied=copied,
        held_out=held_out,
        query_vectors=queries,
        query_values=values,
        method=method,
        seconds=seconds,
        checksum=checksum,
        copy_checksum=copy_checksum,
    )


def _checksum(conn: psycopg.Connection[Any], query: sql.Composed) -> tuple[int, str]:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
