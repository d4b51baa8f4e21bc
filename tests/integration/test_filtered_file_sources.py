"""Issue 13 acceptance: an ann-benchmarks HDF5 file with label datasets and a
VectorDBBench-layout Parquet folder, both built here, each run a [filtered] study end to
end on the embedded server; the filtered ground truth of the queries the run drew matches
a brute-force oracle written here (every row, the predicate applied row by row, float64
distances), and PostgreSQL's own exact filtered scan (btree_exact) finds every true
neighbour on every bucket."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pgvbench.datasets.prepared import build_dataset
from pgvbench.metrics import Metric
from pgvbench.progress import Reporter
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import parse_spec
from pgvbench.studies.filtered import VECTOR_STUDY
from pgvbench.studies.filtered.source import from_vectors
from pgvbench.studies.filtered.spec import resolve
from pgvbench.studies.filtered.workload import draw_workload

pytestmark = pytest.mark.integration

N, NQ, DIM, K, LABELS = 3000, 60, 12, 10, 40


def _labels(rng: np.random.Generator, size: int) -> np.ndarray:
    """Zipf-like labels: label r has weight 1/(r+1), so the buckets differ in share."""
    weights = 1.0 / np.arange(1, LABELS + 1)
    return rng.choice(LABELS, size=size, p=weights / weights.sum()).astype(np.int64)


def _spec(name: str, dataset: dict[str, Any], tmp_path: Path) -> ExperimentSpec:
    data = {
        "experiment": {"name": name, "seed": 5, "schema": f"s_{name}"},
        "dataset": dataset,
        "query": {"k": K, "recall_queries": 20, "warmup_seconds": 0.05, "measure_seconds": 0.1},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [20]}],
        "filtered": {
            "predicates": ["label"],
            "strategies": ["hnsw_plain", "hnsw_strict", "btree_exact"],
            "ef_search": [20, 60],
            "bucket_edges": [0.01, 0.05],
            "queries_per_bucket": 6,
            "measure_seconds": 0.1,
            "explain_queries": 2,
        },
    }
    return parse_spec(data, source=tmp_path / "spec.toml")


def _oracle_top_k(base: np.ndarray, labels: np.ndarray, label: Any, q: np.ndarray) -> list[int]:
    keep = [i for i in range(base.shape[0]) if labels[i] == label]
    d = [float(np.sqrt(((base[i].astype(np.float64) - q) ** 2).sum())) for i in keep]
    order = sorted(range(len(keep)), key=lambda j: (d[j], keep[j]))[:K]
    return [keep[j] for j in order]


def _run_and_check(server: EmbeddedServer, spec: ExperimentSpec, tmp_path: Path) -> None:
    runner = ExperimentRunner(
        spec, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )  # fmt: skip
    try:
        results = runner.run(Target(server.dsn(), "embedded"))
        assert results.status == "complete", results.failure
        result = VECTOR_STUDY.load(results)
        assert result is not None
        comparison = result.comparison
        measured = [b for b in comparison.buckets if b.queries]
        assert len(measured) >= 2  # the Zipf labels fill more than one selectivity bucket
        # PostgreSQL's exact filtered scan returns every true neighbour: ground truth agrees
        exact = [r for r in comparison.rows if r.strategy == "btree_exact" and r.n_queries]
        assert {r.bucket for r in exact} == {b.label for b in measured}
        for row in exact:
            assert row.valid and row.recall_mean == 1.0 and row.fill_mean == 1.0, row
        assert set(result.winners) == {b.label for b in measured}

        # the same queries the run drew, their ground truth against the oracle
        dataset = build_dataset(spec)
        study_spec = spec.study_specs["filtered"]
        predicates = resolve(study_spec, dataset.attributes, "<spec>")
        workload = draw_workload(
            from_vectors(dataset, f"{spec.name}_items"), predicates, study_spec.bucket_edges,
            queries_per_bucket=study_spec.queries_per_bucket, hot_labels=study_spec.hot_labels,
            k=K, seed=spec.seed,
        )  # fmt: skip
        label_attr = dataset.attribute(predicates[0].attribute)
        assert label_attr is not None
        checked = 0
        for bucket in workload.buckets:
            qs = bucket.queries
            for i, value in enumerate(qs.values):
                expected = _oracle_top_k(dataset.base, label_attr.values, value, qs.vectors[i])
                assert qs.truth.ids[i].tolist() == expected
                checked += 1
        assert checked >= 12
    finally:
        with connect(server.dsn()) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{spec.schema}" CASCADE')


def test_hdf5_with_label_datasets_runs_filtered(
    embedded_server: EmbeddedServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    labels = _labels(rng, N)
    path = tmp_path / "labelled.hdf5"
    with h5py.File(path, "w") as f:  # the ann-benchmarks layout, with its label datasets
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=base)
        f.create_dataset("test", data=rng.standard_normal((NQ, DIM)).astype(np.float32))
        f.create_dataset("train_labels", data=labels)
        f.create_dataset("test_labels", data=_labels(rng, NQ))
    name = f"tfh{uuid.uuid4().hex[:8]}"
    spec = _spec(name, {"source": "hdf5", "path": "labelled.hdf5"}, tmp_path)
    dataset = build_dataset(spec)
    label = dataset.attribute("label")  # loaded by default, with the queries' own labels
    assert label is not None and label.query_values is not None
    assert label.values.tolist() == labels.tolist()
    _run_and_check(embedded_server, spec, tmp_path)


def test_vectordbbench_parquet_folder_runs_filtered(
    embedded_server: EmbeddedServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(12)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    ids = 10_000 + rng.permutation(N)  # VectorDBBench ids are not row numbers
    labels = _labels(rng, N)
    folder = tmp_path / "vdb"
    folder.mkdir()
    emb = pa.list_(pa.float32())
    pq.write_table(
        pa.table({"id": ids, "emb": pa.array(base.tolist(), emb)}), folder / "train.parquet"
    )
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    pq.write_table(
        pa.table({"id": np.arange(NQ), "emb": pa.array(queries.tolist(), emb)}),
        folder / "test.parquet",
    )
    order = rng.permutation(N)  # scalar labels in another order: joined by id
    pq.write_table(
        pa.table({"id": ids[order], "labels": [f"label_{v}" for v in labels[order]]}),
        folder / "scalar_labels.parquet",
    )
    name = f"tfp{uuid.uuid4().hex[:8]}"
    spec = _spec(
        name, {"source": "parquet", "layout": "vectordbbench", "path": "vdb", "metric": "l2"},
        tmp_path,
    )  # fmt: skip
    dataset = build_dataset(spec)
    assert dataset.metric == Metric.L2
    attr = dataset.attribute("labels")
    assert attr is not None and attr.values.tolist() == [f"label_{v}" for v in labels]
    _run_and_check(embedded_server, spec, tmp_path)
