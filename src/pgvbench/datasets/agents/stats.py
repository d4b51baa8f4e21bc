"""Selectivity of the agent platform's filters: rows per agent and per tenant."""

from __future__ import annotations

import numpy as np

from .dataset import AgentDataset


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
