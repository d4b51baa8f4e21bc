"""Top-10 query latency of HNSW and IVFFlat at fixed parameters (pytest-benchmark).

The pytest plugin's default dataset (20k x 64 clustered, l2, seed 42) and its 100
queries: one benchmark round runs all 100 once, each as a prepared statement on one
connection, so the figure is the time of 100 queries (extra_info has per-query ms
and QPS). ``nox -s bench`` compares it with the previous saved run. Recall against
the exact ground truth and the plan are asserted, so that a broken or unused index
fails instead of looking fast. Run with ``pytest bench``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.pytest_plugin import BenchDataset

K = 10
ROUNDS, WARMUP_ROUNDS = 30, 3
MIN_RECALL = 0.9


@dataclasses.dataclass(frozen=True)
class IndexCase:
    kind: str
    params: dict[str, int]
    setting: str  # query-time knob
    value: int


CASES = [
    IndexCase("hnsw", {"m": 16, "ef_construction": 64}, "hnsw.ef_search", 40),
    IndexCase("ivfflat", {"lists": 100}, "ivfflat.probes", 10),
]


def _plan_indexes(conn: psycopg.Connection[Any], explain: str, *params: Any) -> list[str]:
    """Index names in an ``EXPLAIN (FORMAT JSON ...)`` plan."""
    row = conn.execute(explain, params or None).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.append(str(node["Index Name"]))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_query_latency(benchmark: Any, pgvbench_dataset: BenchDataset, case: IndexCase) -> None:
    ds = pgvbench_dataset
    index = ds.create_index(case.kind, **case.params)  # type: ignore[arg-type]
    sql = ds.knn_sql(K)
    with ds.connect() as conn:
        conn.execute("SELECT set_config(%s, %s, false)", (case.setting, str(case.value)))
        assert _plan_indexes(conn, f"EXPLAIN (FORMAT JSON) {sql}", ds.queries[0]) == [index]
        if conn.info.server_version >= 160000:
            # A prepared statement may switch to the generic plan after 5 runs: check it too.
            generic = f"EXPLAIN (FORMAT JSON, GENERIC_PLAN) {sql.replace('%s', '$1')}"
            assert _plan_indexes(conn, generic) == [index]

        def run() -> list[list[tuple[Any, ...]]]:
            return [conn.execute(sql, (q,), prepare=True).fetchall() for q in ds.queries]

        benchmark.group = (
            f"query latency {ds.n}x{ds.dim} {ds.metric.value}, {len(ds.queries)} queries, k={K}"
        )
        results = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)

    ids = np.array([[int(r[0]) for r in rows] for rows in results], dtype=np.int64)
    assert ids.shape == (len(ds.queries), K)
    recall = ds.recall(ids, K)
    benchmark.extra_info.update(
        index=case.kind,
        **case.params,
        **{case.setting: case.value},
        k=K,
        queries_per_round=len(ds.queries),
        recall=round(recall, 4),
    )
    if not benchmark.disabled:
        median = benchmark.stats.stats.median
        benchmark.extra_info.update(
            per_query_ms=round(1000 * median / len(ds.queries), 4),
            qps=round(len(ds.queries) / median, 1),
        )
    assert recall >= MIN_RECALL, f"{case.kind}: recall@{K} {recall:.3f} < {MIN_RECALL}"
