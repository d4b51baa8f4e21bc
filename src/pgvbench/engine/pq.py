"""The hot path: one operation over libpq with as little Python as possible.

The load engine talks to libpq through psycopg's ``pgconn`` (the C wrapper in
psycopg-binary, which releases the GIL while it waits), with parameters encoded
once up front. A measured per-operation client cost of ~10 us CPU keeps the client
from competing with the server for the same cores (fidelity vs pgbench >= 0.9).
"""

from __future__ import annotations

import select
from collections.abc import Sequence

from psycopg import pq
from psycopg import pq as libpq

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
Params = Sequence[bytes]


class OperationFailed(Exception):
    """The server refused or aborted one operation (counted, not fatal)."""


class ConnectionLost(Exception):
    """The connection is broken; the caller may reconnect or give up."""


def _check(pgconn: pq.abc.PGconn, result: pq.abc.PGresult | None) -> int:
    if result is None or result.status not in _OK:
        if pgconn.status == pq.ConnStatus.BAD:
            raise ConnectionLost(_message(pgconn, result))
        raise OperationFailed(_message(pgconn, result))
    return int(result.ntuples)


def _message(pgconn: pq.abc.PGconn, result: pq.abc.PGresult | None) -> str:
    raw = result.error_message if result is not None else pgconn.error_message
    text = raw.decode("utf-8", "replace").strip() if raw else ""
    return text.splitlines()[0] if text else "unknown libpq error"


def prepare(pgconn: pq.abc.PGconn, name: bytes, sql: bytes, types: Sequence[int]) -> None:
    _check(pgconn, pgconn.prepare(name, sql, list(types)))


def run_simple(pgconn: pq.abc.PGconn, sql: bytes) -> None:
    _check(pgconn, pgconn.exec_(sql))


def exec_prepared(
    pgconn: pq.abc.PGconn, name: bytes, params: Params, formats: Sequence[int]
) -> int:
    """Run a prepared statement; return the number of rows."""
    return _check(pgconn, pgconn.exec_prepared(name, params, formats, 1))


def exec_params(
    pgconn: pq.abc.PGconn, sql: bytes, params: Params, types: Sequence[int], formats: Sequence[int]
) -> int:
    """Run an unprepared statement (parsed every time, as through a transaction pooler)."""
    return _check(pgconn, pgconn.exec_params(sql, params, types, formats, 1))


def _next_result(pgconn: libpq.abc.PGconn) -> libpq.abc.PGresult | None:
    """PQgetResult without holding the GIL while the server works.

    psycopg's get_result() keeps the GIL when it has to wait (psycopg itself only calls
    it once input is ready), which serialised every client thread behind one waiting
    for its result. Wait on the socket with select() - which releases the GIL - until
    libpq has a whole result, then take it.
    """
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    return pgconn.get_result()


def _set_local_sql(n: int) -> bytes:
    calls = ", ".join(f"set_config(${2 * i + 1}, ${2 * i + 2}, true)" for i in range(n))
    return f"SELECT {calls}".encode()


def exec_in_transaction(
    pgconn: pq.abc.PGconn,
    local_settings: Sequence[tuple[bytes, bytes]],
    sql: bytes,
    params: Params,
    types: Sequence[int],
    formats: Sequence[int],
) -> int:
    """BEGIN; SET LOCAL ...; statement; COMMIT in one pipelined round trip.

    Under transaction pooling a session SET would leak to other clients or vanish, so
    query-time settings travel inside the transaction (``set_config(.., true)`` is
    SET LOCAL with parameters).
    """
    pgconn.enter_pipeline_mode()
    try:
        pgconn.send_query_params(b"BEGIN", None)
        if local_settings:  # all SET LOCALs in one statement: one parse, one execute
            pgconn.send_query_params(
                _set_local_sql(len(local_settings)), [x for pair in local_settings for x in pair]
            )
        pgconn.send_query_params(sql, params, list(types), list(formats), 1)
        pgconn.send_query_params(b"COMMIT", None)
        pgconn.pipeline_sync()
        rows = 0
        failure: str | None = None
        statement_index = 0
        target = 2 if local_settings else 1  # position of the measured statement
        while True:
            result = _next_result(pgconn)
            if result is None:
                if pgconn.status == pq.ConnStatus.BAD:
                    raise ConnectionLost(_message(pgconn, None))
                continue
            status = result.status
            if status == pq.ExecStatus.PIPELINE_SYNC:
                break
            if status == pq.ExecStatus.PIPELINE_ABORTED:
                continue
            if status not in _OK and failure is None:
                failure = _message(pgconn, result)
            elif statement_index == target:
                rows = int(result.ntuples)
            statement_index += 1
    finally:
        if pgconn.status != pq.ConnStatus.BAD:
            pgconn.exit_pipeline_mode()
    if failure is not None:
        if pgconn.status == pq.ConnStatus.BAD:
            raise ConnectionLost(failure)
        if pgconn.transaction_status == pq.TransactionStatus.INERROR:
            run_simple(pgconn, b"ROLLBACK")  # the explicit BEGIN left an aborted block
        raise OperationFailed(failure)
    return rows
