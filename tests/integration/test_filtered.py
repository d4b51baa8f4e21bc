"""Filtered top-k strategies on a small agent platform (5k memories, dim 16, cosine)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.datasets.agents import (
    AgentDataset,
    AgentDataSpec,
    generate_agent_dataset,
    table_name,
)
from pgvbench.db.agent_schema import create_agent_schema, load_agent_dataset
from pgvbench.errors import SafetyError
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies import filtered

pytestmark = pytest.mark.integration

K = 10
EF_SEARCH = 10  # low on purpose: without iterative scan small agents under-fill
SPEC = AgentDataSpec(
    tenants=6, agents=200, memories=5000, chunks=50, tasks=20, dim=16, seed=7, doc_kb_max=1.0
)


@dataclasses.dataclass
class Loaded:
    dsn: str
    schema: str
    prefix: str
    dataset: AgentDataset
    comparison: filtered.FilteredComparison
    relations_before: set[str]
    relations_after: set[str]


def _relations(conn: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s",
        (schema,),
    ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture(scope="module")
def loaded(embedded_server: EmbeddedServer) -> Iterator[Loaded]:
    """The platform loaded once and every strategy compared once (the slow part, ~15 s)."""
    dsn = embedded_server.dsn()
    suffix = uuid.uuid4().hex[:8]
    schema, prefix = f"s_filt_{suffix}", f"f{suffix}"
    dataset = generate_agent_dataset(SPEC)
    with connect(dsn) as conn:
        create_agent_schema(conn, schema=schema, prefix=prefix, dim=SPEC.dim)
        load_agent_dataset(conn, schema=schema, prefix=prefix, dataset=dataset)
        conn.execute(f'ANALYZE "{schema}"."{table_name(prefix, "memories")}"')
        before = _relations(conn, schema)
    comparison = filtered.compare_filtered(
        dsn,
        schema=schema,
        prefix=prefix,
        dataset=dataset,
        k=K,
        ef_search=EF_SEARCH,
        queries_per_bucket=10,
        measure_seconds=0.2,
        warmup_seconds=0.05,
        seed=3,
        hot_agents=2,
        explain_queries=3,
    )
    with connect(dsn) as conn:
        after = _relations(conn, schema)
    yield Loaded(dsn, schema, prefix, dataset, comparison, before, after)
    with connect(dsn) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _rows(loaded: Loaded, strategy: str) -> list[filtered.FilteredRow]:
    return [r for r in loaded.comparison.rows if r.strategy == strategy and r.n_queries > 0]


def test_filtered_ground_truth_equals_exact_sql_scan(loaded: Loaded) -> None:
    ds = loaded.dataset
    buckets = filtered.agent_buckets(ds.memory_count_of_agent, filtered.DEFAULT_BUCKET_EDGES)
    rng = np.random.default_rng(11)
    agents = np.array(
        [rng.choice(np.flatnonzero(buckets == b)) for b in range(4) for _ in range(2)]
    )
    vectors = np.stack([ds.query_vector_for_agent(int(a), rng) for a in agents])
    truth = filtered.filtered_ground_truth(ds, agents, vectors, K)
    uuid_to_row = {ds.id_of("memories", i): i for i in range(ds.memories)}
    table = f'"{loaded.schema}"."{table_name(loaded.prefix, "memories")}"'
    returned: list[list[int]] = []
    with connect(loaded.dsn) as conn:
        conn.execute("SET enable_indexscan = off")
        conn.execute("SET enable_bitmapscan = off")
        for agent, vector in zip(agents, vectors, strict=True):
            rows = conn.execute(
                f"SELECT id FROM {table} WHERE agent_id = %s "
                f"ORDER BY embedding <=> %s::vector LIMIT {K}",
                (ds.id_of("agents", int(agent)), str(vector.tolist())),
            ).fetchall()
            returned.append([uuid_to_row[r[0]] for r in rows])
    recall, fill = filtered.filtered_recall(returned, truth, ds, vectors, K)
    assert recall.tolist() == [1.0] * len(agents)
    assert fill.tolist() == [1.0] * len(agents)
    for i, got in enumerate(returned):
        expected = truth.ids[i].tolist()
        assert len(got) == len(expected) == min(K, truth.matching[i])
        differ = set(got) ^ set(expected)
        if differ:  # only ties at the k-th distance may swap places
            kth = float(truth.distances[i][-1])
            ids = np.array(sorted(differ))
            d = 1.0 - (ds.memory_embedding[ids] @ vectors[i]) / (
                np.linalg.norm(ds.memory_embedding[ids], axis=1) * np.linalg.norm(vectors[i])
            )
            assert np.allclose(d, kth, atol=1e-5)


def test_under_fill_without_iterative_scan_and_not_with_relaxed_order(loaded: Loaded) -> None:
    plain = {r.bucket: r for r in _rows(loaded, "hnsw_plain")}
    smallest = loaded.comparison.buckets[0].label
    assert plain[smallest].fill_mean is not None and plain[smallest].fill_mean < 1.0
    assert any("under-fill" in n for n in plain[smallest].notes)
    for row in _rows(loaded, "hnsw_relaxed"):
        assert row.fill_mean == 1.0 and row.fill_min == 1.0, row
    sentences = filtered.summary_sentences(loaded.comparison)
    assert any("Without iterative scan" in s and smallest in s for s in sentences)


def test_btree_exact_has_full_recall(loaded: Loaded) -> None:
    rows = _rows(loaded, "btree_exact")
    assert len(rows) == 4
    for row in rows:
        assert row.valid and row.recall_mean == 1.0 and row.fill_min == 1.0, row


def test_every_plan_uses_the_intended_index(loaded: Loaded) -> None:
    p = loaded.prefix
    expected = {
        "hnsw_plain": {f"{p}_fmem_hnsw"},
        "hnsw_strict": {f"{p}_fmem_hnsw"},
        "hnsw_relaxed": {f"{p}_fmem_hnsw"},
        "ivfflat_iterative": {f"{p}_fmem_ivf"},
        "btree_exact": {f"{p}_fmem_agent"},
    }
    for strategy in filtered.STRATEGIES:
        rows = _rows(loaded, strategy)
        assert rows, strategy
        for row in rows:
            assert row.valid, row
            assert row.latency_p99_ms is not None and row.buffers_per_query is not None
            used = set(row.plan_indexes)
            if strategy in expected:
                assert used == expected[strategy], row
            elif strategy == "partial_hot":
                assert used <= {f"{p}_fmem_hot0", f"{p}_fmem_hot1"} and used, row
                assert row.scope.startswith("hot agents only")
            else:  # partitioned: the tenant's own partition index, never the parent's
                assert used and all(
                    u.startswith(f"{p}_fpart_") and u.endswith("_hnsw") for u in used
                ), row


def test_plan_check_flags_another_index() -> None:
    doc = {"Plan": {"Node Type": "Index Scan", "Index Name": "other_idx", "Relation Name": "t"}}
    assert filtered._plan_problem(doc, {"wanted_idx"}, None) is not None
    assert filtered._plan_problem(doc, {"other_idx"}, {"t"}) is None
    assert filtered._plan_problem(doc, {"other_idx"}, {"t_1"}) is not None


def test_created_objects_are_dropped(loaded: Loaded) -> None:
    assert loaded.relations_after == loaded.relations_before
    created = {o for s in loaded.comparison.setups for o in s.objects}
    assert created  # something was created, and all of it is gone
    assert not {o.split(".", 1)[1] for o in created} & loaded.relations_after


def test_result_is_json_and_winners_meet_the_targets(loaded: Loaded) -> None:
    cmp = loaded.comparison
    text = json.dumps(cmp.to_dict(), allow_nan=False)
    assert json.loads(text)["k"] == K
    assert [b.label for b in cmp.buckets] == ["< 0.1%", "0.1-1%", "1-5%", "> 5%"]
    chosen = filtered.winners(cmp)
    assert chosen
    for bucket, strategy in chosen.items():
        row = cmp.row(strategy, bucket)
        assert row is not None and row.valid
        assert row.recall_mean is not None and row.recall_mean >= 0.9
        assert row.fill_mean is not None and row.fill_mean >= 0.99
    sentences = filtered.summary_sentences(cmp)
    # a bucket names its winner, or says its two fastest are within the windows' noise
    assert any(" wins: recall " in s or "within the noise" in s for s in sentences)


def test_timed_loop_records_its_windows_and_per_query_recall(loaded: Loaded) -> None:
    for row in loaded.comparison.rows:
        if not row.valid:
            continue
        windows = len(row.window_qps)
        assert windows >= 3  # measure_seconds 0.2 split into at least 3 windows
        assert len(row.window_p50_ms) == len(row.window_p99_ms) == windows
        # a window shorter than one query on a busy host may complete none: never negative,
        # and the row as a whole measured something
        assert all(q >= 0 for q in row.window_qps) and any(q > 0 for q in row.window_qps)
        assert len(row.recall_per_query) == row.n_queries
        assert row.recall_mean == pytest.approx(sum(row.recall_per_query) / row.n_queries, abs=1e-3)


def test_coexisting_strategies_are_timed_in_interleaved_rounds_per_bucket(
    loaded: Loaded,
) -> None:
    together = ("hnsw_plain", "hnsw_strict", "hnsw_relaxed", "partitioned")
    n = len(together)
    for info in loaded.comparison.buckets:
        rows = [loaded.comparison.row(s, info.label) for s in together]
        timed = [r for r in rows if r is not None and r.window_sequence]
        if info.queries == 0:
            assert not timed
            continue
        assert len(timed) == n
        for r in timed:
            assert set(r.paired_with) == set(together) - {r.strategy}
            assert len(r.window_sequence) == len(r.window_p99_ms) == len(r.window_qps)
        rounds = len(timed[0].window_sequence)
        seqs = sorted(s for r in timed for s in r.window_sequence)
        assert seqs == list(range(seqs[0], seqs[0] + n * rounds))  # the bucket's windows only
        # round i holds window i of each strategy: they alternate, never all of one first
        for i in range(rounds):
            in_round = sorted(r.window_sequence[i] - seqs[0] for r in timed)
            assert in_round == list(range(n * i, n * (i + 1)))
    # strategies the HNSW queries' plans would take are timed alone, one after the other
    alone = [r for r in loaded.comparison.rows if r.strategy not in together]
    assert {r.strategy for r in alone} == {"ivfflat_iterative", "btree_exact", "partial_hot"}
    assert all(not r.window_sequence and not r.paired_with for r in alone)
    # rows keep the strategies' order, as when every group ran in turn
    order = [r.strategy for r in loaded.comparison.rows]
    assert order == sorted(order, key=order.index)  # each strategy's rows are contiguous


def test_unmarked_object_is_refused_and_kept(loaded: Loaded) -> None:
    name = f"{loaded.prefix}_fmem"
    with connect(loaded.dsn) as conn:
        conn.execute(f'CREATE TABLE "{loaded.schema}"."{name}" (x int)')
        try:
            with pytest.raises(SafetyError):
                filtered.compare_filtered(
                    loaded.dsn,
                    schema=loaded.schema,
                    prefix=loaded.prefix,
                    dataset=loaded.dataset,
                    strategies=["btree_exact"],
                    queries_per_bucket=2,
                    measure_seconds=0.05,
                )
            assert name in _relations(conn, loaded.schema)
        finally:
            conn.execute(f'DROP TABLE "{loaded.schema}"."{name}"')
