"""[filtered] on a vector dataset: a labelled synthetic run end to end on the embedded
server (a Zipf label with each query's own label, a timestamp, tags), every strategy
measured or marked not applicable, plans checked with EXPLAIN, ef_search swept, a winner
per bucket, the record stored in results.tuning and rendered; and an HDF5-like dataset
built in the test (text labels drawn by frequency) in a table made with plain SQL."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pgvbench.datasets.attributes import Attribute
from pgvbench.datasets.base import Dataset
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.progress import Reporter
from pgvbench.report.render import render_report
from pgvbench.results import Results, load_results, write_results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from pgvbench.studies import filtered
from pgvbench.studies.filtered import VECTOR_STUDY, FilteredComparison, FilteredResult
from pgvbench.studies.filtered.predicates import EQ, Predicate
from pgvbench.studies.filtered.source import from_vectors
from pgvbench.studies.filtered.spec import FilteredSpec, resolve

pytestmark = pytest.mark.integration

EF = [10, 40]
EDGES = [0.01, 0.05]


def _spec(name: str) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "seed": 3, "schema": f"s_{name}"},
        "dataset": {
            "source": "synthetic",
            "distribution": "clustered",
            "n": 4000,
            "dim": 16,
            "clusters": 20,
            "metric": "cosine",
            "queries": 120,
            "labels": [
                {"name": "label", "kind": "int", "values": 150, "skew": 1.1, "queries": "own"},
                {"name": "published_at", "kind": "timestamp", "days": 365},
                {"name": "tags", "kind": "text[]", "values": 40, "per_row": 2},
            ],
        },
        "query": {"k": 10, "recall_queries": 40, "warmup_seconds": 0.05, "measure_seconds": 0.1},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10, 40]}],
        "filtered": {
            "ef_search": EF,
            "bucket_edges": EDGES,
            "queries_per_bucket": 5,
            "measure_seconds": 0.15,
            "hot_labels": 2,
            "partitions": 4,
        },
    }


@dataclasses.dataclass
class Run:
    results: Results
    result: FilteredResult
    out: Path
    relations_after: set[str]
    schema: str
    name: str


def _relations(dsn: str, schema: str) -> set[str]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s",
            (schema,),
        ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture(scope="module")
def run(embedded_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One small labelled run with [filtered] (the slow part)."""
    name = f"tfv{uuid.uuid4().hex[:8]}"
    out = tmp_path_factory.mktemp("filtered_vector")
    spec = parse_spec(_spec(name))
    runner = ExperimentRunner(
        spec, out_dir=out / "out", cache_dir=out / "cache", reporter=Reporter(enabled=False)
    )
    results = runner.run(Target(embedded_server.dsn(), "embedded"))
    result = VECTOR_STUDY.load(results)
    assert result is not None
    after = _relations(embedded_server.dsn(), spec.schema)
    yield Run(results, result, out, after, spec.schema, name)
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{spec.schema}" CASCADE')


def _expected(name: str, row: filtered.FilteredRow, c: FilteredComparison) -> set[str] | None:
    work = f"{name}_fmem"
    if row.strategy.startswith("hnsw_"):
        return {f"{work}_hnsw"}
    if row.strategy == "ivfflat_iterative":
        return {f"{work}_ivf"}
    return None


def test_every_strategy_is_measured_or_not_applicable_on_every_bucket(run: Run) -> None:
    c = run.result.comparison
    assert c.source == "vectors" and c.memories == 4000 and list(c.ef_values) == EF
    keys = [(r.arm, r.bucket) for r in c.rows]
    assert len(keys) == len(set(keys))  # one row per arm and bucket
    assert [p.name for p in c.predicates] == ["label", "range", "overlap"]
    assert {b.predicate for b in c.buckets} == {"label", "range", "overlap"}
    measured_buckets = [b for b in c.buckets if b.queries]
    assert len(measured_buckets) >= 6
    for b in measured_buckets:
        for strategy in filtered.STRATEGIES:
            rows = [r for r in c.rows if r.bucket == b.label and r.strategy == strategy]
            assert rows, (b.label, strategy)
            if b.predicate != "label" and strategy in ("partial_hot", "partitioned"):
                assert len(rows) == 1 and rows[0].n_queries == 0 and not rows[0].valid
                assert rows[0].notes[0].startswith("not applicable")
                continue
            if strategy == "partial_hot" and b.hot_queries == 0:
                continue  # no hot label in this bucket: said so in the row
            for row in rows:
                assert row.n_queries > 0 and row.valid, row
                assert row.latency_p99_ms is not None and row.buffers_per_query is not None


def test_plans_use_the_intended_index_for_each_predicate(run: Run) -> None:
    c, name = run.result.comparison, run.name
    by_predicate = {b.label: b.predicate for b in c.buckets}
    for row in c.rows:
        if not row.n_queries or not row.valid:
            continue
        used = set(row.plan_indexes)
        expected = _expected(name, row, c)
        if expected is not None:
            assert used == expected, row
        elif row.strategy == "btree_exact":
            # a B-tree on the label or the timestamp, a GIN index on the tags
            assert len(used) == 1 and next(iter(used)).startswith(f"{name}_fmem_filt"), row
        elif row.strategy == "partial_hot":
            assert used and used <= {f"{name}_fmem_hot0", f"{name}_fmem_hot1"}, row
            assert by_predicate[row.bucket] == "label"
        else:  # partitioned by label: each query its label's partition index, or the default's
            assert used and all(
                u.startswith(f"{name}_fpart_") and u.endswith("_hnsw") for u in used
            ), row
    gin = next(s for s in c.setups if s.strategy == "btree_exact")
    assert "&&" in gin.sql and "BETWEEN" in gin.sql and '"label" = $2' in gin.sql


def test_exact_scan_is_exact_and_hnsw_is_swept(run: Run) -> None:
    c = run.result.comparison
    for row in c.rows:
        if row.strategy == "btree_exact" and row.n_queries:
            assert row.recall_mean == 1.0 and row.fill_min == 1.0, row
        swept = row.strategy.startswith("hnsw_") or row.strategy in ("partitioned", "partial_hot")
        if swept and row.n_queries:
            assert row.ef_search in EF and row.arm.endswith(f"ef_search={row.ef_search}")
    relaxed = {(r.bucket, r.ef_search) for r in c.rows if r.strategy == "hnsw_relaxed"}
    assert {ef for _, ef in relaxed} == set(EF)


def test_a_winner_per_bucket_with_its_ef_search(run: Run) -> None:
    c, chosen = run.result.comparison, run.result.winners
    for b in c.buckets:
        if b.queries:
            assert b.label in chosen  # btree_exact always qualifies: recall 1, fill 1
            row = c.row(chosen[b.label], b.label)
            assert row is not None and row.valid and (row.recall_mean or 0) >= 0.9
            # measured on the hot labels only, partial_hot cannot answer for a whole bucket
            assert row.strategy != "partial_hot"
            if row.ef_search is not None:
                assert f"ef_search={row.ef_search}" in chosen[b.label]
    texts = [r.text for r in VECTOR_STUDY.advice(run.result)]
    assert any(" wins: " in t or "within the noise" in t for t in texts)
    for b in c.buckets:  # where partial_hot beat the winner on its hot labels, it is said
        hot = filtered.ranking.hot_alternative(c, b.label)
        if hot is not None:
            assert any(f"for its hot labels alone, {hot.arm}" in t for t in texts)


def test_the_data_bounds_are_recorded(run: Run) -> None:
    c = run.result.comparison
    label = c.predicates[0]
    assert label.own_query_labels and label.cardinality > 50
    assert label.commonest_share is not None and label.rarest_share is not None
    assert label.commonest_share > 0.05 > label.rarest_share
    assert label.used + label.unused == label.cardinality and label.unused > 0
    assert len(label.unused_examples) == min(10, label.unused)
    for b in c.buckets:
        if b.queries:
            assert b.share_min is not None and b.share_max is not None
            assert b.low <= b.share_min <= (b.share_median or 0) <= b.share_max
            assert b.high is None or b.share_max < b.high


def test_stored_in_tuning_rendered_and_reloaded(run: Run, tmp_path: Path) -> None:
    results = run.results
    assert results.tuning is not None and results.tuning.filtered is not None
    assert results.agent is None
    recorded = results.spec["studies"]["filtered"]
    assert recorded["ef_search"] == EF and recorded["hot_labels"] == 2
    path = tmp_path / "results.json"
    write_results(results, path)
    again = VECTOR_STUDY.load(load_results(path))
    assert again is not None and again.comparison == run.result.comparison
    json.dumps(results.tuning.filtered, allow_nan=False)
    files = render_report(load_results(path), tmp_path / "report")
    text = files.md.read_text()
    assert "## Filtered vector search" in text and "What the data holds" in text
    assert "ef_search sweep" in text and "Unused values" in text
    assert "not applicable" in text


def test_created_objects_are_dropped(run: Run) -> None:
    created = {o.split(".", 1)[1] for s in run.result.comparison.setups for o in s.objects}
    assert created and not created & run.relations_after


# --------------------------------------------------------------------------- HDF5-like


def _hdf5_like() -> Dataset:
    """train/test vectors with train_labels (text) and no test labels: drawn by frequency."""
    rng = np.random.default_rng(8)
    base = rng.standard_normal((2500, 8)).astype(np.float32)
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    p = 1.0 / np.arange(1, 31)
    labels = np.array([f"cat{i}" for i in rng.choice(30, 2500, p=p / p.sum())], dtype=object)
    return Dataset(
        name="hdf5-like",
        source="test",
        metric=Metric.L2,
        base=base,
        queries=queries,
        attributes=(Attribute("category", "text", labels, origin="train_labels"),),
    )


def test_an_hdf5_like_table_made_with_plain_sql(embedded_server: EmbeddedServer) -> None:
    ds = _hdf5_like()
    dsn, suffix = embedded_server.dsn(), uuid.uuid4().hex[:8]
    schema, prefix = f"s_fh_{suffix}", f"fh{suffix}"
    table = f"{prefix}_items"
    with connect(dsn) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}"."{table}" (id bigint NOT NULL, '
            "embedding vector(8) NOT NULL, category text)"
        )
        with conn.cursor().copy(
            f'COPY "{schema}"."{table}" (id, embedding, category) FROM STDIN'
        ) as copy:
            for i in range(ds.n):
                vec = "[" + ",".join(f"{x:.8g}" for x in ds.base[i]) + "]"
                copy.write_row((i, vec, ds.attributes[0].values[i]))
        conn.execute(f'ANALYZE "{schema}"."{table}"')
    spec = FilteredSpec(strategies=filtered.STRATEGIES)
    predicates = resolve(spec, ds.attributes, "<test>")
    assert predicates == [Predicate("label", EQ, "category")]
    with pytest.raises(SpecError, match=r"the dataset has category \(text\)"):
        resolve(dataclasses.replace(spec, predicates=("range",)), ds.attributes, "<test>")
    try:
        c = filtered.compare_filtered(
            dsn, schema=schema, prefix=prefix, source=from_vectors(ds, table),
            predicates=predicates, k=10, ef_search=40, bucket_edges=[0.02, 0.1],
            queries_per_bucket=4, measure_seconds=0.1, warmup_seconds=0.02, seed=1,
            hot_agents=2, partitions=3, explain_queries=2,
        )  # fmt: skip
    finally:
        with connect(dsn) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert not c.swept and c.predicates[0].own_query_labels is False
    for row in c.rows:
        if row.n_queries:
            assert row.valid, row
            assert row.ef_search is None and row.arm == row.strategy
    parts = [r for r in c.rows if r.strategy == "partitioned" and r.n_queries]
    assert parts and all(
        u.startswith(f"{prefix}_fpart_") and u.endswith("_hnsw")
        for r in parts
        for u in r.plan_indexes
    )
    assert filtered.winners(c)
