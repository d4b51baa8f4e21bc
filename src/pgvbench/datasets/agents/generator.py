"""Seeded generator of an AI-agent platform: tenants, agents, memories, chunks, tasks, messages.

Everything is columnar (numpy arrays of foreign indexes, codes and timestamps) so a
platform of millions of rows stays small in memory. The bulky text (JSON documents and
``content``) is not stored: each value is rebuilt on demand from a per-row hash of
``(seed, table, row)``, so it is the same on every call and in every process.

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
import itertools
import json
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import DatasetError
from ...metrics import Metric
from .model import (
    MEMORY_KINDS,
    MESSAGE_ROLES,
    TASK_STATUSES,
    AgentDataSpec,
    uuid_for,
)

#: expires_at of a memory that never expires (written as NULL).
NEVER_EXPIRES = np.iinfo(np.int64).max
KB = 1024
_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S
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

# Per-row hash salts of the lazily built text (fixed: Python's str hash is randomised).
_SALT_AGENT, _SALT_MEMORY, _SALT_CHUNK, _SALT_TASK, _SALT_MESSAGE = 11, 12, 13, 14, 15
_SALT_MEMORY_TEXT, _SALT_CHUNK_TEXT = 22, 23
_MASK64 = (1 << 64) - 1

_PADDING_TEXT = (
    "the customer asked about the invoice for last month and wanted a refund because the "
    "order arrived late our agent checked the shipping status with the carrier api and "
    "found a delay at the regional warehouse then it proposed a discount on the next "
    "renewal the user prefers email over phone and works in the berlin office on the "
    "data platform team they use postgres with pgvector for semantic search and want "
    "lower latency during peak hours the deployment runs on kubernetes with three "
    "replicas and a connection pooler the release notes mention a migration of the "
    "billing service and a new onboarding flow for enterprise accounts please summarize "
    "the meeting notes and create follow up tasks for the security review the contract "
    "renewal is due next quarter and legal needs the updated terms the dashboard shows "
    "an error rate spike after the last release rollback was discussed but not approved "
    "remember that the account owner is on vacation until monday and the backup contact "
    "handles escalations the model answered with a wrong date so the evaluation flagged "
    "the response for human review the knowledge base article explains how to rotate "
    "api keys and configure single sign on for new workspaces"
)
_WORDS = tuple(_PADDING_TEXT.split())
_TAG_TEXT = (
    "billing onboarding support urgent vip refund shipping security compliance legal "
    "sales renewal churn feedback bug feature docs api sso latency outage incident "
    "migration pricing contract invoice escalation product research hr finance ops "
    "infra kubernetes postgres search analytics marketing partner trial enterprise "
    "smb emea apac americas mobile web desktop integration slack email phone chat "
    "priority followup draft approved rejected archived internal external beta ga "
    "deprecated roadmap planning retro okr hiring training privacy gdpr soc2 audit "
    "backup restore performance cost quota limits upgrade downgrade cancel payment "
    "tax shipping-delay returns warranty inventory logistics procurement vendor"
)
_TAG_WORDS = tuple(_TAG_TEXT.split())
_MODELS = (
    ("gpt-4o", 5),
    ("gpt-4o-mini", 4),
    ("claude-3-5-sonnet", 4),
    ("claude-3-haiku", 2),
    ("gemini-1.5-pro", 2),
    ("llama-3.1-70b-instruct", 2),
    ("mistral-large", 1),
)
_TOOLS = (
    "web_search", "sql_query", "send_email", "create_ticket", "calendar_lookup",
    "crm_update", "code_interpreter", "file_reader", "http_request", "vector_recall",
)  # fmt: skip
_CAPABILITIES = (
    "streaming", "pushNotifications", "stateTransitionHistory", "memory", "rag",
    "toolUse", "codeExecution", "fileUpload", "multiTurn", "handoff",
)  # fmt: skip
_AGENT_ROLES = (
    "support", "sales", "research", "billing", "ops", "coding", "onboarding", "triage",
)  # fmt: skip
_MEMORY_SOURCES = ("conversation", "tool_call", "document", "reflection", "web", "email")
_ENTITY_TYPES = ("person", "org", "product", "place", "date", "ticket")
_ENTITY_NAMES = (
    "Alice Martin", "Bob Chen", "Acme Corp", "Globex", "Berlin", "Project Atlas",
    "Invoice 4471", "Q3 renewal", "Postgres", "Initech", "Maria Garcia", "Ticket 982",
)  # fmt: skip
_LANGS = (("en", 8), ("de", 2), ("fr", 2), ("es", 1), ("ja", 1))
_EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "bge-m3", "e5-large")
_CHUNK_SOURCES = ("confluence", "gdrive", "notion", "s3", "web", "zendesk", "sharepoint")
_DOC_TYPES = ("pdf", "html", "markdown", "docx", "email", "slides")
_SECTIONS = ("overview", "setup", "pricing", "faq", "security", "api", "troubleshooting")
_GROUPS = ("all-staff", "support", "sales", "engineering", "finance", "legal", "admins")
_ARTIFACTS = ("summary", "report", "draft_reply", "sql_result", "plan", "diff")
_PRIORITIES = ("low", "normal", "high", "urgent")
_CHANNELS = ("web", "slack", "email", "api", "voice")
_MIME_TYPES = ("application/pdf", "image/png", "text/csv", "text/plain")

_Slots = list[tuple[Any, Any]]  # (container, key) of the text fields that pad a document


# --------------------------------------------------------------------------- helpers


def _generator(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


def zipf_counts(
    total: int, buckets: int, exponent: float, minimum: int, rng: np.random.Generator
) -> np.ndarray:
    """Split ``total`` over ``buckets`` with Zipf(``exponent``) rank sizes, in random order.

    The bucket of rank r gets ``minimum + rest * r**-exponent / H`` (largest-remainder
    rounding, so the sum is exact); ``minimum`` is lowered to ``total // buckets`` when
    the total cannot give every bucket that many. The rank-to-bucket assignment is a
    permutation drawn from ``rng``: the same generator state gives the same counts.
    """
    if buckets < 1:
        raise DatasetError(f"zipf_counts: buckets must be >= 1, got {buckets}")
    if total < 0:
        raise DatasetError(f"zipf_counts: total must be >= 0, got {total}")
    floor = min(max(0, minimum), total // buckets)
    rest = total - floor * buckets
    weights = np.arange(1, buckets + 1, dtype=np.float64) ** -float(exponent)
    exact = rest * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    short = rest - int(counts.sum())
    if short > 0:
        # Stable sort: ties in the fractional part go to the better rank.
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    counts += floor
    return rng.permutation(counts)


def fit_zipf_exponent(counts: Sequence[int] | np.ndarray) -> float:
    """Zipf exponent of ``counts``: minus the least-squares slope of log(count) on log(rank)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    values = values[values > 0]
    if values.size < 2:
        raise DatasetError("fit_zipf_exponent needs at least two non-zero counts")
    ranks = np.log(np.arange(1, values.size + 1, dtype=np.float64))
    slope = np.polyfit(ranks, np.log(values), 1)[0]
    return float(-slope)


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def _zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    return np.asarray(weights / weights.sum())


def _access_weights(sizes: np.ndarray, exponent: float) -> np.ndarray:
    """Zipf probabilities over buckets ranked by size (largest first, ties by index)."""
    weights = np.empty(sizes.size, dtype=np.float64)
    weights[np.argsort(-sizes, kind="stable")] = _zipf_probabilities(sizes.size, exponent)
    return weights


def _normalize_rows(x: np.ndarray) -> None:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    x /= norms


def _iso(us: int) -> str:
    moment = dt.datetime.fromtimestamp(us // _US_PER_S, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class _Draw:
    """A tiny splitmix64 stream: per-row randomness with no per-row numpy generator."""

    __slots__ = ("state",)

    def __init__(self, seed: int, salt: int, row: int) -> None:
        self.state = _mix64((seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03 + row) & _MASK64)

    def u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        return _mix64(self.state)

    def below(self, n: int) -> int:
        return self.u64() % n if n > 1 else 0

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * ((self.u64() >> 11) * 2.0**-53)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def weighted(self, table: Sequence[tuple[str, int]]) -> str:
        r = self.below(sum(w for _, w in table))
        for value, weight in table:
            if r < weight:
                return value
            r -= weight
        return table[-1][0]

    def token(self) -> str:
        return f"{self.u64():016x}"


def _make_corpus(rng: np.random.Generator, min_chars: int) -> str:
    """Word salad with sentences: padding that compresses and indexes like real text."""
    n_words = min_chars // 5 + 1000
    picks = rng.integers(0, len(_WORDS), size=n_words).tolist()
    ends = set(np.flatnonzero(rng.random(n_words) < 1 / 12).tolist())
    words = [_WORDS[p] + ("." if i in ends else "") for i, p in enumerate(picks)]
    return " ".join(words)


def _make_tag_words(n: int) -> list[str]:
    """A vocabulary of ``n`` distinct tag words, most common first (Zipf rank order)."""
    base = list(dict.fromkeys(_TAG_WORDS))
    pairs = (f"{a}-{b}" for b in base for a in base if a != b)
    numbered = (f"tag-{i}" for i in itertools.count())
    words: dict[str, None] = {}
    for word in itertools.chain(base, pairs, numbered):
        if len(words) >= n:
            break
        words.setdefault(word)
    return list(words)


# --------------------------------------------------------------------------- dataset


@dataclasses.dataclass(eq=False, kw_only=True)
class AgentDataset:
    """A generated agent platform, columnar. Row i of table t has id ``uuid_for(t, seed, i)``.

    Codes index the model constants: ``memory_kind`` -> MEMORY_KINDS, ``task_status`` ->
    TASK_STATUSES, ``message_role`` -> MESSAGE_ROLES. Times are int64 epoch microseconds;
    ``memory_expires_at`` is NEVER_EXPIRES for memories without expiry (NULL in the table).
    """

    spec: AgentDataSpec
    now_us: int  # the reference "now": the expired memories expired before it
    corpus: str  # padding text the documents and content are cut from
    tag_words: list[str]  # tag vocabulary, most frequent first
    # tenants and agents
    tenant_of_agent: np.ndarray  # int32 (agents,), agents contiguous by tenant
    tenant_agent_offsets: np.ndarray  # int64 (tenants + 1,): agents of t = off[t]:off[t+1]
    agent_created_at: np.ndarray  # int64 (agents,)
    agent_topics: np.ndarray  # float32 (agents, topics_per_agent, dim), unit norm
    # memories
    memory_agent: np.ndarray  # int32 (memories,)
    memory_tenant: np.ndarray  # int32 (memories,)
    memory_topic: np.ndarray  # int16 (memories,): which of its agent's topics
    memory_kind: np.ndarray  # uint8 codes into MEMORY_KINDS
    memory_created_at: np.ndarray  # int64, non-decreasing with the row index
    memory_expires_at: np.ndarray  # int64, NEVER_EXPIRES when none
    memory_importance: np.ndarray  # float32 in [0, 1]
    memory_embedding: np.ndarray  # float32 (memories, dim)
    memory_tags: list[list[str]]
    memory_count_of_agent: np.ndarray  # int64 (agents,)
    memory_order_by_agent: np.ndarray  # int64: memory rows grouped by agent
    memory_agent_offsets: np.ndarray  # int64 (agents + 1,) into memory_order_by_agent
    # chunks
    chunk_tenant: np.ndarray  # int32 (chunks,)
    chunk_document: np.ndarray  # int32 (chunks,): documents numbered in ingestion order
    chunk_index: np.ndarray  # int32: position of the chunk in its document, from 0
    chunk_embedding: np.ndarray  # float32 (chunks, dim)
    chunk_tags: list[list[str]]
    document_tenant: np.ndarray  # int32 (documents,)
    # tasks and messages
    task_agent: np.ndarray  # int32 (tasks,)
    task_context: np.ndarray  # int32 (tasks,): A2A contextId index (one agent per context)
    task_status: np.ndarray  # uint8 codes into TASK_STATUSES
    task_created_at: np.ndarray  # int64
    task_updated_at: np.ndarray  # int64
    message_task: np.ndarray  # int32 (messages,), grouped by task
    message_role: np.ndarray  # uint8 codes into MESSAGE_ROLES
    message_created_at: np.ndarray  # int64

    # ---- sizes and ids

    @property
    def tenants(self) -> int:
        return self.spec.tenants

    @property
    def agents(self) -> int:
        return int(self.tenant_of_agent.size)

    @property
    def memories(self) -> int:
        return int(self.memory_agent.size)

    @property
    def chunks(self) -> int:
        return int(self.chunk_tenant.size)

    @property
    def tasks(self) -> int:
        return int(self.task_agent.size)

    @property
    def messages(self) -> int:
        return int(self.message_task.size)

    @property
    def documents(self) -> int:
        return int(self.document_tenant.size)

    def id_of(self, kind: str, index: int) -> uuid.UUID:
        """UUID of row ``index`` of ``kind`` (a table, or tenants/documents/contexts)."""
        return uuid_for(kind, self.spec.seed, int(index))

    # ---- access patterns

    def memory_ids_of_agent(self, agent: int) -> np.ndarray:
        """Row indexes of the memories of ``agent`` (ascending)."""
        lo, hi = self.memory_agent_offsets[agent], self.memory_agent_offsets[agent + 1]
        return self.memory_order_by_agent[lo:hi]

    def agents_of_tenant(self, tenant: int) -> np.ndarray:
        return np.arange(
            self.tenant_agent_offsets[tenant], self.tenant_agent_offsets[tenant + 1], dtype=np.int64
        )

    def agent_access_weights(self, exponent: float | None = None) -> np.ndarray:
        """Probability of each agent being touched: Zipf over agents ranked by memory count.

        The agent with the most memories is the most active (rank 1). ``exponent``
        defaults to the spec's ``agent_zipf``.
        """
        s = self.spec.agent_zipf if exponent is None else exponent
        return _access_weights(self.memory_count_of_agent, s)

    def query_vector_for_agent(self, agent: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh vector near one of ``agent``'s topics (a memory_recall query)."""
        topic = int(rng.integers(self.spec.topics_per_agent))
        return self._near(self.agent_topics[agent, topic], rng)

    def query_vector_for_tenant(self, tenant: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh vector near one of the tenant's topics (its agents' topics): RAG search."""
        lo, hi = self.tenant_agent_offsets[tenant], self.tenant_agent_offsets[tenant + 1]
        agent = int(rng.integers(lo, hi))
        return self.query_vector_for_agent(agent, rng)

    def _near(self, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dim = centre.shape[0]
        noise = rng.standard_normal(dim, dtype=np.float32) / np.float32(math.sqrt(dim))
        vector = (centre + np.float32(self.spec.topic_spread) * noise).astype(np.float32)
        if self.spec.metric is Metric.COSINE:
            _normalize_rows(vector)
        return vector

    # ---- lazily built text

    def document(self, kind: str, index: int) -> str:
        """The JSON document of row ``index`` of table ``kind`` (agents/memories/...)."""
        builders: dict[str, Callable[[int], str]] = {
            "agents": self.agent_config,
            "memories": self.memory_metadata,
            "chunks": self.chunk_metadata,
            "tasks": self.task_state,
            "messages": self.message_parts,
        }
        return builders[kind](index)

    def _target_bytes(self, draw: _Draw) -> int:
        lo, hi = self.spec.doc_kb_min * KB, self.spec.doc_kb_max * KB
        return int(draw.uniform(lo, hi))

    def _text(self, draw: _Draw, length: int) -> str:
        """``length`` characters of padding text starting at a word boundary."""
        if length <= 0:
            return ""
        start = draw.below(max(1, len(self.corpus) - length - 32))
        start = self.corpus.find(" ", start) + 1
        return self.corpus[start : start + length]

    def _finish(
        self, doc: Any, slots: _Slots, weights: Sequence[int], draw: _Draw, target: int
    ) -> str:
        """Fill the text slots so the JSON text reaches ``target`` bytes."""
        skeleton = json.dumps(doc, separators=(",", ":"))
        remaining = target - len(skeleton)
        if remaining <= 0 or not slots:
            return skeleton
        total = sum(weights)
        lengths = [remaining * w // total for w in weights]
        lengths[0] += remaining - sum(lengths)
        for (container, key), n in zip(slots, lengths, strict=True):
            container[key] = self._text(draw, n)
        return json.dumps(doc, separators=(",", ":"))

    def agent_name(self, agent: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_AGENT + 100, agent)
        return f"{draw.pick(_AGENT_ROLES)}-agent-{agent}"

    def agent_capabilities(self, agent: int) -> list[str]:
        draw = _Draw(self.spec.seed, _SALT_AGENT + 200, agent)
        n = 1 + draw.below(4)
        return list(dict.fromkeys(draw.pick(_CAPABILITIES) for _ in range(n)))

    def agent_config(self, agent: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_AGENT, agent)
        target = self._target_bytes(draw)
        tools: list[dict[str, Any]] = [
            {"name": draw.pick(_TOOLS), "description": "", "timeout_s": 5 + draw.below(55)}
            for _ in range(1 + draw.below(min(6, 1 + target // 700)))
        ]
        doc: dict[str, Any] = {
            "model": draw.weighted(_MODELS),
            "temperature": round(draw.uniform(0.0, 1.0), 2),
            "system_prompt": "",
            "tools": tools,
            "limits": {
                "max_tokens": draw.pick((1024, 2048, 4096, 8192)),
                "max_steps": 5 + draw.below(20),
                "rpm": 30 + draw.below(300),
            },
            "memory": {"retention_days": draw.pick((7, 30, 90, 365)), "recall_k": 10},
        }
        slots: _Slots = [(doc, "system_prompt")] + [(t, "description") for t in tools]
        return self._finish(doc, slots, [4] + [1] * len(tools), draw, target)

    def memory_metadata(self, memory: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_MEMORY, memory)
        target = self._target_bytes(draw)
        entities: list[dict[str, Any]] = [
            {
                "name": draw.pick(_ENTITY_NAMES),
                "type": draw.pick(_ENTITY_TYPES),
                "salience": round(draw.uniform(), 3),
                "note": "",
            }
            for _ in range(1 + draw.below(min(5, 1 + target // 800)))
        ]
        doc: dict[str, Any] = {
            "source": {"type": draw.pick(_MEMORY_SOURCES), "ref": draw.token()},
            "entities": entities,
            "scores": {
                "relevance": round(draw.uniform(), 3),
                "confidence": round(draw.uniform(), 3),
            },
            "summary": "",
            "lang": draw.weighted(_LANGS),
        }
        if target > 600:
            doc["embedding_model"] = draw.pick(_EMBEDDING_MODELS)
            doc["access_count"] = draw.below(50)
        slots: _Slots = [(doc, "summary")] + [(e, "note") for e in entities]
        return self._finish(doc, slots, [3] + [1] * len(entities), draw, target)

    def chunk_metadata(self, chunk: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_CHUNK, chunk)
        target = self._target_bytes(draw)
        doc: dict[str, Any] = {
            "source": draw.pick(_CHUNK_SOURCES),
            "doc_type": draw.pick(_DOC_TYPES),
            "lang": draw.weighted(_LANGS),
            "title": "",
            "section": {"path": [draw.pick(_SECTIONS) for _ in range(1 + draw.below(3))]},
            "acl": {"groups": list(dict.fromkeys(draw.pick(_GROUPS) for _ in range(2)))},
            "page": 1 + int(self.chunk_index[chunk]) // 2,
        }
        if target > 600:
            doc["section"]["heading"] = ""
            doc["summary"] = ""
        slots: _Slots = [(doc, "title")]
        if "summary" in doc:
            slots += [(doc["section"], "heading"), (doc, "summary")]
        weights = [1, 1, 6][: len(slots)]
        return self._finish(doc, slots, weights, draw, target)

    def task_state(self, task: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_TASK, task)
        target = self._target_bytes(draw)
        status = TASK_STATUSES[int(self.task_status[task])]
        created, updated = int(self.task_created_at[task]), int(self.task_updated_at[task])
        states = _status_path(status, draw.below(1 + min(3, target // 1200)))
        step = (updated - created) // max(1, len(states) - 1)
        history = [
            {"state": s, "timestamp": _iso(created + i * step)} for i, s in enumerate(states)
        ]
        doc: dict[str, Any] = {
            "kind": "task",
            "status": {"state": status, "timestamp": _iso(updated), "message": ""},
            "history": history,
            "artifacts": [],
        }
        slots: _Slots = [(doc["status"], "message")]
        if target > 700:
            doc["metadata"] = {"priority": draw.pick(_PRIORITIES), "channel": draw.pick(_CHANNELS)}
            for _ in range(1 + draw.below(2) if status == "completed" else draw.below(2)):
                part = {"kind": "text", "text": ""}
                doc["artifacts"].append(
                    {"artifactId": draw.token(), "name": draw.pick(_ARTIFACTS), "parts": [part]}
                )
                slots.append((part, "text"))
        weights = [1] + [3] * (len(slots) - 1)
        return self._finish(doc, slots, weights, draw, target)

    def message_parts(self, message: int) -> str:
        draw = _Draw(self.spec.seed, _SALT_MESSAGE, message)
        target = self._target_bytes(draw)
        text_part: dict[str, Any] = {"kind": "text", "text": ""}
        parts: list[dict[str, Any]] = [text_part]
        slots: _Slots = [(text_part, "text")]
        if target > 700 and draw.below(3) == 0:
            parts.append(
                {
                    "kind": "data",
                    "data": {
                        "tool": draw.pick(_TOOLS),
                        "arguments": {"query": "", "limit": 5 + draw.below(20)},
                        "result": {"status": "ok", "rows": draw.below(100)},
                    },
                }
            )
            slots.append((parts[-1]["data"]["arguments"], "query"))
        if target > 1000 and draw.below(4) == 0:
            parts.append(
                {
                    "kind": "file",
                    "file": {
                        "name": f"{draw.pick(_ARTIFACTS)}-{draw.below(1000)}.bin",
                        "mimeType": draw.pick(_MIME_TYPES),
                        "uri": f"s3://agent-files/{draw.token()}",
                    },
                }
            )
        weights = [5] + [1] * (len(slots) - 1)
        return self._finish(parts, slots, weights, draw, target)

    def memory_content(self, memory: int) -> str:
        """The memory's text (60-600 characters), opening like its kind would."""
        draw = _Draw(self.spec.seed, _SALT_MEMORY_TEXT, memory)
        lead = {
            "episodic": "On " + _iso(int(self.memory_created_at[memory]))[:10] + " ",
            "semantic": "Fact: ",
            "procedural": "How to: ",
            "reflection": "Reflection: ",
        }[MEMORY_KINDS[int(self.memory_kind[memory])]]
        return lead + self._text(draw, 60 + draw.below(540))

    def chunk_content(self, chunk: int) -> str:
        """The chunk's text (300-1500 characters)."""
        draw = _Draw(self.spec.seed, _SALT_CHUNK_TEXT, chunk)
        return self._text(draw, 300 + draw.below(1200))

    def message_role_name(self, message: int) -> str:
        return MESSAGE_ROLES[int(self.message_role[message])]


def _status_path(final: str, loops: int) -> list[str]:
    """The A2A status transitions that end in ``final``."""
    if final == "submitted":
        return ["submitted"]
    path = ["submitted", "working"]
    for _ in range(loops):
        path += ["input-required", "working"]
    if final == "working":
        return path
    return [*path, final]


# --------------------------------------------------------------------------- generation

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
    return int(now.timestamp()) * _US_PER_S


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
        _normalize_rows(noise)
    return noise


def _tenants(spec: AgentDataSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Agents per tenant (Zipf, each >= 1); agents are numbered contiguously by tenant."""
    counts = zipf_counts(spec.agents, spec.tenants, spec.tenant_zipf, 1, rng)
    tenant_of_agent = np.repeat(np.arange(spec.tenants, dtype=np.int32), counts)
    return tenant_of_agent, counts


def _topics(spec: AgentDataSpec, rng: np.random.Generator) -> np.ndarray:
    shape = (spec.agents, spec.topics_per_agent, spec.dim)
    topics = rng.standard_normal(shape, dtype=np.float32)
    _normalize_rows(topics)
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
    age = rng.integers(_US_PER_S, _days(_MEMORY_HISTORY_DAYS), size=agent.size)
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
    agent_offsets = _offsets(agents_per_tenant)
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
    index = (np.arange(document.size) - _offsets(doc_sizes)[document]).astype(np.int32)
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
    position = np.arange(message_task.size) - _offsets(per_task)[message_task]
    role = (position % len(MESSAGE_ROLES)).astype(np.uint8)  # user, agent, user, ...
    gaps = rng.integers(_US_PER_S, 60 * _US_PER_S, size=message_task.size)
    msg_created = np.minimum(created[message_task] + _within_group_cumsum(gaps, per_task), now)
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, message_task, msg_created)
    updated = np.minimum(np.maximum(created, last) + rng.integers(0, 10 * _US_PER_S, size=n), now)
    return _Tasks(agent, context, status, created, updated, message_task, role, msg_created)


def _within_group_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting at each group (groups are consecutive)."""
    total = np.cumsum(values)
    starts = _offsets(sizes)[:-1]
    before = np.concatenate(([0], total))[starts]
    return np.asarray(total - np.repeat(before, sizes))


def generate_agent_dataset(spec: AgentDataSpec) -> AgentDataset:
    """The platform ``spec`` describes; the same spec always gives the same data."""
    _validate(spec)
    now = _now_us(spec.seed)
    tenant_of_agent, agents_per_tenant = _tenants(spec, _generator(spec.seed, _STREAM_TENANTS))
    topics = _topics(spec, _generator(spec.seed, _STREAM_TOPICS))
    mem = _memories(spec, topics, now, _generator(spec.seed, _STREAM_MEMORIES))
    chunks = _chunks(spec, topics, agents_per_tenant, _generator(spec.seed, _STREAM_CHUNKS))
    access = _access_weights(mem.counts, spec.agent_zipf)
    tasks = _tasks(spec, access, now, _generator(spec.seed, _STREAM_TASKS))
    text_rng = _generator(spec.seed, _STREAM_TEXT)
    corpus = _make_corpus(text_rng, max(1 << 20, int(4 * spec.doc_kb_max * KB)))
    tag_words = _make_tag_words(spec.tag_vocabulary)
    tag_p = _zipf_probabilities(len(tag_words), spec.tag_zipf)
    agent_rng = _generator(spec.seed, _STREAM_AGENTS)
    agent_age = agent_rng.integers(
        _days(_AGENT_AGE_DAYS[0]), _days(_AGENT_AGE_DAYS[1]), spec.agents
    )
    return AgentDataset(
        spec=spec,
        now_us=now,
        corpus=corpus,
        tag_words=tag_words,
        tenant_of_agent=tenant_of_agent,
        tenant_agent_offsets=_offsets(agents_per_tenant),
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
        memory_agent_offsets=_offsets(mem.counts),
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


# --------------------------------------------------------------------------- statistics


def _summary(counts: np.ndarray) -> dict[str, float]:
    values = np.asarray(counts, dtype=np.float64)
    if values.size == 0:
        values = np.zeros(1)
    return {
        "min": float(values.min()),
        "median": float(np.median(values)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "buckets": float(counts.size),
        "total": float(values.sum()),
    }


def selectivity_stats(ds: AgentDataset) -> dict[str, dict[str, float]]:
    """Rows per filter value: how selective an agent or tenant filter is.

    Each entry has min, median, p99, max, mean, plus ``buckets`` (number of agents or
    tenants) and ``total`` (rows), so a fraction is ``value / total``.
    """
    return {
        "memories_per_agent": _summary(np.bincount(ds.memory_agent, minlength=ds.agents)),
        "memories_per_tenant": _summary(np.bincount(ds.memory_tenant, minlength=ds.tenants)),
        "chunks_per_tenant": _summary(np.bincount(ds.chunk_tenant, minlength=ds.tenants)),
        "agents_per_tenant": _summary(np.bincount(ds.tenant_of_agent, minlength=ds.tenants)),
    }
