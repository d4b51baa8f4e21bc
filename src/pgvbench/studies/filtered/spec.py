"""The [filtered] table: which strategies to compare, and how hard to measure them."""

from __future__ import annotations

import dataclasses

from ...spec.model import INDEX_MAX_DIM
from ...spec.table import Table

STRATEGIES = (
    "hnsw_plain",
    "hnsw_strict",
    "hnsw_relaxed",
    "ivfflat_iterative",
    "btree_exact",
    "partial_hot",
    "partitioned",
)
#: Shares of all memories that separate the selectivity buckets: < 0.1%, 0.1-1%, 1-5%, > 5%.
DEFAULT_BUCKET_EDGES = (0.001, 0.01, 0.05)
_KEYS = [
    "strategies",
    "k",
    "ef_search",
    "max_scan_tuples",
    "bucket_edges",
    "queries_per_bucket",
    "recall_target",
    "measure_seconds",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FilteredSpec:
    strategies: tuple[str, ...]
    k: int = 10
    ef_search: int = 40
    max_scan_tuples: int = 20_000
    bucket_edges: tuple[float, ...] = DEFAULT_BUCKET_EDGES
    queries_per_bucket: int = 30
    recall_target: float = 0.9
    measure_seconds: float = 1.0


def parse(t: Table) -> FilteredSpec:
    """Validate [filtered]; every error names the file, the table and the key."""
    t.only(_KEYS)
    strategies = tuple(
        dict.fromkeys(t.str_list("strategies", default=list(STRATEGIES), allowed=STRATEGIES))
    )
    edges = t.data.get("bucket_edges", list(DEFAULT_BUCKET_EDGES))
    if (
        not isinstance(edges, list)
        or not edges
        or not all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and 0 < e < 1 for e in edges
        )
        or sorted(edges) != edges
    ):
        t.fail(
            "bucket_edges",
            f"= {edges!r} must be increasing fractions in (0, 1), e.g. "
            "[0.001, 0.01, 0.05] (share of all memories held by one agent)",
        )
    return FilteredSpec(
        strategies=strategies,
        k=t.integer("k", default=10, minimum=1, maximum=100),
        ef_search=t.integer("ef_search", default=40, minimum=1, maximum=1000),
        max_scan_tuples=t.integer(
            "max_scan_tuples", default=20_000, minimum=1, maximum=100_000_000
        ),
        bucket_edges=tuple(float(e) for e in edges),
        queries_per_bucket=t.integer("queries_per_bucket", default=30, minimum=1, maximum=10_000),
        recall_target=t.number("recall_target", default=0.9, minimum=0.0, maximum=1.0),
        measure_seconds=t.number("measure_seconds", default=1.0, minimum=0.1, maximum=600.0),
    )


def dim_problem(spec: FilteredSpec, dim: int, dim_from: str) -> str | None:
    """pgvector's index dimension limit for the strategies that build a vector index."""
    limit = INDEX_MAX_DIM["vector"]
    if dim <= limit:
        return None
    indexed = [s for s in spec.strategies if s != "btree_exact"]
    if not indexed:
        return None
    return (
        f"[filtered] strategies {', '.join(indexed)} build HNSW or IVFFlat indexes, "
        f"which pgvector limits to {limit:,} dimensions of type vector ({dim_from}); "
        'keep only "btree_exact" or use at most 2,000 dimensions'
    )
