"""DDL, bulk load and secondary indexes of the agent platform tables (see datasets/agents/model.py).

Order of a setup: ``create_agent_schema`` (tables, keys, ownership marks),
``load_agent_dataset`` (binary COPY), ``create_secondary_indexes`` (after the load, so
the data goes in without index maintenance; ANALYZE last). The vector index is the
runner's: it builds it per the spec.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import postgres, pq, sql
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.copy import QueuedLibpqWriter

from ..datasets.agents.dataset import NEVER_EXPIRES, AgentDataset
from ..datasets.agents.model import MEMORY_KINDS, MESSAGE_ROLES, TABLES, TASK_STATUSES, table_name
from ..engine.operations import PG_EPOCH_US
from ..errors import DatasetError, SafetyError, SpecError
from ..server.connection import connect, ensure_vector_extension
from .schema import (
    MAX_PLAIN_DIM,
    OWNER_MARK,
    check_table_replaceable,
    drop_owned_table,
    ensure_schema,
    table_exists,
)

ProgressCallback = Callable[[str, int], None]

MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)
PROGRESS_ROWS = 5_000  # rows between progress callbacks

# {t} is the table's own identifier, {agents}/{tasks} the referenced tables; {dim} a literal.
_COLUMNS: dict[str, str] = {
    "agents": """
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        config jsonb NOT NULL DEFAULT '{{}}',
        capabilities text[] NOT NULL DEFAULT '{{}}',
        created_at timestamptz NOT NULL DEFAULT now()""",
    "memories": """
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        agent_id uuid NOT NULL REFERENCES {agents} (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL,
        kind text NOT NULL,
        content text NOT NULL,
        embedding vector({dim}) NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        tags text[] NOT NULL DEFAULT '{{}}',
        importance real NOT NULL DEFAULT 0.5,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz""",
    "chunks": """
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        document_id uuid NOT NULL,
        chunk_index int NOT NULL,
        content text NOT NULL,
        embedding vector({dim}) NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        tags text[] NOT NULL DEFAULT '{{}}'""",
    "tasks": """
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        context_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        status text NOT NULL,
        state jsonb NOT NULL DEFAULT '{{}}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()""",
    "messages": """
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        task_id uuid NOT NULL REFERENCES {tasks} (id) ON DELETE CASCADE,
        role text NOT NULL,
        parts jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL DEFAULT now()""",
}
_VECTOR_TABLES = ("memories", "chunks")

# (table, index suffix, definition after "ON {table}"): what the agent operations filter on.
_SECONDARY_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("memories", "agent_created_idx", "(agent_id, created_at DESC)"),
    ("memories", "tenant_idx", "(tenant_id)"),
    ("memories", "expires_idx", "(expires_at) WHERE expires_at IS NOT NULL"),
    ("memories", "tags_idx", "USING gin (tags)"),
    ("chunks", "tenant_idx", "(tenant_id)"),
    ("chunks", "metadata_idx", "USING gin (metadata jsonb_path_ops)"),
    ("chunks", "tags_idx", "USING gin (tags)"),
    ("tasks", "agent_status_idx", "(agent_id, status)"),
    ("tasks", "context_idx", "(context_id)"),
    ("messages", "task_created_idx", "(task_id, created_at)"),
    ("agents", "tenant_idx", "(tenant_id)"),
    ("agents", "model_idx", "((config->>'model'))"),
)


# --------------------------------------------------------------------------- DDL


def _check_names(prefix: str) -> None:
    longest = max(
        len(f"{table_name(prefix, kind)}_{suffix}") for kind, suffix, _ in _SECONDARY_INDEXES
    )
    if longest > MAX_IDENTIFIER:
        raise SpecError(
            f"experiment name {prefix!r} is too long for the agent tables' index names "
            f"({longest} > {MAX_IDENTIFIER} characters); use a name of at most "
            f"{len(prefix) - (longest - MAX_IDENTIFIER)} characters"
        )


def _create_table(
    conn: psycopg.Connection[Any], schema: str, prefix: str, kind: str, dim: int, *, replace: bool
) -> None:
    columns = sql.SQL(_COLUMNS[kind]).format(
        agents=sql.Identifier(schema, table_name(prefix, "agents")),
        tasks=sql.Identifier(schema, table_name(prefix, "tasks")),
        dim=sql.Literal(dim),
    )
    ident = sql.Identifier(schema, table_name(prefix, kind))
    create = "CREATE TABLE {} ({})" if replace else "CREATE TABLE IF NOT EXISTS {} ({})"
    conn.execute(sql.SQL(create).format(ident, columns))
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(OWNER_MARK)))
    if kind in _VECTOR_TABLES and dim <= MAX_PLAIN_DIM:
        # PLAIN keeps vectors inline: no TOAST detour on every distance computation.
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN embedding SET STORAGE PLAIN").format(ident)
        )


def create_agent_schema(
    conn: psycopg.Connection[Any],
    *,
    schema: str,
    prefix: str,
    dim: int,
    drop_existing: bool = True,
) -> list[str]:
    """Create the five agent tables in ``schema`` (made and marked if missing); return names.

    Every table gets pgvbench's ownership COMMENT. A table of the same name without the
    mark is never touched: SafetyError before anything changes. With ``drop_existing``
    (default) marked tables are dropped and recreated empty; without it they are kept
    as they are (only missing tables are created). All in one transaction.
    """
    _check_names(prefix)
    ensure_vector_extension(conn)
    names = [table_name(prefix, kind) for kind in TABLES]
    with conn.transaction():
        ensure_schema(conn, schema)
        for name in names:
            check_table_replaceable(conn, schema, name)  # all checked before any drop
        if drop_existing:
            for name in reversed(names):  # referencing tables first
                drop_owned_table(conn, schema, name)
        for kind in TABLES:
            _create_table(conn, schema, prefix, kind, dim, replace=drop_existing)
    return names


def _require_owned_tables(conn: psycopg.Connection[Any], schema: str, prefix: str) -> None:
    """SafetyError unless all five tables exist and carry pgvbench's mark."""
    for kind in TABLES:
        name = table_name(prefix, kind)
        check_table_replaceable(conn, schema, name)
        if not table_exists(conn, schema, name):
            raise SafetyError(
                f"table {schema}.{name} does not exist; create the agent schema first"
            )


def _require_empty(conn: psycopg.Connection[Any], schema: str, table: str) -> None:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    if row is not None and row[0]:
        raise DatasetError(
            f"table {schema}.{table} already holds rows; recreate the agent schema "
            "(create_agent_schema with drop_existing=True) before loading"
        )


def create_secondary_indexes(
    conn: psycopg.Connection[Any], *, schema: str, prefix: str
) -> list[str]:
    """Build the workload's B-tree/GIN indexes (not the vector index), then ANALYZE all tables.

    Run after loading. Refuses (SafetyError) tables that are missing or lack the mark.
    """
    _check_names(prefix)
    _require_owned_tables(conn, schema, prefix)
    created: list[str] = []
    for kind, suffix, definition in _SECONDARY_INDEXES:
        table = table_name(prefix, kind)
        index = f"{table}_{suffix}"
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} {}").format(
                sql.Identifier(index), sql.Identifier(schema, table), sql.SQL(definition)
            )
        )
        created.append(index)
    for kind in TABLES:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table_name(prefix, kind))))
    return created


# --------------------------------------------------------------------------- load

_INT64 = struct.Struct(">q")


class _JsonbTextBinaryDumper(Dumper):
    """jsonb from an already serialised JSON str (psycopg's own would quote it again)."""

    format = pq.Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> Buffer | None:
        return b"\x01" + str(obj).encode()


class _EpochMicrosBinaryDumper(Dumper):
    """timestamptz from int epoch microseconds: no datetime object per value."""

    format = pq.Format.BINARY
    oid = postgres.types["timestamptz"].oid

    def dump(self, obj: Any) -> Buffer | None:
        return _INT64.pack(int(obj) - PG_EPOCH_US)


_Row = tuple[Any, ...]


def _ids(ds: AgentDataset, kind: str, n: int) -> list[Any]:
    return [ds.id_of(kind, i) for i in range(n)]


def _agent_rows(ds: AgentDataset) -> Iterator[_Row]:
    tenant_ids = _ids(ds, "tenants", ds.tenants)
    tenants = ds.tenant_of_agent.tolist()
    created = ds.agent_created_at.tolist()
    for a in range(ds.agents):
        yield (
            ds.id_of("agents", a),
            tenant_ids[tenants[a]],
            ds.agent_name(a),
            ds.agent_config(a),
            ds.agent_capabilities(a),
            created[a],
        )


def _memory_rows(ds: AgentDataset) -> Iterator[_Row]:
    agent_ids = _ids(ds, "agents", ds.agents)
    tenant_ids = _ids(ds, "tenants", ds.tenants)
    agents, tenants = ds.memory_agent.tolist(), ds.memory_tenant.tolist()
    kinds, importance = ds.memory_kind.tolist(), ds.memory_importance.tolist()
    created, expires = ds.memory_created_at.tolist(), ds.memory_expires_at.tolist()
    for i in range(ds.memories):
        yield (
            ds.id_of("memories", i),
            agent_ids[agents[i]],
            tenant_ids[tenants[i]],
            MEMORY_KINDS[kinds[i]],
            ds.memory_content(i),
            ds.memory_embedding[i],
            ds.memory_metadata(i),
            ds.memory_tags[i],
            importance[i],
            created[i],
            None if expires[i] == NEVER_EXPIRES else expires[i],
        )


def _chunk_rows(ds: AgentDataset) -> Iterator[_Row]:
    tenant_ids = _ids(ds, "tenants", ds.tenants)
    tenants, documents = ds.chunk_tenant.tolist(), ds.chunk_document.tolist()
    positions = ds.chunk_index.tolist()
    for i in range(ds.chunks):
        yield (
            ds.id_of("chunks", i),
            tenant_ids[tenants[i]],
            ds.id_of("documents", documents[i]),
            positions[i],
            ds.chunk_content(i),
            ds.chunk_embedding[i],
            ds.chunk_metadata(i),
            ds.chunk_tags[i],
        )


def _task_rows(ds: AgentDataset) -> Iterator[_Row]:
    agent_ids = _ids(ds, "agents", ds.agents)
    agents, contexts = ds.task_agent.tolist(), ds.task_context.tolist()
    statuses = ds.task_status.tolist()
    created, updated = ds.task_created_at.tolist(), ds.task_updated_at.tolist()
    for i in range(ds.tasks):
        yield (
            ds.id_of("tasks", i),
            ds.id_of("contexts", contexts[i]),
            agent_ids[agents[i]],
            TASK_STATUSES[statuses[i]],
            ds.task_state(i),
            created[i],
            updated[i],
        )


def _message_rows(ds: AgentDataset) -> Iterator[_Row]:
    task_ids = _ids(ds, "tasks", ds.tasks)
    tasks, roles = ds.message_task.tolist(), ds.message_role.tolist()
    created = ds.message_created_at.tolist()
    for i in range(ds.messages):
        yield (
            ds.id_of("messages", i),
            task_ids[tasks[i]],
            MESSAGE_ROLES[roles[i]],
            ds.message_parts(i),
            created[i],
        )


# table -> (columns, COPY types, row source), in foreign-key order.
_LoadPlan = tuple[Sequence[str], Sequence[str], Callable[[AgentDataset], Iterator[_Row]]]
_LOAD_PLANS: dict[str, _LoadPlan] = {
    "agents": (
        ("id", "tenant_id", "name", "config", "capabilities", "created_at"),
        ("uuid", "uuid", "text", "jsonb", "text[]", "timestamptz"),
        _agent_rows,
    ),
    "memories": (
        ("id", "agent_id", "tenant_id", "kind", "content", "embedding", "metadata", "tags",
         "importance", "created_at", "expires_at"),
        ("uuid", "uuid", "uuid", "text", "text", "vector", "jsonb", "text[]", "float4",
         "timestamptz", "timestamptz"),
        _memory_rows,
    ),
    "chunks": (
        ("id", "tenant_id", "document_id", "chunk_index", "content", "embedding", "metadata",
         "tags"),
        ("uuid", "uuid", "uuid", "int4", "text", "vector", "jsonb", "text[]"),
        _chunk_rows,
    ),
    "tasks": (
        ("id", "context_id", "agent_id", "status", "state", "created_at", "updated_at"),
        ("uuid", "uuid", "uuid", "text", "jsonb", "timestamptz", "timestamptz"),
        _task_rows,
    ),
    "messages": (
        ("id", "task_id", "role", "parts", "created_at"),
        ("uuid", "uuid", "text", "jsonb", "timestamptz"),
        _message_rows,
    ),
}  # fmt: skip


def _row_count(ds: AgentDataset, kind: str) -> int:
    return {
        "agents": ds.agents,
        "memories": ds.memories,
        "chunks": ds.chunks,
        "tasks": ds.tasks,
        "messages": ds.messages,
    }[kind]


def _copy_table(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    plan: _LoadPlan,
    rows: Iterable[_Row],
    report: Callable[[int], None],
) -> int:
    columns, types, _ = plan
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    done = 0
    with conn.transaction(), conn.cursor() as cur:
        # Cursor-local, by oid only: other code on this connection keeps psycopg's dumpers.
        cur.adapters.register_dumper(None, _JsonbTextBinaryDumper)
        cur.adapters.register_dumper(None, _EpochMicrosBinaryDumper)
        # The queued writer sends on a thread while this one builds rows: client and
        # server work overlap.
        with cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
                done += 1
                if done % PROGRESS_ROWS == 0:
                    report(done)
    report(done)
    return done


def _load(
    conn: psycopg.Connection[Any],
    schema: str,
    prefix: str,
    ds: AgentDataset,
    on_progress: ProgressCallback | None,
) -> dict[str, tuple[int, float]]:
    _require_owned_tables(conn, schema, prefix)
    for kind in TABLES:
        _require_empty(conn, schema, table_name(prefix, kind))
    register_vector(conn)
    loaded: dict[str, tuple[int, float]] = {}
    for kind, plan in _LOAD_PLANS.items():
        table = table_name(prefix, kind)

        def report(done: int, kind: str = kind) -> None:
            if on_progress is not None:
                on_progress(kind, done)

        start = time.perf_counter()
        rows = _copy_table(conn, schema, table, plan, plan[2](ds), report)
        loaded[kind] = (rows, time.perf_counter() - start)
    return loaded


def load_agent_dataset(
    conn_or_dsn: psycopg.Connection[Any] | str,
    *,
    schema: str,
    prefix: str,
    dataset: AgentDataset,
    on_progress: ProgressCallback | None = None,
) -> dict[str, tuple[int, float]]:
    """COPY the dataset into the empty agent tables; {table kind: (rows, seconds)}.

    The tables must exist with pgvbench's mark (SafetyError) and be empty (DatasetError).

    Tables load in foreign-key order, each in its own transaction. ``on_progress(kind,
    rows_done)`` gets the running row count of the table being loaded (every
    PROGRESS_ROWS rows and once at its end). A DSN gets its own connection, closed after;
    on a connection that is not in autocommit mode, committing is the caller's.
    """
    if isinstance(conn_or_dsn, str):
        with connect(conn_or_dsn) as conn:
            return _load(conn, schema, prefix, dataset, on_progress)
    return _load(conn_or_dsn, schema, prefix, dataset, on_progress)


def expected_rows(dataset: AgentDataset) -> dict[str, int]:
    """Rows each table holds after ``load_agent_dataset`` (by table kind)."""
    return {kind: _row_count(dataset, kind) for kind in TABLES}
