"""The timed loops of every quantization point, in interleaved rounds (RMIT).

All variant indexes exist at once (each query's expression selects its own index), so
every (variant, ef_search, overfetch) point runs one short window per round, in an order
drawn afresh per round: a busy neighbour then slows all points alike, and window i of two
points (round i) is a pair for their QPS ratio. Each point's windows add up to the time
one long loop took before. Figures only, no prose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ...analysis.interleave import rounds_for, schedule
from ...engine.operations import SESSION, ParamOperation
from ...engine.outcome import EngineOutcome, merge_outcomes
from ...engine.providers import DirectProvider
from ...engine.threaded import LoadShape, run_load
from ...spec.model import QUERY_GUCS

WARMUP_S = 0.2  # before each point's first window only (later ones find the caches warm)
WINDOW_S = 0.25  # about this long per window, at least 3 windows per point
_EF_SEARCH = QUERY_GUCS["hnsw"]  # every variant is an HNSW index


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm:
    """One point's statement and its ef_search."""

    stmt: str
    ef_search: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timed:
    """One point's timed windows: the merged figures, each window's QPS and run order."""

    qps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    window_qps: tuple[float, ...]  # in round order: window i of every point is round i
    window_sequence: tuple[int, ...]  # each window's place in the study's run order


def time_interleaved(
    dsn: str,
    arms: Sequence[Arm],
    vectors: Sequence[bytes],
    oid: int,
    seconds: float,
    *,
    seed: int = 0,
) -> list[Timed]:
    """Time every arm for ``seconds`` in total, as one window per arm per round."""
    ops = [
        ParamOperation(
            name=f"quant{i}",
            sql=arm.stmt,
            types=[oid],
            formats=[1],
            params=lambda seq: [vectors[seq % len(vectors)]],
            settings={_EF_SEARCH: str(arm.ef_search)},
        )
        for i, arm in enumerate(arms)
    ]
    rounds = rounds_for(seconds, WINDOW_S)
    windows: list[list[EngineOutcome]] = [[] for _ in arms]
    sequence: list[list[int]] = [[] for _ in arms]
    run_order = 0
    for order in schedule(list(range(len(arms))), rounds, seed=seed):
        aborted = False
        for i in order:
            done = windows[i]
            shape = LoadShape(
                clients=1,
                warmup_s=min(WARMUP_S, seconds) if not done else 0.0,
                duration_s=seconds / rounds,
                first_seq=sum(w.operations for w in done),
            )
            window = run_load(ops[i], DirectProvider(dsn, ops[i], SESSION), shape, probe_dsn=dsn)
            done.append(window)
            sequence[i].append(run_order)
            run_order += 1
            if window.aborted:  # the server went away: later windows would measure nothing
                aborted = True
                break
        if aborted:
            break
    return [_timed(w, s) for w, s in zip(windows, sequence, strict=True)]


def _timed(windows: list[EngineOutcome], sequence: list[int]) -> Timed:
    if not windows:
        return Timed(qps=0.0, p50_ms=None, p99_ms=None, errors=0, window_qps=(),
                     window_sequence=())  # fmt: skip
    outcome = merge_outcomes(windows)
    lat = outcome.latency.summary()
    return Timed(
        qps=outcome.qps,
        p50_ms=lat.p50 if lat else None,
        p99_ms=lat.p99 if lat else None,
        errors=outcome.errors,
        window_qps=tuple(round(w.qps, 1) for w in windows),
        window_sequence=tuple(sequence),
    )
