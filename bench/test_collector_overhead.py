"""What the standard collector set costs the measured throughput.

kNN at 1 and 2 clients on 50k x 128 clustered vectors (HNSW m=16 ef_construction=64,
ef_search 40), with and without ``collect_during`` around the run. Bare and
instrumented runs alternate (ABBA order per pair of rounds, so a drift in the
machine's speed hits both alike); the overhead is 1 - median(with) / median(without)
and must stay below MAX_OVERHEAD. Run with ``pytest bench``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, ensure_schema
from pgvbench.engine.operations import SESSION, SqlOperation, knn_operation
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.instrument.collectors import collect_during
from pgvbench.metrics import Metric
from pgvbench.server.embedded import EmbeddedServer

SCHEMA = "pgvbench_overhead"
ITEMS = f"{SCHEMA}.items"
CLIENTS = (1, 2)
ROUNDS = 6  # per variant; even, for the ABBA order
WARMUP_S, DURATION_S = 0.5, 3.0
MAX_OVERHEAD = 0.02
SETTINGS = {"hnsw.ef_search": "40", "statement_timeout": "30000"}


@pytest.fixture(scope="module")
def knn_setup(bench_server: EmbeddedServer) -> Iterator[tuple[EmbeddedServer, np.ndarray]]:
    ds = generate_clustered(
        n=50_000,
        dim=128,
        n_queries=1000,
        clusters=100,
        spread=1.5,
        seed=42,
        metric=Metric.L2,
        intrinsic_dim=32,
    )
    dsn = bench_server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_schema(conn, SCHEMA)
        create_vector_table(conn, SCHEMA, "items", 128)
        load_vectors(dsn, SCHEMA, "items", ds.base)
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(
            f"CREATE INDEX items_hnsw ON {ITEMS} USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        conn.execute(f"ANALYZE {ITEMS}")
    yield bench_server, ds.queries


def _operation(dsn: str, queries: np.ndarray) -> SqlOperation:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT 'vector'::regtype::oid::int8").fetchone()
    assert row is not None
    return knn_operation(
        items=ITEMS,
        queries=None,
        operator="<->",
        k=10,
        vectors=queries,
        vector_oid=int(row[0]),
        settings=SETTINGS,
    )


def _qps(server: EmbeddedServer, op: SqlOperation, clients: int, instrumented: bool) -> float:
    dsn = server.dsn()

    def load() -> float:
        out = run_load(
            op,
            DirectProvider(dsn, op, SESSION),
            LoadShape(clients=clients, warmup_s=WARMUP_S, duration_s=DURATION_S),
            probe_dsn=dsn,
        )
        assert out.errors == 0 and out.aborted is None
        return out.qps

    if not instrumented:
        return load()
    qps, data = collect_during(
        dsn,
        schema=SCHEMA,
        relations=["items"],
        postmaster_pid=server.postmaster_pid(),
        fn=load,
    )
    failed = {name: v["error"] for name, v in data.items() if "error" in v}
    assert not failed, failed
    assert data["wait_events"]["samples"] > 0
    return qps


@pytest.mark.parametrize("clients", CLIENTS)
def test_collector_overhead(
    benchmark: Any, knn_setup: tuple[EmbeddedServer, np.ndarray], clients: int
) -> None:
    server, queries = knn_setup
    op = _operation(server.dsn(), queries)
    _qps(server, op, clients, instrumented=False)  # settle caches and the CPU governor
    bare: list[float] = []
    inst: list[float] = []
    for i in range(ROUNDS):
        order = (False, True) if i % 2 == 0 else (True, False)
        for instrumented in order:
            (inst if instrumented else bare).append(_qps(server, op, clients, instrumented))
    base, with_set = statistics.median(bare), statistics.median(inst)
    overhead = 1.0 - with_set / base
    paired = statistics.median(1.0 - w / b for w, b in zip(inst, bare, strict=True))
    benchmark.extra_info.update(
        clients=clients,
        rounds=ROUNDS,
        bare_qps=round(base, 1),
        instrumented_qps=round(with_set, 1),
        overhead=round(overhead, 4),
        paired_median_overhead=round(paired, 4),
        bare_spread=round((max(bare) - min(bare)) / base, 4),
    )
    print(
        f"\n{clients} client(s): bare {base:,.0f} QPS, with collectors {with_set:,.0f} QPS, "
        f"overhead {overhead:+.2%} (paired median {paired:+.2%}); "
        f"bare {[round(q) for q in bare]}, with {[round(q) for q in inst]}"
    )
    benchmark.pedantic(lambda: None, rounds=1)
    assert overhead < MAX_OVERHEAD
