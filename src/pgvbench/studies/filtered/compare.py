"""Filtered top-k: which way to run ``WHERE <filter> ORDER BY embedding <op> $1 LIMIT k``
wins, and when, on agent memories or on any vector dataset with attributes.

The agent-memory query is ``SELECT id FROM memories WHERE agent_id = $2 ORDER BY
embedding <op> $1 LIMIT k``; on a vector dataset the filter is an equality on a label,
a range on a number or time, or ``&&`` on an array (predicates.py). How it should be run
depends on how many rows the filter keeps (pgvector 0.8 README, "Filtering"): a vector
index scans the nearest rows and then filters, so without iterative scan a selective
filter returns fewer than k rows; a B-tree on the filter column scans exactly the
matching rows, which is cheap for small filters and slow for big ones.
:func:`compare_filtered` measures, on the same data, every strategy (strategies.py) over
filters grouped by the share of rows they keep (workload.py).

Every strategy runs on pgvbench's own copy of the source table (same rows, same
columns, but only the indexes the strategy creates), so no index of another strategy or
of the application can steal the plan. Each query's plan is checked with EXPLAIN (all of
them by default); a plan that does not take the intended path makes the row invalid.
The HNSW strategies share one index and differ in settings only, so on each bucket their
timed loops alternate in interleaved rounds (rounds.py) and their windows pair up; the
other strategies need objects the planner would also use for the HNSW queries, so each
is set up, timed alone and dropped in turn.
Everything created is marked as pgvbench's and dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import table_name
from ...datasets.groundtruth import MAX_K
from ...db.gucs import set_settings
from ...errors import DatasetError
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from . import notes
from .measure import empty_row, measure
from .predicates import EQ, Predicate, label_of
from .records import FilteredComparison, FilteredRow, StrategySetup
from .rounds import check_all, rows_of, time_interleaved
from .source import AGENT_LABEL, FilterSource, from_agents
from .spec import DEFAULT_BUCKET_EDGES, STRATEGIES
from .stages import Staged, group_of, not_applicable_rows, phases, stage
from .strategies import (
    Layout,
    Names,
    Params,
    Plan,
    Setup,
    copy_memories,
    groups,
    prepare,
)
from .truth import check_edges
from .workload import Bucket, draw_workload

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Run:
    """What every row of one comparison is measured with."""

    dsn: str
    source: FilterSource
    k: int
    vector_oid: int
    explain_queries: int
    warmup_s: float
    measure_s: float
    seed: int
    rule: RecallRule
    serials: itertools.count[int]  # names each check's prepared statement
    run_order: itertools.count[int]  # numbers the interleaved windows in the order run


def compare_filtered(
    conn_dsn: str,
    *,
    schema: str,
    prefix: str,
    dataset: AgentDataset | None = None,
    source: FilterSource | None = None,
    predicates: Sequence[Predicate] = (),
    strategies: Sequence[str] = STRATEGIES,
    k: int = 10,
    ef_search: int | Sequence[int] = 40,
    max_scan_tuples: int = 20_000,
    bucket_edges: Sequence[float] = DEFAULT_BUCKET_EDGES,
    queries_per_bucket: int = 50,
    seed: int = 0,
    measure_seconds: float = 2.0,
    warmup_seconds: float | None = None,
    tenant_filter: bool = False,
    hot_agents: int = 3,
    partitions: int = 8,
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    ivf_lists: int | None = None,
    ivf_probes: int | None = None,
    ivf_max_probes: int | None = None,
    explain_queries: int | None = None,
    maintenance_work_mem: str | None = None,
    rule: RecallRule = DEFAULT_RULE,
) -> FilteredComparison:
    """Measure each strategy on each selectivity bucket of each predicate.

    Agent data (``dataset``): ``{prefix}_memories`` must hold it (as
    ``load_agent_dataset`` writes it); the predicate is the agent. Any other data:
    ``source`` (source.from_vectors) and its ``predicates``; its table must hold the
    source's rows. ``hot_agents`` labels get partial indexes, ``partitions`` labels a
    partition of their own (agent data: one per tenant). ``ef_search`` may be a list:
    the strategies that set it are measured at each value.

    For each strategy: create what it needs on a marked copy of the table; per bucket
    fetch the ids of all queries (recall, fill), run EXPLAIN (ANALYZE, BUFFERS) on the
    first ``explain_queries`` (default: all) to check the intended index and count
    buffers, time the queries with ``run_load`` (one client, closed loop,
    ``measure_seconds``); then drop what was created. ``tenant_filter`` (agent data) adds
    ``AND tenant_id = $3`` to every strategy (the RAG form); ``partitioned`` on agent data
    always filters by tenant (that is how it prunes).
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1..{MAX_K}, got {k}")
    if queries_per_bucket < 1 or measure_seconds <= 0:
        raise ValueError("queries_per_bucket and measure_seconds must be > 0")
    if explain_queries is not None and explain_queries < 1:
        raise ValueError("explain_queries must be >= 1 (or None: every query)")
    edges = check_edges(bucket_edges)
    ef_values = tuple(dict.fromkeys([ef_search] if isinstance(ef_search, int) else ef_search))
    if not ef_values or any(e < 1 for e in ef_values):
        raise ValueError(f"ef_search must be positive, got {ef_search!r}")
    if dataset is not None:
        source = from_agents(dataset, table_name(prefix, "memories"))
        predicates = [Predicate("agent", EQ, AGENT_LABEL)]
    if source is None or not predicates:
        raise ValueError("compare_filtered needs the agent dataset, or a source and predicates")
    metric = source.metric
    workload = draw_workload(
        source,
        predicates,
        edges,
        queries_per_bucket=queries_per_bucket,
        hot_labels=hot_agents,
        k=k,
        tenant_filter=tenant_filter and source.key is not None,
        seed=seed,
    )
    agent_data = source.agents is not None
    if source.agents is not None:
        parts = np.unique(np.asarray(source.agents.memory_tenant, dtype=np.int64)).tolist()
        partition_by = source.key or ""
    else:
        parts = workload.labels[:partitions]
        eq = next((pr for pr in predicates if pr.kind == EQ), None)
        partition_by = eq.attribute if eq is not None else ""
    names = Names.make(
        schema, prefix, max(parts, default=0) + 1 if agent_data else len(parts), hot_agents,
        agents=agent_data,
    )  # fmt: skip
    layout = Layout(
        source=source,
        predicates=list(predicates),
        hot_index={repr(v): names.hot(i) for i, v in enumerate(workload.hot)},
        hot_values={repr(v): v for v in workload.hot},
        partition_by=partition_by,
        partitions=parts,
    )
    record_notes = list(workload.notes)
    lists = ivf_lists or max(1, min(source.n // 1000, 4096))
    params = Params(
        k=k,
        tenant_filter=tenant_filter and source.key is not None,
        ef_values=ef_values,
        max_scan_tuples=max_scan_tuples,
        hnsw={"m": hnsw_m, "ef_construction": hnsw_ef_construction},
        lists=lists,
        probes=ivf_probes or max(1, round(math.sqrt(lists))),
        ivf_max_probes=ivf_max_probes,
    )
    setups: list[StrategySetup] = []
    rows: list[FilteredRow] = not_applicable_rows(strategies, predicates, workload.buckets)
    wanted_groups = [
        g for g in groups(strategies)
        if g not in ("partial_hot", "partitioned") or any(p.kind == EQ for p in predicates)
    ]  # fmt: skip

    def build(group: str, setup: Setup) -> list[Plan]:
        return prepare(group, setup, names, layout, params, wanted=strategies)

    with connect(conn_dsn) as conn:
        _check_source(conn, schema, source.table, source.n, agent_data)
        oid_row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert oid_row is not None
        run = _Run(
            dsn=conn_dsn,
            source=source,
            k=k,
            vector_oid=int(oid_row[0]),
            explain_queries=explain_queries or queries_per_bucket,
            warmup_s=min(0.5, measure_seconds / 4) if warmup_seconds is None else warmup_seconds,
            measure_s=measure_seconds,
            seed=seed,
            rule=rule,
            serials=itertools.count(1),
            run_order=itertools.count(),
        )
        if maintenance_work_mem is not None:
            set_settings(conn, {"maintenance_work_mem": maintenance_work_mem})
        base = Setup(conn, schema)
        try:
            started = time.perf_counter()
            copy_memories(base, names, source.table)
            record_notes.append(
                notes.work_copy(schema, names.work, source.table, time.perf_counter() - started)
            )
            for phase in phases(wanted_groups):
                staged: list[Staged] = []
                try:
                    for group in phase:
                        staged.append(stage(conn, schema, group, strategies, build))
                    for st in staged:
                        setups += st.records(strategies)
                        rows += st.failed_rows(strategies, workload.buckets, predicates)
                    live = [plan for st in staged for plan in st.plans]
                    if len(live) > 1:
                        # One index with several settings, and/or the partitioned copy (its
                        # own table): each query can only use its own objects, so they are
                        # timed in interleaved rounds.
                        rows += _interleaved(run, live, workload.buckets)
                    elif live:
                        # ivfflat_iterative, btree_exact, partial_hot: timed alone. On the
                        # shared work table the planner picks one index for all the vector
                        # queries (the agent_id B-tree for small agents, IVFFlat for big
                        # ones, seen with EXPLAIN), so the HNSW plans would fail their check.
                        rows += [
                            _row(run, live[0], b)
                            for b in workload.buckets
                            if b.info.predicate == live[0].predicate
                        ]
                finally:
                    for st in staged:
                        st.setup.drop_all()
        finally:
            base.drop_all()
    record_notes.append(notes.COMMON_SETTINGS)
    # in the order of the strategies' groups, as when every group ran in turn
    order = groups(strategies)
    setups.sort(key=lambda x: order.index(group_of(x.strategy)))
    rows.sort(key=lambda x: order.index(group_of(x.strategy)))
    if source.agents is not None:
        hot_names = [str(source.agents.id_of("agents", int(a))) for a in workload.hot]
        labels = source.agents.agents
    else:
        hot_names, labels = [label_of(v) for v in workload.hot], len(workload.labels)
    return FilteredComparison(
        table=f"{schema}.{source.table}",
        memories=source.n,
        agents=labels,
        dim=source.dim,
        metric=metric.value,
        k=k,
        ef_search=ef_values[0],
        max_scan_tuples=max_scan_tuples,
        bucket_edges=edges,
        queries_per_bucket=queries_per_bucket,
        tenant_filter=tenant_filter,
        seed=seed,
        measure_seconds=measure_seconds,
        hot_agents=hot_names,
        buckets=[b.info for b in workload.buckets],
        setups=setups,
        rows=rows,
        notes=record_notes,
        source=source.kind,
        dataset=source.name,
        ef_values=list(ef_values),
        predicates=workload.predicates,
    )


def _interleaved(run: _Run, plans: Sequence[Plan], buckets: Sequence[Bucket]) -> list[FilteredRow]:
    """The rows of ``plans`` (which share their objects) on every bucket, each bucket's
    strategies timed in interleaved rounds; rows in strategy order, as timed alone."""
    found: dict[tuple[str, str], FilteredRow] = {}
    agent_data = run.source.agents is not None
    for b, bucket in enumerate(buckets):
        label = bucket.info.label
        mine = [p for p in plans if p.predicate == bucket.info.predicate]
        pending = [p for p in mine if _unmeasurable(p, bucket, agent_data) is None]
        for plan in mine:
            why = _unmeasurable(plan, bucket, agent_data)
            if why is not None:
                found[plan.arm, label] = _empty(plan, bucket, why, agent_data)
        checks = check_all(
            run.dsn, pending, bucket, run.source, k=run.k, vector_oid=run.vector_oid,
            explain_queries=run.explain_queries, serials=run.serials, rule=run.rule,
        )  # fmt: skip
        arms = [c for _, c in checks if not isinstance(c, psycopg.Error)]
        for plan, c in checks:
            if isinstance(c, psycopg.Error):
                found[plan.arm, label] = _failed(plan, bucket, c, agent_data)
        timed = time_interleaved(
            run.dsn, arms, warmup_s=run.warmup_s, measure_s=run.measure_s,
            seed=run.seed + b, run_order=run.run_order,
        )  # fmt: skip
        measured = rows_of(arms, timed)
        for arm in arms:
            row = measured.get(arm.plan.arm)
            if row is None:  # the rounds stopped (server gone) before this arm's first window
                row = _empty(arm.plan, bucket, notes.aborted("server lost"), agent_data)
            found[arm.plan.arm, label] = _noted(arm.plan, row)
    # each plan's rows on its own predicate's buckets (arms repeat across predicates)
    return [
        found[p.arm, b.info.label]
        for p in plans
        for b in buckets
        if p.predicate == b.info.predicate and (p.arm, b.info.label) in found
    ]


def _unmeasurable(plan: Plan, bucket: Bucket, agent_data: bool) -> str | None:
    """Why ``plan`` has nothing to measure on ``bucket`` (None: it has queries)."""
    if len(bucket.hot if plan.hot_only else bucket.queries) == 0:
        if agent_data:
            return notes.NO_HOT_AGENT if plan.hot_only else notes.NO_AGENT
        return notes.NO_HOT_LABEL if plan.hot_only else notes.NO_QUERY
    return None


def _empty(plan: Plan, bucket: Bucket, why: str, agent_data: bool) -> FilteredRow:
    return empty_row(
        plan.strategy, bucket, plan.hot_only, why, agent_data=agent_data, ef_search=plan.ef_search
    )


def _failed(plan: Plan, bucket: Bucket, exc: psycopg.Error, agent_data: bool) -> FilteredRow:
    message = str(exc).strip().splitlines()[0] if str(exc) else ""
    return _empty(plan, bucket, notes.failed(message), agent_data)


def _noted(plan: Plan, row: FilteredRow) -> FilteredRow:
    """``row`` with the note plain HNSW earns when it under-fills."""
    under = row.fill_mean is not None and row.fill_mean < 1.0
    if plan.strategy == "hnsw_plain" and under:
        note = (
            notes.PLAIN_UNDER_FILL if row.scope == notes.ALL_AGENTS else notes.PLAIN_UNDER_FILL_ROWS
        )
        return dataclasses.replace(row, notes=[*row.notes, note])
    return row


def _row(run: _Run, plan: Plan, bucket: Bucket) -> FilteredRow:
    """The row of ``plan`` on ``bucket``, timed alone: measured, or why not."""
    agent_data = run.source.agents is not None
    why = _unmeasurable(plan, bucket, agent_data)
    if why is not None:
        return _empty(plan, bucket, why, agent_data)
    try:
        row = measure(
            run.dsn,
            plan,
            bucket,
            run.source,
            k=run.k,
            vector_oid=run.vector_oid,
            explain_queries=run.explain_queries,
            warmup_s=run.warmup_s,
            measure_s=run.measure_s,
            seed=run.seed,
            serial=next(run.serials),
            rule=run.rule,
        )
    except psycopg.Error as exc:
        return _failed(plan, bucket, exc, agent_data)
    return _noted(plan, row)


def _check_source(
    conn: psycopg.Connection[Any], schema: str, source: str, rows: int, agent_data: bool
) -> None:
    """The source table must exist and hold the dataset's rows."""
    present = _table_rows(conn, schema, source)
    what = "memories" if agent_data else "rows"
    if present is None:
        load = "the agent dataset (agent_schema.load_agent_dataset)" if agent_data else "it"
        raise DatasetError(f"{schema}.{source} does not exist: load {load} first")
    if present != rows:
        raise DatasetError(
            f"{schema}.{source} has {present} rows but the dataset has "
            f"{rows} {what}: reload it before comparing"
        )


def _table_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int | None:
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is None:
        return None
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
    fetched = count.fetchone()
    return int(fetched[0]) if fetched else 0
