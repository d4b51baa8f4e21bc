"""Concurrency tests: engines x pooling strategies x pool sizes x client counts.

Runs on one index build at fixed query parameters (the spec's [load] table), right
after that build's recall sweep, and turns each engine outcome into a LoadPoint.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from . import point_notes
from ._records import update_in_place
from .analysis.interleave import LATER_WINDOW_WARMUP_S, rounds_for, schedule
from .analysis.paired import paired_ratio
from .db.load import load_vectors
from .db.schema import check_table_replaceable, create_vector_table
from .engine.multiproc import connect_like, run_load_processes
from .engine.operations import (
    Operation,
    knn_operation,
)
from .engine.outcome import EngineOutcome, merge_outcomes, operation_details, sample_of
from .engine.pgbench import find_pgbench, knn_script, run_pgbench
from .engine.providers import (
    ServerUnreachable,
)
from .engine.threaded import LoadShape, run_load
from .errors import RunFailed
from .instrument.cpu import ServerCpuProbe
from .load_strategies import bouncer_delta, bouncer_stats, open_provider, sum_pool_stats
from .metrics import Metric
from .progress import Reporter, Task
from .results import LoadPoint, Sample
from .server.connection import Target
from .server.pgbouncer_setup import find_pgbouncer
from .spec.model import ExperimentSpec, LoadSpec, PoolingSpec

CLIENT_SATURATED_CORES = 0.9  # per Python process: the GIL caps each near one core
FIDELITY_SUSPECT = 0.8


@dataclasses.dataclass
class _Measured:
    """One repeat of one load point, before it is merged into the LoadPoint."""

    outcome: EngineOutcome
    pool_stats: dict[str, int] | None
    notes: list[str]
    sample: Sample | None = None
    sequence: int = 0  # which window of this load test it was (the run order)


@dataclasses.dataclass(frozen=True)
class LoadTables:
    items: str  # quoted, qualified identifiers
    queries: str
    n_queries: int


def prepare_query_table(
    conn: psycopg.Connection[Any], target: Target, schema: str, table: str, vectors: np.ndarray
) -> LoadTables:
    """The load stream's query vectors in a table, for pgbench's script (and table mode)."""
    check_table_replaceable(conn, schema, table)
    create_vector_table(conn, schema, table, vectors.shape[1])
    load_vectors(target.dsn, schema, table, vectors, streams=1)
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(sql.Identifier(schema, table))
    )
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
    return LoadTables(
        items="", queries=sql.Identifier(schema, table).as_string(conn), n_queries=vectors.shape[0]
    )


class LoadTester:
    """Runs the [load] matrix for one index build."""

    def __init__(
        self,
        spec: ExperimentSpec,
        load: LoadSpec,
        target: Target,
        *,
        items: str,
        queries: str,
        query_vectors: np.ndarray,
        metric: Metric,
        vector_oid: int,
        reporter: Reporter,
        operation_factory: Callable[[], Operation] | None = None,
        workload: str | None = None,
    ) -> None:
        self.operation_factory = operation_factory  # agent mixes; None: the kNN query
        self._points_run = 0  # windows measured so far (seeds each window's query order)
        self._sequence = 0  # merged repeats recorded so far (Sample.sequence)
        self.workload = workload
        self.spec = spec
        self.load = load
        self.target = target
        self.items = items
        self.queries = queries
        self.query_vectors = query_vectors
        self.metric = metric
        self.vector_oid = vector_oid
        self.reporter = reporter
        self.server_cpu = (
            ServerCpuProbe(target.postmaster_pid) if target.postmaster_pid is not None else None
        )

    def settings(self) -> dict[str, str]:
        out = {k: str(v) for k, v in self.load.query_params.items()}
        out["statement_timeout"] = str(self.spec.query.statement_timeout_ms)
        return out

    def operation(self) -> Operation:
        if self.operation_factory is not None:
            return self.operation_factory()
        table_mode = self.load.query_source == "table"
        return knn_operation(
            items=self.items,
            queries=self.queries if table_mode else None,
            operator=self.metric.operator,
            k=self.spec.query.k,
            vectors=self.query_vectors,
            vector_oid=self.vector_oid,
            settings=self.settings(),
        )

    def plan(self) -> list[tuple[str, PoolingSpec, dict[str, Any], int]]:
        points = []
        for engine in self.load.engines:
            for pooling in self.load.pooling:
                if engine == "pgbench" and (
                    pooling.strategy != "direct" or self.operation_factory is not None
                ):
                    continue  # pgbench: the kNN reference, for dedicated connections only
                for variant in pooling.variants():
                    for clients in self.load.clients:
                        points.append((engine, pooling, variant, clients))
        return points

    def run(self, index_label: str, on_point: Callable[[LoadPoint], None]) -> list[LoadPoint]:
        """Measure every point of the plan, the points of one client count interleaved.

        At each client count the arms (engine x strategy x pool variant) alternate in
        short windows, in a random order drawn per round (RMIT): a busy neighbour then
        hits every arm alike, and a ratio between two arms (fidelity, strategy A vs B) is
        computed from paired windows. Each arm's windows add up to ``duration_seconds``.
        ``repeats`` run the whole schedule again. ``on_point`` gets each point after every
        client count of every repeat; a point keeps its identity (updated in place) so
        callers can append it once and re-save.
        """
        plan = self._available(self.plan())
        repeats = self.spec.repeats
        rounds, _ = self.windows()
        measured: list[list[_Measured]] = [[] for _ in plan]
        window_qps: list[list[float]] = [[] for _ in plan]
        window_seq: list[list[int]] = [[] for _ in plan]
        # one operation per point, reused by its windows: building the kNN one encodes
        # every query vector (stateless between runs, so sharing it is safe)
        ops = [self.operation() if engine != "pgbench" else None for engine, *_ in plan]
        points: list[LoadPoint | None] = [None] * len(plan)
        groups: dict[int, list[int]] = {}
        for i, (_, _, _, clients) in enumerate(plan):
            groups.setdefault(clients, []).append(i)
        total = len(plan) * repeats * rounds
        with self.reporter.task(f"load test {index_label}", total=total) as task:
            for repeat in range(repeats):
                for members in groups.values():
                    windows, lost = self._rounds(plan, ops, members, repeat, task)
                    for i in members:
                        window_qps[i].extend(_window_qps(windows[i]))
                        window_seq[i].extend(w.sequence for w in windows[i])
                    for i in members:
                        if not windows[i]:
                            continue
                        one = _merge_windows(windows[i])
                        one.sample = sample_of(one.outcome, repeat=repeat, sequence=self._sequence)
                        self._sequence += 1
                        measured[i].append(one)
                        engine, pooling, variant, n = plan[i]
                        point = self._record(
                            index_label, engine, pooling.strategy, variant, n, measured[i]
                        )
                        point.window_qps = list(window_qps[i])
                        point.window_sequence = list(window_seq[i])
                        existing = points[i]
                        if existing is None:
                            points[i] = point
                        else:
                            update_in_place(existing, point)
                    done = [p for p in (points[i] for i in members) if p is not None]
                    _set_fidelity(done, self.load)
                    for point in done:
                        on_point(point)
                    if lost:
                        raise RunFailed(
                            f"{lost}: the server became unreachable during the load "
                            "test; partial results were written"
                        )
        return [p for p in points if p is not None]

    def _rounds(
        self,
        plan: list[tuple[str, PoolingSpec, dict[str, Any], int]],
        ops: list[Operation | None],
        members: list[int],
        repeat: int,
        task: Task,
    ) -> tuple[dict[int, list[_Measured]], str | None]:
        """One client count's arms, interleaved: per round each arm once, in random order.

        Returns each arm's windows and, when the server became unreachable, the label of
        the window that found out (the rounds stop there).
        """
        rounds, window = self.windows()
        clients = plan[members[0]][3]
        seed = self.spec.seed * 7919 + self.spec.repeats * repeat + clients
        windows: dict[int, list[_Measured]] = {i: [] for i in members}
        for r, order in enumerate(
            schedule(members, rounds, seed=seed, pairs=_pairs(plan, members), mirrored=True)
        ):
            for i in order:
                engine, pooling, variant, n = plan[i]
                label = _point_label(engine, pooling.strategy, variant, n)
                where = f"round {r + 1}/{rounds}"
                if self.spec.repeats > 1:
                    where += f", repeat {repeat + 1}/{self.spec.repeats}"
                task.update(description=f"load {label} ({where})")
                warmup = self.load.warmup_seconds
                if r > 0:  # the arm ran a moment ago: caches are warm
                    warmup = min(warmup, LATER_WINDOW_WARMUP_S)
                one = self._measure(
                    engine, ops[i], pooling, variant, n, task, label, warmup, window
                )
                windows[i].append(one)
                task.advance()
                aborted = one.outcome.aborted
                if aborted and "server unreachable" in aborted:
                    return windows, label
        return windows, None

    def windows(self) -> tuple[int, float]:
        """(rounds, seconds per window): each arm's windows add up to duration_seconds."""
        rounds = rounds_for(self.load.duration_seconds, self.load.window_seconds)
        return rounds, self.load.duration_seconds / rounds

    def _available(
        self, plan: list[tuple[str, PoolingSpec, dict[str, Any], int]]
    ) -> list[tuple[str, PoolingSpec, dict[str, Any], int]]:
        """The plan without strategies this machine cannot run (said once, not silently)."""
        if find_pgbouncer() is not None or all(p.strategy != "pgbouncer" for _, p, _, _ in plan):
            return plan
        self.reporter.log(
            "[yellow]pgbouncer strategy skipped: no pgbouncer binary found "
            "(Debian/Ubuntu: apt-get install pgbouncer)[/yellow]"
        )
        return [item for item in plan if item[1].strategy != "pgbouncer"]

    # ------------------------------------------------------------------ one point

    def _measure(
        self,
        engine: str,
        op: Operation | None,
        pooling: PoolingSpec,
        variant: dict[str, Any],
        clients: int,
        task: Task,
        label: str,
        warmup_s: float,
        duration_s: float,
    ) -> _Measured:
        shape = LoadShape(
            clients=clients,
            mode=self.load.mode,
            warmup_s=warmup_s,
            duration_s=duration_s,
            think_time_ms=self.load.think_time_ms,
            rate=self.load.rate,
            arrival=self.load.arrival,
            max_inflight=self.load.max_inflight,
            seed=self.spec.seed,
            first_seq=self._points_run * 1_000_000_000,
        )
        self._points_run += 1
        notes: list[str] = []
        pool_stats: dict[str, int] | None = None

        def tick(elapsed: int, ops: int) -> None:
            task.update(description=f"load {label}: {elapsed}s, {ops:,} ops")

        if engine == "pgbench":
            outcome = self._pgbench(clients, notes, warmup_s, duration_s)
        else:
            assert op is not None  # built for every python-engine point
            with open_provider(self.target.dsn, op, pooling, variant, clients, notes) as (
                provider,
                bouncer,
            ):
                stats_before = bouncer_stats(bouncer)
                try:
                    if self.load.processes > 1:  # clients over worker processes
                        outcome = run_load_processes(
                            op,
                            connect_like(provider),
                            shape,
                            processes=self.load.processes,
                            probe_dsn=self.target.dsn,
                            server_cpu=self.server_cpu,
                            on_second=tick,
                        ).merged
                    else:
                        outcome = run_load(
                            op,
                            provider,
                            shape,
                            probe_dsn=self.target.dsn,
                            server_cpu=self.server_cpu,
                            on_second=tick,
                        )
                except ServerUnreachable as exc:
                    outcome = _failed_outcome(shape, f"server unreachable: {exc}")
                pool_stats = provider.stats() or bouncer_delta(stats_before, bouncer)
        return _Measured(
            outcome=outcome, pool_stats=pool_stats, notes=notes, sequence=self._points_run - 1
        )

    def _pgbench(
        self, clients: int, notes: list[str], warmup_s: float, duration_s: float
    ) -> EngineOutcome:
        binary = find_pgbench(self.target.bin_dir)
        if binary is None:
            raise RunFailed(
                "the pgbench engine was requested but no pgbench binary was found; "
                "install the PostgreSQL client tools or remove it from [load] engines"
            )
        script = knn_script(
            items_table=self.items,
            queries_table=self.queries,
            n_queries=len(self.query_vectors),
            operator=self.metric.operator,
            k=self.spec.query.k,
        )
        settings = {k: str(v) for k, v in self.load.query_params.items()}
        with tempfile.TemporaryDirectory(prefix="pgvbench-pgbench-") as workdir:
            run = run_pgbench(
                pgbench=binary,
                conninfo=self.target.dsn,
                script=script,
                clients=clients,
                threads=None,
                warmup_s=warmup_s,
                duration_s=duration_s,
                rate=self.load.rate if self.load.mode == "open" else None,
                session_settings=settings,
                statement_timeout_ms=self.spec.query.statement_timeout_ms,
                workdir=Path(workdir),
                server_cpu=self.server_cpu,  # host load: the foreign share needs it
            )
        if run.tps_reported is not None:
            notes.append(point_notes.pgbench_tps(run.tps_reported))
        return run.outcome

    def _record(
        self,
        index_label: str,
        engine: str,
        strategy: str,
        variant: dict[str, Any],
        clients: int,
        measured: list[_Measured],
    ) -> LoadPoint:
        """The point over all repeats so far: merged histograms, summed counts, samples."""
        outcome = merge_outcomes([m.outcome for m in measured])
        notes = list(dict.fromkeys(n for m in measured for n in m.notes))  # once each
        pool_stats = sum_pool_stats([m.pool_stats for m in measured])
        valid = outcome.aborted is None
        suspect = False
        if outcome.aborted:
            notes.append(point_notes.stopped_early(outcome.aborted, sweep=False))
        if outcome.errors:
            notes.append(point_notes.operations_failed(outcome.errors, outcome.error_messages))
        if (
            engine == "python"
            and outcome.client_cpu_cores is not None
            and outcome.client_cpu_cores >= CLIENT_SATURATED_CORES * self.load.processes
        ):
            suspect = True
            notes.append(
                point_notes.client_saturated(outcome.client_cpu_cores, python_engine_cap=True)
            )
        if self.load.mode == "open":
            achieved = outcome.qps
            if achieved < 0.95 * self.load.rate:
                notes.append(point_notes.rate_not_reached(achieved, self.load.rate))
        return LoadPoint(
            engine=engine,
            index=index_label,
            query_params=dict(self.load.query_params),
            strategy=strategy,
            pool=variant,
            clients=clients,
            mode=self.load.mode,
            target_rate=self.load.rate if self.load.mode == "open" else None,
            arrival=self.load.arrival if self.load.mode == "open" else None,
            think_time_ms=self.load.think_time_ms,
            qps=round(outcome.qps, 2),
            operations=outcome.operations,
            errors=outcome.errors,
            dropped=outcome.dropped,
            duration_s=round(outcome.duration_s, 4),
            warmup_s=outcome.warmup_s,
            latency_ms=outcome.latency.summary(),
            service_ms=outcome.service.summary() if outcome.service else None,
            queue_wait_ms=outcome.queue_wait.summary() if outcome.queue_wait else None,
            schedule_lag_ms=outcome.schedule_lag_ms,
            error_messages=dict(outcome.error_messages.most_common(10)),
            pool_stats=pool_stats,
            client_cpu_cores=_round(outcome.client_cpu_cores),
            server_cpu_cores=_round(outcome.server_cpu_cores),
            timeseries=outcome.timeseries,
            valid=valid,
            suspect=suspect,
            notes=notes,
            histogram=outcome.latency.encode() if outcome.latency.count else None,
            operations_detail=operation_details(outcome),
            workload=self.workload,
            samples=[m.sample for m in measured if m.sample is not None],
        )


def _failed_outcome(shape: LoadShape, reason: str) -> EngineOutcome:
    from .engine.histogram import LatencyHistogram

    return EngineOutcome(
        latency=LatencyHistogram(),
        operations=0,
        errors=0,
        duration_s=0.0,
        warmup_s=shape.warmup_s,
        aborted=reason,
    )


def _set_fidelity(points: list[LoadPoint], load: LoadSpec) -> None:
    """python QPS / pgbench QPS for the same clients (and SQL when query_source = table),
    from the paired windows of one client count's rounds."""
    reference = {
        (p.clients, p.mode, p.target_rate): p
        for p in points
        if p.engine == "pgbench" and p.valid and p.qps > 0
    }
    for point in points:
        if point.engine != "python" or point.strategy != "direct":
            continue
        ref = reference.get((point.clients, point.mode, point.target_rate))
        if ref is None:
            continue
        try:
            paired = paired_ratio(ref.window_qps, point.window_qps)
        except ValueError:  # no round with both windows measured
            continue
        point.fidelity = round(paired.ratio, 3)
        point.fidelity_interval = paired.to_dict()
        if load.query_source != "table":
            point.notes.append(point_notes.fidelity_different_sql())
        elif point.fidelity < FIDELITY_SUSPECT:
            point.suspect = True
            point.notes.append(
                point_notes.fidelity_low(point.fidelity, FIDELITY_SUSPECT, paired.spread)
            )


def _pairs(
    plan: list[tuple[str, PoolingSpec, dict[str, Any], int]], members: list[int]
) -> list[tuple[int, int]]:
    """The engines compared as a ratio (fidelity): python and pgbench on dedicated
    connections at one client count; they run back to back in every round."""
    python = [i for i in members if plan[i][0] == "python" and plan[i][1].strategy == "direct"]
    pgbench = [i for i in members if plan[i][0] == "pgbench"]
    return [(python[0], pgbench[0])] if len(python) == 1 and len(pgbench) == 1 else []


def _window_qps(windows: list[_Measured]) -> list[float]:
    """Each window's QPS; 0 for a window that stopped early (it pairs with nothing)."""
    return [round(w.outcome.qps, 2) if w.outcome.aborted is None else 0.0 for w in windows]


def _merge_windows(windows: list[_Measured]) -> _Measured:
    """One arm's windows of one repeat as one measurement (histograms merged)."""
    return _Measured(
        outcome=merge_outcomes([w.outcome for w in windows]),
        pool_stats=sum_pool_stats([w.pool_stats for w in windows]),
        notes=list(dict.fromkeys(n for w in windows for n in w.notes)),
    )


def _point_label(engine: str, strategy: str, variant: dict[str, Any], clients: int) -> str:
    params = ",".join(
        f"{k}={v}" for k, v in variant.items() if k in ("max_size", "pool_mode", "pool_size")
    )
    return f"{engine}/{strategy}{'(' + params + ')' if params else ''} x{clients}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
