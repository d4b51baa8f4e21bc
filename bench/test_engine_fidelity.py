"""The Python load engine against pgbench on the same SQL, and open-loop timing accuracy.

fidelity = Python engine QPS / pgbench QPS at the same clients: quickstart data
(50k x 128 clustered), HNSW m=16 ef_construction=64, ef_search 40, the vector looked
up by id exactly as pgbench's script does. Engines alternate so background load hits
both alike. Run with ``pytest bench``.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pgvbench.engine.operations import SESSION, SqlOperation, encode_int4, knn_operation
from pgvbench.engine.pgbench import find_pgbench, knn_script, run_pgbench
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.server.embedded import EmbeddedServer

ITEMS, QUERIES = "pgvbench_bench_knn.items", "pgvbench_bench_knn.queries"  # conftest
CLIENTS = (1, 2, 4)
ROUNDS = 3
WARMUP_S, DURATION_S = 1.0, 4.0
MIN_FIDELITY = 0.9
SETTINGS = {"hnsw.ef_search": "40", "statement_timeout": "30000"}


@pytest.fixture(scope="module")
def knn_server(knn_tables: Any) -> EmbeddedServer:  # knn_tables: conftest.KnnTables
    return knn_tables.server


def _python_qps(server: EmbeddedServer, clients: int) -> tuple[float, float | None]:
    op = knn_operation(
        items=ITEMS,
        queries=QUERIES,
        operator="<->",
        k=10,
        vectors=[0] * 1000,
        vector_oid=0,
        settings=SETTINGS,
    )  # type: ignore[arg-type]
    dsn = server.dsn()
    out = run_load(
        op,
        DirectProvider(dsn, op, SESSION),
        LoadShape(clients=clients, warmup_s=WARMUP_S, duration_s=DURATION_S),
        probe_dsn=dsn,
    )
    assert out.errors == 0 and out.aborted is None
    return out.qps, out.client_cpu_cores


def _pgbench_qps(server: EmbeddedServer, clients: int) -> float:
    binary = find_pgbench(server.bin_dir)
    assert binary is not None
    with tempfile.TemporaryDirectory() as workdir:
        run = run_pgbench(
            pgbench=binary,
            conninfo=server.dsn(),
            script=knn_script(
                items_table=ITEMS, queries_table=QUERIES, n_queries=1000, operator="<->", k=10
            ),
            clients=clients,
            threads=None,
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
            rate=None,
            session_settings={"hnsw.ef_search": "40"},
            statement_timeout_ms=30000,
            workdir=Path(workdir),
        )
    assert run.outcome.errors == 0
    return run.outcome.qps


@pytest.mark.parametrize("clients", CLIENTS)
def test_fidelity_vs_pgbench(benchmark: Any, knn_server: EmbeddedServer, clients: int) -> None:
    def alternate() -> tuple[list[float], list[float], list[float]]:
        python, reference, cpu = [], [], []
        for _ in range(ROUNDS):
            qps, cores = _python_qps(knn_server, clients)
            python.append(qps)
            cpu.append(cores or 0.0)
            reference.append(_pgbench_qps(knn_server, clients))
        return python, reference, cpu

    # Timed as one round: fixed-duration loads, so the time itself is nearly constant;
    # the figures that matter are in extra_info and asserted below.
    python, reference, cpu = benchmark.pedantic(alternate, rounds=1)
    fidelity = statistics.median(python) / statistics.median(reference)
    benchmark.extra_info.update(
        clients=clients,
        python_qps=round(statistics.median(python)),
        pgbench_qps=round(statistics.median(reference)),
        fidelity=round(fidelity, 3),
        python_client_cpu_cores=round(statistics.median(cpu), 3),
    )
    print(
        f"\n{clients} clients: python {statistics.median(python):,.0f} QPS, pgbench "
        f"{statistics.median(reference):,.0f} QPS, fidelity {fidelity:.3f}, "
        f"python client CPU {statistics.median(cpu):.3f} cores"
    )
    assert fidelity >= MIN_FIDELITY


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_open_loop_timing(benchmark: Any, knn_server: EmbeddedServer, arrival: str) -> None:
    """200 ops/s for 20 s on a fast query: rate within 2%, mean schedule lag < 1 ms."""
    op = SqlOperation(
        name="point",
        sql=f"SELECT id FROM {QUERIES} WHERE id = $1",
        types=[23],
        params=[[encode_int4(i)] for i in range(1000)],
        settings={},
    )
    dsn = knn_server.dsn()
    shape = LoadShape(
        clients=4, mode="open", rate=200.0, arrival=arrival, warmup_s=1.0, duration_s=20.0, seed=7
    )
    out = benchmark.pedantic(
        run_load, args=(op, DirectProvider(dsn, op, SESSION), shape), kwargs={"probe_dsn": dsn}
    )
    error = out.qps / 200.0 - 1
    lag = out.schedule_lag_ms
    assert lag is not None
    benchmark.extra_info.update(
        arrival=arrival,
        achieved_qps=round(out.qps, 2),
        rate_error=round(error, 4),
        mean_lag_ms=round(lag, 4),
        p99_ms=out.latency.percentile_ms(99.0),
    )
    print(
        f"\nopen loop {arrival}: {out.qps:.2f} ops/s ({error:+.2%}), mean schedule lag "
        f"{lag:.3f} ms, p99 {out.latency.percentile_ms(99.0):.3f} ms"
    )
    assert out.errors == 0 and out.dropped == 0
    assert lag < 1.0
    if arrival == "constant":
        assert abs(error) <= 0.02
    else:  # a Poisson count over 20 s varies by ~1.6% by itself; allow 3 sigma
        assert abs(error) <= 0.05
