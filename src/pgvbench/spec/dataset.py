"""The [dataset] table of a vector experiment: one parser per source.

Every source may carry attributes (columns beside the vectors: labels, dates, tags) that
are loaded as real columns and filtered on by [filtered]; each parser names the keys its
source accepts, so a key of another source is refused with the allowed ones.
"""

from __future__ import annotations

from pathlib import Path

from ..metrics import Metric
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
    t.only([*_COMMON, *synthetic, "labels"])  # labels: [[dataset.labels]], spec/labels.py
    dim = t.integer("dim", required=True, minimum=1, maximum=16000)
    intrinsic = t.integer("intrinsic_dim", default=0, minimum=0, maximum=dim)
    return DatasetSpec(
        source="synthetic",
        metric=_metric(t),
        distribution=t.choice("distribution", DISTRIBUTIONS, default="clustered"),
        n=t.integer("n", required=True, minimum=1, maximum=100_000_000),
        dim=dim,
        clusters=t.integer("clusters", default=64, minimum=1),
        spread=t.number("spread", default=0.3, minimum=1e-6),
        intrinsic_dim=intrinsic or None,
        queries=t.integer("queries", default=1000, minimum=1, maximum=1_000_000),
        labels=parse_labels(t) if "labels" in t.data else (),
    )


def _hdf5(t: Table, base_dir: Path) -> DatasetSpec:
    t.only([*_COMMON, "path", "queries"])
    if "metric" in t.data:
        t.fail("metric", "is read from the HDF5 file's 'distance' attribute; remove it")
    return DatasetSpec(
        source="hdf5",
        metric=Metric.L2,  # replaced by the file's distance attribute on load
        path=t.path("path", base_dir),
        queries=t.integer("queries", default=0, minimum=0),
    )


def _npy(t: Table, base_dir: Path) -> DatasetSpec:
    t.only([*_COMMON, "base", "queries_file"])
    return DatasetSpec(
        source="npy",
        metric=_metric(t, required=True),
        base=t.path("base", base_dir),
        queries_file=t.path("queries_file", base_dir),
    )


def _parquet(t: Table, base_dir: Path) -> DatasetSpec:
    raise t.fail("source", '= "parquet" is not implemented yet')


def _table(t: Table, base_dir: Path) -> DatasetSpec:
    raise t.fail("source", '= "table" is not implemented yet')
