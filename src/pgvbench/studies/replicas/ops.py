"""The agent platform's operations, split for a primary and its standbys: the reads of
[workload.mix] (memory_recall, rag_search, agent_lookup) go to the standbys, its writes
(memory_write, task_update, message_append, memory_expire) to the primary. Without a
[workload] table: memory_recall and memory_write. The probes of recall-after-write write
through memory_write too, with ids of their own."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import psycopg

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import table_name
from ...engine.operations import MixOperation, ParamOperation
from ...metrics import Metric
from ...spec.agents import WorkloadSpec
from ...spec.model import ExperimentSpec
from ...workloads.agent_ops import build_agent_mix, memory_write_op

READS = ("memory_recall", "rag_search", "agent_lookup")
WRITES = ("memory_write", "task_update", "message_append", "memory_expire")
# probe ids come from memory_write's (kind, seed, seq) hash like the mix's own writes:
# far-off sequence numbers keep the two apart (and off the rows the mix's first writes use)
PROBE_SEQ_BASE = (1 << 40) + 500_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentOps:
    read: MixOperation
    write: MixOperation
    probe_write: ParamOperation  # memory_write; params(seq)[0] is the id, [5] the vector
    read_weights: Mapping[str, float]
    write_weights: Mapping[str, float]
    memories: str  # schema-qualified, quoted
    operator: str  # the metric's distance operator
    k: int
    settings: Mapping[str, str]  # statement_timeout and hnsw.ef_search of every session


def build_ops(
    experiment: ExperimentSpec, dataset: AgentDataset, *, metric: Metric, vector_oid: int
) -> AgentOps:
    workload = (experiment.agents.workload if experiment.agents else None) or WorkloadSpec(
        mix={"memory_recall": 1.0, "memory_write": 1.0}
    )
    usable = _usable(dataset)
    reads = _weights(workload.mix, READS, usable) or {"memory_recall": 1.0}
    writes = _weights(workload.mix, WRITES, usable) or {"memory_write": 1.0}
    settings = query_settings(experiment)
    schema, prefix = experiment.schema, experiment.name

    def mix(weights: Mapping[str, float]) -> MixOperation:
        return build_agent_mix(
            dataset,
            schema=schema,
            prefix=prefix,
            weights=weights,
            k=workload.k,
            metric=metric,
            vector_oid=vector_oid,
            seed=experiment.seed,
            access_zipf=workload.access_zipf,
            settings=settings,
            recall_filter_kind=workload.recall_filter_kind,
            recall_recency_days=workload.recall_recency_days or None,
            rag_filter=workload.rag_filter,
            expire_batch=workload.expire_batch,
        )

    return AgentOps(
        read=mix(reads),
        write=mix(writes),
        probe_write=memory_write_op(
            dataset,
            schema=schema,
            prefix=prefix,
            vector_oid=vector_oid,
            seed=experiment.seed,
            access_zipf=workload.access_zipf,
            settings=settings,
        ),
        read_weights=reads,
        write_weights=writes,
        memories=f'"{schema}"."{table_name(prefix, "memories")}"',
        operator=metric.operator,
        k=workload.k,
        settings=settings,
    )


def _usable(dataset: AgentDataset) -> set[str]:
    """Operations this platform has rows for (no chunks: no rag_search, ...)."""
    usable = {"memory_recall", "memory_write", "memory_expire", "agent_lookup"}
    if dataset.chunks:
        usable.add("rag_search")
    if dataset.tasks:
        usable |= {"task_update", "message_append"}
    return usable


def _weights(
    mix: Mapping[str, float], names: tuple[str, ...], usable: set[str]
) -> dict[str, float]:
    return {n: float(w) for n, w in mix.items() if n in names and n in usable and w > 0}


def query_settings(experiment: ExperimentSpec) -> dict[str, str]:
    """The agent runner's session settings: statement_timeout and the index's query knob
    at the [load] value or the operating point."""
    out = {"statement_timeout": str(experiment.query.statement_timeout_ms)}
    index = experiment.indexes[0]
    guc = index.query_guc
    if guc is not None and index.sweep_param:
        load = experiment.load
        value = (load.query_params.get(guc) if load else None) or index.operating_point
        if value is not None:
            out[guc] = str(value)
    return out


def vector_oid(conn: psycopg.Connection[Any], *, schema: str, prefix: str) -> int:
    """The embedding column's type OID (pgvector's differs per database)."""
    row = conn.execute(
        "SELECT atttypid FROM pg_attribute WHERE attrelid = format('%%I.%%I', %s::text, "
        "%s::text)::regclass AND attname = 'embedding'",
        (schema, table_name(prefix, "memories")),
    ).fetchone()
    return int(row[0]) if row else 0
