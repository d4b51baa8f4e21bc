"""Each predicate's buckets, their queries and exact filtered top-k (client side).

For every predicate (predicates.py) the filters are grouped by the share of all rows they
keep; each bucket gets ``queries_per_bucket`` queries (and as many over its hot labels,
for ``partial_hot``), each with its filter value, vector, text parameters and ground
truth. What the data says about the predicate's column (cardinality, commonest and
rarest shares, labels no query used) is kept as a :class:`PredicateInfo`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Sequence
from typing import Any, cast

import numpy as np

from . import notes
from .predicates import (
    EQ,
    OVERLAP,
    RANGE,
    Drawn,
    Predicate,
    bucket_of,
    draw_labels,
    draw_own_labels,
    draw_ranges,
    label_counts,
    label_of,
    matches,
    not_null,
    share_of_rows,
    tag_counts,
    tag_rows,
)
from .records import BucketInfo, PredicateInfo
from .source import FilterSource
from .truth import FilteredTruth, bucket_labels, exact_truth, matching_rows

UNUSED_NAMED = 10  # labels no query used: named up to this many, the rest counted


@dataclasses.dataclass(frozen=True, eq=False)
class Queries:
    """One bucket's queries: filter value, partition key, vector, parameters, truth."""

    predicate: Predicate
    values: list[Any]
    keys: list[Any]  # the partition key each query also filters by (None: no key)
    vectors: np.ndarray
    params: list[list[bytes]]  # text parameters: the predicate's, then the key's
    truth: FilteredTruth  # the predicate (and key when the key filter is on)
    key_truth: FilteredTruth  # the predicate and the key

    def __len__(self) -> int:
        return len(self.values)

    def truth_for(self, uses_key: bool) -> FilteredTruth:
        return self.key_truth if uses_key else self.truth

    @property
    def distinct(self) -> int:
        return len({repr(v) for v in self.values})


@dataclasses.dataclass(frozen=True, eq=False)
class Bucket:
    info: BucketInfo
    queries: Queries  # spread over the bucket's filters
    hot: Queries  # over its hot labels only (partial_hot; empty for other predicates)


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    """Every predicate's buckets, with queries and ground truth, and what was noted."""

    buckets: list[Bucket]
    hot: list[Any]  # labels with partial indexes, commonest first (the eq predicate's)
    labels: list[Any]  # the eq predicate's labels, commonest first
    predicates: list[PredicateInfo]
    notes: list[str]


def draw_workload(
    source: FilterSource,
    predicates: Sequence[Predicate],
    edges: Sequence[float],
    *,
    queries_per_bucket: int,
    hot_labels: int,
    k: int,
    tenant_filter: bool = False,
    seed: int = 0,
) -> Workload:
    """Buckets per predicate with ``queries_per_bucket`` queries each, and exact filtered
    ground truth for the predicate alone and with the partition key."""
    out_notes: list[str] = []
    drawer = _Drawer(source, edges, queries_per_bucket, seed)
    if source.agents is not None:
        empty = int((np.asarray(source.agents.memory_count_of_agent) == 0).sum())
        if empty:
            out_notes.append(notes.agents_without_memories(empty))
    consistent = _key_consistent(source)
    if source.key is not None and not consistent:
        out_notes.append(notes.TENANT_MISMATCH)
    started = time.perf_counter()
    buckets: list[Bucket] = []
    infos: list[PredicateInfo] = []
    hot: list[Any] = []
    labels: list[Any] = []
    for p_i, pred in enumerate(predicates):
        drawn = drawer.draw(p_i, pred, hot_labels)
        rows_cache: dict[Hashable, np.ndarray] = {}  # filter -> rows, shared by its buckets
        if pred.kind == OVERLAP:  # one pass over the arrays instead of one per tag
            for tag, rows in tag_rows(source.attribute(pred.attribute).values).items():
                rows_cache[repr((tag,)), None] = rows
        if pred.kind == EQ and not labels:
            labels, hot = drawn.labels, drawn.hot
        infos.append(drawn.info)
        for info, qs, hot_qs in drawn.buckets:
            if info.queries == 0:
                out_notes.append(notes.empty_bucket(info.label, _noun(source, pred)))
            same = tenant_filter or consistent
            buckets.append(
                Bucket(
                    info=info,
                    queries=_with_truth(source, pred, qs, k, same, rows_cache),
                    hot=_with_truth(source, pred, hot_qs, k, same, rows_cache),
                )
            )
    out_notes.append(notes.ground_truth(time.perf_counter() - started))
    return Workload(buckets=buckets, hot=hot, labels=labels, predicates=infos, notes=out_notes)


def _noun(source: FilterSource, pred: Predicate) -> str:
    if source.agents is not None:
        return "agent"
    return {EQ: "label", OVERLAP: "tag"}.get(pred.kind, "filter")


def _key_consistent(source: FilterSource) -> bool:
    """Every row has its label's key (agents: each memory its agent's tenant): then the
    key filter keeps the same rows and one ground truth serves both forms."""
    if source.agents is None or source.key is None:
        return True
    ds = source.agents
    return bool(np.array_equal(np.asarray(ds.tenant_of_agent)[ds.memory_agent], ds.memory_tenant))


@dataclasses.dataclass(frozen=True, eq=False)
class _Predicate:
    buckets: list[tuple[BucketInfo, Drawn, Drawn]]
    info: PredicateInfo
    labels: list[Any]
    hot: list[Any]


class _Drawer:
    """Draws each predicate's buckets (seeded per predicate and bucket)."""

    def __init__(self, source: FilterSource, edges: Sequence[float], n: int, seed: int) -> None:
        self.source, self.edges, self.n, self.seed = source, list(edges), n, seed
        self.names = bucket_labels(edges)

    def rng(self, p_i: int, b: int) -> np.random.Generator:
        # the first predicate keeps the agent data's seeds of before ([seed, b])
        return np.random.default_rng([self.seed, b] if p_i == 0 else [self.seed, p_i, b])

    def label(self, pred: Predicate, b: int) -> str:
        name = self.names[b]
        return name if self.source.agents is not None else f"{pred.name} {name}"

    def draw(self, p_i: int, pred: Predicate, hot_labels: int) -> _Predicate:
        if pred.kind == RANGE:
            return self._ranges(p_i, pred)
        return self._labels(p_i, pred, hot_labels)

    def _labels(self, p_i: int, pred: Predicate, hot_labels: int) -> _Predicate:
        src = self.source
        attr = src.attribute(pred.attribute)
        if pred.kind == EQ:
            labels, counts = label_counts(attr.values)
        else:
            labels, counts = tag_counts(attr.values)
        share = counts / max(1, src.n)
        of_label = bucket_of(share, self.edges)
        hot_idx = np.arange(min(hot_labels, len(labels))) if pred.kind == EQ else np.arange(0)
        own = (
            pred.kind == EQ
            and attr.query_values is not None
            and src.queries.shape[0] == attr.query_values.shape[0]
        )
        share_of = {lab: float(s) for lab, s in zip(labels, share, strict=True)}
        out: list[tuple[BucketInfo, Drawn, Drawn]] = []
        used: set[str] = set()
        for b in range(len(self.names)):
            pool = np.flatnonzero(of_label == b)
            hot_pool = np.intersect1d(pool, hot_idx)
            if own:
                assert attr.query_values is not None
                qs = self._own(attr.query_values, share_of, b, self.rng(p_i, b), None)
                hot_set = {labels[i] for i in hot_pool}
                hqs = self._own(attr.query_values, share_of, b, self.rng(p_i, 1000 + b), hot_set)
            else:
                qs = self._pick(pred, labels, counts, share_of, pool, self.rng(p_i, b))
                hqs = self._pick(pred, labels, counts, share_of, hot_pool, self.rng(p_i, 1000 + b))
            used.update(repr(v) for v in [*qs.values, *hqs.values])
            info = _info(self.label(pred, b), b, self.edges, pred, qs, hqs)
            info = dataclasses.replace(
                info, agents=int(pool.size), memories=int(counts[pool].sum())
            )
            out.append((info, qs, hqs))
        unused = [lab for lab in labels if repr(lab if pred.kind == EQ else (lab,)) not in used]
        return _Predicate(
            buckets=out,
            info=PredicateInfo(
                name=pred.name,
                form=pred.kind,
                attribute=pred.attribute,
                attribute_kind=attr.kind,
                rows=src.n,
                rows_with_value=_with_value(attr.values),
                cardinality=len(labels),
                commonest=label_of(labels[0]) if labels else "",
                commonest_share=float(share[0]) if labels else None,
                rarest=label_of(labels[-1]) if labels else "",
                rarest_share=float(share[-1]) if labels else None,
                own_query_labels=own,
                used=len(labels) - len(unused),
                unused=len(unused),
                unused_examples=[label_of(v) for v in unused[:UNUSED_NAMED]],
            ),
            labels=labels,
            hot=[labels[i] for i in hot_idx],
        )

    def _own(
        self,
        query_values: np.ndarray,
        share_of: dict[Any, float],
        b: int,
        rng: np.random.Generator,
        only: set[Any] | None,
    ) -> Drawn:
        """Queries whose own label lies in bucket ``b`` (and in ``only`` when given)."""
        shares = {k: v for k, v in share_of.items() if k in only} if only is not None else share_of
        idx = draw_own_labels(query_values, shares, self.edges, b, self.n, rng)
        values = [query_values[i].item() if hasattr(query_values[i], "item") else query_values[i]
                  for i in idx]  # fmt: skip
        return Drawn(
            values,
            self.source.queries[idx].astype(np.float32),
            np.array([shares[v] for v in values], dtype=np.float64),
        )

    def _pick(
        self,
        pred: Predicate,
        labels: list[Any],
        counts: np.ndarray,
        share_of: dict[Any, float],
        pool: np.ndarray,
        rng: np.random.Generator,
    ) -> Drawn:
        """Labels (tags) of ``pool``: each in turn for agent data, else by frequency."""
        by_frequency = self.source.agents is None
        picked = draw_labels(labels, counts, pool, self.n, rng, by_frequency=by_frequency)
        vectors = [self.source.vector_for(v, rng) for v in picked]
        values: list[Any] = picked if pred.kind == EQ else [(v,) for v in picked]
        return Drawn(
            values,
            _stack(vectors, self.source.dim),
            np.array([share_of[v] for v in picked], dtype=np.float64),
        )

    def _ranges(self, p_i: int, pred: Predicate) -> _Predicate:
        """Ranges drawn per bucket, regrouped by the share they really keep."""
        src = self.source
        attr = src.attribute(pred.attribute)
        rng = self.rng(p_i, 0)
        candidates = [r for bucket in draw_ranges(attr.values, self.edges, self.n, rng)
                      for r in bucket]  # fmt: skip
        shares, _ = share_of_rows(attr.values, RANGE, candidates, src.n)
        vectors = _stack([src.vector_for(None, rng) for _ in candidates], src.dim)
        everything = Drawn(candidates, vectors, shares)
        of = bucket_of(shares, self.edges)
        out: list[tuple[BucketInfo, Drawn, Drawn]] = []
        empty = Drawn([], np.empty((0, src.dim), np.float32), np.empty(0))
        for b in range(len(self.names)):
            idx = np.flatnonzero((of == b) & (shares > 0))[: self.n]
            qs = everything.take(idx)
            info = _info(self.label(pred, b), b, self.edges, pred, qs, empty)
            kept = round(float(qs.shares.max()) * src.n) if len(qs) else 0
            out.append(
                (dataclasses.replace(info, agents=qs_distinct(qs), memories=kept), qs, empty)
            )
        present = attr.values[not_null(attr.values)]
        used = {repr(v) for _, qs, _ in out for v in qs.values}
        return _Predicate(
            buckets=out,
            info=PredicateInfo(
                name=pred.name,
                form=pred.kind,
                attribute=pred.attribute,
                attribute_kind=attr.kind,
                rows=src.n,
                rows_with_value=int(present.size),
                cardinality=int(np.unique(present).size),
                used=len(used),
            ),
            labels=[],
            hot=[],
        )


def qs_distinct(qs: Drawn) -> int:
    return len({repr(v) for v in qs.values})


def _info(
    label: str, b: int, edges: Sequence[float], pred: Predicate, qs: Drawn, hqs: Drawn
) -> BucketInfo:
    shares = qs.shares
    return BucketInfo(
        label=label,
        low=0.0 if b == 0 else edges[b - 1],
        high=edges[b] if b < len(edges) else None,
        agents=0,
        memories=0,
        queries=len(qs),
        hot_queries=len(hqs),
        predicate=pred.name,
        attribute=pred.attribute,
        share_min=float(shares.min()) if shares.size else None,
        share_median=float(np.median(shares)) if shares.size else None,
        share_max=float(shares.max()) if shares.size else None,
    )


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    if not vectors:
        return np.empty((0, dim), dtype=np.float32)
    return np.stack(vectors).astype(np.float32)


def _with_value(values: np.ndarray) -> int:
    return int(not_null(values).sum())


def _with_truth(
    source: FilterSource,
    pred: Predicate,
    qs: Drawn,
    k: int,
    same_rows: bool,
    cache: dict[Hashable, np.ndarray],
) -> Queries:
    """``qs`` with its parameters and the ground truth of both filter forms; ``cache``
    keeps each filter's rows (ascending) for the predicate's other buckets."""
    attr = source.attribute(pred.attribute)
    keys = [source.key_of(v) if pred.kind == EQ else None for v in qs.values]

    def rows_of(f: Hashable) -> np.ndarray:
        value_repr, key = cast(tuple[str, Any], f)
        if f not in cache:
            value = by_repr[value_repr]
            if source.agents is not None:
                rows = matching_rows(source.agents, int(value), key)
            else:
                rows = np.flatnonzero(matches(attr.values, pred.kind, value))
            cache[f] = rows
        return cache[f]

    by_repr = {repr(v): v for v in qs.values}
    with_key = [(repr(v), key) for v, key in zip(qs.values, keys, strict=True)]
    alone = [(repr(v), None) for v in qs.values]
    key_truth = exact_truth(source.rows, source.metric, with_key, rows_of, qs.vectors, k)
    truth = (
        key_truth
        if same_rows or source.key is None
        else exact_truth(source.rows, source.metric, alone, rows_of, qs.vectors, k)
    )
    params: list[list[bytes]] = []
    for v, key in zip(qs.values, keys, strict=True):
        parts = list(v) if pred.kind == RANGE else [v]
        row = [source.encode(pred.attribute, x).encode() for x in parts]
        if source.key is not None and key is not None:
            row.append(source.encode(source.key, key).encode())
        params.append(row)
    return Queries(
        predicate=pred,
        values=list(qs.values),
        keys=keys,
        vectors=qs.vectors,
        params=params,
        truth=truth,
        key_truth=key_truth,
    )
