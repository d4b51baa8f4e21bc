"""The pytest plugin (pgvbench.pytest_plugin): its fixtures, with pytest-benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from pgvbench.datasets import generate_clustered
from pgvbench.db.schema import OWNER_MARK, table_exists
from pgvbench.metrics import Metric
from pgvbench.pytest_plugin import SCHEMA, BenchDataset, BenchServer, DatasetFactory

pytestmark = pytest.mark.integration


def _ids(rows: list[list[tuple[Any, ...]]]) -> np.ndarray:
    return np.array([[int(r[0]) for r in qrows] for qrows in rows], dtype=np.int64)


def test_plugin_import_is_side_effect_free() -> None:
    """pytest imports the plugin in every session of a pgvbench user: keep it light."""
    code = (
        "import sys, pgvbench.pytest_plugin; "
        "print(sorted(m for m in ('numpy', 'psycopg', 'faiss', 'pgvbench.server', "
        "'pgvbench.datasets', 'pgvbench.db') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_knn_query_benchmark(
    benchmark: Any, pgvbench_server: BenchServer, pgvbench_dataset: BenchDataset
) -> None:
    ds = pgvbench_dataset
    assert (pgvbench_server.embedded is None) == (pgvbench_server.kind == "external")
    assert ds.server is pgvbench_server and ds.dsn == pgvbench_server.dsn
    assert ds.schema == SCHEMA and ds.table == f"{SCHEMA}.{ds.table_name}"
    assert ds.base.shape == (20_000, 64) and ds.queries.shape == (100, 64)
    assert ds.ground_truth.shape == (100, 10) and ds.k == 10 and ds.operator == "<->"

    with ds.connect() as conn:
        row = conn.execute(f"SELECT count(*), max(id) FROM {ds.table}").fetchone()
        assert row == (20_000, 19_999)
        sql = ds.knn_sql()  # no index on the table: an exact scan

        def run() -> list[list[tuple[Any, ...]]]:
            return [conn.execute(sql, (q,), prepare=True).fetchall() for q in ds.queries]

        rows = benchmark.pedantic(run, rounds=3, warmup_rounds=1)

    ids = _ids(rows)
    assert ids.shape == (100, 10)
    assert ds.recall(ids) >= 0.999  # exact scan in float32 vs float64 ground truth
    assert (ids == ds.ground_truth).mean() >= 0.99
    if not benchmark.disabled:
        assert benchmark.stats is not None
        assert benchmark.stats.stats.rounds == 3 and benchmark.stats.stats.median > 0


def test_dataset_factory_caches_by_parameters(
    pgvbench_dataset_factory: DatasetFactory, pgvbench_dataset: BenchDataset
) -> None:
    assert pgvbench_dataset_factory() is pgvbench_dataset
    small = pgvbench_dataset_factory(n=2000, dim=8, metric="cosine", seed=3, n_queries=20, k=5)
    assert pgvbench_dataset_factory(n=2000, dim=8, metric="cosine", seed=3, n_queries=20, k=5) is (
        small
    )
    other = pgvbench_dataset_factory(n=2000, dim=8, metric="cosine", seed=4, n_queries=20, k=5)
    assert other is not small and other.table != small.table
    assert not np.array_equal(other.base, small.base)
    assert small.operator == "<=>" and small.ground_truth.shape == (20, 5)

    # Deterministic: the same generator call gives the same vectors in a later session.
    again = generate_clustered(
        n=2000,
        dim=8,
        n_queries=20,
        clusters=5,
        spread=1.0,
        seed=3,
        metric=Metric.COSINE,
        intrinsic_dim=8,
    )
    np.testing.assert_array_equal(again.base, small.base)

    with small.connect() as conn:
        assert table_exists(conn, small.schema, small.table_name)
        comment = conn.execute(
            "SELECT obj_description(%s::regnamespace, 'pg_namespace')", (SCHEMA,)
        ).fetchone()
        assert comment == (OWNER_MARK,)
        count = conn.execute(f"SELECT count(*) FROM {small.table}").fetchone()
        assert count == (2000,)
        got = conn.execute(small.knn_sql(), (small.queries[0],)).fetchall()
    assert [r[0] for r in got] == list(small.ground_truth[0])


def test_create_index_is_idempotent_and_used(pgvbench_dataset_factory: DatasetFactory) -> None:
    ds = pgvbench_dataset_factory(n=3000, dim=16, seed=5, n_queries=30)
    hnsw = ds.create_index("hnsw", m=8, ef_construction=32)
    with ds.connect() as conn:
        oid = conn.execute("SELECT %s::regclass::oid", (f"{ds.schema}.{hnsw}",)).fetchone()
        assert ds.create_index("hnsw", m=8, ef_construction=32) == hnsw
        again = conn.execute("SELECT %s::regclass::oid", (f"{ds.schema}.{hnsw}",)).fetchone()
        assert again == oid  # not rebuilt

        ivf = ds.create_index("ivfflat", lists=10)
        names = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
            (ds.table,),
        ).fetchall()
        assert names == [(f"{ds.schema}.{ivf}",)]  # only=True dropped the HNSW index

        conn.execute("SET ivfflat.probes = 10")  # every list: exact
        plan = conn.execute("EXPLAIN " + ds.knn_sql(), (ds.queries[0],)).fetchall()
        assert ivf in "\n".join(r[0] for r in plan)
        ids = _ids([conn.execute(ds.knn_sql(), (q,)).fetchall() for q in ds.queries])
    assert ds.recall(ids) >= 0.999

    with pytest.raises(ValueError, match="index kind"):
        ds.create_index("diskann")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lists"):
        ds.create_index("hnsw", lists=4)


INNER_TEST = """
def test_inner(benchmark, pgvbench_server, pgvbench_dataset_factory):
    assert pgvbench_server.kind == "external" and pgvbench_server.embedded is None
    ds = pgvbench_dataset_factory(n=500, dim=4, n_queries=5, k=3)
    with ds.connect() as conn:
        rows = benchmark(lambda: conn.execute(ds.knn_sql(), (ds.queries[0],)).fetchall())
    assert [r[0] for r in rows] == list(ds.ground_truth[0])
    assert benchmark.stats.stats.rounds > 0
    print("TABLE", ds.table)
"""


def _inner_table(result: pytest.RunResult) -> str:
    tables = re.findall(r"TABLE (\S+)", "\n".join(result.outlines))
    assert len(tables) == 1, result.outlines
    return tables[0]


def test_fixtures_load_through_the_entry_point(
    pytester: pytest.Pytester, pgvbench_server: BenchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No conftest, no -p: the pytest11 entry point provides options and fixtures.

    The inner sessions use this session's server as their external one (--pgvbench-dsn,
    then PGVBENCH_DSN), so they start no server of their own.
    """
    pytester.makepyfile(INNER_TEST)
    monkeypatch.delenv("PGVBENCH_DSN", raising=False)

    result = pytester.runpytest(
        "-s", "-p", "no:cacheprovider", "--pgvbench-dsn", pgvbench_server.dsn
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pgvbench: external server *"])
    schema, table = _inner_table(result).split(".")
    with pgvbench_server.connect() as conn:
        assert not table_exists(conn, schema, table)  # dropped: the server was external

    monkeypatch.setenv("PGVBENCH_DSN", pgvbench_server.dsn)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_external_dsn_failure_never_shows_the_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(INNER_TEST)
    monkeypatch.delenv("PGVBENCH_DSN", raising=False)
    dsn = "postgresql://bench:s3cr3t-pw@127.0.0.1:1/bench"  # nothing listens on port 1
    result = pytester.runpytest("-p", "no:cacheprovider", "--showlocals", "--pgvbench-dsn", dsn)
    result.assert_outcomes(errors=1)
    output = "\n".join(result.outlines + result.errlines)
    assert "s3cr3t-pw" not in output
    assert "s3cr3t-pw" not in repr(BenchServer(dsn=dsn, kind="external"))
    assert "cannot connect to" in output and "password=***" in output
