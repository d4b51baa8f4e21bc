"""Per-row data a dataset's source has that the run did not load as attributes: named in
the run's notes and results (``DatasetInfo.attributes_unloaded``), never silently dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Dataset
from .file_attributes import hdf5_unloaded
from .parquet import unloaded_parquet


def unloaded_columns(spec: Any, dataset: Dataset) -> list[str]:
    """``spec`` is the DatasetSpec (None for agent data)."""
    if spec is not None and spec.source == "parquet":
        return unloaded_parquet(spec, dataset)
    if spec is None or spec.source != "hdf5" or spec.path is None:
        return []
    loaded = {a.name: a.origin.split(" in ")[0] for a in dataset.attributes}
    return hdf5_unloaded(Path(spec.path), rows=dataset.n, loaded=loaded)
