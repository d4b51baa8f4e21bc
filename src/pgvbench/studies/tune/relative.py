"""Builds ranked against a reference build timed beside them, not on one window each.

On this 2-core machine one latency window of one configuration varied up to 2x between
trials minutes apart, enough for the search to rank a build above a better one (issue
14's acceptance bench: m=24 ranked above m=16 on one window each, and the interleaved
head-to-head said the opposite). So the first feasible build of a session is kept on
its own table as the reference, and every later feasible build is timed in
``RANK_ROUNDS`` short windows alternating with it (a random mirrored order per round,
analysis.interleave.schedule): its objective is the paired ratio times the reference's
own value. A busy neighbour then slows both sides of each ratio alike.

The reference holds table copy 0 while it lives, so candidates build on copy 1 (two
vector indexes on one table: the planner would use one for both). It is dropped at the
end of the search, before the winner's confirmation (which builds on copy 0), and
rebuilt after ``--resume`` the first time a ratio needs it: a new graph, so ratios
measured after a resume compare with that rebuild, on the first build's scale.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from ...analysis.interleave import schedule
from ...analysis.paired import PairedRatio, paired_ratio
from .measure import Bench, Candidate, assess_modes
from .records import Config, Evaluation, Latency, Relative, Trial
from .tables import TuneTables

RANK_ROUNDS = 4  # two mirrored pairs (ABBA): each side first equally often
# a contender (its interval reaches the best ratio so far) gets this many rounds more: the
# measuring goes where the ranking is decided, not to builds that are clearly behind
CONTENDER_ROUNDS = 8
RANK_WINDOW_S = 0.3  # short: adjacent windows share the machine's state
RANK_WARMUP_S = 0.15  # both sides ran moments ago; only the new connections need it


class Reference:
    """The session's reference build on one bench (one per bench: the subsample's and
    the full table's differ), and the interleaved ratios against it."""

    def __init__(
        self,
        bench: Bench,
        tables: TuneTables,
        *,
        seed: int,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.bench = bench
        self.tables = tables
        self.seed = seed
        self.on_step = on_step
        target = bench.target
        # what the ratio compares: the objective's own measure (memory needs no timing)
        self.measure: str | None = (
            None if target.objective == "memory" else "qps" if target.objective == "qps"
            else target.latency
        )  # fmt: skip
        self.trial: int | None = None  # the reference's trial number
        self._config: Config | None = None
        self._knob = 0
        self._scan: str | None = None
        self._value = 0.0  # the reference's own value of ``measure``
        self._candidate: Candidate | None = None

    @property
    def copy(self) -> int:
        """The table copy a candidate builds on: 1 once a reference holds copy 0."""
        return 0 if self.trial is None else 1

    def adopt(self, candidate: Candidate, evaluation: Evaluation, number: int) -> None:
        """Keep ``candidate`` (a feasible build on copy 0) as the reference."""
        assert evaluation.knob_value is not None and evaluation.latency is not None
        candidate.keep()
        self._set(number, evaluation)
        self._candidate = candidate

    def restore(self, trial: Trial) -> None:
        """After --resume: the reference is ``trial``, rebuilt when first needed."""
        self._set(trial.number, trial.evaluation)

    def relate(
        self, candidate: Candidate, evaluation: Evaluation, *, best: float | None = None
    ) -> Evaluation:
        """``evaluation`` with its ratio to the reference, timed interleaved; ``best``:
        the best ratio so far on this bench (a candidate whose interval reaches it is a
        contender and is timed CONTENDER_ROUNDS rounds more)."""
        assert self.measure is not None and evaluation.knob_value is not None
        reference = self._built()
        arms = {"reference": (reference, self._knob), "candidate":
                (candidate, evaluation.knob_value)}  # fmt: skip
        windows = self._windows(arms, RANK_ROUNDS)
        ratio = self._ratio(windows)
        if best is not None and self._contends(ratio, best):
            more = self._windows(arms, CONTENDER_ROUNDS, seed=self.seed + 1)
            ratio = self._ratio({arm: windows[arm] + more[arm] for arm in windows})
        relative = Relative(
            reference=self.trial or 0,
            measure=self.measure,
            reference_value=self._value,
            ratio=ratio,
        )
        return dataclasses.replace(evaluation, relative=relative)

    def close(self) -> None:
        """Drop the reference's index (the search is over; confirm builds on copy 0)."""
        if self._candidate is not None:
            self._candidate.drop()
            self._candidate = None

    # ------------------------------------------------------------------ internals

    def _set(self, number: int, evaluation: Evaluation) -> None:
        assert evaluation.knob_value is not None and evaluation.latency is not None
        self.trial = number
        self._config = evaluation.config
        self._knob = evaluation.knob_value
        self._scan = evaluation.iterative_scan
        self._value = self._of(evaluation.latency)

    def _built(self) -> Candidate:
        if self._candidate is None:  # resumed: rebuild it on copy 0
            assert self._config is not None, "Reference.adopt or restore first"
            candidate = Candidate(self.bench, self.tables, self._config, on_step=self.on_step)
            candidate.iterative_scan = self._scan
            candidate.build()
            if not candidate.built.exists:
                raise RuntimeError(f"the reference rebuild failed: {candidate.built.reason}")
            candidate.keep()
            self._candidate = candidate
        return self._candidate

    def _windows(
        self, arms: dict[str, tuple[Candidate, int]], rounds: int, *, seed: int | None = None
    ) -> dict[str, list[Latency]]:
        # never longer than the spec's own window and warm-up (a quick spec stays quick)
        window = min(RANK_WINDOW_S, self.bench.measure_s)
        warmup = min(RANK_WARMUP_S, self.bench.warmup_s)
        return interleaved(arms, rounds=rounds, window_s=window, warmup_s=(warmup, warmup),
                           seed=self.seed if seed is None else seed)  # fmt: skip

    def _ratio(self, windows: dict[str, list[Latency]]) -> PairedRatio:
        """candidate / reference over the rounds."""
        return paired_ratio(
            [self._of(w) for w in windows["reference"]],
            [self._of(w) for w in windows["candidate"]],
        )

    def _contends(self, ratio: PairedRatio, best: float) -> bool:
        """Could this build be the best one (its interval reaches the best ratio)?"""
        if self.measure == "qps":  # higher is better
            return (ratio.high if ratio.high is not None else ratio.ratio) >= best
        return (ratio.low if ratio.low is not None else ratio.ratio) <= best

    def _of(self, window: Latency) -> float:
        return window.qps if self.measure == "qps" else window.percentile(self.measure or "p99")


def evaluate_ranked(
    reference: Reference,
    config: Config,
    ladder: Sequence[int],
    number: int,
    *,
    best: float | None = None,
) -> Evaluation:
    """measure.evaluate, then: the first feasible build becomes the reference, every
    later feasible one gets its interleaved ratio to it (Evaluation.relative); ``best``:
    the best ratio to the reference so far (1.0: the reference itself)."""
    started = time.perf_counter()
    with Candidate(reference.bench, reference.tables, config, copy=reference.copy,
                   on_step=reference.on_step) as candidate:  # fmt: skip
        evaluation = assess_modes(candidate, ladder, started=started)
        if not evaluation.feasible or reference.measure is None:
            return evaluation
        if reference.trial is None:
            reference.adopt(candidate, evaluation, number)
            return evaluation
        related = reference.relate(candidate, evaluation, best=best)
    return dataclasses.replace(related, seconds=time.perf_counter() - started)


def interleaved(
    arms: dict[str, tuple[Candidate, int]],
    *,
    rounds: int,
    window_s: float,
    warmup_s: tuple[float, float],
    seed: int,
) -> dict[str, list[Latency]]:
    """One window per arm per round, in a random mirrored order (ABBA), each arm at its
    knob; ``warmup_s``: (an arm's first window, its later ones). Windows in round order."""
    out: dict[str, list[Latency]] = {name: [] for name in arms}
    for order in schedule(list(arms), rounds, seed=seed, mirrored=True):
        for name in order:
            candidate, knob = arms[name]
            warmup = warmup_s[0] if not out[name] else warmup_s[1]
            out[name].append(
                candidate.latency(knob, warmup_s=warmup, duration_s=window_s, seed=seed)
            )
    return out
