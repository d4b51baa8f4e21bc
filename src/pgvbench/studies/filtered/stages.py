"""How a comparison sets its strategies up: which groups coexist (set up and timed
together), each group's objects created and recorded (or why they failed), and the rows
of strategies that do not apply to a predicate or whose setup failed."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ...db.schema import relation_bytes
from . import notes
from .measure import empty_row
from .predicates import Predicate
from .records import FilteredRow, StrategySetup
from .strategies import HNSW_STRATEGIES, Plan, Setup, failed_plans, not_applicable
from .workload import Bucket

log = logging.getLogger(__name__)
_COEXIST = ("hnsw", "partitioned")  # groups whose queries cannot take each other's indexes


def not_applicable_rows(
    strategies: Sequence[str], predicates: Sequence[Predicate], buckets: Sequence[Bucket]
) -> list[FilteredRow]:
    """A row per strategy and bucket of a predicate it does not apply to, saying why."""
    out: list[FilteredRow] = []
    for pred in predicates:
        for s in strategies:
            why = not_applicable(s, pred)
            if why is None:
                continue
            out += [
                empty_row(s, b, s == "partial_hot", why, agent_data=False, measured=False)
                for b in buckets
                if b.info.predicate == pred.name
            ]
    return out


def phases(groups_in_order: Sequence[str]) -> list[list[str]]:
    """Groups set up together: the HNSW group and the partitioned copy (another table, so
    neither's plans can take the other's indexes); every other group alone."""
    out: list[list[str]] = []
    together = [g for g in groups_in_order if g in _COEXIST]
    for g in groups_in_order:
        if g not in _COEXIST:
            out.append([g])
        elif g == together[0]:
            out.append(together)
    return out


def group_of(strategy: str) -> str:
    return "hnsw" if strategy in HNSW_STRATEGIES else strategy


@dataclasses.dataclass(frozen=True, kw_only=True)
class Staged:
    """One group's objects, created and awaiting measurement (or why they failed)."""

    group: str
    setup: Setup
    plans: list[Plan]
    seconds: float
    index_bytes: int
    setup_note: list[str]

    def records(self, wanted: Sequence[str]) -> list[StrategySetup]:
        """One record per strategy: its first plan's settings, every predicate's SQL."""
        objects = self.setup.qualified()
        by_strategy: dict[str, list[Plan]] = {}
        for plan in self.plans or failed_plans(self.group, wanted):
            by_strategy.setdefault(plan.strategy, []).append(plan)
        return [
            StrategySetup(
                strategy=strategy,
                objects=objects,
                setup_seconds=round(self.seconds, 3),
                index_bytes=self.index_bytes,
                settings=dict(plans[0].settings),
                sql="\n".join(dict.fromkeys(plan.sql for plan in plans)),
                notes=[
                    *([plans[0].note] if plans[0].note else []),
                    *self.setup_note,
                    *self.setup.notices,
                ],
            )
            for strategy, plans in by_strategy.items()
        ]

    def failed_rows(
        self,
        wanted: Sequence[str],
        buckets: Sequence[Bucket],
        predicates: Sequence[Predicate],
    ) -> list[FilteredRow]:
        if self.plans:
            return []
        by_name = {p.name: p for p in predicates}
        return [
            empty_row(plan.strategy, bucket, plan.hot_only, self.setup_note[0])
            for plan in failed_plans(self.group, wanted)
            for bucket in buckets
            if not_applicable(plan.strategy, by_name[bucket.info.predicate]) is None
        ]


def stage(
    conn: psycopg.Connection[Any],
    schema: str,
    group: str,
    wanted: Sequence[str],
    build: Callable[[str, Setup], list[Plan]],
) -> Staged:
    """Create what ``group`` needs; a failed setup is kept with its reason."""
    setup = Setup(conn, schema)
    started = time.perf_counter()
    plans: list[Plan] = []
    setup_note: list[str] = []
    index_bytes = 0
    try:
        plans = build(group, setup)
        index_bytes = sum(relation_bytes(conn, schema, n) for n in setup.indexes)
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc)
        setup_note.append(notes.setup_failed(message))
        log.warning("filtered %s: setup failed: %s", group, message)
    setup.stop_listening()
    return Staged(
        group=group, setup=setup, plans=plans, seconds=time.perf_counter() - started,
        index_bytes=index_bytes, setup_note=setup_note,
    )  # fmt: skip
