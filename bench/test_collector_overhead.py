"""What the standard collector set costs the measured throughput.

kNN at 1 and 2 clients on 50k x 128 clustered vectors (HNSW m=16 ef_construction=64,
ef_search 40), with and without ``collect_during`` around the run. Bare and
instrumented runs alternate (ABBA order per pair of rounds, so a drift in the
machine's speed hits both alike). Two figures, both must stay below MAX_OVERHEAD:

* throughput: 1 - median(QPS with) / median(QPS without);
* CPU per query: median(CPU s/op with) / median(CPU s/op without) - 1, the CPU of the
  load generator and of all server processes in the measured window. On a CPU-bound
  box this is what the collectors take from throughput, and unlike QPS it barely
  moves when other work shares the machine.

The throughput check is skipped as inconclusive (and says so) when the bare runs
alone scatter by more than NOISE_LIMIT: no 2% verdict can come out of that noise.
Run with ``pytest bench``.
"""

from __future__ import annotations

import dataclasses
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
from pgvbench.instrument.cpu import ServerCpuProbe
from pgvbench.metrics import Metric
from pgvbench.server.embedded import EmbeddedServer

SCHEMA = "pgvbench_overhead"
ITEMS = f"{SCHEMA}.items"
CLIENTS = (1, 2)
ROUNDS = 8  # per variant; even, for the ABBA order
WARMUP_S, DURATION_S = 0.5, 2.0
MAX_OVERHEAD = 0.02
NOISE_LIMIT = 0.04  # interquartile range of bare QPS / median
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


@dataclasses.dataclass(frozen=True)
class _Point:
    qps: float
    cpu_per_op_us: float  # client + server CPU per operation, measured window only


def _measure(server: EmbeddedServer, op: SqlOperation, clients: int, instrumented: bool) -> _Point:
    dsn = server.dsn()
    pid = server.postmaster_pid()
    assert pid is not None

    def load() -> _Point:
        out = run_load(
            op,
            DirectProvider(dsn, op, SESSION),
            LoadShape(clients=clients, warmup_s=WARMUP_S, duration_s=DURATION_S),
            probe_dsn=dsn,
            server_cpu=ServerCpuProbe(pid),
        )
        assert out.errors == 0 and out.aborted is None
        assert out.client_cpu_cores is not None and out.server_cpu_cores is not None
        cores = out.client_cpu_cores + out.server_cpu_cores
        return _Point(out.qps, 1e6 * cores / out.qps)

    if not instrumented:
        return load()
    point, data = collect_during(
        dsn, schema=SCHEMA, relations=["items"], postmaster_pid=pid, fn=load
    )
    failed = {name: v["error"] for name, v in data.items() if "error" in v}
    assert not failed, failed
    assert data["wait_events"]["samples"] > 0
    return point


def _iqr(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


@pytest.mark.parametrize("clients", CLIENTS)
def test_collector_overhead(
    benchmark: Any, knn_setup: tuple[EmbeddedServer, np.ndarray], clients: int
) -> None:
    server, queries = knn_setup
    op = _operation(server.dsn(), queries)
    _measure(server, op, clients, instrumented=False)  # settle caches and the CPU governor
    bare: list[_Point] = []
    inst: list[_Point] = []
    for i in range(ROUNDS):
        order = (False, True) if i % 2 == 0 else (True, False)
        for instrumented in order:
            (inst if instrumented else bare).append(_measure(server, op, clients, instrumented))
    qps_bare = statistics.median(p.qps for p in bare)
    qps_inst = statistics.median(p.qps for p in inst)
    cpu_bare = statistics.median(p.cpu_per_op_us for p in bare)
    cpu_inst = statistics.median(p.cpu_per_op_us for p in inst)
    qps_overhead = 1.0 - qps_inst / qps_bare
    cpu_overhead = cpu_inst / cpu_bare - 1.0
    noise = _iqr([p.qps for p in bare])
    conclusive = noise <= NOISE_LIMIT
    benchmark.extra_info.update(
        clients=clients,
        rounds=ROUNDS,
        duration_s=DURATION_S,
        bare_qps=round(qps_bare, 1),
        instrumented_qps=round(qps_inst, 1),
        qps_overhead=round(qps_overhead, 4),
        bare_qps_iqr=round(noise, 4),
        qps_check="applied" if conclusive else "inconclusive (noisy machine)",
        bare_cpu_us_per_op=round(cpu_bare, 2),
        instrumented_cpu_us_per_op=round(cpu_inst, 2),
        cpu_overhead=round(cpu_overhead, 4),
        bare_cpu_iqr=round(_iqr([p.cpu_per_op_us for p in bare]), 4),
    )
    print(
        f"\n{clients} client(s): QPS bare {qps_bare:,.0f} / with collectors {qps_inst:,.0f} "
        f"-> overhead {qps_overhead:+.2%} (bare IQR {noise:.1%}"
        f"{'' if conclusive else ', inconclusive'}); CPU/op bare {cpu_bare:.1f} us / with "
        f"{cpu_inst:.1f} us -> overhead {cpu_overhead:+.2%}\n"
        f"  bare QPS {[round(p.qps) for p in bare]}\n  with QPS {[round(p.qps) for p in inst]}"
    )
    benchmark.pedantic(lambda: None, rounds=1)
    assert cpu_overhead < MAX_OVERHEAD
    if conclusive:
        assert qps_overhead < MAX_OVERHEAD
