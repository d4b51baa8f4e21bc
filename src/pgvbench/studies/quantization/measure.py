"""Building, measuring and dropping one HNSW index per variant.

Every index this module creates carries a unique name and is dropped after it was
measured; nothing else on the table is touched. Plans are checked with EXPLAIN so a
number is never reported for an index the planner did not use. The record holds
figures only; its notes and advice are written by advice.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...analysis.interleave import rounds_for
from ...datasets.base import Dataset
from ...datasets.groundtruth import GroundTruth
from ...datasets.recall import summarize_recall, tie_aware_recall
from ...db.gucs import set_settings
from ...db.schema import relation_bytes
from ...engine.operations import SESSION, ParamOperation, encode_vector
from ...engine.outcome import EngineOutcome, merge_outcomes
from ...engine.providers import DirectProvider
from ...engine.threaded import LoadShape, run_load
from ...errors import RunFailed
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule
from ...server.connection import connect
from ...spec.model import INDEX_MAX_DIM, QUERY_GUCS
from ...workloads.vector import check_plan
from .records import QuantizationPoint, QuantizationStudy, QuantizedIndex
from .spec import QuantizationSpec
from .sql import index_expression, query_sql

HALFVEC_MAX_DIM = INDEX_MAX_DIM["halfvec"]
WARMUP_S = 0.2
WINDOW_S = 0.25  # the timed loop's window length (at least 3 windows per point)
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


def _throughput(
    dsn: str, stmt: str, vectors: Sequence[bytes], oid: int, ef: int, seconds: float
) -> tuple[float, float | None, float | None, int, tuple[float, ...]]:
    """Single-client QPS, p50, p99, errors and each window's QPS: the timed loop runs as
    consecutive short windows (same total time) whose spread is the noise of the QPS."""
    op = ParamOperation(
        name="quant",
        sql=stmt,
        types=[oid],
        formats=[1],
        params=lambda seq: [vectors[seq % len(vectors)]],
        settings={_EF_SEARCH: str(ef)},
    )
    count = rounds_for(seconds, WINDOW_S)
    windows: list[EngineOutcome] = []
    for i in range(count):
        shape = LoadShape(
            clients=1,
            warmup_s=min(WARMUP_S, seconds) if i == 0 else 0.0,
            duration_s=seconds / count,
            first_seq=sum(w.operations for w in windows),
        )
        window = run_load(op, DirectProvider(dsn, op, SESSION), shape, probe_dsn=dsn)
        windows.append(window)
        if window.aborted:
            break
    outcome = merge_outcomes(windows)
    lat = outcome.latency.summary()
    return (
        outcome.qps,
        lat.p50 if lat else None,
        lat.p99 if lat else None,
        outcome.errors,
        tuple(round(w.qps, 1) for w in windows),
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
    points: list[QuantizationPoint] = []
    load_vectors = [encode_vector(q) for q in load_queries]
    with connect(dsn) as conn:
        rel = relation.as_string(conn)
        oid = _vector_oid(conn)
        for variant in spec.variants:
            name = f"{table}_q{variant[:4]}_{suffix}"[-63:]
            created = False
            try:
                built = _build(
                    conn, schema=schema, table=table, name=name, variant=variant, dim=dim,
                    metric=metric, spec=spec,
                )  # fmt: skip
                created = True
                indexes.append(built)
                runs: list[tuple[str, int]] = [(variant, 1)]
                if variant == "binary":
                    runs = [("binary", o) for o in spec.overfetch] + [("binary_norerank", 1)]
                for ef in spec.ef_search:
                    set_settings(conn, {_EF_SEARCH: ef})
                    for label, over in runs:
                        stmt = query_sql(
                            label, relation=rel, dim=dim, metric=metric, k=k, overfetch=over
                        )
                        recall, note = _recall_and_plan(
                            conn, stmt, recall_queries, truth, dataset, k, metric, name, oid, rule
                        )
                        qps, p50, p99, errors, window_qps = _throughput(
                            dsn, stmt, load_vectors, oid, ef, measure_seconds
                        )
                        mean, p5, low = summarize_recall(recall)
                        points.append(
                            QuantizationPoint(
                                variant=label,
                                ef_search=ef,
                                overfetch=over,
                                recall_mean=mean,
                                recall_p5=p5,
                                recall_min=low,
                                qps=qps,
                                p50_ms=p50,
                                p99_ms=p99,
                                errors=errors,
                                index=name,
                                index_bytes=built.index_bytes,
                                build_seconds=built.build_seconds,
                                plan_ok=note is None,
                                plan_note=note,
                                capped=label == "binary" and k * over > ef,
                                recall_per_query=tuple(round(float(x), 4) for x in recall),
                                window_qps=window_qps,
                            )
                        )
            finally:
                if created:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
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
