"""Recall margins on a real server: the recall rule in force, the lower confidence bound and
zero-recall count of every sweep point, and [query] rebuilds' build-to-build spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgvbench.progress import Reporter
from pgvbench.recall_rule import ANN_BENCHMARKS, STRICT
from pgvbench.report.sections.summary import recommendation
from pgvbench.results import Results, load_results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec

pytestmark = pytest.mark.integration
HNSW = "hnsw(m=4,ef_construction=8)"


def _run(server: EmbeddedServer, spec_data: dict[str, Any], out: Path) -> Results:
    runner = ExperimentRunner(
        parse_spec(spec_data),
        out_dir=out,
        cache_dir=out / "cache",
        reporter=Reporter(enabled=False),
    )
    runner.run(Target(server.dsn(), "embedded"))
    return load_results(out / "results.json")  # what a later report reads


def test_a_run_records_the_rule_bound_and_zero_recall(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    tiny_spec["query"]["measure_seconds"] = 0.1
    # ef_search 1 on a sparse graph: some queries find none of their neighbours
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [1, 40]}]
    results = _run(embedded_server, tiny_spec, tmp_path / "out")
    assert results.recall_rule == ANN_BENCHMARKS
    assert results.spec["query"]["recall_epsilon"] == 0.001
    for point in results.runs:
        recall = point.recall
        assert recall is not None and recall.low is not None and recall.zero is not None
        assert recall.queries == 50
        assert 0.0 <= recall.low <= recall.mean
        assert recall.p1 is not None and recall.min <= recall.p1 <= recall.p5
        assert point.rebuilds is None  # one build
    low, high = sorted(results.runs, key=lambda p: p.query_params["hnsw.ef_search"])
    assert low.recall is not None and high.recall is not None
    assert low.recall.mean < high.recall.mean
    assert low.recall.low is not None and low.recall.mean - low.recall.low > 0  # a real spread


def test_strict_rule_is_recorded(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    tiny_spec["query"].update(measure_seconds=0.1, recall_epsilon="strict")
    tiny_spec["index"] = [{"kind": "none"}]
    results = _run(embedded_server, tiny_spec, tmp_path / "out")
    assert results.recall_rule == STRICT
    (point,) = results.runs
    assert point.recall is not None and point.recall.mean == 1.0 and point.recall.zero == 0


def test_rebuilds_record_a_spread(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    tiny_spec["query"].update(measure_seconds=0.1, rebuilds=2)
    tiny_spec["index"] = [
        {"kind": "none"},
        {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [2, 10]},
    ]
    results = _run(embedded_server, tiny_spec, tmp_path / "out")
    assert len(results.indexes) == 2  # rebuilds are not separate builds in the file
    exact = next(p for p in results.runs if p.index_kind == "none")
    assert exact.rebuilds is None  # nothing to rebuild
    indexed = [p for p in results.runs if p.index == HNSW]
    assert len(indexed) == 2
    for point in indexed:
        spread = point.rebuilds
        assert spread is not None and point.recall is not None
        assert len(spread.recall) == 2 and len(spread.qps) == 2
        assert spread.recall[0] == point.recall.mean  # the sweep's own build first
        assert all(0.0 <= r <= 1.0 for r in spread.recall)
        assert all(q > 0 for q in spread.qps)
    # the headline names the chosen index point's spread (a target every point clears)
    results.runs = indexed
    target = min(p.recall.low or 0.0 for p in indexed if p.recall is not None)
    text = recommendation(results, max(target, 0.01))
    assert f"fastest configuration is {HNSW}" in text
    assert "Across 2 builds of this index its recall ranged" in text
