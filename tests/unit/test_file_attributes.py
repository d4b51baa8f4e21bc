"""Labels and other attributes from ann-benchmarks HDF5 files and .npy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pgvbench.datasets import load_hdf5, load_npy
from pgvbench.datasets.attribute_values import AttributeInfo, describe, infer
from pgvbench.datasets.files import probe_hdf5, probe_npy
from pgvbench.datasets.unloaded import unloaded_columns
from pgvbench.errors import DatasetError, SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.parse import parse_spec

N, NQ, DIM = 40, 6, 4


def _vectors(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)


def _hdf5(path: Path, **extra: Any) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=_vectors(N))
        f.create_dataset("test", data=_vectors(NQ, 1))
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


def test_train_labels_load_as_label_with_test_labels_as_query_values(tmp_path: Path) -> None:
    labels = np.arange(N) % 5
    path = _hdf5(tmp_path / "a.hdf5", train_labels=labels, test_labels=np.arange(NQ) % 5)
    ds = load_hdf5(path)
    (attr,) = ds.attributes
    assert (attr.name, attr.kind) == ("label", "int")
    assert np.array_equal(attr.values, labels)
    assert attr.query_values is not None and np.array_equal(attr.query_values, np.arange(NQ) % 5)
    info = describe(attr)
    assert (info.distinct, info.nulls, info.query_values, info.sql_type) == (5, 0, True, "bigint")
    assert AttributeInfo.from_dict(info.to_dict()) == info


def test_max_queries_slices_the_query_labels(tmp_path: Path) -> None:
    path = _hdf5(tmp_path / "a.hdf5", train_labels=np.zeros(N, int), test_labels=np.arange(NQ))
    ds = load_hdf5(path, max_queries=3)
    assert ds.attributes[0].query_values is not None
    assert ds.attributes[0].query_values.tolist() == [0, 1, 2]


def test_multi_labels_are_an_int_array_attribute(tmp_path: Path) -> None:
    multi = np.arange(N * 3).reshape(N, 3) % 7
    path = _hdf5(tmp_path / "m.hdf5", train_labels=multi)
    (attr,) = load_hdf5(path).attributes
    assert attr.kind == "int[]" and attr.sql_type == "bigint[]"
    assert attr.values[2] == tuple(multi[2].tolist())
    assert attr.query_values is None


def test_named_datasets_and_unloaded_ones_are_listed(tmp_path: Path) -> None:
    tenants = np.array([f"t{i % 3}" for i in range(N)], dtype="S")
    path = _hdf5(
        tmp_path / "n.hdf5",
        train_tenant=tenants,
        test_tenant=np.array([b"t0"] * NQ),
        train_labels=np.arange(N),
        train_extra=np.arange(N) * 1.5,
    )
    ds = load_hdf5(path, attributes={"tenant": "train_tenant"})
    (attr,) = ds.attributes
    assert attr.kind == "text" and attr.values[4] == "t1"
    assert attr.query_values is not None and attr.query_values[0] == "t0"  # test_ default
    spec = parse_spec(
        {
            "experiment": {"name": "x"},
            "dataset": {
                "source": "hdf5",
                "path": str(path),
                "attributes": {"tenant": "train_tenant"},
            },
            "query": {"k": 5},
            "index": [{"kind": "none"}],
        }
    )
    assert unloaded_columns(spec.dataset, ds) == ["train_extra", "train_labels"]


def test_string_datasets_and_timestamps_keep_their_kinds() -> None:
    kind, values = infer(np.array(["a", "b"]), "w")
    assert kind == "text" and values.tolist() == ["a", "b"]
    kind, values = infer(np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"), "w")
    assert kind == "timestamp" and values.dtype == np.dtype("datetime64[us]")
    kind, values = infer(np.array([["x", "y"], ["z", "w"]]), "w")
    assert kind == "text[]" and values[1] == ("z", "w")
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, None]
    kind, values = infer(objects, "w")
    assert kind == "jsonb" and values[0] == '{"a": 1}' and values[1] is None
    kind, _ = infer(np.array([True, False]), "w")
    assert kind == "bool"


@pytest.mark.parametrize(
    ("attributes", "query_attributes", "message"),
    [
        ({"label": "train_nope"}, {}, "no dataset 'train_nope'"),
        ({"label": "short"}, {}, "has 10 entries but there are 40 rows"),
        ({"Label": "train_labels"}, {}, "plain lower-case SQL identifier"),
        ({"label": "train_labels"}, {"label": "tiny"}, "has 3 entries but there are 6 rows"),
        ({"label": "train_labels"}, {"other": "test_labels"}, "names no attribute"),
    ],
)
def test_errors_name_the_file_the_key_and_the_allowed_datasets(
    tmp_path: Path, attributes: dict[str, str], query_attributes: dict[str, str], message: str
) -> None:
    path = _hdf5(
        tmp_path / "e.hdf5",
        train_labels=np.arange(N),
        test_labels=np.arange(NQ),
        short=np.arange(10),
        tiny=np.arange(3),
    )
    for call in (load_hdf5, probe_hdf5):
        with pytest.raises(DatasetError) as err:
            call(path, attributes=attributes, query_attributes=query_attributes)
        text = str(err.value)
        assert str(path) in text and message in text, text
    with pytest.raises(DatasetError, match="train_labels"):  # the allowed names are listed
        load_hdf5(path, attributes={"label": "nope"})


def test_npy_attributes_with_query_values(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", _vectors(N))
    np.save(tmp_path / "queries.npy", _vectors(NQ, 1))
    np.save(tmp_path / "labels.npy", np.array([f"l{i % 4}" for i in range(N)]))
    np.save(tmp_path / "qlabels.npy", np.array([f"l{i % 4}" for i in range(NQ)]))
    np.save(tmp_path / "when.npy", np.arange(N).astype("datetime64[D]"))
    spec = parse_spec(
        {
            "experiment": {"name": "x"},
            "dataset": {
                "source": "npy",
                "metric": "l2",
                "base": "base.npy",
                "queries_file": "queries.npy",
                "attributes": {"label": "labels.npy", "published_at": "when.npy"},
                "query_attributes": {"label": "qlabels.npy"},
            },
            "query": {"k": 5},
            "index": [{"kind": "none"}],
        },
        source=tmp_path / "spec.toml",
    )
    assert spec.dataset is not None
    ds = load_npy(
        tmp_path / "base.npy",
        tmp_path / "queries.npy",
        metric=Metric.L2,
        attributes=spec.dataset.attributes,
        query_attributes=spec.dataset.query_attributes,
    )
    label, when = ds.attributes
    assert label.kind == "text" and label.values[5] == "l1" and label.query_values is not None
    assert when.kind == "timestamp" and when.query_values is None
    assert str(when.values[1]) == "1970-01-02T00:00:00.000000"


def test_npy_wrong_length_names_the_key_and_file(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", _vectors(N))
    np.save(tmp_path / "queries.npy", _vectors(NQ, 1))
    np.save(tmp_path / "labels.npy", np.arange(N - 1))
    with pytest.raises(DatasetError, match=r"attributes\.label = .*labels\.npy.* 40 rows"):
        load_npy(
            tmp_path / "base.npy",
            tmp_path / "queries.npy",
            metric=Metric.L2,
            attributes={"label": str(tmp_path / "labels.npy")},
        )


def test_spec_refuses_bad_attribute_names_and_orphan_query_attributes() -> None:
    base: dict[str, Any] = {
        "experiment": {"name": "x"},
        "query": {"k": 5},
        "index": [{"kind": "none"}],
    }
    for dataset, message in [
        ({"attributes": {"Bad-Name": "train_labels"}}, "plain lower-case SQL identifier"),
        ({"query_attributes": {"label": "test_labels"}}, "not one of the attributes"),
        ({"attributes": ["label"]}, "table of column"),
    ]:
        spec = {**base, "dataset": {"source": "hdf5", "path": "x.hdf5", **dataset}}
        with pytest.raises(SpecError, match=message):
            parse_spec(spec)


def test_npy_probe_checks_attribute_headers_before_reading(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", _vectors(N))
    np.save(tmp_path / "queries.npy", _vectors(NQ, 1))
    np.save(tmp_path / "labels.npy", np.arange(N))
    np.save(tmp_path / "qlabels.npy", np.arange(NQ + 1))
    labels = {"label": str(tmp_path / "labels.npy")}
    header = probe_npy(
        tmp_path / "base.npy", tmp_path / "queries.npy", metric="l2", attributes=labels
    )
    assert header.rows == N
    with pytest.raises(DatasetError, match=r"attributes\.tag = .*not found"):
        probe_npy(
            tmp_path / "base.npy",
            tmp_path / "queries.npy",
            metric="l2",
            attributes={"tag": str(tmp_path / "tags.npy")},
        )
    with pytest.raises(DatasetError, match=r"query_attributes\.label = .*there are 6 rows"):
        probe_npy(
            tmp_path / "base.npy",
            tmp_path / "queries.npy",
            metric="l2",
            attributes=labels,
            query_attributes={"label": str(tmp_path / "qlabels.npy")},
        )


def test_a_bad_default_label_dataset_says_it_was_loaded_by_default(tmp_path: Path) -> None:
    path = _hdf5(tmp_path / "d.hdf5", train_labels=np.arange(N - 1))
    with pytest.raises(DatasetError, match="loaded by default as the attribute 'label'"):
        probe_hdf5(path)
