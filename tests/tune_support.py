"""Hand-built tuning records for the tuner's prose, SQL and report tests (no database)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pgvbench.analysis.paired import PairedRatio
from pgvbench.recall_records import Recall
from pgvbench.results import DatasetInfo, Environment, HostInfo, Results
from pgvbench.studies.tune.records import (
    Config,
    Confirmation,
    Evaluation,
    KnobProbe,
    Latency,
    Trial,
    TuneRecord,
)
from pgvbench.studies.tune.space import resolve_space
from pgvbench.studies.tune.spec import TuneSpec

MB = 1024**2


def config(
    kind: str = "hnsw",
    *,
    m: int = 16,
    efc: int = 64,
    lists: int = 100,
    storage: str = "vector",
    settings: Mapping[str, str] | None = None,
) -> Config:
    params = {"m": m, "ef_construction": efc} if kind == "hnsw" else {"lists": lists}
    return Config(kind=kind, params=params, storage=storage, build_settings=dict(settings or {}))


def evaluation(
    cfg: Config | None = None,
    *,
    knob: int | None = 40,
    recall_mean: float = 0.962,
    recall_low: float = 0.955,
    qps: float = 1200.0,
    p99: float = 4.2,
    build: float | None = 12.3,
    index_mb: float = 45.0,
    table_mb: float = 150.0,
    reason: str | None = None,
    rows: int = 10_000,
    timed: bool = True,
    error: str | None = None,
    iterative_scan: str | None = None,
) -> Evaluation:
    cfg = cfg or config()
    probes = (
        KnobProbe(value=knob or 1000, recall_mean=recall_mean, recall_low=recall_low),
    )  # fmt: skip
    return Evaluation(
        config=cfg,
        rows=rows,
        build_seconds=build,
        index_bytes=int(index_mb * MB),
        table_bytes=int(table_mb * MB),
        probes=probes,
        knob_value=knob,
        recall=Recall(mean=recall_mean, p5=0.8, min=0.5, low=recall_low, queries=500),
        latency=(
            Latency(
                qps=qps,
                p50_ms=p99 / 3,
                p95_ms=p99 * 0.8,
                p99_ms=p99,
                operations=5000,
                clients=8,
                seconds=2.0,
            )
            if timed
            else None
        ),
        reason=reason,
        seconds=20.0,
        error=error,
        iterative_scan=iterative_scan,
    )


def trial(number: int, ev: Evaluation, *, phase: str = "explore", at: float = 0.0) -> Trial:
    objective = ev.latency.qps if ev.feasible and ev.latency is not None else None
    return Trial(
        number=number,
        phase=phase,
        evaluation=ev,
        started_s=at,
        finished_s=at + ev.seconds,
        objective=objective,
    )


def ratio(value: float, low: float | None, high: float | None, rounds: int = 6) -> PairedRatio:
    return PairedRatio(
        ratio=value,
        low=low,
        high=high,
        p_value=0.5,
        rounds=rounds,
        level=0.95,
        per_round=tuple([value] * rounds),
    )


def record(
    trials: Sequence[Trial],
    *,
    winner: int | None,
    runner_up: int | None = None,
    confirmation: Confirmation | None = None,
    spec: TuneSpec | None = None,
    rows: int = 10_000,
    dim: int = 64,
    metric: str = "cosine",
    external: bool = False,
    best_unmet: Evaluation | None = None,
    notes: Sequence[str] = (),
    filter_summary: Mapping[str, Any] | None = None,
    **target_overrides: Any,
) -> TuneRecord:
    spec = spec or dataclasses.replace(TuneSpec(latency_ms=10.0, clients=8), **target_overrides)
    space = resolve_space(spec, rows=rows, dim=dim, k=10)
    data = dataclasses.asdict(spec)
    data.pop("resume", None)
    return TuneRecord(
        target={k: list(v) if isinstance(v, tuple) else v for k, v in data.items()},
        space=space.to_dict(),
        k=10,
        rows=rows,
        dim=dim,
        metric=metric,
        trials=tuple(trials),
        winner=winner,
        runner_up=runner_up,
        confirmation=confirmation,
        elapsed_s=max((t.finished_s for t in trials), default=0.0) + 30.0,
        grid_builds=len(space.m) * len(space.ef_construction) + len(space.lists),
        grid_points=200,
        grid_estimate_s=4 * 3600.0,
        external=external,
        server_settings={
            "shared_buffers": "128MB",
            "maintenance_work_mem": "64MB",
            "max_parallel_maintenance_workers": "2",
        },
        storage_path="/tmp/tune.sqlite3",
        sampler="TPESampler (optuna 5.1.0)",
        stop_reason="trials",
        best_unmet=best_unmet,
        notes=tuple(notes),
        filter=filter_summary,
    )


def two_way(
    qps_ratio: PairedRatio | None,
    *,
    win: Evaluation | None = None,
    run: Evaluation | None = None,
    recall_holds: bool = True,
    rebuilt: Evaluation | None = None,
    **kwargs: Any,
) -> TuneRecord:
    """A session with a winner (trial 3) confirmed against a runner-up (trial 5)."""
    win = win or evaluation()
    run = run or evaluation(config(m=12, efc=64), knob=48, qps=1100.0, index_mb=38, build=9.8)
    loser = evaluation(config(m=8, efc=32), knob=None, recall_mean=0.91, recall_low=0.9,
                       reason="recall_unreachable", timed=False)  # fmt: skip
    trials = [trial(1, loser, at=0.0), trial(3, win, at=30.0), trial(5, run, at=60.0)]
    confirmation = Confirmation(
        winner=rebuilt or win,
        runner_up=run,
        qps=qps_ratio,
        p99=ratio(1.05, 0.95, 1.15),
        rounds=6,
        window_s=2.0,
        recall_holds=recall_holds,
    )
    return record(trials, winner=3, runner_up=5, confirmation=confirmation, **kwargs)


def results(*, table_source: dict[str, Any] | None = None) -> Results:
    """A run's results around a tuning session (what the report and outputs read)."""
    return Results(
        run_name="tune-demo",
        status="complete",
        started_at="2026-01-01T10:00:00+00:00",
        finished_at="2026-01-01T10:20:00+00:00",
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={},
            host=HostInfo(cpu_model="test", cores=2, ram_bytes=8 * 1024 * MB, os="Linux"),
            pgvbench_version="0.0",
            git_commit=None,
            python_version="3.11",
        ),
        spec={},
        dataset=DatasetInfo(
            name="demo",
            source="table" if table_source else "synthetic:clustered",
            n=10_000,
            dim=64,
            metric="cosine",
            seed=1,
            n_queries=500,
            n_recall_queries=500,
            table_source=table_source,
        ),
    )
