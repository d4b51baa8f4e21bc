"""Attribute columns in pgvbench's items table: types, values and NULLs as the dataset
has them, loaded in the same binary COPY as the vectors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets.attributes import Attribute
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.server.embedded import EmbeddedServer

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
