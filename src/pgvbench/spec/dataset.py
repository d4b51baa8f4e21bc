"""The [dataset] table of a vector experiment: one parser per source.

Every source may carry attributes (columns beside the vectors: labels, dates, tags) that
are loaded as real columns and filtered on by [filtered]; each parser names the keys its
source accepts, so a key of another source is refused with the allowed ones.
"""

from __future__ import annotations

from pathlib import Path

from ..datasets.synthetic import MAX_SCALE_SPREAD, MAX_SIZE_SKEW, MAX_TAIL_DOF, MIN_TAIL_DOF
from ..metrics import Metric
from . import dataset_files
from .labels import LabelsSpec as LabelsSpec  # the records DatasetSpec.labels holds
from .labels import parse_labels
from .model import DATASET_SOURCES, DISTRIBUTIONS, DatasetSpec
from .table import Table

_COMMON = ["source", "metric"]


def parse_dataset(t: Table, base_dir: Path) -> DatasetSpec:
    source = t.choice("source", DATASET_SOURCES, required=True)
    if source == "synthetic":
        return _synthetic(t)
    if source == "hdf5":
        return _hdf5(t, base_dir)
    if source == "npy":
        return _npy(t, base_dir)
    if source == "parquet":
        return _parquet(t, base_dir)
    return _table(t, base_dir)


def _metric(t: Table, *, required: bool = False) -> Metric:
    return Metric(t.choice("metric", [m.value for m in Metric], default="l2", required=required))


def _synthetic(t: Table) -> DatasetSpec:
    synthetic = ["distribution", "n", "dim", "clusters", "spread", "intrinsic_dim", "queries"]
    heterogeneity = ["size_skew", "scale_spread", "tail_dof"]  # generate_clustered's
    t.only([*_COMMON, *synthetic, *heterogeneity, "labels"])  # labels: spec/labels.py
    dim = t.integer("dim", required=True, minimum=1, maximum=16000)
    intrinsic = t.integer("intrinsic_dim", default=0, minimum=0, maximum=dim)
    tail_dof = t.number("tail_dof", default=0.0, minimum=0.0, maximum=MAX_TAIL_DOF)
    if 0 < tail_dof < MIN_TAIL_DOF:
        t.fail(
            "tail_dof",
            f"= {tail_dof!r} must be 0 (Gaussian) or between {MIN_TAIL_DOF:g} "
            f"and {MAX_TAIL_DOF:g} (Student-t degrees of freedom)",
        )
    return DatasetSpec(
        source="synthetic",
        metric=_metric(t),
        distribution=t.choice("distribution", DISTRIBUTIONS, default="clustered"),
        n=t.integer("n", required=True, minimum=1, maximum=100_000_000),
        dim=dim,
        clusters=t.integer("clusters", default=64, minimum=1),
        spread=t.number("spread", default=0.3, minimum=1e-6),
        intrinsic_dim=intrinsic or None,
        size_skew=t.number("size_skew", default=0.0, minimum=0.0, maximum=MAX_SIZE_SKEW),
        scale_spread=t.number("scale_spread", default=0.0, minimum=0.0, maximum=MAX_SCALE_SPREAD),
        tail_dof=tail_dof,
        queries=t.integer("queries", default=1000, minimum=1, maximum=1_000_000),
        labels=parse_labels(t) if "labels" in t.data else (),
    )


def _hdf5(t: Table, base_dir: Path) -> DatasetSpec:
    return dataset_files.hdf5(t, base_dir)


def _npy(t: Table, base_dir: Path) -> DatasetSpec:
    return dataset_files.npy(t, base_dir)


def _parquet(t: Table, base_dir: Path) -> DatasetSpec:
    return dataset_files.parquet(t, base_dir)


#: [dataset] copy_method values ("auto": the faster, measured in bench/table_copy.py)
COPY_METHODS = ("auto", "insert_select", "copy")


def _table(t: Table, base_dir: Path) -> DatasetSpec:
    """A user's existing table, read only: copied (sampled) into pgvbench's schema."""
    t.only(
        [
            *_COMMON,
            "table",
            "column",
            "id",
            "attributes",
            "sample",
            "queries_from",
            "queries",
            "queries_table",
            "queries_file",
            "copy_method",
        ]
    )
    table = t.string("table", required=True)
    if len(table.split(".")) != 2 or not all(table.split(".")):
        t.fail("table", f'= {table!r} must be schema-qualified, e.g. "app.documents"')
    column = t.string("column", default="embedding")
    id_column = t.string("id", default="id")
    names = _name_list(t, "attributes")
    for name in names:
        if name in (column, id_column, "id", "embedding"):
            t.fail(
                "attributes",
                f"contains {name!r}: the id and vector columns are copied anyway, and pgvbench's "
                'table names them "id" and "embedding"; list only the other columns',
            )
    given = [k for k in ("queries_from", "queries_table", "queries_file") if k in t.data]
    if len(given) > 1:
        t.fail(given[1], f"and {given[0]} both name the queries; keep one")
    queries_from = (
        t.choice("queries_from", ("sample",), default="sample")
        if not given or given[0] == "queries_from"
        else ""
    )
    queries_table = t.string("queries_table") if "queries_table" in t.data else ""
    if queries_table and (len(queries_table.split(".")) != 2 or not all(queries_table.split("."))):
        t.fail("queries_table", f'= {queries_table!r} must be schema-qualified, e.g. "app.queries"')
    queries_file = t.path("queries_file", base_dir) if "queries_file" in t.data else None
    if queries_file is not None and queries_file.suffix.lower() not in (".npy", ".fvecs"):
        t.fail("queries_file", f"= {str(queries_file)!r} must be a .npy or .fvecs file")
    return DatasetSpec(
        source="table",
        # placeholder when absent: the metric then comes from an index on the column
        metric=_metric(t),
        metric_given="metric" in t.data,
        table=table,
        column=column,
        id_column=id_column,
        attributes={name: name for name in names},
        sample=t.integer("sample", minimum=1) if "sample" in t.data else None,
        queries_from=queries_from,
        queries=t.integer("queries", default=1000, minimum=1, maximum=1_000_000),
        queries_table=queries_table,
        queries_file=queries_file,
        copy_method=t.choice("copy_method", COPY_METHODS, default="auto").replace("auto", ""),
    )


def _name_list(t: Table, key: str) -> list[str]:
    value = t.data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        t.fail(key, f"= {value!r} must be a list of column names")
    if len(set(value)) != len(value):
        t.fail(key, f"= {value!r} names a column twice")
    return list(value)
