"""The scale sweep: at each data size, its own table loaded with the first ``rows`` rows,
exact ground truth over them, each index kind built and measured through the tuner's
:class:`~pgvbench.studies.tune.measure.Candidate` (recall at the fixed knob, the
bisection to the smallest knob meeting the recall bound, a timed window at each), and,
while the first kind's index exists, the backup and restore timings (backup.py).

Levels run smallest first and the record is saved after each, so an interrupted sweep
keeps every level it finished. Every table and index is pgvbench's (marked) and dropped
when its level is done, Ctrl-C included. Figures and reason codes only, no prose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import psutil
import psycopg

from ...datasets.groundtruth import GroundTruth, exact_knn
from ...db import schema as db_schema
from ...db.load import load_vectors
from ...errors import PgvbenchError, RunFailed
from ...server.connection import connect
from ..base import StudyContext
from ..build.measure import notice_tuples
from ..tune.measure import Bench, Candidate, TuneTables, assess
from ..tune.records import Config
from ..tune.space import EF_SEARCH_LADDER, probes_ladder
from ..tune.spec import TuneSpec
from .backup import BackupTarget, time_backup
from .cpu import CpuWindow
from .records import Backup, CapacityRecord, IndexLevel, Level, ServerFacts
from .spec import CapacitySpec
from .timing import Arm, has_prewarm, interleaved_windows, with_windows

MIN_LISTS = 10
ASSESS_WARMUP_S = 0.1
ASSESS_WINDOW_S = 0.3
# server settings recorded with the sweep: the memory cliff and the answers use them
SETTINGS = (
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "max_connections",
)
SIZES = ("shared_buffers", "effective_cache_size", "maintenance_work_mem")

Step = Callable[[str], None]


def run_capacity(
    ctx: StudyContext, spec: CapacitySpec, *, spec_data: Mapping[str, Any]
) -> CapacityRecord:
    """Every level of ``spec``, smallest first, then the timed windows of all of them
    interleaved; the record (partial ones saved on the way). ``spec_data``: the spec as
    results.json records it."""
    vectors = ctx.vectors
    if vectors is None:
        raise RunFailed("capacity: it needs a vector experiment's loaded dataset")
    dataset = vectors.prepared.dataset
    if dataset.n < spec.largest:
        raise RunFailed(
            f"capacity: the dataset has {dataset.n:,} rows, fewer than the largest level "
            f"{spec.largest:,}"
        )
    started = time.perf_counter()
    facts = server_facts(ctx)
    skipped = "external" if spec.backup_levels and ctx.server is None else None
    levels: list[Level] = []
    prewarm = has_prewarm(ctx.target.dsn)

    def record(*, complete: bool) -> CapacityRecord:
        return CapacityRecord(
            spec=dict(spec_data),
            dim=dataset.dim,
            metric=str(dataset.metric),
            k=ctx.spec.query.k,
            recall_queries=int(vectors.prepared.sets.recall.queries.shape[0]),
            levels=tuple(levels),
            server=facts,
            elapsed_s=time.perf_counter() - started,
            complete=complete,
            backup_skipped=skipped,
            prewarmed=prewarm,
        )

    total = len(spec.levels)
    kept: list[Arm] = []
    # every level's table and index stay until the interleaved windows are done; the
    # stack drops them in reverse order (indexes, then tables), Ctrl-C included
    with contextlib.ExitStack() as stack:
        with ctx.reporter.task(f"capacity: {total} data sizes", total=total) as task:
            for number, rows in enumerate(spec.levels, start=1):

                def step(text: str, rows: int = rows, number: int = number) -> None:
                    task.update(description=f"capacity {number}/{total} ({rows:,} rows): {text}")

                level, arms = measure_level(ctx, spec, rows, step, stack)
                levels.append(level)
                kept += arms
                if ctx.save_partial is not None:
                    ctx.save_partial(record(complete=False))
                task.advance()
        timed = interleaved_windows(ctx, spec, kept, prewarm=prewarm)
    levels[:] = [with_windows(level, timed) for level in levels]
    return record(complete=True)


def measure_level(
    ctx: StudyContext, spec: CapacitySpec, rows: int, step: Step, stack: contextlib.ExitStack
) -> tuple[Level, list[Arm]]:
    """One data size on its own table: load, ground truth, each kind built and its knob
    found (the timed windows come later, interleaved); the table and indexes are left to
    ``stack``."""
    assert ctx.vectors is not None
    prepared = ctx.vectors.prepared
    dataset = prepared.dataset
    schema, dsn = ctx.spec.schema, ctx.target.dsn
    table = level_table(ctx.spec.name, rows)
    base = dataset.base[:rows]
    stack.callback(_drop_quietly, dsn, schema, table)  # registered first: dropped last
    with connect(dsn) as conn:
        db_schema.create_vector_table(conn, schema, table, dataset.dim)
    step("load (binary COPY)")
    load_seconds = load_vectors(dsn, schema, table, base)
    step("exact ground truth")
    truth = level_truth(base, prepared.sets.recall.queries, ctx.spec.query.k, dataset.metric)
    bench = _bench(ctx, spec, table=table, rows=rows, truth=truth)
    tables = stack.enter_context(TuneTables(dsn, schema, table, f"{ctx.spec.name}_c", dataset.dim))
    indexes: list[IndexLevel] = []
    arms: list[Arm] = []
    backup: Backup | None = None
    for number, kind in enumerate(spec.kinds):
        with_backup = number == 0 and rows in spec.backup_levels and ctx.server is not None
        # each kind on its own copy of the rows: with two vector indexes on one table the
        # planner would pick one for both
        measured, candidate, timed = measure_index(
            ctx, spec, bench, tables, kind, step, backup=with_backup, copy=number
        )
        indexes.append(measured)
        backup = backup or timed
        if candidate is not None:
            arms.append(Arm(rows=rows, kind=kind, which="fixed", value=measured.fixed_knob,
                            candidate=candidate))  # fmt: skip
            if measured.knob is not None:
                arms.append(Arm(rows=rows, kind=kind, which="knob", value=measured.knob,
                                candidate=candidate))  # fmt: skip
    heap_bytes = tables.table_bytes(table)  # after the VACUUM the first build ran
    level = Level(
        rows=rows,
        load_seconds=round(load_seconds, 4),
        heap_bytes=heap_bytes,
        truth_seconds=round(truth.seconds, 4),
        indexes=tuple(indexes),
        backup=backup,
    )
    return level, arms


def measure_index(
    ctx: StudyContext,
    spec: CapacitySpec,
    bench: Bench,
    tables: TuneTables,
    kind: str,
    step: Step,
    *,
    backup: bool,
    copy: int = 0,
) -> tuple[IndexLevel, Candidate | None, Backup | None]:
    """Build one kind, measure recall at the fixed knob and bisect to the smallest knob
    meeting the recall bound; with ``backup``, time the backup and restore while its index
    exists. The built candidate is kept (its index stays) for the interleaved windows."""
    config = index_config(spec, kind, bench.rows)
    ladder = knob_ladder(spec, config, bench.k)
    fixed = spec.ef_search if kind == "hnsw" else min(spec.probes, int(config.params["lists"]))
    started = time.perf_counter()
    timed: Backup | None = None
    cpu = CpuWindow(ctx.target.postmaster_pid).start()
    with Candidate(bench, tables, config, on_step=step, copy=copy) as candidate:  # builds
        build_cpu = cpu.stop()
        built = candidate.built
        base = IndexLevel(
            config=config,
            build_seconds=built.seconds if built.exists else None,
            index_bytes=built.index_bytes,
            build_cpu_seconds=build_cpu.server_cpu_s,
            build_foreign_cores=build_cpu.foreign_cores,
            phases=built.phases,
            notices=built.notices,
            fits_after_tuples=notice_tuples(built.notices),
            fixed_knob=fixed,
        )
        if not built.exists:
            failed = dataclasses.replace(
                base,
                reason="build_failed",
                error=built.error,
                seconds=time.perf_counter() - started,
            )
            return failed, None, None
        fixed_recall = candidate.recall_record(fixed)
        # assess() times one (short) window at the knob it finds: the comparable windows
        # of every level are the interleaved ones, so that one is not kept
        evaluation = assess(candidate, ladder, started=started)
        if backup:
            assert ctx.server is not None
            step("backup and restore")
            timed = time_backup(
                BackupTarget(
                    server=ctx.server,
                    dsn=bench.dsn,
                    schema=bench.schema,
                    table=built.table,
                    rows=bench.rows,
                    jobs=spec.jobs,
                    settings=dict(config.build_settings),
                    compression=spec.dump_compression,
                    postmaster_pid=ctx.target.postmaster_pid,
                ),
                on_step=step,
            )
        candidate.keep()
    measured = dataclasses.replace(
        base,
        fixed_recall=fixed_recall,
        knob=evaluation.knob_value,
        recall=evaluation.recall,
        probes=evaluation.probes,
        reason=evaluation.reason,
        seconds=round(time.perf_counter() - started, 3),
    )
    return measured, candidate, timed


# --------------------------------------------------------------------------- pieces


def level_table(name: str, rows: int) -> str:
    """The table of one level in the experiment's schema (names are at most 40
    characters, levels at most 10 digits: it fits PostgreSQL's 63 bytes)."""
    return f"{name}_c{rows}"


def level_truth(base: Any, queries: Any, k: int, metric: Any) -> GroundTruth:
    """Exact ground truth of the recall queries over one level's rows (faiss, re-ranked)."""
    started = time.perf_counter()
    ids, distances = exact_knn(base, queries, k, metric)
    return GroundTruth(
        ids=ids,
        distances=distances,
        method=f"exact (faiss) over the first {base.shape[0]:,} rows",
        seconds=time.perf_counter() - started,
        cached=False,
    )


def index_config(spec: CapacitySpec, kind: str, rows: int) -> Config:
    """The one configuration of ``kind`` measured at every level (IVFFlat's lists follow
    rows / 1000 unless the spec fixes them, as pgvector's guidance does)."""
    settings: dict[str, str] = {}
    if spec.maintenance_work_mem is not None:
        settings["maintenance_work_mem"] = spec.maintenance_work_mem
    if spec.max_parallel_maintenance_workers is not None:
        settings["max_parallel_maintenance_workers"] = str(spec.max_parallel_maintenance_workers)
    if kind == "hnsw":
        params = {"m": spec.m, "ef_construction": spec.ef_construction}
    else:
        params = {"lists": spec.lists or max(MIN_LISTS, rows // 1000)}
    return Config(kind=kind, params=params, build_settings=settings)


def knob_ladder(spec: CapacitySpec, config: Config, k: int) -> tuple[int, ...]:
    """The values the bisection may test (the tuner's ladders, capped by the spec)."""
    if config.kind == "hnsw":
        top = spec.max_ef_search
        values = {v for v in EF_SEARCH_LADDER if k <= v <= top} | {max(top, 1)}
        return tuple(sorted(values))
    lists = int(config.params["lists"])
    return probes_ladder(min(lists, spec.max_probes or lists))


def server_facts(ctx: StudyContext) -> ServerFacts:
    """The server's memory settings (bytes too), and RAM and cores when it is pgvbench's
    embedded server on this host."""
    settings: dict[str, str] = {}
    sizes: dict[str, int] = {}
    with connect(ctx.target.dsn) as conn:
        for name in SETTINGS:
            row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
            if row is None or row[0] is None:
                continue
            settings[name] = str(row[0])
            if name in SIZES:
                size = conn.execute("SELECT pg_size_bytes(%s)", (str(row[0]),)).fetchone()
                if size is not None and size[0] is not None:
                    sizes[name] = int(size[0])
    embedded = ctx.server is not None
    ram = int(psutil.virtual_memory().total) if embedded else None
    cores = (os.cpu_count() or None) if embedded else None
    # [server] memory_limit / cpus: the embedded server runs as that smaller machine
    limits = getattr(ctx.spec.server, "limits", None) if embedded else None
    memory_limit = getattr(limits, "memory_bytes", None)
    cpus = tuple(getattr(limits, "cpus", ()) or ())
    return ServerFacts(
        external=not embedded,
        ram_bytes=int(memory_limit) if memory_limit else ram,
        cores=len(cpus) if cpus else cores,
        settings=settings,
        setting_bytes=sizes,
        limited=bool(memory_limit or cpus),
    )


def _bench(
    ctx: StudyContext, spec: CapacitySpec, *, table: str, rows: int, truth: GroundTruth
) -> Bench:
    assert ctx.vectors is not None
    prepared = ctx.vectors.prepared
    dataset = prepared.dataset
    query = ctx.spec.query
    return Bench(
        dsn=ctx.target.dsn,
        schema=ctx.spec.schema,
        table=table,
        prefix=f"{ctx.spec.name}_c",
        rows=rows,
        dim=dataset.dim,
        metric=dataset.metric,
        k=query.k,
        base=dataset.base[:rows],
        recall_queries=prepared.sets.recall.queries,
        truth=truth,
        load_queries=prepared.sets.load_stream,
        rule=query.recall_rule,
        # the tuner's target, as far as the capacity study has one: the recall bound and
        # the concurrency its windows run at (no latency bound, no budgets)
        target=TuneSpec(
            recall=spec.recall,
            confidence=spec.confidence,
            clients=spec.clients,
            max_ef_search=spec.max_ef_search,
        ),
        # assess() times one window at the knob it finds; the kept windows are the
        # interleaved ones (timing.py), so that one is short
        warmup_s=ASSESS_WARMUP_S,
        measure_s=ASSESS_WINDOW_S,
        statement_timeout_ms=query.statement_timeout_ms,
        postmaster_pid=ctx.target.postmaster_pid,
    )


def _drop_quietly(dsn: str, schema: str, table: str) -> None:
    """Drop a level's table on a fresh connection (the last may be broken: Ctrl-C, server
    gone); cleanup never hides the error that ended the level."""
    try:
        with connect(dsn) as conn:
            db_schema.drop_owned_table(conn, schema, table)
    except (psycopg.Error, PgvbenchError):
        pass
