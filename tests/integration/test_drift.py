"""Recall drift under writes and the cost of updates next to an HNSW index (real server)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pgvbench.datasets.agents import AgentDataset, AgentDataSpec, generate_agent_dataset
from pgvbench.datasets.groundtruth import exact_knn
from pgvbench.db.agent_schema import (
    create_agent_schema,
    create_secondary_indexes,
    load_agent_dataset,
)
from pgvbench.engine.histogram import LatencyHistogram
from pgvbench.errors import SafetyError
from pgvbench.metrics import Metric
from pgvbench.results import _build
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.drift.advice import drift_recommendations
from pgvbench.studies.drift.churn import measure_drift
from pgvbench.studies.drift.mirror import LiveMirror
from pgvbench.studies.drift.plot import plot_recall_over_time
from pgvbench.studies.drift.records import DriftResult, UpdateCostResult
from pgvbench.studies.drift.update_cost import measure_update_cost
from pgvbench.workloads.vector import index_names_in_plan

pytestmark = pytest.mark.integration

MEMORIES, DIM, K = 3000, 16, 10


@dataclasses.dataclass
class Platform:
    dsn: str
    schema: str
    prefix: str
    dataset: AgentDataset

    @property
    def memories(self) -> str:
        return f"{self.schema}.{self.prefix}_memories"

    @property
    def hnsw(self) -> str:
        return f"{self.prefix}_memories_hnsw"


@pytest.fixture
def platform(embedded_server: EmbeddedServer, unique_name: str) -> Iterator[Platform]:
    """A small agent platform with its secondary indexes and an HNSW index on memories."""
    spec = AgentDataSpec(
        tenants=4, agents=24, memories=MEMORIES, chunks=40, tasks=400, messages_per_task=1,
        dim=DIM, metric=Metric.COSINE, seed=11,
    )  # fmt: skip
    p = Platform(
        embedded_server.dsn(), f"s_{unique_name}", unique_name, generate_agent_dataset(spec)
    )
    with connect(p.dsn) as conn:
        create_agent_schema(conn, schema=p.schema, prefix=p.prefix, dim=DIM)
        load_agent_dataset(conn, schema=p.schema, prefix=p.prefix, dataset=p.dataset)
        create_secondary_indexes(conn, schema=p.schema, prefix=p.prefix)
        conn.execute(
            f"CREATE INDEX {p.hnsw} ON {p.memories} USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 8, ef_construction = 32)"
        )
        conn.execute(f"VACUUM ANALYZE {p.memories}")
    yield p
    with connect(p.dsn) as conn:
        conn.execute(f"DROP SCHEMA {p.schema} CASCADE")


def _near_copies(queries: np.ndarray, seed: int) -> tuple[list[int], Callable[[int], np.ndarray]]:
    """A new_vectors source: each insert is a query plus tiny noise, queries in turn."""
    rng = np.random.default_rng(seed)
    made: list[int] = []

    def draw(n: int) -> np.ndarray:
        which = (len(made) + np.arange(n)) % queries.shape[0]
        made.extend(which.tolist())
        rows = queries[which] + rng.normal(0, 1e-3, size=(n, queries.shape[1]))
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        out: np.ndarray = rows.astype(np.float32)
        return out

    return made, draw


def test_ground_truth_follows_the_rows_present_at_each_checkpoint(platform: Platform) -> None:
    rng = np.random.default_rng(5)
    queries = np.stack([platform.dataset.query_vector_for_agent(a, rng) for a in range(20)])
    made, draw = _near_copies(queries, 6)
    result = measure_drift(
        platform.dsn, schema=platform.schema, prefix=platform.prefix, dataset=platform.dataset,
        k=K, metric="cosine", ef_search=40, duration_s=3.0, insert_rate=50, expire_rate=30,
        interval_s=1.0, queries=queries, seed=3, new_vectors=draw,
    )  # fmt: skip
    labels = [c.label for c in result.checkpoints]
    assert labels[0] == "start" and labels[-1] == "end" and len(labels) >= 4
    for c in result.checkpoints:
        # recall is computed over the rows present then: the mirror matches the table
        assert c.live_rows == c.db_rows == MEMORIES + c.inserted - c.deleted
    start, end = result.checkpoints[0], result.checkpoints[-1]
    assert end.inserted == len(made) == 150 and end.deleted == 90
    assert not result.notes
    # Every query got ~7 near-copies: the exact top-k over the live rows is mostly new
    # rows, and HNSW finds them, so recall stays high only because the ground truth
    # followed the inserts; the start's ground truth scores the same results far lower.
    assert start.gt_new_share == 0.0 and start.recall_frozen_gt == start.recall_mean
    assert end.gt_new_share >= 0.6
    assert end.returned_new_share >= 0.6
    assert end.recall_mean >= 0.9
    assert end.recall_frozen_gt is not None and end.recall_frozen_gt <= 0.45
    shares = [c.gt_new_share for c in result.checkpoints]
    assert shares == sorted(shares)


def test_dead_tuples_hot_counters_vacuum_and_plot(platform: Platform, tmp_path: Path) -> None:
    result = measure_drift(
        platform.dsn, schema=platform.schema, prefix=platform.prefix, dataset=platform.dataset,
        k=K, metric=Metric.COSINE, ef_search=40, duration_s=3.0, insert_rate=20,
        expire_rate=120, interval_s=1.0, queries=30, seed=4, update_rate=30,
        task_update_rate=30, vacuum_at_s=1.5, autovacuum=False,
    )  # fmt: skip
    points = {c.label: c for c in result.checkpoints}
    start, before, after, end = (
        points["start"], points["before_vacuum"], points["after_vacuum"], points["end"],
    )  # fmt: skip
    assert before.deleted >= 150 and before.dead_tuples >= 150 > start.dead_tuples
    assert after.dead_tuples < before.dead_tuples and after.vacuum_count == before.vacuum_count + 1
    assert end.dead_tuples > after.dead_tuples  # expiry goes on after the VACUUM
    assert result.vacuum_seconds is not None
    # HOT counters: every update the writer made is counted, HOT or not
    assert end.n_tup_upd - start.n_tup_upd == end.updated == 90
    memories, tasks = result.hot["memories"], result.hot["tasks"]
    assert memories.updates == 90 and 0 <= memories.hot_updates <= 90
    assert tasks.updates == 90 and 0 <= tasks.hot_updates <= 90
    assert memories.hot_ratio is not None and tasks.hot_ratio is not None
    assert all(c.live_rows == c.db_rows for c in result.checkpoints)
    assert result.write_batch_ms is not None and result.query_ms is not None
    # JSON-serialisable and loadable the way results.json is read
    data = json.loads(json.dumps(dataclasses.asdict(result)))
    assert _build(DriftResult, data) == result
    png = plot_recall_over_time(result, tmp_path / "drift.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sentences = drift_recommendations(result, None)
    assert any("VACUUM took" in s for s in sentences)
    assert any("ground truth of the start" in s for s in sentences)


def test_update_cost_with_and_without_hnsw(platform: Platform) -> None:
    result = measure_update_cost(
        platform.dsn, schema=platform.schema, prefix=platform.prefix, updates=300, seed=2
    )
    names = [p.name for p in result.phases]
    assert names[:2] == ["hnsw", "no_hnsw"] and names[-1] == "tasks_status"
    assert names[2].startswith("hnsw_fillfactor")
    for phase in result.phases:
        assert phase.updates == phase.rows_updated == phase.counted_updates == 300
        assert phase.latency_ms is not None and phase.histogram is not None
        assert LatencyHistogram.decode(phase.histogram).count == 300
        assert phase.hot_ratio is not None and 0.0 <= phase.hot_ratio <= 1.0
    hnsw, no_hnsw, copy, tasks = result.phases
    assert hnsw.hnsw_index and not no_hnsw.hnsw_index and copy.hnsw_index
    for phase in (hnsw, no_hnsw, copy):
        # importance is not indexed: an update is HOT exactly when it stays on its page
        assert not phase.blocking_indexes and phase.same_page == phase.hot_updates
    assert copy.fillfactor < 100 and copy.hot_ratio is not None and hnsw.hot_ratio is not None
    assert copy.hot_ratio > hnsw.hot_ratio  # room on the page is what makes updates HOT
    assert tasks.blocking_indexes == [f"{platform.prefix}_tasks_agent_status_idx"]
    assert result.p50_ratio is not None and result.index_restored
    # the HNSW index is back, used by the planner, and the copy is gone
    with connect(platform.dsn) as conn:
        conn.execute("SET enable_seqscan = off")
        vector = "[" + ",".join(["0.25"] * DIM) + "]"
        row = conn.execute(
            f"EXPLAIN (FORMAT JSON) SELECT id FROM {platform.memories} "
            f"ORDER BY embedding <=> '{vector}' LIMIT {K}"
        ).fetchone()
        assert row is not None
        assert platform.hnsw in index_names_in_plan(row[0][0]["Plan"])
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (platform.schema, "%ffcopy%"),
        ).fetchone()
        assert leftovers == (0,)
    data = json.loads(json.dumps(dataclasses.asdict(result)))
    assert _build(UpdateCostResult, data) == result
    sentences = drift_recommendations(None, result)
    assert sentences[0].startswith("Updating importance in the embedding table")
    assert any("fillfactor" in s for s in sentences)


def test_update_cost_refuses_a_table_without_the_mark(platform: Platform) -> None:
    with connect(platform.dsn) as conn:
        conn.execute(f"COMMENT ON TABLE {platform.memories} IS 'someone else'")
    with pytest.raises(SafetyError, match="not created by pgvbench"):
        measure_update_cost(
            platform.dsn, schema=platform.schema, prefix=platform.prefix, updates=5, seed=1
        )
    with connect(platform.dsn) as conn:  # nothing was dropped
        row = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (platform.schema, platform.hnsw),
        ).fetchone()
        assert row == (1,)


def test_mirror_ground_truth_includes_inserted_rows() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((200, 8)).astype(np.float32)
    mirror = LiveMirror([_uuid(i) for i in range(200)], base)
    query = rng.standard_normal((1, 8)).astype(np.float32)
    mirror.add([_uuid(1000)], query * 1.0001)  # the query's exact nearest neighbour
    mirror.remove([_uuid(0), _uuid(1)])
    slots = mirror.live_slots()
    assert mirror.count == slots.size == 199
    ids, _ = exact_knn(mirror.vectors(slots), query, 3, Metric.L2)
    assert mirror.id_of(int(slots[ids[0, 0]])) == _uuid(1000)
    assert mirror.remove([_uuid(0)]) == 1  # already gone: counted as a mirror error


def test_plot_of_an_empty_drift_is_none(tmp_path: Path) -> None:
    empty = DriftResult(
        table="s.t", index=None, k=10, metric="l2", ef_search=40, duration_s=1.0,
        interval_s=1.0, insert_rate=1.0, expire_rate=1.0, update_rate=0.0,
        achieved_insert_rate=0.0, achieved_expire_rate=0.0, queries=0, initial_rows=0,
        autovacuum=True, vacuum_at_s=None, vacuum_seconds=None, checkpoints=[], hot={},
        query_ms=None, write_batch_ms=None, wall_seconds=0.0,
    )  # fmt: skip
    assert plot_recall_over_time(empty, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    assert drift_recommendations(empty, None) == []


def _uuid(i: int) -> uuid.UUID:
    return uuid.UUID(int=i)
