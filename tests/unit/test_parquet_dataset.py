"""Parquet datasets: VectorDBBench's custom-dataset folder and plain named columns."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pgvbench.datasets import parquet as pqds
from pgvbench.datasets.prepared import build_dataset
from pgvbench.datasets.unloaded import unloaded_columns
from pgvbench.errors import DatasetError, SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.parse import parse_spec

N, NQ, DIM, K = 60, 5, 6, 4


def _vectors(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)


def _emb(vectors: np.ndarray, fixed: bool = False) -> pa.Array:
    if fixed:
        return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM)
    return pa.array(vectors.tolist(), type=pa.list_(pa.float32()))


def _vdb_folder(folder: Path, *, split: bool = False) -> dict[str, Any]:
    """A VectorDBBench custom dataset with shuffled, non-contiguous ids."""
    folder.mkdir()
    base, queries = _vectors(N, 0), _vectors(NQ, 1)
    ids = 1000 + np.random.default_rng(2).permutation(N) * 3
    test_ids = np.array([7, 3, 9, 1, 5])
    if split:
        half = N // 2
        for i, (lo, hi) in enumerate([(0, half), (half, N)]):
            table = pa.table({"id": ids[lo:hi], "emb": _emb(base[lo:hi])})
            pq.write_table(table, folder / f"train-{i:02d}-of-02.parquet")
    else:
        pq.write_table(pa.table({"id": ids, "emb": _emb(base)}), folder / "train.parquet")
    pq.write_table(pa.table({"id": test_ids, "emb": _emb(queries)}), folder / "test.parquet")
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    true_rows = np.argsort(d, axis=1)[:, :K]
    order = np.array([3, 1, 4, 0, 2])  # neighbors.parquet rows in another order than test
    gt = pa.table(
        {
            "id": test_ids[order],
            "neighbors_id": pa.array(ids[true_rows][order].tolist(), type=pa.list_(pa.int64())),
        }
    )
    pq.write_table(gt, folder / "neighbors.parquet")
    label_order = np.random.default_rng(3).permutation(N)[: N - 2]  # two rows without a label
    labels = pa.table(
        {
            "id": ids[label_order],
            "labels": [f"label_{int(i) % 3}" for i in label_order],
            "rank": label_order.astype(np.int32),
        }
    )
    pq.write_table(labels, folder / "scalar_labels.parquet")
    return {"base": base, "queries": queries, "true_rows": true_rows, "labelled": label_order}


def _spec(dataset: dict[str, Any], folder: Path) -> Any:
    return parse_spec(
        {
            "experiment": {"name": "p"},
            "dataset": dataset,
            "query": {"k": K, "recall_queries": 3},
            "index": [{"kind": "none"}],
        },
        source=folder / "spec.toml",
    )


@pytest.mark.parametrize("split", [False, True])
def test_vectordbbench_folder_maps_ids_to_rows(tmp_path: Path, split: bool) -> None:
    truth = _vdb_folder(tmp_path / "vdb", split=split)
    spec = _spec(
        {"source": "parquet", "layout": "vectordbbench", "path": "vdb", "metric": "l2"}, tmp_path
    )
    ds = build_dataset(spec)
    assert np.array_equal(ds.base, truth["base"]) and np.array_equal(ds.queries, truth["queries"])
    assert ds.neighbors is not None
    assert np.array_equal(ds.neighbors, truth["true_rows"])  # train ids -> row indexes
    label, rank = ds.attributes
    assert (label.name, label.kind, rank.name, rank.kind) == ("labels", "text", "rank", "float")
    for row in range(N):
        if row in truth["labelled"]:
            assert label.values[row] == f"label_{row % 3}" and rank.values[row] == row
        else:  # no scalar-labels row for it: NULL
            assert label.values[row] is None and np.isnan(rank.values[row])
    assert unloaded_columns(spec.dataset, ds) == []


def test_vectordbbench_attributes_pick_and_rename_columns(tmp_path: Path) -> None:
    _vdb_folder(tmp_path / "vdb")
    spec = _spec(
        {
            "source": "parquet",
            "layout": "vectordbbench",
            "path": "vdb",
            "metric": "l2",
            "attributes": {"label": "labels"},
            "queries": 3,
        },
        tmp_path,
    )
    ds = build_dataset(spec)
    assert [a.name for a in ds.attributes] == ["label"] and ds.n_queries == 3
    assert ds.neighbors is not None and ds.neighbors.shape == (3, K)
    assert unloaded_columns(spec.dataset, ds) == ["rank"]
    pq.write_table(pa.table({"id": [1]}), tmp_path / "vdb" / "neighbors_labels_label_1p.parquet")
    assert unloaded_columns(spec.dataset, ds) == ["rank", "neighbors_labels_label_1p.parquet"]


def _columns_files(folder: Path, *, fixed: bool) -> None:
    folder.mkdir(exist_ok=True)
    utc = dt.UTC
    base = pa.table(
        {
            "doc_id": np.arange(N) + 10,
            "embedding": _emb(_vectors(N, 0), fixed=fixed),
            "lang": [["en", "de", None][i % 3] for i in range(N)],
            "published_at": pa.array(
                [dt.datetime(2024, 1, 1 + i % 28, tzinfo=utc) for i in range(N)],
                type=pa.timestamp("ms", tz="UTC"),
            ),
            "tags": pa.array([["a", "b"][: i % 3] for i in range(N)], pa.list_(pa.string())),
            "nums": pa.array([list(range(i % 3)) for i in range(N)], pa.list_(pa.int32())),
            "meta": pa.array([{"k": i, "s": "x"} for i in range(N)]),
            "category": pa.array([f"c{i % 4}" for i in range(N)]).dictionary_encode(),
            "ok": pa.array([i % 2 == 0 for i in range(N)]),
            "unused": np.arange(N),
        }
    )
    pq.write_table(base, folder / "items.parquet")
    queries = pa.table({"embedding": _emb(_vectors(NQ, 1), fixed=fixed), "lang": ["de"] * NQ})
    pq.write_table(queries, folder / "queries.parquet")


@pytest.mark.parametrize("fixed", [False, True])
def test_columns_layout_keeps_arrow_types(tmp_path: Path, fixed: bool) -> None:
    _columns_files(tmp_path, fixed=fixed)
    names = ["lang", "published_at", "tags", "nums", "meta", "category", "ok"]
    spec = _spec(
        {
            "source": "parquet",
            "layout": "columns",
            "base": "items.parquet",
            "queries_file": "queries.parquet",
            "column": "embedding",
            "id_column": "doc_id",
            "attributes": names,
            "metric": "cosine",
        },
        tmp_path,
    )
    ds = build_dataset(spec)
    assert ds.metric is Metric.COSINE and ds.base.shape == (N, DIM)
    assert np.array_equal(ds.base, _vectors(N, 0))
    kinds = {a.name: a.kind for a in ds.attributes}
    assert kinds == {
        "lang": "text",
        "published_at": "timestamp",
        "tags": "text[]",
        "nums": "int[]",
        "meta": "jsonb",
        "category": "text",
        "ok": "bool",
    }
    by = {a.name: a for a in ds.attributes}
    assert by["lang"].values[2] is None and by["lang"].values[1] == "de"
    assert by["lang"].query_values is not None and by["lang"].query_values[0] == "de"
    assert by["tags"].query_values is None  # the queries file has no tags column
    assert str(by["published_at"].values[3]) == "2024-01-04T00:00:00.000000"
    assert by["tags"].values[2] == ("a", "b") and by["nums"].values[2] == (0, 1)
    assert json.loads(by["meta"].values[5]) == {"k": 5, "s": "x"}
    assert unloaded_columns(spec.dataset, ds) == ["unused"]


def test_small_batches_give_the_same_vectors(tmp_path: Path, monkeypatch: Any) -> None:
    _columns_files(tmp_path, fixed=False)
    monkeypatch.setattr(pqds, "CHUNK_BYTES", 8 * DIM * 7)  # 7 rows a batch
    ds = pqds.load_columns(
        tmp_path / "items.parquet",
        tmp_path / "queries.parquet",
        metric=Metric.L2,
        column="embedding",
        id_column="",
        attributes={},
    )
    assert np.array_equal(ds.base, _vectors(N, 0))


def _bad_vectors(tmp_path: Path, rows: list[Any]) -> Path:
    table = pa.table({"embedding": pa.array(rows, type=pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "bad.parquet")
    pq.write_table(pa.table({"embedding": _emb(_vectors(2, 1))}), tmp_path / "q.parquet")
    return tmp_path / "bad.parquet"


@pytest.mark.parametrize(
    ("row3", "message"),
    [
        ([1.0] * (DIM - 1), "row 3 has 5 values, but the first row has 6"),
        (None, "row 3 is NULL"),
        ([1.0, None, 1.0, 1.0, 1.0, 1.0], "row 3 has a NULL element"),
        ([float("nan")] * DIM, "row 3 has NaN"),
    ],
)
def test_bad_vector_rows_name_file_column_and_row(tmp_path: Path, row3: Any, message: str) -> None:
    good = [[1.0] * DIM] * 3
    path = _bad_vectors(tmp_path, [*good, row3, [1.0] * DIM])
    with pytest.raises(DatasetError) as err:
        pqds.load_columns(
            path,
            tmp_path / "q.parquet",
            metric=Metric.L2,
            column="embedding",
            id_column="",
            attributes={},
        )
    text = str(err.value)
    assert str(path) in text and "'embedding'" in text and message in text, text


def test_missing_columns_and_files_are_named(tmp_path: Path) -> None:
    _columns_files(tmp_path, fixed=False)
    with pytest.raises(DatasetError, match=r"items\.parquet: has no column 'vec'.*doc_id"):
        pqds.probe_columns(
            tmp_path / "items.parquet",
            tmp_path / "queries.parquet",
            column="vec",
            id_column="",
            attributes={},
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no train\.parquet"):
        pqds.probe_vectordbbench(tmp_path / "empty")


def test_spec_keys_per_layout() -> None:
    for dataset, message in [
        ({"layout": "vectordbbench", "path": "x", "column": "e"}, "not a known key"),
        ({"layout": "columns", "base": "a", "queries_file": "b"}, "metric is required"),
        ({"layout": "sideways"}, "layout"),
        (
            {
                "layout": "columns",
                "base": "a",
                "queries_file": "b",
                "metric": "l2",
                "column": "vec",
                "attributes": ["vec"],
            },
            "vector or id column",
        ),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_spec(
                {
                    "experiment": {"name": "p"},
                    "dataset": {"source": "parquet", **dataset},
                    "query": {"k": 5},
                    "index": [{"kind": "none"}],
                }
            )
