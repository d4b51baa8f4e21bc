"""Run one experiment: dataset -> ground truth -> load -> builds -> sweeps -> results.

The runner writes results.json after every sweep point (atomically), so an
interrupted or failed run leaves everything measured so far, marked as such.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ._records import ResultsRecorder, now_iso, plain, update_in_place
from .datasets import Dataset, GroundTruth, ground_truth, summarize_recall, tie_aware_recall
from .datasets.prepared import PreparedData, QuerySets, build_dataset, split_queries
from .db import indexes as ix
from .db import schema as db_schema
from .db.load import load_vectors
from .engine.operations import SESSION, Operation, knn_operation
from .engine.outcome import EngineOutcome, merge_outcomes, sample_of
from .engine.providers import DirectProvider
from .engine.threaded import LoadShape, run_load
from .environment import collect_environment
from .errors import DatasetError, PgvbenchError, RunFailed
from .instrument.collectors import collect_during
from .instrument.explain import explain_analyze
from .instrument.statements import StatementCollector
from .loadtest import CLIENT_SATURATED_CORES, LoadTester, prepare_query_table
from .metrics import Metric
from .progress import Reporter, Task
from .results import (
    DatasetInfo,
    GroundTruthInfo,
    IndexBuild,
    LoadInfo,
    LoadPoint,
    Recall,
    Results,
    Sample,
    ServerSettingsInfo,
    StatementStats,
    SweepPoint,
    TuningSection,
    current_writer,
)
from .server.connection import Target, connect, ensure_vector_extension
from .server.preflight import preflight
from .server.sessions import watch_concurrent_runs
from .spec.model import ExperimentSpec, IndexSpec, LoadSpec, SweepConfig
from .workloads.vector import KnnQuery, check_plan

_QUERY_GUCS = {"hnsw": "hnsw.ef_search", "ivfflat": "ivfflat.probes"}


class ExperimentRunner(ResultsRecorder):
    """Carries one run from spec to results.json."""

    def __init__(
        self,
        spec: ExperimentSpec,
        *,
        out_dir: Path,
        cache_dir: Path,
        reporter: Reporter,
    ) -> None:
        self.spec = spec
        self.target = Target(dsn="", kind="unset")
        self.out_dir = out_dir
        self.cache_dir = cache_dir
        self.reporter = reporter
        self.table = f"{spec.name}_items"
        self.queries_table = f"{spec.name}_queries"
        self._items_ident = ""
        self._queries_ident = ""
        self._vector_oid = 0
        self._config: str | None = None  # label of the [[server.sweep]] entry in force
        self._sequence = 0  # order of timed windows in this run (shows the interleaving)
        # applies one [[server.sweep]] entry; returns the (possibly restarted) target
        self.configure: Callable[[SweepConfig], tuple[Target, dict[str, Any]]] | None = None
        self.server: Any = None  # the EmbeddedServer when pgvbench owns it (cache study)
        self.results: Results | None = None
        self.saved = False
        self.server_settings: ServerSettingsInfo | None = None

    def run(self, target: Target, data: PreparedData | None = None) -> Results:
        """Run the whole experiment; on any failure, save what was measured and re-raise.

        Inputs are checked first (dataset files, ground truth, server reachable, pgvector
        present): a bad input fails before anything is written. Pass ``data`` from
        :meth:`prepare` to check the inputs before a server is even started.
        """
        self.target = target
        data = data or self.prepare()
        with connect(self.target.dsn) as conn:
            preflight(conn, schema=self.spec.schema)  # privileges, read-only: before any write
            ensure_vector_extension(conn)
            # Ownership checks before anything is written: a refusal is bad input.
            db_schema.ensure_schema(conn, self.spec.schema)
            db_schema.check_table_replaceable(conn, self.spec.schema, self.table)
            self.results = Results(
                run_name=self.spec.name,
                status="running",
                writer=current_writer(),
                started_at=now_iso(),
                finished_at=None,
                environment=collect_environment(conn, server_kind=self.target.kind),
                spec=self.spec.to_dict(),
                server_settings=self.server_settings,
                dataset=data.info,
            )
            watch_concurrent_runs(conn, self.target.dsn, self.results, log=self.reporter.log)
        try:
            self._save()
            self._run(self.results, data)
        except BaseException as exc:
            root = self._record_failure(exc)
            if root is exc:
                raise
            raise root from exc
        self._finish("complete")
        return self.results

    # ------------------------------------------------------------------ stages

    def prepare(self) -> PreparedData:
        """Dataset and ground truth: client-side work that needs no server."""
        spec = self.spec
        with self.reporter.task("generate / read dataset") as task:
            dataset = build_dataset(spec)
            task.update(description=f"dataset {dataset.n:,} x {dataset.dim} ({dataset.metric})")
        if spec.query.k > dataset.n:
            raise DatasetError(f"[query] k = {spec.query.k} exceeds the dataset's {dataset.n} rows")
        sets = split_queries(dataset, spec.query.recall_queries)
        with self.reporter.task(
            f"ground truth top-{spec.query.k} for {sets.recall.n_queries:,} queries"
        ) as task:
            truth = ground_truth(sets.recall, spec.query.k, cache_dir=self.cache_dir)
            task.update(
                description=f"ground truth ({truth.method}{', cached' if truth.cached else ''})"
            )
        info = DatasetInfo(
            name=dataset.name,
            source=dataset.source,
            n=dataset.n,
            dim=dataset.dim,
            metric=str(dataset.metric),
            seed=dataset.seed,
            n_queries=dataset.n_queries,
            n_recall_queries=sets.recall.n_queries,
            ground_truth=GroundTruthInfo(
                k=spec.query.k,
                method=truth.method,
                seconds=round(truth.seconds, 4),
                cached=truth.cached,
            ),
        )
        return PreparedData(dataset=dataset, sets=sets, truth=truth, info=info)

    def _run(self, results: Results, data: PreparedData) -> None:
        with connect(self.target.dsn) as conn:
            results.load = self._load(conn, data.dataset)
            self._items_ident = sql.Identifier(self.spec.schema, self.table).as_string(conn)
            self._vector_oid = _column_type_oid(conn, self.spec.schema, self.table, "embedding")
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
        if configs != [None] and self.configure is None:
            raise RunFailed("[[server.sweep]] needs a server to configure; none was given")
        for config in configs:
            if config is not None:
                assert self.configure is not None
                with self.reporter.task(f"server configuration: {config.label}"):
                    self.target, info = self.configure(config)
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
        self._studies(results, data)

    def _load(self, conn: psycopg.Connection[Any], dataset: Dataset) -> LoadInfo:
        schema = self.spec.schema
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, self.table, dataset.dim)
        with self.reporter.task(f"load {dataset.n:,} rows (binary COPY)", total=dataset.n) as task:
            seconds = load_vectors(
                self.target.dsn, schema, self.table, dataset.base, on_progress=task.advance
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

                def show(p: ix.BuildProgress) -> None:
                    frac = p.fraction
                    task.update(
                        description=f"build {self._label(index_spec)}: {p.phase}",
                        completed=100 * frac if frac is not None else None,
                    )

                name, build = ix.build_index(
                    self.target.dsn,
                    conn,
                    schema=self.spec.schema,
                    table=self.table,
                    spec=index_spec,
                    metric=dataset.metric,
                    on_progress=show,
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
            load = self.spec.load
            if load is not None and load.index == index_spec.label:
                self._load_test(load, dataset, sets, results, self._label(index_spec))
        finally:
            if name is not None:
                self._drop_index_quietly(conn, name)

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

    def _studies(self, results: Results, data: PreparedData) -> None:
        """[build_tuning], [quantization], [result_cache], [cache] (last: it restarts)."""
        st = self.spec.studies
        if not (st.build_tuning or st.quantization or st.result_cache or st.cache):
            return
        if results.tuning is None:
            results.tuning = TuningSection()
        tuning = results.tuning
        ds = data.dataset
        if st.build_tuning is not None:
            from .tuning.build import measure_build_tuning, recommend_build

            wanted = st.build_tuning.index
            index_spec = next(
                (
                    ix
                    for ix in self.spec.indexes
                    if (ix.label == wanted if wanted else ix.kind == "hnsw")
                ),
                next(ix for ix in self.spec.indexes if ix.kind != "none"),
            )
            with (
                self.reporter.task(
                    f"build tuning: {len(st.build_tuning.combinations())} builds of "
                    f"{index_spec.label}"
                ),
                connect(self.target.dsn) as conn,
            ):
                build_study = measure_build_tuning(
                    dsn=self.target.dsn,
                    conn=conn,
                    schema=self.spec.schema,
                    table=self.table,
                    index_spec=index_spec,
                    metric=ds.metric,
                    spec=st.build_tuning,
                )
            tuning.build_tuning = plain(build_study)
            tuning.recommendations += recommend_build(
                build_study, rows=ds.n, cores=os.cpu_count() or 1
            )
            self._save()
        if st.quantization is not None:
            from .tuning.quantization import measure_quantization
            from .tuning.quantization import recommendations as quant_recs

            with self.reporter.task("quantization: full vs halfvec vs binary"):
                quant = measure_quantization(
                    dsn=self.target.dsn,
                    schema=self.spec.schema,
                    table=self.table,
                    dataset=ds,
                    metric=ds.metric,
                    spec=st.quantization,
                    recall_queries=data.sets.recall.queries,
                    truth=data.truth,
                    load_queries=data.sets.load_stream,
                    measure_seconds=self.spec.query.measure_seconds,
                )
            tuning.quantization = plain(quant)
            tuning.recommendations += quant_recs(quant)
            self._save()
        if st.result_cache is not None or st.cache is not None:
            self._index_studies(results, data)

    def _index_studies(self, results: Results, data: PreparedData) -> None:
        """Studies that query one index build: the spec's first hnsw/ivfflat build."""
        st = self.spec.studies
        assert results.tuning is not None
        tuning = results.tuning
        ds = data.dataset
        index_spec = next(ix for ix in self.spec.indexes if ix.kind != "none")
        param = index_spec.sweep_param
        value = index_spec.sweep_values[len(index_spec.sweep_values) // 2] if param else None
        settings = {"statement_timeout": str(self.spec.query.statement_timeout_ms)}
        if param and value is not None:
            settings[param] = str(value)
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
                metric=ds.metric,
            )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.spec.schema, self.table)))
        try:
            if st.result_cache is not None:
                from .tuning.result_cache import measure_result_caches
                from .tuning.result_cache import recommendations as rc_recs

                with self.reporter.task("application result caches (LRU, semantic)"):
                    rc = measure_result_caches(
                        dsn=self.target.dsn,
                        schema=self.spec.schema,
                        table=self.table,
                        dataset=ds,
                        metric=ds.metric,
                        spec=st.result_cache,
                        query_settings=settings,
                        truth_fn=None,
                    )
                tuning.result_cache = plain(rc)
                tuning.recommendations += rc_recs(rc)
                self._save()
            if st.cache is not None:
                from .tuning.cache import measure_cache_states
                from .tuning.cache import recommendations as cache_recs

                def query_op() -> Operation:
                    return knn_operation(
                        items=self._items_ident,
                        queries=None,
                        operator=ds.metric.operator,
                        k=self.spec.query.k,
                        vectors=data.sets.load_stream,
                        vector_oid=self._vector_oid,
                        settings=settings,
                    )

                with self.reporter.task("cache states: cold / warm / autoprewarm"):
                    study = measure_cache_states(
                        target=self.target,
                        server=self.server,
                        spec=st.cache,
                        schema=self.spec.schema,
                        table=self.table,
                        index_name=name,
                        query_op_factory=query_op,
                        k=self.spec.query.k,
                        base_settings=self.spec.server.settings,
                    )
                tuning.cache = plain(study)
                tuning.recommendations += cache_recs(study)
                self._save()
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
    ) -> _PointRun:
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
                notes.append(f"hnsw.ef_search = {value} < k = {q.k}: at most {value} rows return")
            plan, plan_text = knn.explain(sets.recall.queries[0])
            if not query_params and index_spec.kind in _QUERY_GUCS:
                guc = _QUERY_GUCS[index_spec.kind]
                # after EXPLAIN: pgvector's library is loaded, so its settings exist
                in_effect = conn.execute("SELECT current_setting(%s, true)", (guc,)).fetchone()
                notes.append(
                    f"{guc} = {in_effect[0] if in_effect else '?'} (the server's setting: the "
                    "spec leaves it to the server)"
                )
            problem = check_plan(plan, index_name)
            if problem:
                notes.append(problem)
            recall_queries = sets.recall.queries
            sweep.update(description=f"{label}: recall over {len(recall_queries)} queries")
            returned = [knn.ids(vec) for vec in recall_queries]
        per_query = tie_aware_recall(
            returned, truth, recall_queries, dataset.base, q.k, dataset.metric
        )
        mean, p5, low = summarize_recall(per_query)
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
        return _PointRun(
            index_spec=index_spec,
            index_label=self._label(index_spec),
            index_name=index_name,
            query_params=query_params,
            k=q.k,
            label=label,
            notes=notes,
            plan_text=plan_text,
            plan_problem=problem,
            recall=Recall(mean=round(mean, 5), p5=round(p5, 5), min=round(low, 5)),
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

    def _measure_repeat(self, point: _PointRun, repeat: int, sets: QuerySets, sweep: Task) -> None:
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
            )

        with connect(self.target.dsn) as conn:
            collector = StatementCollector(conn, self.table)
            collector.start()
            if self.spec.studies.collectors and repeat == 0:
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


@dataclasses.dataclass
class _PointRun:
    """One sweep point across its repeats: fixed facts first, measurements appended."""

    index_spec: IndexSpec
    index_label: str
    index_name: str | None
    query_params: dict[str, int]
    k: int
    label: str
    notes: list[str]
    plan_text: str | None
    plan_problem: str | None
    recall: Recall
    operation: Operation
    metric: Metric
    outcomes: list[EngineOutcome] = dataclasses.field(default_factory=list)
    statements: list[StatementStats | None] = dataclasses.field(default_factory=list)
    samples: list[Sample] = dataclasses.field(default_factory=list)
    collected: dict[str, Any] | None = None
    statements_available: bool = True
    saved: SweepPoint | None = None  # the record in results.runs, updated in place

    def record(self, server_config: str | None) -> SweepPoint:
        """The point over the repeats so far (histograms merged, counts summed)."""
        outcome = merge_outcomes(self.outcomes)
        notes = list(self.notes)
        if not self.statements_available:
            notes.append("pg_stat_statements is not available on this server")
        if outcome.errors:
            top = "; ".join(f"{m} (x{c})" for m, c in outcome.error_messages.most_common(3))
            notes.append(f"{outcome.errors} operations failed: {top}")
        if outcome.aborted:
            notes.append(f"measurement stopped early: {outcome.aborted}")
        if len(self.samples) > 1:
            notes.append(
                f"{len(self.samples)} repeats, interleaved with the other points; "
                "latency and QPS merge all repeats"
            )
        valid = self.plan_problem is None and outcome.errors == 0 and outcome.aborted is None
        suspect = (outcome.client_cpu_cores or 0.0) >= CLIENT_SATURATED_CORES
        if suspect:
            notes.append(
                f"load generator used {outcome.client_cpu_cores:.2f} cores: it may be "
                "the bottleneck"
            )
        return SweepPoint(
            index=self.index_label,
            index_kind=self.index_spec.kind,
            index_params=dict(self.index_spec.params),
            query_params=self.query_params,
            k=self.k,
            concurrency=1,
            recall=self.recall,
            qps=round(outcome.qps, 2),
            latency_ms=outcome.latency.summary(),
            operations=outcome.operations,
            errors=outcome.errors,
            duration_s=round(outcome.duration_s, 4),
            warmup_s=outcome.warmup_s,
            valid=valid,
            notes=notes,
            plan=self.plan_text,
            statements=_merge_statements(self.statements),
            histogram=outcome.latency.encode() if outcome.operations else None,
            client_cpu_cores=outcome.client_cpu_cores,
            suspect=suspect,
            server_config=server_config,
            collectors=self.collected,
            samples=list(self.samples),
        )


def _merge_statements(stats: list[StatementStats | None]) -> StatementStats | None:
    """Call-weighted pg_stat_statements deltas over the repeats."""
    present = [s for s in stats if s is not None]
    calls = sum(s.calls for s in present)
    if not present or calls == 0:
        return None
    return StatementStats(
        calls=calls,
        mean_exec_ms=sum(s.mean_exec_ms * s.calls for s in present) / calls,
        shared_blks_hit_per_call=sum(s.shared_blks_hit_per_call * s.calls for s in present) / calls,
        shared_blks_read_per_call=sum(s.shared_blks_read_per_call * s.calls for s in present)
        / calls,
    )


def _column_type_oid(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> int:
    """OID of the column's type (pgvector's type OIDs differ per database)."""
    row = conn.execute(
        "SELECT atttypid FROM pg_attribute WHERE attrelid = format('%%I.%%I', %s::text, "
        "%s::text)::regclass AND attname = %s",
        (schema, table, column),
    ).fetchone()
    if row is None:
        raise RunFailed(f"column {column} not found in {schema}.{table}")
    return int(row[0])
