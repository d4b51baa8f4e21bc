"""One ``pgvbench ab`` measurement on a server: settings, tables and indexes, plan checks,
recall, the interleaved rounds; everything it created is dropped at the end.

Returns a typed :class:`Measured`; no sentences here (report.py writes them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..analysis.interleave import schedule
from ..datasets import tie_aware_recall
from ..datasets.prepared import PreparedData
from ..db import schema as db_schema
from ..environment import collect_environment
from ..progress import Reporter
from ..runner.points import column_type_oid
from ..server.connection import connect, ensure_vector_extension
from ..server.handle import ServerHandle
from ..server.preflight import preflight
from .pair import ARMS, Pairing, check_server_contexts
from .setup import Built, build_all, check_tables, drop_all, table_names
from .trials import Arm, PlanCheck, Trials, Window, check_arm_plan, returned_ids, run_trials


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measured:
    environment: Mapping[str, Any]
    server_settings: Mapping[str, Any]  # what became of the shared [server.settings]
    built: tuple[Built, ...]
    plans: tuple[PlanCheck, ...]
    recall: Mapping[str, tuple[float, ...]]  # per arm, per recall query (paired by query)
    trials: Trials | None  # None: a plan check refused the comparison

    @property
    def refused(self) -> tuple[PlanCheck, ...]:
        return tuple(p for p in self.plans if p.problem is not None)


def measure(
    pairing: Pairing,
    handle: ServerHandle,
    data: PreparedData,
    *,
    seed: int,
    reporter: Reporter,
) -> Measured:
    spec = pairing.spec
    schema = spec.schema
    where = str(spec.source_path or "<spec>")
    applied = handle.apply(pairing.server_settings, where=where, table="[server.settings]")
    dsn = applied.target.dsn
    with connect(dsn) as conn:
        check_server_contexts(pairing, lambda name: _context(conn, name))
        preflight(conn, schema=schema)
        ensure_vector_extension(conn)
        environment = dataclasses.asdict(collect_environment(conn, server_kind=applied.target.kind))
        created_schema = not db_schema.check_schema(conn, schema)
        names = table_names(spec.name, pairing.variants)
        check_tables(conn, schema, list(names.values()))
        db_schema.ensure_schema(conn, schema)
        try:
            built = build_all(
                dsn,
                conn,
                schema=schema,
                prefix=spec.name,
                variants=pairing.variants,
                dataset=data.dataset,
                reporter=reporter,
            )
            try:
                settings = dataclasses.asdict(applied.info) if applied.info is not None else {}
                head = Measured(
                    environment=environment,
                    server_settings=settings,
                    built=tuple(built),
                    plans=(),
                    recall={},
                    trials=None,
                )
                return _measure_arms(
                    pairing, dsn, conn, head, data, seed, reporter, applied.target.postmaster_pid
                )
            finally:
                drop_all(dsn, schema, [b.table for b in built])
        finally:
            if created_schema:
                _drop_schema_if_empty(dsn, schema)


def _measure_arms(
    pairing: Pairing,
    dsn: str,
    conn: psycopg.Connection[Any],
    head: Measured,
    data: PreparedData,
    seed: int,
    reporter: Reporter,
    postmaster_pid: int | None,
) -> Measured:
    built = head.built
    spec = pairing.spec
    metric = data.dataset.metric
    k = spec.query.k
    arms: list[Arm] = []
    for variant in pairing.variants:
        place = next(b for b in built if variant.arm in b.arms)
        arms.append(
            Arm(
                name=variant.arm,
                table_ident=sql.Identifier(spec.schema, place.table).as_string(conn),
                table=place.table,
                index_name=place.index_name,
                settings=variant.session_settings,
                wrapper=variant.sql,
            )
        )
    recall_queries = data.sets.recall.queries
    with reporter.task("plan checks (EXPLAIN)"):
        plans = tuple(
            check_arm_plan(dsn, arm, operator=metric.operator, k=k, vector=recall_queries[0])
            for arm in arms
        )
    if any(p.problem for p in plans):
        return dataclasses.replace(head, plans=plans)
    recall: dict[str, tuple[float, ...]] = {}
    rule = spec.query.recall_rule  # [query] recall_epsilon; ab.json records it
    for arm in arms:
        with reporter.task(f"recall of {arm.name} over {len(recall_queries)} queries"):
            ids = returned_ids(dsn, arm, operator=metric.operator, k=k, queries=recall_queries)
        per_query = tie_aware_recall(
            ids, data.truth, recall_queries, data.dataset.base, k, metric, rule=rule
        )
        recall[arm.name] = tuple(float(x) for x in np.asarray(per_query))
    order = balanced_schedule(pairing.rounds, seed=seed)
    vector_oid = column_type_oid(conn, spec.schema, built[0].table, "embedding")
    with reporter.task(
        f"interleaved rounds: {pairing.rounds} x A/B, {pairing.window_s:g} s windows",
        total=pairing.rounds,
    ) as task:

        def on_round(round_no: int, windows: Sequence[Window]) -> None:
            qps = {w.arm: w.qps for w in windows}
            if qps.get("A"):
                task.update(
                    description=f"interleaved rounds: round {round_no + 1}/{pairing.rounds}, "
                    f"B/A QPS {qps.get('B', 0.0) / qps['A']:.3f}"
                )
            task.advance()

        trials = run_trials(
            dsn,
            arms,
            schedule=order,
            operator=metric.operator,
            k=k,
            vectors=data.sets.load_stream,
            vector_oid=vector_oid,
            clients=pairing.clients,
            window_s=pairing.window_s,
            postmaster_pid=postmaster_pid,
            on_round=on_round,
        )
    return dataclasses.replace(head, plans=plans, recall=recall, trials=trials)


def balanced_schedule(rounds: int, *, seed: int) -> list[list[str]]:
    """A and B in mirrored rounds (a drawn order, then its reverse): each runs first equally
    often, so an effect of running first cannot lean on one arm."""
    return schedule(list(ARMS), rounds, seed=seed, mirrored=True)


def _context(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT context FROM pg_settings WHERE name = %s", (name,)).fetchone()
    return str(row[0]) if row else None


def _drop_schema_if_empty(dsn: str, schema: str) -> None:
    """The schema this run created goes too, unless something else now lives in it."""
    try:
        with connect(dsn) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} RESTRICT").format(sql.Identifier(schema))
            )
    except psycopg.Error:
        pass
