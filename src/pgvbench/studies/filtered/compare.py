"""Filtered top-k over agent memories: which way to run ``WHERE agent_id = ?`` wins, and when.

The agent-memory query is ``SELECT id FROM memories WHERE agent_id = $2 ORDER BY
embedding <op> $1 LIMIT k``. How it should be run depends on how many rows the filter
keeps (pgvector 0.8 README, "Filtering"): a vector index scans the nearest rows and then
filters, so without iterative scan a selective filter returns fewer than k rows; a B-tree
on the filter column scans exactly the agent's rows, which is cheap for small agents and
slow for big ones. :func:`compare_filtered` measures, on the same data, every strategy
(strategies.py) over agents grouped by their share of the memories (truth.py).

Every strategy runs on pgvbench's own copy of the memories table (same rows, same
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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import table_name
from ...datasets.groundtruth import MAX_K
from ...db.gucs import set_settings
from ...db.schema import relation_bytes
from ...errors import DatasetError
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from . import notes
from .measure import empty_row, measure
from .records import FilteredComparison, FilteredRow, StrategySetup
from .rounds import check_all, rows_of, time_interleaved
from .spec import DEFAULT_BUCKET_EDGES, STRATEGIES
from .strategies import (
    HNSW_STRATEGIES,
    Names,
    Params,
    Plan,
    Setup,
    copy_memories,
    failed_plans,
    groups,
    prepare,
)
from .truth import Bucket, check_edges, draw_workload

log = logging.getLogger(__name__)
_COEXIST = ("hnsw", "partitioned")  # groups whose queries cannot take each other's indexes


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Run:
    """What every row of one comparison is measured with."""

    dsn: str
    dataset: AgentDataset
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
    dataset: AgentDataset,
    strategies: Sequence[str] = STRATEGIES,
    k: int = 10,
    ef_search: int = 40,
    max_scan_tuples: int = 20_000,
    bucket_edges: Sequence[float] = DEFAULT_BUCKET_EDGES,
    queries_per_bucket: int = 50,
    seed: int = 0,
    measure_seconds: float = 2.0,
    warmup_seconds: float | None = None,
    tenant_filter: bool = False,
    hot_agents: int = 3,
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    ivf_lists: int | None = None,
    ivf_probes: int | None = None,
    ivf_max_probes: int | None = None,
    explain_queries: int | None = None,
    maintenance_work_mem: str | None = None,
    rule: RecallRule = DEFAULT_RULE,
) -> FilteredComparison:
    """Measure each strategy on each selectivity bucket of ``{prefix}_memories``.

    The memories table must hold ``dataset`` (as ``load_agent_dataset`` writes it). For
    each strategy: create what it needs on a marked copy of the table; per bucket fetch
    the ids of all queries (recall, fill), run EXPLAIN (ANALYZE, BUFFERS) on the first
    ``explain_queries`` (default: all) to check the intended index and count buffers,
    time the queries with ``run_load`` (one client, closed loop, ``measure_seconds``);
    then drop what was created. ``tenant_filter`` adds ``AND tenant_id = $3`` to every
    strategy (the RAG form); ``partitioned`` always filters by tenant (that is how it
    prunes).
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
    metric = dataset.spec.metric
    source = table_name(prefix, "memories")
    names = Names.make(schema, prefix, dataset.tenants, hot_agents)
    workload = draw_workload(
        dataset,
        edges,
        queries_per_bucket=queries_per_bucket,
        hot_agents=hot_agents,
        k=k,
        tenant_filter=tenant_filter,
        seed=seed,
    )
    record_notes = list(workload.notes)
    lists = ivf_lists or max(1, min(dataset.memories // 1000, 4096))
    params = Params(
        k=k,
        tenant_filter=tenant_filter,
        ef_search=ef_search,
        max_scan_tuples=max_scan_tuples,
        hnsw={"m": hnsw_m, "ef_construction": hnsw_ef_construction},
        lists=lists,
        probes=ivf_probes or max(1, round(math.sqrt(lists))),
        ivf_max_probes=ivf_max_probes,
    )
    hot_index = {int(a): names.hot(i) for i, a in enumerate(workload.hot)}
    tenants_present = np.unique(np.asarray(dataset.memory_tenant, dtype=np.int64))
    setups: list[StrategySetup] = []
    rows: list[FilteredRow] = []

    def build(group: str, setup: Setup) -> list[Plan]:
        return prepare(
            group, setup, names, metric, params, hot_index=hot_index, dataset=dataset,
            tenants_present=tenants_present, wanted=strategies,
        )  # fmt: skip

    with connect(conn_dsn) as conn:
        _check_source(conn, schema, source, dataset.memories)
        oid_row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert oid_row is not None
        run = _Run(
            dsn=conn_dsn,
            dataset=dataset,
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
            copy_memories(base, names, source)
            record_notes.append(
                notes.work_copy(schema, names.work, source, time.perf_counter() - started)
            )
            for phase in _phases(groups(strategies)):
                staged: list[_Staged] = []
                try:
                    for group in phase:
                        staged.append(_stage(conn, schema, group, strategies, build))
                    for st in staged:
                        setups += st.records(strategies)
                        rows += st.failed_rows(strategies, workload.buckets)
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
                        rows += [_row(run, live[0], bucket) for bucket in workload.buckets]
                finally:
                    for st in staged:
                        st.setup.drop_all()
        finally:
            base.drop_all()
    record_notes.append(notes.COMMON_SETTINGS)
    # in the order of the strategies' groups, as when every group ran in turn
    order = groups(strategies)
    setups.sort(key=lambda x: order.index(_group_of(x.strategy)))
    rows.sort(key=lambda x: order.index(_group_of(x.strategy)))
    return FilteredComparison(
        table=f"{schema}.{source}",
        memories=dataset.memories,
        agents=dataset.agents,
        dim=int(dataset.memory_embedding.shape[1]),
        metric=metric.value,
        k=k,
        ef_search=ef_search,
        max_scan_tuples=max_scan_tuples,
        bucket_edges=edges,
        queries_per_bucket=queries_per_bucket,
        tenant_filter=tenant_filter,
        seed=seed,
        measure_seconds=measure_seconds,
        hot_agents=[str(dataset.id_of("agents", int(a))) for a in workload.hot],
        buckets=[b.info for b in workload.buckets],
        setups=setups,
        rows=rows,
        notes=record_notes,
    )


def _phases(groups_in_order: Sequence[str]) -> list[list[str]]:
    """Groups set up together: the HNSW group and the partitioned copy (another table, so
    neither's plans can take the other's indexes); every other group alone."""
    out: list[list[str]] = []
    together = [g for g in groups_in_order if g in _COEXIST]
    for g in groups_in_order:
        if g not in _COEXIST:
            out.append([g])
        elif g == together[0]:
            out.append(together)
    return out


def _group_of(strategy: str) -> str:
    return "hnsw" if strategy in HNSW_STRATEGIES else strategy


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Staged:
    """One group's objects, created and awaiting measurement (or why they failed)."""

    group: str
    setup: Setup
    plans: list[Plan]
    seconds: float
    index_bytes: int
    setup_note: list[str]

    def records(self, wanted: Sequence[str]) -> list[StrategySetup]:
        objects = self.setup.qualified()
        return [
            StrategySetup(
                strategy=plan.strategy,
                objects=objects,
                setup_seconds=round(self.seconds, 3),
                index_bytes=self.index_bytes,
                settings=dict(plan.settings),
                sql=plan.sql,
                notes=[*([plan.note] if plan.note else []), *self.setup_note, *self.setup.notices],
            )
            for plan in self.plans or failed_plans(self.group, wanted)
        ]

    def failed_rows(self, wanted: Sequence[str], buckets: Sequence[Bucket]) -> list[FilteredRow]:
        if self.plans:
            return []
        return [
            empty_row(plan.strategy, bucket, plan.hot_only, self.setup_note[0])
            for plan in failed_plans(self.group, wanted)
            for bucket in buckets
        ]


def _stage(
    conn: psycopg.Connection[Any],
    schema: str,
    group: str,
    wanted: Sequence[str],
    build: Callable[[str, Setup], list[Plan]],
) -> _Staged:
    """Create what ``group`` needs; a failed setup is kept with its reason."""
    setup = Setup(conn, schema)
    started = time.perf_counter()
    plans: list[Plan] = []
    setup_note: list[str] = []
    index_bytes = 0
    try:
        plans = build(group, setup)
        index_bytes = sum(relation_bytes(conn, schema, n) for n in setup.indexes)
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc)
        setup_note.append(notes.setup_failed(message))
        log.warning("filtered %s: setup failed: %s", group, message)
    setup.stop_listening()
    return _Staged(
        group=group, setup=setup, plans=plans, seconds=time.perf_counter() - started,
        index_bytes=index_bytes, setup_note=setup_note,
    )  # fmt: skip


def _interleaved(run: _Run, plans: Sequence[Plan], buckets: Sequence[Bucket]) -> list[FilteredRow]:
    """The rows of ``plans`` (which share their objects) on every bucket, each bucket's
    strategies timed in interleaved rounds; rows in strategy order, as timed alone."""
    found: dict[tuple[str, str], FilteredRow] = {}
    for b, bucket in enumerate(buckets):
        label = bucket.info.label
        pending = [p for p in plans if _unmeasurable(p, bucket) is None]
        for plan in plans:
            why = _unmeasurable(plan, bucket)
            if why is not None:
                found[plan.strategy, label] = empty_row(plan.strategy, bucket, plan.hot_only, why)
        checks = check_all(
            run.dsn, pending, bucket, run.dataset, k=run.k, vector_oid=run.vector_oid,
            explain_queries=run.explain_queries, serials=run.serials, rule=run.rule,
        )  # fmt: skip
        arms = [c for _, c in checks if not isinstance(c, psycopg.Error)]
        for plan, c in checks:
            if isinstance(c, psycopg.Error):
                found[plan.strategy, label] = _failed(plan, bucket, c)
        timed = time_interleaved(
            run.dsn, arms, warmup_s=run.warmup_s, measure_s=run.measure_s,
            seed=run.seed + b, run_order=run.run_order,
        )  # fmt: skip
        measured = rows_of(arms, timed)
        for arm in arms:
            row = measured.get(arm.plan.strategy)
            if row is None:  # the rounds stopped (server gone) before this arm's first window
                row = empty_row(
                    arm.plan.strategy, bucket, arm.plan.hot_only, notes.aborted("server lost")
                )
            found[arm.plan.strategy, label] = _noted(arm.plan, row)
    return [found[p.strategy, b.info.label] for p in plans for b in buckets]


def _unmeasurable(plan: Plan, bucket: Bucket) -> str | None:
    """Why ``plan`` has nothing to measure on ``bucket`` (None: it has queries)."""
    if len(bucket.hot if plan.hot_only else bucket.queries) == 0:
        return notes.NO_HOT_AGENT if plan.hot_only else notes.NO_AGENT
    return None


def _failed(plan: Plan, bucket: Bucket, exc: psycopg.Error) -> FilteredRow:
    message = str(exc).strip().splitlines()[0] if str(exc) else ""
    return empty_row(plan.strategy, bucket, plan.hot_only, notes.failed(message))


def _noted(plan: Plan, row: FilteredRow) -> FilteredRow:
    """``row`` with the note plain HNSW earns when it under-fills."""
    under = row.fill_mean is not None and row.fill_mean < 1.0
    if plan.strategy == "hnsw_plain" and under:
        return dataclasses.replace(row, notes=[*row.notes, notes.PLAIN_UNDER_FILL])
    return row


def _row(run: _Run, plan: Plan, bucket: Bucket) -> FilteredRow:
    """The row of ``plan`` on ``bucket``, timed alone: measured, or why not."""
    why = _unmeasurable(plan, bucket)
    if why is not None:
        return empty_row(plan.strategy, bucket, plan.hot_only, why)
    try:
        row = measure(
            run.dsn,
            plan,
            bucket,
            run.dataset,
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
        return _failed(plan, bucket, exc)
    return _noted(plan, row)


def _check_source(conn: psycopg.Connection[Any], schema: str, source: str, memories: int) -> None:
    """The memories table must exist and hold the dataset's rows."""
    present = _table_rows(conn, schema, source)
    if present is None:
        raise DatasetError(
            f"{schema}.{source} does not exist: load the agent dataset first "
            "(agent_schema.load_agent_dataset)"
        )
    if present != memories:
        raise DatasetError(
            f"{schema}.{source} has {present} rows but the dataset has "
            f"{memories} memories: reload it before comparing"
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
