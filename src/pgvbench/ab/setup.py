"""The variants' tables and indexes on the server, built once and dropped at the end.

Variants with the same [[index]] build share one table and index (so A vs A measures the
very same index). Different builds get a copy of the table each: with two vector indexes
on one table the planner picks one for both arms, and nothing forces it per query.
Everything is created in the spec's (pgvbench-owned) schema with pgvbench's mark.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..datasets import Dataset
from ..db import indexes as ix
from ..db import schema as db_schema
from ..db.load import load_vectors
from ..errors import PgvbenchError
from ..progress import Reporter
from ..results import IndexBuild
from ..runner.base import build_progress
from ..server.connection import connect
from ..spec.model import IndexSpec
from .pair import Variant


@dataclasses.dataclass(frozen=True, kw_only=True)
class Built:
    """One table (+ index) on the server and the arms that query it."""

    table: str
    index: IndexSpec
    index_name: str | None
    build: IndexBuild | None
    arms: tuple[str, ...]
    load_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "index": self.index.label,
            "index_name": self.index_name,
            "arms": list(self.arms),
            "load_seconds": round(self.load_seconds, 3),
            "build_seconds": self.build.build_seconds if self.build else None,
            "index_bytes": self.build.index_bytes if self.build else None,
        }


def table_names(prefix: str, variants: Sequence[Variant]) -> dict[str, str]:
    """Index label -> table name, one per distinct build."""
    labels = list(dict.fromkeys(v.index.label for v in variants))
    return {label: f"{prefix}_ab{i}" for i, label in enumerate(labels, start=1)}


def check_tables(conn: psycopg.Connection[Any], schema: str, tables: Sequence[str]) -> None:
    """Before anything is written: the names are free or pgvbench's own."""
    for table in tables:
        db_schema.check_table_replaceable(conn, schema, table)


def build_all(
    dsn: str,
    conn: psycopg.Connection[Any],
    *,
    schema: str,
    prefix: str,
    variants: Sequence[Variant],
    dataset: Dataset,
    reporter: Reporter,
) -> list[Built]:
    """Load the dataset once, copy it for each further build, build each index once.

    On failure (or Ctrl-C) the tables made so far are dropped before the error goes on.
    """
    names = table_names(prefix, variants)
    built: list[Built] = []
    first: str | None = None
    try:
        for label, table in names.items():
            spec = next(v.index for v in variants if v.index.label == label)
            arms = tuple(v.arm for v in variants if v.index.label == label)
            db_schema.create_vector_table(conn, schema, table, dataset.dim)
            if first is None:
                with reporter.task(f"load {dataset.n:,} rows", total=dataset.n) as task:
                    seconds = load_vectors(
                        dsn, schema, table, dataset.base, on_progress=task.advance
                    )
                first = table
            else:
                with reporter.task(f"copy the table for {label}"):
                    seconds = _copy(conn, schema, first, table)
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
            name, build = None, None
            if spec.kind != "none":
                with reporter.task(f"build {label}", total=100) as task:
                    name, build = ix.build_index(
                        dsn,
                        conn,
                        schema=schema,
                        table=table,
                        spec=spec,
                        metric=dataset.metric,
                        on_progress=build_progress(task, label),
                    )
                db_schema.mark_owned(conn, "INDEX", schema, name)
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
            built.append(
                Built(
                    table=table,
                    index=spec,
                    index_name=name,
                    build=build,
                    arms=arms,
                    load_seconds=seconds,
                )
            )
    except BaseException:
        drop_all(dsn, schema, list(names.values()))
        raise
    return built


def _copy(conn: psycopg.Connection[Any], schema: str, source: str, target: str) -> float:
    started = time.perf_counter()
    conn.execute(
        sql.SQL("INSERT INTO {} (id, embedding) SELECT id, embedding FROM {}").format(
            sql.Identifier(schema, target), sql.Identifier(schema, source)
        )
    )
    return time.perf_counter() - started


def drop_all(dsn: str, schema: str, tables: Sequence[str]) -> None:
    """Drop the tables (their indexes go with them) on a fresh connection: the one in use
    may be broken (Ctrl-C, server gone). Cleanup never hides the error that ended the run."""
    try:
        with connect(dsn) as conn:
            for table in tables:
                db_schema.drop_owned_table(conn, schema, table)
    except (psycopg.Error, PgvbenchError):
        pass
