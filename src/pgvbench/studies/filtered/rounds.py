"""The strategies of one bucket whose objects coexist, timed in interleaved rounds.

The HNSW strategies (plain, strict_order, relaxed_order) query the same index of the same
table and differ only in session settings; ``partitioned`` queries its own table. So
their plans are EXPLAIN-checked as when each runs alone, with all their objects present.
Their timed loops then alternate: one short window of each per round, in an order drawn
afresh per round (RMIT), so a busy neighbour slows them alike and window i of two
strategies (round i) is a pair for the winner's margin. Each strategy's windows add up
to the time one strategy's loop took before. Figures only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import psycopg

from ...analysis.interleave import rounds_for, schedule
from ...engine.operations import SESSION, ParamOperation
from ...engine.outcome import EngineOutcome
from ...engine.providers import DirectProvider
from ...engine.threaded import LoadShape, run_load
from ...recall_rule import RecallRule
from .measure import WINDOW_SECONDS, Checked, check, finish, operation
from .records import FilteredRow
from .source import FilterSource
from .strategies import Plan
from .workload import Bucket

#: (plan, its row or the error that stopped its check): rows are built by the caller
Checks = list[tuple[Plan, Checked | psycopg.Error]]


def check_all(
    dsn: str,
    plans: Sequence[Plan],
    bucket: Bucket,
    source: FilterSource,
    *,
    k: int,
    vector_oid: int,
    explain_queries: int,
    serials: itertools.count[int],
    rule: RecallRule,
) -> Checks:
    """Ids and plans of every strategy on ``bucket`` (a failed check is kept as its error)."""
    out: Checks = []
    for plan in plans:
        try:
            checked = check(
                dsn, plan, bucket, source, k=k, vector_oid=vector_oid,
                explain_queries=explain_queries, serial=next(serials), rule=rule,
            )  # fmt: skip
            out.append((plan, checked))
        except psycopg.Error as exc:
            out.append((plan, exc))
    return out


def time_interleaved(
    dsn: str,
    arms: Sequence[Checked],
    *,
    warmup_s: float,
    measure_s: float,
    seed: int,
    run_order: itertools.count[int],
) -> list[tuple[list[EngineOutcome], list[int]]]:
    """Each arm's windows and their places in the run order, measured in rounds."""
    if not arms:
        return []
    ops: list[ParamOperation] = [operation(a) for a in arms]
    rounds = rounds_for(measure_s, WINDOW_SECONDS)
    windows: list[list[EngineOutcome]] = [[] for _ in arms]
    sequence: list[list[int]] = [[] for _ in arms]
    for n, order in enumerate(schedule(list(range(len(arms))), rounds, seed=seed)):
        for i in order:
            shape = LoadShape(
                clients=1,
                warmup_s=warmup_s if n == 0 else 0.0,  # each arm's first window only
                duration_s=measure_s / rounds,
                seed=seed + n,
                first_seq=sum(w.operations for w in windows[i]),
            )
            window = run_load(ops[i], DirectProvider(dsn, ops[i], SESSION), shape, probe_dsn=dsn)
            windows[i].append(window)
            sequence[i].append(next(run_order))
            if window.aborted:  # the server went away: later windows would measure nothing
                return list(zip(windows, sequence, strict=True))
    return list(zip(windows, sequence, strict=True))


def rows_of(
    arms: Sequence[Checked], timed: Sequence[tuple[list[EngineOutcome], list[int]]]
) -> dict[str, FilteredRow]:
    """Each arm's row by its arm name (the strategy, with its ef_search in a sweep); an arm
    with no window (the server went away) is absent."""
    out: dict[str, FilteredRow] = {}
    for arm, (windows, sequence) in zip(arms, timed, strict=True):
        if not windows:
            continue
        others = [a.plan.arm for a in arms if a is not arm]
        out[arm.plan.arm] = finish(arm, windows, sequence=sequence, paired_with=others)
    return out
