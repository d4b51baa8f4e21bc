"""Custom operations made runnable: parameter tables from seeded generators, the SQL
checked against the server (PREPARE, and a rolled-back read-only trial), read-only
settings for an operation that does not write."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import pq as libpq

from ...datasets.agents.dataset import AgentDataset
from ...engine.operations import ParamOperation
from ...errors import SpecError
from ..agent_ops.params import (
    INT8_OID,
    JSONB_OID,
    TEXT_OID,
    UUID_OID,
    encode_int8,
    encode_vectors,
    param_table_size,
    vector_bytes,
)
from ..agent_ops.sampling import (
    ids,
    unit_vectors,
    vectors_near_agents,
    vectors_near_tenants,
    zipf_choice,
)
from .parse import CustomOpSpec, ParamSpec

FLOAT8_OID = 701
READ_ONLY_SETTINGS = {
    # Session style: every implicit transaction of the connection starts read-only.
    "default_transaction_read_only": "on",
    # Transaction-pooled style (SET LOCAL after BEGIN): the default no longer applies to
    # the already-started transaction, so make the current one read-only directly.
    "transaction_read_only": "on",
}
_CHECK_STATEMENT = b"pgvb_custom_check"


@dataclasses.dataclass
class _Column:
    """A generated parameter: one encoded value per table row, and the rows it chose
    (agent or tenant indexes), which a query_vector ``near`` it follows."""

    values: list[bytes]
    oid: int
    fmt: int
    picks: np.ndarray | None = None


def compile_custom(
    op: CustomOpSpec,
    *,
    conn: psycopg.Connection[Any],
    seed: int,
    dataset: AgentDataset | None,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """Build the engine operation: generate its parameter table, check the SQL against the
    server (PREPARE, and for a read-only op one trial run in a rolled-back read-only
    transaction), and make a read-only op run read-only."""
    vector_oid = _vector_oid(conn, op) if _has(op, "query_vector") else 0
    size = param_table_size(sum(_row_bytes(op, p, dataset) for p in op.params))
    columns: dict[str, _Column] = {}
    for p in sorted(op.params, key=lambda p: p.generator == "query_vector"):  # near: last
        rng = np.random.default_rng(
            [seed, zlib.crc32(op.name.encode()), zlib.crc32(p.name.encode())]
        )
        columns[p.name] = _generate(op, p, size, rng, conn, dataset, columns, vector_oid)
    ordered = [columns[name] for name in op.order]
    types = [c.oid for c in ordered]
    formats = [c.fmt for c in ordered]
    rows: list[list[bytes | None]] = [
        list(r) for r in zip(*(c.values for c in ordered), strict=True)
    ] or [[]]
    _check_statement(conn, op, types, formats, rows[0])
    merged = dict(settings or {})
    if not op.writes:
        merged.update(READ_ONLY_SETTINGS)
    count = len(rows)
    return ParamOperation(
        name=op.name,
        sql=op.statement,
        types=types,
        formats=formats,
        params=lambda seq: rows[seq % count],
        settings=merged,
    )


def _has(op: CustomOpSpec, generator: str) -> bool:
    return any(p.generator == generator for p in op.params)


def _fail(op: CustomOpSpec, message: str) -> SpecError:
    return SpecError(f"{op.where}: operation {op.name!r}: {message}")


def _row_bytes(op: CustomOpSpec, p: ParamSpec, dataset: AgentDataset | None) -> int:
    if p.generator != "query_vector":
        return 16
    return vector_bytes(p.dim or (dataset.spec.dim if dataset is not None else 0))


def _vector_oid(conn: psycopg.Connection[Any], op: CustomOpSpec) -> int:
    row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
    if row is None or row[0] is None:
        raise _fail(
            op,
            "a query_vector parameter needs pgvector's vector type, which this database "
            "does not have (CREATE EXTENSION vector), or its schema is not on search_path",
        )
    return int(row[0])


def _need_dataset(op: CustomOpSpec, p: ParamSpec, dataset: AgentDataset | None) -> AgentDataset:
    if dataset is None:
        raise _fail(
            op,
            f"params.{p.name} uses generator {p.generator!r}"
            + (f" with near = {p.near!r}" if p.near else "")
            + ", which needs pgvbench's agent data: add an [agents] table to the spec, or use "
            'generator = "uuid_from" with a query of your own',
        )
    return dataset


def _generate(
    op: CustomOpSpec,
    p: ParamSpec,
    size: int,
    rng: np.random.Generator,
    conn: psycopg.Connection[Any],
    dataset: AgentDataset | None,
    done: Mapping[str, _Column],
    vector_oid: int,
) -> _Column:
    if p.generator == "agent_uuid":
        ds = _need_dataset(op, p, dataset)
        agents = rng.choice(ds.agents, size=size, p=ds.agent_access_weights(p.zipf))
        return _uuid_column(ds, "agents", agents)
    if p.generator == "tenant_uuid":
        ds = _need_dataset(op, p, dataset)
        tenants = _tenant_choice(ds, p.zipf, size, rng)
        return _uuid_column(ds, "tenants", tenants)
    if p.generator == "uuid_from":
        pool = _uuids_from(conn, op, p)
        picks = zipf_choice(len(pool), p.zipf, size, rng)
        return _Column([pool[i] for i in picks.tolist()], UUID_OID, 1)
    if p.generator == "query_vector":
        return _Column(_query_vectors(op, p, size, rng, dataset, done), vector_oid, 1)
    if p.generator == "int":
        ints = rng.integers(p.minimum, p.maximum, size=size, endpoint=True, dtype=np.int64)
        return _Column([encode_int8(v) for v in ints.tolist()], INT8_OID, 1)
    if p.generator == "choice":
        return _choice_column(p, size, rng)
    docs = [d.encode() for d in p.documents]
    picks = rng.integers(0, len(docs), size=size)
    return _Column([docs[i] for i in picks.tolist()], JSONB_OID, 0)


def _uuid_column(ds: AgentDataset, kind: str, picks: np.ndarray) -> _Column:
    by_row = ids(ds, kind, picks)
    return _Column([by_row[i] for i in picks.tolist()], UUID_OID, 1, picks)


def _tenant_choice(
    ds: AgentDataset, zipf: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Zipf over tenants ranked by their number of agents (largest first)."""
    agents_per_tenant = np.diff(ds.tenant_agent_offsets)
    ranked = np.argsort(-agents_per_tenant, kind="stable")
    return np.asarray(ranked[zipf_choice(ds.tenants, zipf, size, rng)])


def _query_vectors(
    op: CustomOpSpec,
    p: ParamSpec,
    size: int,
    rng: np.random.Generator,
    dataset: AgentDataset | None,
    done: Mapping[str, _Column],
) -> list[bytes]:
    if not p.near:
        return encode_vectors(unit_vectors(rng, size, p.dim))
    ds = _need_dataset(op, p, dataset)
    if p.dim and p.dim != ds.spec.dim:
        raise _fail(op, f"params.{p.name}: dim = {p.dim} but pgvbench's data has dim {ds.spec.dim}")
    source = done[p.near]
    assert source.picks is not None
    near = op.param(p.near).generator
    if near == "agent_uuid":
        return encode_vectors(vectors_near_agents(ds, source.picks, rng))
    return encode_vectors(vectors_near_tenants(ds, source.picks, rng))


def _choice_column(p: ParamSpec, size: int, rng: np.random.Generator) -> _Column:
    picks = rng.integers(0, len(p.values), size=size).tolist()
    if all(isinstance(v, str) for v in p.values):
        encoded = [str(v).encode() for v in p.values]
        return _Column([encoded[i] for i in picks], TEXT_OID, 0)
    if all(isinstance(v, int) for v in p.values):
        ints = [encode_int8(int(v)) for v in p.values]
        return _Column([ints[i] for i in picks], INT8_OID, 1)
    floats = [struct.pack(">d", float(v)) for v in p.values]
    return _Column([floats[i] for i in picks], FLOAT8_OID, 1)


def _uuids_from(conn: psycopg.Connection[Any], op: CustomOpSpec, p: ParamSpec) -> list[bytes]:
    """Run the param's query once, read-only, rolled back; its first column's uuids."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute("SET LOCAL transaction_read_only = on")
            cur.execute(p.sql.encode())
            description = cur.description
            rows = cur.fetchall() if description else []
    except psycopg.Error as exc:
        raise _fail(
            op, f"params.{p.name}: the uuid_from query failed: {_first_line(exc)}"
        ) from None
    if not description or description[0].type_code != UUID_OID:
        got = "nothing" if not description else f"type oid {description[0].type_code}"
        raise _fail(op, f"params.{p.name}: the uuid_from query must return uuids first, got {got}")
    pool = [row[0].bytes for row in rows if row[0] is not None]
    if not pool:
        raise _fail(op, f"params.{p.name}: the uuid_from query returned no uuids")
    return pool


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _result_error(result: libpq.abc.PGresult) -> str:
    raw = result.error_message.decode("utf-8", "replace").strip()
    text = raw.splitlines()[0] if raw else "unknown error"
    return text.removeprefix("ERROR:").strip()


_OK = (libpq.ExecStatus.COMMAND_OK, libpq.ExecStatus.TUPLES_OK)
_READ_ONLY_SQLSTATE = b"25006"
_QUERY_CANCELED_SQLSTATE = b"57014"  # the trial hit its timeout: slow, but not wrong
_TRIAL_TIMEOUT = b"60s"


def _check_statement(
    conn: psycopg.Connection[Any],
    op: CustomOpSpec,
    types: Sequence[int],
    formats: Sequence[int],
    params: Sequence[bytes | None],
) -> None:
    """PREPARE the statement (a missing table or a type error shows here, before the run);
    a read-only op then runs once in a read-only transaction that is rolled back."""
    pgconn = conn.pgconn
    with conn.transaction(force_rollback=True):
        result = pgconn.prepare(_CHECK_STATEMENT, op.statement.encode(), list(types))
        if result.status not in _OK:
            raise _fail(op, _result_error(result))
        pgconn.exec_(b"DEALLOCATE " + _CHECK_STATEMENT)  # prepared statements outlive rollback
        if op.writes:
            return  # never run a write before the measurement: it would change the data
        pgconn.exec_(b"SET LOCAL transaction_read_only = on")
        pgconn.exec_(b"SET LOCAL statement_timeout = '" + _TRIAL_TIMEOUT + b"'")
        result = pgconn.exec_params(
            op.statement.encode(), list(params), list(types), list(formats), 1
        )
        state = result.error_field(libpq.DiagnosticField.SQLSTATE)
        if result.status not in _OK and state != _QUERY_CANCELED_SQLSTATE:
            if state == _READ_ONLY_SQLSTATE:
                raise _fail(
                    op,
                    f"it writes ({_result_error(result)}) but writes = false; set writes = "
                    "true if it is meant to modify data",
                )
            raise _fail(op, f"a trial run failed: {_result_error(result)}")
