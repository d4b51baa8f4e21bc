"""The agent platform generator: deterministic, skewed, clustered, sized as asked."""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from pgvbench.datasets.agents import (
    KB,
    NEVER_EXPIRES,
    AgentDataset,
    fit_zipf_exponent,
    generate_agent_dataset,
    selectivity_stats,
    zipf_counts,
)
from pgvbench.datasets.agents.model import MESSAGE_ROLES, TASK_STATUSES, AgentDataSpec
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric

SMALL = AgentDataSpec(
    tenants=4, agents=30, memories=3000, chunks=800, tasks=150, messages_per_task=3, dim=16
)
DOC_KINDS = ("agents", "memories", "chunks", "tasks", "messages")


@pytest.fixture(scope="module")
def small() -> AgentDataset:
    return generate_agent_dataset(SMALL)


def _rows(ds: AgentDataset, kind: str) -> int:
    return {
        "agents": ds.agents,
        "memories": ds.memories,
        "chunks": ds.chunks,
        "tasks": ds.tasks,
        "messages": ds.messages,
    }[kind]


def _all_docs(ds: AgentDataset) -> dict[str, list[str]]:
    return {kind: [ds.document(kind, i) for i in range(_rows(ds, kind))] for kind in DOC_KINDS}


def _columns(ds: AgentDataset) -> dict[str, Any]:
    return {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)}


# --------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_arrays_and_documents(small: AgentDataset) -> None:
    again = generate_agent_dataset(SMALL)
    for name, value in _columns(small).items():
        other = getattr(again, name)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype, name
            assert np.array_equal(value, other), name
        else:
            assert value == other, name
    assert _all_docs(small) == _all_docs(again)
    assert [small.memory_content(i) for i in range(50)] == [
        again.memory_content(i) for i in range(50)
    ]


def test_documents_are_the_same_on_every_call(small: AgentDataset) -> None:
    assert small.task_state(7) == small.task_state(7)
    assert small.chunk_content(3) == small.chunk_content(3)


def test_another_seed_gives_other_data(small: AgentDataset) -> None:
    other = generate_agent_dataset(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert not np.array_equal(small.memory_embedding, other.memory_embedding)
    assert not np.array_equal(small.memory_agent, other.memory_agent)
    assert small.memory_metadata(0) != other.memory_metadata(0)
    assert small.now_us != other.now_us
    assert small.id_of("memories", 0) != other.id_of("memories", 0)


# --------------------------------------------------------------------------- skew


def test_zipf_counts_are_exact_deterministic_and_floored() -> None:
    counts = zipf_counts(10_000, 100, 1.1, 3, np.random.default_rng(1))
    assert counts.sum() == 10_000
    assert counts.min() >= 3
    assert np.array_equal(counts, zipf_counts(10_000, 100, 1.1, 3, np.random.default_rng(1)))
    # Not enough rows for the minimum: it drops to what the total allows.
    assert zipf_counts(50, 100, 1.0, 1, np.random.default_rng(1)).sum() == 50
    assert zipf_counts(0, 5, 1.0, 1, np.random.default_rng(1)).tolist() == [0] * 5


def test_fit_zipf_exponent_recovers_an_exact_power_law() -> None:
    counts = np.round(1e6 * np.arange(1, 500) ** -1.3)
    assert fit_zipf_exponent(counts) == pytest.approx(1.3, abs=0.01)


@pytest.mark.parametrize("exponent", [0.8, 1.1, 1.3])
def test_memories_per_agent_follow_the_agent_zipf(exponent: float) -> None:
    spec = AgentDataSpec(
        tenants=50, agents=1000, memories=200_000, chunks=500, tasks=50, dim=4, agent_zipf=exponent
    )
    ds = generate_agent_dataset(spec)
    counts = np.bincount(ds.memory_agent, minlength=ds.agents)
    assert np.array_equal(counts, ds.memory_count_of_agent)
    assert fit_zipf_exponent(counts) == pytest.approx(exponent, abs=0.15)
    assert counts.min() >= 1


def test_every_tenant_has_an_agent_and_skew_follows_tenant_zipf() -> None:
    spec = AgentDataSpec(
        tenants=40, agents=4000, memories=8000, chunks=20_000, tasks=10, dim=4, tenant_zipf=1.0
    )
    ds = generate_agent_dataset(spec)
    agents_per_tenant = np.bincount(ds.tenant_of_agent, minlength=ds.tenants)
    assert agents_per_tenant.min() >= 1
    assert fit_zipf_exponent(agents_per_tenant) == pytest.approx(1.0, abs=0.15)
    chunks_per_tenant = np.bincount(ds.chunk_tenant, minlength=ds.tenants)
    assert fit_zipf_exponent(chunks_per_tenant) == pytest.approx(1.0, abs=0.15)
    # The tenant with the most agents also holds the most chunks.
    assert np.argmax(chunks_per_tenant) == np.argmax(agents_per_tenant)


def test_access_weights_favour_the_largest_agent(small: AgentDataset) -> None:
    weights = small.agent_access_weights()
    assert weights.sum() == pytest.approx(1.0)
    assert np.argmax(weights) == np.argmax(small.memory_count_of_agent)
    flat = small.agent_access_weights(0.0)
    assert np.allclose(flat, 1.0 / small.agents)


# --------------------------------------------------------------------------- vectors


def test_memories_cluster_around_their_agents_topics() -> None:
    spec = dataclasses.replace(SMALL, dim=64, metric=Metric.COSINE)
    ds = generate_agent_dataset(spec)
    centres = ds.agent_topics.reshape(-1, spec.dim)  # row a * topics + j
    owner = np.repeat(np.arange(ds.agents), spec.topics_per_agent)
    dist = np.linalg.norm(ds.memory_embedding[:, None, :] - centres[None, :, :], axis=2)
    own = np.where(owner[None, :] == ds.memory_agent[:, None], dist, np.inf).min(axis=1)
    other = np.where(owner[None, :] != ds.memory_agent[:, None], dist, np.inf).min(axis=1)
    assert np.all(own < other)
    assert np.allclose(np.linalg.norm(ds.memory_embedding, axis=1), 1.0, atol=1e-5)
    # Each memory sits nearest to the very topic it was drawn from.
    assigned = dist[
        np.arange(ds.memories), ds.memory_agent * spec.topics_per_agent + ds.memory_topic
    ]
    assert np.all(assigned <= own + 1e-6)


def test_query_vectors_land_among_the_agents_memories(small: AgentDataset) -> None:
    rng = np.random.default_rng(5)
    agent = int(np.argmax(small.memory_count_of_agent))
    hits = 0
    for _ in range(20):
        query = small.query_vector_for_agent(agent, rng)
        assert query.dtype == np.float32 and query.shape == (SMALL.dim,)
        nearest = np.argsort(np.linalg.norm(small.memory_embedding - query, axis=1))[:10]
        hits += int(np.sum(small.memory_agent[nearest] == agent))
    assert hits >= 150  # most of the unfiltered top-10 belongs to that agent
    tenant = int(small.tenant_of_agent[agent])
    query = small.query_vector_for_tenant(tenant, rng)
    nearest = np.argsort(np.linalg.norm(small.chunk_embedding - query, axis=1))[:10]
    assert np.mean(small.chunk_tenant[nearest] == tenant) >= 0.5


def test_l2_metric_keeps_raw_vectors() -> None:
    ds = generate_agent_dataset(dataclasses.replace(SMALL, metric=Metric.L2))
    norms = np.linalg.norm(ds.memory_embedding, axis=1)
    assert not np.allclose(norms, 1.0)
    assert ds.memory_embedding.dtype == np.float32 and ds.chunk_embedding.dtype == np.float32


# --------------------------------------------------------------------------- documents


@pytest.mark.parametrize(("kb_min", "kb_max"), [(0.3, 4.0), (0.3, 0.5), (1.0, 2.0)])
def test_documents_parse_and_sizes_span_the_range(kb_min: float, kb_max: float) -> None:
    ds = generate_agent_dataset(dataclasses.replace(SMALL, doc_kb_min=kb_min, doc_kb_max=kb_max))
    for kind, docs in _all_docs(ds).items():
        sizes = np.array([len(d.encode()) for d in docs]) / KB
        assert sizes.min() >= kb_min * 0.9, kind
        assert sizes.max() <= kb_max * 1.1, kind
        if len(docs) >= 100:  # uniform: the mean sits mid-range
            assert sizes.mean() == pytest.approx((kb_min + kb_max) / 2, rel=0.1), kind
        for doc in docs:
            json.loads(doc)


def test_documents_have_the_agent_platform_shapes(small: AgentDataset) -> None:
    config = json.loads(small.agent_config(0))
    assert {"model", "tools", "limits"} <= config.keys()
    assert all("name" in tool for tool in config["tools"])
    meta = json.loads(small.memory_metadata(0))
    assert {"source", "entities", "scores"} <= meta.keys()
    chunk = json.loads(small.chunk_metadata(0))
    assert {"source", "doc_type", "lang"} <= chunk.keys()
    for task in range(small.tasks):
        state = json.loads(small.task_state(task))
        status = TASK_STATUSES[int(small.task_status[task])]
        assert isinstance(state["history"], list) and state["history"]
        assert state["history"][0]["state"] == "submitted"
        assert state["history"][-1]["state"] == status == state["status"]["state"]
        assert isinstance(state["artifacts"], list)
    kinds: set[str] = set()
    for message in range(small.messages):
        parts = json.loads(small.message_parts(message))
        assert isinstance(parts, list) and parts[0]["kind"] == "text"
        kinds.update(part["kind"] for part in parts)
    assert kinds == {"text", "data", "file"}


def test_content_text_lengths(small: AgentDataset) -> None:
    memory = [len(small.memory_content(i)) for i in range(small.memories)]
    chunk = [len(small.chunk_content(i)) for i in range(small.chunks)]
    assert min(memory) >= 60 and max(memory) <= 640
    assert min(chunk) >= 300 and max(chunk) <= 1500


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.35])
def test_expired_fraction(fraction: float) -> None:
    ds = generate_agent_dataset(dataclasses.replace(SMALL, expired_fraction=fraction))
    expires, created = ds.memory_expires_at, ds.memory_created_at
    expired = expires < ds.now_us
    assert expired.mean() == pytest.approx(fraction, abs=0.02)
    assert np.all(created < ds.now_us)
    assert np.all(expires[expired] >= created[expired])
    assert np.any(expires == NEVER_EXPIRES)  # some never expire (NULL)
    assert np.all(np.diff(created) >= 0)  # rows in insertion order


def test_reference_now_depends_only_on_the_seed() -> None:
    a = generate_agent_dataset(dataclasses.replace(SMALL, memories=100, chunks=10, tasks=5))
    assert a.now_us == generate_agent_dataset(SMALL).now_us


def test_tasks_and_messages_are_consistent(small: AgentDataset) -> None:
    per_task = np.bincount(small.message_task, minlength=small.tasks)
    assert small.messages == SMALL.tasks * SMALL.messages_per_task
    assert per_task.min() >= 1
    assert np.all(np.diff(small.message_task) >= 0)  # grouped by task
    assert np.all(small.message_created_at > small.task_created_at[small.message_task])
    assert np.all(small.task_updated_at >= small.task_created_at)
    assert np.all(small.task_updated_at <= small.now_us)
    first = np.searchsorted(small.message_task, np.arange(small.tasks))
    assert {MESSAGE_ROLES[r] for r in small.message_role[first]} == {"user"}
    # A context belongs to one agent.
    for context in np.unique(small.task_context):
        assert len(set(small.task_agent[small.task_context == context].tolist())) == 1


def test_chunks_form_documents_of_consecutive_indexes(small: AgentDataset) -> None:
    for doc in range(small.documents):
        rows = np.flatnonzero(small.chunk_document == doc)
        assert rows.size >= 1
        assert np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size))
        assert np.array_equal(small.chunk_index[rows], np.arange(rows.size))
        assert np.all(small.chunk_tenant[rows] == small.document_tenant[doc])


# --------------------------------------------------------------------------- tags


def test_tags_come_from_the_vocabulary_with_zipf_frequencies() -> None:
    ds = generate_agent_dataset(dataclasses.replace(SMALL, memories=40_000, tag_vocabulary=300))
    vocabulary = set(ds.tag_words)
    assert len(vocabulary) == 300
    counter: collections.Counter[str] = collections.Counter()
    for tags in ds.memory_tags + ds.chunk_tags:
        assert 1 <= len(tags) <= 5
        assert len(set(tags)) == len(tags)
        assert set(tags) <= vocabulary
        counter.update(tags)
    frequencies = [counter[word] for word in ds.tag_words]
    assert counter.most_common(1)[0][0] == ds.tag_words[0]
    assert fit_zipf_exponent(frequencies) == pytest.approx(SMALL.tag_zipf, abs=0.15)


# --------------------------------------------------------------------------- selectivity


def test_selectivity_stats_are_consistent(small: AgentDataset) -> None:
    stats = selectivity_stats(small)
    per_agent = stats["memories_per_agent"]
    assert per_agent["total"] == small.memories
    assert per_agent["mean"] * small.agents == pytest.approx(small.memories)
    assert per_agent["min"] >= 1
    for entry in stats.values():
        assert entry["min"] <= entry["median"] <= entry["p99"] <= entry["max"]
    assert stats["memories_per_tenant"]["total"] == small.memories
    assert stats["chunks_per_tenant"]["total"] == small.chunks
    assert stats["agents_per_tenant"]["total"] == small.agents
    assert per_agent["max"] == small.memory_count_of_agent.max()


def test_memory_ids_of_agent(small: AgentDataset) -> None:
    seen = 0
    for agent in range(small.agents):
        rows = small.memory_ids_of_agent(agent)
        assert np.array_equal(rows, np.flatnonzero(small.memory_agent == agent))
        seen += rows.size
    assert seen == small.memories
    tenant = int(small.tenant_of_agent[0])
    assert np.all(small.tenant_of_agent[small.agents_of_tenant(tenant)] == tenant)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"agents": 3, "tenants": 4}, "agents"),
        ({"doc_kb_min": 5.0, "doc_kb_max": 1.0}, "doc_kb_min"),
        ({"expired_fraction": 1.5}, "expired_fraction"),
        ({"dim": 0}, "dim"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, Any], word: str) -> None:
    with pytest.raises(DatasetError, match=word):
        generate_agent_dataset(dataclasses.replace(SMALL, **change))
