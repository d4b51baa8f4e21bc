"""Bulk loading with binary COPY, the payload built by numpy.

psycopg's per-row ``write_row`` costs several microseconds a row in Python; here the
whole COPY BINARY stream is one numpy structured array (fixed-size records: field
count, id, vector header and big-endian floats), so the client only ships bytes and
the server's parse is the same as for a server-side ``COPY FROM 'file'``.

A single COPY FROM STDIN still trails a server-side COPY FROM file (the backend reads
the socket in small pieces), so large loads are split over parallel streams, one
connection each, with ~1 MB messages: on 2 cores this matches the server-side rate
(bench/test_load_speed.py).

Attribute columns (labels, dates, tags) ride in the same COPY: their fixed-width kinds
extend the numpy record, the others are appended per row (``db/copy_binary.py``), so a
load with attributes is still one pass and one write of each row.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..datasets.attributes import Attribute
from ..server.connection import connect
from .copy_binary import RowLayout, encode_rows, row_layout

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
CHUNK_BYTES = 1 << 20  # ~1 MB CopyData messages; bounded memory whatever the size
PARALLEL_MIN_ROWS = 20_000  # below this, a second connection costs more than it saves


def _record_dtype(dim: int) -> np.dtype[Any]:
    return np.dtype(
        [
            ("nfields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (dim,)),
        ]
    )


def encode_copy_rows(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    """COPY BINARY tuples (no header/trailer) for (bigint id, vector) rows."""
    n, dim = vectors.shape
    records = np.empty(n, dtype=_record_dtype(dim))
    records["nfields"] = 2
    records["id_len"] = 8
    records["id"] = ids
    records["vec_len"] = 4 + 4 * dim
    records["dim"] = dim
    records["unused"] = 0
    records["values"] = vectors
    return records.tobytes()


def encode_copy_file(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    """A complete COPY BINARY payload (header + rows + trailer)."""
    return COPY_HEADER + encode_copy_rows(ids, vectors) + COPY_TRAILER


def copy_vectors(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    vectors: np.ndarray,
    *,
    first_id: int = 0,
    on_progress: Callable[[int], None] | None = None,
    layout: RowLayout | None = None,
) -> float:
    """Load ``vectors`` with ids first_id.. into schema.table; return seconds taken.

    ``layout`` adds attribute columns: its arrays cover the whole dataset, indexed by id.
    """
    n, dim = vectors.shape
    layout = layout or RowLayout(fixed=(), variable=())
    row_bytes = layout.record_dtype(dim).itemsize + 16 * len(layout.variable)
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, layout.columns))
    )
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(COPY_HEADER)
        for lo in range(0, n, rows_per_chunk):
            hi = min(n, lo + rows_per_chunk)
            ids = np.arange(first_id + lo, first_id + hi, dtype=np.int64)
            copy.write(encode_rows(layout, ids, vectors[lo:hi], first_id + lo))
            if on_progress is not None:
                on_progress(hi - lo)
        copy.write(COPY_TRAILER)
    return time.perf_counter() - start


def load_vectors(
    dsn: str,
    schema: str,
    table: str,
    vectors: np.ndarray,
    *,
    streams: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    attributes: Sequence[Attribute] = (),
) -> float:
    """Load ``vectors`` (ids 0..n-1) over ``streams`` parallel COPYs; return seconds.

    ``attributes`` (one value per row each) fill the columns of the same names, made by
    ``create_vector_table(..., attributes)``.

    Each stream is its own connection and transaction; if one fails, the error is
    raised after all streams stop (the table is pgvbench's and is rebuilt next run).
    """
    n = vectors.shape[0]
    if streams is None:
        streams = min(2, os.cpu_count() or 1) if n >= PARALLEL_MIN_ROWS else 1
    bounds = np.linspace(0, n, streams + 1).astype(np.int64)
    layout = row_layout(attributes)
    conns = [connect(dsn) for _ in range(streams)]
    errors: list[BaseException] = []

    def work(conn: psycopg.Connection[Any], lo: int, hi: int) -> None:
        try:
            copy_vectors(
                conn,
                schema,
                table,
                vectors[lo:hi],
                first_id=lo,
                on_progress=on_progress,
                layout=layout,
            )
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    try:
        start = time.perf_counter()
        threads = [
            threading.Thread(target=work, args=(c, int(lo), int(hi)), name=f"copy-{i}")
            for i, (c, lo, hi) in enumerate(zip(conns, bounds[:-1], bounds[1:], strict=True))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    finally:
        for c in conns:
            c.close()
    if errors:
        raise errors[0]
    return elapsed
