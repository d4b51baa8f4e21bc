"""Filtered top-k over agent memories: which way to run ``WHERE agent_id = ?`` wins, and when.

The agent-memory query is ``SELECT id FROM memories WHERE agent_id = $2 ORDER BY
embedding <op> $1 LIMIT k``. How it should be run depends on how many rows the filter
keeps (pgvector 0.8 README, "Filtering"): a vector index scans the nearest rows and then
filters, so without iterative scan a selective filter returns fewer than k rows; a B-tree
on the filter column scans exactly the agent's rows, which is cheap for small agents and
slow for big ones. This module measures, on the same data, every strategy over agents
grouped by their share of the memories:

``hnsw_plain``         HNSW, iterative scan off (shows the under-fill)
``hnsw_strict``        HNSW, ``hnsw.iterative_scan = strict_order`` + ``hnsw.max_scan_tuples``
``hnsw_relaxed``       HNSW, ``relaxed_order``, re-ordered by distance in an outer query
``ivfflat_iterative``  IVFFlat, ``ivfflat.iterative_scan = relaxed_order`` (+ max_probes)
``btree_exact``        B-tree on agent_id, exact sort of the agent's rows
``partial_hot``        one partial HNSW index per hot agent (only hot agents are measured)
``partitioned``        a copy LIST-partitioned by tenant_id, one HNSW index per partition

Every strategy runs on pgvbench's own copy of the memories table (same rows, same
columns, but only the indexes the strategy creates), so no index of another strategy or
of the application can steal the plan. Each query's plan is checked with EXPLAIN (all of
them by default); a plan that does not take the intended path makes the row invalid.
Everything created is marked as pgvbench's and dropped afterwards.

Ground truth is exact top-k over just the rows that match the filter, computed
client-side from the dataset arrays; recall is tie-aware; fill rate is rows returned /
min(k, rows matching).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import psycopg
from psycopg import pq as libpq
from psycopg import sql

from ..datasets.agents.dataset import AgentDataset
from ..datasets.agents.model import table_name
from ..datasets.groundtruth import MAX_K, GroundTruth, exact_knn
from ..datasets.recall import tie_aware_recall
from ..db.schema import OWNER_MARK, drop_owned_table, relation_bytes
from ..engine.operations import SESSION, ParamOperation, encode_vector
from ..engine.providers import DirectProvider
from ..engine.threaded import LoadShape, run_load
from ..errors import DatasetError, SafetyError
from ..metrics import Metric
from ..server.connection import connect
from .vector import index_names_in_plan

log = logging.getLogger(__name__)

STRATEGIES = (
    "hnsw_plain",
    "hnsw_strict",
    "hnsw_relaxed",
    "ivfflat_iterative",
    "btree_exact",
    "partial_hot",
    "partitioned",
)
#: Shares of all memories that separate the selectivity buckets: < 0.1%, 0.1-1%, 1-5%, > 5%.
DEFAULT_BUCKET_EDGES = (0.001, 0.01, 0.05)
UUID_OID = 2950
MAX_IDENTIFIER = 63
LatencyKey = Literal["p50", "p95", "p99"]
_HNSW_STRATEGIES = ("hnsw_plain", "hnsw_strict", "hnsw_relaxed")


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class BucketInfo:
    """Agents whose share of all memories lies in [low, high)."""

    label: str
    low: float
    high: float | None  # None: no upper edge
    agents: int  # agents with at least one memory in the bucket
    memories: int  # their memories together
    queries: int  # query vectors drawn for the bucket (0 when it has no agent)
    hot_queries: int  # of partial_hot (hot agents of the bucket only)


@dataclasses.dataclass
class StrategySetup:
    """What one strategy created (all dropped again afterwards) and how it queried."""

    strategy: str
    objects: list[str]  # schema-qualified names of the tables and indexes created
    setup_seconds: float
    index_bytes: int
    settings: dict[str, str]  # session settings of its queries
    sql: str  # the query, $1 = vector, $2 = agent uuid, $3 = tenant uuid
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FilteredRow:
    """One strategy x selectivity bucket. Latencies in ms (single client, closed loop)."""

    strategy: str
    bucket: str
    scope: str  # "all agents of the bucket" or "hot agents only (n)"
    n_queries: int
    agents: int  # distinct agents among the queries
    rows_matching_mean: float  # rows that pass the filter, mean over the queries
    recall_mean: float | None
    recall_p5: float | None
    fill_mean: float | None
    fill_min: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    qps: float | None
    buffers_per_query: float | None  # shared hit + read, EXPLAIN (ANALYZE, BUFFERS) mean
    valid: bool
    plan_indexes: list[str] = dataclasses.field(default_factory=list)  # seen by EXPLAIN
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FilteredComparison:
    """Every strategy x bucket on one memories table; plain fields, JSON-serialisable."""

    table: str
    memories: int
    agents: int
    dim: int
    metric: str
    k: int
    ef_search: int
    max_scan_tuples: int
    bucket_edges: list[float]
    queries_per_bucket: int
    tenant_filter: bool
    seed: int
    measure_seconds: float
    hot_agents: list[str]  # uuids of the agents with partial indexes
    buckets: list[BucketInfo]
    setups: list[StrategySetup]
    rows: list[FilteredRow]
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def row(self, strategy: str, bucket: str) -> FilteredRow | None:
        for r in self.rows:
            if r.strategy == strategy and r.bucket == bucket:
                return r
        return None


# --------------------------------------------------------------------------- buckets


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """Readable names of the buckets that ``edges`` (shares, ascending) make."""
    pct = [f"{100 * e:g}%" for e in edges]
    if not pct:
        return ["all"]
    middle = [f"{pct[i][:-1]}-{pct[i + 1]}" for i in range(len(pct) - 1)]
    return [f"< {pct[0]}", *middle, f"> {pct[-1]}"]


def agent_buckets(counts: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index of each agent by its share of all memories; -1 for agents with none."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    share = counts / max(1, total)
    # side="right": a share equal to an edge belongs to the bucket above it.
    bucket = np.searchsorted(np.asarray(edges, dtype=np.float64), share, side="right")
    return np.where(counts > 0, bucket, -1).astype(np.int64)


def _check_edges(edges: Sequence[float]) -> list[float]:
    values = [float(e) for e in edges]
    if any(not 0.0 < e < 1.0 for e in values) or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"bucket_edges must be increasing shares in (0, 1), got {list(edges)}")
    return values


# --------------------------------------------------------------------------- ground truth


@dataclasses.dataclass(frozen=True, eq=False)
class FilteredTruth:
    """Exact filtered top-k of each query: memory row indexes (global), nearest first.

    ``rows[i]`` are all rows matching query i's filter (ascending): a returned id outside
    them broke the filter. ``ids[i]`` has min(k, len(rows[i])) entries.
    """

    rows: list[np.ndarray]
    ids: list[np.ndarray]
    distances: list[np.ndarray]

    @property
    def matching(self) -> np.ndarray:
        return np.array([r.size for r in self.rows], dtype=np.int64)


def matching_rows(dataset: AgentDataset, agent: int, tenant: int | None = None) -> np.ndarray:
    """Memory rows of ``agent`` (and of ``tenant`` when given), ascending."""
    rows = np.sort(np.asarray(dataset.memory_ids_of_agent(agent), dtype=np.int64))
    if tenant is not None:
        rows = rows[dataset.memory_tenant[rows] == tenant]
    return rows


def filtered_ground_truth(
    dataset: AgentDataset,
    agents: np.ndarray,
    vectors: np.ndarray,
    k: int,
    *,
    tenants: np.ndarray | None = None,
) -> FilteredTruth:
    """Exact top-k of each query vector over only the rows its filter keeps.

    Queries of the same filter share one exact search over that filter's rows (faiss
    brute force, distances recomputed in float64, ties by id): the cost is that of
    scanning each distinct agent's rows once.
    """
    metric = dataset.spec.metric
    nq = len(agents)
    rows_of: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    ids_of: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    dist_of: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * nq
    groups: dict[tuple[int, int], list[int]] = {}
    for i in range(nq):
        key = (int(agents[i]), -1 if tenants is None else int(tenants[i]))
        groups.setdefault(key, []).append(i)
    for (agent, tenant), members in groups.items():
        rows = matching_rows(dataset, agent, None if tenant < 0 else tenant)
        for i in members:
            rows_of[i] = rows
        if rows.size == 0:
            continue
        kk = min(k, int(rows.size))
        base = dataset.memory_embedding[rows]
        local, dist = exact_knn(base, vectors[members], kk, metric)
        for j, i in enumerate(members):
            ids_of[i] = rows[local[j]]
            dist_of[i] = dist[j]
    return FilteredTruth(rows=rows_of, ids=ids_of, distances=dist_of)


def filtered_recall(
    returned: Sequence[Sequence[int]],
    truth: FilteredTruth,
    dataset: AgentDataset,
    vectors: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(recall, fill) per query; queries with no matching row get NaN for both.

    ``returned`` holds memory row indexes, -1 for an id that is not a memory of the
    dataset. Recall is tie-aware over the matching rows at min(k, rows matching); a
    returned row outside the filter counts as a miss.
    """
    metric = dataset.spec.metric
    nq = len(returned)
    recall = np.full(nq, np.nan)
    fill = np.full(nq, np.nan)
    for i in range(nq):
        rows = truth.rows[i]
        if rows.size == 0:
            continue
        kk = min(k, int(rows.size))
        got = np.asarray(returned[i], dtype=np.int64).reshape(-1)
        fill[i] = min(got.size, kk) / kk
        # Global row -> position among the matching rows (-1 when outside the filter).
        pos = np.searchsorted(rows, got)
        pos = np.minimum(pos, rows.size - 1)
        local = np.where(rows[pos] == got, pos, -1)
        truth_local = np.searchsorted(rows, truth.ids[i][:kk])
        gt = GroundTruth(
            ids=truth_local[None, :],
            distances=truth.distances[i][None, :kk],
            method="filtered exact",
            seconds=0.0,
            cached=False,
        )
        recall[i] = tie_aware_recall(
            local[None, :], gt, vectors[i : i + 1], dataset.memory_embedding[rows], kk, metric
        )[0]
    return recall, fill


# --------------------------------------------------------------------------- queries


@dataclasses.dataclass(eq=False)
class _Queries:
    """Query vectors of one bucket: the agent, its tenant, the vector, the ground truth."""

    agents: np.ndarray
    tenants: np.ndarray
    vectors: np.ndarray
    truth: FilteredTruth | None = None  # filter: the agent (and tenant if tenant_filter)
    tenant_truth: FilteredTruth | None = None  # filter: the agent and its tenant

    def __len__(self) -> int:
        return int(self.agents.size)

    def truth_for(self, uses_tenant: bool) -> FilteredTruth:
        truth = self.tenant_truth if uses_tenant else self.truth
        assert truth is not None
        return truth


def _draw_queries(
    dataset: AgentDataset, pool: np.ndarray, n: int, rng: np.random.Generator
) -> _Queries:
    """``n`` queries spread evenly over the agents of ``pool`` (each agent in turn)."""
    dim = dataset.memory_embedding.shape[1]
    if pool.size == 0 or n <= 0:
        return _Queries(
            np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, dim), np.float32)
        )
    order = rng.permutation(pool)
    agents = order[np.arange(n) % order.size].astype(np.int64)
    vectors = np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])
    tenants = np.asarray(dataset.tenant_of_agent, dtype=np.int64)[agents]
    return _Queries(agents, tenants, vectors.astype(np.float32))


# --------------------------------------------------------------------------- strategies


@dataclasses.dataclass
class _Names:
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

    @classmethod
    def make(cls, schema: str, prefix: str, tenants: int, hot: int) -> _Names:
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
            f"{names.part}_def",
        ]
        too_long = [n for n in longest if len(n.encode()) > MAX_IDENTIFIER]
        if too_long:
            raise ValueError(
                f"prefix {prefix!r} is too long: object names such as {too_long[0]!r} would "
                f"exceed PostgreSQL's {MAX_IDENTIFIER} bytes; use a shorter prefix"
            )
        return names


@dataclasses.dataclass
class _Plan:
    """How a strategy queries and what its plans must show."""

    strategy: str
    sql: str  # $1 vector, $2 agent uuid, $3 tenant uuid (when uses_tenant)
    settings: dict[str, str]
    uses_tenant: bool
    # (agent, tenant) -> (index names the plan must use exactly, relations it may scan)
    expect: Callable[[int, int], tuple[set[str], set[str] | None]]
    hot_only: bool = False
    note: str = ""  # what a reader of the results must know about this strategy


class _Setup:
    """Creates objects with pgvbench's mark, remembers them, drops them again."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self.tables: list[str] = []  # dropped last, in reverse order
        self.indexes: list[str] = []
        self.notices: list[str] = []

        # Build NOTICEs (e.g. "hnsw graph no longer fits into maintenance_work_mem").
        conn.add_notice_handler(self._on_notice)

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self.notices.append(f"{diag.severity}: {diag.message_primary}")

    def ident(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def mark(self, kind: str, name: str) -> None:
        self.conn.execute(
            sql.SQL("COMMENT ON {} {} IS {}").format(
                sql.SQL(kind), self.ident(name), sql.Literal(OWNER_MARK)
            )
        )

    def table(self, name: str, ddl: sql.Composed) -> None:
        # A marked leftover of an interrupted run is dropped; anything else stops us.
        drop_owned_table(self.conn, self.schema, name)
        self.conn.execute(ddl)
        self.tables.append(name)
        self.mark("TABLE", name)

    def index(self, name: str, ddl: sql.Composed) -> None:
        _drop_owned_index(self.conn, self.schema, name)
        self.conn.execute(ddl)
        self.indexes.append(name)
        self.mark("INDEX", name)

    def qualified(self) -> list[str]:
        return [f"{self.schema}.{n}" for n in [*self.tables, *self.indexes]]

    def drop_indexes(self) -> None:
        while self.indexes:
            _drop_owned_index(self.conn, self.schema, self.indexes.pop())

    def drop_all(self) -> None:
        self.conn.remove_notice_handler(self._on_notice)
        self.drop_indexes()
        while self.tables:
            drop_owned_table(self.conn, self.schema, self.tables.pop())


def _drop_owned_index(conn: psycopg.Connection[Any], schema: str, name: str) -> None:
    row = conn.execute(
        "SELECT c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    if row is None:
        return
    if row[1] != OWNER_MARK or row[0] not in ("i", "I"):
        raise SafetyError(
            f"{schema}.{name} exists without pgvbench's mark (or is not an index); pgvbench "
            "will not drop it. Use another prefix."
        )
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))


def _copy_memories(setup: _Setup, names: _Names, source: str) -> None:
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


def _vector_index(
    setup: _Setup,
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


def _query_sql(table: sql.Composable, metric: Metric, k: int, *, tenant: bool, form: str) -> str:
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


# --------------------------------------------------------------------------- measuring


@dataclasses.dataclass
class _Bucket:
    info: BucketInfo
    queries: _Queries
    hot: _Queries


def _settings_sql(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> None:
    for key, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, false)", (key, value))


def _params(queries: _Queries, dataset: AgentDataset, uses_tenant: bool) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for i in range(len(queries)):
        agent = dataset.id_of("agents", int(queries.agents[i])).bytes
        params: list[bytes] = [encode_vector(queries.vectors[i]), agent]
        if uses_tenant:
            params.append(dataset.id_of("tenants", int(queries.tenants[i])).bytes)
        out.append(params)
    return out


def _result_error(pgconn: libpq.abc.PGconn, result: libpq.abc.PGresult) -> str:
    raw = result.error_message or pgconn.error_message
    return raw.decode("utf-8", "replace").strip().splitlines()[0] if raw else "unknown error"


def _fetch_ids(
    conn: psycopg.Connection[Any],
    plan: _Plan,
    params: Sequence[Sequence[bytes]],
    types: Sequence[int],
    statement: bytes,
) -> list[list[bytes]]:
    """The uuids (16 raw bytes) each query returns, in the order returned."""
    pgconn = conn.pgconn
    res = pgconn.prepare(statement, plan.sql.encode(), list(types))
    if res.status != libpq.ExecStatus.COMMAND_OK:
        raise psycopg.OperationalError(_result_error(pgconn, res))
    formats = [1] * len(types)
    out: list[list[bytes]] = []
    for p in params:
        res = pgconn.exec_prepared(statement, list(p), formats, 1)
        if res.status != libpq.ExecStatus.TUPLES_OK:
            raise psycopg.OperationalError(_result_error(pgconn, res))
        out.append([bytes(res.get_value(r, 0) or b"") for r in range(res.ntuples)])
    return out


def _explain(
    conn: psycopg.Connection[Any],
    plan: _Plan,
    params: Sequence[bytes],
    types: Sequence[int],
) -> dict[str, Any]:
    pgconn = conn.pgconn
    stmt = b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + plan.sql.encode()
    res = pgconn.exec_params(stmt, list(params), list(types), [1] * len(types), 0)
    if res.status != libpq.ExecStatus.TUPLES_OK:
        raise psycopg.OperationalError(_result_error(pgconn, res))
    raw = res.get_value(0, 0) or b"[]"
    doc: dict[str, Any] = json.loads(raw)[0]
    return doc


def _relations(node: dict[str, Any]) -> Iterator[str]:
    if "Relation Name" in node:
        yield str(node["Relation Name"])
    for child in node.get("Plans", []):
        yield from _relations(child)


def _plan_problem(doc: dict[str, Any], indexes: set[str], relations: set[str] | None) -> str | None:
    """None when the plan uses exactly the intended indexes (and relations)."""
    node = doc["Plan"]
    used = set(index_names_in_plan(node))
    if used != indexes:
        found = ", ".join(sorted(used)) or "no index"
        return f"the plan uses {found} instead of {', '.join(sorted(indexes))}"
    if relations is not None:
        scanned = set(_relations(node))
        if scanned != relations:
            return f"the plan scans {', '.join(sorted(scanned))}, not only {', '.join(relations)}"
    return None


def _uuid_index(dataset: AgentDataset, truth: FilteredTruth) -> dict[bytes, int]:
    """uuid bytes -> memory row, for the rows any query's filter matches (ids are hashes)."""
    rows = np.unique(np.concatenate([r for r in truth.rows if r.size] or [np.empty(0, np.int64)]))
    return {dataset.id_of("memories", int(r)).bytes: int(r) for r in rows}


def _percentile(values: np.ndarray, pct: float) -> float:
    return float(np.percentile(values, pct, method="linear"))


def _measure(
    dsn: str,
    plan: _Plan,
    bucket: _Bucket,
    dataset: AgentDataset,
    *,
    k: int,
    vector_oid: int,
    explain_queries: int,
    warmup_s: float,
    measure_s: float,
    seed: int,
    serial: int,
) -> FilteredRow:
    queries = bucket.hot if plan.hot_only else bucket.queries
    truth = queries.truth_for(plan.uses_tenant)
    scope = (
        f"hot agents only ({np.unique(queries.agents).size})"
        if plan.hot_only
        else "all agents of the bucket"
    )
    row = FilteredRow(
        strategy=plan.strategy,
        bucket=bucket.info.label,
        scope=scope,
        n_queries=len(queries),
        agents=int(np.unique(queries.agents).size),
        rows_matching_mean=float(truth.matching.mean()) if len(queries) else 0.0,
        recall_mean=None,
        recall_p5=None,
        fill_mean=None,
        fill_min=None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        latency_p99_ms=None,
        qps=None,
        buffers_per_query=None,
        valid=False,
    )
    types = [vector_oid, UUID_OID] + ([UUID_OID] if plan.uses_tenant else [])
    params = _params(queries, dataset, plan.uses_tenant)
    with connect(dsn) as conn:
        _settings_sql(conn, plan.settings)
        # Ids first: this also warms the caches before EXPLAIN and the timed loop.
        fetched = _fetch_ids(conn, plan, params, types, f"pgvb_filt_{serial}".encode())
        problems: list[str] = []
        buffers: list[float] = []
        seen: set[str] = set()
        for i in range(min(explain_queries, len(queries))):
            doc = _explain(conn, plan, params[i], types)
            node = doc["Plan"]
            # The top node's counts include its children, CTE and InitPlans (not planning).
            buffers.append(float(node["Shared Hit Blocks"] + node["Shared Read Blocks"]))
            seen.update(index_names_in_plan(node))
            expect_idx, expect_rel = plan.expect(int(queries.agents[i]), int(queries.tenants[i]))
            problem = _plan_problem(doc, expect_idx, expect_rel)
            if problem is not None:
                problems.append(problem)
    by_uuid = _uuid_index(dataset, truth)
    returned = [[by_uuid.get(u, -1) for u in ids] for ids in fetched]
    recall, fill = filtered_recall(returned, truth, dataset, queries.vectors, k)
    row.recall_mean = round(float(np.mean(recall)), 4)
    row.recall_p5 = round(_percentile(recall, 5), 4)
    row.fill_mean = round(float(np.mean(fill)), 4)
    row.fill_min = round(float(np.min(fill)), 4)
    row.buffers_per_query = round(float(np.mean(buffers)), 1) if buffers else None
    row.plan_indexes = sorted(seen)
    wrong = sum(1 for r in returned for x in r if x < 0)
    if wrong:
        row.notes.append(f"{wrong} returned rows are not memories of the queried agent")
    short = int(np.count_nonzero(fill < 1.0))
    if short:
        row.notes.append(
            f"under-fill: {short} of {len(queries)} queries returned fewer than "
            f"min(k, rows matching) rows"
        )
    if problems:
        row.notes.append(
            f"plan check failed on {len(problems)} of {len(buffers)} EXPLAINed queries: "
            f"{problems[0]}; timings are not of the intended path"
        )
    op = ParamOperation(
        name=f"filt_{serial}",
        sql=plan.sql,
        types=types,
        formats=[1] * len(types),
        params=lambda seq: params[seq % len(params)],
        settings=plan.settings,
    )
    outcome = run_load(
        op,
        DirectProvider(dsn, op, SESSION),
        LoadShape(clients=1, warmup_s=warmup_s, duration_s=measure_s, seed=seed),
        probe_dsn=dsn,
    )
    latency = outcome.latency.summary()
    if latency is not None:
        row.latency_p50_ms = round(latency.p50, 4)
        row.latency_p95_ms = round(latency.p95, 4)
        row.latency_p99_ms = round(latency.p99, 4)
        row.qps = round(outcome.qps, 1)
    if outcome.errors:
        first = next(iter(outcome.error_messages), "")
        row.notes.append(f"{outcome.errors} timed queries failed: {first}")
    if outcome.aborted:
        row.notes.append(f"timed run aborted: {outcome.aborted}")
    row.valid = not problems and latency is not None and not outcome.errors and not wrong
    return row


def _empty_row(plan_name: str, bucket: _Bucket, hot_only: bool, note: str) -> FilteredRow:
    queries = bucket.hot if hot_only else bucket.queries
    return FilteredRow(
        strategy=plan_name,
        bucket=bucket.info.label,
        scope="hot agents only" if hot_only else "all agents of the bucket",
        n_queries=len(queries),
        agents=int(np.unique(queries.agents).size),
        rows_matching_mean=0.0,
        recall_mean=None,
        recall_p5=None,
        fill_mean=None,
        fill_min=None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        latency_p99_ms=None,
        qps=None,
        buffers_per_query=None,
        valid=False,
        notes=[note],
    )


# --------------------------------------------------------------------------- compare


def _table_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int | None:
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is None:
        return None
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
    fetched = count.fetchone()
    return int(fetched[0]) if fetched else 0


def compare_filtered(
    conn_dsn: str,
    *,
    schema: str,
    prefix: str,
    dataset: AgentDataset,
    strategies: Sequence[str] = STRATEGIES,
    k: int = 10,
    ef_search: int = 40,
    max_scan_tuples: int = 20_000,
    bucket_edges: Sequence[float] = DEFAULT_BUCKET_EDGES,
    queries_per_bucket: int = 50,
    seed: int = 0,
    measure_seconds: float = 2.0,
    warmup_seconds: float | None = None,
    tenant_filter: bool = False,
    hot_agents: int = 3,
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    ivf_lists: int | None = None,
    ivf_probes: int | None = None,
    ivf_max_probes: int | None = None,
    explain_queries: int | None = None,
    maintenance_work_mem: str | None = None,
) -> FilteredComparison:
    """Measure each strategy on each selectivity bucket of ``{prefix}_memories``.

    The memories table must hold ``dataset`` (as ``load_agent_dataset`` writes it). For
    each strategy: create what it needs on a marked copy of the table; per bucket fetch
    the ids of all queries (recall, fill), run EXPLAIN (ANALYZE, BUFFERS) on the first
    ``explain_queries`` (default: all) to check the intended index and count buffers,
    time the queries with ``run_load`` (one client, closed loop, ``measure_seconds``);
    then drop what was created. ``tenant_filter`` adds ``AND tenant_id = $3`` to every
    strategy (the RAG form); ``partitioned`` always filters by tenant (that is how it
    prunes).
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1..{MAX_K}, got {k}")
    if queries_per_bucket < 1 or measure_seconds <= 0:
        raise ValueError("queries_per_bucket and measure_seconds must be > 0")
    if explain_queries is not None and explain_queries < 1:
        raise ValueError("explain_queries must be >= 1 (or None: every query)")
    edges = _check_edges(bucket_edges)
    metric = dataset.spec.metric
    source = table_name(prefix, "memories")
    names = _Names.make(schema, prefix, dataset.tenants, hot_agents)
    warmup_s = min(0.5, measure_seconds / 4) if warmup_seconds is None else warmup_seconds
    notes: list[str] = []

    counts = np.asarray(dataset.memory_count_of_agent, dtype=np.int64)
    bucket_of = agent_buckets(counts, edges)
    labels = bucket_labels(edges)
    hot = np.argsort(-counts, kind="stable")[: max(0, hot_agents)]
    hot = hot[counts[hot] > 0]
    if (counts == 0).any():
        notes.append(f"{int((counts == 0).sum())} agents without memories are not queried")
    buckets: list[_Bucket] = []
    for b, label in enumerate(labels):
        pool = np.flatnonzero(bucket_of == b)
        queries = _draw_queries(dataset, pool, queries_per_bucket, np.random.default_rng([seed, b]))
        hot_pool = np.intersect1d(pool, hot)
        hot_queries = _draw_queries(
            dataset, hot_pool, queries_per_bucket, np.random.default_rng([seed, 1000 + b])
        )
        low = 0.0 if b == 0 else edges[b - 1]
        info = BucketInfo(
            label=label,
            low=low,
            high=edges[b] if b < len(edges) else None,
            agents=int(pool.size),
            memories=int(counts[pool].sum()),
            queries=len(queries),
            hot_queries=len(hot_queries),
        )
        buckets.append(_Bucket(info, queries, hot_queries))
        if pool.size == 0:
            notes.append(f"bucket {label} has no agent: not measured")

    # Ground truth: exact top-k over only the rows each query's filter keeps. When every
    # memory has its agent's tenant, adding the tenant filter keeps the same rows.
    consistent = bool(
        np.array_equal(
            np.asarray(dataset.tenant_of_agent)[dataset.memory_agent], dataset.memory_tenant
        )
    )
    if not consistent:
        notes.append("some memories carry another tenant than their agent's")
    started = time.perf_counter()
    for bucket in buckets:
        for qs in (bucket.queries, bucket.hot):
            both = filtered_ground_truth(dataset, qs.agents, qs.vectors, k, tenants=qs.tenants)
            qs.tenant_truth = both
            qs.truth = (
                both
                if tenant_filter or consistent
                else filtered_ground_truth(dataset, qs.agents, qs.vectors, k)
            )
    truth_s = time.perf_counter() - started
    notes.append(f"filtered ground truth: exact, client-side, {truth_s:.2f} s")

    setups: list[StrategySetup] = []
    rows: list[FilteredRow] = []
    lists = ivf_lists or max(1, min(dataset.memories // 1000, 4096))
    probes = ivf_probes or max(1, round(math.sqrt(lists)))
    hnsw_params = {"m": hnsw_m, "ef_construction": hnsw_ef_construction}
    common = {"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off"}
    hnsw_q = {"hnsw.ef_search": str(ef_search)}
    work_ident = sql.Identifier(schema, names.work)
    hot_index = {int(a): names.hot(i) for i, a in enumerate(hot)}
    tenants_present = np.unique(np.asarray(dataset.memory_tenant, dtype=np.int64))
    serial = 0

    with connect(conn_dsn) as conn:
        present = _table_rows(conn, schema, source)
        if present is None:
            raise DatasetError(
                f"{schema}.{source} does not exist: load the agent dataset first "
                "(agent_schema.load_agent_dataset)"
            )
        if present != dataset.memories:
            raise DatasetError(
                f"{schema}.{source} has {present} rows but the dataset has "
                f"{dataset.memories} memories: reload it before comparing"
            )
        oid_row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert oid_row is not None
        vector_oid = int(oid_row[0])
        if maintenance_work_mem is not None:
            _settings_sql(conn, {"maintenance_work_mem": maintenance_work_mem})
        base = _Setup(conn, schema)
        try:
            started = time.perf_counter()
            _copy_memories(base, names, source)
            copy_s = time.perf_counter() - started
            notes.append(
                f"strategies run on {schema}.{names.work}, a copy of {source} without its "
                f"indexes ({copy_s:.2f} s to copy), dropped at the end"
            )
            for strategy in _groups(strategies):
                setup = _Setup(conn, schema)
                plans: list[_Plan] = []
                created_s = time.perf_counter()
                setup_note: list[str] = []
                index_bytes = 0
                try:
                    plans = _prepare(
                        strategy,
                        setup,
                        names,
                        work_ident,
                        metric,
                        k=k,
                        tenant_filter=tenant_filter,
                        common=common,
                        hnsw_q=hnsw_q,
                        hnsw_params=hnsw_params,
                        max_scan_tuples=max_scan_tuples,
                        lists=lists,
                        probes=probes,
                        ivf_max_probes=ivf_max_probes,
                        hot_index=hot_index,
                        dataset=dataset,
                        tenants_present=tenants_present,
                        wanted=strategies,
                    )
                    index_bytes = sum(relation_bytes(conn, schema, n) for n in setup.indexes)
                except psycopg.Error as exc:
                    message = exc.diag.message_primary or str(exc)
                    setup_note.append(f"setup failed: {message}")
                    log.warning("filtered %s: setup failed: %s", strategy, message)
                setup_s = time.perf_counter() - created_s
                objects = setup.qualified()
                try:
                    for plan in plans or _failed_plans(strategy, strategies):
                        setups.append(
                            StrategySetup(
                                strategy=plan.strategy,
                                objects=objects,
                                setup_seconds=round(setup_s, 3),
                                index_bytes=index_bytes,
                                settings=dict(plan.settings),
                                sql=plan.sql,
                                notes=[
                                    *([plan.note] if plan.note else []),
                                    *setup_note,
                                    *setup.notices,
                                ],
                            )
                        )
                        for bucket in buckets:
                            queries = bucket.hot if plan.hot_only else bucket.queries
                            if not plans:
                                rows.append(
                                    _empty_row(plan.strategy, bucket, plan.hot_only, setup_note[0])
                                )
                                continue
                            if len(queries) == 0:
                                why = (
                                    "no hot agent in this bucket"
                                    if plan.hot_only
                                    else "no agent in this bucket"
                                )
                                rows.append(_empty_row(plan.strategy, bucket, plan.hot_only, why))
                                continue
                            serial += 1
                            try:
                                row = _measure(
                                    conn_dsn,
                                    plan,
                                    bucket,
                                    dataset,
                                    k=k,
                                    vector_oid=vector_oid,
                                    explain_queries=explain_queries or queries_per_bucket,
                                    warmup_s=warmup_s,
                                    measure_s=measure_seconds,
                                    seed=seed,
                                    serial=serial,
                                )
                            except psycopg.Error as exc:
                                message = str(exc).strip().splitlines()[0] if str(exc) else ""
                                row = _empty_row(
                                    plan.strategy, bucket, plan.hot_only, f"failed: {message}"
                                )
                            under = row.fill_mean is not None and row.fill_mean < 1.0
                            if plan.strategy == "hnsw_plain" and under:
                                row.notes.append(
                                    "iterative scan off: the index returns ef_search candidates "
                                    "and the filter drops the other agents' rows"
                                )
                            rows.append(row)
                finally:
                    setup.drop_all()
        finally:
            base.drop_all()
    notes.append(
        "all strategies: plan_cache_mode = force_custom_plan (a partial index only matches "
        "a bound agent id; what EXPLAIN shows is what runs) and enable_seqscan = off (the "
        "planner otherwise picks a sequential scan + sort for small agents, which is none "
        "of the strategies)"
    )
    return FilteredComparison(
        table=f"{schema}.{source}",
        memories=dataset.memories,
        agents=dataset.agents,
        dim=int(dataset.memory_embedding.shape[1]),
        metric=metric.value,
        k=k,
        ef_search=ef_search,
        max_scan_tuples=max_scan_tuples,
        bucket_edges=edges,
        queries_per_bucket=queries_per_bucket,
        tenant_filter=tenant_filter,
        seed=seed,
        measure_seconds=measure_seconds,
        hot_agents=[str(dataset.id_of("agents", int(a))) for a in hot],
        buckets=[b.info for b in buckets],
        setups=setups,
        rows=rows,
        notes=notes,
    )


def _groups(strategies: Sequence[str]) -> list[str]:
    """Strategies in the order given, the HNSW ones as one group "hnsw" (one shared build)."""
    out: list[str] = []
    for s in strategies:
        key = "hnsw" if s in _HNSW_STRATEGIES else s
        if key not in out:
            out.append(key)
    return out


def _failed_plans(group: str, wanted: Sequence[str]) -> list[_Plan]:
    """Placeholders for the strategies of a group whose setup failed (rows say why)."""
    names = [s for s in wanted if s in _HNSW_STRATEGIES] if group == "hnsw" else [group]
    return [
        _Plan(s, "", {}, False, _fixed(set()), hot_only=s == "partial_hot")
        for s in dict.fromkeys(names)
    ]


def _prepare(
    strategy: str,
    setup: _Setup,
    names: _Names,
    work: sql.Identifier,
    metric: Metric,
    *,
    k: int,
    tenant_filter: bool,
    common: Mapping[str, str],
    hnsw_q: Mapping[str, str],
    hnsw_params: Mapping[str, int],
    max_scan_tuples: int,
    lists: int,
    probes: int,
    ivf_max_probes: int | None,
    hot_index: Mapping[int, str],
    dataset: AgentDataset,
    tenants_present: np.ndarray,
    wanted: Sequence[str],
) -> list[_Plan]:
    """Create what ``strategy`` needs (marked) and say how it queries."""
    tf = tenant_filter
    plain = _query_sql(work, metric, k, tenant=tf, form="plain")
    reorder = _query_sql(work, metric, k, tenant=tf, form="reorder")
    iterative = {"hnsw.max_scan_tuples": str(max_scan_tuples)}
    if strategy == "hnsw":
        # Only the HNSW strategies the caller asked for; they share this one index.
        _vector_index(setup, names.hnsw, names.work, "hnsw", metric, hnsw_params)
        expect_hnsw = _fixed({names.hnsw})
        candidates = [
            _Plan(
                "hnsw_plain",
                plain,
                {**common, **hnsw_q, "hnsw.iterative_scan": "off"},
                tf,
                expect_hnsw,
                note="at most ef_search candidates, filtered afterwards: selective filters "
                "return fewer than k rows",
            ),
            _Plan(
                "hnsw_strict",
                plain,
                {**common, **hnsw_q, "hnsw.iterative_scan": "strict_order", **iterative},
                tf,
                expect_hnsw,
                note="strict_order skips a candidate nearer than the last one the index "
                "returned (even if the filter then dropped that one), so later batches lose "
                "rows",
            ),
            _Plan(
                "hnsw_relaxed",
                reorder,
                {**common, **hnsw_q, "hnsw.iterative_scan": "relaxed_order", **iterative},
                tf,
                expect_hnsw,
                note="relaxed_order, re-sorted by exact distance in an outer query "
                "(pgvector's advice)",
            ),
        ]
        return [p for p in candidates if p.strategy in wanted]
    if strategy == "ivfflat_iterative":
        _vector_index(setup, names.ivf, names.work, "ivfflat", metric, {"lists": lists})
        settings = {
            **common,
            "ivfflat.probes": str(probes),
            "ivfflat.iterative_scan": "relaxed_order",
        }
        if ivf_max_probes is not None:
            settings["ivfflat.max_probes"] = str(ivf_max_probes)
        note = (
            f"lists {lists}, probes {probes}, relaxed_order (the only iterative mode of "
            "IVFFlat), re-sorted by exact distance in an outer query"
        )
        return [_Plan(strategy, reorder, settings, tf, _fixed({names.ivf}), note=note)]
    if strategy == "btree_exact":
        setup.index(
            names.btree,
            sql.SQL("CREATE INDEX {} ON {} (agent_id)").format(sql.Identifier(names.btree), work),
        )
        setup.conn.execute(sql.SQL("ANALYZE {}").format(work))
        exact = _query_sql(work, metric, k, tenant=tf, form="exact")
        note = (
            "ORDER BY (distance) + 0: no vector index can serve it, so the B-tree selects "
            "the agent's rows and they are sorted exactly"
        )
        return [_Plan(strategy, exact, dict(common), tf, _fixed({names.btree}), note=note)]
    if strategy == "partial_hot":
        for agent, name in hot_index.items():
            uid = sql.Literal(str(dataset.id_of("agents", agent)))
            where = sql.SQL("agent_id = {}").format(uid)
            _vector_index(setup, name, names.work, "hnsw", metric, hnsw_params, where)

        def expect_partial(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
            return {hot_index.get(agent, "<no partial index>")}, None

        settings = {**common, **hnsw_q, "hnsw.iterative_scan": "off"}
        note = (
            f"partial HNSW indexes for the {len(hot_index)} agents with most memories; only "
            "their queries are measured (other agents would take the plain path)"
        )
        return [_Plan(strategy, plain, settings, tf, expect_partial, hot_only=True, note=note)]
    if strategy == "partitioned":
        return [_partitioned(setup, names, metric, k, common, hnsw_q, iterative, hnsw_params,
                             dataset, tenants_present)]  # fmt: skip
    raise ValueError(f"unknown strategy {strategy!r}")


def _fixed(indexes: set[str]) -> Callable[[int, int], tuple[set[str], set[str] | None]]:
    def expect(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
        return indexes, None

    return expect


def _partitioned(
    setup: _Setup,
    names: _Names,
    metric: Metric,
    k: int,
    common: Mapping[str, str],
    hnsw_q: Mapping[str, str],
    iterative: Mapping[str, str],
    hnsw_params: Mapping[str, int],
    dataset: AgentDataset,
    tenants_present: np.ndarray,
) -> _Plan:
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
    default = f"{names.part}_def"
    setup.table(
        default,
        sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(setup.ident(default), part),
    )
    setup.conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(part, setup.ident(names.work))
    )
    setup.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(part))
    for t in tenants_present.tolist():
        _vector_index(
            setup, names.partition_index(t), names.partition(t), "hnsw", metric, hnsw_params
        )

    def expect(agent: int, tenant: int) -> tuple[set[str], set[str] | None]:
        return {names.partition_index(tenant)}, {names.partition(tenant)}

    reorder = _query_sql(part, metric, k, tenant=True, form="reorder")
    settings = {**common, **hnsw_q, "hnsw.iterative_scan": "relaxed_order", **iterative}
    note = (
        f"{tenants_present.size} LIST partitions by tenant_id (+ DEFAULT), one HNSW index "
        "each; tenant and agent filter, relaxed_order, re-sorted outside"
    )
    return _Plan("partitioned", reorder, settings, True, expect, note=note)


# --------------------------------------------------------------------------- verdicts


def _latency(row: FilteredRow, key: LatencyKey) -> float | None:
    value: float | None = getattr(row, f"latency_{key}_ms")
    return value


def _eligible(row: FilteredRow, recall_target: float, fill_target: float, key: LatencyKey) -> bool:
    return (
        row.valid
        and row.recall_mean is not None
        and row.recall_mean >= recall_target
        and row.fill_mean is not None
        and row.fill_mean >= fill_target
        and _latency(row, key) is not None
    )


def _ranked(
    comparison: FilteredComparison,
    bucket: str,
    recall_target: float,
    fill_target: float,
    key: LatencyKey,
) -> list[FilteredRow]:
    rows = [
        r
        for r in comparison.rows
        if r.bucket == bucket and _eligible(r, recall_target, fill_target, key)
    ]
    return sorted(rows, key=lambda r: (_latency(r, key) or math.inf, -(r.recall_mean or 0.0)))


def winners(
    comparison: FilteredComparison,
    *,
    recall_target: float = 0.9,
    fill_target: float = 0.99,
    latency: LatencyKey = "p99",
) -> dict[str, str]:
    """bucket label -> the strategy with the lowest latency among valid rows with recall
    >= ``recall_target`` and fill >= ``fill_target``; buckets where none qualifies are
    left out. ``partial_hot`` rows cover the bucket's hot agents only (see ``scope``)."""
    out: dict[str, str] = {}
    for info in comparison.buckets:
        ranked = _ranked(comparison, info.label, recall_target, fill_target, latency)
        if ranked:
            out[info.label] = ranked[0].strategy
    return out


def _reason(row: FilteredRow) -> str:
    """The note that made a row invalid (plan check, failure), else its first note."""
    keys = ("plan check", "failed", "not memories", "aborted")
    picked = [n for n in row.notes if any(k in n for k in keys)]
    return (picked or row.notes or ["invalid"])[0]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} ms"


def summary_sentences(
    comparison: FilteredComparison,
    *,
    recall_target: float = 0.9,
    fill_target: float = 0.99,
    latency: LatencyKey = "p99",
) -> list[str]:
    """Plain sentences for the report: the winner of each bucket, under-fill, invalid rows."""
    out: list[str] = []
    for info in comparison.buckets:
        if info.queries == 0:
            continue
        ranked = _ranked(comparison, info.label, recall_target, fill_target, latency)
        subject = f"For agents with {info.label} of memories ({info.agents} agents)"
        if not ranked:
            rows = [r for r in comparison.rows if r.bucket == info.label and r.valid]
            best = max(rows, key=lambda r: r.recall_mean or 0.0, default=None)
            tail = (
                f" (best recall {best.recall_mean:.2f}, fill {best.fill_mean:.2f}: {best.strategy})"
                if best is not None and best.recall_mean is not None and best.fill_mean is not None
                else ""
            )
            out.append(
                f"{subject}, no strategy reached recall >= {recall_target:.2f} with fill >= "
                f"{fill_target:.2f}{tail}."
            )
            continue
        win = ranked[0]
        scope = " (hot agents only)" if win.strategy == "partial_hot" else ""
        text = (
            f"{subject}, {win.strategy}{scope} wins: recall {win.recall_mean:.2f}, "
            f"fill {win.fill_mean:.2f}, {latency} {_ms(_latency(win, latency))}"
        )
        if len(ranked) > 1:
            nxt = ranked[1]
            text += f"; next {nxt.strategy} at {_ms(_latency(nxt, latency))}"
        out.append(text + ".")
    plain = [
        r
        for r in comparison.rows
        if r.strategy == "hnsw_plain" and r.fill_mean is not None and r.fill_mean < fill_target
    ]
    if plain:
        parts = ", ".join(
            f"{r.bucket}: fill {r.fill_mean:.2f} (min {r.fill_min or 0.0:.2f})" for r in plain
        )
        out.append(
            f"Without iterative scan (hnsw_plain, ef_search {comparison.ef_search}) the filter "
            f"leaves fewer than k rows: {parts}."
        )
    for info in comparison.buckets:
        strict = comparison.row("hnsw_strict", info.label)
        relaxed = comparison.row("hnsw_relaxed", info.label)
        if (
            strict is not None
            and relaxed is not None
            and strict.recall_mean is not None
            and relaxed.recall_mean is not None
            and strict.recall_mean < relaxed.recall_mean - 0.02
        ):
            out.append(
                f"For agents with {info.label} of memories strict_order lost recall against "
                f"relaxed_order: {strict.recall_mean:.2f} vs {relaxed.recall_mean:.2f} "
                "(it skips candidates nearer than one the filter already dropped)."
            )
    hot = [r for r in comparison.rows if r.strategy == "partial_hot" and r.n_queries > 0]
    if hot:
        out.append(
            f"partial_hot was measured on the {len(comparison.hot_agents)} agents with most "
            f"memories only ({', '.join(r.bucket for r in hot)}); other agents have no "
            "partial index."
        )
    invalid = [r for r in comparison.rows if not r.valid and r.n_queries > 0]
    if invalid:
        listed = "; ".join(f"{r.strategy} {r.bucket}: {_reason(r)}" for r in invalid[:4])
        more = f" (and {len(invalid) - 4} more)" if len(invalid) > 4 else ""
        out.append(f"Not counted (invalid): {listed}{more}.")
    return out
