"""Collectors against a real server: well-formed deltas over a short kNN run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.engine.operations import SESSION, knn_operation
from pgvbench.engine.outcome import EngineOutcome
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.instrument.collectors import CollectorSet, collect_during
from pgvbench.instrument.counters import StatIoCollector, StatioCollector, UserTablesCollector
from pgvbench.instrument.explain import explain_analyze
from pgvbench.instrument.host import HostCollector
from pgvbench.instrument.residency import ResidencyCollector
from pgvbench.instrument.waits import WaitEventCollector
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer

pytestmark = pytest.mark.integration

N, DIM = 3000, 16
INDEX = "items_hnsw"


@pytest.fixture
def schema(embedded_server: EmbeddedServer, unique_name: str) -> Iterator[str]:
    name = f"s_{unique_name}"
    dsn = embedded_server.dsn()
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, name)
        db_schema.create_vector_table(conn, name, "items", DIM)
        load_vectors(dsn, name, "items", _vectors(N, seed=0))
        conn.execute(
            f"CREATE INDEX {INDEX} ON {name}.items USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 8, ef_construction = 32)"
        )
        conn.execute(f"ANALYZE {name}.items")
        yield name
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def _vectors(n: int, *, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)


def _knn_load(dsn: str, schema: str, *, seconds: float = 1.0) -> EngineOutcome:
    with connect(dsn) as conn:
        row = conn.execute("SELECT 'vector'::regtype::oid::int8").fetchone()
    assert row is not None
    op = knn_operation(
        items=f"{schema}.items",
        queries=None,
        operator="<->",
        k=10,
        vectors=_vectors(200, seed=1),
        vector_oid=int(row[0]),
        settings={"hnsw.ef_search": "40"},
    )
    out = run_load(
        op,
        DirectProvider(dsn, op, SESSION),
        LoadShape(clients=2, warmup_s=0.1, duration_s=seconds),
        probe_dsn=dsn,
    )
    assert out.errors == 0 and out.aborted is None
    return out


def _insert_rows(dsn: str, schema: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(count):
            vec = "[" + ",".join(["0.5"] * DIM) + "]"
            conn.execute(
                f"INSERT INTO {schema}.items (id, embedding) VALUES (%s, %s::vector)",
                (N + i, vec),
            )
        conn.execute(f"UPDATE {schema}.items SET id = id WHERE id >= {N}")
        conn.execute("SELECT pg_stat_force_next_flush()")


def test_collectors_report_phase_deltas(embedded_server: EmbeddedServer, schema: str) -> None:
    dsn = embedded_server.dsn()
    inserts = 25
    with connect(dsn) as conn:
        cset = CollectorSet(
            [
                StatIoCollector(conn),
                StatioCollector(conn, schema=schema, relations=["items"]),
                ResidencyCollector(conn, schema=schema, relations=["items"]),
                UserTablesCollector(conn, schema=schema, relations=["items"]),
                WaitEventCollector(dsn),
                HostCollector(postmaster_pid=embedded_server.postmaster_pid()),
            ],
            settle_s=0.2,
        )
        cset.start()
        out = _knn_load(dsn, schema)
        _insert_rows(dsn, schema, inserts)
        data = cset.stop()
    print(data)
    assert out.operations >= 300
    assert all("error" not in v for v in data.values()), data

    statio = data["statio"]
    assert statio["indexes"][INDEX]["idx_blks_hit"] > 0
    assert statio["indexes"][INDEX]["table"] == "items"
    assert statio["tables"]["items"]["heap_blks_hit"] > 0

    io = data["stat_io"]
    assert io["rows"]
    assert io["totals"]["hits"] > 0
    assert {"backend_type", "object", "context", "reads", "hits"} <= set(io["rows"][0])

    residency = data["residency"]
    for snap in ("start", "stop"):
        assert set(residency[snap]) == {"items", INDEX}
        for rel in residency[snap].values():
            assert 0.0 <= rel["pct"] <= 100.0
            assert rel["pages"] > 0
    assert residency["stop"][INDEX]["pct"] > 0

    waits = data["wait_events"]
    assert waits["samples"] > 0
    assert waits["observations"] > 0
    assert math.isclose(sum(waits["shares"].values()), 1.0, abs_tol=1e-3)

    tables = data["user_tables"]["tables"]["items"]
    assert tables["n_tup_ins"] == inserts
    assert tables["n_tup_upd"] == inserts
    assert tables["n_live_tup"] >= N
    assert 0.0 <= tables["hot_ratio"] <= 1.0

    host = data["host"]
    assert host["cpu_busy_cores"] > 0
    assert host["mem_used_bytes"] > 0
    assert host["server_rss_bytes"] > 0
    assert host["server_cpu_cores"] > 0


def test_a_failing_collector_records_its_error(
    embedded_server: EmbeddedServer, schema: str
) -> None:
    dsn = embedded_server.dsn()
    with connect(dsn) as conn:
        cset = CollectorSet(
            [
                StatioCollector(conn, schema=schema, relations=["items", "no_such_table"]),
                ResidencyCollector(conn, schema="no_such_schema", relations=["items"]),
                StatIoCollector(conn),
                WaitEventCollector("host=/nonexistent-socket-dir dbname=x connect_timeout=1"),
            ]
        )
        cset.start()
        conn.execute(f"SELECT count(*) FROM {schema}.items")
        data = cset.stop()
    assert list(data) == ["statio", "residency", "stat_io", "wait_events"]
    assert "no_such_table" in data["statio"]["error"]
    assert "no_such_schema.items" in data["residency"]["error"]
    assert "error" in data["wait_events"]
    assert "rows" in data["stat_io"]  # the others still report


def test_collect_during_wraps_a_callable(embedded_server: EmbeddedServer, schema: str) -> None:
    dsn = embedded_server.dsn()
    result, data = collect_during(
        dsn,
        schema=schema,
        relations=["items", "missing"],
        postmaster_pid=embedded_server.postmaster_pid(),
        fn=lambda: _knn_load(dsn, schema, seconds=0.5),
    )
    assert result.operations > 0
    assert set(data) == {"stat_io", "statio", "residency", "user_tables", "wait_events", "host"}
    assert "missing" in data["statio"]["error"]
    assert data["stat_io"]["rows"]
    assert data["wait_events"]["samples"] > 0


def test_collect_during_survives_an_unreachable_server() -> None:
    dsn = "host=/nonexistent-socket-dir dbname=x connect_timeout=1"
    result, data = collect_during(dsn, schema="s", relations=[], postmaster_pid=None, fn=lambda: 7)
    assert result == 7
    for name in ("stat_io", "statio", "residency", "user_tables", "wait_events"):
        assert "error" in data[name]
    assert data["host"]["cpu_busy_cores"] is not None


def test_explain_analyze_summarises_the_plan(embedded_server: EmbeddedServer, schema: str) -> None:
    vec = "[" + ",".join(["0.1"] * DIM) + "]"
    with connect(embedded_server.dsn()) as conn:
        conn.execute("SET hnsw.ef_search = 40")
        plan: dict[str, Any] = explain_analyze(
            conn,
            f"SELECT id FROM {schema}.items ORDER BY embedding <-> %s::vector LIMIT 10",
            (vec,),
        )
    assert plan["index_used"] == INDEX
    assert not plan["seq_scan"]
    assert plan["rows"] == 10
    assert plan["execution_ms"] > 0 and plan["planning_ms"] >= 0
    assert plan["shared_hit"] + plan["shared_read"] > 0
