"""``[result_cache]``: the query stream and the cache configurations to compare."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ...spec.table import Table


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResultCacheSpec:
    """``[result_cache]``: the query stream and the cache configurations to compare."""

    zipf: float = 1.0  # exponent s of P(rank r) ~ 1/r^s; 0 is a uniform stream
    stream_length: int = 2000
    distinct_queries: int = 200
    lru_sizes: tuple[int, ...] = (10, 50, 100)
    semantic_deltas: tuple[float, ...] = (0.0, 0.1)
    semantic_size: int = 0  # 0: the largest LRU size
    jitter: float = 0.0  # repeats get noise of norm jitter x |q| (0: exact repeats)
    writes_per_second: float = 0.0  # staleness study; 0 = off
    k: int = 10
    seed: int = 0

    @property
    def semantic_capacity(self) -> int:
        return self.semantic_size or max(self.lru_sizes)


RESULT_CACHE_KEYS = [
    "zipf",
    "stream_length",
    "distinct_queries",
    "lru_sizes",
    "semantic_deltas",
    "semantic_size",
    "jitter",
    "writes_per_second",
    "k",
    "seed",
]


def _number_list(t: Table, key: str, default: list[float], minimum: float) -> tuple[float, ...]:
    value: Any = t.data.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        t.fail(key, f"= {value!r} must be a number or a non-empty list of numbers")
    out: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            t.fail(key, f"contains {item!r}; every value must be a number")
        if not np.isfinite(item) or item < minimum:
            t.fail(key, f"contains {item!r}; every value must be a finite number >= {minimum}")
        out.append(float(item))
    return tuple(sorted(set(out)))


def parse_result_cache(t: Table) -> ResultCacheSpec:
    """Validate ``[result_cache]``; errors name the file, table and key (SpecError)."""
    t.only(RESULT_CACHE_KEYS)
    distinct = t.integer("distinct_queries", default=200, minimum=1, maximum=1_000_000)
    return ResultCacheSpec(
        zipf=t.number("zipf", default=1.0, minimum=0.0, maximum=10.0),
        stream_length=t.integer("stream_length", default=2000, minimum=1, maximum=10_000_000),
        distinct_queries=distinct,
        lru_sizes=t.int_list("lru_sizes", default=[10, 50, 100], minimum=1, maximum=10_000_000),
        semantic_deltas=_number_list(t, "semantic_deltas", [0.0, 0.1], 0.0),
        semantic_size=t.integer("semantic_size", default=0, minimum=0, maximum=10_000_000),
        jitter=t.number("jitter", default=0.0, minimum=0.0, maximum=10.0),
        writes_per_second=t.number("writes_per_second", default=0.0, minimum=0.0),
        k=t.integer("k", default=10, minimum=1, maximum=100),
        seed=t.integer("seed", default=0, minimum=0),
    )


def queries_problem(spec: ResultCacheSpec, queries: int, queries_from: str) -> str | None:
    """The stream draws from the dataset's first ``distinct_queries`` queries."""
    if spec.distinct_queries > queries:
        return (
            f"[result_cache] distinct_queries = {spec.distinct_queries} exceeds the dataset's "
            f"{queries} queries ({queries_from}); lower it or give the dataset more queries"
        )
    return None
