"""Recall right after a write: a memory written on the primary, searched for on a standby.

Each probe inserts one memory through the agent mix's own memory_write statement (ids of
its own), notes the primary's WAL position once the commit returned, and at each delay
(0 ms: at once) searches a standby for the new row's nearest neighbours with its own
vector, in one statement that also reads how far the standby's replay is from that WAL
position. A row the search does not return is a miss, whatever the reason: that is what
an application reading its own write from a standby sees. Once every standby has caught
up, each probe's search runs again (``later_hit``): a miss then as well is the index's,
not replication's. The WAL position is read after the commit, so other writers' WAL may
follow the commit record: "not replayed" is a conservative reading.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...engine.operations import SESSION
from .ops import PROBE_SEQ_BASE, AgentOps
from .records import Probe

_SEARCH = (
    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::int8, "
    "%s::uuid IN (SELECT id FROM {memories} ORDER BY embedding {op} %s::vector LIMIT {k})"
)
_EXPIRES = 9  # memory_write's parameters: id, ..., embedding (5), ..., expires in (9)
_AGAIN = (
    "SELECT %s::uuid IN (SELECT id FROM {memories} ORDER BY embedding {op} %s::vector LIMIT {k})"
)


def _vector_text(encoded: bytes) -> str:
    """pgvector's binary form (int16 dim, int16 unused, float4[] big-endian) as text."""
    values = np.frombuffer(encoded[4:], dtype=">f4")
    return "[" + ",".join(f"{v:.9g}" for v in values.tolist()) + "]"


class Prober:
    """Open connections to the primary and each standby; :meth:`probe` one row."""

    def __init__(
        self,
        ops: AgentOps,
        *,
        primary: str,
        standbys: Sequence[str],
        names: Sequence[str],
        delays_ms: Sequence[float],
    ) -> None:
        self.ops = ops
        self.names = tuple(names)
        self.delays_ms = tuple(sorted(delays_ms))
        self._dsns = (primary, *standbys)
        self._conns: list[psycopg.Connection[Any]] = []
        self._search = sql.SQL(_SEARCH).format(
            memories=sql.SQL(ops.memories), op=sql.SQL(ops.operator), k=sql.Literal(ops.k)
        )
        self._again = sql.SQL(_AGAIN).format(
            memories=sql.SQL(ops.memories), op=sql.SQL(ops.operator), k=sql.Literal(ops.k)
        )
        self.written: list[tuple[int, int]] = []  # (seq, standby) of every probe written
        self._seqs: list[int] = []

    def open(self) -> None:
        try:
            for dsn in self._dsns:
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
                self._conns.append(conn)
                for name, value in self.ops.settings.items():
                    conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            self.ops.probe_write.setup(self._conns[0].pgconn, SESSION)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns = []

    def _seq(self, index: int) -> int:
        """The ``index``-th probe's memory_write sequence number: only rows that never
        expire, so the mix's memory_expire cannot delete a probe before its second look."""
        while len(self._seqs) <= index:
            seq = self._seqs[-1] + 1 if self._seqs else PROBE_SEQ_BASE
            while self.ops.probe_write.params(seq)[_EXPIRES] is not None:
                seq += 1
            self._seqs.append(seq)
        return self._seqs[index]

    def _row(self, seq: int) -> tuple[uuid.UUID, str]:
        row = self.ops.probe_write.params(seq)
        ident, vector = row[0], row[5]
        assert ident is not None and vector is not None
        return uuid.UUID(bytes=ident), _vector_text(vector)

    def probe(self, index: int, lag_of: Callable[[str], float | None]) -> list[Probe]:
        """Write probe ``index`` and search for it on standby ``index mod N`` at each delay."""
        seq = self._seq(index)
        standby = index % len(self.names)
        ident, vector = self._row(seq)
        primary, conn = self._conns[0], self._conns[1 + standby]
        self.ops.probe_write.execute(primary.pgconn, SESSION, seq)
        committed = time.perf_counter()
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        lsn = str(row[0])
        self.written.append((seq, standby))
        name = self.names[standby]
        out = []
        for delay in self.delays_ms:
            wait = committed + delay / 1000.0 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            found = conn.execute(self._search, (lsn, ident, vector)).fetchone()
            assert found is not None
            behind = None if found[0] is None else int(found[0])
            out.append(
                Probe(
                    standby=name,
                    delay_ms=delay,
                    since_commit_ms=round((sent - committed) * 1000.0, 3),
                    hit=bool(found[1]),
                    replayed=None if behind is None else behind <= 0,
                    behind_bytes=None if behind is None else max(0, behind),
                    replay_lag_s=lag_of(name),
                    later_hit=None,
                )
            )
        return out

    def again(self) -> dict[int, bool]:
        """Each written probe's search once more (after catch-up): seq -> found."""
        found: dict[int, bool] = {}
        for seq, standby in self.written:
            ident, vector = self._row(seq)
            row = self._conns[1 + standby].execute(self._again, (ident, vector)).fetchone()
            found[seq] = bool(row and row[0])
        return found
