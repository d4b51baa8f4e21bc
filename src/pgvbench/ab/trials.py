"""The measurements of ``pgvbench ab``: plan checks, recall, and the interleaved windows.

Each round runs arm A and arm B for one window each, in an order drawn per round
(analysis.interleave.schedule); both arms of a round send the same query vectors. What
comes back are typed records; the sentences about them are report.py's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psutil
import psycopg
from pgvector.psycopg import register_vector

from ..engine.operations import SESSION, SqlOperation, encode_vector
from ..engine.providers import DirectProvider
from ..engine.threaded import LoadShape, run_load
from ..errors import RunFailed
from ..instrument.statements import StatementCollector
from ..server.connection import connect
from ..workloads.vector import check_plan
from .spec import KNN_PLACEHOLDER

WARMUP_S = 0.2  # at most, per window: the arm's statement running again after the other's
ROUND_STRIDE = 997  # query offset between rounds: each round sends other vectors


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm:
    """One variant as the server sees it."""

    name: str  # "A" or "B"
    table_ident: str  # schema-qualified, quoted
    table: str  # bare name (pg_stat_statements pattern)
    index_name: str | None
    settings: Mapping[str, str]
    wrapper: str | None  # [ab] sql with {knn}

    def statement(self, *, operator: str, k: int, placeholder: str) -> str:
        knn = (
            f"SELECT id FROM {self.table_ident} ORDER BY embedding {operator} {placeholder} "
            f"LIMIT {k}"
        )
        if self.wrapper is None:
            return knn
        # psycopg reads % as a placeholder: a literal one in the user's wrapper is doubled
        wrapper = self.wrapper if placeholder.startswith("$") else self.wrapper.replace("%", "%%")
        return wrapper.replace(KNN_PLACEHOLDER, knn)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanCheck:
    arm: str
    problem: str | None  # None: the plan uses the arm's index (or no index, for "none")
    plan_text: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Window:
    """One arm's measured window in one round."""

    round: int
    position: int  # 0: ran first in its round
    arm: str
    qps: float
    p50_ms: float | None
    p99_ms: float | None
    operations: int
    errors: int
    blocks_per_query: float | None
    started_s: float  # since the first window started
    # CPU time of the arm's backends per query (server on this host only): the work per
    # query, hardly moved by a neighbour taking the CPU in between
    cpu_ms_per_query: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Trials:
    schedule: tuple[tuple[str, ...], ...]
    windows: tuple[Window, ...]
    blocks_available: bool
    cpu_available: bool
    measured_s: float  # the windows' measured time, warm-ups excluded
    wall_s: float

    def values(self, arm: str, metric: str) -> list[float | None]:
        """Per round, the arm's value of ``metric`` (qps, p50_ms, p99_ms, blocks_per_query)."""
        by_round = {w.round: w for w in self.windows if w.arm == arm}
        return [
            getattr(by_round[r], metric) if r in by_round else None
            for r in range(len(self.schedule))
        ]


class _KeptProvider(DirectProvider):
    """Each arm keeps its connections from window to window: no window pays for new
    backends (cold caches, a fresh plan), and the server sees one steady client per arm."""

    def open(self, clients: int) -> None:
        if len(self._conns) != clients:
            super().close()
            super().open(clients)

    def close(self) -> None:
        return None  # until close_all, after the last round

    def close_all(self) -> None:
        super().close()

    def backend_pids(self) -> list[int]:
        return [conn.info.backend_pid for conn in self._conns if conn is not None]


def _backend_cpu_s(pids: Sequence[int], postmaster_pid: int) -> float | None:
    """User + system CPU seconds of these backends (children of ``postmaster_pid`` on this
    host); None when one cannot be read (the time would be partial)."""
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.ppid() != postmaster_pid:
                return None  # not this server's backend: nothing to read here
            times = process.cpu_times()
        except psutil.Error:
            return None
        total += times.user + times.system
    return total


def _session(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> None:
    for name, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def check_arm_plan(dsn: str, arm: Arm, *, operator: str, k: int, vector: np.ndarray) -> PlanCheck:
    """EXPLAIN the arm's statement under its settings: does it use its index?"""
    with connect(dsn) as conn:
        register_vector(conn)
        _session(conn, arm.settings)
        stmt = arm.statement(operator=operator, k=k, placeholder="%b")
        with conn.cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + stmt, (vector,))
            row = cur.fetchone()
            assert row is not None
            raw = row[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            cur.execute("EXPLAIN " + stmt, (vector,))
            text = "\n".join(str(r[0]) for r in cur.fetchall())
    return PlanCheck(arm=arm.name, problem=check_plan(plan, arm.index_name), plan_text=text)


def returned_ids(
    dsn: str, arm: Arm, *, operator: str, k: int, queries: np.ndarray
) -> list[list[int]]:
    """The first column of the arm's statement for each recall query."""
    with connect(dsn) as conn:
        register_vector(conn)
        _session(conn, arm.settings)
        stmt = arm.statement(operator=operator, k=k, placeholder="%b")
        out: list[list[int]] = []
        with conn.cursor(binary=True) as cur:
            for vector in queries:
                cur.execute(stmt, (vector,), prepare=True)
                out.append([int(row[0]) for row in cur.fetchall()])
    return out


def run_trials(
    dsn: str,
    arms: Sequence[Arm],
    *,
    schedule: Sequence[Sequence[str]],
    operator: str,
    k: int,
    vectors: np.ndarray,
    vector_oid: int,
    clients: int,
    window_s: float,
    postmaster_pid: int | None = None,
    on_round: Callable[[int, Sequence[Window]], None] | None = None,
) -> Trials:
    """Every round of ``schedule``, each arm one window; raise RunFailed if the server
    went away mid-window."""
    params = [[encode_vector(v)] for v in vectors]
    # connections are kept between windows: a short window needs only a short warm-up
    warmup = min(WARMUP_S, window_s / 4)
    ops = {
        arm.name: SqlOperation(
            name=f"ab_{arm.name.lower()}",
            sql=arm.statement(operator=operator, k=k, placeholder="$1"),
            types=[vector_oid],
            params=params,
            settings=arm.settings,
        )
        for arm in arms
    }
    providers = {name: _KeptProvider(dsn, op, SESSION) for name, op in ops.items()}
    by_name = {arm.name: arm for arm in arms}
    windows: list[Window] = []
    blocks_available = True
    measured = 0.0
    started = time.perf_counter()
    try:
        with connect(dsn) as stats_conn:
            for round_no, order in enumerate(schedule):
                done: list[Window] = []
                for position, name in enumerate(order):
                    arm = by_name[name]
                    op = ops[name]
                    collector = StatementCollector(stats_conn, arm.table)
                    blocks_available = blocks_available and collector.available
                    provider = providers[name]
                    provider.open(clients)  # run_load's open is then a no-op
                    pids = provider.backend_pids()
                    cpu_before = _backend_cpu_s(pids, postmaster_pid) if postmaster_pid else None
                    collector.start()
                    at = time.perf_counter() - started
                    outcome = run_load(
                        op,
                        providers[name],
                        LoadShape(
                            clients=clients,
                            warmup_s=warmup,
                            duration_s=window_s,
                            first_seq=round_no * ROUND_STRIDE,
                        ),
                        probe_dsn=dsn,
                    )
                    stats = collector.stop()
                    cpu_after = (
                        _backend_cpu_s(pids, postmaster_pid)
                        if cpu_before is not None and postmaster_pid
                        else None
                    )
                    if outcome.aborted:
                        raise RunFailed(
                            f"arm {name}, round {round_no + 1}: the connection to the server was "
                            f"lost ({outcome.aborted})"
                        )
                    measured += outcome.duration_s
                    hist = outcome.latency
                    window = Window(
                        round=round_no,
                        position=position,
                        arm=name,
                        qps=round(outcome.qps, 3),
                        p50_ms=hist.percentile_ms(50.0) if hist.count else None,
                        p99_ms=hist.percentile_ms(99.0) if hist.count else None,
                        operations=outcome.operations,
                        errors=outcome.errors,
                        blocks_per_query=(
                            round(
                                stats.shared_blks_hit_per_call + stats.shared_blks_read_per_call, 4
                            )
                            if stats is not None
                            else None
                        ),
                        started_s=round(at, 3),
                        cpu_ms_per_query=_per_query_ms(
                            cpu_before, cpu_after, outcome.operations, warmup, window_s
                        ),
                    )
                    done.append(window)
                windows.extend(done)
                if on_round is not None:
                    on_round(round_no, done)
    finally:
        for provider in providers.values():
            provider.close_all()
    return Trials(
        cpu_available=all(w.cpu_ms_per_query is not None for w in windows),
        schedule=tuple(tuple(o) for o in schedule),
        windows=tuple(windows),
        blocks_available=blocks_available,
        measured_s=round(measured, 3),
        wall_s=round(time.perf_counter() - started, 3),
    )


def _per_query_ms(
    before: float | None, after: float | None, operations: int, warmup: float, window: float
) -> float | None:
    """CPU ms per query over the window. The reading spans the warm-up too: its queries
    are counted in at the window's rate (the engine reports the measured ones only)."""
    if before is None or after is None or operations <= 0:
        return None
    return round((after - before) * 1000.0 / operations / ((warmup + window) / window), 6)
