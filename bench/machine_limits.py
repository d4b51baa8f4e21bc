"""A smaller machine, simulated for real: the cache cliff and per-core throughput (issue 15).

    python bench/machine_limits.py                    # ~5 min on 2 cores
    python bench/machine_limits.py --rows 60000 --rounds 2

On its own embedded server (a temporary data dir), one dataset (clustered, --dim 256) with
an HNSW index (m=16, ef_construction=64) and shared_buffers small (32MB), two interleaved
comparisons, each arm a fresh server start (analysis.interleave.schedule, mirrored rounds):

1. the cache cliff: [server] memory_limit (--memory, below index + heap) against no limit.
   Each arm starts its server (a limited start first drops the data dir from the page
   cache), reads heap and index once (pg_prewarm 'read': the page cache, not
   shared_buffers), warms up, then measures --clients clients at ef_search 40. Recorded:
   QPS, p99, pg_stat_io reads per query and read time per read (track_io_timing is on),
   and the memory cgroup's page cache at the end. Without the limit the reads that miss
   shared_buffers are served by the page cache; under it, from disk;
2. per-core throughput: cpus = 1 against every CPU at --cpu-clients clients (more than
   cores, so the server is busy), no memory limit, shared_buffers large enough for index +
   heap (prewarmed into it), so only CPU differs. The client runs on the CPUs the server was
   not given, as pgvbench runs it (cgroup.client_beside).

Prints both tables and the paired ratios (limited / unlimited, with their 95% intervals),
and writes OUT/machine_limits.json. Needs root and the memory and cpuset controllers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from pgvbench.analysis.interleave import schedule
from pgvbench.analysis.paired import paired_ratio
from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, ensure_schema
from pgvbench.engine.operations import SESSION, knn_operation
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.instrument.cpu import ServerCpuProbe
from pgvbench.metrics import Metric
from pgvbench.server import cgroup
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.machine import host_cpus, parse_size
from pgvbench.spec.model import MachineLimits

SCHEMA = "machine_bench"
ITEMS, QUERIES = f"{SCHEMA}.items", f"{SCHEMA}.queries"
MIB = 1024**2
SETTINGS = {"hnsw.ef_search": "40", "statement_timeout": "60000"}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--memory", default="160MB", help="the cliff arm's memory_limit")
    p.add_argument("--clients", type=int, default=2, help="clients of the cache-cliff arms")
    p.add_argument(
        "--cpu-clients", type=int, default=4, help="clients of the cpus arms (more than cores)"
    )
    p.add_argument("--rounds", type=int, default=4, help="rounds per comparison (mirrored)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=8.0, help="measured window per arm")
    p.add_argument("--only", choices=["cliff", "cpus"], help="run one of the two comparisons")
    p.add_argument("--out", type=Path, default=Path("reports/bench-machine-limits"))
    return p.parse_args(argv)


def _conf(server: EmbeddedServer, shared_buffers: str) -> None:
    """shared_buffers for the next start: a run's start resets ALTER SYSTEM, so the bench
    appends it to postgresql.conf (the last line wins), in its own throwaway data dir."""
    with open(server.data_dir / "postgresql.conf", "a") as fh:
        fh.write(f"\nshared_buffers = '{shared_buffers}'\n")


def _load(server: EmbeddedServer, rows: int, dim: int) -> dict[str, int]:
    ds = generate_clustered(
        n=rows,
        dim=dim,
        n_queries=1000,
        clusters=100,
        spread=1.5,
        seed=7,
        metric=Metric.L2,
        intrinsic_dim=32,
    )
    dsn = server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_schema(conn, SCHEMA)
        create_vector_table(conn, SCHEMA, "items", dim)
        create_vector_table(conn, SCHEMA, "queries", dim)
        load_vectors(dsn, SCHEMA, "items", ds.base)
        load_vectors(dsn, SCHEMA, "queries", ds.queries)
        conn.execute(f"ALTER TABLE {QUERIES} ADD PRIMARY KEY (id)")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX items_hnsw ON {ITEMS} USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        build_s = time.perf_counter() - started
        conn.execute(f"VACUUM ANALYZE {ITEMS}")
        conn.execute(f"ANALYZE {QUERIES}")
        sizes = conn.execute(
            f"SELECT pg_relation_size('{ITEMS}'), pg_relation_size('{SCHEMA}.items_hnsw')"
        ).fetchone()
        assert sizes is not None
    return {"heap_bytes": int(sizes[0]), "index_bytes": int(sizes[1]), "build_s": round(build_s)}


def _io(conn: psycopg.Connection[Any]) -> tuple[float, float]:
    row = conn.execute(
        "SELECT coalesce(sum(reads), 0), coalesce(sum(read_time), 0) FROM pg_stat_io "
        "WHERE object = 'relation'"
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _arm(
    server: EmbeddedServer,
    limits: MachineLimits | None,
    args: argparse.Namespace,
    prewarm: str,
    clients: int,
) -> dict[str, Any]:
    """One arm: a fresh start under ``limits``, heap and index read once, one window."""
    server.stop()
    server.ensure_started(owner="run", limits=limits)
    dsn = server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for rel in (ITEMS, f"{SCHEMA}.items_hnsw"):
            conn.execute("SELECT pg_prewarm(%s::regclass, %s)", (rel, prewarm))
    op = knn_operation(
        items=ITEMS,
        queries=QUERIES,
        operator="<->",
        k=10,
        vectors=[0] * 1000,  # type: ignore[arg-type]
        vector_oid=0,
        settings=SETTINGS,
    )
    pid = server.postmaster_pid()
    assert pid is not None
    probe = ServerCpuProbe(pid)
    with cgroup.client_beside(limits):
        # warm-up first, as its own window: pg_stat_io is read around the measured one
        run_load(
            op,
            DirectProvider(dsn, op, SESSION),
            LoadShape(clients=clients, warmup_s=0, duration_s=args.warmup),
            probe_dsn=dsn,
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            reads0, time0 = _io(conn)
        out = run_load(
            op,
            DirectProvider(dsn, op, SESSION),
            LoadShape(clients=clients, warmup_s=0, duration_s=args.seconds),
            probe_dsn=dsn,
            server_cpu=probe,  # read inside the window, while its backends are alive
        )
    time.sleep(0.5)  # the load's backends flush their I/O statistics as they exit
    with psycopg.connect(dsn, autocommit=True) as conn:
        reads1, time1 = _io(conn)
    assert out.errors == 0 and out.aborted is None, out.error_messages
    reads = reads1 - reads0
    cache = None
    if limits is not None and limits.memory_bytes is not None:
        path = cgroup.hierarchies()["memory"].root / cgroup.cgroup_name(server.data_dir)
        stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
        cache = int(stat.get("cache", stat.get("file", "0")))
    return {
        "qps": round(out.qps, 1),
        "p99_ms": round(out.latency.percentile_ms(99), 3),
        "reads_per_query": round(reads / max(out.operations, 1), 2),
        "read_us_per_read": round(1000 * (time1 - time0) / reads, 1) if reads else None,
        "server_cpu_cores": out.server_cpu_cores,
        "client_cpu_cores": out.client_cpu_cores,
        "cgroup_page_cache_mb": round(cache / MIB, 1) if cache is not None else None,
    }


def _compare(
    server: EmbeddedServer,
    arms: dict[str, MachineLimits | None],
    args: argparse.Namespace,
    *,
    prewarm: str,
    seed: int,
    clients: int,
) -> dict[str, Any]:
    names = list(arms)
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    order = schedule(names, args.rounds, seed=seed, mirrored=True)
    for i, round_ in enumerate(order, start=1):
        for name in round_:
            row = _arm(server, arms[name], args, prewarm, clients)
            measured[name].append(row)
            print(f"  round {i} {name:>10}: {row}", flush=True)
    base, other = names
    ratio = paired_ratio([r["qps"] for r in measured[base]], [r["qps"] for r in measured[other]])
    summary = {
        name: {
            key: statistics.median(r[key] for r in rows if r[key] is not None)
            for key in rows[0]
            if any(r[key] is not None for r in rows)
        }
        for name, rows in measured.items()
    }
    return {
        "order": order,
        "rounds": measured,
        "median": summary,
        f"qps_ratio_{other}_over_{base}": ratio.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    limits_memory = MachineLimits(memory_bytes=_size(args.memory))
    one_cpu = MachineLimits(cpus=host_cpus()[-1:])
    cgroup.check_available(MachineLimits(memory_bytes=_size(args.memory), cpus=one_cpu.cpus))
    root = Path(tempfile.mkdtemp(prefix="pgvbench-machine-"))
    server = EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks")
    started = time.perf_counter()
    try:
        server.ensure_started(fresh=True, owner="run")
        _conf(server, "256MB")
        server.stop()
        server.ensure_started(owner="run")
        print(f"loading {args.rows:,} x {args.dim} and building HNSW ...", flush=True)
        data = _load(server, args.rows, args.dim)
        print(f"  {data}", flush=True)
        report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, **data}
        report["load_before"] = os.getloadavg()
        if args.only != "cpus":
            print(f"cache cliff: memory_limit {args.memory} vs none (shared_buffers 32MB)")
            _conf(server, "32MB")
            report["cliff"] = _compare(
                server,
                {"unlimited": None, "limited": limits_memory},
                args,
                prewarm="read",
                seed=1,
                clients=args.clients,
            )
        if args.only != "cliff":
            print("per-core throughput: cpus = 1 vs every CPU (shared_buffers 512MB, prewarmed)")
            _conf(server, "512MB")
            report["cpus"] = _compare(
                server,
                {"unlimited": None, "cpus_1": one_cpu},
                args,
                prewarm="buffer",
                seed=2,
                clients=args.cpu_clients,
            )
        report["load_after"] = os.getloadavg()
        report["elapsed_s"] = round(time.perf_counter() - started)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "machine_limits.json").write_text(json.dumps(report, indent=2) + "\n")
    for part in [p for p in ("cliff", "cpus") if p in report]:
        print(f"{part}: median per arm {json.dumps(report[part]['median'])}")
        ratio = next(v for k, v in report[part].items() if k.startswith("qps_ratio"))
        print(f"{part}: QPS ratio {ratio}")
    print(f"written: {args.out / 'machine_limits.json'} ({report['elapsed_s']} s)")
    return 0


def _size(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise SystemExit(f"--memory {text!r}: give a size such as 160MB")
    return size


if __name__ == "__main__":
    sys.exit(main())
