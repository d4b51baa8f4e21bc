"""Attribute columns in pgvbench's items table: types, values and NULLs as the dataset
has them, loaded in the same binary COPY as the vectors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pgvbench.datasets.attributes import Attribute
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.progress import Reporter
from pgvbench.report.markdown import to_markdown
from pgvbench.report.sections.setup import dataset_section
from pgvbench.results import Results, load_results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec

pytestmark = pytest.mark.integration

N, DIM = 300, 5


def _attributes() -> list[Attribute]:
    rng = np.random.default_rng(3)
    ints = rng.integers(0, 7, N)
    floats = rng.random(N)
    floats[5] = np.nan  # a NULL makes the float column take the per-row path
    stamps = np.datetime64("2024-01-01T00:00:00", "us") + rng.integers(0, 10**9, N).astype(
        "timedelta64[s]"
    )
    stamps[7] = np.datetime64("NaT")
    text = np.array([None if i == 3 else f"lang-{i % 4}é" for i in range(N)], dtype=object)
    tags = np.empty(N, dtype=object)
    tags[:] = [() if i == 4 else (f"t{i % 3}", None if i == 9 else "x") for i in range(N)]
    nums = np.empty(N, dtype=object)
    nums[:] = [None if i == 2 else tuple(range(i % 4)) for i in range(N)]
    blobs = np.array([None if i == 1 else f'{{"k": {i}}}' for i in range(N)], dtype=object)
    return [
        Attribute(name="label", kind="int", values=ints),
        Attribute(name="score", kind="float", values=floats),
        Attribute(name="ok", kind="bool", values=ints % 2 == 0),
        Attribute(name="lang", kind="text", values=text),
        Attribute(name="published_at", kind="timestamp", values=stamps),
        Attribute(name="tags", kind="text[]", values=tags),
        Attribute(name="nums", kind="int[]", values=nums),
        Attribute(name="meta", kind="jsonb", values=blobs),
    ]


def _checked(attrs: list[Attribute]) -> list[Attribute]:
    return [a.checked(N, 0, "test") for a in attrs]


def _expected(attr: Attribute, i: int) -> Any:
    v = attr.values[i]
    if attr.kind == "float":
        return None if np.isnan(v) else float(v)
    if attr.kind == "timestamp":
        if np.isnat(v):
            return None
        us = int(v.astype("datetime64[us]").astype(np.int64))
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    if attr.kind in ("text[]", "int[]"):
        return None if v is None else list(v)
    if attr.kind == "jsonb":
        return None if v is None else {"k": i}
    return v.item() if isinstance(v, np.generic) else v


@pytest.mark.parametrize("streams", [1, 2])
def test_attribute_columns_types_and_values(
    embedded_server: EmbeddedServer, unique_name: str, streams: int
) -> None:
    attrs = _checked(_attributes())
    vectors = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
    schema = f"s_{unique_name}"
    dsn = embedded_server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, "items", DIM, attrs)
    load_vectors(dsn, schema, "items", vectors, streams=streams, attributes=attrs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET timezone = 'UTC'")
        types = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            (f"{schema}.items",),
        ).fetchall()
        assert types == [
            ("id", "bigint"),
            ("embedding", f"vector({DIM})"),
            ("label", "bigint"),
            ("score", "double precision"),
            ("ok", "boolean"),
            ("lang", "text"),
            ("published_at", "timestamp with time zone"),
            ("tags", "text[]"),
            ("nums", "bigint[]"),
            ("meta", "jsonb"),
        ]
        names = ", ".join(a.name for a in attrs)
        rows = conn.execute(
            f"SELECT id, embedding::text, {names} FROM {schema}.items ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == list(range(N))
    for row in rows:
        i = row[0]
        got = np.array([float(x) for x in row[1].strip("[]").split(",")], dtype=np.float32)
        assert np.array_equal(got, vectors[i])
        for attr, value in zip(attrs, row[2:], strict=True):
            assert value == _expected(attr, i), (attr.name, i, value)


def test_no_attributes_keeps_the_two_column_table(
    embedded_server: EmbeddedServer, unique_name: str
) -> None:
    schema = f"s_{unique_name}"
    dsn = embedded_server.dsn()
    vectors = np.ones((10, 3), dtype=np.float32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, "items", 3)
    load_vectors(dsn, schema, "items", vectors)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), (SELECT count(*) FROM pg_attribute WHERE attrelid = "
            f"'{schema}.items'::regclass AND attnum > 0) FROM {schema}.items"
        ).fetchone()
    assert row == (10, 2)


# --- a whole run: labels from the user's files end up as columns of the items table ----


def _run(server: EmbeddedServer, spec_data: dict[str, Any], tmp_path: Path) -> Results:
    spec = parse_spec(spec_data, source=tmp_path / "spec.toml")
    runner = ExperimentRunner(
        spec,
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    return runner.run(Target(server.dsn(), "embedded"))


def _small_run(spec: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    spec["dataset"] = dataset
    spec["query"]["recall_queries"] = 10
    spec["index"] = [{"kind": "none"}]
    return spec


def _items(server: EmbeddedServer, spec: dict[str, Any], columns: str) -> list[tuple[Any, ...]]:
    table = f"{spec['experiment']['schema']}.{spec['experiment']['name']}_items"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return conn.execute(f"SELECT id, {columns} FROM {table} ORDER BY id").fetchall()


def _types(server: EmbeddedServer, spec: dict[str, Any]) -> list[tuple[str, str]]:
    table = f"{spec['experiment']['schema']}.{spec['experiment']['name']}_items"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            (table,),
        ).fetchall()


def test_hdf5_labels_become_columns_of_the_items_table(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    n, nq = 400, 20
    labels = rng.integers(0, 9, n)
    multi = rng.integers(0, 50, (n, 3))
    path = tmp_path / "labelled.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=rng.standard_normal((n, 8)).astype(np.float32))
        f.create_dataset("test", data=rng.standard_normal((nq, 8)).astype(np.float32))
        f.create_dataset("train_labels", data=labels)
        f.create_dataset("test_labels", data=rng.integers(0, 9, nq))
        f.create_dataset("train_tags", data=multi)
        f.create_dataset("train_note", data=np.array([b"x"] * n))
    spec = _small_run(
        tiny_spec,
        {
            "source": "hdf5",
            "path": "labelled.hdf5",
            "attributes": {"label": "train_labels", "tags": "train_tags"},
        },
    )
    results = _run(embedded_server, spec, tmp_path)
    assert _types(embedded_server, spec) == [
        ("id", "bigint"),
        ("embedding", "vector(8)"),
        ("label", "bigint"),
        ("tags", "bigint[]"),
    ]
    rows = _items(embedded_server, spec, "label, tags")
    assert [r[0] for r in rows] == list(range(n))
    assert [r[1] for r in rows] == labels.tolist()  # a row's label in SQL is the file's
    assert [r[2] for r in rows] == multi.tolist()
    assert results.dataset is not None and results.dataset.attributes is not None
    label = results.dataset.attributes[0]
    assert label["name"] == "label" and label["query_values"] is True
    assert label["distinct"] == len(set(labels.tolist()))
    assert results.dataset.attributes_unloaded == ["train_note"]
    reloaded = load_results(tmp_path / "out" / "results.json").dataset
    assert reloaded is not None and reloaded.attributes == results.dataset.attributes
    assert reloaded.attributes_unloaded == ["train_note"]
    report = to_markdown(dataset_section(results.dataset))
    assert "### Attributes" in report and "train_note" in report
    assert "train_tags in labelled.hdf5" in report


def test_parquet_columns_run_loads_text_and_timestamps(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(6)
    n, nq = 300, 15
    langs = [["en", "de", "fr", None][i % 4] for i in range(n)]
    when = [dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(n)]
    base = rng.standard_normal((n, 8)).astype(np.float32)
    pq.write_table(
        pa.table(
            {
                "embedding": pa.array(base.tolist(), type=pa.list_(pa.float32())),
                "lang": langs,
                "published_at": pa.array(when, type=pa.timestamp("us", tz="UTC")),
            }
        ),
        tmp_path / "items.parquet",
    )
    queries = rng.standard_normal((nq, 8)).astype(np.float32).tolist()
    pq.write_table(
        pa.table({"embedding": pa.array(queries, type=pa.list_(pa.float32()))}),
        tmp_path / "queries.parquet",
    )
    spec = _small_run(
        tiny_spec,
        {
            "source": "parquet",
            "layout": "columns",
            "base": "items.parquet",
            "queries_file": "queries.parquet",
            "attributes": ["lang", "published_at"],
            "metric": "l2",
        },
    )
    _run(embedded_server, spec, tmp_path)
    assert _types(embedded_server, spec)[2:] == [
        ("lang", "text"),
        ("published_at", "timestamp with time zone"),
    ]
    rows = _items(embedded_server, spec, "lang, published_at, embedding::text")
    assert [r[1] for r in rows] == langs
    assert [r[2] for r in rows] == when
    got = np.array([[float(x) for x in r[3].strip("[]").split(",")] for r in rows])
    assert np.array_equal(got.astype(np.float32), base)


def test_vectordbbench_folder_runs_with_its_neighbours_and_labels(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    n, nq, k = 250, 12, 10
    base = rng.standard_normal((n, 8)).astype(np.float32)
    queries = rng.standard_normal((nq, 8)).astype(np.float32)
    ids = 500 + rng.permutation(n)  # VectorDBBench ids need not be row numbers
    folder = tmp_path / "vdb"
    folder.mkdir()
    emb = pa.list_(pa.float32())
    pq.write_table(
        pa.table({"id": ids, "emb": pa.array(base.tolist(), emb)}), folder / "train.parquet"
    )
    pq.write_table(
        pa.table({"id": np.arange(nq), "emb": pa.array(queries.tolist(), emb)}),
        folder / "test.parquet",
    )
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    nearest = ids[np.argsort(d, axis=1)[:, :k]]
    pq.write_table(
        pa.table({"id": np.arange(nq), "neighbors_id": pa.array(nearest.tolist())}),
        folder / "neighbors.parquet",
    )
    pq.write_table(
        pa.table({"id": ids[::-1], "labels": [f"label_{i % 5}" for i in ids[::-1]]}),
        folder / "scalar_labels.parquet",
    )
    spec = _small_run(
        tiny_spec,
        {"source": "parquet", "layout": "vectordbbench", "path": "vdb", "metric": "l2"},
    )
    results = _run(embedded_server, spec, tmp_path)
    assert results.dataset is not None and results.dataset.ground_truth is not None
    assert "file neighbors" in results.dataset.ground_truth.method
    exact = next(p for p in results.runs if p.index_kind == "none")
    assert exact.recall is not None and exact.recall.mean == 1.0
    rows = _items(embedded_server, spec, "labels")
    assert [r[1] for r in rows] == [f"label_{i % 5}" for i in ids]  # joined by id, row order
