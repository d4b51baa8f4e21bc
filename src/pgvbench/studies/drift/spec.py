"""The [drift] table: how long the writer churns the memories, at what rates, and how
many single-row updates the update-cost phases time."""

from __future__ import annotations

import dataclasses

from ...errors import SpecError
from ...spec.table import Table
from ..base import SpecContext

KEYS = [
    "duration_seconds",
    "insert_rate",
    "expire_rate",
    "interval_seconds",
    "queries",
    "ef_search",
    "update_samples",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftSpec:
    duration_seconds: float = 30.0
    insert_rate: float = 200.0
    expire_rate: float = 50.0
    interval_seconds: float = 5.0
    queries: int = 50
    ef_search: int = 40
    update_samples: int = 500


def parse(table: Table, ctx: SpecContext) -> DriftSpec:
    """Validate [drift]; the study queries memories through HNSW, so the experiment's one
    [[index]] must be an HNSW index."""
    t = table
    t.only(KEYS)
    duration = t.number("duration_seconds", default=30.0, minimum=1.0, maximum=86400.0)
    interval = t.number("interval_seconds", default=5.0, minimum=0.2, maximum=3600.0)
    if interval > duration:
        t.fail("interval_seconds", f"= {interval:g} exceeds duration_seconds = {duration:g}")
    spec = DriftSpec(
        duration_seconds=duration,
        insert_rate=t.number("insert_rate", default=200.0, minimum=0.0, maximum=1e6),
        expire_rate=t.number("expire_rate", default=50.0, minimum=0.0, maximum=1e6),
        interval_seconds=interval,
        queries=t.integer("queries", default=50, minimum=1, maximum=100_000),
        ef_search=t.integer("ef_search", default=40, minimum=1, maximum=1000),
        update_samples=t.integer("update_samples", default=500, minimum=1, maximum=10_000_000),
    )
    # An agent experiment builds exactly one [[index]]; the spec parser refuses any other
    # count with its own message, so only that one index is checked here.
    if len(ctx.indexes) == 1 and ctx.indexes[0].kind != "hnsw":
        raise SpecError(
            f"{ctx.where}: [drift] measures recall through an HNSW index on memories, but the "
            f'[[index]] is {ctx.indexes[0].label}; set kind = "hnsw" in [[index]]'
        )
    return spec
