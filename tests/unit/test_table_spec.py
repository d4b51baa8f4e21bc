"""[dataset] source = "table": the spec's keys, defaults and errors (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvbench.datasets.table_source import TableSourceInfo, inspect
from pgvbench.db.table_catalog import PG_KINDS, opclass_metric
from pgvbench.errors import DatasetError, SpecError
from pgvbench.metrics import Metric
from pgvbench.plan.shape import dataset_shape
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import load_spec

HEAD = """
[experiment]
name = "table_spec"
seed = 5

[dataset]
source = "table"
"""
INDEX = """
[[index]]
kind = "hnsw"
"""


def _spec(tmp_path: Path, body: str) -> ExperimentSpec:
    path = tmp_path / "table_spec.toml"
    path.write_text(HEAD + body + INDEX)
    return load_spec(path)


def test_defaults_and_keys(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'table = "app.documents"\n')
    ds = spec.dataset
    assert ds is not None
    assert (ds.table, ds.column, ds.id_column) == ("app.documents", "embedding", "id")
    assert ds.queries_from == "sample" and ds.queries == 1000 and ds.sample is None
    assert ds.copy_method == "" and not ds.metric_given and dict(ds.attributes) == {}
    recorded = spec.to_dict()["dataset"]
    assert recorded["metric_given"] is False and "copy_method" not in recorded


def test_all_keys(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        'table = "app.documents"\ncolumn = "emb"\nid = "doc_id"\n'
        'attributes = ["tenant_id", "lang"]\nsample = 20000\nqueries = 500\n'
        'metric = "ip"\ncopy_method = "copy"\n',
    )
    ds = spec.dataset
    assert ds is not None
    assert (ds.column, ds.id_column, ds.sample, ds.queries) == ("emb", "doc_id", 20000, 500)
    assert dict(ds.attributes) == {"tenant_id": "tenant_id", "lang": "lang"}
    assert ds.metric == Metric.INNER_PRODUCT and ds.metric_given
    assert ds.copy_method == "copy"


def test_queries_table_and_file(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'table = "app.documents"\nqueries_table = "app.queries"\n')
    assert spec.dataset is not None
    assert (spec.dataset.queries_table, spec.dataset.queries_from) == ("app.queries", "")
    spec = _spec(tmp_path, 'table = "app.documents"\nqueries_file = "q.npy"\n')
    assert spec.dataset is not None and spec.dataset.queries_file == tmp_path / "q.npy"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("", "table is required"),
        ('table = "documents"\n', "must be schema-qualified"),
        ('table = "a.b.c"\n', "must be schema-qualified"),
        ('table = "app.d"\nattributes = "lang"\n', "must be a list of column names"),
        ('table = "app.d"\nattributes = ["lang", "lang"]\n', "names a column twice"),
        ('table = "app.d"\nattributes = ["embedding"]\n', "list only the other columns"),
        ('table = "app.d"\nid = "doc"\nattributes = ["doc"]\n', "list only the other columns"),
        ('table = "app.d"\nsample = 0\n', "below the minimum 1"),
        ('table = "app.d"\nqueries_from = "table"\n', "is not one of: sample"),
        (
            'table = "app.d"\nqueries_from = "sample"\nqueries_table = "app.q"\n',
            "both name the queries",
        ),
        ('table = "app.d"\nqueries_table = "q"\n', "must be schema-qualified"),
        ('table = "app.d"\nqueries_file = "q.txt"\n', "must be a .npy or .fvecs file"),
        ('table = "app.d"\ncopy_method = "fast"\n', "insert_select"),
        ('table = "app.d"\nmetric = "hamming"\n', "is not one of"),
        ('table = "app.d"\npath = "x.h5"\n', "not a known key"),
    ],
)
def test_spec_errors(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(SpecError, match="dataset") as err:
        _spec(tmp_path, body)
    assert needle in str(err.value)


def test_validate_says_rows_are_known_at_run_time(tmp_path: Path) -> None:
    shape = dataset_shape(_spec(tmp_path, 'table = "app.documents"\nsample = 3000\n'))
    assert shape is not None
    assert (shape.rows, shape.dim, shape.queries) == (3000, 0, 1000)
    assert "read from the server at run time" in shape.description
    assert "app.documents" in shape.description


def test_opclass_metrics_and_kinds() -> None:
    assert opclass_metric("vector_cosine_ops") == Metric.COSINE
    assert opclass_metric("halfvec_l2_ops") == Metric.L2
    assert opclass_metric("vector_ip_ops") == Metric.INNER_PRODUCT
    assert opclass_metric("vector_l1_ops") is None and opclass_metric("bit_hamming_ops") is None
    assert PG_KINDS["int4"] == "int" and PG_KINDS["_varchar"] == "text[]"
    assert PG_KINDS["date"] == "timestamp" and PG_KINDS["json"] == "jsonb"


def test_record_round_trips() -> None:
    record = TableSourceInfo(
        table="app.documents",
        column="embedding",
        id_column="id",
        vector_type="halfvec",
        dim=384,
        metric="cosine",
        metric_from="index d_hnsw (halfvec_cosine_ops)",
        rows_in_source=10,
        null_vectors=1,
        rows_copied=8,
        sample=None,
        seed=1,
        queries_from="held-out rows",
        held_out=2,
        snapshot_at="2026-12-03 14:00:00+00",
        copy_method="insert_select",
        copy_method_from="auto",
        copy_seconds=0.5,
        checksum="123",
        attributes=({"name": "lang", "source_type": "text", "kind": "text"},),
        notes=("a note",),
    )
    data = record.to_dict()
    assert data["attributes"] == [{"name": "lang", "source_type": "text", "kind": "text"}]
    assert TableSourceInfo.from_dict(data) == record
    assert TableSourceInfo.from_dict({**data, "added_later": 1}) == record


def test_the_runs_own_items_table_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'table = "pgvbench.table_spec_items"\n')
    with pytest.raises(DatasetError, match="is the table this run loads into"):
        inspect(None, spec)  # type: ignore[arg-type]  # refused before the server is asked
