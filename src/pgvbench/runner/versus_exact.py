"""The "x the exact scan's QPS" figure, measured interleaved.

The sweep measures the exact scan and each index point minutes apart, so their ratio
moved with the machine (37x and 55x from two runs of one spec). While a build's index
exists, its best point at the recall target and the exact scan (the same table with the
planner's index scans switched off) alternate in short windows, in random order per
round; the ratio is the geometric mean of the paired rounds, with its interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from ..analysis.interleave import rounds_for, schedule
from ..analysis.paired import paired_ratio
from ..analysis.pareto import fastest_at_recall, resolve_target_recall
from ..datasets.prepared import QuerySets
from ..engine.operations import SESSION, Operation, knn_operation
from ..engine.providers import DirectProvider
from ..engine.threaded import LoadShape, run_load
from ..metrics import Metric
from ..results import Results, VersusExact
from ..server.connection import connect
from ..spec.model import ExperimentSpec
from ..workloads.vector import KnnQuery, check_plan

# settings that leave the exact scan as the only plan for ORDER BY embedding <op> ... LIMIT
EXACT_SETTINGS = {"enable_indexscan": "off", "enable_bitmapscan": "off"}
WINDOW_S = 1.0
WINDOW_WARMUP_S = 0.2


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExactComparison:
    """What to compare: one sweep point's query settings and the table's exact scan."""

    dsn: str
    schema: str
    table: str
    items_ident: str
    metric: Metric
    k: int
    vector_oid: int
    query_params: Mapping[str, int]
    statement_timeout_ms: int
    stream: np.ndarray  # the load stream's query vectors
    probe: np.ndarray  # one query vector for the plan check


def exact_plan_problem(c: ExactComparison) -> str | None:
    """None when the exact arm's plan really is a scan of every row."""
    with connect(c.dsn) as conn:
        for name, value in EXACT_SETTINGS.items():
            conn.execute(f"SET {name} = {value}")
        knn = KnnQuery(conn, schema=c.schema, table=c.table, metric=c.metric, k=c.k)
        plan, _ = knn.explain(c.probe)
    return check_plan(plan, None)


def measure_versus_exact(
    c: ExactComparison, *, index_label: str, measure_seconds: float, seed: int
) -> VersusExact:
    """Index point and exact scan alternating: ``measure_seconds`` per arm in all."""
    timeout = {"statement_timeout": str(c.statement_timeout_ms)}
    index_op = _op(c, {**{k: str(v) for k, v in c.query_params.items()}, **timeout})
    exact_op = _op(c, {**EXACT_SETTINGS, **timeout})
    rounds = rounds_for(measure_seconds, WINDOW_S)
    window = measure_seconds / rounds
    qps: dict[str, list[float]] = {"index": [], "exact": []}
    ops = {"index": index_op, "exact": exact_op}
    for r, order in enumerate(schedule(["index", "exact"], rounds, seed=seed)):
        for arm in order:
            op = ops[arm]
            outcome = run_load(
                op,
                DirectProvider(c.dsn, op, SESSION),
                LoadShape(
                    clients=1,
                    warmup_s=WINDOW_WARMUP_S,
                    duration_s=window,
                    seed=seed,
                    first_seq=(r * 2 + len(qps[arm])) * 1_000_000,
                ),
                probe_dsn=c.dsn,
            )
            ok = outcome.aborted is None and outcome.errors == 0
            qps[arm].append(round(outcome.qps, 3) if ok else 0.0)
    ratio = paired_ratio(qps["exact"], qps["index"])
    return VersusExact(
        index=index_label,
        query_params=dict(c.query_params),
        ratio=ratio.to_dict(),
        index_qps=qps["index"],
        exact_qps=qps["exact"],
    )


def _op(c: ExactComparison, settings: dict[str, str]) -> Operation:
    return knn_operation(
        items=c.items_ident,
        queries=None,
        operator=c.metric.operator,
        k=c.k,
        vectors=c.stream,
        vector_oid=c.vector_oid,
        settings=settings,
    )


def versus_exact_for_build(
    spec: ExperimentSpec,
    results: Results,
    *,
    index_label: str,
    dsn: str,
    table: str,
    items_ident: str,
    vector_oid: int,
    metric: Metric,
    sets: QuerySets,
    seed: int,
) -> VersusExact | None:
    """When the spec has an exact-scan [[index]], this build's fastest point at the recall
    target measured against the exact scan, interleaved; None when there is nothing to do
    (no exact scan in the spec, no point of this build reaching the target, a bad plan)."""
    if not any(ix.kind == "none" for ix in spec.indexes):
        return None
    own = [p for p in results.runs if p.index == index_label and p.concurrency == 1]
    best = fastest_at_recall(own, resolve_target_recall(results))
    if best is None:
        return None
    comparison = ExactComparison(
        dsn=dsn,
        schema=spec.schema,
        table=table,
        items_ident=items_ident,
        metric=metric,
        k=spec.query.k,
        vector_oid=vector_oid,
        query_params=best.query_params,
        statement_timeout_ms=spec.query.statement_timeout_ms,
        stream=sets.load_stream,
        probe=sets.recall.queries[0],
    )
    if exact_plan_problem(comparison) is not None:
        return None  # the sweep's own exact point says what is wrong with its plan
    return measure_versus_exact(
        comparison,
        index_label=index_label,
        measure_seconds=spec.query.measure_seconds,
        seed=seed,
    )
