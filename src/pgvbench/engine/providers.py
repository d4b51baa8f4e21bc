"""Connection strategies ("pooling"): how clients get a connection for each operation.

direct          one dedicated connection per client, opened before the clock starts
connect_per_op  a new connection for every operation (the anti-pattern, for its cost)
psycopg_pool    clients share psycopg_pool.ConnectionPool(min_size, max_size, ...)
pgbouncer       direct connections to a PgBouncer in front of the server (the DSN
                and ConnStyle come from the PgBouncer manager)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import psycopg
from psycopg import pq as libpq
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from .operations import ConnStyle, Operation
from .pq import ConnectionLost, OperationFailed

CONNECT_TIMEOUT_S = 5


class ServerUnreachable(Exception):
    """No new connection can be made: the run cannot go on."""


class ConnectionProvider(Protocol):
    style: ConnStyle

    def open(self, clients: int) -> None: ...

    def connection(self, client: int) -> contextlib.AbstractContextManager[libpq.abc.PGconn]: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int] | None: ...


def _connect(dsn: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise ServerUnreachable(str(exc).strip().splitlines()[0] if str(exc) else "") from None


class DirectProvider:
    """One dedicated connection per client; a broken one is replaced once."""

    def __init__(self, dsn: str, operation: Operation, style: ConnStyle) -> None:
        self.dsn = dsn
        self.operation = operation
        self.style = style
        self._conns: list[psycopg.Connection[Any] | None] = []

    def _new(self) -> psycopg.Connection[Any]:
        conn = _connect(self.dsn)
        try:
            self.operation.setup(conn.pgconn, self.style)
        except (OperationFailed, ConnectionLost):
            conn.close()
            raise
        return conn

    def open(self, clients: int) -> None:
        self._conns = [self._new() for _ in range(clients)]

    @contextlib.contextmanager
    def connection(self, client: int) -> Iterator[libpq.abc.PGconn]:
        conn = self._conns[client]
        if conn is None:
            conn = self._conns[client] = self._new()  # ServerUnreachable propagates
        try:
            yield conn.pgconn
        except ConnectionLost:
            self._conns[client] = None
            conn.close()
            raise

    def close(self) -> None:
        for conn in self._conns:
            if conn is not None:
                conn.close()
        self._conns = []

    def stats(self) -> dict[str, int] | None:
        return None


class ConnectPerOpProvider:
    """A fresh connection (and session setup) for every operation."""

    def __init__(self, dsn: str, operation: Operation, style: ConnStyle) -> None:
        self.dsn = dsn
        self.operation = operation
        self.style = style
        self._connects = 0
        self._lock = threading.Lock()

    def open(self, clients: int) -> None:
        _connect(self.dsn).close()  # fail fast before the clock starts

    @contextlib.contextmanager
    def connection(self, client: int) -> Iterator[libpq.abc.PGconn]:
        conn = _connect(self.dsn)
        with self._lock:
            self._connects += 1
        try:
            self.operation.setup(conn.pgconn, self.style)
            yield conn.pgconn
        finally:
            conn.close()

    def close(self) -> None:
        return None

    def stats(self) -> dict[str, int] | None:
        return {"connections_opened": self._connects}


class PsycopgPoolProvider:
    """Clients share one psycopg_pool.ConnectionPool, as threads of one app process do."""

    def __init__(
        self,
        dsn: str,
        operation: Operation,
        style: ConnStyle,
        *,
        min_size: int,
        max_size: int,
        timeout_s: float,
        max_waiting: int,
    ) -> None:
        self.dsn = dsn
        self.operation = operation
        self.style = style
        self.min_size = min_size
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self._pool: ConnectionPool[Any] | None = None

    def open(self, clients: int) -> None:
        def configure(conn: psycopg.Connection[Any]) -> None:
            self.operation.setup(conn.pgconn, self.style)

        self._pool = ConnectionPool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout_s,
            max_waiting=self.max_waiting,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=configure,
            open=False,
            name="pgvbench",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        except PoolTimeout as exc:
            self._pool.close()
            raise ServerUnreachable(
                f"the pool could not open {self.min_size} connections: {exc}"
            ) from None
        self._pool.pop_stats()  # measure the run, not the pool's start-up

    @contextlib.contextmanager
    def connection(self, client: int) -> Iterator[libpq.abc.PGconn]:
        assert self._pool is not None
        try:
            conn = self._pool.getconn()
        except TooManyRequests:
            raise OperationFailed("pool queue full (max_waiting reached)") from None
        except PoolTimeout:
            raise OperationFailed(f"pool timeout after {self.timeout_s:g} s") from None
        try:
            yield conn.pgconn
        finally:
            self._pool.putconn(conn)  # the pool discards a broken connection

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def stats(self) -> dict[str, int] | None:
        if self._pool is None:
            return None
        stats = self._pool.get_stats()
        keep = (
            "requests_num",
            "requests_queued",
            "requests_wait_ms",
            "requests_errors",
            "requests_waiting",
            "connections_num",
            "connections_errors",
            "usage_ms",
            "pool_size",
            "pool_available",
            "returns_bad",
        )
        return {k: int(v) for k, v in stats.items() if k in keep}
