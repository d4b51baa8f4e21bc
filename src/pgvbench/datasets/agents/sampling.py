"""Random building blocks of the agent platform generator: seeded streams, Zipf splits, hashes.

``zipf_counts`` and ``fit_zipf_exponent`` are public (tests and selectivity checks use them);
the rest serve the generator and the lazily built documents of ``AgentDataset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import DatasetError

_MASK64 = (1 << 64) - 1


def seeded_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


def zipf_counts(
    total: int, buckets: int, exponent: float, minimum: int, rng: np.random.Generator
) -> np.ndarray:
    """Split ``total`` over ``buckets`` with Zipf(``exponent``) rank sizes, in random order.

    The bucket of rank r gets ``minimum + rest * r**-exponent / H`` (largest-remainder
    rounding, so the sum is exact); ``minimum`` is lowered to ``total // buckets`` when
    the total cannot give every bucket that many. The rank-to-bucket assignment is a
    permutation drawn from ``rng``: the same generator state gives the same counts.
    """
    if buckets < 1:
        raise DatasetError(f"zipf_counts: buckets must be >= 1, got {buckets}")
    if total < 0:
        raise DatasetError(f"zipf_counts: total must be >= 0, got {total}")
    floor = min(max(0, minimum), total // buckets)
    rest = total - floor * buckets
    weights = np.arange(1, buckets + 1, dtype=np.float64) ** -float(exponent)
    exact = rest * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    short = rest - int(counts.sum())
    if short > 0:
        # Stable sort: ties in the fractional part go to the better rank.
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    counts += floor
    return rng.permutation(counts)


def fit_zipf_exponent(counts: Sequence[int] | np.ndarray) -> float:
    """Zipf exponent of ``counts``: minus the least-squares slope of log(count) on log(rank)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    values = values[values > 0]
    if values.size < 2:
        raise DatasetError("fit_zipf_exponent needs at least two non-zero counts")
    ranks = np.log(np.arange(1, values.size + 1, dtype=np.float64))
    slope = np.polyfit(ranks, np.log(values), 1)[0]
    return float(-slope)


def offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    return np.asarray(weights / weights.sum())


def access_weights(sizes: np.ndarray, exponent: float) -> np.ndarray:
    """Zipf probabilities over buckets ranked by size (largest first, ties by index)."""
    weights = np.empty(sizes.size, dtype=np.float64)
    weights[np.argsort(-sizes, kind="stable")] = zipf_probabilities(sizes.size, exponent)
    return weights


def normalize_rows(x: np.ndarray) -> None:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    x /= norms


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class Draw:
    """A tiny splitmix64 stream: per-row randomness with no per-row numpy generator."""

    __slots__ = ("state",)

    def __init__(self, seed: int, salt: int, row: int) -> None:
        self.state = _mix64((seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03 + row) & _MASK64)

    def u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        return _mix64(self.state)

    def below(self, n: int) -> int:
        return self.u64() % n if n > 1 else 0

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * ((self.u64() >> 11) * 2.0**-53)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def weighted(self, table: Sequence[tuple[str, int]]) -> str:
        r = self.below(sum(w for _, w in table))
        for value, weight in table:
            if r < weight:
                return value
            r -= weight
        return table[-1][0]

    def token(self) -> str:
        return f"{self.u64():016x}"
