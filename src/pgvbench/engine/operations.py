"""Operations the load engine drives, and how they meet a connection.

An operation is SQL plus a pre-encoded parameter stream. ``ConnStyle`` says what the
connection path allows: named prepared statements and session SETs (a dedicated
connection, a psycopg pool, PgBouncer in session mode), or neither (PgBouncer in
transaction mode: every statement parsed anew, settings as SET LOCAL inside its
own transaction).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
from psycopg import pq as libpq

from . import pq

INT4_OID = 23


@dataclasses.dataclass(frozen=True)
class ConnStyle:
    prepared: bool = True  # named server-side prepared statements survive between operations
    session_settings: bool = True  # a SET lasts for the session (False: SET LOCAL per txn)

    @property
    def label(self) -> str:
        return "prepared, session SET" if self.prepared else "unprepared, SET LOCAL per txn"


SESSION = ConnStyle()
TRANSACTION_POOLED = ConnStyle(prepared=False, session_settings=False)


class Operation(Protocol):
    """What the engine drives; ``setup`` runs once per new connection.

    ``names`` lists the kinds of operation it performs and ``kind(seq)`` says which one
    the ``seq``-th operation is, so the engine keeps a latency histogram per kind (a
    weighted mix is one Operation with several kinds).
    """

    name: str
    names: tuple[str, ...]

    def kind(self, seq: int) -> int: ...

    def setup(self, pgconn: libpq.abc.PGconn, style: ConnStyle) -> None: ...

    def execute(self, pgconn: libpq.abc.PGconn, style: ConnStyle, seq: int) -> int: ...


ParamSource = Callable[[int], Sequence[bytes | None]]


class ParamOperation:
    """A parameterised statement whose parameters are computed from ``seq``.

    ``params(seq)`` must be deterministic and cheap (pre-encode what you can); entries
    are bytes in the format given by ``formats`` (1 binary, 0 text) or None for NULL.
    """

    def __init__(
        self,
        *,
        name: str,
        sql: str,
        types: Sequence[int],
        formats: Sequence[int],
        params: ParamSource,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        if len(types) != len(formats):
            raise ValueError("types and formats must have one entry per parameter")
        self.name = name
        self.names: tuple[str, ...] = (name,)
        self.sql = sql.encode()
        self.types = list(types)
        self.formats = list(formats)
        self.params = params
        self.settings = dict(settings or {})
        self._local = [(k.encode(), v.encode()) for k, v in self.settings.items()]
        self._statement = f"pgvb_{name}".encode()

    def kind(self, seq: int) -> int:
        return 0

    def setup(self, pgconn: libpq.abc.PGconn, style: ConnStyle) -> None:
        if style.session_settings:
            for key, value in self._local:
                pq.exec_params(
                    pgconn, b"SELECT set_config($1, $2, false)", [key, value], [0, 0], [0, 0]
                )
        if style.prepared:
            pq.prepare(pgconn, self._statement, self.sql, self.types)

    def execute(self, pgconn: libpq.abc.PGconn, style: ConnStyle, seq: int) -> int:
        params = self.params(seq)
        if not style.session_settings:
            return pq.exec_in_transaction(
                pgconn,
                self._local,
                self.sql,
                params,  # type: ignore[arg-type]
                self.types,
                self.formats,
            )
        if style.prepared:
            return pq.exec_prepared(pgconn, self._statement, params, self.formats)  # type: ignore[arg-type]
        return pq.exec_params(pgconn, self.sql, params, self.types, self.formats)  # type: ignore[arg-type]


class MixOperation:
    """A weighted mix of operations; which one runs for ``seq`` is fixed by the seed."""

    def __init__(
        self, parts: Sequence[tuple[Operation, float]], *, seed: int, table_size: int = 1 << 16
    ) -> None:
        parts = [(op, w) for op, w in parts if w > 0]
        if not parts:
            raise ValueError("a mix needs at least one operation with a positive weight")
        self.ops = [op for op, _ in parts]
        self.name = "mix"
        self.names = tuple(n for op in self.ops for n in op.names)
        weights = np.array([w for _, w in parts], dtype=np.float64)
        rng = np.random.default_rng(seed)
        self._choice = rng.choice(len(self.ops), size=table_size, p=weights / weights.sum())
        offsets = np.cumsum([0] + [len(op.names) for op in self.ops])
        self._offsets = [int(x) for x in offsets]

    def kind(self, seq: int) -> int:
        index = int(self._choice[seq % len(self._choice)])
        return self._offsets[index] + self.ops[index].kind(seq)

    def setup(self, pgconn: libpq.abc.PGconn, style: ConnStyle) -> None:
        for op in self.ops:
            op.setup(pgconn, style)

    def execute(self, pgconn: libpq.abc.PGconn, style: ConnStyle, seq: int) -> int:
        return self.ops[int(self._choice[seq % len(self._choice)])].execute(pgconn, style, seq)


class SqlOperation(ParamOperation):
    """A parameterised statement; parameter set ``seq % len(params)`` is used for ``seq``."""

    def __init__(
        self,
        *,
        name: str,
        sql: str,
        types: Sequence[int],
        params: Sequence[Sequence[bytes]],
        settings: Mapping[str, str],
    ) -> None:
        if not params:
            raise ValueError("an operation needs at least one parameter set")
        super().__init__(
            name=name,
            sql=sql,
            types=types,
            formats=[1] * len(types),
            params=_Cycle([list(p) for p in params]),
            settings=settings,
        )


class _Cycle:
    """Parameter set ``seq % len(table)``: a class, not a lambda, so the operation pickles
    (``[load] processes`` sends it to worker processes)."""

    def __init__(self, table: list[list[bytes]]) -> None:
        self.table = table

    def __call__(self, seq: int) -> Sequence[bytes | None]:
        return self.table[seq % len(self.table)]


def encode_vector(vector: np.ndarray) -> bytes:
    """pgvector's binary input format: int16 dim, int16 unused, float4[dim] big-endian."""
    return struct.pack(">HH", vector.shape[0], 0) + vector.astype(">f4").tobytes()


# timestamptz's zero, 2000-01-01, in Unix microseconds: its binary form counts from here
PG_EPOCH_US = 946_684_800_000_000


def encode_int4(value: int) -> bytes:
    return struct.pack(">i", value)


def knn_operation(
    *,
    items: str,
    queries: str | None,
    operator: str,
    k: int,
    vectors: np.ndarray,
    vector_oid: int,
    settings: Mapping[str, str],
) -> SqlOperation:
    """Top-k search. ``queries`` given: look the vector up by id, as pgbench's script does
    (same SQL for fidelity); otherwise send the vector itself, as an application does."""
    if queries is not None:
        sql = (
            f"SELECT id FROM {items} ORDER BY embedding {operator} "
            f"(SELECT embedding FROM {queries} WHERE id = $1) LIMIT {k}"
        )
        params = [[encode_int4(i)] for i in range(len(vectors))]
        return SqlOperation(name="knn", sql=sql, types=[INT4_OID], params=params, settings=settings)
    sql = f"SELECT id FROM {items} ORDER BY embedding {operator} $1 LIMIT {k}"
    params = [[encode_vector(v)] for v in vectors]
    return SqlOperation(name="knn", sql=sql, types=[vector_oid], params=params, settings=settings)
