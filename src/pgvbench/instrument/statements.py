"""pg_stat_statements deltas for the statements of one phase.

Counters are read before and after and subtracted; pgvbench never resets the
view, so it does not disturb anyone else's statistics on a shared server.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg

from ..results import StatementStats


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    calls: int
    exec_ms: float
    hit: int
    read: int


class StatementCollector:
    """Tracks statements whose text contains ``pattern`` (e.g. the table name)."""

    def __init__(self, conn: psycopg.Connection[Any], pattern: str) -> None:
        self.conn = conn
        self.pattern = pattern
        self.available = self._check()
        self._before: _Snapshot | None = None

    def _check(self) -> bool:
        try:
            self.conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        except psycopg.Error:
            return False
        return True

    def _snapshot(self) -> _Snapshot:
        row = self.conn.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0), "
            "coalesce(sum(shared_blks_hit), 0), coalesce(sum(shared_blks_read), 0) "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND query LIKE %s AND query NOT LIKE 'EXPLAIN%%'",
            (f"%{self.pattern}%",),
        ).fetchone()
        assert row is not None
        return _Snapshot(int(row[0]), float(row[1]), int(row[2]), int(row[3]))

    def start(self) -> None:
        if self.available:
            self._before = self._snapshot()

    def stop(self) -> StatementStats | None:
        if not self.available or self._before is None:
            return None
        after = self._snapshot()
        before, self._before = self._before, None
        calls = after.calls - before.calls
        if calls <= 0:
            return None
        return StatementStats(
            calls=calls,
            mean_exec_ms=(after.exec_ms - before.exec_ms) / calls,
            shared_blks_hit_per_call=(after.hit - before.hit) / calls,
            shared_blks_read_per_call=(after.read - before.read) / calls,
        )
