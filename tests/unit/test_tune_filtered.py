"""[tune] filter, client side: each query's filter value drawn as an application's would
be, the exact filtered ground truth checked against a brute-force oracle (every row, the
predicate applied row by row, float64 distances), filtered recall, the dataset check and
the iterative scan settings."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from pgvbench.datasets.attributes import Attribute
from pgvbench.datasets.base import Dataset
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.studies.tune.filtered import (
    RANGE_SHARE,
    FilterTarget,
    filter_problem,
    filter_target,
    filtered_recall_per_query,
    iterative_scan_modes,
    iterative_scan_settings,
    split_filter,
)

N, NQ, DIM, K, NR = 2000, 80, 8, 10, 30  # NR recall queries, the rest the load stream
LABELS = 50


def _dataset(metric: Metric = Metric.L2, own: bool = True) -> Dataset:
    rng = np.random.default_rng(11)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    weights = 1.0 / np.arange(1, LABELS + 1) ** 1.2  # Zipf: a few common labels, a long tail
    weights /= weights.sum()
    labels = rng.choice(LABELS, size=N, p=weights).astype(np.int64)
    labels[N // 2 :][labels[N // 2 :] == 7] = 8  # label 7 only in the first half ...
    labels[: N // 2][labels[: N // 2] == 9] = 8  # ... label 9 only in the second
    labels[[5, 400, 900]] = LABELS  # a label of 3 rows: fewer than k match
    query_labels = rng.choice(LABELS, size=NQ, p=weights).astype(np.int64)
    query_labels[[0, 1]] = (LABELS, 9)  # the 3-row label; a label absent from the first half
    score = rng.random(N)
    score[::50] = np.nan  # NULLs never match
    seconds = rng.integers(0, 365 * 86400, N).astype("timedelta64[s]")
    published = (np.datetime64("2024-01-01T00:00:00", "us") + seconds).astype("datetime64[us]")
    vocab = [f"t{i}" for i in range(30)]
    tag_p = 1.0 / np.arange(1, 31)
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
            Attribute("label", "int", labels, query_labels if own else None),
            Attribute("score", "float", score),
            Attribute("published_at", "timestamp", published),
            Attribute("tags", "text[]", tags),
        ),
    )


def _target(
    ds: Dataset, predicate: str, *, rows: int = N, seed: int = 5, **kw: Any
) -> FilterTarget:
    return filter_target(
        ds,
        ds.queries[:NR],
        ds.queries[NR:],
        k=K,
        metric=ds.metric,
        predicate=predicate,
        attribute=kw.pop("attribute", None),
        rows=rows,
        seed=seed,
        **kw,
    )


def _oracle(ds: Dataset, keep: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact filtered top-k: float64 distances over the kept rows, ties by id."""
    rows = np.flatnonzero(keep)
    b = ds.base[rows].astype(np.float64)
    q64 = q.astype(np.float64)
    if ds.metric is Metric.COSINE:
        d = 1 - (b @ q64) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q64))
    else:
        d = np.linalg.norm(b - q64, axis=1)
    order = np.lexsort((rows, d))[:K]
    return rows[order], d[order]


def _keep(ds: Dataset, attribute: str, params: tuple[str, ...], rows: int) -> np.ndarray:
    """The rows a query's text parameters keep, read back from the text as the server would."""
    attr = ds.attribute(attribute)
    assert attr is not None
    values = attr.values
    if attr.kind == "int":
        keep = values == int(params[0])
    elif attr.kind == "float":
        keep = (values >= float(params[0])) & (values <= float(params[1]))
    elif attr.kind == "timestamp":
        low, high = (np.datetime64(p.replace("+00:00", ""), "us") for p in params)
        keep = (values >= low) & (values <= high)
    else:
        tags = {t.strip('"') for t in params[0].strip("{}").split(",")}
        keep = np.array([bool(tags & set(v)) for v in values], dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    keep[rows:] = False
    return keep


def _check_truth(ds: Dataset, t: FilterTarget, rows: int = N) -> None:
    assert len(t.recall_params) == NR and len(t.load_params) == NQ - NR
    assert t.truth.ids.shape == (NR, K)
    shares = []
    for i, params in enumerate(t.recall_params):
        keep = _keep(ds, t.attribute, params, rows)
        ids, dist = _oracle(ds, keep, ds.queries[i])
        assert t.matching[i] == keep.sum() > 0
        shares.append(keep.sum() / rows)
        np.testing.assert_array_equal(t.truth.ids[i, : ids.size], ids)
        assert (t.truth.ids[i, ids.size :] == -1).all()  # padded past the matching rows
        np.testing.assert_allclose(t.truth.distances[i, : ids.size], dist, rtol=1e-5, atol=1e-5)
    assert 0 < t.selectivity <= 1
    assert t.selectivity == pytest.approx(float(np.mean(shares)))


@pytest.mark.parametrize("metric", [Metric.L2, Metric.COSINE])
def test_own_labels_and_exact_truth(metric: Metric) -> None:
    ds = _dataset(metric)
    t = _target(ds, "label")
    attr = ds.attribute("label")
    assert attr is not None and attr.query_values is not None
    assert (t.attribute, t.kind, t.own_labels, t.replaced) == ("label", "int", True, 0)
    assert t.condition == '"label" = $2::bigint'
    # each recall query filters on its own label, each load query (after them) on its own
    assert t.recall_params == [(str(v),) for v in attr.query_values[:NR]]
    assert t.load_params == [(str(v),) for v in attr.query_values[NR:]]
    _check_truth(ds, t)
    assert t.matching[0] == 3 and t.summary()["short_queries"] >= 1


def test_subsample_replaces_own_labels_without_rows() -> None:
    ds = _dataset()
    rows = N // 2  # label 9 (query 1's own label) has no row here
    t = _target(ds, "label", rows=rows)
    assert t.replaced >= 1 and t.recall_params[1] != ("9",)
    _check_truth(ds, t, rows)
    assert (t.truth.ids < rows).all()


def test_labels_by_frequency_without_query_labels() -> None:
    ds = _dataset(own=False)
    t = _target(ds, "label")
    assert not t.own_labels
    _check_truth(ds, t)
    attr = ds.attribute("label")
    assert attr is not None
    drawn = Counter(p[0] for p in t.recall_params + t.load_params)
    commonest = Counter(attr.values.tolist()).most_common()
    # common labels are drawn more often than the tail
    assert drawn[str(commonest[0][0])] > drawn[str(commonest[-1][0])]
    assert drawn[str(commonest[0][0])] >= 5


@pytest.mark.parametrize("attribute", ["score", "published_at"])
def test_ranges_keep_a_moderate_share(attribute: str) -> None:
    ds = _dataset()
    t = _target(ds, "range", attribute=attribute)
    sql_type = "double precision" if attribute == "score" else "timestamptz"
    assert t.condition == f'"{attribute}" BETWEEN $2::{sql_type} AND $3::{sql_type}'
    assert all(len(p) == 2 for p in t.recall_params + t.load_params)
    _check_truth(ds, t)
    share = t.matching / N
    low, high = RANGE_SHARE
    assert (share >= low - 1 / N).all() and (share <= high + 1 / N).all()


def test_range_default_column_is_filtered_s_choice() -> None:
    ds = _dataset()
    assert _target(ds, "range").attribute == "score"  # float first, never the label


def test_overlap_on_tags() -> None:
    ds = _dataset()
    t = _target(ds, "overlap")
    assert (t.attribute, t.condition) == ("tags", '"tags" && $2::text[]')
    assert all(p[0].startswith('{"t') for p in t.recall_params)
    _check_truth(ds, t)


def test_seeded() -> None:
    ds = _dataset(own=False)
    a, b = _target(ds, "label", seed=1), _target(ds, "label", seed=1)
    assert a.recall_params == b.recall_params and a.load_params == b.load_params
    assert _target(ds, "label", seed=2).recall_params != a.recall_params
    assert a.recall_params != a.load_params[:NR]  # the streams differ


def test_filtered_recall_per_query() -> None:
    ds = _dataset()
    t = _target(ds, "label")
    queries = ds.queries[:NR]

    def recall(returned: list[list[int]]) -> np.ndarray:
        return filtered_recall_per_query(returned, t, ds.base, queries, K, ds.metric)

    exact = [[int(x) for x in row if x >= 0] for row in t.truth.ids]
    np.testing.assert_array_equal(recall(exact), np.ones(NR))
    dropped = [row[:-2] if len(row) == K else row for row in exact]
    got = recall(dropped)
    assert got[t.matching >= K] == pytest.approx(0.8)
    # query 0 has 3 matching rows: it counts over them
    assert len(exact[0]) == 3
    assert recall([exact[0][:2], *exact[1:]])[0] == pytest.approx(2 / 3)
    # a row outside the filter is a miss, whatever its distance
    attr = ds.attribute("label")
    assert attr is not None
    outside = int(np.flatnonzero(attr.values != attr.values[exact[1][0]])[0])
    assert recall([exact[0], [outside, *exact[1][1:]], *exact[2:]])[1] == pytest.approx(0.9)


def test_load_offset_must_match_the_dataset() -> None:
    ds = _dataset()
    with pytest.raises(ValueError, match="load queries"):
        filter_target(
            ds, ds.queries[:NR], ds.queries[NR + 1 :], k=K, metric=ds.metric,
            predicate="label", attribute=None, rows=N, seed=0,
        )  # fmt: skip
    # a load stream that reuses the recall queries (too few queries) starts at 0
    t = filter_target(
        ds, ds.queries[:NR], ds.queries, k=K, metric=ds.metric,
        predicate="label", attribute=None, rows=N, seed=0,
    )  # fmt: skip
    attr = ds.attribute("label")
    assert attr is not None and attr.query_values is not None
    assert t.load_params == [(str(v),) for v in attr.query_values]


def test_filter_problem_names_the_attributes() -> None:
    ds = _dataset()
    assert filter_problem("label", ds) is None
    assert filter_problem("range:published_at", ds) is None
    wrong = filter_problem("overlap:label", ds, "w.toml")
    assert wrong is not None and wrong.startswith("w.toml: [tune] filter = 'overlap:label'")
    assert "label (int), score (float)" in wrong and "text[], int[]" in wrong
    missing = filter_problem("range:price", ds)
    assert missing is not None and "no column 'price'" in missing
    unknown = filter_problem("equals", ds)
    assert unknown is not None and "label, range, overlap" in unknown
    bare = Dataset(name="x", source="t", metric=Metric.L2, base=ds.base, queries=ds.queries)
    none = filter_problem("label", bare)
    assert none is not None and "no attribute" in none and "int, text, bool" in none
    with pytest.raises(SpecError, match=r"\[tune\] filter = 'label'"):
        _target(bare, "label")
    assert split_filter(" range : price ") == ("range", "price")
    assert split_filter("label") == ("label", None)


def test_iterative_scan_settings() -> None:
    assert iterative_scan_settings("hnsw", "relaxed_order") == {
        "hnsw.iterative_scan": "relaxed_order"
    }
    assert iterative_scan_settings("hnsw", "off") == {"hnsw.iterative_scan": "off"}
    assert iterative_scan_settings("ivfflat", "relaxed_order") == {
        "ivfflat.iterative_scan": "relaxed_order"
    }
    with pytest.raises(ValueError, match="ivfflat has no iterative scan 'strict_order'"):
        iterative_scan_settings("ivfflat", "strict_order")
    modes = ("strict_order", "off", "relaxed_order")
    assert iterative_scan_modes("ivfflat", modes) == ("off", "relaxed_order")
    assert iterative_scan_modes("hnsw", modes) == modes
