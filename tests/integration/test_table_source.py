"""source = "table": a user's table outside pgvbench's schema benchmarked read only.

The user's table (vectors, an int label, a timestamptz, a text[] of tags, an HNSW index
with cosine ops, a grant to another role) must be exactly as it was afterwards: rows,
checksum, relations, indexes and privileges; pgvbench's objects only in its schema.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgvector.psycopg import register_vector

from pgvbench.datasets.table_source import TableSourceInfo
from pgvbench.progress import Reporter
from pgvbench.report.render import render_report
from pgvbench.results import Results
from pgvbench.runner.vector import VectorRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import load_spec
from pgvbench.studies.filtered import VECTOR_STUDY
from support import write_toml

pytestmark = pytest.mark.integration

ROWS, DIM, HELD_OUT, SAMPLE = 1200, 16, 60, 1000


def make_user_table(dsn: str, schema: str, table: str, reader: str) -> None:
    """The user's table: ids not 0..n-1, labels, times, tags; cosine HNSW; a grant."""
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(8, DIM))
    vectors = (centers[rng.integers(0, 8, ROWS)] + rng.normal(scale=0.4, size=(ROWS, DIM))).astype(
        np.float32
    )
    with connect(dsn) as conn:
        register_vector(conn)
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.{table} (id bigint PRIMARY KEY, embedding vector({DIM}), "
            "label int NOT NULL, published_at timestamptz, tags text[])"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {schema}.{table} VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        1000 + 7 * i,
                        vectors[i],
                        int(i % 5),
                        _published(i),
                        ["a", "b"] if i % 3 == 0 else (["c"] if i % 3 == 1 else None),
                    )
                    for i in range(ROWS)
                ],
            )
        conn.execute(
            f"CREATE INDEX {table}_hnsw ON {schema}.{table} "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 4, ef_construction = 16)"
        )
        conn.execute(f"DROP ROLE IF EXISTS {reader}")
        conn.execute(f"CREATE ROLE {reader}")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {reader}")
        conn.execute(f"GRANT SELECT ON {schema}.{table} TO {reader}")


def _published(i: int) -> str | None:
    if i % 11 == 0:
        return None
    return "2024-01-01 00:00:00+00" if i % 2 else f"2025-06-{1 + i % 28:02d} 12:00:00+02"


def user_state(dsn: str, schema: str, table: str, ours: str) -> dict[str, Any]:
    """Everything a benchmark must not change, and every relation outside pgvbench's schema."""
    with connect(dsn) as conn:

        def rows(query: str, *params: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(query, params).fetchall()]

        return {
            "data": rows(
                "SELECT count(*), sum(hashtextextended(t::text, 0)::numeric) "
                f"FROM {schema}.{table} t"
            ),
            "classes": rows(
                "SELECT c.relname, c.relkind, c.relowner, c.relacl::text, c.relfilenode, "
                "obj_description(c.oid, 'pg_class') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1",
                schema,
            ),
            "indexes": rows(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisunique, "
                "indisvalid FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
                f"{schema}.{table}",
            ),
            "schema": rows(
                "SELECT nspowner, nspacl::text, obj_description(oid, 'pg_namespace') "
                "FROM pg_namespace WHERE nspname = %s",
                schema,
            ),
            "outside": rows(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname NOT IN "
                "('pg_catalog', 'information_schema', 'pg_toast', %s) "
                "AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%' "
                "ORDER BY 1, 2",
                ours,
            ),
        }


def table_spec(name: str, schema: str, table: str) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "seed": 11, "schema": f"s_{name}"},
        "dataset": {
            "source": "table",
            "table": f"{schema}.{table}",
            "attributes": ["label", "published_at", "tags"],
            "sample": SAMPLE,
            "queries_from": "sample",
            "queries": HELD_OUT,
        },
        "query": {"k": 10, "recall_queries": 30, "warmup_seconds": 0.05, "measure_seconds": 0.2},
        "index": [
            {"kind": "none"},
            {"kind": "hnsw", "m": 4, "ef_construction": 16, "ef_search": [10, 40]},
        ],
    }


# Each entry adds tables to the spec: the [filtered] variant is one more line here.
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "filtered": {"filtered": {"ef_search": [10], "queries_per_bucket": 5, "measure_seconds": 0.1}},
}


@pytest.mark.parametrize("extra", list(VARIANTS.values()), ids=list(VARIANTS))
def test_user_table_is_benchmarked_read_only(
    embedded_server: EmbeddedServer, unique_name: str, tmp_path: Path, extra: dict[str, Any]
) -> None:
    dsn = embedded_server.dsn()
    schema, table = "app", f"documents_{unique_name}"
    make_user_table(dsn, schema, table, f"reader_{unique_name}")
    spec_data = copy.deepcopy(table_spec(unique_name, schema, table)) | extra
    ours = spec_data["experiment"]["schema"]
    before = user_state(dsn, schema, table, ours)

    spec = load_spec(write_toml(tmp_path / "table.toml", spec_data))
    runner = VectorRunner(
        spec,
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    results: Results = runner.run(Target(dsn, "embedded"))

    assert results.status == "complete"
    # the user's table, its indexes, privileges and schema are as they were
    assert user_state(dsn, schema, table, ours) == before
    assert before["classes"] and before["indexes"] and "reader_" in before["classes"][0][3]

    info = results.dataset
    assert info is not None and info.source == "table" and info.name == f"{schema}.{table}"
    assert info.n == SAMPLE and info.n_queries == HELD_OUT and info.dim == DIM
    assert info.metric == "cosine"
    assert info.table_source is not None
    record = TableSourceInfo.from_dict(info.table_source)
    assert record.metric_from == f"index {table}_hnsw (vector_cosine_ops)"
    assert (record.rows_in_source, record.rows_copied, record.held_out) == (ROWS, SAMPLE, HELD_OUT)
    assert record.vector_type == "vector" and record.dim == DIM
    assert record.queries_from == "held-out rows" and record.seed == 11
    assert record.copy_method in ("insert_select", "copy") and record.copy_seconds > 0
    assert results.load is not None and results.load.rows == SAMPLE
    exact = [p for p in results.runs if p.index_kind == "none"]
    assert exact and exact[0].recall is not None and exact[0].recall.mean == 1.0
    if "filtered" in extra:  # the labels, times and tags of the user's table, filtered on
        assert results.tuning is not None and results.tuning.filtered is not None
        study = VECTOR_STUDY.load(results)
        assert study is not None and study.winners
        assert any(b.queries for b in study.comparison.buckets)

    report = render_report(results, tmp_path / "report").md.read_text(encoding="utf-8")
    assert "### Source table" in report and record.checksum in report
    assert f"from index {table}_hnsw (vector_cosine_ops)" in report
    assert f"{HELD_OUT:,} held-out rows of the table, not in the copy" in report

    data = runner.data
    assert data is not None
    dataset = data.dataset
    kinds = {a.name: a.kind for a in dataset.attributes}
    assert kinds == {"label": "int", "published_at": "timestamp", "tags": "text[]"}
    with connect(dsn) as conn:
        register_vector(conn)
        # the copy is the checksummed selection; every copied row is a row of the user's
        copied = conn.execute(
            "SELECT count(*), count(DISTINCT id), min(id), max(id), "
            "sum(hashtextextended(concat(id, ':', encode(vector_send(embedding), 'base64'), "
            "':', ROW(label, published_at, tags)::text), 0)::numeric)::text "
            f"FROM {ours}.{unique_name}_items"
        ).fetchone()
        assert copied is not None
        assert tuple(copied) == (SAMPLE, SAMPLE, 0, SAMPLE - 1, record.checksum)
        found = conn.execute(
            f"SELECT count(*) FROM {ours}.{unique_name}_items i JOIN {schema}.{table} u "
            "USING (embedding)"
        ).fetchone()
        assert found is not None and found[0] == SAMPLE
        types = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            (f"{ours}.{unique_name}_items",),
        ).fetchall()
        assert [tuple(t) for t in types] == [
            ("id", "bigint"),
            ("embedding", f"vector({DIM})"),
            ("label", "bigint"),
            ("published_at", "timestamp with time zone"),
            ("tags", "text[]"),
        ]
        # the held-out queries are rows of the user's table, none of them in the copy, and
        # each carries its own row's label
        label = dataset.attribute("label")
        assert label is not None and label.query_values is not None
        for i, vec in enumerate(dataset.queries):
            row = conn.execute(
                f"SELECT label, (SELECT count(*) FROM {ours}.{unique_name}_items "
                f"WHERE embedding = %s) FROM {schema}.{table} WHERE embedding = %s",
                (vec, vec),
            ).fetchone()
            assert row is not None, f"query {i} is not a row of the user's table"
            assert row[1] == 0, f"query {i} is in the copy"
            assert row[0] == label.query_values[i]
        # the base rows' attributes are their source rows' (id order = copy order)
        tags = dataset.attribute("tags")
        assert tags is not None
        for i in (0, 1, SAMPLE - 1):
            row = conn.execute(
                f"SELECT label, tags FROM {schema}.{table} WHERE embedding = %s",
                (dataset.base[i],),
            ).fetchone()
            assert row is not None and row[0] == label.values[i]
            assert (None if row[1] is None else tuple(row[1])) == tags.values[i]
