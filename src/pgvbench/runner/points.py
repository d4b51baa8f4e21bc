"""One sweep point across its repeats: the fixed facts (plan, recall) measured once, the
timed windows appended, and the record for results.json merged from them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import psycopg

from .. import point_notes
from ..analysis.paired import recall_lower_bound
from ..datasets.recall import recall_tail, summarize_recall
from ..engine.operations import Operation
from ..engine.outcome import EngineOutcome, merge_outcomes
from ..errors import RunFailed
from ..loadtest import CLIENT_SATURATED_CORES
from ..metrics import Metric
from ..results import BuildSpread, Recall, Sample, StatementStats, SweepPoint
from ..spec.model import IndexSpec


@dataclasses.dataclass
class PointRun:
    """One sweep point across its repeats: fixed facts first, measurements appended."""

    index_spec: IndexSpec
    index_label: str
    index_name: str | None
    query_params: dict[str, int]
    k: int
    label: str
    notes: list[str]
    plan_text: str | None
    plan_problem: str | None
    recall: Recall
    operation: Operation
    metric: Metric
    outcomes: list[EngineOutcome] = dataclasses.field(default_factory=list)
    statements: list[StatementStats | None] = dataclasses.field(default_factory=list)
    samples: list[Sample] = dataclasses.field(default_factory=list)
    collected: dict[str, Any] | None = None
    statements_available: bool = True
    saved: SweepPoint | None = None  # the record in results.runs, updated in place

    def record(self, server_config: str | None) -> SweepPoint:
        """The point over the repeats so far (histograms merged, counts summed)."""
        outcome = merge_outcomes(self.outcomes)
        notes = list(self.notes)
        if not self.statements_available:
            notes.append(point_notes.no_statements())
        if outcome.errors:
            notes.append(point_notes.operations_failed(outcome.errors, outcome.error_messages))
        if outcome.aborted:
            notes.append(point_notes.stopped_early(outcome.aborted, sweep=True))
        if len(self.samples) > 1:
            notes.append(point_notes.repeats_merged(len(self.samples)))
        valid = self.plan_problem is None and outcome.errors == 0 and outcome.aborted is None
        suspect = (outcome.client_cpu_cores or 0.0) >= CLIENT_SATURATED_CORES
        if suspect and outcome.client_cpu_cores is not None:
            notes.append(
                point_notes.client_saturated(outcome.client_cpu_cores, python_engine_cap=False)
            )
        return SweepPoint(
            index=self.index_label,
            index_kind=self.index_spec.kind,
            index_params=dict(self.index_spec.params),
            query_params=self.query_params,
            k=self.k,
            concurrency=1,
            recall=self.recall,
            qps=round(outcome.qps, 2),
            latency_ms=outcome.latency.summary(),
            operations=outcome.operations,
            errors=outcome.errors,
            duration_s=round(outcome.duration_s, 4),
            warmup_s=outcome.warmup_s,
            valid=valid,
            notes=notes,
            plan=self.plan_text,
            statements=_merge_statements(self.statements),
            histogram=outcome.latency.encode() if outcome.operations else None,
            client_cpu_cores=outcome.client_cpu_cores,
            suspect=suspect,
            server_config=server_config,
            collectors=self.collected,
            samples=list(self.samples),
        )


def recall_record(per_query: np.ndarray) -> Recall:
    """A point's recall over its queries: mean, tails, zero-recall count and the one-sided
    95% lower bound of the mean (bootstrap over queries: the headline chooses on it)."""
    mean, p5, low = summarize_recall(per_query)
    p1, zero = recall_tail(per_query)
    bound = recall_lower_bound(per_query)
    return Recall(
        mean=round(mean, 5),
        p5=round(p5, 5),
        min=round(low, 5),
        low=math.floor(bound * 1e5) / 1e5,  # rounded down: it is a lower bound
        p1=round(p1, 5),
        zero=zero,
        queries=int(np.asarray(per_query).size),
    )


def add_build(point: SweepPoint, recall: float, qps: float) -> None:
    """Append one rebuild's recall and QPS at this point; the first entry is the point's
    own build (its first timed window, so every build counts one window)."""
    if point.rebuilds is None:
        first_qps = point.samples[0].qps if point.samples else point.qps
        assert point.recall is not None
        point.rebuilds = BuildSpread(recall=[point.recall.mean], qps=[first_qps])
    point.rebuilds.recall.append(round(recall, 5))
    point.rebuilds.qps.append(round(qps, 2))


def _merge_statements(stats: list[StatementStats | None]) -> StatementStats | None:
    """Call-weighted pg_stat_statements deltas over the repeats."""
    present = [s for s in stats if s is not None]
    calls = sum(s.calls for s in present)
    if not present or calls == 0:
        return None
    return StatementStats(
        calls=calls,
        mean_exec_ms=sum(s.mean_exec_ms * s.calls for s in present) / calls,
        shared_blks_hit_per_call=sum(s.shared_blks_hit_per_call * s.calls for s in present) / calls,
        shared_blks_read_per_call=sum(s.shared_blks_read_per_call * s.calls for s in present)
        / calls,
    )


def column_type_oid(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> int:
    """OID of the column's type (pgvector's type OIDs differ per database)."""
    row = conn.execute(
        "SELECT atttypid FROM pg_attribute WHERE attrelid = format('%%I.%%I', %s::text, "
        "%s::text)::regclass AND attname = %s",
        (schema, table, column),
    ).fetchone()
    if row is None:
        raise RunFailed(f"column {column} not found in {schema}.{table}")
    return int(row[0])
