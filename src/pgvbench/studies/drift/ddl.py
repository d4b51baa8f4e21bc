"""The DDL the update-cost phases need: a copy of the memories with room on each page
(fillfactor) and the same indexes, and the HNSW index put back after it was dropped."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...db.schema import check_table_replaceable, drop_owned_table, mark_owned
from . import notes as say
from .catalog import HnswIndex, relation_exists

PAGE_BYTES = 8192
_INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$")


def auto_fillfactor(avg_row_bytes: float) -> int:
    """Largest fillfactor (multiple of 5, 50..90) leaving room for one new row version."""
    free_needed = 1.15 * (avg_row_bytes + 4)  # the tuple plus its line pointer, some slack
    ff = math.floor((1.0 - free_needed / PAGE_BYTES) * 20) * 5
    return int(min(90, max(50, ff)))


def copy_with_fillfactor(
    conn: psycopg.Connection[Any],
    schema: str,
    source: str,
    copy: str,
    fillfactor: int,
    index_defs: Sequence[str],
) -> list[str]:
    """A copy of ``source`` with ``fillfactor`` and the same indexes; returns notes."""
    notes: list[str] = []
    src, dst = sql.Identifier(schema, source), sql.Identifier(schema, copy)
    check_table_replaceable(conn, schema, copy)
    drop_owned_table(conn, schema, copy)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)"
            " WITH (fillfactor = {})"
        ).format(dst, src, sql.Literal(fillfactor))
    )
    mark_owned(conn, "TABLE", schema, copy)
    conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(dst, src))
    for definition in index_defs:  # after the load: bulk builds, as the original had
        match = _INDEXDEF.match(definition)
        if match is None:
            notes.append(say.index_not_copied(definition))
            continue
        unique = match.group(1) or ""
        conn.execute(
            sql.SQL("CREATE {}INDEX ON {} {}").format(
                sql.SQL(unique),
                dst,
                sql.SQL(match.group(2)),
            )
        )
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(dst))
    return notes


def restore_index(
    conn: psycopg.Connection[Any], schema: str, index: HnswIndex
) -> tuple[bool, float | None]:
    """Recreate a dropped index from its own definition: (it exists now, seconds)."""
    started = time.perf_counter()
    conn.execute(index.definition)
    return relation_exists(conn, schema, index.name), round(time.perf_counter() - started, 3)
