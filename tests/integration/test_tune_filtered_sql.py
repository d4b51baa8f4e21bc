"""[tune] filter on the embedded server: each predicate's condition SQL, with its text
parameters, run as the tuner's top-k query. The exact scan returns the filtered ground
truth (recall 1.0 for every predicate: the casts and the text forms of labels, times and
tags read back as drawn); on an HNSW index the iterative scan (relaxed order) reaches the
filtered truth at ef_search 200 where the plain scan runs out of rows on a selective
label; the GUC names are pgvector's, and IVFFlat refuses strict order as the module says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets.base import Dataset
from pgvbench.datasets.synthetic import generate_clustered
from pgvbench.datasets.synthetic_labels import with_labels
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.labels import LabelsSpec
from pgvbench.studies.tune.filtered import (
    FilterTarget,
    filter_target,
    filtered_recall_per_query,
    iterative_scan_settings,
)

pytestmark = pytest.mark.integration

N, NQ, NR, DIM, K = 3000, 120, 40, 16, 10
COLUMNS = ("label", "category", "published_at", "tags")


def _dataset() -> Dataset:
    ds = generate_clustered(
        n=N, dim=DIM, n_queries=NQ, clusters=12, spread=1.0, seed=21, metric=Metric.L2
    )
    labels = [
        LabelsSpec(name="label", kind="int", values=200, skew=1.1, locality=0.8, queries="own"),
        LabelsSpec(name="category", kind="text", values=30, skew=1.0, locality=0.5),
        LabelsSpec(name="published_at", kind="timestamp", start="2024-01-01T00:00:00", days=90),
        LabelsSpec(name="tags", kind="text[]", values=25, skew=1.0, per_row=2, locality=0.5),
    ]
    return with_labels(ds, labels, seed=21, regions=12)


def _values(ds: Dataset, name: str) -> np.ndarray:
    attr = ds.attribute(name)
    assert attr is not None
    return attr.values


@pytest.fixture(scope="module")
def table(embedded_server: EmbeddedServer) -> Iterator[tuple[str, str, Dataset]]:
    """The dataset in a table of pgvbench's shape (id = row index), with an HNSW index."""
    ds = _dataset()
    dsn, schema = embedded_server.dsn(), f"s_tf_{uuid.uuid4().hex[:8]}"
    relation = f'"{schema}"."items"'
    with connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f"CREATE TABLE {relation} (id bigint PRIMARY KEY, embedding vector({DIM}) NOT NULL, "
            "label bigint, category text, published_at timestamptz, tags text[])"
        )
        label, category, published, tags = (_values(ds, n) for n in COLUMNS)
        with conn.cursor().copy(
            f"COPY {relation} (id, embedding, {', '.join(COLUMNS)}) FROM STDIN"
        ) as copy:
            for i in range(ds.n):
                vec = "[" + ",".join(repr(float(x)) for x in ds.base[i]) + "]"
                when = published[i].astype("datetime64[us]").item().isoformat() + "+00:00"
                copy.write_row((i, vec, int(label[i]), str(category[i]), when, list(tags[i])))
        conn.execute(
            f"CREATE INDEX items_hnsw ON {relation} USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 8, ef_construction = 64)"
        )
        conn.execute(f"ANALYZE {relation}")
    try:
        yield dsn, relation, ds
    finally:
        with connect(dsn) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _target(ds: Dataset, predicate: str) -> FilterTarget:
    return filter_target(
        ds, ds.queries[:NR], ds.queries[NR:], k=K, metric=ds.metric,
        predicate=predicate, attribute=None, rows=N, seed=3,
    )  # fmt: skip


def _run(
    dsn: str, relation: str, t: FilterTarget, ds: Dataset, settings: dict[str, str]
) -> list[list[int]]:
    """Every recall query, its vector as $1 and its filter's text parameters after it."""
    query = (
        f"SELECT id FROM {relation} WHERE {t.condition} ORDER BY embedding <-> $1::vector LIMIT {K}"
    )
    out: list[list[int]] = []
    with connect(dsn) as conn:
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        with psycopg.RawCursor(conn) as cur:
            for q, params in zip(ds.queries[:NR], t.recall_params, strict=True):
                vec = "[" + ",".join(repr(float(x)) for x in q) + "]"
                args: Sequence[Any] = (vec, *params)
                cur.execute(query, args)
                out.append([int(r[0]) for r in cur.fetchall()])
    return out


def _plan(dsn: str, relation: str, t: FilterTarget, ds: Dataset, settings: dict[str, str]) -> str:
    """EXPLAIN of the first recall query (its literal values, seq scans off)."""
    vec = "[" + ",".join(repr(float(x)) for x in ds.queries[0]) + "]"
    where = t.condition.replace("$2", "%s")
    with connect(dsn) as conn:
        for name, value in {**settings, "enable_seqscan": "off"}.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        rows = conn.execute(
            f"EXPLAIN SELECT id FROM {relation} WHERE {where} "
            f"ORDER BY embedding <-> %s::vector LIMIT {K}",
            (*t.recall_params[0], vec),
        ).fetchall()
    return "\n".join(str(r[0]) for r in rows)


def _recall(returned: list[list[int]], t: FilterTarget, ds: Dataset) -> np.ndarray:
    return filtered_recall_per_query(returned, t, ds.base, ds.queries[:NR], K, ds.metric)


@pytest.mark.parametrize("predicate", ["label", "range", "overlap"])
def test_exact_scan_is_the_filtered_truth(table: tuple[str, str, Dataset], predicate: str) -> None:
    dsn, relation, ds = table
    t = _target(ds, predicate)
    got = _run(dsn, relation, t, ds, {"enable_indexscan": "off"})
    assert [len(r) for r in got] == [min(K, int(m)) for m in t.matching]
    assert _recall(got, t, ds).tolist() == [1.0] * NR


def test_text_labels_too(table: tuple[str, str, Dataset]) -> None:
    dsn, relation, ds = table
    t = filter_target(
        ds, ds.queries[:NR], ds.queries[NR:], k=K, metric=ds.metric,
        predicate="label", attribute="category", rows=N, seed=4,
    )  # fmt: skip
    assert t.condition == '"category" = $2::text' and not t.own_labels
    got = _run(dsn, relation, t, ds, {"enable_indexscan": "off"})
    assert _recall(got, t, ds).tolist() == [1.0] * NR


def test_iterative_scan_reaches_the_filtered_truth(table: tuple[str, str, Dataset]) -> None:
    dsn, relation, ds = table
    t = _target(ds, "label")
    assert t.selectivity < 0.2  # the own labels of a 200-label Zipf column: selective
    relaxed = {**iterative_scan_settings("hnsw", "relaxed_order"), "hnsw.ef_search": "200"}
    got = _run(dsn, relation, t, ds, {**relaxed, "enable_seqscan": "off"})
    recall = _recall(got, t, ds)
    assert recall.mean() >= 0.97, recall
    assert "Index Scan using items_hnsw" in _plan(
        dsn, relation, t, ds, relaxed
    )  # the index, not an exact scan
    # without it, a 40-candidate scan keeps only the candidates that pass the filter
    plain = {**iterative_scan_settings("hnsw", "off"), "hnsw.ef_search": "40"}
    short = _run(dsn, relation, t, ds, {**plain, "enable_seqscan": "off"})
    assert sum(len(r) for r in short) < sum(len(r) for r in got)
    assert _recall(short, t, ds).mean() < recall.mean()


def test_iterative_scan_settings_are_pgvector_s(table: tuple[str, str, Dataset]) -> None:
    dsn, _, _ = table
    with connect(dsn) as conn:
        conn.execute("LOAD 'vector'")
        for kind, mode in [("hnsw", "strict_order"), ("ivfflat", "relaxed_order")]:
            ((name, value),) = iterative_scan_settings(kind, mode).items()
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            assert row is not None and row[0] == mode
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SET ivfflat.iterative_scan = strict_order")
