"""The levels' QPS windows, measured interleaved once every level is built.

A level's QPS is compared with the others' (the held-out check predicts the largest from
them), so the windows of all levels alternate in rounds, a fresh random order each round
(mirrored, analysis/interleave.py): a neighbour's load that comes and goes over minutes
then lands on every level alike instead of on whichever level was built at the time.
Each level's index and table are prewarmed into shared_buffers before its window (when
pg_prewarm is installed), so the QPS is that of a resident index at every size: an index
just built is not in shared_buffers (the build writes around them), and a larger one
would otherwise be timed colder than a smaller. Where index + heap outgrow the cache is
the cache study's question; the report marks that cliff.

A level's windows merge into one Latency: QPS = operations / seconds over all windows,
CPU cores weighted by window length, percentiles those of the median window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import psycopg

from ...analysis.interleave import LATER_WINDOW_WARMUP_S, rounds_for, schedule
from ...errors import PgvbenchError
from ...server.connection import connect
from ..base import StudyContext
from ..tune.measure import Candidate
from ..tune.records import Latency
from .records import IndexLevel, Level
from .spec import CapacitySpec

Key = tuple[int, str, str]  # (rows, kind, "fixed" | "knob")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Arm:
    """One level's index at one knob value, kept built for its windows."""

    rows: int
    kind: str
    which: str  # "fixed": the spec's fixed knob | "knob": the smallest meeting the target
    value: int
    candidate: Candidate

    @property
    def key(self) -> Key:
        return (self.rows, self.kind, self.which)


def has_prewarm(dsn: str) -> bool:
    """Whether pg_prewarm is installed in the database (the embedded server has it)."""
    try:
        with connect(dsn) as conn:
            row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm'")
            return row.fetchone() is not None
    except (psycopg.Error, PgvbenchError):
        return False


def interleaved_windows(
    ctx: StudyContext, spec: CapacitySpec, arms: Sequence[Arm], *, prewarm: bool
) -> dict[Key, list[Latency]]:
    """Every arm's windows, the arms in a random order per round; windows per arm."""
    if not arms:
        return {}
    query = ctx.spec.query
    measure_s = spec.measure_seconds if spec.measure_seconds is not None else query.measure_seconds
    first_warmup = spec.warmup_seconds if spec.warmup_seconds is not None else query.warmup_seconds
    rounds = rounds_for(measure_s, spec.window_seconds)
    order = schedule(list(range(len(arms))), rounds, seed=ctx.spec.seed, mirrored=True)
    windows: dict[Key, list[Latency]] = {arm.key: [] for arm in arms}
    label = f"capacity: QPS, {len(arms)} windows a round x {rounds} rounds, interleaved"
    with ctx.reporter.task(label, total=rounds * len(arms)) as task:
        for number, indexes in enumerate(order):
            for i in indexes:
                arm = arms[i]
                task.update(description=f"{label}: {arm.rows:,} rows, {arm.kind} at {arm.value}")
                if prewarm:
                    _prewarm(arm.candidate)
                latency = arm.candidate.latency(
                    arm.value,
                    warmup_s=first_warmup if number == 0 else LATER_WINDOW_WARMUP_S,
                    duration_s=spec.window_seconds,
                    seed=ctx.spec.seed + number,
                )
                windows[arm.key].append(latency)
                task.advance()
    return windows


def _prewarm(candidate: Candidate) -> None:
    built = candidate.built
    schema = candidate.bench.schema
    with connect(candidate.bench.dsn) as conn:
        for name in (built.name, built.table):
            conn.execute(
                "SELECT pg_prewarm(format('%%I.%%I', %s::text, %s::text)::regclass)",
                (schema, name),
            )


def merge_windows(windows: Sequence[Latency]) -> Latency:
    """One Latency of several windows (see the module docstring)."""
    if not windows:
        raise ValueError("no windows to merge")
    seconds = sum(w.seconds for w in windows)
    operations = sum(w.operations for w in windows)
    middle = sorted(windows, key=lambda w: w.qps)[(len(windows) - 1) // 2]

    def weighted(values: Sequence[float | None]) -> float | None:
        known = [(v, w.seconds) for v, w in zip(values, windows, strict=True) if v is not None]
        total = sum(s for _, s in known)
        return round(sum(v * s for v, s in known) / total, 3) if known and total > 0 else None

    return dataclasses.replace(
        middle,
        qps=round(operations / seconds, 2) if seconds > 0 else 0.0,
        operations=operations,
        errors=sum(w.errors for w in windows),
        seconds=round(seconds, 4),
        client_cpu_cores=weighted([w.client_cpu_cores for w in windows]),
        server_cpu_cores=weighted([w.server_cpu_cores for w in windows]),
        foreign_cpu_cores=weighted([w.foreign_cpu_cores for w in windows]),
    )


def with_windows(level: Level, timed: Mapping[Key, Sequence[Latency]]) -> Level:
    """``level`` with its indexes' merged windows (and each window's QPS)."""

    def timed_index(ix: IndexLevel) -> IndexLevel:
        fixed = timed.get((level.rows, ix.kind, "fixed"), [])
        knob = timed.get((level.rows, ix.kind, "knob"), [])
        return dataclasses.replace(
            ix,
            fixed_latency=merge_windows(fixed) if fixed else None,
            latency=merge_windows(knob) if knob else None,
            fixed_window_qps=tuple(round(w.qps, 2) for w in fixed),
            window_qps=tuple(round(w.qps, 2) for w in knob),
        )

    return dataclasses.replace(level, indexes=tuple(timed_index(ix) for ix in level.indexes))
