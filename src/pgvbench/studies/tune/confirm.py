"""The winner confirmed: rebuilt from scratch and timed interleaved with the runner-up.

A fresh build of the winner shows build-to-build variation (HNSW graphs differ from
build to build): its knob is bisected again, and ``recall_holds`` says whether the
rebuild still meets the recall bound at the knob the search chose. The runner-up is
built on a table of its own (two vector indexes on one table: the planner would pick
one for both), then both are timed in ``rounds`` rounds of one ``window_s`` window each,
in a random order per round (ABBA-mirrored), and compared per round: a busy neighbour
then slows both alike. Ratios are runner-up / winner. Figures only, no prose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

from ...analysis.interleave import LATER_WINDOW_WARMUP_S
from ...analysis.paired import PairedRatio, paired_ratio
from .measure import Bench, Candidate, assess
from .records import Config, Confirmation, Evaluation
from .relative import interleaved
from .tables import TuneTables

WINNER, RUNNER_UP = "winner", "runner_up"


def confirm(
    bench: Bench,
    tables: TuneTables,
    winner: Config,
    winner_knob: int,
    runner_up: Config | None,
    runner_knob: int | None,
    ladder_of: Callable[[Config], tuple[int, ...]],
    *,
    rounds: int = 8,
    window_s: float = 1.0,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    winner_scan: str | None = None,
    runner_scan: str | None = None,
) -> Confirmation:
    """Rebuild ``winner``, re-bisect its knob, build ``runner_up`` beside it and time both
    interleaved (the winner at the higher of ``winner_knob`` and its rebuild's knob, the
    runner-up at its rebuild's, else ``runner_knob``); both indexes are dropped at the end.

    No runner-up (or one whose rebuild fails or misses recall): ``qps``/``p99`` None.
    ``winner_scan`` / ``runner_scan``: a filtered target's iterative-scan mode of each.
    """
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        w = stack.enter_context(Candidate(bench, tables, winner, on_step=on_step))
        w.iterative_scan = winner_scan
        w_eval = _with_scan(assess(w, ladder_of(winner), started=started), winner_scan)
        holds = w.built.exists and w.over_budget() is None and w.meets(winner_knob)
        r_eval: Evaluation | None = None
        qps: PairedRatio | None = None
        pct: PairedRatio | None = None
        if runner_up is not None and w.built.exists:
            started = time.perf_counter()
            r = stack.enter_context(Candidate(bench, tables, runner_up, copy=1, on_step=on_step))
            r.iterative_scan = runner_scan
            r_eval = _with_scan(assess(r, ladder_of(runner_up), started=started), runner_scan)
            # each at the knob the report quotes and apply.sql would set: the winner's is
            # the higher of the search's and the rebuild's (facts.chosen), the runner-up's
            # its own rebuild's (facts.runner_up), falling back to the search's
            w_knob = max(winner_knob, w_eval.knob_value or winner_knob)
            knob = r_eval.knob_value if r_eval.knob_value is not None else runner_knob
            if r.built.exists and knob is not None:
                later = min(bench.warmup_s, LATER_WINDOW_WARMUP_S)
                windows = interleaved({WINNER: (w, w_knob), RUNNER_UP: (r, knob)},
                                      rounds=rounds, window_s=window_s,
                                      warmup_s=(bench.warmup_s, later), seed=seed)  # fmt: skip
                stat = bench.target.latency
                qps = _ratio([x.qps for x in windows[WINNER]], [x.qps for x in windows[RUNNER_UP]])
                pct = _ratio(
                    [x.percentile(stat) for x in windows[WINNER]],
                    [x.percentile(stat) for x in windows[RUNNER_UP]],
                )
    return Confirmation(
        winner=w_eval,
        runner_up=r_eval,
        qps=qps,
        p99=pct,
        rounds=rounds,
        window_s=window_s,
        recall_holds=holds,
    )


def _with_scan(evaluation: Evaluation, mode: str | None) -> Evaluation:
    return dataclasses.replace(evaluation, iterative_scan=mode)


def _ratio(winner: list[float], runner_up: list[float]) -> PairedRatio | None:
    """runner-up / winner over the rounds; None when no round measured both."""
    try:
        return paired_ratio(winner, runner_up)
    except ValueError:
        return None
