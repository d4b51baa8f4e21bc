"""Quantized HNSW indexes against full precision: size, build time, recall and speed.

Variants (pgvector 0.8):

* ``full``: ``USING hnsw (embedding vector_<metric>_ops)``.
* ``halfvec``: expression index ``((embedding::halfvec(d)) halfvec_<metric>_ops)``,
  queried ``ORDER BY embedding::halfvec(d) <op> $1::halfvec(d)``.
* ``binary``: ``((binary_quantize(embedding)::bit(d)) bit_hamming_ops)``; the Hamming
  order fetches ``k x overfetch`` candidates in a subquery that are re-ranked by the
  full-precision distance. ``binary_norerank`` (the Hamming top-k as is) is measured
  alongside for comparison.

Every index this module creates carries a unique name and is dropped after it was
measured; nothing else on the table is touched. Plans are checked with EXPLAIN so a
number is never reported for an index the planner did not use.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..datasets.base import Dataset
from ..datasets.groundtruth import GroundTruth
from ..datasets.recall import summarize_recall, tie_aware_recall
from ..db.schema import relation_bytes
from ..engine.operations import SESSION, ParamOperation, encode_vector
from ..engine.providers import DirectProvider
from ..engine.threaded import LoadShape, run_load
from ..errors import RunFailed
from ..metrics import Metric
from ..server.connection import connect
from ..spec.table import Table as _Table
from ..workloads.vector import check_plan

VARIANTS = ("full", "halfvec", "binary")
HALFVEC_MAX_DIM = 4000
WARMUP_S = 0.2

# --- spec ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantizationSpec:
    """``[quantization]``: HNSW build parameters and the query grid of every variant."""

    m: int = 16
    ef_construction: int = 64
    ef_search: tuple[int, ...] = (40,)
    overfetch: tuple[int, ...] = (1, 2, 4, 8)
    variants: tuple[str, ...] = VARIANTS
    k: int = 10


def parse_quantization(t: _Table) -> QuantizationSpec:
    """Validate ``[quantization]``; errors name the file, table and key (SpecError)."""
    t.only(["m", "ef_construction", "ef_search", "overfetch", "variants", "k"])
    m = t.integer("m", default=16, minimum=2, maximum=100)
    efc = t.integer("ef_construction", default=64, minimum=4, maximum=1000)
    if efc < 2 * m:
        t.fail("ef_construction", f"= {efc} must be at least 2 x m = {2 * m} (pgvector's rule)")
    variants = t.str_list("variants", default=list(VARIANTS), allowed=VARIANTS)
    return QuantizationSpec(
        m=m,
        ef_construction=efc,
        ef_search=t.int_list("ef_search", default=[40], minimum=1, maximum=1000),
        overfetch=t.int_list("overfetch", default=[1, 2, 4, 8], minimum=1, maximum=100),
        variants=tuple(dict.fromkeys(variants)),
        k=t.integer("k", default=10, minimum=1, maximum=100),
    )


# --- results ---------------------------------------------------------------------------


@dataclasses.dataclass
class QuantizedIndex:
    variant: str  # full | halfvec | binary
    index: str
    definition: str
    build_seconds: float
    index_bytes: int
    notices: list[str]


@dataclasses.dataclass
class QuantizationPoint:
    variant: str  # full | halfvec | binary | binary_norerank
    ef_search: int
    overfetch: int  # candidates fetched = k x overfetch (1 without re-rank)
    recall_mean: float
    recall_p5: float
    recall_min: float
    qps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    index: str
    index_bytes: int
    build_seconds: float
    plan_ok: bool
    plan_note: str | None
    capped: bool  # k x overfetch > ef_search: HNSW returns at most ef_search candidates


@dataclasses.dataclass
class QuantizationStudy:
    table: str
    metric: str
    dim: int
    rows: int
    k: int
    m: int
    ef_construction: int
    indexes: list[QuantizedIndex]
    points: list[QuantizationPoint]
    notes: list[str] = dataclasses.field(default_factory=list)
    recommendations: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- SQL of each variant ---------------------------------------------------------------


def _index_expression(variant: str, dim: int, metric: Metric) -> str:
    if variant == "full":
        return f"embedding {metric.opclass()}"
    if variant == "halfvec":
        return f"(embedding::halfvec({dim})) {metric.opclass('halfvec')}"
    return f"(binary_quantize(embedding)::bit({dim})) bit_hamming_ops"


def query_sql(
    variant: str, *, relation: str, dim: int, metric: Metric, k: int, overfetch: int = 1
) -> str:
    """The top-k statement of a variant, with ``$1`` the query vector (type vector)."""
    op = metric.operator
    if variant == "full":
        return f"SELECT id FROM {relation} ORDER BY embedding {op} $1 LIMIT {k}"
    if variant == "halfvec":
        return (
            f"SELECT id FROM {relation} ORDER BY embedding::halfvec({dim}) {op} "
            f"$1::halfvec({dim}) LIMIT {k}"
        )
    hamming = f"binary_quantize(embedding)::bit({dim}) <~> binary_quantize($1)"
    if variant == "binary_norerank":
        return f"SELECT id FROM {relation} ORDER BY {hamming} LIMIT {k}"
    return (
        f"SELECT id FROM (SELECT id, embedding FROM {relation} ORDER BY {hamming} "
        f"LIMIT {k * overfetch}) candidates ORDER BY embedding {op} $1 LIMIT {k}"
    )


# --- measurement -----------------------------------------------------------------------


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
    expr = _index_expression(variant, dim, metric)
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
        notices=notices,
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
    recall = tie_aware_recall(ids, truth, queries, dataset.base, k, metric)
    return recall, note


def _throughput(
    dsn: str, stmt: str, vectors: Sequence[bytes], oid: int, ef: int, seconds: float
) -> tuple[float, float | None, float | None, int]:
    op = ParamOperation(
        name="quant",
        sql=stmt,
        types=[oid],
        formats=[1],
        params=lambda seq: [vectors[seq % len(vectors)]],
        settings={"hnsw.ef_search": str(ef)},
    )
    outcome = run_load(
        op,
        DirectProvider(dsn, op, SESSION),
        LoadShape(clients=1, warmup_s=min(WARMUP_S, seconds), duration_s=seconds),
        probe_dsn=dsn,
    )
    lat = outcome.latency.summary()
    return (
        outcome.qps,
        lat.p50 if lat else None,
        lat.p99 if lat else None,
        outcome.errors,
    )


def measure_quantization(
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
    notes: list[str] = []
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
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
                    for label, over in runs:
                        stmt = query_sql(
                            label, relation=rel, dim=dim, metric=metric, k=k, overfetch=over
                        )
                        recall, note = _recall_and_plan(
                            conn, stmt, recall_queries, truth, dataset, k, metric, name, oid
                        )
                        qps, p50, p99, errors = _throughput(
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
                            )
                        )
            finally:
                if created:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    if any(p.capped for p in points):
        notes.append(
            "some binary points fetch k x overfetch > ef_search candidates; HNSW returns at "
            "most ef_search rows, so those points re-rank fewer candidates than asked"
        )
    if any(not p.plan_ok for p in points):
        notes.append("some points did not use the intended index (see plan_note)")
    study = QuantizationStudy(
        table=f"{schema}.{table}",
        metric=metric.value,
        dim=dim,
        rows=dataset.n,
        k=k,
        m=spec.m,
        ef_construction=spec.ef_construction,
        indexes=indexes,
        points=points,
        notes=notes,
    )
    study.recommendations = recommendations(study)
    return study


# --- advice ----------------------------------------------------------------------------


def recommendations(study: QuantizationStudy) -> list[str]:
    """Plain-language conclusions: size and build savings, and the best point per variant."""
    out: list[str] = []
    by_variant = {ix.variant: ix for ix in study.indexes}
    full = by_variant.get("full")
    valid = [p for p in study.points if p.plan_ok and p.errors == 0]
    best: dict[str, QuantizationPoint] = {}
    for p in valid:
        cur = best.get(p.variant)
        if cur is None or (p.recall_mean, p.qps) > (cur.recall_mean, cur.qps):
            best[p.variant] = p
    for name in ("halfvec", "binary"):
        ix = by_variant.get(name)
        if ix is None or full is None or full.index_bytes == 0:
            continue
        out.append(
            f"The {name} index is {ix.index_bytes / full.index_bytes:.0%} of the full-precision "
            f"index's size ({ix.index_bytes / 1e6:.1f} vs {full.index_bytes / 1e6:.1f} MB) and "
            f"built in {ix.build_seconds:.2f} s vs {full.build_seconds:.2f} s."
        )
    ref = best.get("full")
    for name, p in sorted(best.items()):
        if name == "full" or ref is None:
            continue
        out.append(
            f"Best {name} point (ef_search {p.ef_search}, overfetch {p.overfetch}): recall "
            f"{p.recall_mean:.3f} at {p.qps:,.0f} QPS vs full precision {ref.recall_mean:.3f} "
            f"at {ref.qps:,.0f} QPS."
        )
    rerank = best.get("binary")
    norerank = best.get("binary_norerank")
    if rerank and norerank:
        out.append(
            f"Re-ranking binary candidates by the full distance lifts recall from "
            f"{norerank.recall_mean:.3f} to {rerank.recall_mean:.3f}; never serve Hamming "
            "order alone."
        )
    if any(p.capped for p in study.points):
        out.append("Raise hnsw.ef_search to at least k x overfetch for binary re-ranking.")
    if any(not p.plan_ok for p in study.points):
        out.append("Some queries did not use the quantized index: check the plan notes.")
    return out
