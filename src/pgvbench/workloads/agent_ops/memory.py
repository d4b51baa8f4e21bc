"""Memory operations: write a memory, recall an agent's nearest memories, expire old ones."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import MEMORY_KINDS
from ...engine.operations import ParamOperation
from ...metrics import Metric
from .params import (
    BINARY,
    DOC_POOL,
    FLOAT4_OID,
    INT8_OID,
    INTERVAL_OID,
    JSONB_OID,
    TEXT,
    TEXT_ARRAY_OID,
    TEXT_OID,
    TIMESTAMPTZ_OID,
    UUID_OID,
    Row,
    encode_float4,
    encode_int8,
    encode_text_array,
    encode_timestamptz,
    encode_vectors,
    new_id,
    param_table_size,
    qualified,
    table_params,
    vector_bytes,
    with_new_id,
)
from .sampling import agent_choice, ids, operation_rng, vectors_near_agents

# Written memories: share that never expires, share that lives seconds (so the
# expiry job keeps finding work during a run); the rest live hours to weeks.
_NEVER_EXPIRES_SHARE = 0.5
_SHORT_LIVED_SHARE = 0.2


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
    rng = operation_rng(seed, "memory_write")
    size = param_table_size(vector_bytes(dataset.spec.dim) + 64)  # documents are pooled
    agents = agent_choice(dataset, access_zipf, size, rng)
    vectors = encode_vectors(vectors_near_agents(dataset, agents, rng))
    agent_ids = ids(dataset, "agents", agents)
    tenant_ids = ids(dataset, "tenants", dataset.tenant_of_agent)
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
        f"INSERT INTO {qualified(schema, prefix, 'memories')} (id, agent_id, tenant_id, kind, "
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
        params=with_new_id(rows, new_id("memory_write", seed)),
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
    rng = operation_rng(seed, "memory_recall")
    size = param_table_size(vector_bytes(dataset.spec.dim))
    agents = agent_choice(dataset, access_zipf, size, rng)
    vectors = encode_vectors(vectors_near_agents(dataset, agents, rng))
    agent_ids = ids(dataset, "agents", agents)
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
        f"SELECT id, content FROM {qualified(schema, prefix, 'memories')} "
        f"WHERE {' AND '.join(where)} ORDER BY embedding {metric.operator} $2 LIMIT {k}"
    )
    rows: list[Row] = [list(r) for r in zip(*columns, strict=True)]
    return ParamOperation(
        name="memory_recall",
        sql=sql,
        types=types,
        formats=formats,
        params=table_params(rows),
        settings=settings,
    )


def memory_expire_op(
    *, schema: str, prefix: str, batch: int, settings: Mapping[str, str] | None = None
) -> ParamOperation:
    """Delete up to ``batch`` memories whose expires_at has passed (the janitor job)."""
    if batch < 1:
        raise ValueError(f"memory_expire batch must be >= 1, got {batch}")
    table = qualified(schema, prefix, "memories")
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
