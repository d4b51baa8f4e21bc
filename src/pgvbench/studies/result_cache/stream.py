"""The seeded Zipf query stream, and what an exact LRU should hit on it without a server
(a replay of the same stream, and Che's steady-state approximation)."""

from __future__ import annotations

import numpy as np

from .caches import LruCache


def zipf_probabilities(zipf: float, distinct: int) -> np.ndarray:
    """P(rank r) proportional to 1/r^zipf, r = 1..distinct."""
    weights = np.arange(1, distinct + 1, dtype=np.float64) ** -float(zipf)
    probs: np.ndarray = weights / weights.sum()
    return probs


def zipf_stream(zipf: float, distinct: int, length: int, seed: int) -> np.ndarray:
    """Query ids (0..distinct-1) of a seeded Zipf stream; popularity ranks are shuffled."""
    rng = np.random.default_rng(seed)
    ranks = rng.choice(distinct, size=length, p=zipf_probabilities(zipf, distinct))
    by_rank = rng.permutation(distinct)  # which query holds each popularity rank
    ids: np.ndarray = by_rank[ranks].astype(np.int64)
    return ids


def stream_vectors(queries: np.ndarray, ids: np.ndarray, jitter: float, seed: int) -> np.ndarray:
    """The vector of each stream entry: the first occurrence exact, repeats jittered.

    A repeat gets Gaussian noise scaled to norm ``jitter x |q|`` (a paraphrase of the
    same question); with jitter 0 repeats are bit-identical.
    """
    out = np.array(queries[ids], dtype=np.float32)
    if jitter <= 0 or ids.size == 0:
        return out
    rng = np.random.default_rng([seed, 1])
    _, first = np.unique(ids, return_index=True)
    repeat = np.ones(ids.size, dtype=bool)
    repeat[first] = False
    rows = np.flatnonzero(repeat)
    noise = rng.standard_normal((rows.size, out.shape[1]))
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    norms = np.linalg.norm(out[rows].astype(np.float64), axis=1, keepdims=True)
    out[rows] += (noise * norms * jitter).astype(np.float32)
    return out


def simulate_lru_hits(ids: np.ndarray, size: int) -> np.ndarray:
    """Hit (True) or miss of each entry of an id stream through an LruCache."""
    cache = LruCache(size)
    hits = np.zeros(ids.size, dtype=bool)
    for i, key in enumerate(ids.tolist()):
        if cache.get(key) is not None:
            hits[i] = True
        else:
            cache.put(key, True)
    return hits


def expected_lru_hit_rate(zipf: float, distinct: int, size: int, length: int, seed: int) -> float:
    """Hit rate of an exact LRU on the same seeded stream, simulated without a server."""
    ids = zipf_stream(zipf, distinct, length, seed)
    return float(simulate_lru_hits(ids, size).mean()) if length else 0.0


def che_lru_hit_rate(zipf: float, distinct: int, size: int) -> float:
    """Che's approximation of the steady-state LRU hit rate under independent references.

    The characteristic time T solves sum(1 - exp(-p_i T)) = size; the hit rate is
    sum p_i (1 - exp(-p_i T)). Cold-start misses of a finite stream are not included.
    """
    if size >= distinct:
        return 1.0
    p = zipf_probabilities(zipf, distinct)
    lo, hi = 0.0, 1.0
    while np.sum(1.0 - np.exp(-p * hi)) < size:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.sum(1.0 - np.exp(-p * mid)) < size:
            lo = mid
        else:
            hi = mid
    return float(np.sum(p * (1.0 - np.exp(-p * hi))))
