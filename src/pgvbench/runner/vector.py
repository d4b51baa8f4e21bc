"""Run one experiment: dataset -> ground truth -> load -> builds -> sweeps -> results.

The runner writes results.json after every sweep point (atomically), so an
interrupted or failed run leaves everything measured so far, marked as such.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .. import point_notes
from .._records import update_in_place
from ..datasets import Dataset, GroundTruth, table_source, tie_aware_recall
from ..datasets.prepared import PreparedData, QuerySets, prepare_data, prepare_dataset
from ..db import indexes as ix
from ..db import schema as db_schema
from ..db.load import load_vectors
from ..db.table_catalog import SourceTable
from ..engine.operations import SESSION, knn_operation
from ..engine.outcome import EngineOutcome, sample_of
from ..engine.providers import DirectProvider
from ..engine.threaded import LoadShape, run_load
from ..errors import PgvbenchError, RunFailed
from ..instrument.collectors import collect_during
from ..instrument.explain import explain_analyze
from ..instrument.host import server_probe
from ..instrument.statements import StatementCollector
from ..loadtest import LoadTester, prepare_query_table
from ..metrics import Metric
from ..plan.shape import check_table_memory
from ..progress import Reporter, Task
from ..results import (
    DatasetInfo,
    IndexBuild,
    LoadInfo,
    LoadPoint,
    Results,
    TuningSection,
)
from ..server.connection import connect, ensure_vector_extension
from ..server.preflight import preflight
from ..spec.model import ExperimentSpec, IndexSpec, LoadSpec, SweepConfig
from ..studies.base import SharedIndex, Study, StudyContext, VectorData
from ..workloads.vector import KnnQuery, check_plan
from .base import Runner, build_progress
from .points import PointRun, add_build, column_type_oid, recall_record
from .versus_exact import versus_exact_for_build


class VectorRunner(Runner):
    """A vector experiment: dataset -> ground truth -> load -> builds -> sweeps -> load
    tests -> studies."""

    def __init__(
        self,
        spec: ExperimentSpec,
        *,
        out_dir: Path,
        cache_dir: Path,
        reporter: Reporter,
    ) -> None:
        super().__init__(spec, out_dir=out_dir, reporter=reporter)
        self.cache_dir = cache_dir
        self.table = f"{spec.name}_items"
        self.queries_table = f"{spec.name}_queries"
        self._items_ident = ""
        self._queries_ident = ""
        self._vector_oid = 0
        self._config: str | None = None  # label of the [[server.sweep]] entry in force
        self._sequence = 0  # order of timed windows in this run (shows the interleaving)
        self.data: PreparedData | None = None
        self._source: SourceTable | None = None  # source = "table"
        self._copied: LoadInfo | None = None  # source = "table": the copy is the load

    # ------------------------------------------------------------------ stages

    def _prepare(self) -> None:
        """Dataset and ground truth: client-side work that needs no server (a table
        source's dataset exists only once a server is connected: built in _run)."""
        if not self._from_table:
            self.data = prepare_data(self.spec, cache_dir=self.cache_dir, reporter=self.reporter)
            self._check_dataset(self.data.dataset)

    @property
    def _from_table(self) -> bool:
        return self.spec.dataset is not None and self.spec.dataset.source == "table"

    def _dataset_info(self) -> DatasetInfo | None:
        return None if self.data is None else self.data.info

    def _check_server(self, conn: psycopg.Connection[Any]) -> None:
        preflight(conn, schema=self.spec.schema)  # privileges, read-only: before any write
        if self._from_table:  # catalog checks of the user's table: exit 2 before any write
            self._source = table_source.inspect(conn, self.spec)
        ensure_vector_extension(conn)
        # Ownership checks before anything is written: a refusal is bad input.
        db_schema.ensure_schema(conn, self.spec.schema)
        db_schema.check_table_replaceable(conn, self.spec.schema, self.table)

    def _run(self, results: Results) -> None:
        if self.data is None:
            self.data = self._copy_table(results)
        self._measure(results, self.data)

    def _copy_table(self, results: Results) -> PreparedData:
        """source = "table": copy the user's table into the items table (one snapshot),
        read it back as the dataset, then ground truth as for any dataset."""
        assert self._source is not None and self.spec.dataset is not None
        queries = self.spec.dataset.queries
        with self.reporter.task(f"copy {self._source.name} (one snapshot)") as task:
            copied = table_source.table_dataset(
                self.target.dsn,
                self.spec,
                self._source,
                schema=self.spec.schema,
                table=self.table,
                check_size=partial(check_table_memory, self._source.name, queries=queries),
            )
            task.update(
                description=f"copied {copied.load.rows:,} rows of {self._source.name} "
                f"({copied.info.copy_method}, {copied.load.seconds:.1f} s)"
            )
        self._check_dataset(copied.dataset)
        data = prepare_dataset(
            self.spec, copied.dataset, cache_dir=self.cache_dir, reporter=self.reporter
        )
        data.info.table_source = copied.info.to_dict()
        results.dataset = data.info
        self._copied = copied.load
        self._save()
        return data

    def _measure(self, results: Results, data: PreparedData) -> None:
        with connect(self.target.dsn) as conn:
            results.load = self._copied or self._load(conn, data.dataset)
            self._items_ident = sql.Identifier(self.spec.schema, self.table).as_string(conn)
            self._vector_oid = column_type_oid(conn, self.spec.schema, self.table, "embedding")
            if self.spec.load is not None:
                with self.reporter.task("query vectors table (for pgbench)"):
                    tables = prepare_query_table(
                        conn,
                        self.target,
                        self.spec.schema,
                        self.queries_table,
                        data.sets.load_stream,
                    )
                self._queries_ident = tables.queries
            self._save()
        configs: list[SweepConfig | None] = list(self.spec.server.sweep) or [None]
        for config in configs:
            if config is not None:
                with self.reporter.task(f"server configuration: {config.label}"):
                    info = self._configure(config)
                self._config = config.label
                if results.tuning is None:
                    results.tuning = TuningSection()
                results.tuning.settings_sweep.append({"label": config.label, **info})
                self._save()
            with connect(self.target.dsn) as conn:
                for index_spec in self.spec.indexes:
                    self._measure_index(
                        conn, index_spec, data.dataset, data.sets, data.truth, results
                    )
        self._config = None
        self._run_studies(results, data)

    def _load(self, conn: psycopg.Connection[Any], dataset: Dataset) -> LoadInfo:
        schema = self.spec.schema
        db_schema.ensure_schema(conn, schema)
        attrs = dataset.attributes
        db_schema.create_vector_table(conn, schema, self.table, dataset.dim, attrs)
        with self.reporter.task(f"load {dataset.n:,} rows (binary COPY)", total=dataset.n) as task:
            seconds = load_vectors(
                self.target.dsn,
                schema,
                self.table,
                dataset.base,
                on_progress=task.advance,
                attributes=attrs,
            )
        with self.reporter.task("ANALYZE"):
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, self.table)))
        return LoadInfo(
            table=f"{schema}.{self.table}",
            rows=dataset.n,
            seconds=round(seconds, 4),
            rows_per_second=round(dataset.n / seconds, 1) if seconds > 0 else 0.0,
            table_bytes=db_schema.relation_bytes(conn, schema, self.table),
        )

    def _measure_index(
        self,
        conn: psycopg.Connection[Any],
        index_spec: IndexSpec,
        dataset: Dataset,
        sets: QuerySets,
        truth: GroundTruth,
        results: Results,
    ) -> None:
        name: str | None = None
        if index_spec.kind == "none":
            build = IndexBuild(
                label=self._label(index_spec),
                kind="none",
                params={},
                build_seconds=0.0,
                index_bytes=0,
                build_settings={},
            )
        else:
            with self.reporter.task(f"build {self._label(index_spec)}", total=100) as task:
                name, build = ix.build_index(
                    self.target.dsn,
                    conn,
                    schema=self.spec.schema,
                    table=self.table,
                    spec=index_spec,
                    metric=dataset.metric,
                    on_progress=build_progress(task, self._label(index_spec)),
                )
                task.update(
                    description=f"built {self._label(index_spec)}: {build.build_seconds:.1f} s, "
                    f"{build.index_bytes / 2**20:.1f} MB"
                )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.spec.schema, self.table)))
        build.server_config = self._config
        results.indexes.append(build)
        self._save()
        values: tuple[int | None, ...] = index_spec.sweep_values or (None,)
        repeats = self.spec.repeats
        try:
            with self.reporter.task(
                f"sweep {self._label(index_spec)}", total=len(values) * (repeats + 1)
            ) as sweep:
                points = [
                    self._prepare_point(index_spec, name, value, dataset, sets, truth, sweep)
                    for value in values
                ]
                # Repeats interleave the points (A B C A B C ...): drift over time then
                # spreads over all of them instead of biasing whichever ran last.
                for repeat in range(repeats):
                    for point in points:
                        self._measure_repeat(point, repeat, sets, sweep)
                        record = point.record(self._config)
                        if point.saved is None:
                            point.saved = record
                            results.runs.append(record)
                        else:
                            update_in_place(point.saved, record)
                        self._save()
                        sweep.advance()
                        if point.outcomes[-1].aborted:
                            raise RunFailed(
                                f"{point.label}: the connection to the server was lost "
                                f"({point.outcomes[-1].aborted})"
                            )
            if name is not None:
                self._versus_exact(dataset, sets, results, self._label(index_spec))
            load = self.spec.load
            if load is not None and load.index == index_spec.label:
                self._load_test(load, dataset, sets, results, self._label(index_spec))
            if name is not None:  # rebuilds reuse the name, so `finally` drops the last one
                for number in range(2, self.spec.query.rebuilds + 1):
                    self._rebuild(conn, index_spec, name, number, points, dataset, sets, truth)
        finally:
            if name is not None:
                self._drop_index_quietly(conn, name)

    def _rebuild(
        self,
        conn: psycopg.Connection[Any],
        index_spec: IndexSpec,
        name: str,
        number: int,
        points: list[PointRun],
        dataset: Dataset,
        sets: QuerySets,
        truth: GroundTruth,
    ) -> None:
        """Drop the build and make it again from the same spec; each operating point's recall
        and one timed window on it join the first build's point as its build-to-build spread."""
        label = self._label(index_spec)
        ix.drop_index(conn, self.spec.schema, name)
        total = self.spec.query.rebuilds
        with self.reporter.task(f"rebuild {label} ({number}/{total})", total=len(points)) as task:
            rebuilt, _ = ix.build_index(
                self.target.dsn,
                conn,
                schema=self.spec.schema,
                table=self.table,
                spec=index_spec,
                metric=dataset.metric,
            )
            assert rebuilt == name  # the name follows from the spec
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.spec.schema, self.table)))
            for point in points:
                value = next(iter(point.query_params.values()), None)
                again = self._prepare_point(index_spec, name, value, dataset, sets, truth, task)
                q = self.spec.query
                outcome = run_load(
                    again.operation,
                    DirectProvider(self.target.dsn, again.operation, SESSION),
                    LoadShape(clients=1, warmup_s=q.warmup_seconds, duration_s=q.measure_seconds),
                    probe_dsn=self.target.dsn,
                )
                if outcome.aborted:
                    raise RunFailed(f"{again.label}: rebuild {number}: {outcome.aborted}")
                assert point.saved is not None
                add_build(point.saved, again.recall.mean, outcome.qps)
                self._save()

    def _versus_exact(
        self, dataset: Dataset, sets: QuerySets, results: Results, label: str
    ) -> None:
        if not any(ix.kind == "none" for ix in self.spec.indexes):
            return  # no exact scan in the spec: the headline quotes no ratio
        with self.reporter.task(f"{label}: best point vs the exact scan, interleaved"):
            record = versus_exact_for_build(
                self.spec,
                results,
                index_label=label,
                dsn=self.target.dsn,
                table=self.table,
                items_ident=self._items_ident,
                vector_oid=self._vector_oid,
                metric=dataset.metric,
                sets=sets,
                seed=self.spec.seed + len(results.versus_exact),
            )
        if record is not None:
            results.versus_exact.append(record)
            self._save()

    def _load_test(
        self, load: LoadSpec, dataset: Dataset, sets: QuerySets, results: Results, label: str
    ) -> None:
        tester = LoadTester(
            self.spec,
            load,
            self.target,
            items=self._items_ident,
            queries=self._queries_ident,
            query_vectors=sets.load_stream,
            metric=dataset.metric,
            vector_oid=self._vector_oid,
            reporter=self.reporter,
        )
        recorded: dict[int, int] = {}

        def on_point(point: LoadPoint) -> None:
            if id(point) not in recorded:
                recorded[id(point)] = len(results.load_points)
                results.load_points.append(point)
            self._save()

        tester.run(label, on_point)

    def _run_studies(self, results: Results, data: PreparedData) -> None:
        """The spec's studies from the registry; those querying one index build share it."""
        chosen = self._studies("after")
        if not chosen:
            return
        if results.tuning is None:
            results.tuning = TuningSection()
        assert self.handle is not None
        ctx = StudyContext(
            spec=self.spec,
            target=self.target,
            server=self.handle.embedded,
            reporter=self.reporter,
            out_dir=self.out_dir,
            vectors=VectorData(
                table=self.table,
                items_ident=self._items_ident,
                vector_oid=self._vector_oid,
                prepared=data,
            ),
        )
        for study, study_spec in chosen:
            if not study.needs_index:
                self._run_study(study, study_spec, ctx)
        shared = [(study, study_spec) for study, study_spec in chosen if study.needs_index]
        if shared:
            self._shared_index_studies(shared, ctx)

    def _shared_index_studies(
        self, chosen: list[tuple[Study[Any, Any], Any]], ctx: StudyContext
    ) -> None:
        """Studies that query one index build: the spec's first hnsw/ivfflat build, built
        once at its default operating point."""
        assert ctx.vectors is not None
        index_spec = next(ix for ix in self.spec.indexes if ix.kind != "none")
        settings = {"statement_timeout": str(self.spec.query.statement_timeout_ms)}
        point = index_spec.operating_point
        if index_spec.query_guc and point is not None:
            settings[index_spec.query_guc] = str(point)
        metric = ctx.vectors.prepared.dataset.metric
        with (
            connect(self.target.dsn) as conn,
            self.reporter.task(f"build {index_spec.label} for the cache studies"),
        ):
            name, _ = ix.build_index(
                self.target.dsn,
                conn,
                schema=self.spec.schema,
                table=self.table,
                spec=index_spec,
                metric=metric,
            )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.spec.schema, self.table)))
        shared = dataclasses.replace(
            ctx, index=SharedIndex(spec=index_spec, name=name, query_settings=settings)
        )
        try:
            for study, study_spec in chosen:
                self._run_study(study, study_spec, shared)
        finally:
            self._drop_index_quietly(None, name)

    def _label(self, index_spec: IndexSpec) -> str:
        """Build label, naming the server configuration when settings are swept."""
        if self._config is None:
            return index_spec.label
        return f"{index_spec.label} [{self._config}]"

    def _drop_index_quietly(self, conn: psycopg.Connection[Any] | None, name: str) -> None:
        """Drop a finished build on ``conn``, or on a new connection when there is none or
        it broke (Ctrl-C, server gone); never let cleanup hide the error that ended the run."""
        for attempt in range(2):
            try:
                if attempt == 0 and conn is not None and not conn.closed:
                    ix.drop_index(conn, self.spec.schema, name)
                else:
                    with connect(self.target.dsn) as fresh:
                        ix.drop_index(fresh, self.spec.schema, name)
                return
            except psycopg.Error:
                continue
            except PgvbenchError:
                return

    def _prepare_point(
        self,
        index_spec: IndexSpec,
        index_name: str | None,
        value: int | None,
        dataset: Dataset,
        sets: QuerySets,
        truth: GroundTruth,
        sweep: Task,
    ) -> PointRun:
        """Plan check and recall for one sweep point (deterministic: measured once)."""
        q = self.spec.query
        query_params = (
            {index_spec.sweep_param: value} if index_spec.sweep_param and value is not None else {}
        )
        label = self._label(index_spec) + "".join(f" {k}={v}" for k, v in query_params.items())
        notes: list[str] = []
        if sets.note:
            notes.append(sets.note)
        with connect(self.target.dsn) as conn:
            knn = self._knn(conn, dataset.metric, query_params)
            if index_spec.kind == "hnsw" and value is not None and value < q.k:
                notes.append(point_notes.ef_search_below_k(value, q.k))
            plan, plan_text = knn.explain(sets.recall.queries[0])
            guc = index_spec.query_guc
            if not query_params and guc is not None:
                # after EXPLAIN: pgvector's library is loaded, so its settings exist
                in_effect = conn.execute("SELECT current_setting(%s, true)", (guc,)).fetchone()
                notes.append(point_notes.server_setting(guc, in_effect[0] if in_effect else None))
            problem = check_plan(plan, index_name)
            if problem:
                notes.append(problem)
            recall_queries = sets.recall.queries
            sweep.update(description=f"{label}: recall over {len(recall_queries)} queries")
            returned = [knn.ids(vec) for vec in recall_queries]
        per_query = tie_aware_recall(
            returned, truth, recall_queries, dataset.base, q.k, dataset.metric, rule=q.recall_rule
        )
        sweep.advance()
        op = knn_operation(
            items=self._items_ident,
            queries=None,
            operator=dataset.metric.operator,
            k=q.k,
            vectors=sets.load_stream,
            vector_oid=self._vector_oid,
            settings={
                **{k: str(v) for k, v in query_params.items()},
                "statement_timeout": str(q.statement_timeout_ms),
            },
        )
        return PointRun(
            index_spec=index_spec,
            index_label=self._label(index_spec),
            index_name=index_name,
            query_params=query_params,
            k=q.k,
            label=label,
            notes=notes,
            plan_text=plan_text,
            plan_problem=problem,
            recall=recall_record(per_query),
            operation=op,
            metric=dataset.metric,
        )

    def _knn(
        self, conn: psycopg.Connection[Any], metric: Metric, query_params: dict[str, int]
    ) -> KnnQuery:
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(
                sql.Literal(self.spec.query.statement_timeout_ms)
            )
        )
        knn = KnnQuery(
            conn,
            schema=self.spec.schema,
            table=self.table,
            metric=metric,
            k=self.spec.query.k,
        )
        for param, param_value in query_params.items():
            knn.set_param(param, param_value)
        return knn

    def _measure_repeat(self, point: PointRun, repeat: int, sets: QuerySets, sweep: Task) -> None:
        """One timed window of one sweep point; collectors watch the first repeat only."""
        q = self.spec.query
        suffix = f" (repeat {repeat + 1}/{self.spec.repeats})" if self.spec.repeats > 1 else ""
        sweep.update(
            description=f"{point.label}{suffix}: recall {point.recall.mean:.3f}, measuring "
            f"{q.warmup_seconds:g}+{q.measure_seconds:g} s"
        )
        op = point.operation

        def measure() -> EngineOutcome:
            return run_load(
                op,
                DirectProvider(self.target.dsn, op, SESSION),
                LoadShape(clients=1, warmup_s=q.warmup_seconds, duration_s=q.measure_seconds),
                probe_dsn=self.target.dsn,
                server_cpu=server_probe(self.target.postmaster_pid),  # for the host load
            )

        with connect(self.target.dsn) as conn:
            collector = StatementCollector(conn, self.table)
            collector.start()
            if self.spec.collectors and repeat == 0:
                relations = [self.table, *([point.index_name] if point.index_name else [])]
                outcome, collected = collect_during(
                    self.target.dsn,
                    schema=self.spec.schema,
                    relations=relations,
                    postmaster_pid=self.target.postmaster_pid,
                    fn=measure,
                )
                statements = collector.stop()
                knn = self._knn(conn, point.metric, point.query_params)
                try:
                    collected["explain_analyze"] = explain_analyze(
                        conn, knn.sql, [sets.recall.queries[0]]
                    )
                except psycopg.Error as exc:
                    collected["explain_analyze"] = {"error": str(exc).strip()[:200]}
                point.collected = collected
            else:
                outcome = measure()
                statements = collector.stop()
            point.statements_available = collector.available
        point.outcomes.append(outcome)
        point.statements.append(statements)
        blocks = (
            statements.shared_blks_hit_per_call + statements.shared_blks_read_per_call
            if statements is not None
            else None
        )
        point.samples.append(
            sample_of(outcome, repeat=repeat, sequence=self._sequence, shared_blks_per_query=blocks)
        )
        self._sequence += 1
        sweep.update(
            description=f"sweep {point.index_spec.label}: last point recall "
            f"{point.recall.mean:.3f}, {outcome.qps:,.0f} QPS"
        )


ExperimentRunner = VectorRunner  # the name 0.1 exported
