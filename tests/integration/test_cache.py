"""Cache-state study on a real server: eviction, prewarm, cold vs warm, restart settings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pytest

from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.engine.operations import Operation, knn_operation
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer, temporary_server
from pgvbench.studies.cache import CacheSpec, measure_cache_states, recommendations
from pgvbench.studies.cache.buffers import evict, prewarm, residency
from pgvbench.studies.cache.server_config import apply_cache_config

pytestmark = pytest.mark.integration

# 64-dim rows are ~300 B: heap ~18 MB + HNSW ~20 MB, well above 16MB of shared_buffers.
N, DIM, K = 60_000, 64, 10
SCHEMA, TABLE, INDEX = "cache_study", "items", "items_hnsw"


@dataclasses.dataclass
class Loaded:
    server: EmbeddedServer
    queries: np.ndarray
    vector_oid: int


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    # Our own server: these tests restart it and change shared_buffers.
    with temporary_server("pgvbench-cache-") as server:
        rng = np.random.default_rng(11)
        vectors = rng.standard_normal((N, DIM), dtype=np.float32)
        with connect(server.dsn()) as conn:
            db_schema.ensure_schema(conn, SCHEMA)
            db_schema.create_vector_table(conn, SCHEMA, TABLE, DIM)
            load_vectors(server.dsn(), SCHEMA, TABLE, vectors)
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(
                f"CREATE INDEX {INDEX} ON {SCHEMA}.{TABLE} USING hnsw (embedding vector_l2_ops) "
                "WITH (m = 8, ef_construction = 16)"
            )
            conn.execute(f"ANALYZE {SCHEMA}.{TABLE}")
            row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
            assert row is not None
        queries = rng.standard_normal((500, DIM), dtype=np.float32)
        yield Loaded(server=server, queries=queries, vector_oid=int(row[0]))


def _factory(loaded: Loaded) -> Operation:
    return knn_operation(
        items=f"{SCHEMA}.{TABLE}",
        queries=None,
        operator="<->",
        k=K,
        vectors=loaded.queries,
        vector_oid=loaded.vector_oid,
        settings={"hnsw.ef_search": "40"},
    )


def test_evict_empties_and_prewarm_fills_the_index(loaded: Loaded) -> None:
    with connect(loaded.server.dsn()) as conn:
        # default 128MB of shared_buffers holds index and heap
        prewarm(conn, SCHEMA, [INDEX, TABLE])
        before = residency(conn, SCHEMA, [INDEX, TABLE])
        description = evict(conn, SCHEMA, [INDEX, TABLE])
        after = residency(conn, SCHEMA, [INDEX, TABLE])
        prewarm(conn, SCHEMA, [INDEX])
        rewarmed = residency(conn, SCHEMA, [INDEX])
    assert "pg_buffercache_evict_relation" in description
    assert before[INDEX]["pages"] > 1000
    assert before[INDEX]["percent"] > 99 and before[TABLE]["percent"] > 99
    assert after[INDEX]["percent"] < 1 and after[TABLE]["percent"] < 1
    assert rewarmed[INDEX]["percent"] > 99


def test_cold_is_slower_than_warm_when_shared_buffers_is_small(loaded: Loaded) -> None:
    server = loaded.server
    target = Target(dsn=server.dsn(), kind="embedded")
    spec = CacheSpec(
        strategies=("cold", "warm", "autoprewarm"),
        shared_buffers=("16MB",),
        measure_seconds=3.0,
        warmup_series_seconds=5.0,
    )
    study = measure_cache_states(
        target=target,
        server=server,
        spec=spec,
        schema=SCHEMA,
        table=TABLE,
        index_name=INDEX,
        query_op_factory=lambda: _factory(loaded),
        k=K,
    )
    by = {row.strategy: row for row in study.rows}
    assert set(by) == {"cold", "warm", "autoprewarm"}
    cold, warm = by["cold"], by["warm"]
    for row in study.rows:
        assert row.shared_buffers == "16MB"
        assert row.index_mb + row.heap_mb > row.shared_buffers_mb
        assert row.p99_ms is not None and row.series
    assert cold.first_second_p99_ms is not None and warm.p99_ms is not None
    assert cold.first_second_p99_ms > warm.p99_ms
    assert cold.residency_before[INDEX]["percent"] < 1
    assert cold.os_cache_note  # dropped or not, the reason is recorded
    assert isinstance(cold.os_cache_dropped, bool)
    assert any(
        "index + heap" in line and "shared_buffers" in line for line in study.recommendations
    )
    assert recommendations(study) == study.recommendations
    json.dumps(study.to_dict())  # the results file stores its JSON form
    print(json.dumps(_summary(study.to_dict()), indent=1))
    # the study restores the server's base configuration
    with connect(server.dsn()) as conn:
        buffers = conn.execute("SHOW shared_buffers").fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert buffers is not None and buffers[0] == "128MB"
    assert preload is not None and preload[0] == "pg_stat_statements"


def _summary(study: dict[str, object]) -> dict[str, object]:
    rows = study["rows"]
    assert isinstance(rows, list)
    keep = ("strategy", "p50_ms", "p99_ms", "first_second_p99_ms", "time_to_warm_s")
    return {
        "rows": [
            {
                **{key: r[key] for key in keep},
                "os": [r["os_cache_dropped"], r["os_cache_note"]],
                "p99_series": [s["p99_ms"] for s in r["series"]],
                "index_before": r["residency_before"]["items_hnsw"]["percent"],
                "index_after": r["residency_after"]["items_hnsw"]["percent"],
            }
            for r in rows
        ],
        "recommendations": study["recommendations"],
    }


def test_restart_settings_are_in_effect_after_restart(loaded: Loaded) -> None:
    server = loaded.server
    pid = server.postmaster_pid()
    try:
        restarted, notes = apply_cache_config(server, {}, "24MB", autoprewarm=True)
        assert restarted and not notes and server.postmaster_pid() != pid
        with connect(server.dsn()) as conn:
            buffers = conn.execute("SHOW shared_buffers").fetchone()
            preload = conn.execute("SHOW shared_preload_libraries").fetchone()
            autoprewarm = conn.execute("SHOW pg_prewarm.autoprewarm").fetchone()
            # the base config's library survives the combined value
            statements = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
        assert buffers is not None and buffers[0] == "24MB"
        assert preload is not None
        assert [p.strip() for p in preload[0].split(",")] == ["pg_stat_statements", "pg_prewarm"]
        assert autoprewarm is not None and autoprewarm[0] == "on"
        assert statements is not None
    finally:
        server.apply_settings({}, source="test")
