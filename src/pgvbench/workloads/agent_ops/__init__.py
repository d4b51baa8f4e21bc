"""The agent-platform operation mix: memory writes and recall, RAG search, task updates.

Every builder returns an engine Operation whose parameters are a pure function of
``seq``: a seeded generator fills a table of ~64k pre-encoded parameter rows up front
and ``seq % size`` picks one, so an operation costs a list lookup in Python. Only new
row ids are computed per call (from ``(seed, seq)``), so inserts never repeat a key
within a run. Use a different seed for each run against the same tables, or the second
run's inserts collide with the first's.

Which agent an operation touches follows Zipf(``access_zipf``) over agents ranked by
memory count (``AgentDataset.agent_access_weights``): busy agents are read and written
most. Tenants, tasks and chunks follow from the chosen agent.

Modules: params (names, binary encoding, parameter tables), sampling (who is touched),
memory, rag, tasks, lookup (the operations), mix (the weighted workload).
"""

from pgvbench.workloads.agent_ops.lookup import agent_lookup_op
from pgvbench.workloads.agent_ops.memory import memory_expire_op, memory_recall_op, memory_write_op
from pgvbench.workloads.agent_ops.mix import build_agent_mix
from pgvbench.workloads.agent_ops.params import (
    JSONB_OID,
    OPERATIONS,
    RAG_FILTERS,
    STATEMENT_NAMES,
    TABLE_SIZE,
    AlternatingOperation,
)
from pgvbench.workloads.agent_ops.rag import rag_search_op
from pgvbench.workloads.agent_ops.tasks import message_append_op, task_update_op

__all__ = [
    "JSONB_OID",
    "OPERATIONS",
    "RAG_FILTERS",
    "STATEMENT_NAMES",
    "TABLE_SIZE",
    "AlternatingOperation",
    "agent_lookup_op",
    "build_agent_mix",
    "memory_expire_op",
    "memory_recall_op",
    "memory_write_op",
    "message_append_op",
    "rag_search_op",
    "task_update_op",
]
