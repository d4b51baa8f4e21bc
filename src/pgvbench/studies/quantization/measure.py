"""Building, measuring and dropping one HNSW index per variant.

All the variants' indexes are built first and dropped together at the end; each carries a
unique name and nothing else on the table is touched. Recall and plans are taken with all
of them present, then every point is timed in interleaved rounds (rounds.py). Plans are
checked with EXPLAIN so a number is never reported for an index the planner did not use.
The record holds figures only; its notes and advice are written by advice.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.base import Dataset
from ...datasets.groundtruth import GroundTruth
from ...datasets.recall import summarize_recall, tie_aware_recall
from ...db.gucs import set_settings
from ...db.schema import relation_bytes
from ...engine.operations import encode_vector
from ...errors import RunFailed
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from ...spec.model import INDEX_MAX_DIM, QUERY_GUCS
from ...workloads.vector import check_plan
from .records import QuantizationPoint, QuantizationStudy, QuantizedIndex
from .rounds import Arm, Timed, time_interleaved
from .spec import QuantizationSpec
from .sql import index_expression, query_sql

HALFVEC_MAX_DIM = INDEX_MAX_DIM["halfvec"]
_EF_SEARCH = QUERY_GUCS["hnsw"]  # every variant is an HNSW index


def _vector_oid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
    if row is None:
        raise RunFailed("the vector type is missing: CREATE EXTENSION vector first")
    return int(row[0])


def _exec(pgconn: Any, stmt: bytes, param: bytes, oid: int) -> Any:
    res = pgconn.exec_params(stmt, [param], [oid], [1])
    if res.status not in (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK):
        raise RunFailed(f"query failed: {res.error_message.decode(errors='replace').strip()}")
    return res


def _build(
    conn: psycopg.Connection[Any],
    *,
    schema: str,
    table: str,
    name: str,
    variant: str,
    dim: int,
    metric: Metric,
    spec: QuantizationSpec,
) -> QuantizedIndex:
    expr = index_expression(variant, dim, metric)
    template = "CREATE INDEX {} ON {} USING hnsw ({}) WITH (m = {}, ef_construction = {})"
    stmt = sql.SQL(template).format(
        sql.Identifier(name),
        sql.Identifier(schema, table),
        sql.SQL(expr),  # built from validated values only
        sql.Literal(spec.m),
        sql.Literal(spec.ef_construction),
    )
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(f"{diag.severity}: {diag.message_primary}")

    conn.add_notice_handler(on_notice)
    started = time.perf_counter()
    try:
        conn.execute(stmt)
    except psycopg.Error as exc:
        raise RunFailed(
            f"building the {variant} index failed: {exc.diag.message_primary or exc}"
        ) from exc
    finally:
        conn.remove_notice_handler(on_notice)
    seconds = time.perf_counter() - started
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
    return QuantizedIndex(
        variant=variant,
        index=name,
        definition=expr,
        build_seconds=round(seconds, 4),
        index_bytes=relation_bytes(conn, schema, name),
        notices=tuple(notices),
    )


def _recall_and_plan(
    conn: psycopg.Connection[Any],
    stmt: str,
    queries: np.ndarray,
    truth: GroundTruth,
    dataset: Dataset,
    k: int,
    metric: Metric,
    index: str,
    oid: int,
    rule: RecallRule,
) -> tuple[np.ndarray, str | None]:
    pgconn = conn.pgconn
    encoded = [encode_vector(q) for q in queries]
    res = _exec(pgconn, b"EXPLAIN (FORMAT JSON) " + stmt.encode(), encoded[0], oid)
    plan = json.loads(res.get_value(0, 0).decode())[0]["Plan"]
    note = check_plan(plan, index)
    name = f"pgvbq_{uuid.uuid4().hex[:8]}".encode()
    prep = pgconn.prepare(name, stmt.encode(), [oid])
    if prep.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise RunFailed(f"prepare failed: {prep.error_message.decode(errors='replace')}")
    ids = np.full((len(encoded), k), -1, dtype=np.int64)
    try:
        for i, param in enumerate(encoded):
            out = pgconn.exec_prepared(name, [param], [1])
            if out.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise RunFailed(f"query failed: {out.error_message.decode(errors='replace')}")
            for r in range(min(k, out.ntuples)):
                ids[i, r] = int(out.get_value(r, 0) or b"-1")
    finally:
        conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name.decode())))
    recall = tie_aware_recall(ids, truth, queries, dataset.base, k, metric, rule=rule)
    return recall, note


@dataclasses.dataclass(frozen=True)
class _Checked:
    """A point whose recall and plan are known, before it is timed."""

    built: QuantizedIndex
    variant: str
    ef_search: int
    overfetch: int
    stmt: str
    recall: np.ndarray
    plan_note: str | None


def _point(c: _Checked, t: Timed, k: int) -> QuantizationPoint:
    mean, p5, low = summarize_recall(c.recall)
    return QuantizationPoint(
        variant=c.variant,
        ef_search=c.ef_search,
        overfetch=c.overfetch,
        recall_mean=mean,
        recall_p5=p5,
        recall_min=low,
        qps=t.qps,
        p50_ms=t.p50_ms,
        p99_ms=t.p99_ms,
        errors=t.errors,
        index=c.built.index,
        index_bytes=c.built.index_bytes,
        build_seconds=c.built.build_seconds,
        plan_ok=c.plan_note is None,
        plan_note=c.plan_note,
        capped=c.variant == "binary" and k * c.overfetch > c.ef_search,
        recall_per_query=tuple(round(float(x), 4) for x in c.recall),
        window_qps=t.window_qps,
        window_sequence=t.window_sequence,
    )


def measure(
    *,
    dsn: str,
    schema: str,
    table: str,
    dataset: Dataset,
    metric: Metric,
    spec: QuantizationSpec,
    recall_queries: np.ndarray,
    truth: GroundTruth,
    load_queries: np.ndarray,
    measure_seconds: float,
    rule: RecallRule = DEFAULT_RULE,
) -> QuantizationStudy:
    """Build, measure and drop one HNSW index per variant on ``schema.table``.

    ``truth`` is the exact ground truth of ``recall_queries`` over ``dataset.base``
    (k >= spec.k). Each point is single-client QPS/p99 (run_load) plus tie-aware recall.
    """
    metric = Metric(metric)
    k, dim = spec.k, dataset.dim
    if truth.k < k:
        raise RunFailed(f"[quantization] k = {k} but the ground truth only has k = {truth.k}")
    if "halfvec" in spec.variants and dim > HALFVEC_MAX_DIM:
        raise RunFailed(f"[quantization] halfvec indexes support up to {HALFVEC_MAX_DIM} dims")
    relation = sql.Identifier(schema, table)
    suffix = uuid.uuid4().hex[:6]
    indexes: list[QuantizedIndex] = []
    checked: list[_Checked] = []
    load_vectors = [encode_vector(q) for q in load_queries]
    with connect(dsn) as conn:
        rel = relation.as_string(conn)
        oid = _vector_oid(conn)
        try:
            # Every variant's index first: their expressions differ, so they coexist and
            # the timed windows of all points can be interleaved (rounds.py).
            for variant in spec.variants:
                name = f"{table}_q{variant[:4]}_{suffix}"[-63:]
                built = _build(
                    conn, schema=schema, table=table, name=name, variant=variant, dim=dim,
                    metric=metric, spec=spec,
                )  # fmt: skip
                indexes.append(built)
            # Recall and plans with all the indexes present: a plan that takes another
            # variant's index is caught here, as it would be at query time.
            for built in indexes:
                runs: list[tuple[str, int]] = [(built.variant, 1)]
                if built.variant == "binary":
                    runs = [("binary", o) for o in spec.overfetch] + [("binary_norerank", 1)]
                for ef in spec.ef_search:
                    set_settings(conn, {_EF_SEARCH: ef})
                    for label, over in runs:
                        stmt = query_sql(
                            label, relation=rel, dim=dim, metric=metric, k=k, overfetch=over
                        )
                        recall, note = _recall_and_plan(
                            conn, stmt, recall_queries, truth, dataset, k, metric, built.index,
                            oid, rule,
                        )  # fmt: skip
                        checked.append(_Checked(built, label, ef, over, stmt, recall, note))
            timed = time_interleaved(
                dsn,
                [Arm(stmt=c.stmt, ef_search=c.ef_search) for c in checked],
                load_vectors,
                oid,
                measure_seconds,
            )
        finally:
            for built in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, built.index)))
    points = [_point(c, t, k) for c, t in zip(checked, timed, strict=True)]
    return QuantizationStudy(
        table=f"{schema}.{table}",
        metric=metric.value,
        dim=dim,
        rows=dataset.n,
        k=k,
        m=spec.m,
        ef_construction=spec.ef_construction,
        indexes=tuple(indexes),
        points=tuple(points),
    )
