"""The spec's ``[[operation]]`` tables, validated into CustomOpSpec records."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from ...errors import SpecError
from ...spec.table import Table
from ..agent_ops.params import OPERATIONS, STATEMENT_NAMES
from .sql_text import rewrite_placeholders, split_sql, write_keywords

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
        _parse_operation(Table(where, f"operation #{i + 1}", item)) for i, item in enumerate(raw)
    )
    names = [op.name for op in ops]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"{where}: [[operation]] names are used twice: {', '.join(dupes)}")
    return ops


def _parse_operation(t: Table) -> CustomOpSpec:
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


def _parse_sql(t: Table) -> str:
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


def _rewrite(t: Table, sql: str) -> tuple[str, tuple[str, ...]]:
    try:
        return rewrite_placeholders(sql)
    except ValueError as exc:
        return t.fail("sql", str(exc))  # type: ignore[no-any-return]


def _boolean(t: Table, key: str) -> bool:
    value = t.data.get(key, False)
    if not isinstance(value, bool):
        t.fail(key, f"= {value!r} must be true or false")
    return bool(value)


def _parse_params(t: Table, op_name: str) -> tuple[ParamSpec, ...]:
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
        params.append(_parse_param(Table(t.where, f"operation.{op_name}.params.{pname}", value)))
    by_name = {p.name: p for p in params}
    for p in params:
        if p.near:
            target = by_name.get(p.near)
            if target is None or target.generator not in ("agent_uuid", "tenant_uuid"):
                Table(t.where, f"operation.{op_name}.params.{p.name}", {}).fail(
                    "near",
                    f"= {p.near!r} must name an agent_uuid or tenant_uuid parameter of "
                    "this operation (the vector is drawn near that agent's or tenant's data)",
                )
    return tuple(params)


def _parse_param(p: Table) -> ParamSpec:
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


def _zipf(p: Table) -> float:
    return p.number("zipf", default=0.0, minimum=0.0, maximum=10.0)


def _choice_values(p: Table) -> tuple[str | int | float, ...]:
    values = p.data.get("values")
    if not isinstance(values, list) or not values:
        p.fail("values", "is required: a non-empty list of strings or of numbers")
    assert isinstance(values, list)
    if all(isinstance(v, str) for v in values):
        return tuple(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tuple(values)
    return p.fail("values", f"= {values!r} must be all strings or all numbers")  # type: ignore[no-any-return]


def _json_documents(p: Table) -> tuple[str, ...]:
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


def _check_placeholders(t: Table, order: tuple[str, ...], params: tuple[ParamSpec, ...]) -> None:
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
