"""Result caches without a server: LRU vs its simulation, semantic cache behaviour, spec."""

from __future__ import annotations

import numpy as np
import pytest

from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.table import Table as _Table
from pgvbench.studies.result_cache import (
    LruCache,
    SemanticCache,
    che_lru_hit_rate,
    expected_lru_hit_rate,
    parse_result_cache,
    simulate_lru_hits,
    stream_vectors,
    zipf_stream,
)


def _hit_rate_lru(ids: np.ndarray, vectors: np.ndarray, size: int) -> float:
    cache = LruCache(size)
    hits = 0
    for v in vectors:
        key = v.tobytes()
        if cache.get(key) is not None:
            hits += 1
        else:
            cache.put(key, 1)
    return hits / len(ids)


def _hit_rate_semantic(vectors: np.ndarray, size: int, delta: float, metric: Metric) -> float:
    cache = SemanticCache(size, delta, metric, vectors.shape[1])
    hits = 0
    for v in vectors:
        if cache.get(v) is not None:
            hits += 1
        else:
            cache.put(v, 1)
    return hits / int(vectors.shape[0])


@pytest.fixture
def queries() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)


def test_lru_on_zipf_stream_matches_simulation_exactly(queries: np.ndarray) -> None:
    ids = zipf_stream(1.1, 300, 5000, seed=4)
    vectors = stream_vectors(queries, ids, 0.0, seed=4)
    for size in (5, 30, 120):
        measured = _hit_rate_lru(ids, vectors, size)
        assert measured == expected_lru_hit_rate(1.1, 300, size, 5000, 4)
    # and the long-run simulation is close to Che's approximation
    long = zipf_stream(1.1, 300, 100_000, seed=5)
    sim = float(simulate_lru_hits(long, 30).mean())
    assert sim == pytest.approx(che_lru_hit_rate(1.1, 300, 30), abs=0.02)


def test_lru_uniform_stream_closed_form() -> None:
    distinct, size, length = 200, 50, 100_000
    rate = expected_lru_hit_rate(0.0, distinct, size, length, seed=2)
    # independent uniform references: an LRU of C items hits with probability C/N
    assert rate == pytest.approx(size / distinct, abs=0.01)
    assert che_lru_hit_rate(0.0, distinct, size) == pytest.approx(size / distinct, abs=1e-6)
    assert expected_lru_hit_rate(0.0, distinct, distinct, length, seed=2) == pytest.approx(
        1 - distinct / length
    )


def test_semantic_cache_delta_zero_is_exact_matching(queries: np.ndarray) -> None:
    ids = zipf_stream(1.0, 300, 3000, seed=3)
    vectors = stream_vectors(queries, ids, 0.0, seed=3)
    for metric in Metric:
        assert _hit_rate_semantic(vectors, 40, 0.0, metric) == _hit_rate_lru(ids, vectors, 40)
    jittered = stream_vectors(queries, ids, 0.02, seed=3)
    assert _hit_rate_semantic(jittered, 40, 0.0, Metric.L2) == _hit_rate_lru(ids, jittered, 40)


def test_larger_delta_gives_higher_hit_rate(queries: np.ndarray) -> None:
    ids = zipf_stream(1.0, 300, 3000, seed=3)
    vectors = stream_vectors(queries, ids, 0.05, seed=3)
    rates = [_hit_rate_semantic(vectors, 60, d, Metric.L2) for d in (0.0, 0.1, 0.5, 2.0, 100.0)]
    assert rates == sorted(rates)
    assert rates[0] < rates[2] < rates[-1]
    assert rates[-1] == pytest.approx(1 - 1 / 3000)  # everything after the first request hits


def test_stream_is_seeded_and_jitter_keeps_first_occurrence(queries: np.ndarray) -> None:
    a = zipf_stream(1.2, 300, 1000, seed=9)
    assert np.array_equal(a, zipf_stream(1.2, 300, 1000, seed=9))
    assert not np.array_equal(a, zipf_stream(1.2, 300, 1000, seed=10))
    v = stream_vectors(queries, a, 0.1, seed=9)
    _, first = np.unique(a, return_index=True)
    assert np.array_equal(v[first], queries[a[first]])
    rest = np.setdiff1d(np.arange(a.size), first)
    rel = np.linalg.norm(v[rest] - queries[a[rest]], axis=1) / np.linalg.norm(
        queries[a[rest]], axis=1
    )
    assert np.allclose(rel, 0.1, rtol=1e-3)


def test_lru_evicts_least_recently_used() -> None:
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3


def test_parse_result_cache() -> None:
    spec = parse_result_cache(
        _Table("x.toml", "result_cache", {"lru_sizes": [100, 10], "semantic_deltas": 0.2})
    )
    assert spec.lru_sizes == (10, 100)
    assert spec.semantic_deltas == (0.2,)
    assert spec.semantic_capacity == 100
    with pytest.raises(SpecError, match=r"\[result_cache\] lru_size"):
        parse_result_cache(_Table("x.toml", "result_cache", {"lru_size": [1]}))
    with pytest.raises(SpecError, match="semantic_deltas"):
        parse_result_cache(_Table("x.toml", "result_cache", {"semantic_deltas": [-1]}))
