"""Spec tables of agent experiments ([experiment] kind = "agents").

[agents]        the generated platform (sizes, skew, documents)    -> AgentDataSpec
[workload]      the operation mix run through [load]                -> WorkloadSpec
[[operation]]   user-defined SQL operations with parameter generators (workloads.custom)
Study tables ([filtered], [drift], ...) are parsed by their studies (studies/registry.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence, Set
from typing import Any

from ..datasets.agents.model import AgentDataSpec
from ..errors import SpecError
from ..metrics import Metric
from ..workloads.agent_ops.params import OPERATIONS, RAG_FILTERS
from ..workloads.custom import parse_operations
from .table import Table


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    mix: Mapping[str, float]  # operation -> weight (built-ins; custom ops carry their own)
    k: int = 10
    access_zipf: float = 1.1  # which agent an operation touches
    recall_filter_kind: bool = False  # memory_recall also filters by kind
    recall_recency_days: float = 0.0  # memory_recall also filters created_at (0: off)
    rag_filter: str = "alternate"  # jsonb containment, tags overlap, or both alternately
    expire_batch: int = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentExperiment:
    data: AgentDataSpec | None  # None: custom operations against the user's own tables
    workload: WorkloadSpec | None
    operations: tuple[Any, ...]  # workloads.custom.CustomOpSpec

    def to_dict(self) -> dict[str, Any]:
        def plain(obj: Any) -> Any:
            if obj is None:
                return None
            data = dataclasses.asdict(obj)
            return {
                k: (
                    str(v)
                    if isinstance(v, Metric)
                    else list(v)
                    if isinstance(v, tuple)
                    else dict(v)
                    if isinstance(v, Mapping)
                    else v
                )
                for k, v in data.items()
            }

        return {
            "data": plain(self.data),
            "workload": plain(self.workload),
            "operations": [plain(op) for op in self.operations],
        }


def parse_agents(
    data: Mapping[str, Any], where: str, seed: int, *, studies: Sequence[str], present: Set[str]
) -> AgentExperiment:
    """[agents], [workload] and [[operation]]; ``studies`` names the agent studies (their
    own tables are parsed by the registry), ``present`` those the spec has."""
    agents = None
    if "agents" in data:
        agents = _parse_data(Table(where, "agents", data["agents"]), seed)
    workload = None
    if "workload" in data:
        workload = _parse_workload(Table(where, "workload", data["workload"]))
    operations: tuple[Any, ...] = ()
    if "operation" in data:
        raw = data["operation"]
        if not isinstance(raw, list):
            raise_table(where, "operation", "must be one or more [[operation]] tables")
        operations = tuple(parse_operations(raw, where))
    _check_read_only_mix(where, workload, operations)
    if agents is not None and workload is not None:
        _check_mix_tables(where, workload, agents)
    tables = [f"[{name}]" for name in studies]
    if agents is None and (workload is not None or present):
        needing = ["[workload]", *tables]
        raise_table(
            where,
            "agents",
            f"is required for {', '.join(needing[:-1])} and {needing[-1]} "
            "(they run on the generated agent platform)",
        )
    if workload is None and not operations and not present:
        raise_table(
            where,
            "workload",
            f"(or {', '.join(['[[operation]]', *tables])}) is required: "
            "an agent experiment needs something to measure",
        )
    return AgentExperiment(data=agents, workload=workload, operations=operations)


WRITE_OPERATIONS = ("memory_write", "task_update", "message_append", "memory_expire")


def _check_read_only_mix(
    where: str, workload: WorkloadSpec | None, operations: tuple[Any, ...]
) -> None:
    """A read-only custom operation makes its whole connection read-only (session settings
    are per connection), so it cannot share the mix with operations that write."""
    read_only = [op.name for op in operations if not op.writes]
    writers = [op.name for op in operations if op.writes]
    if workload is not None:
        writers += [name for name in WRITE_OPERATIONS if workload.mix.get(name, 0) > 0]
    if read_only and writers:
        raise_table(
            where,
            "operation",
            (
                f"{', '.join(repr(n) for n in read_only)} is read-only (writes = false) and would "
                f"make the connections it shares with {', '.join(writers)} read-only too: set "
                "writes = true on it, or benchmark it in a separate spec"
            ),
        )


# The [agents] count each built-in operation reads or writes through, where the spec lets it
# be 0 (memories and agents are at least 1): an operation over an empty table measures
# nothing, yet its numbers would look valid (rag_search over 0 chunks returns no rows fast).
_OPERATION_NEEDS = {
    "rag_search": ("chunks", "searches the chunks table"),
    "task_update": ("tasks", "updates rows of the tasks table"),
    "message_append": ("tasks", "appends messages to tasks"),
}


def _check_mix_tables(where: str, workload: WorkloadSpec, data: AgentDataSpec) -> None:
    for name, (count, does) in _OPERATION_NEEDS.items():
        weight = workload.mix.get(name, 0)
        if weight > 0 and getattr(data, count) == 0:
            raise_table(
                where,
                "workload",
                f"mix has {name} = {weight:g}, which {does}, but [agents] {count} = 0: it "
                f"would run over an empty table; set [agents] {count} above 0 or remove "
                f"{name} from the mix",
            )


def raise_table(where: str, section: str, message: str) -> None:
    raise SpecError(f"{where}: [{section}] {message}")


def _parse_data(t: Table, seed: int) -> AgentDataSpec:
    t.only(
        [
            "tenants",
            "agents",
            "memories",
            "chunks",
            "tasks",
            "messages_per_task",
            "dim",
            "metric",
            "agent_zipf",
            "tenant_zipf",
            "topics_per_agent",
            "topic_spread",
            "doc_kb",
            "tag_vocabulary",
            "tag_zipf",
            "expired_fraction",
        ]
    )
    doc = t.data.get("doc_kb", [0.3, 4.0])
    if (
        not isinstance(doc, list)
        or len(doc) != 2
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in doc)
        or not 0.05 <= doc[0] <= doc[1] <= 64
    ):
        t.fail("doc_kb", f"= {doc!r} must be [min, max] kB with 0.05 <= min <= max <= 64")
    tenants = t.integer("tenants", default=20, minimum=1, maximum=100_000)
    agents = t.integer("agents", default=200, minimum=1, maximum=1_000_000)
    if agents < tenants:
        t.fail(
            "agents", f"= {agents} must be at least tenants = {tenants} (every tenant has an agent)"
        )
    return AgentDataSpec(
        tenants=tenants,
        agents=agents,
        memories=t.integer("memories", default=50_000, minimum=1, maximum=50_000_000),
        chunks=t.integer("chunks", default=20_000, minimum=0, maximum=50_000_000),
        tasks=t.integer("tasks", default=5_000, minimum=0, maximum=10_000_000),
        messages_per_task=t.integer("messages_per_task", default=4, minimum=0, maximum=1000),
        dim=t.integer("dim", default=128, minimum=2, maximum=16000),
        metric=Metric(t.choice("metric", [m.value for m in Metric], default="cosine")),
        agent_zipf=t.number("agent_zipf", default=1.1, minimum=0.0, maximum=5.0),
        tenant_zipf=t.number("tenant_zipf", default=1.0, minimum=0.0, maximum=5.0),
        topics_per_agent=t.integer("topics_per_agent", default=3, minimum=1, maximum=100),
        topic_spread=t.number("topic_spread", default=0.35, minimum=1e-6, maximum=100.0),
        doc_kb_min=float(doc[0]),
        doc_kb_max=float(doc[1]),
        tag_vocabulary=t.integer("tag_vocabulary", default=500, minimum=1, maximum=1_000_000),
        tag_zipf=t.number("tag_zipf", default=1.2, minimum=0.0, maximum=5.0),
        expired_fraction=t.number("expired_fraction", default=0.1, minimum=0.0, maximum=1.0),
        seed=seed,
    )


def _parse_workload(t: Table) -> WorkloadSpec:
    t.only(
        [
            "mix",
            "k",
            "access_zipf",
            "recall_filter_kind",
            "recall_recency_days",
            "rag_filter",
            "expire_batch",
        ]
    )
    raw_mix = t.data.get("mix", {"memory_recall": 1})
    if not isinstance(raw_mix, Mapping) or not raw_mix:
        t.fail(
            "mix",
            "must be a table of operation = weight, e.g. { memory_recall = 70, memory_write = 30 }",
        )
    mix: dict[str, float] = {}
    for name, weight in raw_mix.items():
        if name not in OPERATIONS:
            t.fail(
                f"mix.{name}",
                f"is not an operation; allowed: {', '.join(OPERATIONS)} "
                "(define your own with [[operation]])",
            )
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            t.fail(f"mix.{name}", f"= {weight!r} must be a weight >= 0")
        mix[name] = float(weight)
    if not any(w > 0 for w in mix.values()):
        t.fail("mix", "needs at least one operation with a weight > 0")
    flag = t.data.get("recall_filter_kind", False)
    if not isinstance(flag, bool):
        t.fail("recall_filter_kind", f"= {flag!r} must be true or false")
    return WorkloadSpec(
        mix=mix,
        k=t.integer("k", default=10, minimum=1, maximum=100),
        access_zipf=t.number("access_zipf", default=1.1, minimum=0.0, maximum=5.0),
        recall_filter_kind=flag,
        recall_recency_days=t.number(
            "recall_recency_days", default=0.0, minimum=0.0, maximum=36500.0
        ),
        rag_filter=t.choice("rag_filter", RAG_FILTERS, default="alternate"),
        expire_batch=t.integer("expire_batch", default=100, minimum=1, maximum=1_000_000),
    )
