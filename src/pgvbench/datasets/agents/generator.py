"""Seeded generator of an AI-agent platform: tenants, agents, memories, chunks, tasks, messages.

Everything is columnar (numpy arrays of foreign indexes, codes and timestamps) so a
platform of millions of rows stays small in memory; the bulky text is built on demand by
``AgentDataset`` (dataset.py).

Shapes that make the benchmark realistic:

* tenants have Zipf-distributed agent counts and agents Zipf-distributed memory counts:
  a few huge agents, a long tail (so filtered search sees every selectivity);
* an agent's memories cluster around its ``topics_per_agent`` topic centres, and a
  tenant's document chunks around its agents' topics (filtered kNN finds neighbours);
* rows are in insertion (time) order, agents interleaved, as a live platform writes them;
* JSONB documents have the nesting real agent platforms use (agent config, memory
  metadata, A2A task state with a status ``history``, A2A message ``parts``), padded with
  text to a uniform size in [doc_kb_min, doc_kb_max] kB (1 kB = 1024 bytes of JSON text).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np

from ...errors import DatasetError
from ...metrics import Metric
from .dataset import KB, NEVER_EXPIRES, US_PER_S, AgentDataset
from .model import MEMORY_KINDS, MESSAGE_ROLES, TASK_STATUSES, AgentDataSpec
from .sampling import (
    access_weights,
    normalize_rows,
    offsets,
    seeded_rng,
    zipf_counts,
    zipf_probabilities,
)
from .vocabulary import make_corpus, make_tag_words

_US_PER_DAY = 86_400 * US_PER_S
#: "now" of a dataset: this instant plus (seed mod 365) days, so runs are reproducible.
_NOW_BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_MEMORY_HISTORY_DAYS = 90
_TASK_HISTORY_DAYS = 30
_AGENT_AGE_DAYS = (90, 365)
_FUTURE_EXPIRY_DAYS = 60
_MAX_TAGS = 5
_MEAN_CHUNKS_PER_DOCUMENT = 6.0
_MAX_CHUNKS_PER_DOCUMENT = 40
_MEMORY_KIND_P = (0.45, 0.30, 0.10, 0.15)
_TASK_STATUS_P = (0.05, 0.12, 0.08, 0.55, 0.12, 0.08)
_TASKS_PER_CONTEXT = 1.5


# Independent streams per part, so changing one table's size leaves the others intact.
_STREAM_TENANTS, _STREAM_TOPICS, _STREAM_MEMORIES, _STREAM_CHUNKS = 1, 2, 3, 4
_STREAM_TASKS, _STREAM_TEXT, _STREAM_AGENTS = 5, 6, 7
_BLOCK_ROWS = 65_536  # embeddings are drawn in blocks: bounded temporaries at any size


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DatasetError(f"[agents] {message}")


def _validate(spec: AgentDataSpec) -> None:
    _check(spec.seed >= 0, f"seed = {spec.seed} must be >= 0")
    _check(spec.tenants >= 1, f"tenants = {spec.tenants} must be >= 1")
    _check(
        spec.agents >= spec.tenants,
        f"agents = {spec.agents} must be >= tenants = {spec.tenants} (every tenant has an agent)",
    )
    for name in ("memories", "chunks", "tasks", "messages_per_task", "tag_vocabulary"):
        _check(getattr(spec, name) >= 0, f"{name} = {getattr(spec, name)} must be >= 0")
    _check(1 <= spec.dim <= 16_000, f"dim = {spec.dim} must be between 1 and 16000")
    _check(
        1 <= spec.topics_per_agent <= 1000,
        f"topics_per_agent = {spec.topics_per_agent} must be between 1 and 1000",
    )
    _check(spec.topic_spread >= 0, f"topic_spread = {spec.topic_spread} must be >= 0")
    _check(
        0 < spec.doc_kb_min <= spec.doc_kb_max,
        f"doc_kb_min = {spec.doc_kb_min} must be > 0 and <= doc_kb_max = {spec.doc_kb_max}",
    )
    _check(
        0.0 <= spec.expired_fraction <= 1.0,
        f"expired_fraction = {spec.expired_fraction} must be between 0 and 1",
    )
    _check(spec.tag_vocabulary >= 1, f"tag_vocabulary = {spec.tag_vocabulary} must be >= 1")


def _now_us(seed: int) -> int:
    now = _NOW_BASE + dt.timedelta(days=seed % 365)
    return int(now.timestamp()) * US_PER_S


def _days(n: float) -> int:
    return int(n * _US_PER_DAY)


def _near_rows(
    centres: np.ndarray, spread: float, rng: np.random.Generator, metric: Metric
) -> np.ndarray:
    """``centres + spread * noise`` with noise of unit expected norm, float32."""
    n, dim = centres.shape
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    noise *= np.float32(spread / math.sqrt(dim))
    noise += centres
    if metric is Metric.COSINE:
        normalize_rows(noise)
    return noise


def _tenants(spec: AgentDataSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Agents per tenant (Zipf, each >= 1); agents are numbered contiguously by tenant."""
    counts = zipf_counts(spec.agents, spec.tenants, spec.tenant_zipf, 1, rng)
    tenant_of_agent = np.repeat(np.arange(spec.tenants, dtype=np.int32), counts)
    return tenant_of_agent, counts


def _topics(spec: AgentDataSpec, rng: np.random.Generator) -> np.ndarray:
    shape = (spec.agents, spec.topics_per_agent, spec.dim)
    topics = rng.standard_normal(shape, dtype=np.float32)
    normalize_rows(topics)
    return topics


def _tags(n: int, words: list[str], probs: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    """1-5 distinct tags a row, drawn from the Zipf vocabulary."""
    if n == 0:
        return []
    sizes = rng.integers(1, _MAX_TAGS + 1, size=n).tolist()
    draws = rng.choice(len(words), size=(n, _MAX_TAGS), p=probs).tolist()
    return [[words[c] for c in dict.fromkeys(row[:k])] for row, k in zip(draws, sizes, strict=True)]


@dataclasses.dataclass(frozen=True)
class _Memories:
    agent: np.ndarray
    topic: np.ndarray
    kind: np.ndarray
    created_at: np.ndarray
    expires_at: np.ndarray
    importance: np.ndarray
    embedding: np.ndarray
    counts: np.ndarray


def _memory_embeddings(
    spec: AgentDataSpec,
    topics: np.ndarray,
    agent: np.ndarray,
    topic: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    out = np.empty((agent.size, spec.dim), dtype=np.float32)
    for lo in range(0, agent.size, _BLOCK_ROWS):
        hi = min(agent.size, lo + _BLOCK_ROWS)
        centres = topics[agent[lo:hi], topic[lo:hi]]
        out[lo:hi] = _near_rows(centres, spec.topic_spread, rng, spec.metric)
    return out


def _expiry(created: np.ndarray, fraction: float, now: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(fraction * n) memories expired before now; of the rest, half never expire."""
    n = created.size
    expires = np.full(n, NEVER_EXPIRES, dtype=np.int64)
    order = rng.permutation(n)
    n_expired = round(fraction * n)
    expired, rest = order[:n_expired], order[n_expired:]
    lived = rng.random(n_expired) * (now - created[expired])
    expires[expired] = created[expired] + lived.astype(np.int64)
    future = rest[: rest.size // 2]
    expires[future] = now + rng.integers(
        _days(1 / 24), _days(_FUTURE_EXPIRY_DAYS), size=future.size
    )
    return expires


def _memories(
    spec: AgentDataSpec, topics: np.ndarray, now: int, rng: np.random.Generator
) -> _Memories:
    counts = zipf_counts(spec.memories, spec.agents, spec.agent_zipf, 1, rng)
    # Interleaved, as agents write concurrently: an agent's rows are spread over the heap.
    agent = rng.permutation(np.repeat(np.arange(spec.agents, dtype=np.int32), counts))
    topic = rng.integers(0, spec.topics_per_agent, size=agent.size, dtype=np.int16)
    embedding = _memory_embeddings(spec, topics, agent, topic, rng)
    kind = rng.choice(len(MEMORY_KINDS), size=agent.size, p=_MEMORY_KIND_P).astype(np.uint8)
    # Rows in insertion order: created_at grows with the row index; all strictly before now.
    age = rng.integers(US_PER_S, _days(_MEMORY_HISTORY_DAYS), size=agent.size)
    created = now - np.sort(age)[::-1]
    expires = _expiry(created, spec.expired_fraction, now, rng)
    importance = rng.beta(2.0, 5.0, size=agent.size).astype(np.float32)
    return _Memories(agent, topic, kind, created, expires, importance, embedding, counts)


@dataclasses.dataclass(frozen=True)
class _Chunks:
    tenant: np.ndarray
    document: np.ndarray
    index: np.ndarray
    embedding: np.ndarray
    document_tenant: np.ndarray


def _chunk_counts(
    spec: AgentDataSpec, agents_per_tenant: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Chunks per tenant, Zipf; the tenant with most agents also has the most documents."""
    ranked = np.sort(zipf_counts(spec.chunks, spec.tenants, spec.tenant_zipf, 1, rng))[::-1]
    counts = np.empty(spec.tenants, dtype=np.int64)
    counts[np.argsort(-agents_per_tenant, kind="stable")] = ranked
    return counts


def _document_sizes(total: int, rng: np.random.Generator) -> np.ndarray:
    """Chunks per document (geometric, mean ~6, capped) summing exactly to ``total``."""
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    guess = int(total / _MEAN_CHUNKS_PER_DOCUMENT * 1.5) + 8
    sizes = np.minimum(
        rng.geometric(1 / _MEAN_CHUNKS_PER_DOCUMENT, size=guess), _MAX_CHUNKS_PER_DOCUMENT
    )
    while sizes.sum() < total:
        sizes = np.concatenate((sizes, sizes))
    ends = np.cumsum(sizes)
    last = int(np.searchsorted(ends, total))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= int(ends[last]) - total
    return sizes.astype(np.int64)


def _chunks(
    spec: AgentDataSpec,
    topics: np.ndarray,
    agents_per_tenant: np.ndarray,
    rng: np.random.Generator,
) -> _Chunks:
    counts = _chunk_counts(spec, agents_per_tenant, rng)
    agent_offsets = offsets(agents_per_tenant)
    per_tenant = [_document_sizes(int(c), rng) for c in counts]
    doc_tenant = np.concatenate(
        [np.full(s.size, t, dtype=np.int32) for t, s in enumerate(per_tenant)]
    )
    doc_sizes = np.concatenate(per_tenant) if per_tenant else np.zeros(0, dtype=np.int64)
    # Documents arrive interleaved across tenants; renumber them in ingestion order.
    order = rng.permutation(doc_tenant.size)
    doc_tenant, doc_sizes = doc_tenant[order], doc_sizes[order]
    # Each document is about one topic of one of its tenant's agents.
    lo, hi = agent_offsets[doc_tenant], agent_offsets[doc_tenant + 1]
    doc_agent = lo + (rng.random(doc_tenant.size) * (hi - lo)).astype(np.int64)
    doc_topic = rng.integers(0, spec.topics_per_agent, size=doc_tenant.size)
    doc_centre = _near_rows(topics[doc_agent, doc_topic], 0.5 * spec.topic_spread, rng, Metric.L2)
    document = np.repeat(np.arange(doc_tenant.size, dtype=np.int32), doc_sizes)
    index = (np.arange(document.size) - offsets(doc_sizes)[document]).astype(np.int32)
    embedding = np.empty((document.size, spec.dim), dtype=np.float32)
    for start in range(0, document.size, _BLOCK_ROWS):
        stop = min(document.size, start + _BLOCK_ROWS)
        centres = doc_centre[document[start:stop]]
        embedding[start:stop] = _near_rows(centres, 0.85 * spec.topic_spread, rng, spec.metric)
    return _Chunks(doc_tenant[document], document, index, embedding, doc_tenant)


@dataclasses.dataclass(frozen=True)
class _Tasks:
    agent: np.ndarray
    context: np.ndarray
    status: np.ndarray
    created_at: np.ndarray
    updated_at: np.ndarray
    message_task: np.ndarray
    message_role: np.ndarray
    message_created_at: np.ndarray


def _tasks(spec: AgentDataSpec, access: np.ndarray, now: int, rng: np.random.Generator) -> _Tasks:
    n = spec.tasks
    n_contexts = min(n, max(1, round(n / _TASKS_PER_CONTEXT)))
    # A context (conversation) belongs to one agent; busy agents have more of them.
    context_agent = rng.choice(spec.agents, size=n_contexts, p=access).astype(np.int32)
    extra = rng.integers(0, n_contexts, size=n - n_contexts) if n else np.zeros(0, np.int64)
    context = rng.permutation(np.concatenate((np.arange(n_contexts), extra))).astype(np.int32)
    agent = context_agent[context] if n else np.zeros(0, dtype=np.int32)
    status = rng.choice(len(TASK_STATUSES), size=n, p=_TASK_STATUS_P).astype(np.uint8)
    age = rng.integers(_days(0.25), _days(_TASK_HISTORY_DAYS), size=n)
    created = now - np.sort(age)[::-1]
    # Messages: every task has at least one, the rest spread at random.
    total = n * spec.messages_per_task
    per_task = np.zeros(n, dtype=np.int64)
    if total:
        per_task = 1 + rng.multinomial(total - n, np.full(n, 1.0 / n))
    message_task = np.repeat(np.arange(n, dtype=np.int32), per_task)
    position = np.arange(message_task.size) - offsets(per_task)[message_task]
    role = (position % len(MESSAGE_ROLES)).astype(np.uint8)  # user, agent, user, ...
    gaps = rng.integers(US_PER_S, 60 * US_PER_S, size=message_task.size)
    msg_created = np.minimum(created[message_task] + _within_group_cumsum(gaps, per_task), now)
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, message_task, msg_created)
    updated = np.minimum(np.maximum(created, last) + rng.integers(0, 10 * US_PER_S, size=n), now)
    return _Tasks(agent, context, status, created, updated, message_task, role, msg_created)


def _within_group_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting at each group (groups are consecutive)."""
    total = np.cumsum(values)
    starts = offsets(sizes)[:-1]
    before = np.concatenate(([0], total))[starts]
    return np.asarray(total - np.repeat(before, sizes))


def generate_agent_dataset(spec: AgentDataSpec) -> AgentDataset:
    """The platform ``spec`` describes; the same spec always gives the same data."""
    _validate(spec)
    now = _now_us(spec.seed)
    tenant_of_agent, agents_per_tenant = _tenants(spec, seeded_rng(spec.seed, _STREAM_TENANTS))
    topics = _topics(spec, seeded_rng(spec.seed, _STREAM_TOPICS))
    mem = _memories(spec, topics, now, seeded_rng(spec.seed, _STREAM_MEMORIES))
    chunks = _chunks(spec, topics, agents_per_tenant, seeded_rng(spec.seed, _STREAM_CHUNKS))
    access = access_weights(mem.counts, spec.agent_zipf)
    tasks = _tasks(spec, access, now, seeded_rng(spec.seed, _STREAM_TASKS))
    text_rng = seeded_rng(spec.seed, _STREAM_TEXT)
    corpus = make_corpus(text_rng, max(1 << 20, int(4 * spec.doc_kb_max * KB)))
    tag_words = make_tag_words(spec.tag_vocabulary)
    tag_p = zipf_probabilities(len(tag_words), spec.tag_zipf)
    agent_rng = seeded_rng(spec.seed, _STREAM_AGENTS)
    agent_age = agent_rng.integers(
        _days(_AGENT_AGE_DAYS[0]), _days(_AGENT_AGE_DAYS[1]), spec.agents
    )
    return AgentDataset(
        spec=spec,
        now_us=now,
        corpus=corpus,
        tag_words=tag_words,
        tenant_of_agent=tenant_of_agent,
        tenant_agent_offsets=offsets(agents_per_tenant),
        agent_created_at=now - agent_age,
        agent_topics=topics,
        memory_agent=mem.agent,
        memory_tenant=tenant_of_agent[mem.agent],
        memory_topic=mem.topic,
        memory_kind=mem.kind,
        memory_created_at=mem.created_at,
        memory_expires_at=mem.expires_at,
        memory_importance=mem.importance,
        memory_embedding=mem.embedding,
        memory_tags=_tags(spec.memories, tag_words, tag_p, text_rng),
        memory_count_of_agent=mem.counts,
        memory_order_by_agent=np.argsort(mem.agent, kind="stable"),
        memory_agent_offsets=offsets(mem.counts),
        chunk_tenant=chunks.tenant,
        chunk_document=chunks.document,
        chunk_index=chunks.index,
        chunk_embedding=chunks.embedding,
        chunk_tags=_tags(chunks.tenant.size, tag_words, tag_p, text_rng),
        document_tenant=chunks.document_tenant,
        task_agent=tasks.agent,
        task_context=tasks.context,
        task_status=tasks.status,
        task_created_at=tasks.created_at,
        task_updated_at=tasks.updated_at,
        message_task=tasks.message_task,
        message_role=tasks.message_role,
        message_created_at=tasks.message_created_at,
    )
