"""User-defined SQL operations from the spec's ``[[operation]]`` tables.

A custom operation is the user's SQL with ``:name`` placeholders, each fed by a
seeded generator (a Zipf-chosen agent uuid, a random query vector, an int in a range,
...). Parameters are precomputed into a table indexed by ``seq``, as for the built-in
agent operations, so the hot path stays a list lookup.

Safety: unless ``writes = true`` the SQL may not contain an obvious write (INSERT,
UPDATE, DELETE, ...), and it runs with ``default_transaction_read_only = on`` so a
write hidden in a function fails loudly instead of changing the user's data.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import pq as libpq

from ..datasets.agents.dataset import AgentDataset
from ..engine.operations import ParamOperation
from ..errors import SpecError
from ..spec.table import Table as _Table
from .agent_ops.params import (
    INT8_OID,
    JSONB_OID,
    OPERATIONS,
    STATEMENT_NAMES,
    TEXT_OID,
    UUID_OID,
    encode_int8,
    encode_vectors,
    param_table_size,
)
from .agent_ops.sampling import unit_vectors, vectors_near_agents, vectors_near_tenants, zipf_choice

FLOAT8_OID = 701
GENERATORS = ("agent_uuid", "tenant_uuid", "uuid_from", "query_vector", "int", "choice", "json")
_GENERATOR_KEYS: dict[str, tuple[str, ...]] = {
    "agent_uuid": ("zipf",),
    "tenant_uuid": ("zipf",),
    "uuid_from": ("sql", "zipf"),
    "query_vector": ("dim", "near"),
    "int": ("min", "max"),
    "choice": ("values",),
    "json": ("value", "values"),
}
# Names the agent mix (and the plain kNN load) already give their operations and
# prepared statements: a custom op of the same name would merge their statistics.
RESERVED_NAMES = frozenset({*OPERATIONS, *STATEMENT_NAMES, "knn", "mix"})
_OP_KEYS = ["name", "sql", "weight", "writes", "params"]
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words that make a statement write wherever they appear (CTEs can hide DML), and
# statement kinds refused when they lead the SQL (a column may be called "comment").
_WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "INTO"})
_WRITE_LEADERS = frozenset(
    {
        "ALTER",
        "DROP",
        "CREATE",
        "GRANT",
        "REVOKE",
        "COPY",
        "VACUUM",
        "REINDEX",
        "CLUSTER",
        "REFRESH",
        "LOCK",
        "CALL",
        "COMMENT",
        "SECURITY",
        "IMPORT",
        "DO",
    }
)
READ_ONLY_SETTINGS = {
    # Session style: every implicit transaction of the connection starts read-only.
    "default_transaction_read_only": "on",
    # Transaction-pooled style (SET LOCAL after BEGIN): the default no longer applies to
    # the already-started transaction, so make the current one read-only directly.
    "transaction_read_only": "on",
}
_CHECK_STATEMENT = b"pgvb_custom_check"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One ``[operation.params]`` entry: which generator feeds a placeholder."""

    name: str
    generator: str
    # 0: uniform; > 0: rank r drawn with probability ~ 1 / r**zipf. Ranks: agents by memory
    # count, tenants by agent count, uuid_from rows in the order its query returns them.
    zipf: float = 0.0
    sql: str = ""  # uuid_from: a read-only query returning one uuid column
    dim: int = 0  # query_vector without near
    near: str = ""  # query_vector: an agent_uuid/tenant_uuid param whose data it lies near
    minimum: int = 0  # int (inclusive)
    maximum: int = 0  # int (inclusive)
    values: tuple[str | int | float, ...] = ()  # choice
    documents: tuple[str, ...] = ()  # json: serialised documents, one chosen per operation


@dataclasses.dataclass(frozen=True, kw_only=True)
class CustomOpSpec:
    """One ``[[operation]]`` table, validated; ``statement`` is the SQL with ``$n``."""

    name: str
    sql: str
    weight: float
    writes: bool
    params: tuple[ParamSpec, ...]
    statement: str  # ``sql`` with :name rewritten to $n
    order: tuple[str, ...]  # the param name of $1, $2, ...
    where: str = dataclasses.field(default="<spec>", compare=False)

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)


# --------------------------------------------------------------------------- SQL text


def split_sql(sql: str) -> list[tuple[bool, str]]:
    """Cut SQL into (is_code, text) pieces: string literals, quoted identifiers,
    dollar-quoted bodies and comments are not code (no placeholders, no keywords)."""
    pieces: list[tuple[bool, str]] = []
    code_start = 0
    i = 0
    n = len(sql)
    while i < n:
        end = _literal_end(sql, i)
        if end is None:
            i += 1
            continue
        if i > code_start:
            pieces.append((True, sql[code_start:i]))
        pieces.append((False, sql[i:end]))
        i = code_start = end
    if code_start < n:
        pieces.append((True, sql[code_start:]))
    return pieces


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _literal_end(sql: str, i: int) -> int | None:
    """End of the non-code piece starting at ``i``, or None if ``sql[i]`` is code."""
    c = sql[i]
    prev = sql[i - 1] if i else " "
    if c == "'":
        escapes = prev in "eE" and (i < 2 or not _ident_char(sql[i - 2]))
        return _quoted_end(sql, i, "'", backslash=escapes)
    if c == '"':
        return _quoted_end(sql, i, '"', backslash=False)
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        return _comment_end(sql, i)
    if c == "$" and not _ident_char(prev):
        match = _DOLLAR_TAG.match(sql, i)
        if match is not None:
            close = sql.find(match.group(0), match.end())
            if close < 0:
                raise ValueError("unterminated dollar-quoted string")
            return close + len(match.group(0))
    return None


def _ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _quoted_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(sql):
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:  # doubled quote: an escaped one
                j += 2
                continue
            return j + 1
        j += 1
    kind = "string literal" if quote == "'" else "quoted identifier"
    raise ValueError(f"unterminated {kind}")


def _comment_end(sql: str, i: int) -> int:
    depth = 0
    j = i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError("unterminated /* comment")


# ``:name`` but not the second colon of a ``::cast`` nor ``a:b`` (array slices).
_PLACEHOLDER = re.compile(r"(?<![:\w$]):([A-Za-z_][A-Za-z0-9_]*)")
_POSITIONAL = re.compile(r"(?<![\w$])\$\d+")


def rewrite_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` -> ``$n`` outside literals and casts; return the SQL and the names in
    ``$n`` order (a name used twice is one parameter). Raises ValueError on bad SQL."""
    order: list[str] = []
    out: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    for is_code, text in split_sql(sql):
        if is_code:
            positional = _POSITIONAL.search(text)
            if positional is not None:
                raise ValueError(
                    f"uses the positional parameter {positional.group(0)}; "
                    "write :name placeholders instead"
                )
            text = _PLACEHOLDER.sub(number, text)
        out.append(text)
    return "".join(out), tuple(order)


def code_words(sql: str) -> list[str]:
    """Upper-cased words of the SQL outside literals, identifiers in quotes and comments."""
    words: list[str] = []
    for is_code, text in split_sql(sql):
        if is_code:
            words.extend(w.upper() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", text))
    return words


def write_keywords(sql: str) -> list[str]:
    """The obvious writes in a statement (empty for a plain query)."""
    words = code_words(sql)
    found = [w for w in words if w in _WRITE_WORDS]
    if words and words[0] in _WRITE_LEADERS:
        found.insert(0, words[0])
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------- parsing


def parse_operations(raw: Any, where: str) -> tuple[CustomOpSpec, ...]:
    """Validate the ``[[operation]]`` tables; SpecError names file, table and key."""
    if not isinstance(raw, list) or not raw:
        raise SpecError(
            f"{where}: [[operation]] must be one or more tables, e.g.\n"
            '  [[operation]]\n  name = "recent"\n'
            '  sql = "SELECT id FROM app.items WHERE owner = :owner LIMIT 10"\n'
            '  [operation.params]\n  owner = { generator = "agent_uuid" }'
        )
    ops = tuple(
        _parse_operation(_Table(where, f"operation #{i + 1}", item)) for i, item in enumerate(raw)
    )
    names = [op.name for op in ops]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"{where}: [[operation]] names are used twice: {', '.join(dupes)}")
    return ops


def _parse_operation(t: _Table) -> CustomOpSpec:
    t.only(_OP_KEYS)
    name = t.string("name", required=True)
    if not _NAME_RE.fullmatch(name):
        t.fail(
            "name",
            f"= {name!r} must be lowercase letters, digits and _, starting with a letter, "
            "at most 40 characters (it names the operation in results)",
        )
    if name in RESERVED_NAMES:
        t.fail("name", f"= {name!r} is the name of a built-in agent operation; choose another")
    t.section = f"operation.{name}"
    sql = _parse_sql(t)
    writes = _boolean(t, "writes")
    if not writes:
        found = write_keywords(sql)
        if found:
            t.fail(
                "sql",
                f"writes ({', '.join(found)}) but writes = false; set writes = true if this "
                "operation is meant to modify data on the target server",
            )
    weight = t.number("weight", default=1.0, minimum=0.0, maximum=1e9)
    if weight <= 0:
        t.fail("weight", f"= {weight:g} must be > 0")
    statement, order = _rewrite(t, sql)
    params = _parse_params(t, name)
    _check_placeholders(t, order, params)
    return CustomOpSpec(
        name=name,
        sql=sql,
        weight=weight,
        writes=writes,
        params=params,
        statement=statement,
        order=order,
        where=t.where,
    )


def _parse_sql(t: _Table) -> str:
    sql = t.string("sql", required=True).strip()
    while sql.endswith(";"):  # a trailing ; is harmless; a second statement is not
        sql = sql[:-1].rstrip()
    if not sql:
        t.fail("sql", "is empty")
    try:
        pieces = split_sql(sql)
    except ValueError as exc:
        t.fail("sql", f"is not valid SQL: {exc}")
    if any(is_code and ";" in text for is_code, text in pieces):
        t.fail("sql", "holds more than one statement; an operation is one statement")
    return sql


def _rewrite(t: _Table, sql: str) -> tuple[str, tuple[str, ...]]:
    try:
        return rewrite_placeholders(sql)
    except ValueError as exc:
        return t.fail("sql", str(exc))  # type: ignore[no-any-return]


def _boolean(t: _Table, key: str) -> bool:
    value = t.data.get(key, False)
    if not isinstance(value, bool):
        t.fail(key, f"= {value!r} must be true or false")
    return bool(value)


def _parse_params(t: _Table, op_name: str) -> tuple[ParamSpec, ...]:
    raw = t.data.get("params", {})
    if not isinstance(raw, Mapping):
        t.fail("params", "must be a table: [operation.params] with one entry per :placeholder")
    params: list[ParamSpec] = []
    for pname, value in raw.items():
        if not _PARAM_RE.fullmatch(pname):
            t.fail(f"params.{pname}", "is not a valid placeholder name (letters, digits, _)")
        if not isinstance(value, Mapping):
            t.fail(
                f"params.{pname}",
                'must be a table, e.g. { generator = "int", min = 1, max = 100 }; '
                f"generators: {', '.join(GENERATORS)}",
            )
        params.append(_parse_param(_Table(t.where, f"operation.{op_name}.params.{pname}", value)))
    by_name = {p.name: p for p in params}
    for p in params:
        if p.near:
            target = by_name.get(p.near)
            if target is None or target.generator not in ("agent_uuid", "tenant_uuid"):
                _Table(t.where, f"operation.{op_name}.params.{p.name}", {}).fail(
                    "near",
                    f"= {p.near!r} must name an agent_uuid or tenant_uuid parameter of "
                    "this operation (the vector is drawn near that agent's or tenant's data)",
                )
    return tuple(params)


def _parse_param(p: _Table) -> ParamSpec:
    name = p.section.rsplit(".", 1)[1]
    generator = p.choice("generator", GENERATORS, required=True)
    p.only(["generator", *_GENERATOR_KEYS[generator]])
    if generator in ("agent_uuid", "tenant_uuid"):
        return ParamSpec(name=name, generator=generator, zipf=_zipf(p))
    if generator == "uuid_from":
        sql = p.string("sql", required=True).strip().rstrip(";").strip()
        found = write_keywords(sql) if sql else []
        if not sql or found:
            p.fail("sql", "must be a read-only query returning uuids in its first column")
        return ParamSpec(name=name, generator=generator, sql=sql, zipf=_zipf(p))
    if generator == "query_vector":
        near = p.string("near", default="")
        dim = p.integer("dim", minimum=1, maximum=16000) if "dim" in p.data else 0
        if not near and not dim:
            p.fail(
                "dim",
                'is required (the vector\'s dimension), unless near = "<agent param>" '
                "takes it from pgvbench's agent data",
            )
        return ParamSpec(name=name, generator=generator, dim=dim, near=near)
    if generator == "int":
        lo = p.integer("min", required=True, minimum=-(2**63), maximum=2**63 - 1)
        hi = p.integer("max", required=True, minimum=-(2**63), maximum=2**63 - 1)
        if lo > hi:
            p.fail("max", f"= {hi} is below min = {lo}")
        return ParamSpec(name=name, generator=generator, minimum=lo, maximum=hi)
    if generator == "choice":
        return ParamSpec(name=name, generator=generator, values=_choice_values(p))
    return ParamSpec(name=name, generator=generator, documents=_json_documents(p))


def _zipf(p: _Table) -> float:
    return p.number("zipf", default=0.0, minimum=0.0, maximum=10.0)


def _choice_values(p: _Table) -> tuple[str | int | float, ...]:
    values = p.data.get("values")
    if not isinstance(values, list) or not values:
        p.fail("values", "is required: a non-empty list of strings or of numbers")
    assert isinstance(values, list)
    if all(isinstance(v, str) for v in values):
        return tuple(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tuple(values)
    return p.fail("values", f"= {values!r} must be all strings or all numbers")  # type: ignore[no-any-return]


def _json_documents(p: _Table) -> tuple[str, ...]:
    if ("value" in p.data) == ("values" in p.data):
        p.fail("value", "or values (a list of documents, one chosen per operation) is required")
    docs = [p.data["value"]] if "value" in p.data else p.data["values"]
    if not isinstance(docs, list) or not docs:
        p.fail("values", "must be a non-empty list of JSON documents")
    try:
        return tuple(json.dumps(d, separators=(",", ":")) for d in docs)
    except (TypeError, ValueError):
        key = "value" if "value" in p.data else "values"
        return p.fail(key, "must be plain JSON data (no dates or times)")  # type: ignore[no-any-return]


def _check_placeholders(t: _Table, order: tuple[str, ...], params: tuple[ParamSpec, ...]) -> None:
    names = {p.name for p in params}
    for used in order:
        if used not in names:
            t.fail(
                "sql",
                f"uses :{used} but [operation.params] has no {used!r}; add e.g. "
                f'{used} = {{ generator = "int", min = 1, max = 100 }}',
            )
    for p in params:
        if p.name not in order:
            t.fail(f"params.{p.name}", f"is not used: the SQL has no :{p.name}")


# --------------------------------------------------------------------------- compiling


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
    dim = p.dim or (dataset.spec.dim if dataset is not None else 0)
    return 4 + 4 * dim


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
    ids = {i: ds.id_of(kind, i).bytes for i in set(picks.tolist())}
    return _Column([ids[i] for i in picks.tolist()], UUID_OID, 1, picks)


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
