"""The tuner's tables and indexes on the server: created on demand, dropped at the end.

A configuration is built on the table that holds its rows in its storage: the loaded
items table itself (``vector`` and ``halfvec_index`` at full size), or a copy made once
and reused: the first ``rows`` rows (a subsample), the column as ``halfvec(d)``
(``halfvec_column``: the table shrinks too, and its size counts), or a numbered extra copy
when two indexes must coexist (the confirmation's winner and runner-up: with two vector
indexes on one table the planner picks one for both).

Safety, as ab/setup.py: everything lives in the spec's (pgvbench-owned) schema, carries
pgvbench's mark and the tuner's name prefix, and only marked objects are dropped. A
copy is created, marked and filled in one transaction, and an index is built and marked
in one, so an interrupted step (Ctrl-C cancels a running build on the server) leaves
nothing behind. Figures and reason codes only, no prose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from ...db import schema as db_schema
from ...db.gucs import set_settings
from ...db.indexes import BuildProgress, run_polled
from ...errors import PgvbenchError, RunFailed
from ...metrics import Metric
from ...results import BuildPhase
from ...server.connection import connect
from .records import Config
from .spec import STORAGES
from .sql import COLUMN_TYPE, ident, index_sql

MAX_NAME = 63  # PostgreSQL truncates longer identifiers: two names could then collide
QUERY_CANCELED = "57014"  # statement_timeout (the build budget) or a cancel


@dataclasses.dataclass(frozen=True, kw_only=True)
class Built:
    """What one CREATE INDEX gave: its time and sizes, or why there is no index."""

    name: str
    table: str
    seconds: float | None  # None: the build failed; with reason build_over: the budget spent
    index_bytes: int
    table_bytes: int  # heap + TOAST (pg_table_size) of the table indexed
    reason: str | None = None  # build_failed | build_over (stopped at max_build_seconds)
    error: str | None = None  # the server's message when the build failed
    phases: tuple[BuildPhase, ...] = ()  # pg_stat_progress_create_index's timeline
    notices: tuple[str, ...] = ()  # the build's NOTICEs ("hnsw graph no longer fits ...")

    @property
    def exists(self) -> bool:
        return self.reason is None


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeptIndex:
    """An index left in place after its evaluation (``keep=True``); TuneTables.close, or
    TuneTables.drop_index(kept.name), drops it."""

    schema: str
    table: str
    name: str
    config: Config


def index_name(prefix: str, config: Config, table: str) -> str:
    """A deterministic name: the prefix, the kind and a hash of (configuration, table)."""
    digest = hashlib.sha1(f"{config.key}@{table}".encode()).hexdigest()[:10]
    return f"{prefix}_{config.kind}_{digest}"


class TuneTables:
    """Owns every table and index the tuner creates; a context manager (close on exit)."""

    def __init__(self, dsn: str, schema: str, source_table: str, prefix: str, dim: int) -> None:
        if len(f"{prefix}_{'ivfflat'}_{'0' * 10}") > MAX_NAME:
            raise ValueError(f"name prefix {prefix!r} is too long for PostgreSQL's 63 bytes")
        self.dsn = dsn
        self.schema = schema
        self.source_table = source_table
        self.prefix = prefix
        self.dim = dim
        self._conn: psycopg.Connection[Any] | None = None
        self._tables: dict[tuple[str, int, int], str] = {}  # (column type, rows, copy) -> name
        self._created: list[str] = []  # copies, in creation order
        self._indexes: dict[str, str] = {}  # index name -> its table, while it exists
        self._kept: dict[str, KeptIndex] = {}
        self._source_rows: int | None = None
        self._source_vacuumed = False
        self._vector_oid: int | None = None
        self.leftovers: list[str] = []  # what close() could not drop (server gone)

    # ------------------------------------------------------------------ context

    def __enter__(self) -> TuneTables:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def conn(self) -> psycopg.Connection[Any]:
        """The DDL connection (reopened after a cancel or a lost connection)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn)
        return self._conn

    # ------------------------------------------------------------------ facts

    @property
    def source_rows(self) -> int:
        if self._source_rows is None:
            row = (
                self.conn()
                .execute(
                    sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(self.schema, self.source_table)
                    )
                )
                .fetchone()
            )
            self._source_rows = int(row[0]) if row else 0
        return self._source_rows

    @property
    def vector_oid(self) -> int:
        """The vector type's OID in this database (pgvector's OIDs differ per database)."""
        if self._vector_oid is None:
            row = self.conn().execute("SELECT 'vector'::regtype::oid").fetchone()
            if row is None:
                raise RunFailed("the vector type is missing: CREATE EXTENSION vector first")
            self._vector_oid = int(row[0])
        return self._vector_oid

    def table_bytes(self, table: str) -> int:
        """Heap + TOAST (+ free space and visibility maps) of ``table``, indexes excluded."""
        row = (
            self.conn()
            .execute(
                "SELECT pg_table_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
                (self.schema, table),
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    @property
    def kept(self) -> tuple[KeptIndex, ...]:
        return tuple(self._kept.values())

    # ------------------------------------------------------------------ tables

    def table_for(self, storage: str, rows: int, *, copy: int = 0) -> str:
        """The table holding the first ``rows`` rows in ``storage`` (created once)."""
        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}; expected one of {STORAGES}")
        if rows < 1 or copy < 0:
            raise ValueError(f"rows must be >= 1 and copy >= 0, got {rows} and {copy}")
        rows = min(rows, self.source_rows)
        full = rows >= self.source_rows
        column = COLUMN_TYPE[storage]
        if column == "vector" and full and copy == 0:
            if not self._source_vacuumed:
                # COPY extends a table by several pages at a time and leaves the tail empty
                # until a VACUUM: without it the loaded table measures up to a third larger
                # than the same rows copied (small tables), biasing table_bytes by storage
                self.conn().execute(
                    sql.SQL("VACUUM (ANALYZE) {}").format(
                        sql.Identifier(self.schema, self.source_table)
                    )
                )
                self._source_vacuumed = True
            return self.source_table
        key = (column, rows if not full else 0, copy)
        if key not in self._tables:
            tag = "half" if column == "halfvec" else "vec"
            name = f"{self.prefix}_{tag}_{'all' if full else rows}" + (f"_c{copy}" if copy else "")
            if len(name) > MAX_NAME:
                raise ValueError(f"table name {name!r} is longer than PostgreSQL's 63 bytes")
            self._create_copy(name, column, None if full else rows)
            self._tables[key] = name
        return self._tables[key]

    def _create_copy(self, name: str, column: str, rows: int | None) -> None:
        conn = self.conn()
        schema, dim = self.schema, self.dim
        target, source = sql.Identifier(schema, name), sql.Identifier(schema, self.source_table)
        db_schema.drop_owned_table(conn, schema, name)  # an interrupted session's; refuses others'
        columns = [
            str(r[0])
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = format('%%I.%%I', %s::text, "
                "%s::text)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (schema, self.source_table),
            ).fetchall()
        ]
        picked = [
            sql.SQL("{}::halfvec({})").format(sql.Identifier(c), sql.Literal(dim))
            if c == "embedding" and column == "halfvec"
            else sql.Identifier(c)
            for c in columns
        ]
        where = (
            sql.SQL(" WHERE id < {}").format(sql.Literal(rows)) if rows is not None else sql.SQL("")
        )
        self._created.append(name)  # before CREATE: close() drops it whatever happens next
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING STORAGE)").format(target, source)
            )
            if column == "halfvec":
                alter = "ALTER TABLE {} ALTER COLUMN embedding TYPE halfvec({})"
                conn.execute(sql.SQL(alter).format(target, sql.Literal(dim)))
                if dim <= 2 * db_schema.MAX_PLAIN_DIM:  # 2 bytes a dimension: fits a page inline
                    plain = "ALTER TABLE {} ALTER COLUMN embedding SET STORAGE PLAIN"
                    conn.execute(sql.SQL(plain).format(target))
            db_schema.mark_owned(conn, "TABLE", schema, name)
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT {} FROM {}{}").format(
                    target, sql.SQL(", ").join(picked), source, where
                )
            )
        # hint bits and the visibility map set now, not by the first timed queries
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(target))

    # ------------------------------------------------------------------ indexes

    def build(
        self,
        config: Config,
        table: str,
        *,
        metric: Metric,
        max_seconds: float | None = None,
        on_progress: Callable[[BuildProgress], None] | None = None,
    ) -> Built:
        """CREATE INDEX for ``config`` on ``table`` with its build settings SET LOCAL; a
        failure is a Built with reason build_failed, never an exception (Ctrl-C and a
        lost server still raise). ``max_seconds``: stop the build there (build_over)."""
        conn = self.conn()
        name = index_name(self.prefix, config, table)
        db_schema.drop_owned_index(conn, self.schema, name)  # an interrupted session's
        stmt = index_sql(
            config,
            relation=ident(self.schema, table),
            dim=self.dim,
            metric=metric,
            name=ident(name),
        )
        timeout_ms = math.ceil(max_seconds * 1000) if max_seconds else 0

        def work() -> None:
            with conn.transaction():
                set_settings(conn, {**config.build_settings, "statement_timeout": timeout_ms},
                             local=True)  # fmt: skip
                conn.execute(stmt.encode())
                db_schema.mark_owned(conn, "INDEX", self.schema, name)

        notices: list[str] = []

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            notices.append(f"{diag.severity}: {diag.message_primary}")

        self._indexes[name] = table  # before the build: close() drops it if Ctrl-C lands late
        started = time.perf_counter()
        conn.add_notice_handler(on_notice)
        try:
            seconds, phases = run_polled(self.dsn, conn, work, name=name, on_progress=on_progress)
        except psycopg.Error as exc:
            self._indexes.pop(name, None)
            if conn.broken:
                raise RunFailed(f"the server went away during a build: {exc}") from exc
            elapsed = time.perf_counter() - started
            over = exc.sqlstate == QUERY_CANCELED and timeout_ms > 0
            over = over and elapsed * 1000 >= timeout_ms
            return Built(
                name=name,
                table=table,
                seconds=round(elapsed, 4) if over else None,
                index_bytes=0,
                table_bytes=self.table_bytes(table),
                reason="build_over" if over else "build_failed",
                error=None if over else (exc.diag.message_primary or str(exc)).strip(),
                notices=tuple(notices),
            )
        finally:
            conn.remove_notice_handler(on_notice)
        return Built(
            name=name,
            table=table,
            seconds=round(seconds, 4),
            index_bytes=db_schema.relation_bytes(conn, self.schema, name),
            table_bytes=self.table_bytes(table),
            phases=tuple(phases),
            notices=tuple(notices),
        )

    def keep(self, kept: KeptIndex) -> None:
        """Leave an index in place past its evaluation (close() still drops it)."""
        self._kept[kept.name] = kept

    def drop_index(self, name: str) -> None:
        """Drop an index this object built (a no-op when it is gone)."""
        db_schema.drop_owned_index(self.conn(), self.schema, name)
        self._indexes.pop(name, None)
        self._kept.pop(name, None)

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Drop every index and table this object created (never the source table), on a
        fresh connection: the one in use may be broken (Ctrl-C, server gone). Cleanup
        never hides the error that ended the session; what it could not drop is listed in
        ``leftovers``."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.leftovers = []
        if not self._indexes and not self._created:
            return
        try:
            with connect(self.dsn) as conn:
                for name in list(self._indexes):
                    self._quietly(db_schema.drop_owned_index, conn, name)
                for name in reversed(self._created):
                    self._quietly(db_schema.drop_owned_table, conn, name)
        except (psycopg.Error, PgvbenchError):
            self.leftovers = [*self._indexes, *self._created]
            return
        self._indexes.clear()
        self._kept.clear()
        self._created = [t for t in self._created if t in self.leftovers]
        self._tables = {k: v for k, v in self._tables.items() if v in self._created}

    def _quietly(
        self, drop: Callable[[psycopg.Connection[Any], str, str], None], conn: Any, name: str
    ) -> None:
        try:
            drop(conn, self.schema, name)
        except (psycopg.Error, PgvbenchError):
            self.leftovers.append(name)
