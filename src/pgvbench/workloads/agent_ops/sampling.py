"""Who an agent operation touches: Zipf-chosen agents, tenants and tasks, query vectors near
their topics, one seeded stream per operation."""

from __future__ import annotations

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.sampling import zipf_probabilities
from ...metrics import Metric
from .params import OPERATIONS


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


def operation_rng(seed: int, operation: str) -> np.random.Generator:
    """One independent stream per (seed, operation): adding an op changes no other's."""
    return np.random.default_rng([seed, OPERATIONS.index(operation) + 1])


def ids(dataset: AgentDataset, kind: str, indexes: np.ndarray) -> dict[int, bytes]:
    """Raw uuid bytes of each distinct row index."""
    return {i: dataset.id_of(kind, i).bytes for i in set(indexes.tolist())}


def task_choice(
    dataset: AgentDataset, access_zipf: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Tasks of Zipf-chosen agents (among agents that have tasks), uniform within the agent."""
    counts = np.bincount(dataset.task_agent, minlength=dataset.agents)
    agents = agent_choice(dataset, access_zipf, size, rng, among=counts > 0)
    order = np.argsort(dataset.task_agent, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(counts)))
    within = (rng.random(size) * counts[agents]).astype(np.int64)
    return np.asarray(order[offsets[agents] + within])
