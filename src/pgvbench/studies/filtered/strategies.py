"""What each strategy creates (DDL on pgvbench's marked copy) and how it queries.

``hnsw_plain``         HNSW, iterative scan off (shows the under-fill)
``hnsw_strict``        HNSW, ``hnsw.iterative_scan = strict_order`` + ``hnsw.max_scan_tuples``
``hnsw_relaxed``       HNSW, ``relaxed_order``, re-ordered by distance in an outer query
``ivfflat_iterative``  IVFFlat, ``ivfflat.iterative_scan = relaxed_order`` (+ max_probes)
``btree_exact``        B-tree on agent_id, exact sort of the agent's rows
``partial_hot``        one partial HNSW index per hot agent (only hot agents are measured)
``partitioned``        a copy LIST-partitioned by tenant_id, one HNSW index per partition

Every object is created with pgvbench's mark and dropped again by :class:`Setup`; a name
already taken by an object without the mark stops the comparison (SafetyError).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ...datasets.agents.dataset import AgentDataset
from ...db.schema import drop_owned_index, drop_owned_table, mark_owned
from ...metrics import Metric
from ...spec.model import QUERY_GUCS
from . import notes

MAX_IDENTIFIER = 63
HNSW_STRATEGIES = ("hnsw_plain", "hnsw_strict", "hnsw_relaxed")
#: Every strategy's session: custom plans (a partial index matches only a bound agent id)
#: and no sequential scan (the planner's choice for small agents, which is no strategy).
COMMON_SETTINGS = {"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off"}
_REFUSAL_ADVICE = "Use another prefix."

#: (agent, tenant) -> (index names the plan must use exactly, relations it may scan)
Expectation = Callable[[int, int], tuple[set[str], set[str] | None]]


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

    def partition(self, tenant: int) -> str:
        return f"{self.part}_{tenant}"

    def partition_index(self, tenant: int) -> str:
        return f"{self.part}_{tenant}_hnsw"

    @property
    def default_partition(self) -> str:
        return f"{self.part}_def"

    @classmethod
    def make(cls, schema: str, prefix: str, tenants: int, hot: int) -> Names:
        work = f"{prefix}_fmem"
        names = cls(
            schema=schema,
            work=work,
            hnsw=f"{work}_hnsw",
            ivf=f"{work}_ivf",
            btree=f"{work}_agent",
            part=f"{prefix}_fpart",
            prefix=prefix,
        )
        longest = [
            names.hot(max(0, hot - 1)),
            names.partition_index(max(0, tenants - 1)),
            names.default_partition,
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
    """How a strategy queries and what its plans must show."""

    strategy: str
    sql: str  # $1 vector, $2 agent uuid, $3 tenant uuid (when uses_tenant)
    settings: Mapping[str, str]
    uses_tenant: bool
    expect: Expectation
    hot_only: bool = False
    note: str = ""  # what a reader of the results must know about this strategy


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params:
    """What the strategies are built and queried with."""

    k: int
    tenant_filter: bool
    ef_search: int
    max_scan_tuples: int
    hnsw: Mapping[str, int]  # m, ef_construction
    lists: int
    probes: int
    ivf_max_probes: int | None


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


def prepare(
    group: str,
    setup: Setup,
    names: Names,
    metric: Metric,
    p: Params,
    *,
    hot_index: Mapping[int, str],
    dataset: AgentDataset,
    tenants_present: np.ndarray,
    wanted: Sequence[str],
) -> list[Plan]:
    """Create what the strategies of ``group`` need (marked) and say how they query."""
    work = setup.ident(names.work)
    tf = p.tenant_filter
    plain = query_sql(work, metric, p.k, tenant=tf, form="plain")
    reorder = query_sql(work, metric, p.k, tenant=tf, form="reorder")
    hnsw_q = {**COMMON_SETTINGS, QUERY_GUCS["hnsw"]: str(p.ef_search)}
    iterative = {"hnsw.max_scan_tuples": str(p.max_scan_tuples)}
    if group == "hnsw":
        # Only the HNSW strategies the caller asked for; they share this one index.
        _vector_index(setup, names.hnsw, names.work, "hnsw", metric, p.hnsw)
        expect = _fixed({names.hnsw})
        candidates = [
            Plan("hnsw_plain", plain, {**hnsw_q, "hnsw.iterative_scan": "off"}, tf, expect,
                 note=notes.HNSW_PLAIN),
            Plan("hnsw_strict", plain,
                 {**hnsw_q, "hnsw.iterative_scan": "strict_order", **iterative}, tf, expect,
                 note=notes.HNSW_STRICT),
            Plan("hnsw_relaxed", reorder,
                 {**hnsw_q, "hnsw.iterative_scan": "relaxed_order", **iterative}, tf, expect,
                 note=notes.HNSW_RELAXED),
        ]  # fmt: skip
        return [plan for plan in candidates if plan.strategy in wanted]
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
        return [Plan(group, reorder, settings, tf, _fixed({names.ivf}), note=note)]
    if group == "btree_exact":
        setup.index(
            names.btree,
            sql.SQL("CREATE INDEX {} ON {} (agent_id)").format(sql.Identifier(names.btree), work),
        )
        setup.conn.execute(sql.SQL("ANALYZE {}").format(work))
        exact = query_sql(work, metric, p.k, tenant=tf, form="exact")
        return [
            Plan(group, exact, dict(COMMON_SETTINGS), tf, _fixed({names.btree}),
                 note=notes.BTREE_EXACT)
        ]  # fmt: skip
    if group == "partial_hot":
        for agent, name in hot_index.items():
            uid = sql.Literal(str(dataset.id_of("agents", agent)))
            where = sql.SQL("agent_id = {}").format(uid)
            _vector_index(setup, name, names.work, "hnsw", metric, p.hnsw, where)

        def expect_partial(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
            return {hot_index.get(agent, "<no partial index>")}, None

        settings = {**hnsw_q, "hnsw.iterative_scan": "off"}
        note = notes.partial_hot(len(hot_index))
        return [Plan(group, plain, settings, tf, expect_partial, hot_only=True, note=note)]
    if group == "partitioned":
        return [_partitioned(setup, names, metric, p, hnsw_q, iterative, dataset, tenants_present)]
    raise ValueError(f"unknown strategy {group!r}")


def _fixed(indexes: set[str]) -> Expectation:
    def expect(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
        return indexes, None

    return expect


def _partitioned(
    setup: Setup,
    names: Names,
    metric: Metric,
    p: Params,
    hnsw_q: Mapping[str, str],
    iterative: Mapping[str, str],
    dataset: AgentDataset,
    tenants_present: np.ndarray,
) -> Plan:
    """A LIST-partitioned copy (one partition per tenant), an HNSW index per partition."""
    part = setup.ident(names.part)
    setup.table(
        names.part,
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE "
            "INCLUDING COMPRESSION) PARTITION BY LIST (tenant_id)"
        ).format(part, setup.ident(names.work)),
    )
    for t in tenants_present.tolist():
        name = names.partition(t)
        setup.table(
            name,
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                setup.ident(name), part, sql.Literal(str(dataset.id_of("tenants", t)))
            ),
        )
    # Rows whose tenant the dataset does not know still have a home.
    default = names.default_partition
    setup.table(
        default,
        sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(setup.ident(default), part),
    )
    setup.conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(part, setup.ident(names.work))
    )
    setup.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(part))
    for t in tenants_present.tolist():
        _vector_index(setup, names.partition_index(t), names.partition(t), "hnsw", metric, p.hnsw)

    def expect(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
        return {names.partition_index(tenant)}, {names.partition(tenant)}

    reorder = query_sql(part, metric, p.k, tenant=True, form="reorder")
    settings = {**hnsw_q, "hnsw.iterative_scan": "relaxed_order", **iterative}
    note = notes.partitioned(int(tenants_present.size))
    return Plan("partitioned", reorder, settings, True, expect, note=note)


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


def query_sql(table: sql.Composable, metric: Metric, k: int, *, tenant: bool, form: str) -> str:
    """The filtered top-k statement of one strategy.

    plain:   ORDER BY distance LIMIT k, as applications write it (the vector index can
             serve it);
    reorder: pgvector's advice for relaxed_order: a materialised inner top-k, re-sorted
             by exact distance outside (``+ 0`` keeps PostgreSQL 17+ from reusing the
             inner order);
    exact:   ``ORDER BY (distance) + 0`` is an expression no vector index can serve,
             so the rows the filter selects are sorted exactly.
    """
    where = sql.SQL("agent_id = $2") + (sql.SQL(" AND tenant_id = $3") if tenant else sql.SQL(""))
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
