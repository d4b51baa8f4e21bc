"""Every study's "use X over Y" sentence states its margin: a clear win names the winner
with the difference and the noise, a difference within the noise says so. Hand-made
records, no database."""

from __future__ import annotations

import dataclasses
from typing import Any

from pgvbench.results import TimeSlice
from pgvbench.studies.build.advice import recommend_build
from pgvbench.studies.build.records import BuildTuningPoint, BuildTuningStudy
from pgvbench.studies.cache.advice import advice as cache_advice
from pgvbench.studies.cache.records import CacheRow, CacheStudy
from pgvbench.studies.drift.advice import drift_advice
from pgvbench.studies.drift.records import DriftCheckpoint, DriftResult
from pgvbench.studies.filtered.advice import advice as filtered_advice
from pgvbench.studies.filtered.advice import runner_up_clause
from pgvbench.studies.filtered.records import BucketInfo, FilteredComparison, FilteredRow
from pgvbench.studies.quantization.advice import advice as quant_advice
from pgvbench.studies.quantization.records import QuantizationPoint, QuantizationStudy
from pgvbench.studies.result_cache.advice import advice as rc_advice
from pgvbench.studies.result_cache.records import CacheRun as RunOfCache
from pgvbench.studies.result_cache.records import ResultCacheStudy

# ------------------------------------------------------------------ filtered strategies


def _row(strategy: str, p99: float, windows: tuple[float, ...] = (), **changes: Any) -> FilteredRow:
    fields: dict[str, Any] = dict(
        strategy=strategy, bucket="1-5%", scope="all agents of the bucket", n_queries=4,
        agents=2, rows_matching_mean=100.0, recall_mean=0.97, recall_p5=0.9, fill_mean=1.0,
        fill_min=1.0, latency_p50_ms=p99 / 2, latency_p95_ms=p99 * 0.9, latency_p99_ms=p99,
        qps=500.0, buffers_per_query=10.0, valid=True, window_p99_ms=windows,
    )  # fmt: skip
    fields.update(changes)
    return FilteredRow(**fields)


def _comparison(*rows: FilteredRow) -> FilteredComparison:
    bucket = BucketInfo(label="1-5%", low=0.01, high=0.05, agents=2, memories=200, queries=4,
                        hot_queries=0)  # fmt: skip
    return FilteredComparison(
        table="s.m", memories=2000, agents=40, dim=16, metric="cosine", k=10, ef_search=40,
        max_scan_tuples=20000, bucket_edges=[0.01, 0.05], queries_per_bucket=4,
        tenant_filter=False, seed=1, measure_seconds=1.0, hot_agents=[], buckets=[bucket],
        setups=[], rows=list(rows),
    )  # fmt: skip


def test_filtered_clear_winner_names_its_margin() -> None:
    cmp = _comparison(
        _row("btree_exact", 2.0, (1.9, 2.0, 2.1, 2.0)),
        _row("hnsw_relaxed", 3.0, (2.9, 3.0, 3.1, 3.0)),
    )
    first = filtered_advice(cmp)[0]
    assert first.text == (
        "For agents with 1-5% of memories (2 agents), btree_exact wins: recall 0.97, fill "
        "1.00, p99 2 ms; next hnsw_relaxed at 3 ms, +50% slower (noise ±10% over 4 windows)."
    )
    assert first.evidence["margin_decisive"] == "yes"
    assert first.evidence["margin_noise"] == 0.1


def test_filtered_within_noise_names_no_winner() -> None:
    cmp = _comparison(
        _row("btree_exact", 2.0, (1.5, 2.6, 1.8, 2.1)),
        _row("hnsw_relaxed", 2.2, (2.0, 2.4, 1.7, 2.7)),
    )
    first = filtered_advice(cmp)[0]
    assert " wins" not in first.text
    assert first.text.startswith(
        "For agents with 1-5% of memories (2 agents), btree_exact and hnsw_relaxed are within "
        "the noise of this run (+10%, noise ±53% over 4 windows); pick on other grounds or "
        "measure longer (btree_exact: recall 0.97"
    )
    assert first.evidence["margin_decisive"] == "no"


def test_filtered_old_record_without_windows_says_no_spread() -> None:
    cmp = _comparison(_row("btree_exact", 2.0), _row("hnsw_relaxed", 3.0))
    text = filtered_advice(cmp)[0].text
    assert "btree_exact wins" in text
    assert "next hnsw_relaxed at 3 ms, +50% in one window each (no spread measured)." in text


def test_filtered_interleaved_strategies_pair_their_rounds() -> None:
    # Round 3 was slow for both (a neighbour): paired, relaxed is about 1.5x in every round.
    win = (2.0, 2.0, 4.0, 2.0)
    nxt = (3.0, 3.1, 6.0, 2.9)
    paired = _comparison(
        _row("hnsw_strict", 2.0, win, window_sequence=(0, 3, 5, 6), paired_with=("hnsw_relaxed",)),
        _row("hnsw_relaxed", 3.0, nxt, window_sequence=(1, 2, 4, 7), paired_with=("hnsw_strict",)),
    )
    first = filtered_advice(paired)[0]
    assert first.evidence["margin_basis"] == "paired rounds"
    assert first.evidence["margin_decisive"] == "yes"
    assert "hnsw_strict wins" in first.text
    assert "next hnsw_relaxed at 3 ms, +50% slower (noise ±6.6% over 4 paired rounds)." in (
        first.text
    )
    # the same windows timed one strategy after the other: the slow window widens the noise
    apart = _comparison(_row("hnsw_strict", 2.0, win), _row("hnsw_relaxed", 3.0, nxt))
    assert filtered_advice(apart)[0].evidence["margin_basis"] == "windows"
    assert filtered_advice(apart)[0].evidence["margin_decisive"] == "no"


def test_filtered_strict_loss_is_bounded_over_queries() -> None:
    relaxed = [1.0, 0.9, 1.0, 0.9] * 10
    clear = _comparison(
        _row("hnsw_strict", 2.0, recall_mean=0.85, recall_per_query=[x - 0.1 for x in relaxed]),
        _row("hnsw_relaxed", 2.0, recall_mean=0.95, recall_per_query=relaxed),
    )
    text = next(r.text for r in filtered_advice(clear) if "strict_order" in r.text)
    assert "strict_order lost recall against relaxed_order: 0.85 vs 0.95, -0.100 (noise ±0.000 " \
        "over 40 queries)" in text  # fmt: skip
    mixed = [x - (0.3 if i % 4 == 0 else -0.05) for i, x in enumerate(relaxed)]
    noisy = _comparison(
        _row("hnsw_strict", 2.0, recall_mean=0.92, recall_per_query=mixed),
        _row("hnsw_relaxed", 2.0, recall_mean=0.95, recall_per_query=relaxed),
    )
    text = next(r.text for r in filtered_advice(noisy) if "strict_order" in r.text)
    assert "strict_order and relaxed_order are within the noise of this run" in text


# ------------------------------------------------------------------ cache


def _cache_study(warm_seconds: list[float], auto_first: float) -> CacheStudy:
    def row(strategy: str, first: float, p99: float, series: list[float]) -> CacheRow:
        return CacheRow(
            strategy=strategy, shared_buffers="64MB", shared_buffers_mb=64.0, index_mb=10.0,
            heap_mb=10.0, p99_ms=p99, first_second_p99_ms=first, time_to_warm_s=1.0,
            series=tuple(TimeSlice(t=t, ops=100, p99_ms=v) for t, v in enumerate(series)),
        )  # fmt: skip

    return CacheStudy(
        schema="s", table="items", index_name="idx", k=10, target_kind="embedded",
        strategies=["warm", "cold", "autoprewarm"], measure_seconds=4.0,
        warmup_series_seconds=4.0,
        rows=[
            row("warm", warm_seconds[0], 1.0, warm_seconds),
            row("cold", 10.0, 1.0, [10.0, 1.0, 1.0, 1.0]),
            row("autoprewarm", auto_first, 1.0, [auto_first, 1.0, 1.0, 1.0]),
        ],
    )  # fmt: skip


def test_cache_autoprewarm_clear_win_names_its_margin() -> None:
    texts = [r.text for r in cache_advice(_cache_study([1.0, 1.1, 0.9, 1.0], 2.0))]
    auto = next(t for t in texts if t.startswith("autoprewarm"))
    assert auto.startswith("autoprewarm shortens the cold start: first-second p99 2 ms vs 10 ms")
    assert "-80%, beyond the noise of ±20% over 4 seconds of the warm run" in auto
    prewarm = next(t for t in texts if t.startswith("Prewarm after restarts"))
    assert "(10.0x; +900%, beyond the noise of ±20% over 4 seconds of the warm run)" in prewarm


def test_cache_autoprewarm_within_noise_says_so() -> None:
    texts = [r.text for r in cache_advice(_cache_study([1.0, 1.6, 0.7, 1.0], 6.0))]
    auto = next(t for t in texts if t.startswith("autoprewarm"))
    assert auto.startswith(
        "autoprewarm and a plain cold start are within the noise of this run; pick on other "
        "grounds or measure longer: first-second p99 6 ms vs 10 ms from plain cold; -40%, "
        "within the noise of ±84% over 4 seconds of the warm run"
    )


# ------------------------------------------------------------------ quantization


def _qpoint(variant: str, qps: tuple[float, ...], recall: list[float]) -> QuantizationPoint:
    return QuantizationPoint(
        variant=variant, ef_search=40, overfetch=4 if variant == "binary" else 1,
        recall_mean=sum(recall) / len(recall), recall_p5=min(recall), recall_min=min(recall),
        qps=sum(qps) / len(qps), p50_ms=1.0, p99_ms=2.0, errors=0, index="ix",
        index_bytes=1000, build_seconds=1.0, plan_ok=True, plan_note=None, capped=False,
        recall_per_query=tuple(recall), window_qps=qps,
    )  # fmt: skip


def _quant(*points: QuantizationPoint) -> QuantizationStudy:
    return QuantizationStudy(
        table="s.items", metric="l2", dim=8, rows=1000, k=10, m=16, ef_construction=64,
        indexes=(), points=points,
    )  # fmt: skip


FULL_RECALL = [1.0, 0.9, 1.0, 0.9] * 10


def test_quantization_clear_lift_and_speedup_state_their_margins() -> None:
    texts = [
        r.text
        for r in quant_advice(
            _quant(
                _qpoint("full", (1000, 1010, 990), FULL_RECALL),
                _qpoint("binary", (2000, 2020, 1980), [x - 0.05 for x in FULL_RECALL]),
                _qpoint("binary_norerank", (3000, 3000, 3000), [x - 0.5 for x in FULL_RECALL]),
            )
        )
    ]
    best = next(t for t in texts if t.startswith("Best binary point"))
    assert (
        "(QPS +100%, beyond the noise of ±3.0% over 3 windows; recall -0.050, beyond the noise "
        "of ±0.000 over 40 queries)."
    ) in best
    rerank = next(t for t in texts if t.startswith("Re-ranking"))
    assert rerank.startswith(
        "Re-ranking binary candidates by the full distance lifts recall from 0.450 to 0.900 "
        "(+0.450, beyond the noise of ±0.000 over 40 queries); never serve Hamming order alone."
    )


def test_quantization_within_noise_says_so() -> None:
    mixed = [x + (0.1 if i % 2 else -0.1) for i, x in enumerate(FULL_RECALL)]
    texts = [
        r.text
        for r in quant_advice(
            _quant(
                _qpoint("full", (1000, 1200, 800), FULL_RECALL),
                _qpoint("binary", (1050, 850, 1150), mixed),
                _qpoint("binary_norerank", (3000, 3000, 3000), FULL_RECALL),
            )
        )
    ]
    best = next(t for t in texts if t.startswith("Best binary point"))
    assert "QPS +1.7%, within the noise of ±35% over 3 windows" in best
    rerank = next(t for t in texts if "Hamming order alone" in t)
    assert rerank.startswith(
        "Re-ranking binary candidates and Hamming order alone are within the noise of this run"
    )


def test_quantization_interleaved_points_pair_their_rounds() -> None:
    # Round 2 was slow for both (a neighbour): paired, the ratio is 2.0 in every round.
    full = _qpoint("full", (1000, 500, 1000), FULL_RECALL)
    binary = _qpoint("binary", (2000, 1000, 2000), FULL_RECALL)
    paired = [
        dataclasses.replace(full, window_sequence=(0, 3, 5)),
        dataclasses.replace(binary, window_sequence=(1, 2, 4)),
    ]
    best = next(r for r in quant_advice(_quant(*paired)) if r.text.startswith("Best binary"))
    assert best.evidence["qps_margin_basis"] == "paired rounds"
    assert best.evidence["qps_margin_decisive"] == "yes"
    assert "QPS +100%, beyond the noise of ±0.0% over 3 paired rounds" in best.text
    # the same windows unpaired (an older file): their spreads overlap the difference less
    unpaired = next(
        r for r in quant_advice(_quant(full, binary)) if r.text.startswith("Best binary")
    )
    assert unpaired.evidence["qps_margin_basis"] == "windows"


# ------------------------------------------------------------------ build tuning


def _build_study(serial_s: float, parallel_s: float) -> BuildTuningStudy:
    def pt(workers: int, seconds: float) -> BuildTuningPoint:
        return BuildTuningPoint(
            maintenance_work_mem="512MB", maintenance_work_mem_bytes=512 * 1024**2,
            workers=workers, workers_launched=workers, build_seconds=seconds,
            index_bytes=1, graph_fits=True, fits_after_tuples=None,
        )  # fmt: skip

    return BuildTuningStudy.from_dict(
        {
            "index": "hnsw(m=16)", "kind": "hnsw", "params": {}, "metric": "l2",
            "table": "s.items", "rows": 10_000, "limits": {}, "restored": {},
            "points": [pt(0, serial_s).to_dict(), pt(1, parallel_s).to_dict()],
        }
    )  # fmt: skip


def test_build_workers_advice_states_one_build_each() -> None:
    workers = recommend_build(_build_study(12.0, 8.0), rows=10_000, cores=2)[1]
    assert workers.startswith(
        "Use max_parallel_maintenance_workers = 1 (8.0 s vs 12 s single-process at 512MB on 2 "
        "cores, -33% build time in one build each: no build-to-build spread measured, "
        "rebuild to confirm)"
    )
    close = recommend_build(_build_study(10.0, 9.8), rows=10_000, cores=2)[1]
    assert close.startswith("Use max_parallel_maintenance_workers = 0 (10 s vs 9.8 s 1 parallel")
    assert "+2.0% build time in one build each" in close


# ------------------------------------------------------------------ drift


def _checkpoint(label: str, recall: float) -> DriftCheckpoint:
    return DriftCheckpoint(
        t=0.0, label=label, live_rows=1000, db_rows=1000, dead_tuples=50, n_live_tup=1000,
        n_tup_upd=0, n_tup_hot_upd=0, recall_mean=recall, recall_p5=recall - 0.1,
        recall_min=recall - 0.2, recall_frozen_gt=None, returned_mean=10.0, gt_new_share=0.1,
        returned_new_share=0.1, inserted=100, deleted=100, updated=0, churn=0.2,
        query_p50_ms=1.0, query_p99_ms=2.0, vacuum_count=0, autovacuum_count=0,
    )  # fmt: skip


def _drift(start: float, end: float) -> DriftResult:
    return DriftResult(
        table="s.m", index="ix", k=10, metric="cosine", ef_search=40, duration_s=10.0,
        interval_s=5.0, insert_rate=10.0, expire_rate=10.0, update_rate=0.0,
        achieved_insert_rate=10.0, achieved_expire_rate=10.0, queries=50, initial_rows=1000,
        autovacuum=True, vacuum_at_s=None, vacuum_seconds=None,
        checkpoints=[_checkpoint("start", start), _checkpoint("end", end)], hot={},
        write_batch_ms=None, wall_seconds=10.0,
    )  # fmt: skip


def test_drift_recall_fall_beyond_the_graph_spread_says_so() -> None:
    text = drift_advice(_drift(0.95, 0.90))[0].text
    assert text.startswith(
        "Recall@10 fell from 0.950 to 0.900 (-0.050, beyond the noise of ±0.020, what "
        "separates two HNSW graphs of the same rows; p5 0.800)"
    )


def test_drift_small_change_is_within_the_noise() -> None:
    rec = drift_advice(_drift(0.95, 0.94))[0]
    assert rec.text.startswith(
        "Recall@10 held (0.950 -> 0.940, -0.010, within the noise of ±0.020, what separates "
        "two HNSW graphs of the same rows;"
    )
    assert rec.evidence["margin_decisive"] == "no"


# ------------------------------------------------------------------ result cache


def _cache_run(delta: float, recall: list[float], hit_rate: float) -> RunOfCache:
    return RunOfCache(
        kind="semantic", size=20, delta=delta, requests=len(recall), hits=0, hit_rate=hit_rate,
        expected_hit_rate=None, analytic_hit_rate=None, p50_ms=1.0, p99_ms=2.0, mean_ms=1.0,
        hit_p50_ms=None, miss_p50_ms=1.0, miss_p99_ms=2.0,
        recall_mean=sum(recall) / len(recall), recall_p5=min(recall), recall_min=min(recall),
        hit_recall_mean=None, writes=0, stale_hits=0, stale_hit_fraction=None, seconds=1.0,
        latency_hdr="", recall_per_request=tuple(recall),
    )  # fmt: skip


def _rc_study(*runs: RunOfCache) -> ResultCacheStudy:
    return ResultCacheStudy(
        table="s.items", metric="l2", k=10, zipf=1.0, stream_length=40, distinct_queries=20,
        jitter=0.0, writes_per_second=0.0, query_settings={}, runs=runs,
    )  # fmt: skip


EXACT = [1.0, 0.9] * 20


def test_result_cache_recall_loss_beyond_the_noise_is_stated() -> None:
    lossy = [x - 0.1 for x in EXACT]
    texts = [r.text for r in rc_advice(_rc_study(_cache_run(0.0, EXACT, 0.1),
                                                 _cache_run(0.5, lossy, 0.6)))]  # fmt: skip
    wide = next(t for t in texts if t.startswith("A semantic cache"))
    assert "recall vs delta 0: -0.100, beyond the noise of ±0.000 over 40 requests" in wide
    safe = next(t for t in texts if t.startswith("The largest delta"))
    assert "is 0 (hit rate 10%)." in safe  # delta 0.5 loses 11%: not kept


def test_result_cache_delta_within_the_noise_is_kept_with_its_bound() -> None:
    mixed = [x + (0.01 if i % 2 else -0.01) for i, x in enumerate(EXACT)]
    texts = [r.text for r in rc_advice(_rc_study(_cache_run(0.0, EXACT, 0.1),
                                                 _cache_run(0.5, mixed, 0.6)))]  # fmt: skip
    safe = next(t for t in texts if t.startswith("The largest delta"))
    assert safe.startswith(
        "The largest delta that keeps recall within 1% of exact-match caching is 0.5 (hit rate "
        "60%; recall +0.000, within the noise of ±0."
    )
    assert "over 40 requests, bounded over the same requests)." in safe


def test_filtered_report_winner_line_carries_the_margin() -> None:
    clear = _comparison(
        _row("btree_exact", 2.0, (1.9, 2.0, 2.1, 2.0)),
        _row("hnsw_relaxed", 3.0, (2.9, 3.0, 3.1, 3.0)),
    )
    assert runner_up_clause(clear, "1-5%") == (
        "next hnsw_relaxed +50% slower (noise ±10% over 4 windows)"
    )
    tie = _comparison(
        _row("btree_exact", 2.0, (1.5, 2.6, 1.8, 2.1)),
        _row("hnsw_relaxed", 2.2, (2.0, 2.4, 1.7, 2.7)),
    )
    assert runner_up_clause(tie, "1-5%").startswith(
        "within the noise of this run with hnsw_relaxed (+10%, noise ±53% over 4 windows)"
    )
    assert runner_up_clause(_comparison(_row("btree_exact", 2.0)), "1-5%") == ""


def test_older_records_without_windows_or_per_query_recall_still_advise() -> None:
    old = [
        QuantizationPoint.from_dict(
            {**_qpoint(v, (q,), FULL_RECALL).to_dict(), "window_qps": None}
            | {"recall_per_query": None}
        )
        for v, q in (("full", 1000.0), ("binary", 2000.0))
    ]
    assert not old[0].window_qps and not old[0].recall_per_query
    best = next(t.text for t in quant_advice(_quant(*old)) if t.text.startswith("Best binary"))
    assert best.endswith("(QPS +100% in one measurement each, no spread measured).")
    runs = [
        RunOfCache.from_dict({**_cache_run(d, EXACT, h).to_dict(), "recall_per_request": None})
        for d, h in ((0.0, 0.1), (0.5, 0.6))
    ]
    texts = [r.text for r in rc_advice(_rc_study(*runs))]
    assert any(t.startswith("The largest delta") and t.endswith("is 0.5 (hit rate 60%).")
               for t in texts)  # fmt: skip
