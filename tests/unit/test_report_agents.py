"""Report stage for agent experiments: platform, operations, filtered search, churn."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgvbench.report.agent_report import (
    DRIFT_FIGURE,
    FILTERED_FIGURE,
    agent_blocks,
    plot_filtered_p99,
    render_agent_figures,
)
from pgvbench.report.document import Heading
from pgvbench.report.markdown import md_escape
from pgvbench.report.render import ReportFiles, render_report
from pgvbench.results import (
    AgentSection,
    Environment,
    HostInfo,
    Latency,
    LoadPoint,
    OperationStats,
    Results,
    load_results,
    write_results,
)
from pgvbench.studies.drift.advice import drift_recommendations
from pgvbench.studies.drift.records import (
    DriftCheckpoint,
    DriftResult,
    HotStats,
    UpdateCostResult,
    UpdatePhase,
)
from pgvbench.studies.filtered import (
    BucketInfo,
    FilteredComparison,
    FilteredRow,
    StrategySetup,
    bucket_labels,
    summary_sentences,
    winners,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EDGES = [0.001, 0.01]
BUCKETS = bucket_labels(EDGES)  # "< 0.1%", "0.1-1%", "> 1%"
STRATEGIES = ("hnsw_plain", "hnsw_relaxed", "btree_exact")
OPERATIONS = ("memory_recall", "memory_write", "task_update", "message_append")
INVALID_NOTE = "plan used memories_agent_idx, not the B-tree <script>"
AGENT_HEADINGS = (
    "Agent platform",
    "Operations",
    "Filtered vector search",
    "Churn",
    "Agent recommendations",
)


# --- building realistic agent results ---------------------------------------------------


def _latency(p50: float) -> Latency:
    return Latency(p50=p50, p95=p50 * 2, p99=p50 * 3.5, p999=p50 * 6, max=p50 * 10, mean=p50 * 1.3)


def _filtered_row(strategy: str, bucket: int) -> FilteredRow:
    """btree_exact: exact and fast for small agents, slow for big ones; hnsw_plain under-fills
    small agents; hnsw_relaxed is good everywhere but slower than the B-tree on tiny agents."""
    share = (0.0004, 0.004, 0.03)[bucket]
    rows = 100_000 * share
    if strategy == "btree_exact":
        recall, fill, p50 = 1.0, 1.0, 0.2 + rows / 500
    elif strategy == "hnsw_plain":
        fill = min(1.0, 0.15 + bucket * 0.4)
        recall, p50 = fill * 0.97, 1.1
    else:
        recall, fill, p50 = 0.96 - 0.01 * bucket, 1.0, 1.4 + bucket * 0.3
    invalid = strategy == "btree_exact" and bucket == 2
    return FilteredRow(
        strategy=strategy,
        bucket=BUCKETS[bucket],
        scope="all agents of the bucket",
        n_queries=200,
        agents=(40, 12, 3)[bucket],
        rows_matching_mean=rows,
        recall_mean=recall,
        recall_p5=max(0.0, recall - 0.1),
        fill_mean=fill,
        fill_min=max(0.0, fill - 0.1),
        latency_p50_ms=p50,
        latency_p95_ms=p50 * 1.6,
        latency_p99_ms=p50 * 2.2,
        qps=1000.0 / p50,
        buffers_per_query=30 + rows / 20,
        valid=not invalid,
        notes=[INVALID_NOTE] if invalid else [],
    )


def make_filtered() -> FilteredComparison:
    return FilteredComparison(
        table="bench.demo_memories",
        memories=100_000,
        agents=500,
        dim=64,
        metric="cosine",
        k=10,
        ef_search=40,
        max_scan_tuples=20_000,
        bucket_edges=list(EDGES),
        queries_per_bucket=200,
        tenant_filter=False,
        seed=7,
        measure_seconds=5.0,
        hot_agents=[],
        buckets=[
            BucketInfo(label, low, high, agents, memories, 200, 0)
            for label, low, high, agents, memories in (
                (BUCKETS[0], 0.0, 0.001, 400, 16_000),
                (BUCKETS[1], 0.001, 0.01, 85, 34_000),
                (BUCKETS[2], 0.01, None, 15, 50_000),
            )
        ],
        setups=[
            StrategySetup(
                s,
                [f"bench.demo_fmem_{s}"],
                3.2,
                12_000_000,
                {"hnsw.ef_search": "40"},
                "SELECT id FROM ... LIMIT 10",
            )
            for s in STRATEGIES
        ],
        rows=[_filtered_row(s, b) for b in range(3) for s in STRATEGIES],
        notes=["all strategies: plan_cache_mode = force_custom_plan"],
    )


def _checkpoint(t: float, label: str, i: int, *, dead: int, recall: float) -> DriftCheckpoint:
    inserted, deleted = 400 * i, 300 * i
    live = 100_000 + inserted - deleted
    return DriftCheckpoint(
        t=t, label=label, live_rows=live, db_rows=live, dead_tuples=dead, n_live_tup=live,
        n_tup_upd=50 * i, n_tup_hot_upd=20 * i, recall_mean=recall, recall_p5=recall - 0.08,
        recall_min=recall - 0.2, recall_frozen_gt=recall - 0.03 * i, returned_mean=10 - 0.3 * i,
        gt_new_share=0.01 * i, returned_new_share=0.01 * i, inserted=inserted, deleted=deleted,
        updated=50 * i, churn=(inserted + deleted) / 100_000, query_p50_ms=1.2 + 0.1 * i,
        query_p99_ms=3.0 + 0.5 * i, vacuum_count=0 if i < 3 else 1, autovacuum_count=0,
    )  # fmt: skip


def make_drift() -> DriftResult:
    checkpoints = [
        _checkpoint(0.0, "start", 0, dead=0, recall=0.962),
        _checkpoint(10.0, "interval", 1, dead=300, recall=0.951),
        _checkpoint(20.0, "before_vacuum", 2, dead=600, recall=0.934),
        _checkpoint(20.0, "after_vacuum", 3, dead=0, recall=0.958),
        _checkpoint(30.0, "end", 4, dead=310, recall=0.947),
    ]
    return DriftResult(
        table="bench.demo_memories", index="demo_memories_embedding_idx", k=10, metric="cosine",
        ef_search=40, duration_s=30.0, interval_s=10.0, insert_rate=40.0, expire_rate=30.0,
        update_rate=5.0, achieved_insert_rate=39.5, achieved_expire_rate=30.0, queries=200,
        initial_rows=100_000, autovacuum=False, vacuum_at_s=20.0, vacuum_seconds=1.7,
        checkpoints=checkpoints,
        hot={"memories": HotStats(200, 80, 0.4), "tasks": HotStats(150, 150, 1.0)},
        query_ms=_latency(1.5), write_batch_ms=_latency(4.0), wall_seconds=41.0,
        notes=["autovacuum off during the run"],
    )  # fmt: skip


def _phase(name: str, hnsw: bool, ff: int, p50: float, hot: float) -> UpdatePhase:
    table = "bench.demo_tasks" if name == "tasks_status" else "bench.demo_memories"
    return UpdatePhase(
        name=name, table=table, column="state" if name == "tasks_status" else "importance",
        hnsw_index=hnsw, fillfactor=ff, updates=500, rows_updated=500, latency_ms=_latency(p50),
        histogram=None, counted_updates=500, hot_updates=int(500 * hot), hot_ratio=hot,
        same_page=int(500 * hot), same_page_latency_ms=_latency(0.2) if hot else None,
        moved_latency_ms=_latency(p50 * 1.05), seconds=2.0,
        blocking_indexes=["demo_tasks_status_idx"] if name == "tasks_status" else [],
    )  # fmt: skip


def make_update_cost() -> UpdateCostResult:
    return UpdateCostResult(
        table="bench.demo_memories", column="importance", rows=100_000, avg_row_bytes=412.0,
        index="demo_memories_embedding_idx",
        index_def="CREATE INDEX demo_memories_embedding_idx ON bench.demo_memories USING hnsw",
        phases=[
            _phase("hnsw", True, 100, 2.4, 0.02),
            _phase("no_hnsw", False, 100, 0.3, 0.02),
            _phase("hnsw_fillfactor80", True, 80, 0.25, 0.97),
            _phase("tasks_status", False, 100, 0.4, 0.0),
        ],
        p50_ratio=8.0, p99_ratio=6.5, moved_p50_ratio=8.2, index_rebuild_seconds=12.0,
        index_restored=True,
    )  # fmt: skip


def _operations(clients: int) -> dict[str, OperationStats]:
    # memory_recall (a vector search) is the slow one; its tail grows with the clients
    base = {"memory_recall": 3.0, "memory_write": 1.0, "task_update": 0.4, "message_append": 0.3}
    mix = {"memory_recall": 0.4, "memory_write": 0.3, "task_update": 0.2, "message_append": 0.1}
    total = 400.0 * clients
    return {
        op: OperationStats(
            operations=int(total * mix[op] * 10),
            errors=3 if op == "memory_write" and clients == 16 else 0,
            qps=total * mix[op],
            latency_ms=_latency(base[op] * (1 + clients / 16)),
        )
        for op in OPERATIONS
    }


def _load_point(clients: int) -> LoadPoint:
    qps = 400.0 * clients
    return LoadPoint(
        engine="python", index="hnsw(m=16,ef_construction=64) [memories]",
        query_params={"hnsw.ef_search": 40}, strategy="direct", pool={}, clients=clients,
        mode="closed", target_rate=None, arrival=None, think_time_ms=0.0, qps=qps,
        operations=int(qps * 10), errors=3 if clients == 16 else 0, dropped=0, duration_s=10.0,
        warmup_s=2.0, latency_ms=_latency(clients / qps * 1000), operations_detail=_operations(
            clients), workload="agent_mix",
    )  # fmt: skip


def make_agent_results() -> Results:
    filtered, drift, cost = make_filtered(), make_drift(), make_update_cost()
    agent = AgentSection(
        selectivity={
            "memories_per_agent": {
                "min": 1.0,
                "median": 120.0,
                "p99": 1800.0,
                "max": 3500.0,
                "mean": 200.0,
                "buckets": 500.0,
                "total": 100_000.0,
            },
            "memories_per_tenant": {
                "min": 900.0,
                "median": 4000.0,
                "p99": 20000.0,
                "max": 22000.0,
                "mean": 5000.0,
                "buckets": 20.0,
                "total": 100_000.0,
            },
        },
        tables={
            "agents": {"rows": 500.0, "seconds": 0.05},
            "memories": {"rows": 100_000.0, "seconds": 8.2},
            "tasks": {"rows": 5_000.0, "seconds": 0.4},
        },
        filtered=filtered.to_dict(),
        filtered_winners=winners(filtered),
        drift=dataclasses.asdict(drift),
        update_cost=dataclasses.asdict(cost),
        recommendations=[*summary_sentences(filtered), *drift_recommendations(drift, cost)],
    )
    return Results(
        run_name="agent-demo",
        status="complete",
        started_at="2025-03-01T10:00:00+00:00",
        finished_at="2025-03-01T10:30:00+00:00",
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={},
            host=HostInfo(cpu_model="AMD EPYC 7B13", cores=8, ram_bytes=32 * 2**30, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit=None,
            python_version="3.11.9",
        ),
        spec={"experiment": {"name": "agent-demo", "kind": "agents"}},
        load_points=[_load_point(4), _load_point(16)],
        agent=agent,
    )


def _bare_agent(results: Results) -> Results:
    """Only the platform: no filtered comparison, no churn, no load points."""
    assert results.agent is not None
    agent = AgentSection(selectivity=results.agent.selectivity, tables=results.agent.tables)
    return dataclasses.replace(results, agent=agent, load_points=[])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return render_report(make_agent_results(), tmp_path_factory.mktemp("agent-report"))


def _md(files: ReportFiles) -> str:
    return files.md.read_text(encoding="utf-8")


# --- figures -------------------------------------------------------------------------------


def test_agent_figures_are_written(rendered: ReportFiles) -> None:
    names = [p.name for p in rendered.images]
    assert FILTERED_FIGURE in names and DRIFT_FIGURE in names
    for path in rendered.images:
        assert path.read_bytes().startswith(PNG_MAGIC), path


def test_filtered_plot_skips_results_without_rows(tmp_path: Path) -> None:
    results = _bare_agent(make_agent_results())
    assert plot_filtered_p99(results, tmp_path / "f.png") is None
    assert render_agent_figures(results, tmp_path) == []
    assert not list(tmp_path.iterdir())


# --- document ------------------------------------------------------------------------------


def test_agent_sections_follow_concurrency_in_order(rendered: ReportFiles) -> None:
    headings = re.findall(r"^## (.+)$", _md(rendered), flags=re.MULTILINE)
    start = headings.index("Concurrency") + 1
    assert headings[start : start + len(AGENT_HEADINGS)] == list(AGENT_HEADINGS)
    assert headings[start + len(AGENT_HEADINGS)] == "Validity"


def test_platform_tables_and_selectivity(rendered: ReportFiles) -> None:
    md = _md(rendered)
    assert "| memories | 100,000 | 8.20 | 12,195 |" in md
    assert "| total | 105,500 | 8.65 | — |" in md
    # rows per agent: values, total, min, median, p99, max, mean, median and max share
    assert (
        "| memories per agent | 500 | 100,000 | 1 | 120 | 1,800 | 3,500 | 200 | 0.12% | 3.5% |"
        in md
    )


def test_operations_table_marks_the_tail(rendered: ReportFiles) -> None:
    md = _md(rendered)
    names = tuple(f"| {md_escape(op)} |" for op in OPERATIONS)
    rows = [
        line
        for line in md.splitlines()
        if line.startswith("| direct |") and any(n in line for n in names)
    ]
    assert len(rows) == 2 * len(OPERATIONS)  # one per load point x operation
    slowest = [line for line in rows if "▲ slowest p99" in line]
    assert len(slowest) == 2 and all("| memory_recall |" in line for line in slowest)
    assert "**Tail.** memory_recall has the highest p99 at 2 of 2 load points" in md
    assert "| direct | 16 | memory_write | 30% | 1,920 |" in md


def test_filtered_table_winners_and_invalid_rows(rendered: ReportFiles) -> None:
    md = _md(rendered)
    table = [
        line
        for line in md.splitlines()
        if line.startswith(tuple(f"| {md_escape(b)} | " for b in BUCKETS))
        and any(s in line for s in STRATEGIES)
    ]
    assert len(table) == len(STRATEGIES) * len(BUCKETS)
    expected = winners(make_filtered())
    assert expected == {BUCKETS[0]: "btree_exact", BUCKETS[1]: "btree_exact",
                        BUCKETS[2]: "hnsw_relaxed"}  # fmt: skip
    starred = [line for line in table if "| ★ |" in line]
    assert len(starred) == 3
    assert any("btree_exact" in line and "⚠ INVALID" in line for line in table)
    assert f"- Agents with {md_escape(BUCKETS[2])} of the memories (15 agents): hnsw_relaxed" in md
    assert "![Filtered top-k: p99 per selectivity bucket and strategy](filtered_p99.png)" in md


def test_churn_section_has_timeline_update_cost_and_hot(rendered: ReportFiles) -> None:
    md = _md(rendered)
    churn = md[md.index("## Churn") : md.index("## Agent recommendations")]
    assert "(recall_over_time.png)" in churn
    assert "| 20.0 | before vacuum | 100,200 | 800 | 600 | 1.4% | 600 | 0.934 |" in churn
    assert "| with HNSW index | bench.demo_memories | importance | yes | 100 | 500 |" in churn
    assert "| with HNSW index, fillfactor 80 |" in churn
    assert (
        "With / without the index: p50 8.0×, p99 6.5×; p50 of the non-HOT (moved) updates 8.2×."
        in churn
    )
    assert "| memories | 200 | 80 | 40% |" in churn  # HOT during the churn
    assert "| 97% | 97% | 0.200 | 0.263 |" in churn  # fillfactor: same page, HOT, fast


def test_invalid_filtered_rows_are_listed_under_validity(rendered: ReportFiles) -> None:
    md = _md(rendered)
    validity = md[md.index("## Validity") : md.index("## Workload spec")]
    assert "Invalid filtered-search rows: 1 of 9." in validity
    assert f"- Filtered btree_exact at {md_escape(BUCKETS[2])}: INVALID — plan used" in validity


def test_recommendations_are_bullets(rendered: ReportFiles) -> None:
    md = _md(rendered)
    section = md[md.index("## Agent recommendations") : md.index("## Validity")]
    results = make_agent_results()
    assert results.agent is not None and len(results.agent.recommendations) >= 4
    for sentence in results.agent.recommendations:
        assert f"- {md_escape(sentence)}" in section


def test_html_has_the_agent_sections(rendered: ReportFiles) -> None:
    page = rendered.html.read_text(encoding="utf-8")
    for heading in AGENT_HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<figure>") == len(rendered.images)  # every figure inlined
    assert page.count('<tr class="invalid">') == 1  # the invalid filtered row
    assert "&lt;script&gt;" in page and "<script>" not in page


def test_round_trip_renders_identically(tmp_path: Path) -> None:
    original = make_agent_results()
    path = tmp_path / "results.json"
    write_results(original, path)
    loaded = load_results(path)
    assert loaded.agent == original.agent
    first = render_report(original, tmp_path / "a")
    second = render_report(loaded, tmp_path / "b")
    assert first.md.read_bytes() == second.md.read_bytes()
    assert first.html.read_bytes() == second.html.read_bytes()
    assert [p.name for p in first.images] == [p.name for p in second.images]
    for a, b in zip(first.images, second.images, strict=True):
        assert a.read_bytes() == b.read_bytes()


# --- missing and older parts -----------------------------------------------------------------


def test_agent_section_without_filtered_or_drift(tmp_path: Path) -> None:
    files = render_report(_bare_agent(make_agent_results()), tmp_path)
    md = _md(files)
    assert "## Agent platform" in md and "## Agent recommendations" in md
    assert "Nothing was measured that supports a recommendation." in md
    for absent in ("## Operations", "## Filtered vector search", "## Churn", "## Concurrency"):
        assert absent not in md
    assert files.images == []
    # the report opens with the answers: here, that nothing measured supports one
    opening = md.split("## Figures", 1)[0]
    assert "This agent run has no vector-search sweep" in opening
    assert "Nothing was measured that supports a recommendation." in opening
    assert "No sweep figures; see the agent sections below." in md


def _strip(value: Any, keys: set[str]) -> Any:
    """``value`` with every dict key in ``keys`` removed, recursively (an older writer)."""
    if isinstance(value, dict):
        return {k: _strip(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_strip(v, keys) for v in value]
    return value


def test_older_agent_records_missing_fields_still_render(tmp_path: Path) -> None:
    results = make_agent_results()
    assert results.agent is not None
    gone = {
        *("buckets", "setups", "buffers_per_query", "recall_p5", "scope", "latency_p99_ms"),
        *("hot", "phases", "recall_frozen_gt", "write_batch_ms", "p50_ratio", "label"),
    }
    agent = dataclasses.replace(
        results.agent,
        filtered=_strip(results.agent.filtered, gone),
        drift=_strip(results.agent.drift, gone),
        update_cost=_strip(results.agent.update_cost, gone),
    )
    files = render_report(dataclasses.replace(results, agent=agent), tmp_path)
    md = _md(files)
    assert "## Filtered vector search" in md and "## Churn" in md
    assert "No update phase was measured." in md
    assert "No recall-over-time figure: the drift record cannot be read back" in md
    assert "btree_exact, p99 — at recall 1.00" in md
    assert FILTERED_FIGURE not in [p.name for p in files.images]  # no p99 left to draw
    json.dumps(agent.filtered)  # still plain JSON


def test_no_agent_no_workload_gives_no_blocks() -> None:
    results = dataclasses.replace(make_agent_results(), agent=None)
    plain = dataclasses.replace(
        results, load_points=[dataclasses.replace(p, workload=None) for p in results.load_points]
    )
    assert agent_blocks(plain, []) == []
    # operations alone still get their section
    headings = [b.text for b in agent_blocks(results, []) if isinstance(b, Heading)]
    assert headings == ["Operations"]
