"""COPY BINARY tuples for (id, embedding, attribute columns...), built per chunk.

The fixed-width part of a row (id, vector, and attributes that are fixed-width and never
NULL in this load: int, bool, float without NaN, timestamp without NaT) is one numpy
structured record, as for the plain vector load, so it costs no Python per row. Attribute
kinds of variable width (text, arrays, jsonb) or with NULLs are encoded per row in Python
and appended to the row's fixed record; the COPY column list puts the fixed columns first,
so the order of the table's columns does not force a scatter. See ``db/load.py``.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..datasets.attributes import Attribute

# PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_NAT = np.iinfo(np.int64).min
_TEXT_OID, _INT8_OID = 25, 20
_NULL = struct.pack(">i", -1)
_I4 = struct.Struct(">i")
_I8 = struct.Struct(">q")
_F8 = struct.Struct(">d")

# fixed kinds -> big-endian numpy dtype of the value
_FIXED: dict[str, str] = {"int": ">i8", "float": ">f8", "bool": "u1", "timestamp": ">i8"}


def _has_nulls(attr: Attribute) -> bool:
    if attr.kind == "float":
        return bool(np.isnan(attr.values).any())
    if attr.kind == "timestamp":
        return bool(np.isnat(attr.values).any())
    return attr.kind not in ("int", "bool")


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """The COPY column order of a load and the record dtype of its fixed part."""

    fixed: tuple[Attribute, ...]  # fixed width, no NULL: inside the numpy record
    variable: tuple[Attribute, ...]  # encoded per row

    @property
    def columns(self) -> list[str]:
        return ["id", "embedding", *(a.name for a in self.fixed), *(a.name for a in self.variable)]

    def record_dtype(self, dim: int) -> np.dtype[Any]:
        fields: list[Any] = [
            ("nfields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (dim,)),
        ]
        for i, attr in enumerate(self.fixed):
            fields += [(f"len{i}", ">i4"), (f"val{i}", _FIXED[attr.kind])]
        return np.dtype(fields)


def row_layout(attributes: Sequence[Attribute]) -> RowLayout:
    fixed = tuple(a for a in attributes if a.kind in _FIXED and not _has_nulls(a))
    variable = tuple(a for a in attributes if a not in fixed)
    return RowLayout(fixed=fixed, variable=variable)


def _fixed_values(attr: Attribute, lo: int, hi: int) -> np.ndarray:
    values = attr.values[lo:hi]
    if attr.kind == "timestamp":
        return values.astype("datetime64[us]").view(np.int64) - _PG_EPOCH_US
    return values


def _text(value: Any) -> bytes:
    data = str(value).encode()
    return _I4.pack(len(data)) + data


def _array(value: Any, oid: int, element: Callable[[Any], bytes]) -> bytes:
    items = tuple(value)
    if not items:
        body = struct.pack(">iii", 0, 0, oid)
    else:
        has_null = any(v is None for v in items)
        head = struct.pack(">iiiii", 1, int(has_null), oid, len(items), 1)
        body = head + b"".join(_NULL if v is None else element(v) for v in items)
    return _I4.pack(len(body)) + body


def _encoder(kind: str) -> Callable[[Any], bytes]:
    """value -> the field's bytes (length + payload); NULLs are handled by the caller."""
    if kind == "text":
        return _text
    if kind == "jsonb":
        return lambda v: _text_with_version(v)
    if kind == "text[]":
        return lambda v: _array(v, _TEXT_OID, _text)
    if kind == "int[]":
        return lambda v: _array(v, _INT8_OID, lambda x: _I4.pack(8) + _I8.pack(int(x)))
    if kind == "float":
        return lambda v: _I4.pack(8) + _F8.pack(float(v))
    if kind == "timestamp":
        return lambda v: _I4.pack(8) + _I8.pack(int(v) - _PG_EPOCH_US)
    if kind == "int":
        return lambda v: _I4.pack(8) + _I8.pack(int(v))
    return lambda v: _I4.pack(1) + (b"\x01" if v else b"\x00")


def _text_with_version(value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    data = b"\x01" + text.encode()  # jsonb binary format: version 1, then the JSON text
    return _I4.pack(len(data)) + data


def _variable_column(attr: Attribute, lo: int, hi: int) -> list[bytes]:
    encode = _encoder(attr.kind)
    values = attr.values[lo:hi]
    if attr.kind == "float":
        return [_NULL if v != v else encode(v) for v in values.tolist()]
    if attr.kind == "timestamp":
        ints = values.astype("datetime64[us]").view(np.int64).tolist()
        return [_NULL if v == _NAT else encode(v) for v in ints]
    # labels and tags repeat: encode each distinct value of the chunk once
    cache: dict[Any, bytes] = {}
    out = []
    for v in values.tolist():
        if v is None:
            out.append(_NULL)
            continue
        try:
            data = cache.get(v)
            if data is None:
                data = cache[v] = encode(v)
        except TypeError:  # an unhashable value (a list instead of a tuple)
            data = encode(v)
        out.append(data)
    return out


def encode_rows(layout: RowLayout, ids: np.ndarray, vectors: np.ndarray, lo: int) -> bytes:
    """COPY BINARY tuples for rows lo..lo+len(ids) of the layout's attributes."""
    n, dim = vectors.shape
    records = np.empty(n, dtype=layout.record_dtype(dim))
    records["nfields"] = 2 + len(layout.fixed) + len(layout.variable)
    records["id_len"] = 8
    records["id"] = ids
    records["vec_len"] = 4 + 4 * dim
    records["dim"] = dim
    records["unused"] = 0
    records["values"] = vectors
    for i, attr in enumerate(layout.fixed):
        records[f"len{i}"] = records.dtype[f"val{i}"].itemsize
        records[f"val{i}"] = _fixed_values(attr, lo, lo + n)
    if not layout.variable:
        return records.tobytes()
    columns = [_variable_column(a, lo, lo + n) for a in layout.variable]
    fixed = memoryview(records.tobytes())
    size = records.dtype.itemsize
    parts: list[Any] = []
    for i, row in enumerate(zip(*columns, strict=True)):
        parts.append(fixed[i * size : (i + 1) * size])
        parts.extend(row)
    return b"".join(parts)
