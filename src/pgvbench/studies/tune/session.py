"""One tuning session from a study context to its record: the space resolved from the
data, the benches (full size, and the subsample's with its own exact ground truth), the
search, the winner rebuilt and measured against the runner-up, the grid estimate.
Returns the typed record; never writes prose (advice.py words it)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...datasets.groundtruth import GroundTruth, exact_knn
from ...plan.models import POINT_OVERHEAD_S, hnsw_build_seconds, ivfflat_build_seconds
from ...server.connection import connect
from ..base import StudyContext
from .confirm import confirm
from .filtered import filter_target, split_filter
from .measure import Bench, TuneTables
from .records import Config, Confirmation, Trial, TuneRecord
from .search import Searched, Session, closest, fingerprint, ranked, search
from .space import Space, grid_configs, grid_points, resolve_space
from .spec import TuneSpec

STORAGE_NAME = "tune.db"
BUDGET_KEYS = ("trials", "time_budget_s", "startup_trials", "confirm_top")
CONFIRM_ROUNDS = 8
CONFIRM_WINDOW_S = 1.0
SERVER_SETTINGS = (
    "shared_buffers",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "work_mem",
    "effective_cache_size",
    "max_connections",
)


def storage_path(out_dir: Path | None) -> Path:
    """Where a session's Optuna storage lives (next to results.json)."""
    return (out_dir or Path.cwd()) / STORAGE_NAME


def run_session(ctx: StudyContext, spec: TuneSpec) -> TuneRecord:
    """Search, confirm, and the record of it all."""
    vectors = ctx.vectors
    assert vectors is not None, "[tune] runs on vector experiments"
    prepared = vectors.prepared
    dataset = prepared.dataset
    k = ctx.spec.query.k
    space = resolve_space(spec, rows=dataset.n, dim=dataset.dim, k=k)
    seed = spec.seed if spec.seed is not None else ctx.spec.seed
    full = _bench(ctx, spec, rows=dataset.n, truth=prepared.truth)
    sample = None
    if spec.subsample is not None and spec.subsample < dataset.n:
        sample = _bench(ctx, spec, rows=spec.subsample, truth=_sample_truth(ctx, spec.subsample))
    storage = storage_path(ctx.out_dir)
    digest = fingerprint(
        {
            # every 1,000th row's bytes: another dataset of the same shape differs there
            "data": hashlib.sha256(
                dataset.base[:: max(1, dataset.n // 1000)].tobytes()
            ).hexdigest(),
            "rows": dataset.n,
            "dim": dataset.dim,
            "metric": str(dataset.metric),
            "k": k,
            "space": space.to_dict(),
            # the budgets may change on --resume (more trials, more time); the target may not
            "target": {k: v for k, v in _target_dict(spec).items() if k not in BUDGET_KEYS},
        }
    )
    with (
        ctx.reporter.task(f"tune: {spec.trials} builds over {len(grid_configs(space))}") as task,
        TuneTables(
            ctx.target.dsn, ctx.spec.schema, vectors.table, f"{ctx.spec.name}_t", dataset.dim
        ) as tables,
    ):

        def step(text: str) -> None:
            task.update(description=f"tune: {text}")

        session = Session(
            spec=spec,
            space=space,
            full=full,
            sample=sample,
            tables=tables,
            storage=storage,
            resume=spec.resume,
            seed=seed,
            fingerprint=digest,
            on_step=step,
        )
        found = search(session)
        started = time.perf_counter()
        at_full = [t for t in found.trials if sample is None or t.phase == "confirm"]
        best = ranked(spec, at_full)
        winner = best[0] if best else None
        runner = best[1] if len(best) > 1 else None
        confirmation: Confirmation | None = None
        notes: list[str] = []
        if winner is not None:
            step(f"confirm {winner.evaluation.config.label} (rebuilt) against the runner-up")
            confirmation = _confirm(session, winner, runner, step)
            if _runner_up_faster(spec, confirmation) and runner is not None:
                winner, runner = runner, winner
                notes.append("swapped_on_confirmation")
        elapsed = found.elapsed_s + time.perf_counter() - started
    return TuneRecord(
        target=_target_dict(spec),
        space=space.to_dict(),
        k=k,
        rows=dataset.n,
        dim=dataset.dim,
        metric=str(dataset.metric),
        trials=found.trials,
        winner=winner.number if winner else None,
        runner_up=runner.number if runner else None,
        confirmation=confirmation,
        elapsed_s=elapsed,
        grid_builds=len(grid_configs(space)),
        grid_points=grid_points(space),
        grid_estimate_s=grid_estimate(space, at_full or list(found.trials), full),
        external=ctx.server is None,
        server_settings=_server_settings(ctx.target.dsn),
        storage_path=str(storage),
        sampler=found.sampler,
        stop_reason=found.stop_reason,
        resumed_trials=found.resumed_trials,
        best_unmet=None if winner else closest(spec, found.trials),
        notes=tuple(notes + _search_notes(found)),
        filter=full.filter.summary() if full.filter is not None else None,
    )


def grid_estimate(space: Space, trials: Sequence[Trial], bench: Bench) -> float:
    """Estimated wall time of the full grid over ``space``: every build (measured ones as
    measured, others from the timing model scaled by what this session measured) and, at
    every knob value of its ladder, one recall pass and one timed window."""
    measured: dict[str, float] = {}
    scale: dict[str, list[float]] = {"hnsw": [], "ivfflat": []}
    probe_s: list[float] = []
    for t in trials:
        ev = t.evaluation
        if ev.build_seconds is None or ev.rows != bench.rows:
            continue
        measured[ev.config.key] = ev.build_seconds
        model = _model_build(ev.config, bench)
        if model > 0:
            scale[ev.config.kind].append(ev.build_seconds / model)
        probe_s.extend(p.seconds for p in ev.probes if p.seconds > 0)
    factor = {kind: sorted(v)[len(v) // 2] if v else 1.0 for kind, v in scale.items()}
    per_probe = sum(probe_s) / len(probe_s) if probe_s else 0.5
    per_point = per_probe + bench.warmup_s + bench.measure_s + POINT_OVERHEAD_S
    total = 0.0
    for config in grid_configs(space):
        build = measured.get(config.key)
        if build is None:
            build = _model_build(config, bench) * factor[config.kind]
        total += build + len(space.knob_ladder(config)) * per_point
    return total


# --------------------------------------------------------------------------- internals


def _bench(ctx: StudyContext, spec: TuneSpec, *, rows: int, truth: GroundTruth) -> Bench:
    vectors = ctx.vectors
    assert vectors is not None
    prepared = vectors.prepared
    dataset = prepared.dataset
    query = ctx.spec.query
    target = None
    if spec.filter is not None:  # the filtered truth replaces the plain one
        predicate, attribute = split_filter(spec.filter)
        target = filter_target(
            dataset,
            prepared.sets.recall.queries,
            prepared.sets.load_stream,
            k=query.k,
            metric=dataset.metric,
            predicate=predicate,
            attribute=attribute,
            rows=rows,
            seed=spec.seed if spec.seed is not None else ctx.spec.seed,
            where=str(ctx.spec.source_path or "<spec>"),
        )
        truth = target.truth
    return Bench(
        filter=target,
        dsn=ctx.target.dsn,
        schema=ctx.spec.schema,
        table=vectors.table,
        prefix=f"{ctx.spec.name}_t",
        rows=rows,
        dim=dataset.dim,
        metric=dataset.metric,
        k=query.k,
        base=dataset.base[:rows],
        recall_queries=prepared.sets.recall.queries,
        truth=truth,
        load_queries=prepared.sets.load_stream,
        rule=query.recall_rule,
        target=spec,
        warmup_s=spec.warmup_seconds if spec.warmup_seconds is not None else query.warmup_seconds,
        measure_s=(
            spec.measure_seconds if spec.measure_seconds is not None else query.measure_seconds
        ),
        statement_timeout_ms=query.statement_timeout_ms,
    )


def _sample_truth(ctx: StudyContext, rows: int) -> GroundTruth:
    """Exact ground truth of the recall queries over the first ``rows`` rows (the ids of
    the items table are row indexes, so the sample is ``id < rows``)."""
    assert ctx.vectors is not None
    prepared = ctx.vectors.prepared
    started = time.perf_counter()
    ids, distances = exact_knn(
        prepared.dataset.base[:rows],
        prepared.sets.recall.queries,
        ctx.spec.query.k,
        prepared.dataset.metric,
    )
    return GroundTruth(
        ids=ids,
        distances=distances,
        method=f"exact (faiss) over the {rows:,}-row subsample",
        seconds=time.perf_counter() - started,
        cached=False,
    )


def _confirm(
    session: Session, winner: Trial, runner: Trial | None, step: Callable[[str], None]
) -> Confirmation:
    w = winner.evaluation
    assert w.knob_value is not None
    r = runner.evaluation if runner is not None else None
    return confirm(
        session.full,
        session.tables,
        w.config,
        w.knob_value,
        r.config if r is not None else None,
        r.knob_value if r is not None else None,
        session.space.knob_ladder,
        rounds=CONFIRM_ROUNDS,
        # short windows pair better (a machine's speed drifts within seconds); never longer
        # than the spec's own window
        window_s=min(CONFIRM_WINDOW_S, session.full.measure_s),
        seed=session.seed,
        on_step=step,
        winner_scan=w.iterative_scan,
        runner_scan=r.iterative_scan if r is not None else None,
        # the search's builds give a build spread only when measured on the full table
        winner_probes=w.probes if w.rows == session.full.rows else (),
        runner_probes=r.probes if r is not None and r.rows == session.full.rows else (),
    )


def _runner_up_faster(spec: TuneSpec, confirmation: Confirmation) -> bool:
    """Interleaved, the runner-up beat the winner beyond the noise on the objective (the
    single-window search ranking was build or timing luck)."""
    if spec.objective == "qps" and confirmation.qps is not None:
        return confirmation.qps.low is not None and confirmation.qps.low > 1.0
    if spec.objective == "p99" and confirmation.p99 is not None:
        return confirmation.p99.high is not None and confirmation.p99.high < 1.0
    return False


def _model_build(config: Config, bench: Bench) -> float:
    if config.kind == "hnsw":
        return hnsw_build_seconds(
            bench.rows, bench.dim, config.params["m"], config.params["ef_construction"]
        )
    return ivfflat_build_seconds(bench.rows, bench.dim, config.params["lists"])


def _target_dict(spec: TuneSpec) -> dict[str, Any]:
    data = dataclasses.asdict(spec)
    data.pop("resume", None)  # how it was invoked, not what it answers
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _server_settings(dsn: str) -> dict[str, str]:
    with connect(dsn) as conn:
        return {
            name: str(row[0])
            for name in SERVER_SETTINGS
            if (row := conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone())
            and row[0] is not None
        }


def _search_notes(found: Searched) -> list[str]:
    return ["duplicates_proposed"] if found.duplicates else []
