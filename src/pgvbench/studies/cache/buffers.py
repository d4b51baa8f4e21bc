"""What sits in shared_buffers and the OS page cache, and moving it in and out:
residency (pg_buffercache), eviction, pg_prewarm, dropping the OS page cache."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from . import notes


def regclass(schema: str, name: str) -> str:
    """``schema.name`` quoted for a ``%s::regclass`` parameter."""
    return sql.Identifier(schema, name).as_string(None)


def residency(
    conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per relation: buffers of its main fork in shared_buffers, its pages, % resident."""
    out: dict[str, dict[str, Any]] = {}
    for name in relations:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_buffercache b "
            "        WHERE b.relfilenode = pg_relation_filenode(c.oid) AND b.relforknumber = 0"
            "          AND b.reldatabase = (SELECT oid FROM pg_database"
            "                               WHERE datname = current_database())),"
            "       pg_relation_size(c.oid) / current_setting('block_size')::bigint "
            "FROM pg_class c WHERE c.oid = %s::regclass",
            (regclass(schema, name),),
        ).fetchone()
        buffers, pages = (int(row[0]), int(row[1])) if row else (0, 0)
        percent = 100.0 * min(buffers, pages) / pages if pages else 0.0
        out[name] = {"buffers": buffers, "pages": pages, "percent": round(percent, 2)}
    return out


def _has_function(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_proc WHERE proname = %s", (name,)).fetchone()
    return row is not None


def evict(conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]) -> str:
    """Evict the relations' pages from shared_buffers; the note says how.

    PG 18's pg_buffercache_evict_relation is exact; before it, evict_all (PG 18 too)
    or one call per buffer of the relation (PG 17's pg_buffercache_evict).
    """
    names = [regclass(schema, r) for r in relations]
    if _has_function(conn, notes.EVICT_RELATION):
        evicted = 0
        for name in names:
            row = conn.execute(
                "SELECT buffers_evicted FROM pg_buffercache_evict_relation(%s::regclass)", (name,)
            ).fetchone()
            evicted += int(row[0]) if row and row[0] is not None else 0
        return notes.eviction(notes.EVICT_RELATION, evicted)
    if _has_function(conn, notes.EVICT_ALL):
        row = conn.execute("SELECT buffers_evicted FROM pg_buffercache_evict_all()").fetchone()
        return notes.eviction(notes.EVICT_ALL, int(row[0]) if row else 0)
    if _has_function(conn, notes.EVICT_PER_BUFFER):
        evicted = 0
        for name in names:
            rows = conn.execute(
                "SELECT pg_buffercache_evict(bufferid) FROM pg_buffercache "
                "WHERE relfilenode = pg_relation_filenode(%s::regclass) "
                "  AND reldatabase = (SELECT oid FROM pg_database "
                "                     WHERE datname = current_database())",
                (name,),
            ).fetchall()
            evicted += len(rows)
        return notes.eviction(notes.EVICT_PER_BUFFER, evicted)
    return notes.eviction(None, 0)


def drop_os_cache() -> tuple[bool, str]:
    """Write back and drop the OS page cache; (False, why) when not permitted. Never raises."""
    path = notes.DROP_CACHES
    try:
        if os.geteuid() != 0:
            return False, notes.OS_NOT_ROOT
        if not os.access(path, os.W_OK):
            return False, notes.OS_NOT_WRITABLE
        subprocess.run(["sync"], check=False, timeout=120)
        with open(path, "w") as fh:
            fh.write("3\n")
        return True, notes.OS_DROPPED
    except (OSError, subprocess.SubprocessError) as exc:
        return False, notes.os_drop_failed(exc)


def prewarm(conn: psycopg.Connection[Any], schema: str, relations: Sequence[str]) -> int:
    """pg_prewarm each relation into shared_buffers; return the blocks read."""
    total = 0
    for name in relations:
        row = conn.execute("SELECT pg_prewarm(%s::regclass)", (regclass(schema, name),))
        value = row.fetchone()
        total += int(value[0]) if value else 0
    return total


def sizes(conn: psycopg.Connection[Any], schema: str, index: str, table: str) -> dict[str, Any]:
    """shared_buffers in effect (SHOW text and MB), and the index and heap sizes in MB."""
    row = conn.execute(
        "SELECT current_setting('shared_buffers'), "
        "pg_size_bytes(current_setting('shared_buffers')), "
        "pg_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
        (regclass(schema, index), regclass(schema, table)),
    ).fetchone()
    assert row is not None
    mb = float(1 << 20)
    return {
        "shared_buffers": str(row[0]),
        "shared_buffers_mb": round(int(row[1]) / mb, 2),
        "index_mb": round(int(row[2]) / mb, 2),
        "heap_mb": round(int(row[3]) / mb, 2),
    }
