"""The connection strategies of a load point: a provider per strategy, PgBouncer started
and stopped around it, and the pool counters read before and after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from . import point_notes
from .engine.operations import SESSION, TRANSACTION_POOLED, ConnStyle, Operation
from .engine.providers import (
    ConnectionProvider,
    ConnectPerOpProvider,
    DirectProvider,
    PsycopgPoolProvider,
)
from .server.pgbouncer import PgBouncer
from .spec.model import PoolingSpec

# psycopg_pool's get_stats() mixes gauges (a level now) with counters (since the last pop)
POOL_GAUGES = frozenset({"pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting"})


def sum_pool_stats(stats: list[dict[str, int] | None]) -> dict[str, int] | None:
    """Pool counters summed over windows; gauges keep the last window's level."""
    present = [s for s in stats if s is not None]
    if not present:
        return None
    total: dict[str, int] = {}
    for s in present:
        for key, value in s.items():
            total[key] = value if key in POOL_GAUGES else total.get(key, 0) + value
    return total


@contextlib.contextmanager
def open_provider(
    dsn: str,
    op: Operation,
    pooling: PoolingSpec,
    variant: dict[str, Any],
    clients: int,
    notes: list[str],
) -> Iterator[tuple[ConnectionProvider, PgBouncer | None]]:
    """The connection provider of one strategy, with PgBouncer started if needed."""
    if pooling.strategy == "direct":
        yield DirectProvider(dsn, op, SESSION), None
    elif pooling.strategy == "connect_per_op":
        yield ConnectPerOpProvider(dsn, op, ConnStyle(prepared=False)), None
    elif pooling.strategy == "psycopg_pool":
        yield (
            PsycopgPoolProvider(
                dsn,
                op,
                SESSION,
                min_size=variant["min_size"],
                max_size=variant["max_size"],
                timeout_s=variant["timeout_s"],
                max_waiting=variant["max_waiting"],
            ),
            None,
        )
    else:
        mode = variant["pool_mode"]
        bouncer = PgBouncer.from_dsn(
            dsn, pool_mode=mode, pool_size=variant["pool_size"], clients=clients
        )
        bouncer.start()
        try:
            style = TRANSACTION_POOLED if mode == "transaction" else ConnStyle(prepared=False)
            notes.append(point_notes.through_pgbouncer(mode, style.label))
            yield DirectProvider(bouncer.dsn(), op, style), bouncer
        finally:
            bouncer.stop()


def bouncer_stats(bouncer: PgBouncer | None) -> dict[str, int] | None:
    if bouncer is None:
        return None
    for row in bouncer.show_stats():
        if row.get("database") == bouncer.dbname:
            return {k: int(v) for k, v in row.items() if isinstance(v, int)}
    return None


def bouncer_delta(
    before: dict[str, int] | None, bouncer: PgBouncer | None
) -> dict[str, int] | None:
    after = bouncer_stats(bouncer)
    if before is None or after is None:
        return None
    return {
        "transactions": after.get("total_xact_count", 0) - before.get("total_xact_count", 0),
        # time clients waited for a server connection, as psycopg_pool's requests_wait_ms
        "requests_wait_ms": (after.get("total_wait_time", 0) - before.get("total_wait_time", 0))
        // 1000,
    }
