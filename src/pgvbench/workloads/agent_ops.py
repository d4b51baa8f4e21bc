"""The agent-platform operation mix: memory writes and recall, RAG search, task updates.

Every builder returns an engine Operation whose parameters are a pure function of
``seq``: a seeded generator fills a table of ~64k pre-encoded parameter rows up front
and ``seq % size`` picks one, so an operation costs a list lookup in Python. Only new
row ids are computed per call (from ``(seed, seq)``), so inserts never repeat a key
within a run. Use a different seed for each run against the same tables, or the second
run's inserts collide with the first's.

Which agent an operation touches follows Zipf(``access_zipf``) over agents ranked by
memory count (``AgentDataset.agent_access_weights``): busy agents are read and written
most. Tenants, tasks and chunks follow from the chosen agent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from psycopg import pq as libpq

from ..datasets.agents.dataset import AgentDataset
from ..datasets.agents.model import MEMORY_KINDS, TASK_STATUSES, table_name
from ..engine.operations import ConnStyle, MixOperation, Operation, ParamOperation
from ..metrics import Metric

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
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
# Written memories: share that never expires, share that lives seconds (so the
# expiry job keeps finding work during a run); the rest live hours to weeks.
_NEVER_EXPIRES_SHARE = 0.5
_SHORT_LIVED_SHARE = 0.2
_NEXT_STATUSES = TASK_STATUSES[1:]  # a task never goes back to "submitted"
_LOOKUP_LIMIT = 100  # a model is shared by many agents: cap the rows of a by-model lookup

Row = list[bytes | None]


# --------------------------------------------------------------------------- encoding


def encode_int8(value: int) -> bytes:
    return struct.pack(">q", value)


def encode_float4(value: float) -> bytes:
    return struct.pack(">f", value)


def encode_timestamptz(epoch_us: int) -> bytes:
    """Binary timestamptz: int8 microseconds since 2000-01-01 UTC."""
    return struct.pack(">q", epoch_us - _PG_EPOCH_US)


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


# --------------------------------------------------------------------------- sampling


def zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    """P(rank r) ~ r**-exponent for r = 1..n; exponent 0 is uniform."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    return np.asarray(weights / weights.sum())


def zipf_choice(n: int, exponent: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indexes into ``range(n)``, index i having rank i + 1."""
    return rng.choice(n, size=size, p=zipf_probabilities(n, exponent))


def unit_vectors(rng: np.random.Generator, size: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((size, dim), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
    return vectors


def agent_choice(
    dataset: AgentDataset,
    access_zipf: float,
    size: int,
    rng: np.random.Generator,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """Zipf-chosen agents (busiest first); ``among`` restricts to a boolean mask of agents."""
    weights = dataset.agent_access_weights(access_zipf)
    if among is not None:
        weights = np.where(among, weights, 0.0)
        weights /= weights.sum()
    return rng.choice(dataset.agents, size=size, p=weights)


def vectors_near_agents(
    dataset: AgentDataset, agents: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Vectorised ``query_vector_for_agent``: near a random topic of each agent."""
    spec = dataset.spec
    topics = rng.integers(0, spec.topics_per_agent, size=agents.size)
    centres = dataset.agent_topics[agents, topics]
    noise = rng.standard_normal(centres.shape, dtype=np.float32)
    noise *= np.float32(spec.topic_spread / np.sqrt(spec.dim))
    noise += centres
    if spec.metric is Metric.COSINE:
        noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), np.float32(1e-12))
    return np.asarray(noise)


def vectors_near_tenants(
    dataset: AgentDataset, tenants: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Vectorised ``query_vector_for_tenant``: near a topic of one of the tenant's agents."""
    lo = dataset.tenant_agent_offsets[tenants]
    hi = dataset.tenant_agent_offsets[tenants + 1]
    agents = lo + (rng.random(tenants.size) * (hi - lo)).astype(np.int64)
    return vectors_near_agents(dataset, agents, rng)


def _rng(seed: int, operation: str) -> np.random.Generator:
    """One independent stream per (seed, operation): adding an op changes no other's."""
    return np.random.default_rng([seed, OPERATIONS.index(operation) + 1])


def _new_id(kind: str, seed: int) -> Callable[[int], bytes]:
    """Fresh uuid (v4 layout) of the ``seq``-th insert: unique per (kind, seed, seq),
    random-looking like an app's uuid4 (B-tree inserts land all over the index)."""
    key = hashlib.blake2b(f"{kind}:{seed}".encode(), digest_size=32).digest()

    def new_id(seq: int) -> bytes:
        digest = hashlib.blake2b(seq.to_bytes(8, "big"), digest_size=16, key=key).digest()
        return (
            bytes((*digest[:6], (digest[6] & 0x0F) | 0x40, digest[7], (digest[8] & 0x3F) | 0x80))
            + digest[9:]
        )

    return new_id


def _ids(dataset: AgentDataset, kind: str, indexes: np.ndarray) -> dict[int, bytes]:
    """Raw uuid bytes of each distinct row index."""
    return {i: dataset.id_of(kind, i).bytes for i in set(indexes.tolist())}


def _qualified(schema: str, prefix: str, kind: str) -> str:
    return f'"{schema}"."{table_name(prefix, kind)}"'


def _table_params(rows: list[Row]) -> Callable[[int], Row]:
    size = len(rows)
    return lambda seq: rows[seq % size]


def _with_new_id(rows: list[Row], new_id: Callable[[int], bytes]) -> Callable[[int], Row]:
    size = len(rows)
    return lambda seq: [new_id(seq), *rows[seq % size]]


# --------------------------------------------------------------------------- operations


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


def memory_write_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    vector_oid: int,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """INSERT a memory of a Zipf-chosen agent, its embedding near one of the agent's topics."""
    rng = _rng(seed, "memory_write")
    size = param_table_size(vector_bytes(dataset.spec.dim) + 64)  # documents are pooled
    agents = agent_choice(dataset, access_zipf, size, rng)
    vectors = encode_vectors(vectors_near_agents(dataset, agents, rng))
    agent_ids = _ids(dataset, "agents", agents)
    tenant_ids = _ids(dataset, "tenants", dataset.tenant_of_agent)
    kinds = _memory_kinds(dataset, size, rng)
    docs = _memory_docs(dataset, rng)
    pick = rng.integers(0, len(docs), size=size)
    importance = rng.beta(2.0, 5.0, size=size)
    expiry = _expiry_intervals(size, rng)
    rows: list[Row] = []
    for i in range(size):
        a = int(agents[i])
        content, metadata, tags = docs[int(pick[i])]
        rows.append(
            [
                agent_ids[a],
                tenant_ids[int(dataset.tenant_of_agent[a])],
                kinds[i],
                content,
                vectors[i],
                metadata,
                tags,
                encode_float4(float(importance[i])),
                expiry[i],
            ]
        )
    sql = (
        f"INSERT INTO {_qualified(schema, prefix, 'memories')} (id, agent_id, tenant_id, kind, "
        "content, embedding, metadata, tags, importance, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now() + $10)"
    )
    types = [UUID_OID, UUID_OID, UUID_OID, TEXT_OID, TEXT_OID, vector_oid, JSONB_OID]
    types += [TEXT_ARRAY_OID, FLOAT4_OID, INTERVAL_OID]
    formats = [BINARY, BINARY, BINARY, TEXT, TEXT, BINARY, TEXT, TEXT, BINARY, TEXT]
    return ParamOperation(
        name="memory_write",
        sql=sql,
        types=types,
        formats=formats,
        params=_with_new_id(rows, _new_id("memory_write", seed)),
        settings=settings,
    )


def _memory_kinds(dataset: AgentDataset, size: int, rng: np.random.Generator) -> list[bytes]:
    """Kinds in the proportions of the loaded data (uniform if it has no memories)."""
    counts = np.bincount(dataset.memory_kind, minlength=len(MEMORY_KINDS)).astype(np.float64)
    p = counts / counts.sum() if counts.sum() else np.full(len(MEMORY_KINDS), 1 / len(MEMORY_KINDS))
    encoded = [k.encode() for k in MEMORY_KINDS]
    return [encoded[int(c)] for c in rng.choice(len(MEMORY_KINDS), size=size, p=p)]


def _memory_docs(
    dataset: AgentDataset, rng: np.random.Generator
) -> list[tuple[bytes, bytes, bytes]]:
    """(content, metadata, tags) of a sample of loaded memories: realistic sizes and shapes."""
    if dataset.memories == 0:
        return [(b"note", b"{}", b"{}")]
    sample = rng.choice(dataset.memories, size=min(DOC_POOL, dataset.memories), replace=False)
    return [
        (
            dataset.memory_content(int(m)).encode(),
            dataset.memory_metadata(int(m)).encode(),
            encode_text_array(dataset.memory_tags[int(m)]),
        )
        for m in sample
    ]


def _expiry_intervals(size: int, rng: np.random.Generator) -> list[bytes | None]:
    """expires_at - now() of each insert as interval text, or None (never expires)."""
    draw = rng.random(size)
    short_s = rng.uniform(1.0, 60.0, size=size)
    long_s = rng.uniform(3600.0, 30 * 86400.0, size=size)
    out: list[bytes | None] = []
    for u, short, long in zip(draw.tolist(), short_s.tolist(), long_s.tolist(), strict=True):
        if u < _NEVER_EXPIRES_SHARE:
            out.append(None)
        elif u < _NEVER_EXPIRES_SHARE + _SHORT_LIVED_SHARE:
            out.append(f"{short:.3f} seconds".encode())
        else:
            out.append(f"{long:.0f} seconds".encode())
    return out


def memory_recall_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    k: int,
    metric: Metric,
    vector_oid: int,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
    filter_kind: bool = False,
    recency_days: float | None = None,
) -> ParamOperation:
    """Top-k memories of one agent nearest a query about one of its topics."""
    rng = _rng(seed, "memory_recall")
    size = param_table_size(vector_bytes(dataset.spec.dim))
    agents = agent_choice(dataset, access_zipf, size, rng)
    vectors = encode_vectors(vectors_near_agents(dataset, agents, rng))
    agent_ids = _ids(dataset, "agents", agents)
    columns: list[list[bytes | None]] = [[agent_ids[int(a)] for a in agents], list(vectors)]
    types, formats = [UUID_OID, vector_oid], [BINARY, BINARY]
    where = ["agent_id = $1"]
    if filter_kind:
        columns.append(list(_memory_kinds(dataset, size, rng)))
        types.append(TEXT_OID)
        formats.append(TEXT)
        where.append(f"kind = ${len(types)}")
    if recency_days is not None:
        # The data's clock, not the server's: loaded rows are dated around dataset.now_us.
        cutoff = dataset.now_us - int(recency_days * 86_400 * 1_000_000)
        columns.append([encode_timestamptz(cutoff)] * size)
        types.append(TIMESTAMPTZ_OID)
        formats.append(BINARY)
        where.append(f"created_at > ${len(types)}")
    sql = (
        f"SELECT id, content FROM {_qualified(schema, prefix, 'memories')} "
        f"WHERE {' AND '.join(where)} ORDER BY embedding {metric.operator} $2 LIMIT {k}"
    )
    rows: list[Row] = [list(r) for r in zip(*columns, strict=True)]
    return ParamOperation(
        name="memory_recall",
        sql=sql,
        types=types,
        formats=formats,
        params=_table_params(rows),
        settings=settings,
    )


def rag_search_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    k: int,
    metric: Metric,
    vector_oid: int,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
    rag_filter: str = "alternate",
) -> Operation:
    """Top-k chunks of the tenant of a Zipf-chosen agent, filtered by JSONB or tags."""
    if rag_filter not in RAG_FILTERS:
        raise ValueError(f"rag_filter must be one of {', '.join(RAG_FILTERS)}, got {rag_filter!r}")

    def part(how: str, name: str, rng: np.random.Generator) -> ParamOperation:
        return _rag_part(
            dataset,
            table=_qualified(schema, prefix, "chunks"),
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            access_zipf=access_zipf,
            settings=settings,
            rng=rng,
            how=how,
            name=name,
        )

    rng = _rng(seed, "rag_search")
    if rag_filter != "alternate":
        return part(rag_filter, "rag_search", rng)
    jsonb = part("jsonb", "rag_search_jsonb", rng)
    tags = part("tags", "rag_search_tags", rng)
    return AlternatingOperation("rag_search", jsonb, tags)


def _rag_part(
    dataset: AgentDataset,
    *,
    table: str,
    k: int,
    metric: Metric,
    vector_oid: int,
    access_zipf: float,
    settings: Mapping[str, str] | None,
    rng: np.random.Generator,
    how: str,
    name: str,
) -> ParamOperation:
    size = param_table_size(vector_bytes(dataset.spec.dim))
    tenants = dataset.tenant_of_agent[agent_choice(dataset, access_zipf, size, rng)]
    vectors = encode_vectors(vectors_near_tenants(dataset, tenants, rng))
    tenant_ids = _ids(dataset, "tenants", tenants)
    pools = _chunk_filters(dataset, how, rng)
    pool_sizes = np.array([len(pool) for pool in pools], dtype=np.int64)
    which = (rng.random(size) * pool_sizes[tenants]).astype(np.int64)
    filters = [pools[t][w] for t, w in zip(tenants.tolist(), which.tolist(), strict=True)]
    if how == "jsonb":
        condition, oid = "metadata @> $3", JSONB_OID
    else:
        condition, oid = "tags && $3", TEXT_ARRAY_OID
    rows: list[Row] = [
        [tenant_ids[int(t)], vectors[i], filters[i]] for i, t in enumerate(tenants.tolist())
    ]
    sql = (
        f"SELECT id, content FROM {table} WHERE tenant_id = $1 AND {condition} "
        f"ORDER BY embedding {metric.operator} $2 LIMIT {k}"
    )
    return ParamOperation(
        name=name,
        sql=sql,
        types=[UUID_OID, vector_oid, oid],
        formats=[BINARY, BINARY, TEXT],
        params=_table_params(rows),
        settings=settings,
    )


_SAMPLE_CHUNKS_PER_TENANT = 16


def _chunk_filters(dataset: AgentDataset, how: str, rng: np.random.Generator) -> list[list[bytes]]:
    """Per tenant, filters taken from a sample of its own chunks, so each matches a row."""
    order = np.argsort(dataset.chunk_tenant, kind="stable")
    bounds = np.searchsorted(dataset.chunk_tenant[order], np.arange(dataset.tenants + 1))
    fallback = [_tag_filter([dataset.tag_words[0]]) if how == "tags" else b'{"lang":"en"}']
    pools: list[list[bytes]] = []
    for t in range(dataset.tenants):
        own = order[bounds[t] : bounds[t + 1]]
        if own.size == 0:
            pools.append(fallback)
            continue
        sample = rng.choice(own, size=min(_SAMPLE_CHUNKS_PER_TENANT, own.size), replace=False)
        if how == "tags":
            pools.append([_tag_filter(dataset.chunk_tags[int(c)][:2]) for c in sample])
        else:
            pools.append([_metadata_filter(dataset.chunk_metadata(int(c)), rng) for c in sample])
    return pools


def _tag_filter(tags: list[str]) -> bytes:
    return encode_text_array(tags)


_CONTAINMENT_KEYS = ("source", "doc_type", "lang", "acl")


def _metadata_filter(document: str, rng: np.random.Generator) -> bytes:
    """One containment condition the document satisfies, e.g. {"source": "notion"}."""
    doc = json.loads(document)
    keys = [key for key in _CONTAINMENT_KEYS if key in doc]
    if not keys:
        return b"{}"
    key = keys[int(rng.integers(len(keys)))]
    value = doc[key]
    if key == "acl":  # one group of the ACL: {"acl": {"groups": ["support"]}}
        groups = value.get("groups") or []
        value = {"groups": groups[:1]}
    return json.dumps({key: value}, separators=(",", ":")).encode()


def _task_choice(
    dataset: AgentDataset, access_zipf: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Tasks of Zipf-chosen agents (among agents that have tasks), uniform within the agent."""
    counts = np.bincount(dataset.task_agent, minlength=dataset.agents)
    agents = agent_choice(dataset, access_zipf, size, rng, among=counts > 0)
    order = np.argsort(dataset.task_agent, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(counts)))
    within = (rng.random(size) * counts[agents]).astype(np.int64)
    return np.asarray(order[offsets[agents] + within])


def task_update_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """A2A status transition: set status and append {state, timestamp} to state->history."""
    if dataset.tasks == 0:
        raise ValueError("task_update needs tasks: the dataset has none")
    rng = _rng(seed, "task_update")
    tasks = _task_choice(dataset, access_zipf, TABLE_SIZE, rng)
    task_ids = _ids(dataset, "tasks", tasks)
    statuses = [s.encode() for s in _NEXT_STATUSES]
    next_status = rng.integers(0, len(statuses), size=TABLE_SIZE)
    rows: list[Row] = [
        [task_ids[int(t)], statuses[int(s)]] for t, s in zip(tasks, next_status, strict=True)
    ]
    # History entries take the loaded data's shape ({"state", "timestamp"}); coalesce keeps
    # a state without history from turning NULL (jsonb_set is strict).
    sql = (
        f"UPDATE {_qualified(schema, prefix, 'tasks')} SET status = $2, "
        "state = jsonb_set(state, '{history}', coalesce(state->'history', '[]'::jsonb) "
        "|| jsonb_build_object('state', $2::text, 'timestamp', now())), "
        "updated_at = now() WHERE id = $1"
    )
    return ParamOperation(
        name="task_update",
        sql=sql,
        types=[UUID_OID, TEXT_OID],
        formats=[BINARY, TEXT],
        params=_table_params(rows),
        settings=settings,
    )


def message_append_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """INSERT an A2A message into a task of a Zipf-chosen agent."""
    if dataset.tasks == 0:
        raise ValueError("message_append needs tasks: the dataset has none")
    rng = _rng(seed, "message_append")
    tasks = _task_choice(dataset, access_zipf, TABLE_SIZE, rng)
    task_ids = _ids(dataset, "tasks", tasks)
    parts = _message_parts(dataset, rng)
    pick = rng.integers(0, len(parts), size=TABLE_SIZE)
    roles = (b"user", b"agent")
    role = rng.integers(0, 2, size=TABLE_SIZE)
    rows: list[Row] = [
        [task_ids[int(t)], roles[int(r)], parts[int(p)]]
        for t, r, p in zip(tasks, role, pick, strict=True)
    ]
    sql = (
        f"INSERT INTO {_qualified(schema, prefix, 'messages')} "
        "(id, task_id, role, parts, created_at) VALUES ($1, $2, $3, $4, now())"
    )
    return ParamOperation(
        name="message_append",
        sql=sql,
        types=[UUID_OID, UUID_OID, TEXT_OID, JSONB_OID],
        formats=[BINARY, BINARY, TEXT, TEXT],
        params=_with_new_id(rows, _new_id("message_append", seed)),
        settings=settings,
    )


def _message_parts(dataset: AgentDataset, rng: np.random.Generator) -> list[bytes]:
    if dataset.messages == 0:
        return [b'[{"kind":"text","text":"ok"}]']
    sample = rng.choice(dataset.messages, size=min(DOC_POOL, dataset.messages), replace=False)
    return [dataset.message_parts(int(m)).encode() for m in sample]


def memory_expire_op(
    *, schema: str, prefix: str, batch: int, settings: Mapping[str, str] | None = None
) -> ParamOperation:
    """Delete up to ``batch`` memories whose expires_at has passed (the janitor job)."""
    if batch < 1:
        raise ValueError(f"memory_expire batch must be >= 1, got {batch}")
    table = _qualified(schema, prefix, "memories")
    sql = (
        f"DELETE FROM {table} WHERE id IN "
        f"(SELECT id FROM {table} WHERE expires_at < now() LIMIT $1)"
    )
    row: Row = [encode_int8(batch)]
    return ParamOperation(
        name="memory_expire",
        sql=sql,
        types=[INT8_OID],
        formats=[BINARY],
        params=lambda seq: row,
        settings=settings,
    )


def agent_lookup_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> AlternatingOperation:
    """Load an agent by id, or find agents by model (``config->>'model'``, expression index)."""
    rng = _rng(seed, "agent_lookup")
    table = _qualified(schema, prefix, "agents")
    agents = agent_choice(dataset, access_zipf, TABLE_SIZE, rng)
    agent_ids = _ids(dataset, "agents", agents)
    # Drawn separately so the by-model lookups are not the by-id agents' models.
    model_agents = agent_choice(dataset, access_zipf, TABLE_SIZE, rng)
    models = {a: _agent_model(dataset, a) for a in set(model_agents.tolist())}
    by_id = ParamOperation(
        name="agent_lookup_id",
        sql=f"SELECT id, tenant_id, name, config, capabilities FROM {table} WHERE id = $1",
        types=[UUID_OID],
        formats=[BINARY],
        params=_table_params([[agent_ids[int(a)]] for a in agents]),
        settings=settings,
    )
    by_model = ParamOperation(
        name="agent_lookup_model",
        sql=(
            f"SELECT id, tenant_id, name FROM {table} "
            f"WHERE config->>'model' = $1 LIMIT {_LOOKUP_LIMIT}"
        ),
        types=[TEXT_OID],
        formats=[TEXT],
        params=_table_params([[models[int(a)]] for a in model_agents]),
        settings=settings,
    )
    return AlternatingOperation("agent_lookup", by_id, by_model)


def _agent_model(dataset: AgentDataset, agent: int) -> bytes:
    return str(json.loads(dataset.agent_config(agent))["model"]).encode()


# --------------------------------------------------------------------------- the mix


def build_agent_mix(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    weights: Mapping[str, float],
    k: int,
    metric: Metric,
    vector_oid: int,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None,
    recall_filter_kind: bool,
    recall_recency_days: float | None,
    rag_filter: str,
    expire_batch: int = 100,
) -> MixOperation:
    """The weighted agent workload; operations of weight 0 are not built."""
    unknown = sorted(set(weights) - set(OPERATIONS))
    if unknown:
        raise ValueError(
            f"unknown agent operations {', '.join(unknown)}; known: {', '.join(OPERATIONS)}"
        )
    where = {"schema": schema, "prefix": prefix}
    builders: dict[str, Callable[[], Operation]] = {
        "memory_write": lambda: memory_write_op(
            dataset,
            **where,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
        ),
        "memory_recall": lambda: memory_recall_op(
            dataset,
            **where,
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
            filter_kind=recall_filter_kind,
            recency_days=recall_recency_days,
        ),
        "rag_search": lambda: rag_search_op(
            dataset,
            **where,
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
            rag_filter=rag_filter,
        ),
        "task_update": lambda: task_update_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
        "message_append": lambda: message_append_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
        "memory_expire": lambda: memory_expire_op(**where, batch=expire_batch, settings=settings),
        "agent_lookup": lambda: agent_lookup_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
    }
    parts = [(builders[name](), float(w)) for name, w in weights.items() if w > 0]
    return MixOperation(parts, seed=seed)
