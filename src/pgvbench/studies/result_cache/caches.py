"""The two client-side result caches compared: an exact-key LRU, and a semantic cache
that reuses a result when a cached query vector lies within ``delta`` of the new one."""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Any

import numpy as np

from ...metrics import Metric


class LruCache:
    """Exact-key LRU of ``size`` entries."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be >= 1, got {size}")
        self.size = size
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


def query_distances(keys: np.ndarray, vector: np.ndarray, metric: Metric) -> np.ndarray:
    """Distance of ``vector`` to each row of ``keys`` (float64).

    l2: Euclidean; cosine and ip: 1 - cosine similarity (an inner product is not a
    dissimilarity between two queries, their angle is). Bit-identical rows are 0.
    """
    k64 = keys.astype(np.float64)
    v64 = vector.astype(np.float64)
    if metric is Metric.L2:
        diff = k64 - v64
        dist: np.ndarray = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    else:
        norms = np.linalg.norm(k64, axis=1) * float(np.linalg.norm(v64))
        dots = k64 @ v64
        sim = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        dist = 1.0 - sim
    dist[(keys == vector).all(axis=1)] = 0.0
    return dist


class SemanticCache:
    """Reuse a result when a cached query lies within ``delta``; LRU eviction.

    The nearest cached key is found by brute force over a preallocated key matrix.
    ``delta = 0`` reuses only bit-identical vectors, i.e. exact matching.
    """

    def __init__(self, size: int, delta: float, metric: Metric, dim: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be >= 1, got {size}")
        self.size = size
        self.delta = float(delta)
        self.metric = Metric(metric)
        self._keys = np.zeros((size, dim), dtype=np.float32)
        self._stamp = np.zeros(size, dtype=np.int64)
        self._values: list[Any] = [None] * size
        self._count = 0
        self._tick = 0

    def __len__(self) -> int:
        return self._count

    def get(self, vector: np.ndarray) -> Any | None:
        if self._count == 0:
            return None
        dist = query_distances(self._keys[: self._count], vector, self.metric)
        slot = int(np.argmin(dist))
        if dist[slot] > self.delta:
            return None
        self._tick += 1
        self._stamp[slot] = self._tick
        return self._values[slot]

    def put(self, vector: np.ndarray, value: Any) -> None:
        if self._count < self.size:
            slot = self._count
            self._count += 1
        else:
            slot = int(np.argmin(self._stamp))
        self._tick += 1
        self._keys[slot] = vector
        self._stamp[slot] = self._tick
        self._values[slot] = value
