"""The client's copy of the live rows and exact top-k over them.

The writer is ours, so the mirror knows exactly which rows are live at every checkpoint;
ground truth is computed over those rows, not over the rows present at the start.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence

import numpy as np

from ...datasets.groundtruth import GroundTruth, exact_knn
from ...datasets.recall import tie_aware_recall
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule


class LiveMirror:
    """Client-side copy of the live rows (uuid -> vector) of the table the writer changes.

    Rows get a slot in insertion order and keep it; deleting only clears the live flag,
    so a slot number names a row for the whole run (slot >= ``initial``: inserted).
    """

    def __init__(self, ids: Sequence[uuid.UUID], vectors: np.ndarray) -> None:
        n, dim = vectors.shape
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} vectors")
        capacity = max(1024, 2 * n)
        self._ids: list[uuid.UUID] = list(ids)
        self._slot: dict[uuid.UUID, int] = {u: i for i, u in enumerate(self._ids)}
        if len(self._slot) != n:
            raise ValueError("duplicate ids in the initial rows")
        self._vectors = np.empty((capacity, dim), dtype=np.float32)
        self._vectors[:n] = vectors
        self._live = np.zeros(capacity, dtype=bool)
        self._live[:n] = True
        self.size = n  # slots used
        self.count = n  # live rows
        self.initial = n

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def add(self, ids: Sequence[uuid.UUID], vectors: np.ndarray) -> None:
        need = self.size + len(ids)
        if need > self._vectors.shape[0]:
            capacity = max(need, 2 * self._vectors.shape[0])
            self._vectors = np.resize(self._vectors, (capacity, self.dim))
            self._live = np.concatenate((self._live, np.zeros(capacity - self._live.size, bool)))
        for i, row_id in enumerate(ids):
            if row_id in self._slot:
                raise ValueError(f"id {row_id} is already in the mirror")
            self._slot[row_id] = self.size + i
        self._ids.extend(ids)
        self._vectors[self.size : need] = vectors
        self._live[self.size : need] = True
        self.size = need
        self.count += len(ids)

    def remove(self, ids: Sequence[uuid.UUID]) -> int:
        """Mark ``ids`` deleted; returns how many were not live (a mirror error)."""
        unknown = 0
        for row_id in ids:
            slot = self._slot.get(row_id)
            if slot is None or not self._live[slot]:
                unknown += 1
                continue
            self._live[slot] = False
            self.count -= 1
        return unknown

    def slot_of(self, row_id: uuid.UUID) -> int:
        """The row's slot, or -1 for an id the mirror never saw."""
        return self._slot.get(row_id, -1)

    def id_of(self, slot: int) -> uuid.UUID:
        return self._ids[slot]

    def is_live(self, slot: int) -> bool:
        return 0 <= slot < self.size and bool(self._live[slot])

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self._live[: self.size])

    def vectors(self, slots: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._vectors[slots])

    def sample_live(self, n: int, rng: np.random.Generator) -> list[uuid.UUID]:
        live = self.live_slots()
        if live.size == 0 or n <= 0:
            return []
        picks = rng.choice(live, size=min(n, live.size), replace=False)
        return [self._ids[int(s)] for s in picks]


@dataclasses.dataclass(frozen=True)
class Truth:
    """Exact top-k over a set of live rows, as positions into ``base``."""

    slots: np.ndarray  # base position -> mirror slot
    base: np.ndarray
    gt: GroundTruth
    position: np.ndarray  # mirror slot -> base position (-1: not in this set)

    @classmethod
    def over(cls, mirror: LiveMirror, queries: np.ndarray, k: int, metric: Metric) -> Truth:
        started = time.perf_counter()
        slots = mirror.live_slots()
        base = mirror.vectors(slots)
        ids, distances = exact_knn(base, queries, k, metric)
        gt = GroundTruth(
            ids, distances, "exact k-NN over the live rows", time.perf_counter() - started, False
        )
        position = np.full(mirror.size, -1, dtype=np.int64)
        position[slots] = np.arange(slots.size)
        return cls(slots, base, gt, position)

    def positions(self, returned_slots: list[list[int]], k: int) -> np.ndarray:
        out = np.full((len(returned_slots), k), -1, dtype=np.int64)
        for qi, row in enumerate(returned_slots):
            for j, slot in enumerate(row[:k]):
                if 0 <= slot < self.position.size:
                    out[qi, j] = self.position[slot]
        return out

    def recall(
        self,
        returned_slots: list[list[int]],
        queries: np.ndarray,
        k: int,
        metric: Metric,
        rule: RecallRule = DEFAULT_RULE,
    ) -> np.ndarray:
        found = self.positions(returned_slots, k)
        return tie_aware_recall(found, self.gt, queries, self.base, k, metric, rule=rule)
