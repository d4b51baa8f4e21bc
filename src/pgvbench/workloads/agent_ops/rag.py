"""RAG search: top-k chunks of a tenant, filtered by JSONB containment or tags."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...engine.operations import Operation, ParamOperation
from ...metrics import Metric
from .params import (
    BINARY,
    JSONB_OID,
    RAG_FILTERS,
    TEXT,
    TEXT_ARRAY_OID,
    UUID_OID,
    AlternatingOperation,
    Row,
    encode_text_array,
    encode_vectors,
    param_table_size,
    qualified,
    table_params,
    vector_bytes,
)
from .sampling import agent_choice, ids, operation_rng, vectors_near_tenants


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
            table=qualified(schema, prefix, "chunks"),
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            access_zipf=access_zipf,
            settings=settings,
            rng=rng,
            how=how,
            name=name,
        )

    rng = operation_rng(seed, "rag_search")
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
    tenant_ids = ids(dataset, "tenants", tenants)
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
        params=table_params(rows),
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
