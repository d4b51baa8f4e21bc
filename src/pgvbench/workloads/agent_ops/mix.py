"""The weighted agent workload: one Operation per named operation of the mix."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...datasets.agents.dataset import AgentDataset
from ...engine.operations import MixOperation, Operation
from ...metrics import Metric
from .lookup import agent_lookup_op
from .memory import memory_expire_op, memory_recall_op, memory_write_op
from .params import OPERATIONS
from .rag import rag_search_op
from .tasks import message_append_op, task_update_op


def build_agent_mix(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    weights: Mapping[str, float],
    k: int,
    metric: Metric,
    vector_oid: int,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None,
    recall_filter_kind: bool,
    recall_recency_days: float | None,
    rag_filter: str,
    expire_batch: int = 100,
) -> MixOperation:
    """The weighted agent workload; operations of weight 0 are not built."""
    unknown = sorted(set(weights) - set(OPERATIONS))
    if unknown:
        raise ValueError(
            f"unknown agent operations {', '.join(unknown)}; known: {', '.join(OPERATIONS)}"
        )
    where = {"schema": schema, "prefix": prefix}
    builders: dict[str, Callable[[], Operation]] = {
        "memory_write": lambda: memory_write_op(
            dataset,
            **where,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
        ),
        "memory_recall": lambda: memory_recall_op(
            dataset,
            **where,
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
            filter_kind=recall_filter_kind,
            recency_days=recall_recency_days,
        ),
        "rag_search": lambda: rag_search_op(
            dataset,
            **where,
            k=k,
            metric=metric,
            vector_oid=vector_oid,
            seed=seed,
            access_zipf=access_zipf,
            settings=settings,
            rag_filter=rag_filter,
        ),
        "task_update": lambda: task_update_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
        "message_append": lambda: message_append_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
        "memory_expire": lambda: memory_expire_op(**where, batch=expire_batch, settings=settings),
        "agent_lookup": lambda: agent_lookup_op(
            dataset, **where, seed=seed, access_zipf=access_zipf, settings=settings
        ),
    }
    parts = [(builders[name](), float(w)) for name, w in weights.items() if w > 0]
    return MixOperation(parts, seed=seed)
