"""Selectivity buckets and the exact filtered top-k of each query (no database).

Ground truth is the exact top-k over only the rows the query's filter keeps, computed
client-side from the rows' vectors (workload.py draws the queries); recall is tie-aware,
fill is rows returned / min(k, rows matching). ``filtered_ground_truth`` and
``filtered_recall`` keep their agent-data signatures; the ``exact_*`` / ``recall_fill``
forms take any rows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import cast

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.groundtruth import GroundTruth, exact_knn
from ...datasets.recall import tie_aware_recall
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule

# --------------------------------------------------------------------------- buckets


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """Readable names of the buckets that ``edges`` (shares, ascending) make."""
    pct = [f"{100 * e:g}%" for e in edges]
    if not pct:
        return ["all"]
    middle = [f"{pct[i][:-1]}-{pct[i + 1]}" for i in range(len(pct) - 1)]
    return [f"< {pct[0]}", *middle, f"> {pct[-1]}"]


def agent_buckets(counts: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index of each agent by its share of all memories; -1 for agents with none."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    share = counts / max(1, total)
    # side="right": a share equal to an edge belongs to the bucket above it.
    bucket = np.searchsorted(np.asarray(edges, dtype=np.float64), share, side="right")
    return np.where(counts > 0, bucket, -1).astype(np.int64)


def check_edges(edges: Sequence[float]) -> list[float]:
    values = [float(e) for e in edges]
    if any(not 0.0 < e < 1.0 for e in values) or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"bucket_edges must be increasing shares in (0, 1), got {list(edges)}")
    return values


# --------------------------------------------------------------------------- ground truth


@dataclasses.dataclass(frozen=True, eq=False)
class FilteredTruth:
    """Exact filtered top-k of each query: row indexes (global), nearest first.

    ``rows[i]`` are all rows matching query i's filter (ascending): a returned id outside
    them broke the filter. ``ids[i]`` has min(k, len(rows[i])) entries.
    """

    rows: list[np.ndarray]
    ids: list[np.ndarray]
    distances: list[np.ndarray]

    @property
    def matching(self) -> np.ndarray:
        return np.array([r.size for r in self.rows], dtype=np.int64)


def exact_truth(
    base: np.ndarray,
    metric: Metric,
    filters: Sequence[Hashable],
    rows_of: Callable[[Hashable], np.ndarray],
    vectors: np.ndarray,
    k: int,
) -> FilteredTruth:
    """Exact top-k of each query vector over only the rows its filter keeps.

    ``filters[i]`` names query i's filter; ``rows_of(filter)`` its rows, ascending.
    Queries of the same filter share one exact search over its rows (faiss brute force,
    distances recomputed in float64, ties by id): the cost is that of scanning each
    distinct filter's rows once.
    """
    nq = len(filters)
    rows_out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    ids_out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    dist_out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * nq
    groups: dict[Hashable, list[int]] = {}
    for i, f in enumerate(filters):
        groups.setdefault(f, []).append(i)
    for f, members in groups.items():
        rows = np.asarray(rows_of(f), dtype=np.int64)
        for i in members:
            rows_out[i] = rows
        if rows.size == 0:
            continue
        kk = min(k, int(rows.size))
        local, dist = exact_knn(base[rows], vectors[members], kk, metric)
        for j, i in enumerate(members):
            ids_out[i] = rows[local[j]]
            dist_out[i] = dist[j]
    return FilteredTruth(rows=rows_out, ids=ids_out, distances=dist_out)


def recall_fill(
    returned: Sequence[Sequence[int]],
    truth: FilteredTruth,
    base: np.ndarray,
    metric: Metric,
    vectors: np.ndarray,
    k: int,
    rule: RecallRule = DEFAULT_RULE,
) -> tuple[np.ndarray, np.ndarray]:
    """(recall, fill) per query; queries with no matching row get NaN for both.

    ``returned`` holds row indexes, -1 for an id that is not a row of the data. Recall
    is tie-aware over the matching rows at min(k, rows matching); a returned row outside
    the filter counts as a miss.
    """
    nq = len(returned)
    recall = np.full(nq, np.nan)
    fill = np.full(nq, np.nan)
    for i in range(nq):
        rows = truth.rows[i]
        if rows.size == 0:
            continue
        kk = min(k, int(rows.size))
        got = np.asarray(returned[i], dtype=np.int64).reshape(-1)
        fill[i] = min(got.size, kk) / kk
        # Global row -> position among the matching rows (-1 when outside the filter).
        pos = np.searchsorted(rows, got)
        pos = np.minimum(pos, rows.size - 1)
        local = np.where(rows[pos] == got, pos, -1)
        truth_local = np.searchsorted(rows, truth.ids[i][:kk])
        gt = GroundTruth(
            ids=truth_local[None, :],
            distances=truth.distances[i][None, :kk],
            method="filtered exact",
            seconds=0.0,
            cached=False,
        )
        recall[i] = tie_aware_recall(
            local[None, :], gt, vectors[i : i + 1], base[rows], kk, metric, rule=rule
        )[0]
    return recall, fill


# --------------------------------------------------------------------------- agent data


def matching_rows(dataset: AgentDataset, agent: int, tenant: int | None = None) -> np.ndarray:
    """Memory rows of ``agent`` (and of ``tenant`` when given), ascending."""
    rows = np.sort(np.asarray(dataset.memory_ids_of_agent(agent), dtype=np.int64))
    if tenant is not None:
        rows = rows[dataset.memory_tenant[rows] == tenant]
    return rows


def filtered_ground_truth(
    dataset: AgentDataset,
    agents: np.ndarray,
    vectors: np.ndarray,
    k: int,
    *,
    tenants: np.ndarray | None = None,
) -> FilteredTruth:
    """Exact top-k of each query vector over its agent's memories (and tenant's)."""
    filters = [
        (int(agents[i]), -1 if tenants is None else int(tenants[i])) for i in range(len(agents))
    ]

    def rows_of(f: Hashable) -> np.ndarray:
        agent, tenant = cast(tuple[int, int], f)
        return matching_rows(dataset, agent, None if tenant < 0 else tenant)

    return exact_truth(dataset.memory_embedding, dataset.spec.metric, filters, rows_of, vectors, k)


def filtered_recall(
    returned: Sequence[Sequence[int]],
    truth: FilteredTruth,
    dataset: AgentDataset,
    vectors: np.ndarray,
    k: int,
    rule: RecallRule = DEFAULT_RULE,
) -> tuple[np.ndarray, np.ndarray]:
    """(recall, fill) per query over agent memories (see :func:`recall_fill`)."""
    return recall_fill(
        returned, truth, dataset.memory_embedding, dataset.spec.metric, vectors, k, rule
    )
