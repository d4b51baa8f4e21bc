"""What the standard collector set costs the measured throughput.

kNN at 1 and 2 clients on 50k x 128 clustered vectors (HNSW m=16 ef_construction=64,
ef_search 40), with and without ``collect_during`` around the run. Three figures:

* attributed cost (asserted): the CPU the collectors use inside a measured window
  (this process and all server processes, read around a quiet window with the set
  active vs without it, alternating) as a share of the CPU the bare load uses
  (load generator + server). On a CPU-bound box this is what they take from
  throughput, and it does not depend on what else runs on the machine;
* throughput: 1 - median(QPS with) / median(QPS without), bare and instrumented runs
  alternating in ABBA order;
* CPU per query: median(CPU/op with) / median(CPU/op without) - 1.

The last two are checked statistically (DESIGN.md, comparisons): each fails only if
it exceeds MAX_OVERHEAD by more than two standard errors of the difference of the
medians (estimated from the runs' interquartile ranges), so machine noise alone does
not fail the suite; a run whose two standard errors exceed MAX_OVERHEAD cannot
certify "< 2%" either way and is labelled inconclusive in extra_info.
Run with ``pytest bench``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.engine.operations import SESSION, SqlOperation, knn_operation
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.instrument.collectors import collect_during
from pgvbench.instrument.cpu import ServerCpuProbe, client_cpu_seconds
from pgvbench.server.embedded import EmbeddedServer

SCHEMA = "pgvbench_bench_knn"  # the shared tables of bench/conftest.py
ITEMS = f"{SCHEMA}.items"
CLIENTS = (1, 2)
ROUNDS = 8  # per variant; even, for the ABBA order
WARMUP_S, DURATION_S = 0.5, 2.0
MAX_OVERHEAD = 0.02
QUIET_S, QUIET_ROUNDS = 4.0, 3
SETTINGS = {"hnsw.ef_search": "40", "statement_timeout": "30000"}


@pytest.fixture(scope="module")
def knn_setup(knn_tables: Any) -> tuple[EmbeddedServer, np.ndarray]:  # conftest.KnnTables
    return knn_tables.server, knn_tables.query_vectors


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
    cores: float  # client + server CPU cores in the measured window


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
        return _Point(out.qps, 1e6 * cores / out.qps, cores)

    if not instrumented:
        return load()
    point, data = collect_during(
        dsn, schema=SCHEMA, relations=["items"], postmaster_pid=pid, fn=load
    )
    failed = {name: v["error"] for name, v in data.items() if "error" in v}
    assert not failed, failed
    assert data["wait_events"]["samples"] > 0
    return point


@pytest.fixture(scope="module")
def collector_cores(knn_setup: tuple[EmbeddedServer, np.ndarray]) -> tuple[float, float]:
    """CPU cores the collector set uses inside a window, and its start + stop seconds."""
    server = knn_setup[0]
    dsn, pid = server.dsn(), server.postmaster_pid()
    assert pid is not None
    probe = ServerCpuProbe(pid)

    def window() -> float:
        client0, server0 = client_cpu_seconds(), probe.seconds()
        time.sleep(QUIET_S)
        server1 = probe.seconds()
        assert server0 is not None and server1 is not None
        return (client_cpu_seconds() - client0 + server1 - server0) / QUIET_S

    bare: list[float] = []
    inst: list[float] = []
    edges: list[float] = []
    for _ in range(QUIET_ROUNDS):
        bare.append(window())
        t0 = time.perf_counter()
        cores, data = collect_during(
            dsn, schema=SCHEMA, relations=["items"], postmaster_pid=pid, fn=window
        )
        edges.append(time.perf_counter() - t0 - QUIET_S)
        assert not [v for v in data.values() if "error" in v], data
        inst.append(cores)
    return max(0.0, statistics.median(inst) - statistics.median(bare)), statistics.median(edges)


def _median_se(values: list[float]) -> float:
    """Standard error of the median relative to it (normal approximation, sigma from IQR)."""
    q = statistics.quantiles(values, n=4)
    sigma = (q[2] - q[0]) / 1.349
    return 1.2533 * sigma / math.sqrt(len(values)) / statistics.median(values)


def _diff_se(a: list[float], b: list[float]) -> float:
    return math.hypot(_median_se(a), _median_se(b))


@pytest.mark.parametrize("clients", CLIENTS)
def test_collector_overhead(
    benchmark: Any,
    knn_setup: tuple[EmbeddedServer, np.ndarray],
    collector_cores: tuple[float, float],
    clients: int,
) -> None:
    server, queries = knn_setup
    cost_cores, edge_s = collector_cores
    op = _operation(server.dsn(), queries)
    _measure(server, op, clients, instrumented=False)  # settle caches and the CPU governor

    def abba() -> tuple[list[_Point], list[_Point]]:
        bare: list[_Point] = []
        inst: list[_Point] = []
        for i in range(ROUNDS):
            order = (False, True) if i % 2 == 0 else (True, False)
            for instrumented in order:
                (inst if instrumented else bare).append(_measure(server, op, clients, instrumented))
        return bare, inst

    # Timed as one round: fixed-duration loads; the figures are in extra_info.
    bare, inst = benchmark.pedantic(abba, rounds=1)
    qps_bare = statistics.median(p.qps for p in bare)
    qps_inst = statistics.median(p.qps for p in inst)
    cpu_bare = statistics.median(p.cpu_per_op_us for p in bare)
    cpu_inst = statistics.median(p.cpu_per_op_us for p in inst)
    qps_overhead = 1.0 - qps_inst / qps_bare
    cpu_overhead = cpu_inst / cpu_bare - 1.0
    load_cores = statistics.median(p.cores for p in bare)
    attributed = cost_cores / load_cores
    noise = _diff_se([p.qps for p in bare], [p.qps for p in inst])
    cpu_noise = _diff_se([p.cpu_per_op_us for p in bare], [p.cpu_per_op_us for p in inst])
    conclusive = 2 * noise <= MAX_OVERHEAD
    cpu_conclusive = 2 * cpu_noise <= MAX_OVERHEAD
    benchmark.extra_info.update(
        clients=clients,
        rounds=ROUNDS,
        collector_cores=round(cost_cores, 5),
        collector_start_stop_s=round(edge_s, 3),
        bare_load_cores=round(load_cores, 3),
        attributed_overhead=round(attributed, 5),
        duration_s=DURATION_S,
        bare_qps=round(qps_bare, 1),
        instrumented_qps=round(qps_inst, 1),
        qps_overhead=round(qps_overhead, 4),
        qps_overhead_se=round(noise, 4),
        qps_check="conclusive" if conclusive else "inconclusive (2 SE > 2%)",
        bare_cpu_us_per_op=round(cpu_bare, 2),
        instrumented_cpu_us_per_op=round(cpu_inst, 2),
        cpu_overhead=round(cpu_overhead, 4),
        cpu_overhead_se=round(cpu_noise, 4),
        cpu_check="conclusive" if cpu_conclusive else "inconclusive (2 SE > 2%)",
    )
    print(
        f"\n{clients} client(s): collectors use {cost_cores:.4f} cores in the window vs "
        f"{load_cores:.2f} for the load -> attributed overhead {attributed:.2%} "
        f"(start+stop {edge_s:.2f} s outside the window)\n"
        f"  QPS bare {qps_bare:,.0f} / with collectors {qps_inst:,.0f} "
        f"-> overhead {qps_overhead:+.2%} (SE {noise:.1%}"
        f"{'' if conclusive else ', inconclusive'}); CPU/op bare {cpu_bare:.1f} us / with "
        f"{cpu_inst:.1f} us -> overhead {cpu_overhead:+.2%} (SE {cpu_noise:.1%}"
        f"{'' if cpu_conclusive else ', inconclusive'})\n"
        f"  bare QPS {[round(p.qps) for p in bare]}\n  with QPS {[round(p.qps) for p in inst]}"
    )
    assert attributed < MAX_OVERHEAD
    assert qps_overhead < MAX_OVERHEAD + 2 * noise
    assert cpu_overhead < MAX_OVERHEAD + 2 * cpu_noise
