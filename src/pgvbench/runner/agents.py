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

from ..analysis.difficulty import measure_difficulty
from ..datasets.agents.dataset import NEVER_EXPIRES, AgentDataset
from ..datasets.agents.generator import generate_agent_dataset
from ..datasets.agents.model import table_name
from ..datasets.agents.stats import selectivity_stats
from ..db import indexes as ix
from ..db.agent_schema import create_agent_schema, create_secondary_indexes, load_agent_dataset
from ..engine.operations import MixOperation, Operation
from ..errors import SpecError
from ..loadtest import LoadTester
from ..metrics import Metric
from ..progress import Reporter
from ..results import AgentSection, DatasetInfo, LoadPoint, Results
from ..server.connection import connect, ensure_vector_extension
from ..server.preflight import preflight
from ..spec.agents import AgentExperiment
from ..spec.model import ExperimentSpec, LoadSpec
from ..studies.base import StudyContext
from ..workloads.agent_ops import build_agent_mix
from ..workloads.custom import compile_custom
from .base import Runner, build_progress


class AgentRunner(Runner):
    """An agent experiment: the generated platform, loaded and indexed, then its studies
    and operation mix."""

    def __init__(self, spec: ExperimentSpec, *, out_dir: Path, reporter: Reporter) -> None:
        if spec.kind != "agents" or not isinstance(spec.agents, AgentExperiment):
            raise SpecError(f"{spec.name}: not an agent experiment")
        super().__init__(spec, out_dir=out_dir, reporter=reporter)
        self.agents: AgentExperiment = spec.agents
        self.dataset: AgentDataset | None = None
        self._difficulty: dict[str, Any] | None = None  # LID and RC of the memories

    def _prepare(self) -> None:
        """Generate the platform client-side: bad sizes fail before a server is touched."""
        if self.agents.data is not None:
            with self.reporter.task("generate agent platform") as task:
                self.dataset = generate_agent_dataset(self.agents.data)
                d = self.agents.data
                task.update(
                    description=f"agent platform: {d.tenants} tenants, {d.agents} "
                    f"agents, {d.memories:,} memories, {d.chunks:,} chunks"
                )
            if self.dataset.memories >= 3:  # how hard the memories are, as for any dataset
                with self.reporter.task("difficulty of the memories (LID, relative contrast)"):
                    self._difficulty = measure_difficulty(
                        self.dataset.memory_embedding, self.agents.data.metric
                    ).to_dict()

    def _check_server(self, conn: psycopg.Connection[Any]) -> None:
        if self.dataset is not None:  # it writes the platform; [[operation]]s alone may not
            preflight(conn, schema=self.spec.schema)  # privileges, read-only: before writes
        ensure_vector_extension(conn)
        if self.dataset is not None:
            row = conn.execute("SELECT (extract(epoch FROM now()) * 1e6)::int8").fetchone()
            assert row is not None
            align_clock(self.dataset, int(row[0]))

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
        # "before" studies first (filtered search: its ground truth is the generated data),
        # then the mix, which writes, then the "after" studies (drift)
        self._agent_studies("before")
        if self.agents.workload is not None or self.agents.operations:
            self._workload(results, vector_oid)
        self._agent_studies("after")
        if results.agent is not None:
            results.agent.recommendations = list(dict.fromkeys(results.agent.recommendations))

    def _agent_studies(self, stage: str) -> None:
        """The spec's agent studies of this stage; they measure the generated platform."""
        if self.dataset is None:
            return
        assert self.handle is not None
        ctx = StudyContext(
            spec=self.spec,
            target=self.target,
            server=self.handle.embedded,
            reporter=self.reporter,
            out_dir=self.out_dir,
            agent_data=self.dataset,
        )
        for study, study_spec in self._studies(stage):
            self._run_study(study, study_spec, ctx)

    def _load(self, conn: psycopg.Connection[Any], ds: AgentDataset) -> dict[str, dict[str, float]]:
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
                _, build = ix.build_index(
                    self.target.dsn,
                    conn,
                    schema=schema,
                    table=table,
                    spec=index_spec,
                    metric=self.agents.data.metric,
                    on_progress=build_progress(task, f"{index_spec.label} on {kind}"),
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
        guc = index.query_guc
        if guc is not None and index.sweep_param:
            load = self.spec.load
            value = (load.query_params.get(guc) if load else None) or index.operating_point
            if value is not None:
                out[guc] = str(value)
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
            difficulty=self._difficulty,
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
    delta = server_now_us - dataset.now_us
    for name in _TIME_FIELDS:
        setattr(dataset, name, getattr(dataset, name) + delta)
    expires = dataset.memory_expires_at
    dataset.memory_expires_at = expires + (expires != NEVER_EXPIRES) * delta
    dataset.now_us = server_now_us


def _default_metric() -> Metric:
    return Metric.COSINE
