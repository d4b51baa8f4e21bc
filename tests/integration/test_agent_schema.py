"""The agent tables against a real server: create, load, index, and the safety rules."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg import sql

from pgvbench.datasets.agents import (
    TABLES,
    AgentDataset,
    AgentDataSpec,
    generate_agent_dataset,
    table_name,
    uuid_for,
)
from pgvbench.db.agent_schema import (
    create_agent_schema,
    create_secondary_indexes,
    expected_rows,
    load_agent_dataset,
)
from pgvbench.db.schema import OWNER_MARK, ensure_schema
from pgvbench.errors import DatasetError, SafetyError
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer

pytestmark = pytest.mark.integration

SPEC = AgentDataSpec(tenants=3, agents=12, memories=2000, chunks=500, tasks=100, dim=16)


@pytest.fixture(scope="module")
def dataset() -> AgentDataset:
    return generate_agent_dataset(SPEC)


@pytest.fixture
def conn(embedded_server: EmbeddedServer, unique_name: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection; the test's schema (``s_<name>``) is dropped afterwards."""
    with connect(embedded_server.dsn()) as conn:
        yield conn
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"s_{unique_name}"))
        )


def _count(conn: psycopg.Connection[Any], query: str, *idents: str) -> int:
    stmt = sql.SQL(query).format(*(sql.Identifier(*i.split(".")) for i in idents))
    row = conn.execute(stmt).fetchone()
    assert row is not None
    return int(row[0])


def test_create_load_and_index(
    conn: psycopg.Connection[Any], unique_name: str, dataset: AgentDataset
) -> None:
    schema, prefix = f"s_{unique_name}", unique_name
    names = create_agent_schema(conn, schema=schema, prefix=prefix, dim=SPEC.dim)
    assert names == [table_name(prefix, kind) for kind in TABLES]

    progress: list[tuple[str, int]] = []
    loaded = load_agent_dataset(
        conn,
        schema=schema,
        prefix=prefix,
        dataset=dataset,
        on_progress=lambda table, done: progress.append((table, done)),
    )
    expected = expected_rows(dataset)
    assert {kind: rows for kind, (rows, _) in loaded.items()} == expected
    assert all(seconds >= 0 for _, seconds in loaded.values())
    assert progress[-1] == ("messages", expected["messages"])
    assert ("memories", expected["memories"]) in progress

    t = {kind: f"{schema}.{table_name(prefix, kind)}" for kind in TABLES}
    for kind in TABLES:
        assert _count(conn, "SELECT count(*) FROM {}", t[kind]) == expected[kind]
        comment = conn.execute(
            "SELECT obj_description(%s::regclass, 'pg_class')",
            (f'"{schema}"."{table_name(prefix, kind)}"',),
        ).fetchone()
        assert comment == (OWNER_MARK,)

    # Foreign keys exist and hold (also the ones not declared: tasks -> agents).
    fks = conn.execute(
        "SELECT conrelid::regclass::text FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s AND contype = 'f'",
        (schema,),
    ).fetchall()
    assert sorted(r[0].split(".")[-1] for r in fks) == sorted(
        [table_name(prefix, "memories"), table_name(prefix, "messages")]
    )
    orphans = "SELECT count(*) FROM {} x LEFT JOIN {} p ON p.id = x.{} WHERE p.id IS NULL"
    for child, parent, column in [
        ("memories", "agents", "agent_id"),
        ("messages", "tasks", "task_id"),
        ("tasks", "agents", "agent_id"),
    ]:
        stmt = sql.SQL(orphans).format(
            sql.Identifier(*t[child].split(".")),
            sql.Identifier(*t[parent].split(".")),
            sql.Identifier(column),
        )
        row = conn.execute(stmt).fetchone()
        assert row == (0,), (child, parent)

    # Memories carry their agent's tenant.
    assert (
        _count(
            conn,
            "SELECT count(*) FROM {} m JOIN {} a ON a.id = m.agent_id "
            "WHERE a.tenant_id <> m.tenant_id",
            t["memories"],
            t["agents"],
        )
        == 0
    )

    # JSONB shapes survive the load; history is an array everywhere.
    assert (
        _count(
            conn,
            "SELECT count(*) FROM {} WHERE jsonb_typeof(state->'history') = 'array'",
            t["tasks"],
        )
        == (expected["tasks"])
    )
    assert (
        _count(conn, "SELECT count(*) FROM {} WHERE jsonb_typeof(parts) = 'array'", t["messages"])
        == expected["messages"]
    )

    # Row 0 of memories is exactly the generated row.
    register_vector(conn)
    row = conn.execute(
        sql.SQL(
            "SELECT id, kind, embedding, metadata, tags, created_at, expires_at FROM {} "
            "WHERE id = %s"
        ).format(sql.Identifier(*t["memories"].split("."))),
        (uuid_for("memories", SPEC.seed, 0),),
    ).fetchone()
    assert row is not None
    assert np.allclose(np.asarray(row[2].to_list()), dataset.memory_embedding[0])
    assert row[3] == json.loads(dataset.memory_metadata(0))
    assert row[4] == dataset.memory_tags[0]
    created = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(
        microseconds=int(dataset.memory_created_at[0])
    )
    assert row[5] == created

    # Expired memories: the fraction asked for, measured by the server (NULL: never).
    now = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=dataset.now_us)
    expired = conn.execute(
        sql.SQL("SELECT avg((coalesce(expires_at < %s, false))::int) FROM {}").format(
            sql.Identifier(*t["memories"].split("."))
        ),
        (now,),
    ).fetchone()
    assert expired is not None
    assert float(expired[0]) == pytest.approx(SPEC.expired_fraction, abs=0.02)

    indexes = create_secondary_indexes(conn, schema=schema, prefix=prefix)
    assert len(indexes) == 12
    present = {
        r[0]
        for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))
    }
    assert set(indexes) <= present
    analyzed = conn.execute(
        "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = %s "
        "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
        (schema,),
    ).fetchone()
    assert analyzed == (len(TABLES),)


def test_recreate_drops_only_our_tables(
    conn: psycopg.Connection[Any], unique_name: str, dataset: AgentDataset, embedded_server: Any
) -> None:
    schema, prefix = f"s_{unique_name}", unique_name
    create_agent_schema(conn, schema=schema, prefix=prefix, dim=SPEC.dim)
    load_agent_dataset(embedded_server.dsn(), schema=schema, prefix=prefix, dataset=dataset)
    memories = f"{schema}.{table_name(prefix, 'memories')}"
    # Kept as is without drop_existing; emptied with it.
    create_agent_schema(conn, schema=schema, prefix=prefix, dim=SPEC.dim, drop_existing=False)
    assert _count(conn, "SELECT count(*) FROM {}", memories) == SPEC.memories
    with pytest.raises(DatasetError, match="already holds rows"):
        load_agent_dataset(conn, schema=schema, prefix=prefix, dataset=dataset)
    create_agent_schema(conn, schema=schema, prefix=prefix, dim=SPEC.dim)
    assert _count(conn, "SELECT count(*) FROM {}", memories) == 0


def test_unmarked_table_is_refused_and_left_untouched(
    conn: psycopg.Connection[Any], unique_name: str
) -> None:
    schema, prefix = f"s_{unique_name}", unique_name
    ensure_schema(conn, schema)
    foreign = sql.Identifier(schema, table_name(prefix, "memories"))
    conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(foreign))
    conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'keep me')").format(foreign))

    for drop in (True, False):
        with pytest.raises(SafetyError, match="without pgvbench's mark"):
            create_agent_schema(conn, schema=schema, prefix=prefix, dim=8, drop_existing=drop)
    with pytest.raises(SafetyError):
        create_secondary_indexes(conn, schema=schema, prefix=prefix)
    with pytest.raises(SafetyError):
        load_agent_dataset(conn, schema=schema, prefix=prefix, dataset=generate_agent_dataset(SPEC))

    assert conn.execute(sql.SQL("SELECT * FROM {}").format(foreign)).fetchall() == [(1, "keep me")]
    tables = conn.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND relkind = 'r'",
        (schema,),
    ).fetchall()
    assert tables == [(table_name(prefix, "memories"),)]  # nothing else created either
    indexes = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchone()
    assert indexes == (1,)  # only its own primary key


def test_indexes_need_the_tables(conn: psycopg.Connection[Any], unique_name: str) -> None:
    ensure_schema(conn, f"s_{unique_name}")
    with pytest.raises(SafetyError, match="does not exist"):
        create_secondary_indexes(conn, schema=f"s_{unique_name}", prefix=unique_name)
