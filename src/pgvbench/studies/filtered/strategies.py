"""What each strategy creates (DDL on pgvbench's marked copy) and how it queries.

``hnsw_plain``         HNSW, iterative scan off (shows the under-fill)
``hnsw_strict``        HNSW, ``hnsw.iterative_scan = strict_order`` + ``hnsw.max_scan_tuples``
``hnsw_relaxed``       HNSW, ``relaxed_order``, re-ordered by distance in an outer query
``ivfflat_iterative``  IVFFlat, ``ivfflat.iterative_scan = relaxed_order`` (+ max_probes)
``btree_exact``        B-tree on the filter column (GIN for ``&&`` on arrays), exact sort
``partial_hot``        one partial HNSW index per hot label (equality only; only hot
                       labels are measured)
``partitioned``        a copy LIST-partitioned by tenant_id (agent data) or by the label
                       (its commonest labels + DEFAULT), one HNSW index per partition
                       (equality only)

Each strategy gets a plan per predicate it applies to (and per ef_search value in a
sweep, for those that set hnsw.ef_search). Every object is created with pgvbench's mark
and dropped again by :class:`Setup`; a name already taken by an object without the mark
stops the comparison (SafetyError).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...db.schema import drop_owned_index, drop_owned_table, mark_owned
from ...metrics import Metric
from ...spec.model import QUERY_GUCS
from . import notes
from .predicates import EQ, OVERLAP, RANGE, Predicate
from .records import arm_name
from .source import FilterSource

MAX_IDENTIFIER = 63
HNSW_STRATEGIES = ("hnsw_plain", "hnsw_strict", "hnsw_relaxed")
#: Strategies that need an equality on a label (a partial index or partition per label).
EQUALITY_ONLY = ("partial_hot", "partitioned")
#: Every strategy's session: custom plans (a partial index matches only a bound label)
#: and no sequential scan (the planner's choice for small filters, which is no strategy).
COMMON_SETTINGS = {"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off"}
_REFUSAL_ADVICE = "Use another prefix."

#: (filter value, partition key) -> (index names the plan must use exactly, relations it
#: may scan)
Expectation = Callable[[Any, Any], tuple[set[str], set[str] | None]]


def not_applicable(strategy: str, predicate: Predicate) -> str | None:
    """Why ``strategy`` does not apply to ``predicate`` (None: it does)."""
    if strategy in EQUALITY_ONLY and predicate.kind != EQ:
        return notes.equality_only(strategy, predicate.name)
    return None


@dataclasses.dataclass(frozen=True)
class Names:
    """Every object name a comparison may create (checked to fit PostgreSQL's 63 bytes)."""

    schema: str
    work: str
    hnsw: str
    ivf: str
    btree: str
    part: str
    prefix: str

    def hot(self, i: int) -> str:
        return f"{self.work}_hot{i}"

    def filter_index(self, i: int) -> str:
        """The B-tree (or GIN) of the i-th filtered column."""
        return self.btree if i == 0 else f"{self.btree}{i}"

    def partition(self, i: int) -> str:
        return f"{self.part}_{i}"

    def partition_index(self, i: int) -> str:
        return f"{self.part}_{i}_hnsw"

    @property
    def default_partition(self) -> str:
        return f"{self.part}_def"

    @property
    def default_partition_index(self) -> str:
        return f"{self.part}_def_hnsw"

    @classmethod
    def make(
        cls, schema: str, prefix: str, partitions: int, hot: int, *, agents: bool = True
    ) -> Names:
        work = f"{prefix}_fmem"
        names = cls(
            schema=schema,
            work=work,
            hnsw=f"{work}_hnsw",
            ivf=f"{work}_ivf",
            btree=f"{work}_agent" if agents else f"{work}_filt",
            part=f"{prefix}_fpart",
            prefix=prefix,
        )
        longest = [
            names.hot(max(0, hot - 1)),
            names.partition_index(max(0, partitions - 1)),
            names.default_partition_index,
            names.filter_index(9),
        ]
        too_long = [n for n in longest if len(n.encode()) > MAX_IDENTIFIER]
        if too_long:
            raise ValueError(
                f"prefix {prefix!r} is too long: object names such as {too_long[0]!r} would "
                f"exceed PostgreSQL's {MAX_IDENTIFIER} bytes; use a shorter prefix"
            )
        return names


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a strategy queries one predicate and what its plans must show."""

    strategy: str
    sql: str  # $1 vector, then the predicate's parameters, then the key (when uses_key)
    settings: Mapping[str, str]
    uses_key: bool
    expect: Expectation
    hot_only: bool = False
    note: str = ""  # what a reader of the results must know about this strategy
    predicate: str = ""  # Predicate.name
    types: tuple[int, ...] = ()  # OIDs of the parameters after $1
    ef_search: int | None = None  # set in an ef_search sweep

    @property
    def arm(self) -> str:
        return self.strategy if self.ef_search is None else arm_name(self.strategy, self.ef_search)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params:
    """What the strategies are built and queried with."""

    k: int
    tenant_filter: bool
    ef_values: tuple[int, ...]
    max_scan_tuples: int
    hnsw: Mapping[str, int]  # m, ef_construction
    lists: int
    probes: int
    ivf_max_probes: int | None

    @property
    def ef_search(self) -> int:
        return self.ef_values[0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Layout:
    """What the data decides about the objects: the predicates, the hot labels' partial
    indexes, and the partitions (value literal -> partition number)."""

    source: FilterSource
    predicates: Sequence[Predicate]
    hot_index: Mapping[str, str]  # repr(label) -> partial index name
    hot_values: Mapping[str, Any]  # repr(label) -> label
    partition_by: str  # column
    partitions: Sequence[Any]  # values with a partition of their own


class Setup:
    """Creates objects with pgvbench's mark, remembers them, drops them again."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self.tables: list[str] = []  # dropped last, in reverse order
        self.indexes: list[str] = []
        self.notices: list[str] = []

        # Build NOTICEs (e.g. "hnsw graph no longer fits into maintenance_work_mem").
        conn.add_notice_handler(self._on_notice)
        self._listening = True

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self.notices.append(f"{diag.severity}: {diag.message_primary}")

    def ident(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def table(self, name: str, ddl: sql.Composed) -> None:
        # A marked leftover of an interrupted run is dropped; anything else stops us.
        drop_owned_table(self.conn, self.schema, name)
        self.conn.execute(ddl)
        self.tables.append(name)
        mark_owned(self.conn, "TABLE", self.schema, name)

    def index(self, name: str, ddl: sql.Composed) -> None:
        drop_owned_index(self.conn, self.schema, name, advice=_REFUSAL_ADVICE)
        self.conn.execute(ddl)
        self.indexes.append(name)
        mark_owned(self.conn, "INDEX", self.schema, name)

    def qualified(self) -> list[str]:
        return [f"{self.schema}.{n}" for n in [*self.tables, *self.indexes]]

    def stop_listening(self) -> None:
        """Keep this setup's notices to its own builds (another setup builds next)."""
        if self._listening:
            self.conn.remove_notice_handler(self._on_notice)
            self._listening = False

    def drop_all(self) -> None:
        self.stop_listening()
        while self.indexes:
            drop_owned_index(self.conn, self.schema, self.indexes.pop(), advice=_REFUSAL_ADVICE)
        while self.tables:
            drop_owned_table(self.conn, self.schema, self.tables.pop())


def copy_memories(setup: Setup, names: Names, source: str) -> None:
    """The work table: the memories rows and columns, none of the source's indexes."""
    like = sql.SQL("(LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)").format(
        sql.Identifier(names.schema, source)
    )
    setup.table(names.work, sql.SQL("CREATE TABLE {} {}").format(setup.ident(names.work), like))
    setup.conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
            setup.ident(names.work), sql.Identifier(names.schema, source)
        )
    )
    # Set hint bits and the visibility map now, so no measured query dirties pages.
    setup.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(setup.ident(names.work)))


def groups(strategies: Sequence[str]) -> list[str]:
    """Strategies in the order given, the HNSW ones as one group "hnsw" (one shared build)."""
    out: list[str] = []
    for s in strategies:
        key = "hnsw" if s in HNSW_STRATEGIES else s
        if key not in out:
            out.append(key)
    return out


def failed_plans(group: str, wanted: Sequence[str]) -> list[Plan]:
    """Placeholders for the strategies of a group whose setup failed (rows say why)."""
    names = [s for s in wanted if s in HNSW_STRATEGIES] if group == "hnsw" else [group]
    return [
        Plan(s, "", {}, False, _fixed(set()), hot_only=s == "partial_hot")
        for s in dict.fromkeys(names)
    ]


def where_sql(
    source: FilterSource, pred: Predicate, uses_key: bool
) -> tuple[sql.Composable, tuple[int, ...]]:
    """The predicate's WHERE clause ($2 on) and its parameters' type OIDs."""
    col = sql.Identifier(pred.attribute)
    oid = source.param_oid(pred.attribute)
    if pred.kind == EQ:
        where: sql.Composable = sql.SQL("{} = $2").format(col)
        types: tuple[int, ...] = (oid,)
    elif pred.kind == RANGE:
        where, types = sql.SQL("{} BETWEEN $2 AND $3").format(col), (oid, oid)
    else:
        where, types = sql.SQL("{} && $2").format(col), (oid,)
    if uses_key and source.key is not None:
        where = sql.SQL("{} AND {} = {}").format(
            where, sql.Identifier(source.key), sql.SQL(f"${len(types) + 2}")
        )
        types = (*types, source.param_oid(source.key))
    return where, types


def prepare(
    group: str,
    setup: Setup,
    names: Names,
    layout: Layout,
    p: Params,
    *,
    wanted: Sequence[str],
) -> list[Plan]:
    """Create what the strategies of ``group`` need (marked) and say how each queries
    each predicate it applies to."""
    source, metric = layout.source, layout.source.metric
    work = setup.ident(names.work)
    tf = p.tenant_filter
    iterative = {"hnsw.max_scan_tuples": str(p.max_scan_tuples)}
    swept = len(p.ef_values) > 1

    def hnsw_q(ef: int) -> dict[str, str]:
        return {**COMMON_SETTINGS, QUERY_GUCS["hnsw"]: str(ef)}

    def stmt(
        pred: Predicate, form: str, table: sql.Composable = work, key: bool = tf
    ) -> tuple[str, tuple[int, ...]]:
        where, types = where_sql(source, pred, key)
        return query_sql(table, metric, p.k, where, form), types

    plans: list[Plan] = []
    if group == "hnsw":
        # Only the HNSW strategies the caller asked for; they share this one index.
        _vector_index(setup, names.hnsw, names.work, "hnsw", metric, p.hnsw)
        expect = _fixed({names.hnsw})
        for pred in layout.predicates:
            plain, types = stmt(pred, "plain")
            reorder, _ = stmt(pred, "reorder")
            for ef in p.ef_values:
                mark = ef if swept else None
                candidates = [
                    Plan("hnsw_plain", plain, {**hnsw_q(ef), "hnsw.iterative_scan": "off"}, tf,
                         expect, note=notes.HNSW_PLAIN, predicate=pred.name, types=types,
                         ef_search=mark),
                    Plan("hnsw_strict", plain,
                         {**hnsw_q(ef), "hnsw.iterative_scan": "strict_order", **iterative}, tf,
                         expect, note=notes.HNSW_STRICT, predicate=pred.name, types=types,
                         ef_search=mark),
                    Plan("hnsw_relaxed", reorder,
                         {**hnsw_q(ef), "hnsw.iterative_scan": "relaxed_order", **iterative},
                         tf, expect, note=notes.HNSW_RELAXED, predicate=pred.name, types=types,
                         ef_search=mark),
                ]  # fmt: skip
                plans += [plan for plan in candidates if plan.strategy in wanted]
        return plans
    if group == "ivfflat_iterative":
        _vector_index(setup, names.ivf, names.work, "ivfflat", metric, {"lists": p.lists})
        settings = {
            **COMMON_SETTINGS,
            QUERY_GUCS["ivfflat"]: str(p.probes),
            "ivfflat.iterative_scan": "relaxed_order",
        }
        if p.ivf_max_probes is not None:
            settings["ivfflat.max_probes"] = str(p.ivf_max_probes)
        note = notes.ivfflat(p.lists, p.probes)
        for pred in layout.predicates:
            reorder, types = stmt(pred, "reorder")
            plans.append(Plan(group, reorder, settings, tf, _fixed({names.ivf}), note=note,
                              predicate=pred.name, types=types))  # fmt: skip
        return plans
    if group == "btree_exact":
        index_of: dict[tuple[str, bool], str] = {}
        for pred in layout.predicates:
            gin = pred.kind == OVERLAP
            key = (pred.attribute, gin)
            if key not in index_of:
                name = names.filter_index(len(index_of))
                method = sql.SQL("USING gin ") if gin else sql.SQL("")
                ddl = sql.SQL("CREATE INDEX {} ON {} {}({})").format(
                    sql.Identifier(name), work, method, sql.Identifier(pred.attribute)
                )
                setup.index(name, ddl)
                index_of[key] = name
        setup.conn.execute(sql.SQL("ANALYZE {}").format(work))
        for pred in layout.predicates:
            exact, types = stmt(pred, "exact")
            index = index_of[pred.attribute, pred.kind == OVERLAP]
            plans.append(Plan(group, exact, dict(COMMON_SETTINGS), tf, _fixed({index}),
                              note=notes.exact(pred.kind == OVERLAP), predicate=pred.name,
                              types=types))  # fmt: skip
        return plans
    eq = next((pred for pred in layout.predicates if pred.kind == EQ), None)
    if eq is None:
        return []
    if group == "partial_hot":
        for label, name in layout.hot_index.items():
            literal = sql.Literal(source.literal(eq.attribute, layout.hot_values[label]))
            where = sql.SQL("{} = {}").format(sql.Identifier(eq.attribute), literal)
            _vector_index(setup, name, names.work, "hnsw", metric, p.hnsw, where)

        def expect_partial(value: Any, key: Any) -> tuple[set[str], set[str] | None]:
            return {layout.hot_index.get(repr(value), "<no partial index>")}, None

        plain, types = stmt(eq, "plain")
        note = notes.partial_hot(len(layout.hot_index), source.agents is not None)
        for ef in p.ef_values:
            settings = {**hnsw_q(ef), "hnsw.iterative_scan": "off"}
            plans.append(Plan(group, plain, settings, tf, expect_partial, hot_only=True,
                              note=note, predicate=eq.name, types=types,
                              ef_search=ef if swept else None))  # fmt: skip
        return plans
    if group == "partitioned":
        expect_part = _partitioned(setup, names, layout, p.hnsw)
        by_key = source.agents is not None  # agent data: by tenant, with the tenant filter
        reorder, types = stmt(eq, "reorder", setup.ident(names.part), by_key)
        note = notes.partitioned(len(layout.partitions), layout.partition_by)
        for ef in p.ef_values:
            settings = {**hnsw_q(ef), "hnsw.iterative_scan": "relaxed_order", **iterative}
            plans.append(Plan("partitioned", reorder, settings, by_key, expect_part, note=note,
                              predicate=eq.name, types=types,
                              ef_search=ef if swept else None))  # fmt: skip
        return plans
    raise ValueError(f"unknown strategy {group!r}")


def _fixed(indexes: set[str]) -> Expectation:
    def expect(value: Any, key: Any) -> tuple[set[str], set[str] | None]:
        return indexes, None

    return expect


def _partitioned(
    setup: Setup, names: Names, layout: Layout, hnsw: Mapping[str, int]
) -> Expectation:
    """A LIST-partitioned copy (a partition per tenant, or per common label, and a
    DEFAULT), an HNSW index per partition that holds rows."""
    source, metric = layout.source, layout.source.metric
    part = setup.ident(names.part)
    setup.table(
        names.part,
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE "
            "INCLUDING COMPRESSION) PARTITION BY LIST ({})"
        ).format(part, setup.ident(names.work), sql.Identifier(layout.partition_by)),
    )
    number: dict[str, int] = {}
    for i, value in enumerate(layout.partitions):
        name = names.partition(i)
        literal = sql.Literal(source.literal(layout.partition_by, value))
        setup.table(
            name,
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                setup.ident(name), part, literal
            ),
        )
        number[repr(value)] = i
    # Rows whose value has no partition of its own still have a home.
    default = names.default_partition
    setup.table(
        default,
        sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(setup.ident(default), part),
    )
    setup.conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(part, setup.ident(names.work))
    )
    setup.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(part))
    for i in range(len(layout.partitions)):
        _vector_index(setup, names.partition_index(i), names.partition(i), "hnsw", metric, hnsw)
    by_key = source.agents is not None
    if not by_key:  # labels without a partition of their own are queried there
        _vector_index(setup, names.default_partition_index, default, "hnsw", metric, hnsw)

    def expect(value: Any, key: Any) -> tuple[set[str], set[str] | None]:
        i = number.get(repr(key if by_key else value))
        if i is None:
            return {names.default_partition_index}, {default}
        return {names.partition_index(i)}, {names.partition(i)}

    return expect


def _vector_index(
    setup: Setup,
    name: str,
    table: str,
    method: str,
    metric: Metric,
    params: Mapping[str, int],
    where: sql.Composable | None = None,
) -> None:
    with_params = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in params.items()
    )
    ddl = sql.SQL("CREATE INDEX {} ON {} USING {} (embedding {}) WITH ({})").format(
        sql.Identifier(name),
        setup.ident(table),
        sql.SQL(method),
        sql.SQL(metric.opclass()),
        with_params,
    )
    if where is not None:
        ddl = sql.SQL("{} WHERE {}").format(ddl, where)
    setup.index(name, ddl)


def query_sql(
    table: sql.Composable, metric: Metric, k: int, where: sql.Composable, form: str
) -> str:
    """The filtered top-k statement of one strategy.

    plain:   ORDER BY distance LIMIT k, as applications write it (the vector index can
             serve it);
    reorder: pgvector's advice for relaxed_order: a materialised inner top-k, re-sorted
             by exact distance outside (``+ 0`` keeps PostgreSQL 17+ from reusing the
             inner order);
    exact:   ``ORDER BY (distance) + 0`` is an expression no vector index can serve,
             so the rows the filter selects are sorted exactly.
    """
    op = sql.SQL(metric.operator)
    if form == "plain":
        stmt = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY embedding {} $1 LIMIT {}").format(
            table, where, op, sql.Literal(k)
        )
    elif form == "reorder":
        stmt = sql.SQL(
            "WITH r AS MATERIALIZED (SELECT id, embedding {} $1 AS distance FROM {} WHERE {} "
            "ORDER BY distance LIMIT {}) SELECT id FROM r ORDER BY distance + 0"
        ).format(op, table, where, sql.Literal(k))
    else:
        stmt = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY (embedding {} $1) + 0 LIMIT {}").format(
            table, where, op, sql.Literal(k)
        )
    return stmt.as_string(None)
