"""One configuration measured: build it, check the budgets, find the smallest query knob
whose recall lower bound meets the target (bisection over the knob ladder), time it.

:class:`Candidate` is one build on the server (built on enter, dropped on exit) measured
at any knob value: recall (tie-aware, per query, with its one-sided lower bound) and a
timed window at the target's concurrency or rate. :func:`evaluate` is the tuner's walk
over it; bench/tune_vs_grid.py measures its grid points with the same Candidate, so the
grid and the tuner measure alike.

Every query runs with ``enable_seqscan = off`` and its plan is checked to use the
candidate's index: on a small table (a subsample) at a large ef_search the planner
prefers an exact scan, whose recall of 1.0 would say nothing about the index.
Figures and reason codes only, no prose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import psycopg

from ...analysis.paired import recall_lower_bound
from ...datasets import GroundTruth, tie_aware_recall
from ...datasets.recall import recall_tail, summarize_recall
from ...db.gucs import set_settings
from ...db.indexes import BuildProgress
from ...engine.operations import SESSION, ParamOperation, encode_vector
from ...engine.providers import DirectProvider
from ...engine.threaded import LoadShape, run_load
from ...errors import PgvbenchError, RunFailed
from ...instrument.host import server_probe
from ...metrics import Metric
from ...recall_rule import RecallRule
from ...results import Recall
from ...server.connection import connect
from ...workloads.vector import index_names_in_plan
from .filtered import (
    FilterTarget,
    filtered_recall_per_query,
    iterative_scan_modes,
    iterative_scan_settings,
)
from .objective import best_of
from .records import Config, Evaluation, KnobProbe, Latency
from .spec import TuneSpec
from .sql import ident, query_sql
from .tables import Built, KeptIndex, TuneTables

# TuneTables, Built and KeptIndex live in tables.py; the tuner imports them from here too
__all__ = ["Bench", "Built", "Candidate", "KeptIndex", "TuneTables", "assess", "evaluate",
           "evaluate_kept", "recall_of"]  # fmt: skip

MB = 2**20
# the planner may not take an exact scan instead of the index being measured
FORCE_INDEX = {"enable_seqscan": "off"}


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Bench:
    """The fixed inputs of every evaluation in one session (one for the subsample, one
    for the full table)."""

    dsn: str
    schema: str  # pgvbench's own schema (spec.schema)
    table: str  # the loaded items table: id bigint (= row index), embedding vector(dim), ...
    prefix: str  # name prefix of the tables and indexes the tuner creates
    rows: int  # evaluate on rows with id < rows (a subsample) or all of them
    dim: int
    metric: Metric
    k: int
    base: np.ndarray  # base vectors of those rows (dataset.base[:rows]), for tie-aware recall
    recall_queries: np.ndarray
    truth: GroundTruth  # exact ground truth of recall_queries over those rows
    load_queries: np.ndarray  # the timed stream
    rule: RecallRule
    target: TuneSpec  # recall, confidence, latency bound, clients/rate, budgets
    warmup_s: float
    measure_s: float
    statement_timeout_ms: int
    # the target's queries carry a filter ([tune] filter): truth is then the filtered truth
    filter: FilterTarget | None = None
    # the embedded server's postmaster: latency windows then also read its CPU
    postmaster_pid: int | None = None

    @functools.cached_property
    def encoded_recall(self) -> list[list[bytes]]:
        """Each recall query's parameters: the vector (binary), then its filter values."""
        return _with_filter(self.recall_queries, self.filter, recall=True)

    @functools.cached_property
    def encoded_load(self) -> list[list[bytes]]:
        return _with_filter(self.load_queries, self.filter, recall=False)

    @property
    def param_formats(self) -> list[int]:
        """Binary for the vector, text for the filter values (cast in the SQL)."""
        return [1, *([0] * self.filter_params)]

    @property
    def filter_params(self) -> int:
        return len(self.filter.recall_params[0]) if self.filter and self.filter.recall_params else 0


def _with_filter(
    vectors: np.ndarray, target: FilterTarget | None, *, recall: bool
) -> list[list[bytes]]:
    encoded = [encode_vector(q) for q in vectors]
    if target is None:
        return [[v] for v in encoded]
    params = target.recall_params if recall else target.load_params
    return [[v, *(p.encode() for p in params[i % len(params)])] for i, v in enumerate(encoded)]


def recall_of(per_query: np.ndarray, *, confidence: float) -> Recall:
    """The Recall record of per-query recall, ``low`` the one-sided bound at the target's
    confidence (the bound the target is checked against; runner.points.recall_record's
    fields, at 95% there)."""
    mean, p5, low = summarize_recall(per_query)
    p1, zero = recall_tail(per_query)
    bound = recall_lower_bound(per_query, confidence=confidence)
    return Recall(
        mean=round(mean, 5),
        p5=round(p5, 5),
        min=round(low, 5),
        low=math.floor(bound * 1e5) / 1e5,  # rounded down: it is a lower bound
        p1=round(p1, 5),
        zero=zero,
        queries=int(per_query.size),
    )


class Candidate:
    """One build of ``config`` on the server, measured at any knob value.

    ``with Candidate(bench, tables, config) as c:`` builds on enter (a failed build is
    ``c.built.reason``, not an exception) and drops the index on exit unless ``c.keep()``
    was called. ``c.recall(value)`` -> KnobProbe (cached per value), ``c.recall_record(value)``
    -> Recall, ``c.latency(value)`` -> Latency (one timed window each call).
    ``copy`` > 0 builds on a numbered extra copy of the table (two coexisting candidates).
    """

    def __init__(
        self,
        bench: Bench,
        tables: TuneTables,
        config: Config,
        *,
        copy: int = 0,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.bench = bench
        self.tables = tables
        self.config = config
        self.copy = copy
        self.on_step = on_step
        self._built: Built | None = None
        self._kept = False
        # (iterative-scan mode, knob value) -> (probe, per-query recall)
        self._measured: dict[tuple[str | None, int], tuple[KnobProbe, np.ndarray]] = {}
        self.iterative_scan: str | None = None  # filtered targets: the mode measured
        self._sql = ""
        self._seq = 0  # the load stream continues where the last window stopped

    # ------------------------------------------------------------------ build / drop

    def __enter__(self) -> Candidate:
        self.build()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._kept:
            return
        if exc_type is None:
            self.drop()
            return
        # an error (or Ctrl-C) is on its way: the cleanup must not hide it; an index left
        # is still listed in the tables, and TuneTables.close() tries again
        with contextlib.suppress(psycopg.Error, PgvbenchError):
            self.drop()

    def build(self) -> Built:
        b, config = self.bench, self.config
        table = self.tables.table_for(config.storage, b.rows, copy=self.copy)
        self._step("build")
        self._built = self.tables.build(
            config,
            table,
            metric=b.metric,
            max_seconds=b.target.max_build_seconds,
            on_progress=self._build_progress,
        )
        self._sql = query_sql(
            config.storage,
            relation=ident(b.schema, table),
            dim=b.dim,
            metric=b.metric,
            k=b.k,
            where=b.filter.condition if b.filter is not None else None,
        )
        return self._built

    def drop(self) -> None:
        if self._built is not None and self._built.exists:
            self.tables.drop_index(self._built.name)

    def keep(self) -> KeptIndex:
        """Leave the index in place after the ``with`` block (TuneTables.close drops it)."""
        built = self.built
        if not built.exists:
            raise RuntimeError(f"no index to keep: the build ended with {built.reason}")
        kept = KeptIndex(
            schema=self.bench.schema, table=built.table, name=built.name, config=self.config
        )
        self.tables.keep(kept)
        self._kept = True
        return kept

    @property
    def built(self) -> Built:
        if self._built is None:
            raise RuntimeError("Candidate.build() (or the with block) first")
        return self._built

    @property
    def sql(self) -> str:
        """The top-k statement this candidate is measured with (``$1``: a vector)."""
        return self._sql

    def over_budget(self) -> str | None:
        """The first budget the build misses (index_over, build_over, memory_over)."""
        t, built = self.bench.target, self.built
        if not built.exists:
            return built.reason
        if t.max_index_mb is not None and built.index_bytes > t.max_index_mb * MB:
            return "index_over"
        seconds = built.seconds or 0.0
        if t.max_build_seconds is not None and seconds > t.max_build_seconds:
            return "build_over"
        memory = built.index_bytes + built.table_bytes
        if t.max_memory_mb is not None and memory > t.max_memory_mb * MB:
            return "memory_over"
        return None

    # ------------------------------------------------------------------ measure

    def settings(self, value: int) -> dict[str, str]:
        """The session settings every query of this candidate runs with at ``value``."""
        scan = (
            iterative_scan_settings(self.config.kind, self.iterative_scan)
            if self.iterative_scan is not None
            else {}
        )
        return {
            self.config.knob: str(value),
            "statement_timeout": str(self.bench.statement_timeout_ms),
            **scan,
            **FORCE_INDEX,
        }

    def recall(self, value: int) -> KnobProbe:
        """Recall at knob ``value`` over the recall queries (measured once per value)."""
        key = (self.iterative_scan, value)
        if key not in self._measured:
            started = time.perf_counter()
            per_query = self._measure_recall(value)
            bound = recall_lower_bound(per_query, confidence=self.bench.target.confidence)
            probe = KnobProbe(
                value=value,
                recall_mean=round(float(per_query.mean()), 5),
                recall_low=math.floor(bound * 1e5) / 1e5,  # rounded down: a lower bound
                seconds=round(time.perf_counter() - started, 4),
            )
            self._measured[key] = (probe, per_query)
        return self._measured[key][0]

    def meets(self, value: int) -> bool:
        """Whether the recall lower bound at ``value`` reaches the target."""
        return self.recall(value).recall_low >= self.bench.target.recall

    def per_query(self, value: int) -> np.ndarray:
        self.recall(value)
        return self._measured[(self.iterative_scan, value)][1]

    def recall_record(self, value: int) -> Recall:
        return recall_of(self.per_query(value), confidence=self.bench.target.confidence)

    def _measure_recall(self, value: int) -> np.ndarray:
        b = self.bench
        self._require()
        self._step(f"recall {self.config.knob}={value}")
        ids = np.full((len(b.encoded_recall), b.k), -1, dtype=np.int64)
        types = [self.tables.vector_oid, *([0] * b.filter_params)]  # 0: the SQL casts
        formats = b.param_formats
        with connect(b.dsn) as conn:
            set_settings(conn, self.settings(value))
            pgconn = conn.pgconn
            explain = pgconn.exec_params(
                b"EXPLAIN (FORMAT JSON) " + self._sql.encode(), b.encoded_recall[0], types,
                formats,
            )  # fmt: skip
            _check_result(explain)
            plan = json.loads(explain.get_value(0, 0) or b"[{}]")[0].get("Plan", {})
            if self.built.name not in index_names_in_plan(plan):
                raise RunFailed(
                    f"the plan of {self.config.label} at {self.config.knob}={value} does not "
                    f"use its index {self.built.name} even with enable_seqscan off"
                )
            _check_result(pgconn.prepare(b"tune_knn", self._sql.encode(), types))
            for i, params in enumerate(b.encoded_recall):
                out = pgconn.exec_prepared(b"tune_knn", list(params), formats)
                _check_result(out)
                for r in range(min(b.k, out.ntuples)):
                    ids[i, r] = int(out.get_value(r, 0) or b"-1")
        if b.filter is not None:  # the filtered truth, counted over each query's matches
            returned = [[int(x) for x in row if x >= 0] for row in ids]
            filtered: np.ndarray = filtered_recall_per_query(
                returned, b.filter, b.base, b.recall_queries, b.k, b.metric, b.rule
            )
            return filtered
        per_query: np.ndarray = tie_aware_recall(
            ids, b.truth, b.recall_queries, b.base, b.k, b.metric, rule=b.rule
        )
        return per_query

    def latency(
        self,
        value: int,
        *,
        warmup_s: float | None = None,
        duration_s: float | None = None,
        seed: int = 0,
    ) -> Latency:
        """One timed window at knob ``value`` at the target's clients (closed loop) or
        rate (open loop); defaults: the bench's warm-up and window length."""
        b, t = self.bench, self.bench.target
        self._require()
        self._step(f"latency {self.config.knob}={value}")
        vectors = b.encoded_load
        op = ParamOperation(
            name="tune",
            sql=self._sql,
            types=[self.tables.vector_oid, *([0] * b.filter_params)],
            formats=b.param_formats,
            params=lambda seq: list(vectors[seq % len(vectors)]),
            settings=self.settings(value),
        )
        shape = LoadShape(
            clients=t.clients,
            mode="open" if t.rate else "closed",
            rate=t.rate or 0.0,
            warmup_s=b.warmup_s if warmup_s is None else warmup_s,
            duration_s=b.measure_s if duration_s is None else duration_s,
            seed=seed,
            first_seq=self._seq,
        )
        outcome = run_load(op, DirectProvider(b.dsn, op, SESSION), shape, probe_dsn=b.dsn,
                           server_cpu=server_probe(b.postmaster_pid))  # fmt: skip
        if outcome.aborted:
            raise RunFailed(f"timing {self.config.label} stopped: {outcome.aborted}")
        self._seq += outcome.operations + outcome.errors
        summary = outcome.latency.summary()
        return Latency(
            qps=round(outcome.qps, 2),
            p50_ms=round(summary.p50, 4) if summary else 0.0,
            p95_ms=round(summary.p95, 4) if summary else 0.0,
            p99_ms=round(summary.p99, 4) if summary else 0.0,
            operations=outcome.operations,
            errors=outcome.errors,
            clients=t.clients,
            rate=t.rate,
            seconds=round(outcome.duration_s, 4),
            client_cpu_cores=_cores(outcome.client_cpu_cores),
            server_cpu_cores=_cores(outcome.server_cpu_cores),
            foreign_cpu_cores=_cores(outcome.host.foreign_cores if outcome.host else None),
        )

    # ------------------------------------------------------------------ helpers

    def _require(self) -> None:
        if not self.built.exists:
            raise RuntimeError(f"no index to measure: the build ended with {self.built.reason}")

    def _step(self, what: str) -> None:
        if self.on_step is not None:
            self.on_step(f"{self.config.label}: {what}")

    def _build_progress(self, p: BuildProgress) -> None:
        fraction = p.fraction
        self._step(f"build {p.phase}" + (f" {fraction:.0%}" if fraction is not None else ""))


_OK = (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK)


def _cores(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _check_result(result: psycopg.pq.abc.PGresult) -> None:
    if result.status not in _OK:
        message = (result.error_message or b"").decode(errors="replace").strip()
        raise RunFailed(f"query failed: {message}")


def assess(candidate: Candidate, ladder: Sequence[int], *, started: float) -> Evaluation:
    """The evaluation of a built candidate: budgets, then the knob bisection, then latency.

    The ladder's top value first: if its recall lower bound misses the target the
    build is ``recall_unreachable``. Otherwise bisect for the smallest value that meets
    it (recall is monotone in the knob), so about log2(len(ladder)) probes more. An
    IVFFlat top that probes every list (an exact scan) is measured last, and only when
    the bisection ends there.
    """
    if not ladder or list(ladder) != sorted(set(ladder)):
        raise ValueError(f"the knob ladder must be ascending and distinct, got {list(ladder)}")
    t, built = candidate.bench.target, candidate.built
    base = Evaluation(
        config=candidate.config,
        rows=candidate.bench.rows,
        build_seconds=built.seconds,  # None: failed; build_over: the budget it ran into
        index_bytes=built.index_bytes,
        table_bytes=built.table_bytes,
        probes=(),
        knob_value=None,
        recall=None,
        latency=None,
        reason=None,
        seconds=0.0,
        error=built.error,
    )

    def done(**changes: Any) -> Evaluation:
        return dataclasses.replace(base, seconds=time.perf_counter() - started, **changes)

    reason = candidate.over_budget()
    if reason is not None:
        return done(reason=reason)
    top = ladder[-1]
    probes: list[KnobProbe] = []
    # IVFFlat probing every list scans the whole table: the costliest probe by far (8-25 s
    # at 50k x 768) and all but certain to meet the bound, so it is only measured when
    # the bisection ends there; any other top is probed first, to prune early
    exhaustive = candidate.config.kind == "ivfflat" and top >= candidate.config.params["lists"]
    if not exhaustive:
        probes.append(candidate.recall(top))
        if not candidate.meets(top):
            return done(probes=tuple(probes), recall=candidate.recall_record(top),
                        reason="recall_unreachable")  # fmt: skip
    lo, hi = -1, len(ladder) - 1  # ladder[hi] meets the bound; ladder[lo] misses (-1: none)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probes.append(candidate.recall(ladder[mid]))
        if candidate.meets(ladder[mid]):
            hi = mid
        else:
            lo = mid
    if exhaustive and hi == len(ladder) - 1:  # the assumption is now the answer: verify it
        probes.append(candidate.recall(top))
        if not candidate.meets(top):
            return done(probes=tuple(probes), recall=candidate.recall_record(top),
                        reason="recall_unreachable")  # fmt: skip
    knob = ladder[hi]
    latency = candidate.latency(knob)
    over = t.latency_ms is not None and latency.percentile(t.latency) > t.latency_ms
    return done(probes=tuple(probes), knob_value=knob, recall=candidate.recall_record(knob),
                latency=latency, reason="latency_over" if over else None)  # fmt: skip


def assess_modes(candidate: Candidate, ladder: Sequence[int], *, started: float) -> Evaluation:
    """:func:`assess`, and for a filtered target once per iterative-scan mode the index
    kind has (a query-time setting: no rebuild); the best of them by the objective."""
    bench = candidate.bench
    if bench.filter is None:
        return assess(candidate, ladder, started=started)
    tried: list[Evaluation] = []
    for mode in iterative_scan_modes(candidate.config.kind, bench.target.iterative_scan):
        candidate.iterative_scan = mode
        tried.append(dataclasses.replace(assess(candidate, ladder, started=started),
                                         iterative_scan=mode))  # fmt: skip
        if tried[-1].reason in BUILD_REASONS:  # the build itself is out: no mode helps
            break
    best = best_of(bench.target, tried)
    candidate.iterative_scan = best.iterative_scan
    return dataclasses.replace(best, seconds=time.perf_counter() - started)


# reasons about the build, not the query: the same whichever iterative-scan mode
BUILD_REASONS = ("index_over", "build_over", "memory_over", "build_failed")


def evaluate_kept(
    bench: Bench,
    tables: TuneTables,
    config: Config,
    ladder: tuple[int, ...],
    *,
    on_step: Callable[[str], None] | None = None,
) -> tuple[Evaluation, KeptIndex | None]:
    """:func:`evaluate` that leaves the index in place: (evaluation, its index), the
    index None when the build failed or stopped at its budget."""
    started = time.perf_counter()
    with Candidate(bench, tables, config, on_step=on_step) as candidate:
        evaluation = assess_modes(candidate, ladder, started=started)
        kept = candidate.keep() if candidate.built.exists else None
    return evaluation, kept


def evaluate(
    bench: Bench,
    tables: TuneTables,
    config: Config,
    ladder: tuple[int, ...],
    *,
    on_step: Callable[[str], None] | None = None,
    keep: bool = False,
) -> Evaluation:
    """Build ``config``, check its budgets, bisect its query knob over ``ladder``, time it
    at the knob found; drop the index (``keep=True``: leave it, listed in
    ``tables.kept``; :func:`evaluate_kept` also returns it)."""
    if keep:
        return evaluate_kept(bench, tables, config, ladder, on_step=on_step)[0]
    started = time.perf_counter()
    with Candidate(bench, tables, config, on_step=on_step) as candidate:
        return assess_modes(candidate, ladder, started=started)
