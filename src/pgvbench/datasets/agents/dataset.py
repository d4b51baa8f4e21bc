"""The generated agent platform as columnar arrays, with its text documents built on demand.

The bulky text (JSON documents and ``content``) is not stored: each value is rebuilt from a
per-row hash of ``(seed, table, row)``, so it is the same on every call and in every process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...metrics import Metric
from . import vocabulary as vocab
from .model import MEMORY_KINDS, MESSAGE_ROLES, TASK_STATUSES, AgentDataSpec, uuid_for
from .sampling import Draw, access_weights, normalize_rows

#: expires_at of a memory that never expires (written as NULL).
NEVER_EXPIRES = np.iinfo(np.int64).max
KB = 1024
US_PER_S = 1_000_000

# Per-row hash salts of the lazily built text (fixed: Python's str hash is randomised).
_SALT_AGENT, _SALT_MEMORY, _SALT_CHUNK, _SALT_TASK, _SALT_MESSAGE = 11, 12, 13, 14, 15
_SALT_MEMORY_TEXT, _SALT_CHUNK_TEXT = 22, 23

_Slots = list[tuple[Any, Any]]  # (container, key) of the text fields that pad a document


def _iso(us: int) -> str:
    moment = dt.datetime.fromtimestamp(us // US_PER_S, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        return access_weights(self.memory_count_of_agent, s)

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
            normalize_rows(vector)
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

    def _target_bytes(self, draw: Draw) -> int:
        lo, hi = self.spec.doc_kb_min * KB, self.spec.doc_kb_max * KB
        return int(draw.uniform(lo, hi))

    def _text(self, draw: Draw, length: int) -> str:
        """``length`` characters of padding text starting at a word boundary."""
        if length <= 0:
            return ""
        start = draw.below(max(1, len(self.corpus) - length - 32))
        start = self.corpus.find(" ", start) + 1
        return self.corpus[start : start + length]

    def _finish(
        self, doc: Any, slots: _Slots, weights: Sequence[int], draw: Draw, target: int
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
        draw = Draw(self.spec.seed, _SALT_AGENT + 100, agent)
        return f"{draw.pick(vocab.AGENT_ROLES)}-agent-{agent}"

    def agent_capabilities(self, agent: int) -> list[str]:
        draw = Draw(self.spec.seed, _SALT_AGENT + 200, agent)
        n = 1 + draw.below(4)
        return list(dict.fromkeys(draw.pick(vocab.CAPABILITIES) for _ in range(n)))

    def agent_config(self, agent: int) -> str:
        draw = Draw(self.spec.seed, _SALT_AGENT, agent)
        target = self._target_bytes(draw)
        tools: list[dict[str, Any]] = [
            {"name": draw.pick(vocab.TOOLS), "description": "", "timeout_s": 5 + draw.below(55)}
            for _ in range(1 + draw.below(min(6, 1 + target // 700)))
        ]
        doc: dict[str, Any] = {
            "model": draw.weighted(vocab.MODELS),
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
        draw = Draw(self.spec.seed, _SALT_MEMORY, memory)
        target = self._target_bytes(draw)
        entities: list[dict[str, Any]] = [
            {
                "name": draw.pick(vocab.ENTITY_NAMES),
                "type": draw.pick(vocab.ENTITY_TYPES),
                "salience": round(draw.uniform(), 3),
                "note": "",
            }
            for _ in range(1 + draw.below(min(5, 1 + target // 800)))
        ]
        doc: dict[str, Any] = {
            "source": {"type": draw.pick(vocab.MEMORY_SOURCES), "ref": draw.token()},
            "entities": entities,
            "scores": {
                "relevance": round(draw.uniform(), 3),
                "confidence": round(draw.uniform(), 3),
            },
            "summary": "",
            "lang": draw.weighted(vocab.LANGS),
        }
        if target > 600:
            doc["embedding_model"] = draw.pick(vocab.EMBEDDING_MODELS)
            doc["access_count"] = draw.below(50)
        slots: _Slots = [(doc, "summary")] + [(e, "note") for e in entities]
        return self._finish(doc, slots, [3] + [1] * len(entities), draw, target)

    def chunk_metadata(self, chunk: int) -> str:
        draw = Draw(self.spec.seed, _SALT_CHUNK, chunk)
        target = self._target_bytes(draw)
        doc: dict[str, Any] = {
            "source": draw.pick(vocab.CHUNK_SOURCES),
            "doc_type": draw.pick(vocab.DOC_TYPES),
            "lang": draw.weighted(vocab.LANGS),
            "title": "",
            "section": {"path": [draw.pick(vocab.SECTIONS) for _ in range(1 + draw.below(3))]},
            "acl": {"groups": list(dict.fromkeys(draw.pick(vocab.GROUPS) for _ in range(2)))},
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
        draw = Draw(self.spec.seed, _SALT_TASK, task)
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
            doc["metadata"] = {
                "priority": draw.pick(vocab.PRIORITIES),
                "channel": draw.pick(vocab.CHANNELS),
            }
            for _ in range(1 + draw.below(2) if status == "completed" else draw.below(2)):
                part = {"kind": "text", "text": ""}
                doc["artifacts"].append(
                    {
                        "artifactId": draw.token(),
                        "name": draw.pick(vocab.ARTIFACTS),
                        "parts": [part],
                    }
                )
                slots.append((part, "text"))
        weights = [1] + [3] * (len(slots) - 1)
        return self._finish(doc, slots, weights, draw, target)

    def message_parts(self, message: int) -> str:
        draw = Draw(self.spec.seed, _SALT_MESSAGE, message)
        target = self._target_bytes(draw)
        text_part: dict[str, Any] = {"kind": "text", "text": ""}
        parts: list[dict[str, Any]] = [text_part]
        slots: _Slots = [(text_part, "text")]
        if target > 700 and draw.below(3) == 0:
            parts.append(
                {
                    "kind": "data",
                    "data": {
                        "tool": draw.pick(vocab.TOOLS),
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
                        "name": f"{draw.pick(vocab.ARTIFACTS)}-{draw.below(1000)}.bin",
                        "mimeType": draw.pick(vocab.MIME_TYPES),
                        "uri": f"s3://agent-files/{draw.token()}",
                    },
                }
            )
        weights = [5] + [1] * (len(slots) - 1)
        return self._finish(parts, slots, weights, draw, target)

    def memory_content(self, memory: int) -> str:
        """The memory's text (60-600 characters), opening like its kind would."""
        draw = Draw(self.spec.seed, _SALT_MEMORY_TEXT, memory)
        lead = {
            "episodic": "On " + _iso(int(self.memory_created_at[memory]))[:10] + " ",
            "semantic": "Fact: ",
            "procedural": "How to: ",
            "reflection": "Reflection: ",
        }[MEMORY_KINDS[int(self.memory_kind[memory])]]
        return lead + self._text(draw, 60 + draw.below(540))

    def chunk_content(self, chunk: int) -> str:
        """The chunk's text (300-1500 characters)."""
        draw = Draw(self.spec.seed, _SALT_CHUNK_TEXT, chunk)
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
