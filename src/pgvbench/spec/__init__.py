"""Experiment specs: the model (model.py), the TOML parser (parse.py), the validating
table reader every study's parser uses (table.py), server settings (settings.py) and the
limits a spec is checked against (limits.py).

Modules inside pgvbench import from those submodules; the names below are for users
and tests.
"""

from .limits import check_dataset_shape, dataset_problem
from .model import (
    DatasetSpec,
    ExperimentSpec,
    IndexSpec,
    LoadSpec,
    PoolingSpec,
    QuerySpec,
    ServerSpec,
    SweepConfig,
)
from .parse import load_spec, parse_spec
from .table import Table

__all__ = [
    "DatasetSpec",
    "ExperimentSpec",
    "IndexSpec",
    "LoadSpec",
    "PoolingSpec",
    "QuerySpec",
    "ServerSpec",
    "SweepConfig",
    "Table",
    "check_dataset_shape",
    "dataset_problem",
    "load_spec",
    "parse_spec",
]
