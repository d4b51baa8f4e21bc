"""The filtered-search study through its Study interface: a small real run on the embedded
server, its record round-tripped through JSON and results.json, advice with evidence, the
report section, the validity lines, the dimension check and the estimate."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgvbench.datasets.agents import AgentDataset, generate_agent_dataset
from pgvbench.db.agent_schema import create_agent_schema, load_agent_dataset
from pgvbench.progress import Reporter
from pgvbench.report.document import Bullets, Heading, Image, Table
from pgvbench.results import Results, load_results, write_results
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import parse_spec
from pgvbench.studies.base import DataShape, StudyContext
from pgvbench.studies.filtered import (
    STUDY,
    FilteredComparison,
    FilteredResult,
    FilteredSpec,
    summary_sentences,
    winners,
)
from pgvbench.studies.filtered.report import FILTERED_ALT, FILTERED_FIGURE
from study_support import results_for

pytestmark = pytest.mark.integration

FILTERED = {
    "strategies": ["hnsw_plain", "hnsw_relaxed", "btree_exact"],
    "ef_search": 10,  # low: small agents under-fill without iterative scan
    "bucket_edges": [0.01, 0.05],
    "queries_per_bucket": 5,
    "measure_seconds": 0.1,
}


def _spec_data(name: str, filtered: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "kind": "agents", "seed": 5, "schema": f"s_{name}"},
        "agents": {
            "tenants": 3,
            "agents": 40,
            "memories": 2000,
            "chunks": 0,
            "tasks": 0,
            "messages_per_task": 0,
            "dim": 16,
            "metric": "cosine",
        },
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32}],
        "filtered": filtered,
    }


def _filtered_spec(spec: ExperimentSpec) -> FilteredSpec:
    parsed = spec.study_specs["filtered"]
    assert isinstance(parsed, FilteredSpec)
    return parsed


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[tuple[ExperimentSpec, FilteredResult]]:
    """The platform loaded and the three strategies compared once."""
    spec = parse_spec(_spec_data("tstudyfilt", FILTERED))
    dataset: AgentDataset = generate_agent_dataset(spec.agents.data)
    dsn, schema = embedded_server.dsn(), spec.schema
    with connect(dsn) as conn:
        create_agent_schema(conn, schema=schema, prefix=spec.name, dim=16)
        load_agent_dataset(conn, schema=schema, prefix=spec.name, dataset=dataset)
        conn.execute(f"ANALYZE {schema}.{spec.name}_memories")
    ctx = StudyContext(
        spec=spec,
        target=Target(dsn, "embedded"),
        server=None,
        reporter=Reporter(enabled=False),
        agent_data=dataset,
    )
    try:
        yield spec, STUDY.run(ctx, _filtered_spec(spec))
    finally:
        with connect(dsn) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _results(spec: ExperimentSpec) -> Results:
    return results_for(
        run_name=spec.name, spec={"experiment": {"name": spec.name, "kind": "agents"}}
    )


def test_a_real_record_round_trips(
    measured: tuple[ExperimentSpec, FilteredResult], tmp_path: Path
) -> None:
    spec, result = measured
    comparison = result.comparison
    assert comparison.k == 10 and comparison.ef_search == 10 and comparison.metric == "cosine"
    assert [b.label for b in comparison.buckets] == ["< 1%", "1-5%", "> 5%"]
    assert {r.strategy for r in comparison.rows} == set(FILTERED["strategies"])
    assert result.winners == winners(comparison) and result.run_name == spec.name
    data = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert FilteredComparison.from_dict(data) == comparison
    # stored where results.json has always kept it, and read back from the file
    results = _results(spec)
    STUDY.store(results, result)
    assert results.agent is not None and results.agent.filtered == data
    assert results.agent.filtered_winners == result.winners
    path = tmp_path / "results.json"
    write_results(results, path)
    assert STUDY.load(load_results(path)) == result
    assert STUDY.load(_results(spec)) is None


def test_advice_has_evidence(measured: tuple[ExperimentSpec, FilteredResult]) -> None:
    _, result = measured
    advice = STUDY.advice(result)
    assert advice and all(r.text and r.evidence for r in advice)
    assert [r.text for r in advice] == summary_sentences(result.comparison)
    # a bucket names its winner, or (on a busy host) two strategies within the noise
    assert any(
        " wins: recall " in r.text or "within the noise of this run" in r.text for r in advice
    )


def test_report_section_figure_and_validity(
    measured: tuple[ExperimentSpec, FilteredResult], tmp_path: Path
) -> None:
    spec, result = measured
    images = STUDY.figures(result, tmp_path)
    assert images == [Image(FILTERED_FIGURE, FILTERED_ALT)]
    assert (tmp_path / FILTERED_FIGURE).read_bytes()[:4] == b"\x89PNG"
    blocks = STUDY.report(result, [*images, Image("other.png", "not ours")], _results(spec))
    headings = [b.text for b in blocks if isinstance(b, Heading)]
    # "What the data holds": the agent label's cardinality and shares (issue 13, item 7)
    assert headings == ["Filtered vector search", "What the data holds", "Strategy setup", "Notes"]
    assert images[0] in blocks and Image("other.png", "not ours") not in blocks
    rows = next(b for b in blocks if isinstance(b, Table) and b.header[0] == "Bucket")
    assert len(rows.rows) == len(result.comparison.rows)
    assert sum(cells[14] == "★" for cells in rows.rows) == len(result.winners)
    assert any(isinstance(b, Bullets) for b in blocks)
    measured_rows = [r for r in result.comparison.rows if r.n_queries]
    invalid = [r for r in measured_rows if not r.valid]
    assert len(STUDY.validity(result)) == len(invalid)
    summary = STUDY.validity_summary(result)
    assert summary.startswith(" ") and str(len(measured_rows)) in summary


def test_a_record_missing_fields_still_reports(
    measured: tuple[ExperimentSpec, FilteredResult],
) -> None:
    spec, result = measured
    data = result.comparison.to_dict()
    del data["buckets"], data["setups"]
    for row in data["rows"]:
        del row["latency_p99_ms"], row["scope"], row["valid"]
    older = FilteredComparison.from_dict(data)
    assert older.buckets == () and older.setups == ()
    assert all(r.latency_p99_ms is None and r.valid and r.scope == "" for r in older.rows)
    partial = FilteredResult(comparison=older, winners=result.winners, run_name=spec.name)
    headings = [b.text for b in STUDY.report(partial, [], _results(spec)) if isinstance(b, Heading)]
    assert headings == ["Filtered vector search", "What the data holds", "Notes"]
    assert STUDY.figures(partial, Path("/nonexistent")) == []  # no p99 left to draw


def test_index_dimension_limit_and_estimate() -> None:
    spec = parse_spec(_spec_data("tfiltdim", FILTERED))
    filtered = _filtered_spec(spec)
    wide = DataShape(
        rows=2000, dim=2001, queries=0, rows_from="", dim_from="[agents] dim = 2001",
        queries_from="",
    )  # fmt: skip
    problem = STUDY.data_problem(filtered, wide)
    assert problem is not None and problem.startswith(
        "[filtered] strategies hnsw_plain, hnsw_relaxed build HNSW or IVFFlat indexes"
    )
    btree_only = FilteredSpec(strategies=("btree_exact",))
    assert STUDY.data_problem(btree_only, wide) is None
    narrow = DataShape(rows=2000, dim=16, queries=0, rows_from="", dim_from="", queries_from="")
    assert STUDY.data_problem(filtered, narrow) is None
    builds, points = STUDY.estimate(filtered, spec, narrow)
    assert (builds.what, builds.count, builds.builds) == ("filtered-search index builds", 1, 1)
    assert (points.what, points.count, points.measurements) == ("filtered-search points", 9, 9)
    assert STUDY.estimate(btree_only, spec, narrow)[0].what == "filtered-search points"


def test_the_specs_recall_target_ranks_and_advises(
    measured: tuple[ExperimentSpec, FilteredResult], tmp_path: Path
) -> None:
    """[filtered] recall_target reaches the winners, the advice and a reloaded record."""
    spec, result = measured
    assert result.recall_target == _filtered_spec(spec).recall_target
    strict = dataclasses.replace(result, recall_target=1.0)
    assert [r.text for r in STUDY.advice(strict)] == summary_sentences(
        result.comparison, recall_target=1.0
    )
    assert [r.text for r in STUDY.advice(result)] == summary_sentences(
        result.comparison, recall_target=result.recall_target
    )
    # a results file remembers the run's target through its recorded spec
    results = _results(spec)
    results.spec["agents"] = {"filtered": {"recall_target": 0.97}}
    STUDY.store(results, result)
    path = tmp_path / "results.json"
    write_results(results, path)
    loaded = STUDY.load(load_results(path))
    assert loaded is not None and loaded.recall_target == 0.97
