"""Loading attribute columns with the vectors: one binary COPY, or a staging table?

pgvbench loads a dataset's attributes (labels, tags, dates) in the same COPY BINARY as the
vectors (db/copy_binary.py: fixed-width attributes extend the numpy record, the others are
appended per row). The alternative is to keep the vectors-only COPY, COPY the attributes
into an UNLOGGED staging table, and build the items table server-side with
``INSERT ... SELECT ... JOIN``. Arms, alternating in a random order per round
(analysis.interleave), each into a fresh table after a CHECKPOINT:

- ``vectors``: the vectors alone (the rate without attributes);
- ``one_copy``: vectors + an int label + a text label + a text[] of tags, one COPY;
- ``staging``: the vectors COPY, the attributes by COPY into a staging table, then the
  join into the final table.

Run::

    python bench/attribute_load.py                      # a throwaway embedded server
    python bench/attribute_load.py --rows 1000000 --dim 128 --rounds 5

Measured here (2 cores, embedded PostgreSQL 18 + pgvector 0.8, shared_buffers 512MB),
while other engineers' test suites ran (load average 6-7, so only the per-round ratios are
quoted)::

    python bench/attribute_load.py --rows 1000000 --rounds 3
    vectors   median   4.49 s     222,822 rows/s
    one_copy  median   6.07 s     164,811 rows/s
    staging   median  25.27 s      39,574 rows/s
    one_copy / vectors seconds = 1.33x (per round: 1.43, 1.29, 1.27)
    staging / one_copy seconds = 4.33x (per round: 5.71, 3.41, 4.16)

(the staging arm's attribute COPY is psycopg's write_row; with a prebuilt text payload
instead it was still 3.5x the one COPY in an earlier run)
so attributes ride in the vectors' COPY: the staging route writes every 512-byte vector
twice (once into a vectors table, again through the join) and adds a text COPY.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pgvbench.analysis.interleave import schedule
from pgvbench.analysis.paired import paired_ratio
from pgvbench.datasets.attribute_values import objects
from pgvbench.datasets.attributes import Attribute
from pgvbench.db.load import load_vectors
from pgvbench.db.schema import create_vector_table, drop_owned_table, ensure_schema
from pgvbench.server.connection import connect
from pgvbench.server.embedded import temporary_server

ARMS = ("vectors", "one_copy", "staging")
SCHEMA = "bench_attribute_load"


@contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    with temporary_server("pgvbench-attribute-load-") as server:
        server.apply_settings({"shared_buffers": "512MB", "max_wal_size": "4GB"}, source="bench")
        yield server.dsn()


def _attributes(rows: int) -> list[Attribute]:
    rng = np.random.default_rng(0)
    attrs = [
        Attribute(name="label", kind="int", values=rng.integers(0, 100, rows)),
        Attribute(
            name="lang", kind="text", values=objects(f"lang{i}" for i in rng.integers(0, 50, rows))
        ),
        Attribute(
            name="tags",
            kind="text[]",
            values=objects((f"t{i}", "x") for i in rng.integers(0, 20, rows)),
        ),
    ]
    return [a.checked(rows, 0, "bench") for a in attrs]


def _staging(dsn: str, vectors: np.ndarray, attrs: list[Attribute]) -> None:
    dim = vectors.shape[1]
    with connect(dsn) as conn:
        create_vector_table(conn, SCHEMA, "vecs", dim)
        conn.execute(
            f"CREATE UNLOGGED TABLE {SCHEMA}.stage "
            "(id bigint, label bigint, lang text, tags text[])"
        )
    load_vectors(dsn, SCHEMA, "vecs", vectors)
    label, lang, tags = (a.values.tolist() for a in attrs)
    with connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {SCHEMA}.stage FROM STDIN") as copy:
            for i in range(vectors.shape[0]):
                copy.write_row((i, label[i], lang[i], list(tags[i])))
        create_vector_table(conn, SCHEMA, "items", dim, attrs)
        conn.execute(
            f"INSERT INTO {SCHEMA}.items SELECT v.id, v.embedding, s.label, s.lang, s.tags "
            f"FROM {SCHEMA}.vecs v JOIN {SCHEMA}.stage s USING (id)"
        )
        conn.execute(f"DROP TABLE {SCHEMA}.stage")
        drop_owned_table(conn, SCHEMA, "vecs")


def _round(dsn: str, arm: str, vectors: np.ndarray, attrs: list[Attribute]) -> float:
    with connect(dsn) as conn:
        drop_owned_table(conn, SCHEMA, "items")
        if arm != "staging":
            create_vector_table(
                conn, SCHEMA, "items", vectors.shape[1], attrs if arm == "one_copy" else ()
            )
        conn.execute("CHECKPOINT")
    start = time.perf_counter()
    if arm == "staging":
        _staging(dsn, vectors, attrs)
    else:
        load_vectors(dsn, SCHEMA, "items", vectors, attributes=attrs if arm == "one_copy" else ())
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="an external server (default: a throwaway embedded one)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    vectors = np.random.default_rng(1).standard_normal((args.rows, args.dim), dtype=np.float32)
    attrs = _attributes(args.rows)
    seconds: dict[str, list[float]] = {a: [] for a in ARMS}
    with _server(args.dsn) as dsn:
        with connect(dsn) as conn:
            ensure_schema(conn, SCHEMA)
        for number, order in enumerate(schedule(ARMS, args.rounds, seed=args.seed), 1):
            for arm in order:
                seconds[arm].append(_round(dsn, arm, vectors, attrs))
                print(f"round {number}: {arm:<9} {args.rows / seconds[arm][-1]:>10,.0f} rows/s")
        for arm in ARMS:
            median = statistics.median(seconds[arm])
            print(f"{arm:<9} median {median:6.2f} s  {args.rows / median:>10,.0f} rows/s")
        for a, b in (("vectors", "one_copy"), ("one_copy", "staging")):
            r = paired_ratio(seconds[a], seconds[b])
            print(
                f"{b} / {a} seconds = {r.ratio:.2f}x (per round: "
                + ", ".join(f"{x:.2f}" for x in r.per_round)
                + ")"
            )
        if args.dsn:
            with connect(dsn) as conn:
                conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
