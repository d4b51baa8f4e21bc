"""What a filtered-search comparison runs on, whatever the data: one record for the
generated agent memories and for a vector dataset with attributes.

A source holds the rows (vectors in row order), the metric, the filterable columns
(:class:`~pgvbench.datasets.attributes.Attribute`), the table in pgvbench's schema the
strategies copy, how a row's id reads back, how a filter value is bound as a parameter
and how a query vector is drawn for a predicate.

- :func:`from_agents`: ``{prefix}_memories``; the label is the memory's agent
  (``agent_id``, a uuid per agent index), the partition key its tenant (``tenant_id``);
  query vectors are drawn near the agent's topics.
- :func:`from_vectors`: ``{schema}.{name}_items`` (``id bigint`` = row index in the
  dataset's base, ``embedding``, one column per attribute); query vectors are the
  dataset's queries (with their own labels when the dataset has them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.attributes import Attribute
from ...datasets.base import Dataset
from ...metrics import Metric
from .predicates import TYPE_OIDS, sql_text

AGENT_LABEL, AGENT_KEY = "agent_id", "tenant_id"


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class FilterSource:
    """The rows, columns and table one comparison filters (see the module docstring)."""

    kind: str  # "agents" | "vectors"
    table: str  # the table in pgvbench's schema the work copy is made from
    name: str  # the dataset, for the record
    rows: np.ndarray  # float32 (n, dim), row order = the table's ids
    metric: Metric
    attributes: tuple[Attribute, ...]
    queries: np.ndarray  # the pool of query vectors (vector datasets; empty for agents)
    key: str | None = None  # agent data: tenant_id (the tenant filter, the partitions)
    agents: AgentDataset | None = None

    @property
    def n(self) -> int:
        return int(self.rows.shape[0])

    @property
    def dim(self) -> int:
        return int(self.rows.shape[1])

    @property
    def id_oid(self) -> int:
        return TYPE_OIDS["uuid" if self.agents is not None else "bigint"]

    def attribute(self, name: str) -> Attribute:
        found = next((a for a in self.attributes if a.name == name), None)
        if found is None:
            raise KeyError(f"no attribute {name!r}")
        return found

    def param_oid(self, attribute: str) -> int:
        """The type OID a value of ``attribute`` is bound as."""
        if self.agents is not None:
            return TYPE_OIDS["uuid"]
        return TYPE_OIDS[self.attribute(attribute).sql_type]

    def encode(self, attribute: str, value: Any) -> str:
        """A filter value as the text parameter the column compares with."""
        if self.agents is not None:
            kind = "agents" if attribute == AGENT_LABEL else "tenants"
            return str(self.agents.id_of(kind, int(value)))
        return sql_text(self.attribute(attribute).kind, value)

    def literal(self, attribute: str, value: Any) -> str:
        """The same value as SQL text for DDL (partial indexes, partitions)."""
        return self.encode(attribute, value)

    def key_of(self, value: Any) -> Any | None:
        """The partition key a query on label ``value`` also filters by (agents: the
        agent's tenant), None without one."""
        if self.agents is None:
            return None
        return int(self.agents.tenant_of_agent[int(value)])

    def vector_for(self, value: Any, rng: np.random.Generator) -> np.ndarray:
        """A query vector for a filter on ``value``: near the agent's topics for agent data,
        one of the dataset's query vectors otherwise."""
        if self.agents is not None:
            return self.agents.query_vector_for_agent(int(value), rng)
        return np.asarray(self.queries[int(rng.integers(self.queries.shape[0]))])

    def decoder(self, rows: Sequence[np.ndarray]) -> Callable[[bytes], int]:
        """Returned id (binary) -> row index, -1 for an id outside ``rows`` (the rows any
        query's filter keeps: anything else broke the filter)."""
        union = np.unique(np.concatenate([r for r in rows if r.size] or [np.empty(0, np.int64)]))
        if self.agents is not None:
            agents = self.agents
            by_uuid = {agents.id_of("memories", int(r)).bytes: int(r) for r in union}
            return lambda raw: by_uuid.get(raw, -1)
        known = set(union.tolist())

        def row(raw: bytes) -> int:
            value = int.from_bytes(raw, "big", signed=True)
            return value if value in known else -1

        return row


def from_agents(dataset: AgentDataset, table: str) -> FilterSource:
    """The generated memories: label agent_id, partition key tenant_id."""
    return FilterSource(
        kind="agents",
        table=table,
        name="generated agent memories",
        rows=dataset.memory_embedding,
        metric=dataset.spec.metric,
        attributes=(
            Attribute(AGENT_LABEL, "int", np.asarray(dataset.memory_agent, dtype=np.int64)),
            Attribute(AGENT_KEY, "int", np.asarray(dataset.memory_tenant, dtype=np.int64)),
        ),
        queries=np.empty((0, dataset.memory_embedding.shape[1]), dtype=np.float32),
        key=AGENT_KEY,
        agents=dataset,
    )


def from_vectors(dataset: Dataset, table: str) -> FilterSource:
    """A vector dataset whose items table has one column per attribute."""
    return FilterSource(
        kind="vectors",
        table=table,
        name=dataset.name,
        rows=dataset.base,
        metric=dataset.metric,
        attributes=dataset.attributes,
        queries=dataset.queries,
    )
