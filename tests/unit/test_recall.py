"""Tie-aware recall@k and its summary."""

from __future__ import annotations

import numpy as np
import pytest

from pgvbench.datasets import (
    Dataset,
    GroundTruth,
    ground_truth,
    pair_distances,
    summarize_recall,
    tie_aware_recall,
)
from pgvbench.datasets.recall import recall_tail
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric
from pgvbench.recall_rule import ANN_BENCHMARKS, DEFAULT_RULE, STRICT, RecallRule, rule_from_spec

EXACT_TIES = RecallRule(epsilon=0.0)

# One query at the origin. Base distances: id0 1, id1 2, ids 2/3/4 tied at 3, id5 4,
# id6 5. With k=4 the true set is {0, 1} plus any two of {2, 3, 4}.
BASE = np.array([[1, 0], [0, 2], [3, 0], [0, -3], [-3, 0], [4, 0], [0, 5]], np.float32)
QUERY = np.zeros((1, 2), np.float32)


@pytest.fixture
def tied() -> tuple[Dataset, GroundTruth]:
    ds = Dataset("ties", "test", Metric.L2, BASE, QUERY)
    return ds, ground_truth(ds, 4, cache_dir=None)


def recall(returned: object, ds_gt: tuple[Dataset, GroundTruth], k: int = 4) -> float:
    ds, gt = ds_gt
    values = tie_aware_recall(returned, gt, ds.queries, ds.base, k, ds.metric)  # type: ignore[arg-type]
    assert values.shape == (ds.queries.shape[0],)
    return float(values[0])


def test_ground_truth_of_the_fixture(tied: tuple[Dataset, GroundTruth]) -> None:
    _, gt = tied
    assert gt.ids.tolist() == [[0, 1, 2, 3]]  # ties broken by id


def test_perfect_result_is_one(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[0, 1, 2, 3]], tied) == 1.0
    assert recall(np.array([[3, 2, 1, 0]]), tied) == 1.0  # order does not matter


def test_points_tied_at_kth_distance_count(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[0, 1, 4, 3]], tied) == 1.0  # id 4 is not in gt.ids but tied with id 2
    assert recall([[0, 1, 4, 5]], tied) == 0.75  # id 5 is strictly farther


def test_duplicates_count_once(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[0, 0, 0, 0]], tied) == 0.25
    assert recall([[2, 4, 2, 4]], tied) == 0.5


def test_short_and_long_results(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[0, 1]], tied) == 0.5
    assert recall([[]], tied) == 0.0
    assert recall([[5, 6, 0, 1, 2, 3]], tied) == 0.5  # only the first k rows count
    assert recall(np.array([[0, 1]]), tied) == 0.5


def test_ids_outside_the_base_count_zero(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[-1, 7, 10**12, 0]], tied) == 0.25


def test_smaller_k_than_ground_truth(tied: tuple[Dataset, GroundTruth]) -> None:
    assert recall([[0, 1]], tied, k=2) == 1.0
    assert recall([[0, 2]], tied, k=2) == 0.5


def test_strict_rule_is_relative() -> None:
    base = np.array([[1, 0], [2, 0], [1000, 0], [1000.005, 0], [1000.5, 0]], np.float32)
    ds = Dataset("eps", "test", Metric.L2, base, np.zeros((1, 2), np.float32))
    gt = ground_truth(ds, 3, cache_dir=None)
    assert gt.ids.tolist() == [[0, 1, 2]]
    # 1000.005 is within 1e-5 x 1000 of the k-th distance; 1000.5 is not.
    strict = tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric, rule=STRICT)
    assert strict[0] == 1.0
    far = tie_aware_recall([[0, 1, 4]], gt, ds.queries, ds.base, 3, ds.metric, rule=STRICT)
    assert far[0] == 2 / 3
    # the default (1e-3 absolute, as ann-benchmarks) does not grow with the distance
    assert tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric)[0] == 2 / 3
    exact = tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric, rule=EXACT_TIES)
    assert exact[0] == 2 / 3


def test_default_rule_is_ann_benchmarks_absolute_epsilon() -> None:
    """Near ties at small distances (embeddings): 3.0005 is a hit within 1e-3 of d_k = 3 but
    a miss under the strict rule (1e-5 x 3); 3.002 misses under both."""
    base = np.array([[1, 0], [2, 0], [3, 0], [3.0005, 0], [3.002, 0]], np.float32)
    ds = Dataset("near", "test", Metric.L2, base, np.zeros((1, 2), np.float32))
    gt = ground_truth(ds, 3, cache_dir=None)
    assert DEFAULT_RULE == ANN_BENCHMARKS
    near = tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric)
    assert near[0] == 1.0
    assert tie_aware_recall([[0, 1, 4]], gt, ds.queries, ds.base, 3, ds.metric)[0] == 2 / 3
    strict = tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric, rule=STRICT)
    assert strict[0] == 2 / 3


def _ann_benchmarks_recall(true_d: np.ndarray, run_d: np.ndarray, k: int, eps: float) -> float:
    """ann-benchmarks' get_recall_values with knn_threshold, for one query: a returned
    neighbour counts when its distance <= the k-th true distance + epsilon."""
    threshold = np.sort(true_d)[k - 1] + eps
    return float(np.sum(run_d[:k] <= threshold)) / k


@pytest.mark.parametrize("metric", [Metric.L2, Metric.COSINE])
def test_default_rule_matches_ann_benchmarks_on_near_ties(metric: Metric) -> None:
    # many near ties: every base point lies within ~3e-3 in distance of every query
    rng = np.random.default_rng(11)
    directions = rng.standard_normal((400, 16))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    if metric is Metric.L2:  # a thin shell around queries near the origin
        base = (directions * (1 + rng.uniform(0, 3e-3, (400, 1)))).astype(np.float32)
        queries = (rng.standard_normal((30, 16)) * 1e-4).astype(np.float32)
    else:  # a thin cone around the x axis: cosine similarity 0.990 .. 0.993
        axis = np.zeros(16)
        axis[0] = 1.0
        side = directions - np.outer(directions @ axis, axis)
        side /= np.linalg.norm(side, axis=1, keepdims=True)
        cos = rng.uniform(0.990, 0.993, (400, 1))
        base = (cos * axis + np.sqrt(1 - cos**2) * side).astype(np.float32)
        queries = (axis + rng.standard_normal((30, 16)) * 1e-5).astype(np.float32)
    ds = Dataset("shell", "test", metric, base, queries)
    k = 10
    gt = ground_truth(ds, k, cache_dir=None)
    returned = np.stack([rng.choice(400, k, replace=False) for _ in range(30)])
    ours = tie_aware_recall(returned, gt, ds.queries, ds.base, k, metric)
    strict = tie_aware_recall(returned, gt, ds.queries, ds.base, k, metric, rule=STRICT)
    for i in range(30):
        all_d = pair_distances(base, queries, np.full(400, i), np.arange(400), metric)
        theirs = _ann_benchmarks_recall(all_d, all_d[returned[i]], k, 1e-3)
        assert ours[i] == pytest.approx(theirs)
    assert ours.mean() > strict.mean()  # the tolerance matters on near ties


def test_rule_spellings() -> None:
    assert rule_from_spec("strict") == STRICT
    assert rule_from_spec(1e-3) == ANN_BENCHMARKS
    assert rule_from_spec(0) == EXACT_TIES
    assert STRICT.spec_value == "strict" and ANN_BENCHMARKS.spec_value == 1e-3
    assert "ann-benchmarks" in ANN_BENCHMARKS.describe()
    assert "strict" in STRICT.describe()
    assert RecallRule.from_dict(STRICT.to_dict()) == STRICT
    assert STRICT.limit(1000.0) == pytest.approx(1000.01)
    assert ANN_BENCHMARKS.limit(1000.0) == pytest.approx(1000.001)


@pytest.mark.parametrize("metric", list(Metric))
def test_many_queries_mixed_results(metric: Metric) -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal((500, 8)).astype(np.float32)
    ds = Dataset("r", "test", metric, base, rng.standard_normal((20, 8)).astype(np.float32))
    gt = ground_truth(ds, 10, cache_dir=None)
    returned = [list(row) for row in gt.ids]
    for i in range(10):
        returned[i] = returned[i][: 10 - i]  # query i gets 10 - i correct ids
    values = tie_aware_recall(returned, gt, ds.queries, ds.base, 10, metric)
    np.testing.assert_allclose(values[:10], (10 - np.arange(10)) / 10)
    np.testing.assert_allclose(values[10:], 1.0)
    # A result from the far end of the base order is always a miss.
    far = np.argsort(-np.linalg.norm(base - ds.queries[0], axis=1))[:10]
    if metric is Metric.L2:
        assert tie_aware_recall(far[None].repeat(20, 0), gt, ds.queries, base, 10, metric)[0] == 0


def test_wrong_number_of_result_rows(tied: tuple[Dataset, GroundTruth]) -> None:
    with pytest.raises(DatasetError, match="1"):
        recall([[0], [1]], tied)


def test_k_larger_than_ground_truth(tied: tuple[Dataset, GroundTruth]) -> None:
    ds, gt = tied
    with pytest.raises(DatasetError, match="k=4"):
        tie_aware_recall([[0]], gt, ds.queries, ds.base, 5, ds.metric)


def test_summarize_recall() -> None:
    values = np.array([1.0] * 19 + [0.0])
    mean, p5, low = summarize_recall(values)
    assert mean == pytest.approx(0.95)
    assert p5 == pytest.approx(0.95)  # linear: 0 + 0.05 x 19 x (1 - 0)
    assert low == 0.0
    assert summarize_recall([0.5, 0.7]) == pytest.approx((0.6, 0.51, 0.5))
    with pytest.raises(DatasetError, match="no per-query"):
        summarize_recall([])


def test_recall_tail() -> None:
    p1, zero = recall_tail(np.array([1.0] * 97 + [0.0, 0.0, 0.5]))
    assert zero == 2
    assert p1 == pytest.approx(0.0)
    assert recall_tail([0.5, 0.7]) == (pytest.approx(0.502), 0)


def test_a_tied_point_counts_even_with_eps_zero(tied: tuple[Dataset, GroundTruth]) -> None:
    """id 4 lies exactly at the k-th distance (3.0, like ids 2 and 3) and is not in gt.ids:
    a hit by ``<=``, a miss if the rule became ``<``. id 5 (4.0) stays a miss."""
    ds, gt = tied

    def exact(returned: list[list[int]]) -> list[float]:
        return tie_aware_recall(
            returned, gt, ds.queries, ds.base, 4, ds.metric, rule=EXACT_TIES
        ).tolist()

    assert exact([[0, 1, 4, 3]]) == [1.0]
    assert exact([[4, 2, 3, 0]]) == [1.0]
    assert exact([[0, 1, 4, 5]]) == [0.75]


@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.INNER_PRODUCT])
def test_exact_ties_count_with_eps_zero_for_other_metrics(metric: Metric) -> None:
    # the query points along x: ids 1 and 2 score exactly alike (same x, mirrored y)
    base = np.array([[4, 0], [3, 1], [3, -1], [1, 3], [-2, 0]], np.float32)
    query = np.array([[1, 0]], np.float32)
    ds = Dataset("ties", "test", metric, base, query)
    gt = ground_truth(ds, 2, cache_dir=None)
    assert gt.ids.tolist() == [[0, 1]]
    hits = tie_aware_recall([[0, 2]], gt, ds.queries, ds.base, 2, metric, rule=EXACT_TIES)
    assert hits.tolist() == [1.0]
    misses = tie_aware_recall([[0, 3]], gt, ds.queries, ds.base, 2, metric, rule=EXACT_TIES)
    assert misses.tolist() == [0.5]
