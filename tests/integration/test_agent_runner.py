"""An agent experiment end to end: generate, load, mix through [load], filtered, drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.errors import SpecError
from pgvbench.progress import Reporter
from pgvbench.results import load_results
from pgvbench.runner.agents import AgentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from support import write_toml

pytestmark = pytest.mark.integration


def _agent_spec(name: str) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "kind": "agents", "seed": 5, "schema": f"s_{name}"},
        "agents": {
            "tenants": 3,
            "agents": 12,
            "memories": 3000,
            "chunks": 600,
            "tasks": 100,
            "messages_per_task": 2,
            "dim": 16,
            "metric": "cosine",
            "doc_kb": [0.3, 0.8],
        },
        "query": {"statement_timeout_ms": 5000},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}],
        "workload": {
            "k": 5,
            "mix": {
                "memory_recall": 4,
                "rag_search": 2,
                "memory_write": 2,
                "task_update": 1,
                "message_append": 1,
                "agent_lookup": 1,
                "memory_expire": 1,
            },
        },
        "load": {
            "clients": [2],
            "warmup_seconds": 0.2,
            "duration_seconds": 1.0,
            "pooling": [{"strategy": "direct"}],
        },
        "filtered": {
            "strategies": ["hnsw_plain", "hnsw_relaxed", "btree_exact"],
            "queries_per_bucket": 5,
            "measure_seconds": 0.3,
            "bucket_edges": [0.05, 0.15],
        },
        "drift": {
            "duration_seconds": 3,
            "interval_seconds": 1,
            "insert_rate": 100,
            "expire_rate": 50,
            "queries": 10,
            "update_samples": 50,
        },
    }


def test_agent_experiment_end_to_end(
    embedded_server: EmbeddedServer, unique_name: str, tmp_path: Path
) -> None:
    spec = parse_spec(_agent_spec(unique_name))
    runner = AgentRunner(spec, out_dir=tmp_path / "out", reporter=Reporter(enabled=False))
    runner.prepare()
    results = runner.run(
        Target(embedded_server.dsn(), "embedded", postmaster_pid=embedded_server.postmaster_pid())
    )
    assert results.status == "complete", results.failure
    agent = results.agent
    assert agent is not None
    assert agent.tables["memories"]["rows"] == 3000
    assert agent.selectivity["memories_per_agent"]["total"] == 3000
    # how hard the memories are, measured as for any dataset (issue 13: every dataset)
    assert results.dataset is not None and results.dataset.difficulty is not None
    assert results.dataset.difficulty["lid"]["median"] > 0
    assert results.dataset.difficulty["rc"]["median"] > 1
    # the vector index on memories and chunks
    assert {b.label for b in results.indexes} == {
        "hnsw(m=8,ef_construction=32) [memories]",
        "hnsw(m=8,ef_construction=32) [chunks]",
    }
    # the mix: every operation ran, per-operation counts add up, no errors
    (point,) = results.load_points
    assert point.workload == "agent_mix" and point.valid, point.notes
    assert point.errors == 0, point.error_messages
    detail = point.operations_detail
    assert set(detail) == {
        "memory_recall",
        "rag_search",
        "memory_write",
        "task_update",
        "message_append",
        "agent_lookup",
        "memory_expire",
    }
    assert sum(d.operations for d in detail.values()) == point.operations
    assert all(d.operations > 0 for d in detail.values()), detail
    # writes really happened: more tasks history, new memories (minus expired)
    schema = f"s_{unique_name}"
    with connect(embedded_server.dsn()) as conn:
        row = conn.execute(f"SELECT count(*) FROM {schema}.{unique_name}_messages").fetchone()
    assert row is not None and row[0] > 200
    # filtered strategies and drift were measured and summarised
    assert agent.filtered is not None and agent.filtered["rows"]
    assert agent.filtered_winners
    assert agent.drift is not None and agent.drift["checkpoints"]
    assert agent.update_cost is not None
    assert agent.recommendations
    # the file on disk round-trips and renders
    on_disk = load_results(tmp_path / "out" / "results.json")
    assert on_disk.agent is not None and on_disk.agent.filtered == agent.filtered
    assert main(["report", str(tmp_path / "out" / "results.json")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Filtered vector search" in report and "Operations" in report


def test_read_only_custom_op_cannot_share_a_mix_with_writes(unique_name: str) -> None:
    spec = _agent_spec(unique_name)
    spec["operation"] = [
        {
            "name": "peek",
            "sql": f"SELECT id FROM s_{unique_name}.{unique_name}_agents LIMIT 1",
            "weight": 1,
        }
    ]
    with pytest.raises(SpecError, match="read-only"):
        parse_spec(spec)


def test_custom_operation_through_the_cli(
    embedded_server: EmbeddedServer,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _agent_spec(unique_name)
    for key in ("workload", "filtered", "drift"):
        del spec[key]
    spec["operation"] = [
        {
            "name": "by_agent",
            "sql": (
                f"SELECT id FROM s_{unique_name}.{unique_name}_memories "
                "WHERE agent_id = :agent ORDER BY embedding <=> :qvec LIMIT 5"
            ),
            "weight": 1,
            "params": {
                "agent": {"generator": "agent_uuid", "zipf": 1.1},
                "qvec": {"generator": "query_vector", "near": "agent"},
            },
        }
    ]
    path = write_toml(tmp_path / "custom.toml", spec)
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(["run", str(path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])
    assert code == 0
    results = load_results(out / "results.json")
    (point,) = results.load_points
    assert point.operations > 0 and point.errors == 0, point.error_messages
    assert set(point.operations_detail) == {"by_agent"}
