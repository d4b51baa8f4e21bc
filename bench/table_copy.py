"""source = "table": which copy method is faster, INSERT ... SELECT or COPY between sessions?

Both copy a user's table (vectors + an int label + a text[] of tags) into pgvbench's
items table inside one REPEATABLE READ snapshot (db/table_copy.py):

- ``insert_select``: ``INSERT INTO items SELECT ...`` in the snapshot's own transaction;
- ``copy``: ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)`` in the snapshot's session,
  streamed through the client into ``COPY items FROM STDIN (FORMAT BINARY)`` in a second
  session (each chunk written as it arrives).

The two alternate on the same table, in a random order per round (analysis.interleave),
and the ratio is the geometric mean of the per-round ratios with its t interval
(analysis.paired): the seconds are the copy statement(s) alone, not the counts and
checksums around them. Run::

    python bench/table_copy.py                       # a throwaway embedded server
    python bench/table_copy.py --rows 200000 --dim 768 --rounds 8
    python bench/table_copy.py --dsn postgresql://...  # makes (and drops) schemas
                                                       # bench_user, bench_table_copy

Measured here (2 cores, the embedded PostgreSQL 18 + pgvector 0.8, shared_buffers 512MB),
while other engineers' test suites ran on the same machine (load average 3-5, which is why
the methods alternate in a random order per round and only the paired ratio is quoted)::

    python bench/table_copy.py --rows 100000 --dim 384 --rounds 10
    insert_select median 1.90 s   copy median 2.77 s
    copy / insert_select = 1.53x [1.20, 1.94] (95% CI, 10 rounds, p = 0.003)

    python bench/table_copy.py --rows 30000 --dim 1536 --rounds 8    # load average 5-8
    insert_select median 3.18 s   copy median 4.82 s
    copy / insert_select = 1.36x [1.08, 1.70] (95% CI, 8 rounds, p = 0.015)

    (an earlier 6-round 100k x 384 run, before the checksum used vector_send: 1.27x
    [0.95, 1.70], p = 0.09)

so copy_method = "auto" is INSERT ... SELECT (datasets.table_source.AUTO_METHOD): the
rows stay inside the server, while COPY sends every row out to the client and back in
(two protocol encodings and a second backend's parse of the binary rows). The counts and
the two checksums around either copy take about as long again as the copy itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pgvbench.analysis.interleave import schedule
from pgvbench.analysis.paired import paired_ratio
from pgvbench.datasets import generate_clustered
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import ensure_schema
from pgvbench.db.table_catalog import inspect_table
from pgvbench.db.table_copy import copy_table
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import temporary_server

METHODS = ("insert_select", "copy")


@contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    with temporary_server("pgvbench-table-copy-") as server:
        server.apply_settings({"shared_buffers": "512MB", "max_wal_size": "4GB"}, source="bench")
        yield server.dsn()


def _user_table(dsn: str, rows: int, dim: int) -> None:
    data = generate_clustered(
        n=rows, dim=dim, n_queries=1, clusters=64, spread=0.3, seed=1, metric=Metric.L2
    )
    with connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE SCHEMA bench_user")  # fails if it exists: nothing is replaced
        conn.execute(
            f"CREATE TABLE bench_user.docs (id bigint PRIMARY KEY, embedding vector({dim}), "
            "label int GENERATED ALWAYS AS ((id * 7919) % 100) STORED, "
            "tags text[] GENERATED ALWAYS AS (ARRAY['t' || (id % 7), 'u' || (id % 3)]) STORED)"
        )
    load_vectors(dsn, "bench_user", "docs", data.base)
    with connect(dsn) as conn:
        conn.execute("VACUUM ANALYZE bench_user.docs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="an external server (default: a throwaway embedded one)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    with _server(args.dsn) as dsn:
        print(f"user table: {args.rows:,} x {args.dim} (+ int label, text[] tags)", flush=True)
        _user_table(dsn, args.rows, args.dim)
        with connect(dsn) as conn:
            ensure_schema(conn, "bench_table_copy")
            src = inspect_table(
                conn,
                table="bench_user.docs",
                column="embedding",
                id_column="id",
                attributes=["label", "tags"],
                metric=Metric.L2,
            )
        seconds: dict[str, list[float]] = {m: [] for m in METHODS}
        checksums: set[str] = set()
        for number, order in enumerate(schedule(METHODS, args.rounds, seed=args.seed), 1):
            for method in order:
                start = time.perf_counter()
                snap = copy_table(
                    dsn,
                    src,
                    schema="bench_table_copy",
                    table="items",
                    seed=1,
                    sample=None,
                    held_out=0,
                    method=method,
                )
                total = time.perf_counter() - start
                seconds[method].append(snap.seconds)
                checksums.add(snap.checksum)
                print(
                    f"round {number}: {method:<13} copy {snap.seconds:6.2f} s "
                    f"(with counts and checksums {total:6.2f} s)",
                    flush=True,
                )
        if len(checksums) != 1:
            print(f"the copies differ: {checksums}", file=sys.stderr)
            return 1
        for method in METHODS:
            print(f"{method:<13} median {statistics.median(seconds[method]):.2f} s")
        ratio = paired_ratio(seconds["insert_select"], seconds["copy"])
        low = f"{ratio.low:.2f}" if ratio.low is not None else "-"
        high = f"{ratio.high:.2f}" if ratio.high is not None else "-"
        print(
            f"copy / insert_select = {ratio.ratio:.2f}x [{low}, {high}] "
            f"(95% CI over {ratio.rounds} rounds, p = {ratio.p_value}); per round: "
            + ", ".join(f"{r:.2f}" for r in ratio.per_round)
        )
        print(f"rows/s insert_select: {args.rows / np.median(seconds['insert_select']):,.0f}")
        if args.dsn:
            with connect(dsn) as conn:
                conn.execute("DROP SCHEMA bench_user CASCADE")
                conn.execute("DROP SCHEMA bench_table_copy CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
