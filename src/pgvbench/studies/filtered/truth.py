"""Selectivity buckets, the query vectors drawn for them, and their exact filtered top-k.

Agents are grouped by their share of all memories; each bucket gets query vectors spread
over its agents (and over its hot agents, for ``partial_hot``). Ground truth is the exact
top-k over only the rows the query's filter keeps, computed client-side from the dataset
arrays; recall is tie-aware, fill is rows returned / min(k, rows matching).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.groundtruth import GroundTruth, exact_knn
from ...datasets.recall import tie_aware_recall
from ...recall_rule import DEFAULT_RULE, RecallRule
from . import notes
from .records import BucketInfo

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
    """Exact filtered top-k of each query: memory row indexes (global), nearest first.

    ``rows[i]`` are all rows matching query i's filter (ascending): a returned id outside
    them broke the filter. ``ids[i]`` has min(k, len(rows[i])) entries.
    """

    rows: list[np.ndarray]
    ids: list[np.ndarray]
    distances: list[np.ndarray]

    @property
    def matching(self) -> np.ndarray:
        return np.array([r.size for r in self.rows], dtype=np.int64)


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
    """Exact top-k of each query vector over only the rows its filter keeps.

    Queries of the same filter share one exact search over that filter's rows (faiss
    brute force, distances recomputed in float64, ties by id): the cost is that of
    scanning each distinct agent's rows once.
    """
    metric = dataset.spec.metric
    nq = len(agents)
    rows_of: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    ids_of: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nq
    dist_of: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * nq
    groups: dict[tuple[int, int], list[int]] = {}
    for i in range(nq):
        key = (int(agents[i]), -1 if tenants is None else int(tenants[i]))
        groups.setdefault(key, []).append(i)
    for (agent, tenant), members in groups.items():
        rows = matching_rows(dataset, agent, None if tenant < 0 else tenant)
        for i in members:
            rows_of[i] = rows
        if rows.size == 0:
            continue
        kk = min(k, int(rows.size))
        base = dataset.memory_embedding[rows]
        local, dist = exact_knn(base, vectors[members], kk, metric)
        for j, i in enumerate(members):
            ids_of[i] = rows[local[j]]
            dist_of[i] = dist[j]
    return FilteredTruth(rows=rows_of, ids=ids_of, distances=dist_of)


def filtered_recall(
    returned: Sequence[Sequence[int]],
    truth: FilteredTruth,
    dataset: AgentDataset,
    vectors: np.ndarray,
    k: int,
    rule: RecallRule = DEFAULT_RULE,
) -> tuple[np.ndarray, np.ndarray]:
    """(recall, fill) per query; queries with no matching row get NaN for both.

    ``returned`` holds memory row indexes, -1 for an id that is not a memory of the
    dataset. Recall is tie-aware over the matching rows at min(k, rows matching); a
    returned row outside the filter counts as a miss.
    """
    metric = dataset.spec.metric
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
            local[None, :], gt, vectors[i : i + 1], dataset.memory_embedding[rows], kk, metric,
            rule=rule,
        )[0]  # fmt: skip
    return recall, fill


# --------------------------------------------------------------------------- queries


@dataclasses.dataclass(frozen=True, eq=False)
class Queries:
    """Query vectors of one bucket: the agent, its tenant, the vector, the ground truth."""

    agents: np.ndarray
    tenants: np.ndarray
    vectors: np.ndarray
    truth: FilteredTruth  # filter: the agent (and tenant if tenant_filter)
    tenant_truth: FilteredTruth  # filter: the agent and its tenant

    def __len__(self) -> int:
        return int(self.agents.size)

    def truth_for(self, uses_tenant: bool) -> FilteredTruth:
        return self.tenant_truth if uses_tenant else self.truth


@dataclasses.dataclass(frozen=True, eq=False)
class Bucket:
    info: BucketInfo
    queries: Queries  # spread over all agents of the bucket
    hot: Queries  # spread over its hot agents (partial_hot)


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    """Every bucket with its queries and ground truth, and the notes made drawing them."""

    buckets: list[Bucket]
    hot: np.ndarray  # agent indexes with partial indexes, most memories first
    notes: list[str]


def draw_workload(
    dataset: AgentDataset,
    edges: Sequence[float],
    *,
    queries_per_bucket: int,
    hot_agents: int,
    k: int,
    tenant_filter: bool,
    seed: int,
) -> Workload:
    """Buckets by share of memories, ``queries_per_bucket`` queries each (and as many over
    its hot agents), with exact filtered ground truth for both filter forms."""
    counts = np.asarray(dataset.memory_count_of_agent, dtype=np.int64)
    bucket_of = agent_buckets(counts, edges)
    hot = np.argsort(-counts, kind="stable")[: max(0, hot_agents)]
    hot = hot[counts[hot] > 0]
    out: list[str] = []
    if (counts == 0).any():
        out.append(notes.agents_without_memories(int((counts == 0).sum())))
    # When every memory has its agent's tenant, adding the tenant filter keeps the same
    # rows, and one ground truth serves both filter forms.
    consistent = bool(
        np.array_equal(
            np.asarray(dataset.tenant_of_agent)[dataset.memory_agent], dataset.memory_tenant
        )
    )
    drawn: list[tuple[BucketInfo, _Drawn, _Drawn]] = []
    for b, label in enumerate(bucket_labels(edges)):
        pool = np.flatnonzero(bucket_of == b)
        queries = _draw(dataset, pool, queries_per_bucket, np.random.default_rng([seed, b]))
        hot_pool = np.intersect1d(pool, hot)
        hot_queries = _draw(
            dataset, hot_pool, queries_per_bucket, np.random.default_rng([seed, 1000 + b])
        )
        info = BucketInfo(
            label=label,
            low=0.0 if b == 0 else edges[b - 1],
            high=edges[b] if b < len(edges) else None,
            agents=int(pool.size),
            memories=int(counts[pool].sum()),
            queries=queries.size,
            hot_queries=hot_queries.size,
        )
        drawn.append((info, queries, hot_queries))
        if pool.size == 0:
            out.append(notes.empty_bucket(label))
    if not consistent:
        out.append(notes.TENANT_MISMATCH)
    started = time.perf_counter()
    buckets = [
        Bucket(
            info=info,
            queries=_with_truth(dataset, qs, k, tenant_filter or consistent),
            hot=_with_truth(dataset, hot_qs, k, tenant_filter or consistent),
        )
        for info, qs, hot_qs in drawn
    ]
    out.append(notes.ground_truth(time.perf_counter() - started))
    return Workload(buckets=buckets, hot=hot, notes=out)


@dataclasses.dataclass(frozen=True, eq=False)
class _Drawn:
    agents: np.ndarray
    tenants: np.ndarray
    vectors: np.ndarray

    @property
    def size(self) -> int:
        return int(self.agents.size)


def _draw(dataset: AgentDataset, pool: np.ndarray, n: int, rng: np.random.Generator) -> _Drawn:
    """``n`` queries spread evenly over the agents of ``pool`` (each agent in turn)."""
    dim = dataset.memory_embedding.shape[1]
    if pool.size == 0 or n <= 0:
        return _Drawn(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, dim), np.float32))
    order = rng.permutation(pool)
    agents = order[np.arange(n) % order.size].astype(np.int64)
    vectors = np.stack([dataset.query_vector_for_agent(int(a), rng) for a in agents])
    tenants = np.asarray(dataset.tenant_of_agent, dtype=np.int64)[agents]
    return _Drawn(agents, tenants, vectors.astype(np.float32))


def _with_truth(dataset: AgentDataset, qs: _Drawn, k: int, same_rows: bool) -> Queries:
    """``qs`` with the ground truth of both filter forms; ``same_rows``: the agent filter
    alone keeps the rows of agent and tenant (or the comparison filters by tenant)."""
    both = filtered_ground_truth(dataset, qs.agents, qs.vectors, k, tenants=qs.tenants)
    agent_only = both if same_rows else filtered_ground_truth(dataset, qs.agents, qs.vectors, k)
    return Queries(qs.agents, qs.tenants, qs.vectors, truth=agent_only, tenant_truth=both)
