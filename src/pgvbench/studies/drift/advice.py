"""What the drift study's records support saying: each sentence with the figures it rests
on. No database access."""

from __future__ import annotations

from ...advice_margin import Margin, from_single, from_tolerance, versus
from ..base import Recommendation
from .records import DriftResult, DriftStudyResult, UpdateCostResult

# Recall changes below this are within what separates two HNSW graphs of the same rows
# (measured: +-0.02 on 200 queries, 50k x 128, VACUUM vs REINDEX of the same table).
SHORT_RECALL_TOLERANCE = 0.02
_GRAPHS = "what separates two HNSW graphs of the same rows"


def recall_change(before: float, after: float) -> Margin:
    """A recall change against the graph-to-graph spread (the checkpoints keep no per-query
    recall to bound it over queries)."""
    return from_tolerance(after - before, SHORT_RECALL_TOLERANCE, basis=_GRAPHS)


def advice(result: DriftStudyResult) -> list[Recommendation]:
    """Update-cost advice first, then drift, as the agent recommendations list them."""
    out: list[Recommendation] = []
    if result.update_cost is not None:
        out += update_advice(result.update_cost)
    if result.drift is not None:
        out += drift_advice(result.drift)
    return out


def drift_recommendations(
    drift: DriftResult | None, update_cost: UpdateCostResult | None
) -> list[str]:
    """The sentences alone (either input may be None)."""
    found = advice(DriftStudyResult(update_cost=update_cost, drift=drift))
    return [r.text for r in found]


def _fmt(value: float) -> str:
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def update_advice(cost: UpdateCostResult) -> list[Recommendation]:
    out: list[Recommendation] = []
    with_index, without = cost.phase("hnsw"), cost.phase("no_hnsw")
    if with_index and without and with_index.latency_ms and without.latency_ms:
        a, b = with_index.latency_ms, without.latency_ms
        ratio = cost.p50_ratio or 0.0
        evidence: dict[str, float | int | str] = {
            "rows": cost.rows,
            "column": cost.column,
            "p50_ms_with_hnsw": a.p50,
            "p99_ms_with_hnsw": a.p99,
            "p50_ms_without_hnsw": b.p50,
            "p99_ms_without_hnsw": b.p99,
            "p50_ratio": ratio,
        }
        if with_index.hot_ratio is not None:
            evidence["hot_ratio_with_hnsw"] = with_index.hot_ratio
        moved = ""
        if cost.moved_p50_ratio and with_index.moved_latency_ms and without.moved_latency_ms:
            moved = (
                f"; the non-HOT ones alone (row moved to another page) took "
                f"{_fmt(with_index.moved_latency_ms.p50)} vs "
                f"{_fmt(without.moved_latency_ms.p50)} ms ({cost.moved_p50_ratio:.1f}x)"
            )
            evidence["moved_p50_ms_with_hnsw"] = with_index.moved_latency_ms.p50
            evidence["moved_p50_ms_without_hnsw"] = without.moved_latency_ms.p50
            evidence["moved_p50_ratio"] = cost.moved_p50_ratio
        head = (
            f"Updating {cost.column} in the embedding table ({cost.rows:,} rows) took p50 "
            f"{_fmt(a.p50)} ms (p99 {_fmt(a.p99)}) with the HNSW index vs {_fmt(b.p50)} ms "
            f"(p99 {_fmt(b.p99)}) without ({ratio:.1f}x; {_pct(with_index.hot_ratio)} HOT"
            f"{moved})"
        )
        # One timed phase each: no spread to weigh the ratio against, and the text says so.
        margin = from_single(b.p50, a.p50, basis="phases")
        evidence |= margin.evidence()
        head += f"; p50 {versus(margin)}"
        if ratio >= 1.5 or (cost.moved_p50_ratio or 0.0) >= 1.5:
            text = (
                f"{head}: a non-HOT update re-inserts the row into the HNSW graph (pgvector "
                "#875). Keep mutable agent state (importance, access counts) in a separate "
                "table keyed by memory id, or make the update HOT-friendly (free space on "
                "the page via fillfactor, no index on the column)."
            )
        else:
            text = f"{head}: at this size the HNSW insert is not what an update costs."
        out.append(Recommendation(text=text, evidence=evidence))
    ff = next((p for p in cost.phases if p.name.startswith("hnsw_fillfactor")), None)
    if ff and ff.latency_ms and with_index and with_index.latency_ms:
        evidence = {
            "fillfactor": ff.fillfactor,
            "avg_row_bytes": cost.avg_row_bytes,
            "p50_ms_fillfactor": ff.latency_ms.p50,
            "p50_ms_with_hnsw": with_index.latency_ms.p50,
            "fillfactor_with_hnsw": with_index.fillfactor,
        }
        if ff.hot_ratio is not None:
            evidence["hot_ratio_fillfactor"] = ff.hot_ratio
        if with_index.hot_ratio is not None:
            evidence["hot_ratio_with_hnsw"] = with_index.hot_ratio
        text = (
            f"On a copy with fillfactor {ff.fillfactor} (rows average "
            f"{cost.avg_row_bytes:.0f} bytes of heap) {_pct(ff.hot_ratio)} of the same updates "
            f"were HOT and p50 was {_fmt(ff.latency_ms.p50)} ms with the HNSW index still "
            f"there (vs {_fmt(with_index.latency_ms.p50)} ms and {_pct(with_index.hot_ratio)} "
            f"HOT at fillfactor {with_index.fillfactor}): a HOT update writes no index entry."
        )
        out.append(Recommendation(text=text, evidence=evidence))
    task = cost.phase("tasks_status")
    if task and task.latency_ms:
        why = (
            f"; {', '.join(task.blocking_indexes)} covers an updated column, so an update that "
            "changes status is never HOT: leave status out of that index if the lookups "
            "allow, or accept the index write"
            if task.blocking_indexes
            else ""
        )
        evidence = {"p50_ms": task.latency_ms.p50, "p99_ms": task.latency_ms.p99}
        if task.hot_ratio is not None:
            evidence["hot_ratio"] = task.hot_ratio
        if task.blocking_indexes:
            evidence["blocking_indexes"] = ", ".join(task.blocking_indexes)
        text = (
            f"Task status updates (jsonb_set on state) took p50 {_fmt(task.latency_ms.p50)} ms, "
            f"p99 {_fmt(task.latency_ms.p99)} ms, {_pct(task.hot_ratio)} HOT{why}."
        )
        out.append(Recommendation(text=text, evidence=evidence))
    return out


def drift_advice(drift: DriftResult) -> list[Recommendation]:
    points = [c for c in drift.checkpoints if c.label != "after_vacuum"]
    if len(points) < 2:
        return []
    first, last = points[0], points[-1]
    out: list[Recommendation] = []
    change = last.recall_mean - first.recall_mean
    churn = f"{100 * last.churn:.0f}%"
    writes = f"{last.inserted} inserts and {last.deleted} deletes, {churn} of the starting rows"
    evidence: dict[str, float | int | str] = {
        "k": drift.k,
        "ef_search": drift.ef_search,
        "recall_start": first.recall_mean,
        "recall_end": last.recall_mean,
        "recall_p5_start": first.recall_p5,
        "recall_p5_end": last.recall_p5,
        "inserted": last.inserted,
        "deleted": last.deleted,
        "churn": last.churn,
        "dead_tuples": last.dead_tuples,
    }
    margin = recall_change(first.recall_mean, last.recall_mean)
    evidence |= margin.evidence()
    if change <= -SHORT_RECALL_TOLERANCE:
        text = (
            f"Recall@{drift.k} fell from {first.recall_mean:.3f} to {last.recall_mean:.3f} "
            f"({versus(margin)}; p5 {last.recall_p5:.3f}) after {writes}; dead tuples "
            f"{last.dead_tuples:,} (ef_search {drift.ef_search})."
        )
    else:
        text = (
            f"Recall@{drift.k} held ({first.recall_mean:.3f} -> {last.recall_mean:.3f}, "
            f"{versus(margin)}; p5 {first.recall_p5:.3f} -> {last.recall_p5:.3f}) through "
            f"{writes} (dead tuples {last.dead_tuples:,}, ef_search {drift.ef_search})."
        )
    out.append(Recommendation(text=text, evidence=evidence))
    if last.returned_mean < drift.k:
        text = (
            f"Queries returned {last.returned_mean:.1f} of {drift.k} rows on average at the end: "
            "dead tuples take places in the ef_search candidate list (pgvector #244). Vacuum "
            "more often, raise hnsw.ef_search, or set hnsw.iterative_scan."
        )
        evidence = {
            "k": drift.k,
            "returned_mean": last.returned_mean,
            "dead_tuples": last.dead_tuples,
            "ef_search": drift.ef_search,
        }
        out.append(Recommendation(text=text, evidence=evidence))
    out += _vacuum_advice(drift)
    if last.recall_frozen_gt is not None and (
        abs(last.recall_frozen_gt - last.recall_mean) >= SHORT_RECALL_TOLERANCE
    ):
        text = (
            f"Scored against the ground truth of the start, the same results give recall "
            f"{last.recall_frozen_gt:.3f} instead of {last.recall_mean:.3f} "
            f"({100 * last.gt_new_share:.0f}% of the true neighbours are new rows): a "
            "benchmark must recompute ground truth over the rows present when it queries."
        )
        evidence = {
            "recall_frozen_gt": last.recall_frozen_gt,
            "recall": last.recall_mean,
            "gt_new_share": last.gt_new_share,
        }
        out.append(Recommendation(text=text, evidence=evidence))
    for table, hot in sorted(drift.hot.items()):
        if hot.updates:
            text = (
                f"During the run {hot.hot_updates:,} of {hot.updates:,} {table} updates were "
                f"HOT ({_pct(hot.hot_ratio)})."
            )
            evidence = {"table": table, "updates": hot.updates, "hot_updates": hot.hot_updates}
            out.append(Recommendation(text=text, evidence=evidence))
    return out


def _vacuum_advice(drift: DriftResult) -> list[Recommendation]:
    before = next((c for c in drift.checkpoints if c.label == "before_vacuum"), None)
    after = next((c for c in drift.checkpoints if c.label == "after_vacuum"), None)
    if not (before and after and drift.vacuum_seconds is not None):
        return []
    sentence = (
        f"VACUUM took {drift.vacuum_seconds:.1f} s for {before.dead_tuples:,} dead tuples "
        f"({after.live_rows:,} live rows); recall {before.recall_mean:.3f} -> "
        f"{after.recall_mean:.3f} (p5 {before.recall_p5:.3f} -> {after.recall_p5:.3f})"
    )
    margin = recall_change(before.recall_mean, after.recall_mean)
    if not margin.decisive:
        sentence += f", a change within {_GRAPHS} (±{SHORT_RECALL_TOLERANCE:.2f})"
    if drift.vacuum_seconds >= 1.0:
        sentence += (
            ". HNSW vacuum repairs the graph around every removed element; pgvector's "
            "README suggests REINDEX INDEX CONCURRENTLY before VACUUM to speed it up"
        )
    evidence: dict[str, float | int | str] = {
        "vacuum_seconds": drift.vacuum_seconds,
        "dead_tuples": before.dead_tuples,
        "live_rows": after.live_rows,
        "recall_before": before.recall_mean,
        "recall_after": after.recall_mean,
        "recall_p5_before": before.recall_p5,
        "recall_p5_after": after.recall_p5,
        **margin.evidence(),
    }
    return [Recommendation(text=sentence + ".", evidence=evidence)]
