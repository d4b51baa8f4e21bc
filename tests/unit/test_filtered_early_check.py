"""A vector spec whose [filtered] has nothing to filter on is refused when the dataset is
read, before a server is touched (it used to be refused only when the study started,
after every build and sweep of the run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvbench.errors import SpecError
from pgvbench.progress import Reporter
from pgvbench.runner import ExperimentRunner
from pgvbench.spec.parse import parse_spec


def _spec(tmp_path: Path, labels: list[dict[str, object]]) -> ExperimentRunner:
    data = {
        "experiment": {"name": "early", "seed": 1},
        "dataset": {"source": "synthetic", "n": 300, "dim": 8, "queries": 20, "labels": labels},
        "query": {"recall_queries": 10},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 16, "ef_search": [10]}],
        "filtered": {"predicates": ["range"]},
    }
    if not labels:
        del data["dataset"]["labels"]  # type: ignore[attr-defined]
    spec = parse_spec(data, source=tmp_path / "early.toml")
    return ExperimentRunner(
        spec, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )  # fmt: skip


def test_no_attribute_to_filter_on_is_refused_before_the_server(tmp_path: Path) -> None:
    runner = _spec(tmp_path, [])
    with pytest.raises(SpecError) as err:
        runner.prepare()  # client side only: no server exists in this test
    message = str(err.value)
    assert "early.toml" in message and "[filtered]" in message
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_predicate_without_its_kind_of_column_names_what_the_dataset_has(
    tmp_path: Path,
) -> None:
    runner = _spec(tmp_path, [{"name": "label", "kind": "int", "values": 5}])
    with pytest.raises(SpecError) as err:
        runner.prepare()
    assert "range" in str(err.value) and "label" in str(err.value)


def test_a_usable_attribute_passes_the_early_check(tmp_path: Path) -> None:
    runner = _spec(tmp_path, [{"name": "published_at", "kind": "timestamp"}])
    runner.prepare()
