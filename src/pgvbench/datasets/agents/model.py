"""The AI-agent platform data model shared by the agent generators, operations and tests.

Tables (all inside pgvbench's own schema, names prefixed with the experiment name):

    {p}_agents    (id uuid pk, tenant_id uuid, name text, config jsonb, capabilities text[],
                   created_at timestamptz)
    {p}_memories  (id uuid pk, agent_id uuid references {p}_agents, tenant_id uuid, kind text,
                   content text, embedding vector(d), metadata jsonb, tags text[],
                   importance real, created_at timestamptz, expires_at timestamptz)
    {p}_chunks    (id uuid pk, tenant_id uuid, document_id uuid, chunk_index int, content text,
                   embedding vector(d), metadata jsonb, tags text[])
    {p}_tasks     (id uuid pk, context_id uuid, agent_id uuid, status text,
                   state jsonb (with a "history" array), created_at, updated_at timestamptz)
    {p}_messages  (id uuid pk, task_id uuid references {p}_tasks, role text, parts jsonb,
                   created_at timestamptz)

Row i of each table has a deterministic UUID: ``uuid_for(kind, seed, i)``, so any module can
name a row without a lookup (operations pick "agent 17 of tenant 3" cheaply).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

from ...metrics import Metric

MEMORY_KINDS = ("episodic", "semantic", "procedural", "reflection")
TASK_STATUSES = ("submitted", "working", "input-required", "completed", "failed", "canceled")
MESSAGE_ROLES = ("user", "agent")
TABLES = ("agents", "memories", "chunks", "tasks", "messages")


def uuid_for(kind: str, seed: int, index: int) -> uuid.UUID:
    """Deterministic UUID (version 4 layout) of row ``index`` of table ``kind``."""
    digest = hashlib.blake2b(f"{kind}:{seed}:{index}".encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4)


def table_name(prefix: str, kind: str) -> str:
    return f"{prefix}_{kind}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentDataSpec:
    """Sizes and shapes of a generated agent platform (the spec's [agents] table)."""

    tenants: int = 20
    agents: int = 200
    memories: int = 50_000
    chunks: int = 20_000
    tasks: int = 5_000
    messages_per_task: int = 4
    dim: int = 128
    metric: Metric = Metric.COSINE
    agent_zipf: float = 1.1  # skew of memories per agent (and agents per tenant)
    tenant_zipf: float = 1.0  # skew of agents and chunks per tenant
    topics_per_agent: int = 3  # an agent's memories cluster around this many topic centres
    topic_spread: float = 0.35  # spread of memories around their topic centre
    doc_kb_min: float = 0.3  # JSONB document sizes (metadata, config, task state, parts)
    doc_kb_max: float = 4.0
    tag_vocabulary: int = 500
    tag_zipf: float = 1.2
    expired_fraction: float = 0.1  # memories whose expires_at is already in the past
    seed: int = 42
