"""The report opens with every recommendation of the run: the sweep's headline, the
concurrency advice, each study's advice() over its record, and the stored agent advice of
a run whose study records are gone; an agent run says what it measured."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pgvbench.analysis.pool_advice import recommend_pool_size
from pgvbench.analysis.usl import usl
from pgvbench.report.document import Bullets, Paragraph
from pgvbench.report.render import render_report
from pgvbench.report.sections.answers import answers, answers_section
from pgvbench.report.sections.summary import recommendation
from pgvbench.results import (
    AgentSection,
    DatasetInfo,
    Latency,
    LoadPoint,
    OperationStats,
    Recall,
    Results,
    SweepPoint,
)
from pgvbench.studies.build import STUDY as BUILD
from pgvbench.studies.build.records import BuildTuningPoint, BuildTuningStudy
from study_support import results_for

HNSW = "hnsw(m=16,ef_construction=64)"


def _lat(mean: float) -> Latency:
    return Latency(p50=mean, p95=mean * 1.5, p99=mean * 2, p999=mean * 3, max=mean * 4, mean=mean)


def _sweep(ef: int, recall: float, qps: float, kind: str = "hnsw") -> SweepPoint:
    return SweepPoint(
        index=HNSW if kind == "hnsw" else "none", index_kind=kind,
        index_params={"m": 16, "ef_construction": 64} if kind == "hnsw" else {},
        query_params={"hnsw.ef_search": ef} if kind == "hnsw" else {}, k=10, concurrency=1,
        recall=Recall(mean=recall, p5=recall - 0.05, min=recall - 0.2), qps=qps,
        latency_ms=_lat(1000 / qps), operations=int(qps), errors=0, duration_s=1.0,
        warmup_s=0.1, valid=True,
    )  # fmt: skip


def _load(clients: int, workload: str | None = None) -> LoadPoint:
    qps = usl(clients, 900.0, 0.06, 0.004)
    return LoadPoint(
        engine="python", index=HNSW, query_params={}, strategy="direct", pool={},
        clients=clients, mode="closed", target_rate=None, arrival=None, think_time_ms=0.0,
        qps=qps, operations=int(qps * 5), errors=0, dropped=0, duration_s=5.0, warmup_s=1.0,
        latency_ms=_lat(clients / qps * 1000), workload=workload,
        operations_detail={"memory_recall": OperationStats(operations=int(qps * 4), errors=0,
                                                           qps=qps * 0.8, latency_ms=None),
                           "memory_write": OperationStats(operations=int(qps), errors=0,
                                                          qps=qps * 0.2, latency_ms=None)}
        if workload else {},
    )  # fmt: skip


def _build_record() -> BuildTuningStudy:
    def point(mem: str, mb: int, seconds: float, fits: bool) -> BuildTuningPoint:
        return BuildTuningPoint(
            maintenance_work_mem=mem, maintenance_work_mem_bytes=mb << 20, workers=0,
            workers_launched=0, build_seconds=seconds, index_bytes=10 << 20, graph_fits=fits,
            fits_after_tuples=None if fits else 20_000,
        )  # fmt: skip

    return BuildTuningStudy(
        index=HNSW, kind="hnsw", params={"m": 16, "ef_construction": 64}, metric="l2",
        table="items", rows=100_000, limits={}, restored={},
        points=(point("1MB", 1, 30.0, False), point("256MB", 256, 12.0, True)),
        dataset_rows=100_000, cores=2,
    )  # fmt: skip


def _vector_run() -> Results:
    results = results_for(spec={"load": {"slo_p99_ms": 50.0}})
    results.runs = [_sweep(0, 1.0, 50.0, kind="none"), _sweep(20, 0.93, 3000.0),
                    _sweep(40, 0.97, 2000.0), _sweep(80, 0.99, 1200.0)]  # fmt: skip
    results.load_points = [_load(n) for n in (1, 2, 4)]
    BUILD.store(results, _build_record())
    return results


def test_answers_list_every_source_in_report_order() -> None:
    results = _vector_run()
    found = answers(results, 0.95)
    assert [a.topic for a in found][:2] == ["Vector search", "Concurrency"]
    assert found[0].text == recommendation(results, 0.95)
    assert found[1].text == recommend_pool_size(results, 50.0)
    build = [a.text for a in found if a.topic == BUILD.title]
    assert build == [r.text for r in BUILD.advice(_build_record())] and build


def test_the_sweep_headline_leads_and_the_rest_follow_as_bullets() -> None:
    results = _vector_run()
    blocks = answers_section(results, 0.95)
    lead = blocks[0]
    assert isinstance(lead, Paragraph) and lead.lead == "Recommendation."
    assert lead.style == "recommendation" and "the fastest configuration is" in lead.text
    bullets = blocks[-1]
    assert isinstance(bullets, Bullets)
    assert bullets.items[0].startswith("Concurrency: Use direct connections")
    assert any(item.startswith(f"{BUILD.title}: ") for item in bullets.items)


def test_the_report_opens_with_the_answers(tmp_path: Path) -> None:
    md = render_report(_vector_run(), tmp_path).md.read_text(encoding="utf-8")
    opening = md.split("## Figures", 1)[0]
    assert "**Recommendation.**" in opening
    assert "- Concurrency: Use direct connections" in opening
    assert f"- {BUILD.title}: " in opening


def test_a_run_with_only_the_sweep_keeps_one_recommendation_paragraph() -> None:
    results = _vector_run()
    results.load_points, results.tuning = [], None
    blocks = answers_section(results, 0.95)
    assert len(blocks) == 1 and isinstance(blocks[0], Paragraph)


def _agent_run() -> Results:
    results = results_for(
        spec={
            "kind": "agents",
            "indexes": [
                {
                    "kind": "hnsw",
                    "label": HNSW,
                    "params": {"m": 16},
                    "sweep_param": "hnsw.ef_search",
                    "sweep_values": [10, 40, 100],
                }
            ],
            "load": {"query_params": {}, "slo_p99_ms": 50.0},
        }
    )
    results.dataset = DatasetInfo(
        name="agents-1t-2a-1000m", source="synthetic:agents", n=1000, dim=16, metric="cosine",
        seed=1, n_queries=0, n_recall_queries=0,
    )  # fmt: skip
    results.agent = AgentSection(
        selectivity={}, tables={},
        filtered={"buckets": [{"label": "tiny", "queries": 30}, {"label": "big", "queries": 20}]},
        recommendations=["Filter memories by agent with the partial index: ... (margin 12%)."],
    )  # fmt: skip
    results.load_points = [_load(n, workload="agent_mix") for n in (1, 2, 4)]
    return results


def test_an_agent_run_opens_with_its_recommendations_and_says_what_it_measured(
    tmp_path: Path,
) -> None:
    results = _agent_run()
    found = answers(results, 0.95)
    # no sweep line; the filtered study's advice over its record, not the stored copy
    assert [a.topic for a in found] == ["Concurrency", *["Filtered vector search"] * 2]
    assert found[1].text.startswith("For agents with tiny of memories")
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    opening = md.split("## Figures", 1)[0]
    assert "no vector-search sweep; see" not in md
    assert "This agent run has no vector-search sweep" in opening
    assert "- Concurrency: Use direct connections" in opening
    assert "- Filtered vector search: For agents with big of memories" in opening
    dataset = md.split("## Dataset", 1)[1].split("##", 1)[0]
    assert "0 timed, 0 for recall" not in dataset and "not recorded" not in dataset
    ops = sum(p.operations for p in results.load_points)
    assert (
        f"the operation mix (memory_recall, memory_write): {ops:,} operations over 3 "
        "load points" in dataset
    )
    assert "its vector queries ran at hnsw.ef_search = 40 (the \\[\\[index\\]\\] lists" in dataset
    assert "filtered search: 50 queries against the exact top-k" in dataset


def test_an_agent_run_with_a_load_override_names_that_setting() -> None:
    from pgvbench.report.sections.setup import agent_timed

    results = _agent_run()
    results.spec["load"]["query_params"] = {"hnsw.ef_search": 100}
    assert "ran at hnsw.ef_search = 100" in agent_timed(results)
    results.load_points = [dataclasses.replace(p, workload=None) for p in results.load_points]
    assert agent_timed(results).startswith("no operation mix")


def test_stored_agent_advice_stands_in_when_no_study_record_reads() -> None:
    results = _agent_run()
    assert results.agent is not None
    results.agent.filtered = None
    found = answers(results, None, agent_only=True)
    assert [a.topic for a in found] == ["Concurrency", "Agents"]
    assert found[1].text.endswith("(margin 12%).")
