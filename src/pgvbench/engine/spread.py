"""Reads spread over several servers (a primary's hot standbys).

:class:`SpreadProvider` gives client ``i`` a dedicated connection to ``dsns[i]``: the
caller decides the mapping, e.g. client i on standby ``i mod N`` (per-client
assignment), or every client on one multi-host DSN with ``load_balance_hosts=random``,
where libpq picks a server per connection. :class:`ByServer` keeps one latency histogram
and count per server: a closed-loop client's operations are ``seq = first_seq + client
+ j * clients``, so the client, and through its connection the server, follows from
``seq``, and the engine's exact per-kind accounting does the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq as libpq

from .operations import SESSION, ConnStyle, Operation
from .pq import ConnectionLost, OperationFailed
from .providers import CONNECT_TIMEOUT_S, ServerUnreachable

OTHER = "other"  # a connection to a server not in the list (libpq chose another address)


class SpreadProvider:
    """One dedicated connection per client, client ``i`` on ``dsns[i]``; a broken one is
    replaced once, on the same DSN."""

    def __init__(
        self, dsns: Sequence[str], operation: Operation, style: ConnStyle = SESSION
    ) -> None:
        if not dsns:
            raise ValueError("SpreadProvider needs one DSN per client")
        self.dsns = tuple(dsns)
        self.operation = operation
        self.style = style
        self._conns: list[psycopg.Connection[Any] | None] = []

    def _new(self, client: int) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.dsns[client], autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.OperationalError as exc:
            text = str(exc).strip().splitlines()
            raise ServerUnreachable(text[0] if text else "") from None
        try:
            self.operation.setup(conn.pgconn, self.style)
        except (OperationFailed, ConnectionLost):
            conn.close()
            raise
        return conn

    def open(self, clients: int) -> None:
        if clients > len(self.dsns):
            raise ValueError(f"{clients} clients but DSNs for {len(self.dsns)}")
        self._conns = []
        try:
            for client in range(clients):
                self._conns.append(self._new(client))
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def connection(self, client: int) -> Iterator[libpq.abc.PGconn]:
        conn = self._conns[client]
        if conn is None:
            conn = self._conns[client] = self._new(client)
        try:
            yield conn.pgconn
        except ConnectionLost:
            self._conns[client] = None
            conn.close()
            raise

    def address(self, client: int) -> tuple[str, str] | None:
        """(host, port) client ``client`` is connected to, as libpq reports them."""
        if client >= len(self._conns):
            return None
        conn = self._conns[client]
        if conn is None:
            return None
        pgconn = conn.pgconn
        return pgconn.host.decode(), pgconn.port.decode()

    def close(self) -> None:
        for conn in self._conns:
            if conn is not None:
                conn.close()
        self._conns = []

    def stats(self) -> dict[str, int] | None:
        return None


class ByServer:
    """``operation`` with its histograms kept per server instead of per kind: the engine
    asks ``kind(seq)``, which is the index in ``servers`` of the server the operation's
    client reads from (``server_of(client)``). Closed loop only (an open-loop operation
    goes to whichever client is free)."""

    def __init__(
        self,
        operation: Operation,
        *,
        servers: Sequence[str],
        clients: int,
        server_of: Callable[[int], int],
        first_seq: int = 0,
    ) -> None:
        self.operation = operation
        self.name = operation.name
        self.names: tuple[str, ...] = (*servers, OTHER)
        self.clients = clients
        self.first_seq = first_seq
        self._server_of = server_of

    def kind(self, seq: int) -> int:
        index = self._server_of((seq - self.first_seq) % self.clients)
        return index if 0 <= index < len(self.names) - 1 else len(self.names) - 1

    def setup(self, pgconn: libpq.abc.PGconn, style: ConnStyle) -> None:
        self.operation.setup(pgconn, style)

    def execute(self, pgconn: libpq.abc.PGconn, style: ConnStyle, seq: int) -> int:
        return self.operation.execute(pgconn, style, seq)
