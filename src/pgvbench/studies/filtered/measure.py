"""One strategy on one bucket: ids fetched over libpq (recall, fill), plans checked with
EXPLAIN (ANALYZE, BUFFERS), then a timed closed loop with one client.

Parameters: $1 the vector (binary), then the predicate's values and the partition key
in text form, typed by the plan (uuid, bigint, text, timestamptz, text[] ...)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import pq as libpq

from ...analysis.interleave import rounds_for
from ...db.gucs import set_settings
from ...engine.operations import SESSION, ParamOperation, encode_vector
from ...engine.outcome import EngineOutcome, merge_outcomes
from ...engine.providers import DirectProvider
from ...engine.threaded import LoadShape, run_load
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from ...workloads.vector import index_names_in_plan
from . import notes
from .records import FilteredRow
from .source import FilterSource
from .strategies import Plan
from .truth import FilteredTruth, recall_fill
from .workload import Bucket, Queries

# The timed loop runs in windows of about this length (at least 3): the spread of their
# latency is the noise a bucket's winner must beat. Same total time as one long window.
WINDOW_SECONDS = 0.25


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checked:
    """One strategy on one bucket after its ids and plans were checked, before timing."""

    plan: Plan
    bucket: Bucket
    queries: Queries
    truth: FilteredTruth
    agents: int  # distinct filter values among the queries
    agent_data: bool
    types: list[int]
    formats: list[int]
    params: list[list[bytes]]
    recall: np.ndarray
    fill: np.ndarray
    buffers: list[float]
    seen: set[str]
    problems: list[str]
    wrong: int
    serial: int


def measure(
    dsn: str,
    plan: Plan,
    bucket: Bucket,
    source: FilterSource,
    *,
    k: int,
    vector_oid: int,
    explain_queries: int,
    warmup_s: float,
    measure_s: float,
    seed: int,
    serial: int,
    rule: RecallRule = DEFAULT_RULE,
) -> FilteredRow:
    """The row of ``plan`` on ``bucket``, timed alone; ``serial`` names its prepared
    statement."""
    checked = check(
        dsn, plan, bucket, source, k=k, vector_oid=vector_oid,
        explain_queries=explain_queries, serial=serial, rule=rule,
    )  # fmt: skip
    windows = _timed_windows(
        operation(checked), dsn, warmup_s=warmup_s, measure_s=measure_s, seed=seed
    )
    return finish(checked, windows)


def check(
    dsn: str,
    plan: Plan,
    bucket: Bucket,
    source: FilterSource,
    *,
    k: int,
    vector_oid: int,
    explain_queries: int,
    serial: int,
    rule: RecallRule = DEFAULT_RULE,
) -> Checked:
    """Fetch every query's ids (recall, fill) and EXPLAIN the first ``explain_queries``."""
    queries = bucket.hot if plan.hot_only else bucket.queries
    truth = queries.truth_for(plan.uses_key)
    types = [vector_oid, *plan.types]
    formats = [1] + [0] * len(plan.types)
    params = [
        [encode_vector(queries.vectors[i]), *queries.params[i][: len(plan.types)]]
        for i in range(len(queries))
    ]
    with connect(dsn) as conn:
        set_settings(conn, plan.settings)
        # Ids first: this also warms the caches before EXPLAIN and the timed loop.
        statement = f"pgvb_filt_{serial}".encode()
        fetched = _fetch_ids(conn, plan, params, types, formats, statement)
        problems: list[str] = []
        buffers: list[float] = []
        seen: set[str] = set()
        for i in range(min(explain_queries, len(queries))):
            doc = _explain(conn, plan, params[i], types, formats)
            node = doc["Plan"]
            # The top node's counts include its children, CTE and InitPlans (not planning).
            buffers.append(float(node["Shared Hit Blocks"] + node["Shared Read Blocks"]))
            seen.update(index_names_in_plan(node))
            expect_idx, expect_rel = plan.expect(queries.values[i], queries.keys[i])
            problem = plan_problem(doc, expect_idx, expect_rel)
            if problem is not None:
                problems.append(problem)
    row_of = source.decoder(truth.rows)
    returned = [[row_of(u) for u in ids] for ids in fetched]
    recall, fill = recall_fill(
        returned, truth, source.rows, source.metric, queries.vectors, k, rule
    )
    return Checked(
        plan=plan, bucket=bucket, queries=queries, truth=truth, agents=queries.distinct,
        agent_data=source.agents is not None, types=types, formats=formats, params=params,
        recall=recall, fill=fill, buffers=buffers, seen=seen, problems=problems,
        wrong=sum(1 for r in returned for x in r if x < 0), serial=serial,
    )  # fmt: skip


def operation(checked: Checked) -> ParamOperation:
    """The timed loop's statement of a checked strategy."""
    params = checked.params
    return ParamOperation(
        name=f"filt_{checked.serial}",
        sql=checked.plan.sql,
        types=checked.types,
        formats=checked.formats,
        params=lambda seq: params[seq % len(params)],
        settings=checked.plan.settings,
    )


def finish(
    checked: Checked,
    windows: Sequence[EngineOutcome],
    *,
    sequence: Sequence[int] = (),
    paired_with: Sequence[str] = (),
) -> FilteredRow:
    """The row of a checked strategy from its timed windows (at least one)."""
    plan, queries, truth = checked.plan, checked.queries, checked.truth
    recall, fill, buffers, problems = (
        checked.recall, checked.fill, checked.buffers, checked.problems
    )  # fmt: skip
    row_notes: list[str] = []
    if checked.wrong:
        row_notes.append(notes.not_memories(checked.wrong, checked.agent_data))
    short = int(np.count_nonzero(fill < 1.0))
    if short:
        row_notes.append(notes.under_fill(short, len(queries)))
    if problems:
        row_notes.append(notes.plan_check_failed(len(problems), len(buffers), problems[0]))
    outcome = merge_outcomes(list(windows))
    latency = outcome.latency.summary()
    if outcome.errors:
        row_notes.append(
            notes.timed_failures(outcome.errors, next(iter(outcome.error_messages), ""))
        )
    if outcome.aborted:
        row_notes.append(notes.aborted(outcome.aborted))
    return FilteredRow(
        strategy=plan.strategy,
        bucket=checked.bucket.info.label,
        scope=(
            notes.hot_scope(checked.agents, checked.agent_data)
            if plan.hot_only
            else notes.scope(False, checked.agent_data)
        ),
        n_queries=len(queries),
        agents=checked.agents,
        rows_matching_mean=float(truth.matching.mean()) if len(queries) else 0.0,
        recall_mean=round(float(np.mean(recall)), 4),
        recall_p5=round(_percentile(recall, 5), 4),
        fill_mean=round(float(np.mean(fill)), 4),
        fill_min=round(float(np.min(fill)), 4),
        latency_p50_ms=None if latency is None else round(latency.p50, 4),
        latency_p95_ms=None if latency is None else round(latency.p95, 4),
        latency_p99_ms=None if latency is None else round(latency.p99, 4),
        qps=None if latency is None else round(outcome.qps, 1),
        buffers_per_query=round(float(np.mean(buffers)), 1) if buffers else None,
        valid=not problems and latency is not None and not outcome.errors and not checked.wrong,
        plan_indexes=sorted(checked.seen),
        notes=row_notes,
        recall_per_query=tuple(round(float(x), 4) for x in recall),
        window_p50_ms=tuple(_window_latency(w, 50) for w in windows),
        window_p95_ms=tuple(_window_latency(w, 95) for w in windows),
        window_p99_ms=tuple(_window_latency(w, 99) for w in windows),
        window_qps=tuple(round(w.qps, 1) for w in windows),
        window_sequence=tuple(sequence),
        paired_with=tuple(paired_with),
        ef_search=plan.ef_search,
    )


def _timed_windows(
    op: ParamOperation, dsn: str, *, warmup_s: float, measure_s: float, seed: int
) -> list[EngineOutcome]:
    """The timed loop as consecutive short windows (warm-up before the first only)."""
    count = rounds_for(measure_s, WINDOW_SECONDS)
    out: list[EngineOutcome] = []
    for i in range(count):
        shape = LoadShape(
            clients=1,
            warmup_s=warmup_s if i == 0 else 0.0,
            duration_s=measure_s / count,
            seed=seed + i,
            first_seq=sum(w.operations for w in out),
        )
        window = run_load(op, DirectProvider(dsn, op, SESSION), shape, probe_dsn=dsn)
        out.append(window)
        if window.aborted:
            break
    return out


def _window_latency(window: EngineOutcome, pct: float) -> float | None:
    """A window's latency percentile in ms (None when it completed no operation)."""
    return round(window.latency.percentile_ms(pct), 4) if window.latency.count else None


def empty_row(
    strategy: str,
    bucket: Bucket,
    hot_only: bool,
    note: str,
    *,
    agent_data: bool = True,
    ef_search: int | None = None,
    measured: bool = True,
) -> FilteredRow:
    """The row of a strategy that could not be measured on ``bucket``, and why;
    ``measured=False``: the strategy does not apply (no query counts as run)."""
    queries = bucket.hot if hot_only else bucket.queries
    return FilteredRow(
        strategy=strategy,
        bucket=bucket.info.label,
        scope=notes.scope(hot_only, agent_data),
        n_queries=len(queries) if measured else 0,
        agents=queries.distinct,
        rows_matching_mean=0.0,
        recall_mean=None,
        recall_p5=None,
        fill_mean=None,
        fill_min=None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        latency_p99_ms=None,
        qps=None,
        buffers_per_query=None,
        valid=False,
        notes=[note],
        ef_search=ef_search,
    )


# --------------------------------------------------------------------------- EXPLAIN


def plan_problem(doc: dict[str, Any], indexes: set[str], relations: set[str] | None) -> str | None:
    """None when the plan uses exactly the intended indexes (and relations)."""
    node = doc["Plan"]
    used = set(index_names_in_plan(node))
    if used != indexes:
        return notes.plan_uses(used, indexes)
    if relations is not None:
        scanned = set(_relations(node))
        if scanned != relations:
            return notes.plan_scans(scanned, relations)
    return None


def _relations(node: dict[str, Any]) -> Iterator[str]:
    if "Relation Name" in node:
        yield str(node["Relation Name"])
    for child in node.get("Plans", []):
        yield from _relations(child)


def _explain(
    conn: psycopg.Connection[Any],
    plan: Plan,
    params: Sequence[bytes],
    types: Sequence[int],
    formats: Sequence[int],
) -> dict[str, Any]:
    pgconn = conn.pgconn
    stmt = b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + plan.sql.encode()
    res = pgconn.exec_params(stmt, list(params), list(types), list(formats), 0)
    if res.status != libpq.ExecStatus.TUPLES_OK:
        raise psycopg.OperationalError(_result_error(pgconn, res))
    raw = res.get_value(0, 0) or b"[]"
    doc: dict[str, Any] = json.loads(raw)[0]
    return doc


# --------------------------------------------------------------------------- libpq


def _result_error(pgconn: libpq.abc.PGconn, result: libpq.abc.PGresult) -> str:
    raw = result.error_message or pgconn.error_message
    return raw.decode("utf-8", "replace").strip().splitlines()[0] if raw else "unknown error"


def _fetch_ids(
    conn: psycopg.Connection[Any],
    plan: Plan,
    params: Sequence[Sequence[bytes]],
    types: Sequence[int],
    formats: Sequence[int],
    statement: bytes,
) -> list[list[bytes]]:
    """The ids (binary: uuid or bigint) each query returns, in the order returned."""
    pgconn = conn.pgconn
    res = pgconn.prepare(statement, plan.sql.encode(), list(types))
    if res.status != libpq.ExecStatus.COMMAND_OK:
        raise psycopg.OperationalError(_result_error(pgconn, res))
    out: list[list[bytes]] = []
    for p in params:
        res = pgconn.exec_prepared(statement, list(p), list(formats), 1)
        if res.status != libpq.ExecStatus.TUPLES_OK:
            raise psycopg.OperationalError(_result_error(pgconn, res))
        out.append([bytes(res.get_value(r, 0) or b"") for r in range(res.ntuples)])
    return out


def _percentile(values: np.ndarray, pct: float) -> float:
    return float(np.percentile(values, pct, method="linear"))
