"""The AI-agent platform dataset: data model, seeded generator and selectivity statistics.

model.py names the tables and rows (no numpy); dataset.py holds the generated platform;
generator.py builds it from an ``AgentDataSpec``; stats.py measures filter selectivity.
"""

from pgvbench.datasets.agents.dataset import KB, NEVER_EXPIRES, AgentDataset
from pgvbench.datasets.agents.generator import generate_agent_dataset
from pgvbench.datasets.agents.model import (
    MEMORY_KINDS,
    MESSAGE_ROLES,
    TABLES,
    TASK_STATUSES,
    AgentDataSpec,
    table_name,
    uuid_for,
)
from pgvbench.datasets.agents.sampling import fit_zipf_exponent, zipf_counts
from pgvbench.datasets.agents.stats import selectivity_stats

__all__ = [
    "KB",
    "MEMORY_KINDS",
    "MESSAGE_ROLES",
    "NEVER_EXPIRES",
    "TABLES",
    "TASK_STATUSES",
    "AgentDataSpec",
    "AgentDataset",
    "fit_zipf_exponent",
    "generate_agent_dataset",
    "selectivity_stats",
    "table_name",
    "uuid_for",
    "zipf_counts",
]
