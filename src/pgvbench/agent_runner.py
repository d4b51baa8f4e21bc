"""Run an agent experiment: generate the platform, load it, then measure.

Stages, each optional by spec table, in this order: filtered vector search strategies
([filtered], first: its ground truth is the generated data), the operation mix through
the load engine ([workload] / [[operation]] x [load], which writes), and recall/update
cost while memories churn ([drift], last).
Results are saved after every stage, as in the vector runner.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ._records import ResultsRecorder, now_iso, plain
from .agent_spec import AgentExperiment
from .datasets.agents.dataset import AgentDataset
from .datasets.agents.generator import generate_agent_dataset
from .datasets.agents.model import table_name
from .datasets.agents.stats import selectivity_stats
from .db import indexes as ix
from .engine.operations import MixOperation, Operation
from .environment import collect_environment
from .errors import SpecError
from .loadtest import LoadTester
from .progress import Reporter
from .results import (
    AgentSection,
    DatasetInfo,
    LoadPoint,
    Results,
    ServerSettingsInfo,
    current_writer,
)
from .server.connection import Target, connect, ensure_vector_extension
from .server.preflight import preflight
from .server.sessions import watch_concurrent_runs
from .spec.model import ExperimentSpec, LoadSpec


class AgentRunner(ResultsRecorder):
    """Carries one agent experiment from spec to results.json."""

    def __init__(self, spec: ExperimentSpec, *, out_dir: Path, reporter: Reporter) -> None:
        if spec.kind != "agents" or not isinstance(spec.agents, AgentExperiment):
            raise SpecError(f"{spec.name}: not an agent experiment")
        self.spec = spec
        self.agents: AgentExperiment = spec.agents
        self.out_dir = out_dir
        self.reporter = reporter
        self.target = Target(dsn="", kind="unset")
        self.results: Results | None = None
        self.saved = False
        self.server_settings: ServerSettingsInfo | None = None
        self.dataset: AgentDataset | None = None

    def prepare(self) -> None:
        """Generate the platform client-side: bad sizes fail before a server is touched."""
        if self.agents.data is not None:
            with self.reporter.task("generate agent platform") as task:
                self.dataset = generate_agent_dataset(self.agents.data)
                d = self.agents.data
                task.update(
                    description=f"agent platform: {d.tenants} tenants, {d.agents} "
                    f"agents, {d.memories:,} memories, {d.chunks:,} chunks"
                )

    def run(self, target: Target) -> Results:
        self.target = target
        if self.dataset is None and self.agents.data is not None:
            self.prepare()
        with connect(target.dsn) as conn:
            if self.dataset is not None:  # it writes the platform; [[operation]]s alone may not
                preflight(conn, schema=self.spec.schema)  # privileges, read-only: before writes
            ensure_vector_extension(conn)
            if self.dataset is not None:
                row = conn.execute("SELECT (extract(epoch FROM now()) * 1e6)::int8").fetchone()
                assert row is not None
                align_clock(self.dataset, int(row[0]))
            self.results = Results(
                run_name=self.spec.name,
                status="running",
                writer=current_writer(),
                started_at=now_iso(),
                finished_at=None,
                environment=collect_environment(conn, server_kind=target.kind),
                spec=self.spec.to_dict(),
                server_settings=self.server_settings,
                dataset=self._dataset_info(),
            )
            watch_concurrent_runs(conn, self.target.dsn, self.results, log=self.reporter.log)
        try:
            self._save()
            self._run(self.results)
        except BaseException as exc:
            root = self._record_failure(exc)
            if root is exc:
                raise
            raise root from exc
        self._finish("complete", None)
        return self.results

    # ------------------------------------------------------------------ stages

    def _run(self, results: Results) -> None:
        ds = self.dataset
        vector_oid = 0
        with connect(self.target.dsn) as conn:
            if ds is not None:
                results.agent = AgentSection(selectivity=selectivity_stats(ds), tables={})
                results.agent.tables = self._load(conn, ds)
                self._save()
                vector_oid = self._build_indexes(conn, results)
                self._save()
        # filtered first: its ground truth is the generated data, before the mix writes
        if self.agents.filtered is not None and ds is not None:
            self._filtered(results, ds)
        if self.agents.workload is not None or self.agents.operations:
            self._workload(results, vector_oid)
        if self.agents.drift is not None and ds is not None:
            self._drift(results, ds)
        if results.agent is not None:
            results.agent.recommendations = self._recommendations(results.agent)

    def _load(self, conn: psycopg.Connection[Any], ds: AgentDataset) -> dict[str, dict[str, float]]:
        from .db.agent_schema import (
            create_agent_schema,
            create_secondary_indexes,
            load_agent_dataset,
        )

        assert self.agents.data is not None
        schema, prefix = self.spec.schema, self.spec.name
        create_agent_schema(conn, schema=schema, prefix=prefix, dim=self.agents.data.dim)
        d = self.agents.data
        total = d.agents + d.memories + d.chunks + d.tasks * (1 + d.messages_per_task)
        with self.reporter.task("load agent tables (COPY)", total=total) as task:
            done: dict[str, int] = {}

            def progress(kind: str, rows: int) -> None:
                done[kind] = rows
                task.update(completed=sum(done.values()), description=f"load {kind}")

            loaded = load_agent_dataset(
                conn, schema=schema, prefix=prefix, dataset=ds, on_progress=progress
            )
        with self.reporter.task("secondary indexes + ANALYZE"):
            create_secondary_indexes(conn, schema=schema, prefix=prefix)
        return {
            kind: {"rows": float(rows), "seconds": round(seconds, 4)}
            for kind, (rows, seconds) in loaded.items()
        }

    def _build_indexes(self, conn: psycopg.Connection[Any], results: Results) -> int:
        """The spec's vector index on memories and chunks (one build each)."""
        assert self.agents.data is not None
        index_spec = self.spec.indexes[0]
        schema, prefix = self.spec.schema, self.spec.name
        for kind in ("memories", "chunks"):
            table = table_name(prefix, kind)
            if index_spec.kind == "none":
                continue
            if kind == "chunks" and self.agents.data.chunks == 0:
                continue
            with self.reporter.task(f"build {index_spec.label} on {kind}", total=100) as task:

                def show(p: ix.BuildProgress, kind: str = kind) -> None:
                    frac = p.fraction
                    task.update(
                        description=f"build {index_spec.label} on {kind}: {p.phase}",
                        completed=100 * frac if frac is not None else None,
                    )

                _, build = ix.build_index(
                    self.target.dsn,
                    conn,
                    schema=schema,
                    table=table,
                    spec=index_spec,
                    metric=self.agents.data.metric,
                    on_progress=show,
                )
            results.indexes.append(dataclasses.replace(build, label=f"{build.label} [{kind}]"))
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
        row = conn.execute(
            "SELECT atttypid FROM pg_attribute WHERE attrelid = format('%%I.%%I', %s::text, "
            "%s::text)::regclass AND attname = 'embedding'",
            (schema, table_name(prefix, "memories")),
        ).fetchone()
        return int(row[0]) if row else 0

    def _mix(self, vector_oid: int) -> Operation:
        """The built-in operation mix plus the spec's custom operations."""
        from .workloads.agent_ops import build_agent_mix
        from .workloads.custom import compile_custom

        parts: list[tuple[Operation, float]] = []
        settings = self._query_settings()
        wl = self.agents.workload
        if wl is not None and self.dataset is not None and self.agents.data is not None:
            weights = dict(wl.mix)
            builtin = build_agent_mix(
                self.dataset,
                schema=self.spec.schema,
                prefix=self.spec.name,
                weights=weights,
                k=wl.k,
                metric=self.agents.data.metric,
                vector_oid=vector_oid,
                seed=self.spec.seed,
                access_zipf=wl.access_zipf,
                settings=settings,
                recall_filter_kind=wl.recall_filter_kind,
                recall_recency_days=wl.recall_recency_days or None,
                rag_filter=wl.rag_filter,
                expire_batch=wl.expire_batch,
            )
            parts.append((builtin, sum(w for w in weights.values() if w > 0)))
        if self.agents.operations:
            with connect(self.target.dsn) as conn:
                for op_spec in self.agents.operations:
                    compiled = compile_custom(
                        op_spec, conn=conn, seed=self.spec.seed, dataset=self.dataset
                    )
                    parts.append((compiled, float(op_spec.weight)))
        if len(parts) == 1:
            return parts[0][0]
        return MixOperation(parts, seed=self.spec.seed)

    def _query_settings(self) -> dict[str, str]:
        out = {"statement_timeout": str(self.spec.query.statement_timeout_ms)}
        index = self.spec.indexes[0]
        if index.sweep_param:
            load = self.spec.load
            value = (load.query_params.get(index.sweep_param) if load else None) or (
                index.sweep_values[len(index.sweep_values) // 2]
            )
            out[index.sweep_param] = str(value)
        return out

    def _workload(self, results: Results, vector_oid: int) -> None:
        load = self.spec.load or LoadSpec(
            index=self.spec.indexes[0].label, query_params={}, clients=(1, 4)
        )
        op = self._mix(vector_oid)  # compile once up front: a bad custom op fails here
        tester = LoadTester(
            self.spec,
            load,
            self.target,
            items="",
            queries="",
            query_vectors=None,  # type: ignore[arg-type]
            metric=self.agents.data.metric if self.agents.data else _default_metric(),
            vector_oid=vector_oid,
            reporter=self.reporter,
            operation_factory=lambda: op,  # stateless between points: build it once
            workload="agent_mix",
        )

        def on_point(point: LoadPoint) -> None:
            if not any(p is point for p in results.load_points):  # re-saved after fidelity
                results.load_points.append(point)
            self._save()

        tester.run(self.spec.indexes[0].label, on_point)

    def _filtered(self, results: Results, ds: AgentDataset) -> None:
        from .workloads.filtered import compare_filtered, summary_sentences, winners

        f = self.agents.filtered
        assert f is not None and results.agent is not None
        with self.reporter.task(f"filtered search: {len(f.strategies)} strategies"):
            comparison = compare_filtered(
                self.target.dsn,
                schema=self.spec.schema,
                prefix=self.spec.name,
                dataset=ds,
                strategies=f.strategies,
                k=f.k,
                ef_search=f.ef_search,
                max_scan_tuples=f.max_scan_tuples,
                bucket_edges=f.bucket_edges,
                queries_per_bucket=f.queries_per_bucket,
                seed=self.spec.seed,
                measure_seconds=f.measure_seconds,
            )
        results.agent.filtered = plain(comparison)
        results.agent.filtered_winners = {str(k): str(v) for k, v in winners(comparison).items()}
        results.agent.recommendations.extend(summary_sentences(comparison))
        self._save()

    def _drift(self, results: Results, ds: AgentDataset) -> None:
        from .workloads.drift import measure_drift, measure_update_cost

        d = self.agents.drift
        assert d is not None and results.agent is not None and self.agents.data is not None
        k = self.agents.workload.k if self.agents.workload else 10
        with self.reporter.task(
            f"update cost with / without the HNSW index ({d.update_samples} updates)"
        ):
            cost = measure_update_cost(
                self.target.dsn,
                schema=self.spec.schema,
                prefix=self.spec.name,
                updates=d.update_samples,
                seed=self.spec.seed,
            )
        results.agent.update_cost = plain(cost)
        self._save()
        with self.reporter.task(f"recall drift over {d.duration_seconds:g} s of churn"):
            drift = measure_drift(
                self.target.dsn,
                schema=self.spec.schema,
                prefix=self.spec.name,
                dataset=ds,
                k=k,
                metric=self.agents.data.metric,
                ef_search=d.ef_search,
                duration_s=d.duration_seconds,
                insert_rate=d.insert_rate,
                expire_rate=d.expire_rate,
                interval_s=d.interval_seconds,
                queries=d.queries,
                seed=self.spec.seed,
            )
        results.agent.drift = plain(drift)
        self._drift_objects = (drift, cost)
        self._save()

    def _recommendations(self, section: AgentSection) -> list[str]:
        out = list(section.recommendations)
        pair = getattr(self, "_drift_objects", None)
        if pair is not None:
            from .workloads.drift import drift_recommendations

            out.extend(drift_recommendations(*pair))
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ bookkeeping

    def _dataset_info(self) -> DatasetInfo | None:
        d = self.agents.data
        if d is None:
            return None
        return DatasetInfo(
            name=f"agents-{d.tenants}t-{d.agents}a-{d.memories}m",
            source="synthetic:agents",
            n=d.memories,
            dim=d.dim,
            metric=str(d.metric),
            seed=d.seed,
            n_queries=0,
            n_recall_queries=0,
        )


_TIME_FIELDS = (
    "agent_created_at",
    "memory_created_at",
    "task_created_at",
    "task_updated_at",
    "message_created_at",
)


def align_clock(dataset: AgentDataset, server_now_us: int) -> None:
    """Move the generated timeline so its "now" is the server's now().

    The generator dates rows from a fixed, seed-derived "now" (reproducible); the server
    compares with its real clock (expiry, recency filters). Shifting every timestamp by
    the same amount keeps the data identical relative to "now".
    """
    from .datasets.agents.dataset import NEVER_EXPIRES

    delta = server_now_us - dataset.now_us
    for name in _TIME_FIELDS:
        setattr(dataset, name, getattr(dataset, name) + delta)
    expires = dataset.memory_expires_at
    dataset.memory_expires_at = expires + (expires != NEVER_EXPIRES) * delta
    dataset.now_us = server_now_us


def _default_metric() -> Any:
    from .metrics import Metric

    return Metric.COSINE
