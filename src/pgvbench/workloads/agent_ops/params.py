"""What every agent operation shares: the mix's names, binary parameter encoding, parameter
tables indexed by ``seq``, fresh row ids and the two-way operation."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence

import numpy as np
from psycopg import pq as libpq

from ...datasets.agents.model import table_name
from ...engine.operations import PG_EPOCH_US, ConnStyle, ParamOperation

UUID_OID = 2950
INT8_OID = 20
FLOAT4_OID = 700
TEXT_OID = 25
TEXT_ARRAY_OID = 1009
JSONB_OID = 3802
TIMESTAMPTZ_OID = 1184
INTERVAL_OID = 1186
BINARY, TEXT = 1, 0

OPERATIONS = (
    "memory_write",
    "memory_recall",
    "rag_search",
    "task_update",
    "message_append",
    "memory_expire",
    "agent_lookup",
)
# Prepared-statement names of the two-way operations' halves.
STATEMENT_NAMES = ("rag_search_jsonb", "rag_search_tags", "agent_lookup_id", "agent_lookup_model")
RAG_FILTERS = ("jsonb", "tags", "alternate")
TABLE_SIZE = 1 << 16
TABLE_BUDGET_BYTES = 32 << 20  # cap per operation: large vectors get fewer distinct rows
DOC_POOL = 1024  # distinct JSON documents / contents an insert cycles through

Row = list[bytes | None]


# --------------------------------------------------------------------------- encoding


def encode_int8(value: int) -> bytes:
    return struct.pack(">q", value)


def encode_float4(value: float) -> bytes:
    return struct.pack(">f", value)


def encode_timestamptz(epoch_us: int) -> bytes:
    """Binary timestamptz: int8 microseconds since 2000-01-01 UTC."""
    return struct.pack(">q", epoch_us - PG_EPOCH_US)


def encode_text_array(values: Sequence[str]) -> bytes:
    """Text-format text[] literal, every element quoted."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return ("{" + ",".join(quoted) + "}").encode()


def encode_vectors(vectors: np.ndarray) -> list[bytes]:
    """pgvector binary input of each row: int16 dim, int16 unused, float4[dim] big-endian."""
    header = struct.pack(">HH", vectors.shape[1], 0)
    data = np.ascontiguousarray(vectors, dtype=">f4")
    return [header + row.tobytes() for row in data]


def param_table_size(row_bytes: int) -> int:
    """Rows of a parameter table: TABLE_SIZE unless that exceeds the memory budget."""
    return int(max(1024, min(TABLE_SIZE, TABLE_BUDGET_BYTES // max(1, row_bytes))))


def vector_bytes(dim: int) -> int:
    return 4 + 4 * dim


# --------------------------------------------------------------------------- parameter tables


def new_id(kind: str, seed: int) -> Callable[[int], bytes]:
    """Fresh uuid (v4 layout) of the ``seq``-th insert: unique per (kind, seed, seq),
    random-looking like an app's uuid4 (B-tree inserts land all over the index)."""
    key = hashlib.blake2b(f"{kind}:{seed}".encode(), digest_size=32).digest()

    def next_id(seq: int) -> bytes:
        digest = hashlib.blake2b(seq.to_bytes(8, "big"), digest_size=16, key=key).digest()
        return (
            bytes((*digest[:6], (digest[6] & 0x0F) | 0x40, digest[7], (digest[8] & 0x3F) | 0x80))
            + digest[9:]
        )

    return next_id


def qualified(schema: str, prefix: str, kind: str) -> str:
    return f'"{schema}"."{table_name(prefix, kind)}"'


def table_params(rows: list[Row]) -> Callable[[int], Row]:
    size = len(rows)
    return lambda seq: rows[seq % size]


def with_new_id(rows: list[Row], make_id: Callable[[int], bytes]) -> Callable[[int], Row]:
    size = len(rows)
    return lambda seq: [make_id(seq), *rows[seq % size]]


# --------------------------------------------------------------------------- two-way operations


class AlternatingOperation:
    """One kind of operation done two ways, alternating by ``seq`` parity (one histogram)."""

    def __init__(self, name: str, even: ParamOperation, odd: ParamOperation) -> None:
        self.name = name
        self.names: tuple[str, ...] = (name,)
        self.parts = (even, odd)

    def kind(self, seq: int) -> int:
        return 0

    def setup(self, pgconn: libpq.abc.PGconn, style: ConnStyle) -> None:
        for part in self.parts:
            part.setup(pgconn, style)

    def execute(self, pgconn: libpq.abc.PGconn, style: ConnStyle, seq: int) -> int:
        # seq // 2 keeps each half's own parameter table fully used
        return self.parts[seq & 1].execute(pgconn, style, seq // 2)
