"""[filtered] on any dataset, client side: predicates built from attributes, selectivity
buckets from the real distribution, and exact filtered ground truth checked against a
brute-force oracle (a numpy loop over every row applying the predicate)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from pgvbench.datasets.attributes import Attribute
from pgvbench.datasets.base import Dataset
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.table import Table
from pgvbench.studies.filtered import STUDY
from pgvbench.studies.filtered.predicates import (
    EQ,
    OVERLAP,
    RANGE,
    Predicate,
    label_counts,
    matches,
    sql_text,
    tag_counts,
)
from pgvbench.studies.filtered.source import from_vectors
from pgvbench.studies.filtered.spec import FilteredSpec, parse, resolve
from pgvbench.studies.filtered.truth import recall_fill
from pgvbench.studies.filtered.workload import draw_workload

N, NQ, DIM, K = 3000, 60, 8, 10
EDGES = (0.01, 0.05, 0.2)


def _dataset(metric: Metric = Metric.L2, own_labels: bool = True) -> Dataset:
    rng = np.random.default_rng(4)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    # Zipf-like labels: a few common ones, a long tail of rare ones
    weights = 1.0 / np.arange(1, 61) ** 1.1
    weights /= weights.sum()
    labels = rng.choice(60, size=N, p=weights).astype(np.int64)
    query_labels = rng.choice(60, size=NQ, p=weights).astype(np.int64)
    lang = np.array([("en", "de", "fr", "ja")[i % 4] for i in rng.integers(0, 4, N)], dtype=object)
    score = rng.random(N)
    score[::97] = np.nan  # NULLs never match
    seconds = rng.integers(0, 365 * 86400, N).astype("timedelta64[s]")
    published = (np.datetime64("2024-01-01T00:00:00", "us") + seconds).astype("datetime64[us]")
    vocab = [f"t{i}" for i in range(40)]
    tag_p = 1.0 / np.arange(1, 41)
    tag_p /= tag_p.sum()
    tags = np.empty(N, dtype=object)
    for i in range(N):
        tags[i] = tuple(sorted(set(rng.choice(vocab, size=int(rng.integers(0, 4)), p=tag_p))))
    return Dataset(
        name="labelled",
        source="test",
        metric=metric,
        base=base,
        queries=queries,
        attributes=(
            Attribute("label", "int", labels, query_labels if own_labels else None),
            Attribute("lang", "text", lang),
            Attribute("score", "float", score),
            Attribute("published_at", "timestamp", published),
            Attribute("tags", "text[]", tags),
        ),
    )


def _values(ds: Dataset, name: str) -> np.ndarray:
    attr = ds.attribute(name)
    assert attr is not None
    return attr.values


def _oracle(ds: Dataset, attr: str, kind: str, value: object, q: np.ndarray) -> np.ndarray:
    """Brute force: every row, the predicate applied row by row, exact distances."""
    values = _values(ds, attr)
    keep: list[int] = []
    for i in range(ds.n):
        v = values[i]
        if kind == EQ:
            ok = v == value
        elif kind == RANGE:
            low, high = cast(tuple[Any, Any], value)
            ok = bool(v >= low) and bool(v <= high)
        else:
            ok = v is not None and bool(set(v) & set(value))  # type: ignore[call-overload]
        if ok:
            keep.append(i)
    rows = np.array(keep, dtype=np.int64)
    if ds.metric == Metric.COSINE:
        b = ds.base[rows].astype(np.float64)
        d = 1 - (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
    else:
        d = np.linalg.norm(ds.base[rows].astype(np.float64) - q, axis=1)
    order = np.lexsort((rows, d))[:K]
    return rows[order]


PREDICATES = [
    Predicate("label", EQ, "label"),
    Predicate("lang", EQ, "lang"),
    Predicate("range", RANGE, "score"),
    Predicate("published", RANGE, "published_at"),
    Predicate("overlap", OVERLAP, "tags"),
]


@pytest.mark.parametrize("metric", [Metric.L2, Metric.COSINE])
def test_ground_truth_matches_a_brute_force_oracle(metric: Metric) -> None:
    ds = _dataset(metric)
    source = from_vectors(ds, "t_items")
    wl = draw_workload(source, PREDICATES, EDGES, queries_per_bucket=6, hot_labels=2, k=K, seed=3)
    checked = 0
    for bucket in wl.buckets:
        qs = bucket.queries
        pred = qs.predicate
        for i, value in enumerate(qs.values):
            truth_rows = qs.truth.rows[i]
            mask_rows = np.flatnonzero(matches(_values(ds, pred.attribute), pred.kind, value))
            assert np.array_equal(truth_rows, mask_rows)
            expected = _oracle(ds, pred.attribute, pred.kind, value, qs.vectors[i])
            assert qs.truth.ids[i].tolist() == expected.tolist(), (pred, value)
            checked += 1
        # the recall of the exact answer is 1 and it fills k (or all matching rows)
        recall, fill = recall_fill(
            [t.tolist() for t in qs.truth.ids], qs.truth, ds.base, ds.metric, qs.vectors, K
        )
        assert np.all(recall[~np.isnan(recall)] == 1.0) and np.all(fill[~np.isnan(fill)] == 1.0)
    assert checked > 40


def test_buckets_hold_the_share_of_rows_each_filter_keeps() -> None:
    ds = _dataset()
    wl = draw_workload(
        from_vectors(ds, "t_items"), PREDICATES, EDGES, queries_per_bucket=8, hot_labels=2,
        k=K, seed=1,
    )  # fmt: skip
    names = {p.name for p in PREDICATES}
    assert {b.info.predicate for b in wl.buckets} == names
    for bucket in wl.buckets:
        info = bucket.info
        assert info.label.startswith(info.predicate + " ")
        qs = bucket.queries
        shares = qs.truth.matching / N
        if not len(qs):
            continue
        assert info.share_min == pytest.approx(shares.min())
        assert info.share_max == pytest.approx(shares.max())
        assert np.all(shares >= info.low)
        assert info.high is None or np.all(shares < info.high)
    # ranges reach the buckets their share was drawn for
    ranged = [b for b in wl.buckets if b.info.predicate == "range" and b.info.queries]
    assert len(ranged) >= 3


def test_equality_uses_the_querys_own_label_when_the_dataset_has_one() -> None:
    ds = _dataset()
    own = ds.attribute("label").query_values  # type: ignore[union-attr]
    assert own is not None
    wl = draw_workload(
        from_vectors(ds, "t_items"), PREDICATES[:1], EDGES, queries_per_bucket=5,
        hot_labels=3, k=K, seed=2,
    )  # fmt: skip
    for bucket in wl.buckets:
        for value, vector in zip(bucket.queries.values, bucket.queries.vectors, strict=True):
            j = int(np.flatnonzero((ds.queries == vector).all(axis=1))[0])
            assert own[j] == value
    info = wl.predicates[0]
    assert info.own_query_labels and info.form == EQ
    # hot labels: the commonest, with partial indexes
    labels, _ = label_counts(_values(ds, "label"))
    assert wl.hot == labels[:3]
    for bucket in wl.buckets:
        assert set(bucket.hot.values) <= set(wl.hot)


def test_labels_drawn_by_frequency_without_query_labels_and_the_data_bounds() -> None:
    ds = _dataset(own_labels=False)
    wl = draw_workload(
        from_vectors(ds, "t_items"), [PREDICATES[0], PREDICATES[4]], EDGES,
        queries_per_bucket=4, hot_labels=2, k=K, seed=5,
    )  # fmt: skip
    label_info, tag_info = wl.predicates
    labels, counts = label_counts(_values(ds, "label"))
    assert not label_info.own_query_labels
    assert label_info.cardinality == len(labels)
    assert label_info.commonest == str(labels[0])
    assert label_info.commonest_share == pytest.approx(counts[0] / N)
    assert label_info.rarest_share == pytest.approx(counts[-1] / N)
    # every label is either used by a query or reported unused; none is dropped
    used = {v for b in wl.buckets if b.info.predicate == "label"
            for v in [*b.queries.values, *b.hot.values]}  # fmt: skip
    assert label_info.used == len(used)
    assert label_info.used + label_info.unused == label_info.cardinality
    assert label_info.unused_examples and all(
        int(x) not in used for x in label_info.unused_examples
    )
    tags, tag_n = tag_counts(_values(ds, "tags"))
    assert tag_info.cardinality == len(tags) and tag_info.form == OVERLAP
    assert tag_info.commonest_share == pytest.approx(tag_n[0] / N)


def test_parameters_are_postgres_text_forms() -> None:
    assert sql_text("text[]", ("a", 'b"c')) == '{"a","b\\"c"}'
    assert sql_text("int[]", (1, 2)) == "{1,2}"
    assert sql_text("bool", True) == "true"
    ts = np.datetime64("2024-03-01T12:00:00", "us")
    assert sql_text("timestamp", ts) == "2024-03-01T12:00:00+00:00"
    ds = _dataset()
    wl = draw_workload(
        from_vectors(ds, "t"), [PREDICATES[3]], EDGES, queries_per_bucket=2, hot_labels=0,
        k=K, seed=0,
    )  # fmt: skip
    for bucket in wl.buckets:
        for (low, high), params in zip(bucket.queries.values, bucket.queries.params, strict=True):
            assert params == [
                sql_text("timestamp", low).encode(),
                sql_text("timestamp", high).encode(),
            ]


def test_a_row_outside_the_filter_is_a_miss() -> None:
    ds = _dataset()
    wl = draw_workload(
        from_vectors(ds, "t"), PREDICATES[:1], EDGES, queries_per_bucket=3, hot_labels=0,
        k=K, seed=0,
    )  # fmt: skip
    qs = next(b.queries for b in wl.buckets if len(b.queries) and b.queries.truth.matching[0] > K)
    outside = int(np.setdiff1d(np.arange(N), qs.truth.rows[0])[0])
    got = [*qs.truth.ids[0][: K - 1].tolist(), outside]
    recall, fill = recall_fill([got], qs.truth, ds.base, ds.metric, qs.vectors[:1], K)
    assert recall[0] == pytest.approx((K - 1) / K) and fill[0] == 1.0


# --------------------------------------------------------------------------- the spec


def _parse(data: dict[str, Any], kind: str = "vector") -> FilteredSpec:
    return parse(Table("spec.toml", "filtered", data), kind)


def test_spec_keys_ef_list_and_agent_data_refuses_vector_keys() -> None:
    spec = _parse({"ef_search": [80, 20, 40], "predicates": ["label", "overlap"]})
    assert spec.ef_values == (20, 40, 80) and spec.predicates == ("label", "overlap")
    assert _parse({"ef_search": 64}).ef_values == (64,)
    assert _parse({}).ef_search == 40 and _parse({}).predicates is None
    with pytest.raises(SpecError, match=r"\[filtered\] attribute applies to vector data only"):
        _parse({"attribute": "label"}, kind="agents")
    with pytest.raises(SpecError, match="predicates contains 'tags'"):
        _parse({"predicates": ["tags"]})
    # agent specs record what they always did: the new keys only when set
    recorded = STUDY.spec_to_dict(_parse({}, kind="agents"))
    assert "predicates" not in recorded and recorded["ef_search"] == 40
    assert "explain_queries" not in recorded
    assert _parse({"explain_queries": 5}, kind="agents").explain_queries == 5


def test_resolve_defaults_from_the_attributes_and_says_what_the_dataset_has() -> None:
    ds = _dataset()
    spec = _parse({})
    chosen = resolve(spec, ds.attributes, "spec.toml")
    # label: the one with query labels; range: float before int; overlap: the array
    assert chosen == [
        Predicate("label", EQ, "label"),
        Predicate("range", RANGE, "score"),
        Predicate("overlap", OVERLAP, "tags"),
    ]
    named = resolve(_parse({"attribute": "lang", "range_attribute": "published_at"}),
                    ds.attributes, "spec.toml")  # fmt: skip
    assert named[:2] == [Predicate("label", EQ, "lang"), Predicate("range", RANGE, "published_at")]
    with pytest.raises(SpecError, match=r"attribute = 'nope': the dataset has no such"):
        resolve(_parse({"attribute": "nope"}), ds.attributes, "spec.toml")
    with pytest.raises(SpecError, match=r"range_attribute = 'tags' is of kind text\[\]"):
        resolve(_parse({"range_attribute": "tags"}), ds.attributes, "spec.toml")
    with pytest.raises(SpecError, match=r"needs an attribute to filter on.*has no attribute"):
        resolve(spec, (), "spec.toml")
