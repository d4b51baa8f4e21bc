"""The drift study through its Study interface: a small real run on the embedded server,
its record round-tripped through JSON and results.json, advice with evidence, the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgvbench.datasets.agents import AgentDataset, generate_agent_dataset
from pgvbench.db.agent_schema import (
    create_agent_schema,
    create_secondary_indexes,
    load_agent_dataset,
)
from pgvbench.errors import SpecError
from pgvbench.progress import Reporter
from pgvbench.report.document import Heading, Image, Table
from pgvbench.results import (
    Results,
    load_results,
    write_results,
)
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import parse_spec
from pgvbench.spec.table import Table as SpecTable
from pgvbench.studies.base import DataShape, SpecContext, StudyContext
from pgvbench.studies.drift import STUDY, DriftStudyResult
from pgvbench.studies.drift.advice import drift_recommendations
from pgvbench.studies.drift.report import DRIFT_FIGURE
from pgvbench.studies.drift.spec import DriftSpec
from study_support import results_for

pytestmark = pytest.mark.integration

DRIFT = {
    "duration_seconds": 1.5,
    "interval_seconds": 0.5,
    "insert_rate": 200,
    "expire_rate": 100,
    "queries": 10,
    "update_samples": 100,
}


def _spec_data(name: str, index: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "kind": "agents", "seed": 5, "schema": f"s_{name}"},
        "agents": {
            "tenants": 3,
            "agents": 12,
            "memories": 2000,
            "chunks": 200,
            "tasks": 100,
            "messages_per_task": 1,
            "dim": 16,
            "metric": "cosine",
        },
        "index": [index],
        "workload": {"k": 5, "mix": {"memory_recall": 1}},
    }


def _context(spec: ExperimentSpec) -> SpecContext:
    return SpecContext(
        where="drift.toml", kind=spec.kind, seed=spec.seed, query=spec.query, indexes=spec.indexes
    )


def _parse(spec: ExperimentSpec, table: dict[str, Any]) -> DriftSpec:
    return STUDY.parse(SpecTable("drift.toml", "drift", table), _context(spec))


@pytest.fixture
def platform(
    embedded_server: EmbeddedServer, unique_name: str
) -> Iterator[tuple[ExperimentSpec, AgentDataset, str]]:
    """The agent platform of a parsed spec, loaded, with an HNSW index on memories."""
    hnsw = {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}
    spec = parse_spec(_spec_data(unique_name, hnsw))
    dataset = generate_agent_dataset(spec.agents.data)
    dsn, schema = embedded_server.dsn(), spec.schema
    with connect(dsn) as conn:
        create_agent_schema(conn, schema=schema, prefix=spec.name, dim=16)
        load_agent_dataset(conn, schema=schema, prefix=spec.name, dataset=dataset)
        create_secondary_indexes(conn, schema=schema, prefix=spec.name)
        conn.execute(
            f"CREATE INDEX {spec.name}_memories_hnsw ON {schema}.{spec.name}_memories "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32)"
        )
        conn.execute(f"VACUUM ANALYZE {schema}.{spec.name}_memories")
    yield spec, dataset, dsn
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def measured(
    platform: tuple[ExperimentSpec, AgentDataset, str],
) -> tuple[ExperimentSpec, DriftStudyResult]:
    spec, dataset, dsn = platform
    ctx = StudyContext(
        spec=spec,
        target=Target(dsn, "embedded"),
        server=None,
        reporter=Reporter(enabled=False),
        agent_data=dataset,
    )
    return spec, STUDY.run(ctx, _parse(spec, DRIFT))


def _results(spec: ExperimentSpec) -> Results:
    return results_for(
        run_name=spec.name, spec={"experiment": {"name": spec.name, "kind": "agents"}}
    )


def test_a_real_record_round_trips(
    measured: tuple[ExperimentSpec, DriftStudyResult], tmp_path: Path
) -> None:
    spec, result = measured
    assert result.update_cost is not None and result.drift is not None
    assert result.drift.k == 5 and result.drift.metric == "cosine"  # [workload] k, [agents]
    labels = [c.label for c in result.drift.checkpoints]
    assert labels[0] == "start" and labels[-1] == "end"
    data = json.loads(json.dumps(result.to_dict()))
    assert DriftStudyResult.from_dict(data) == result
    # stored where results.json has always kept it, and read back from the file
    results = _results(spec)
    STUDY.store(results, result)
    assert results.agent is not None and results.agent.drift == data["drift"]
    assert results.agent.update_cost == data["update_cost"]
    path = tmp_path / "results.json"
    write_results(results, path)
    assert STUDY.load(load_results(path)) == result
    assert STUDY.load(_results(spec)) is None


def test_advice_has_evidence_and_the_report_its_figure(
    measured: tuple[ExperimentSpec, DriftStudyResult], tmp_path: Path
) -> None:
    _, result = measured
    advice = STUDY.advice(result)
    assert advice and all(r.text and r.evidence for r in advice)
    assert [r.text for r in advice] == drift_recommendations(result.drift, result.update_cost)
    assert advice[0].text.startswith("Updating importance in the embedding table")
    images = STUDY.figures(result, tmp_path)
    assert images == [Image(DRIFT_FIGURE, "Recall while memories are inserted and expired")]
    assert (tmp_path / DRIFT_FIGURE).read_bytes()[:4] == b"\x89PNG"
    blocks = STUDY.report(result, images, _results(measured[0]))
    headings = [b.text for b in blocks if isinstance(b, Heading)]
    assert headings[0] == "Churn" and "Recall over time" in headings
    assert images[0] in blocks and sum(isinstance(b, Table) for b in blocks) >= 2


def test_a_record_missing_fields_is_tabled_but_not_drawn(
    measured: tuple[ExperimentSpec, DriftStudyResult], tmp_path: Path
) -> None:
    _, result = measured
    data = result.to_dict()
    assert data["drift"] is not None
    del data["drift"]["checkpoints"][0]["label"]
    partial = DriftStudyResult.from_dict(data)
    assert partial.drift_problem == "'missing field DriftCheckpoint.label'"
    assert STUDY.figures(partial, tmp_path) == []
    older = result.to_dict()
    del older["drift"]["query_ms"]  # absent before 0.2: a default, not a problem
    assert DriftStudyResult.from_dict(older).drift_problem is None


def test_drift_needs_an_hnsw_index(unique_name: str) -> None:
    ivfflat = parse_spec(_spec_data(unique_name, {"kind": "ivfflat", "lists": 4}))
    with pytest.raises(SpecError, match=r"\[drift\] measures recall through an HNSW index"):
        _parse(ivfflat, {})
    hnsw = parse_spec(_spec_data(unique_name, {"kind": "hnsw"}))
    assert _parse(hnsw, {}) == DriftSpec()
    with pytest.raises(SpecError, match="interval_seconds = 9 exceeds duration_seconds = 5"):
        _parse(hnsw, {"duration_seconds": 5, "interval_seconds": 9})


def test_estimate_counts_the_rebuild_and_the_checkpoints(unique_name: str) -> None:
    spec = parse_spec(_spec_data(unique_name, {"kind": "hnsw"}))
    shape = DataShape(
        rows=2000, dim=16, queries=0, rows_from="[agents]", dim_from="[agents]", queries_from=""
    )
    (item,) = STUDY.estimate(_parse(spec, DRIFT), spec, shape)
    assert item.what == "drift: update cost and churn" and item.count == 1
    assert item.builds == 1 and item.measurements == 3
    assert item.seconds > DRIFT["duration_seconds"]
