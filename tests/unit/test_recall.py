"""Tie-aware recall@k and its summary."""

from __future__ import annotations

import numpy as np
import pytest

from pgvbench.datasets import Dataset, GroundTruth, ground_truth, summarize_recall, tie_aware_recall
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric

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


def test_eps_is_relative() -> None:
    base = np.array([[1, 0], [2, 0], [1000, 0], [1000.001, 0], [1000.5, 0]], np.float32)
    ds = Dataset("eps", "test", Metric.L2, base, np.zeros((1, 2), np.float32))
    gt = ground_truth(ds, 3, cache_dir=None)
    assert gt.ids.tolist() == [[0, 1, 2]]
    # 1000.001 is within 1e-5 x 1000 of the k-th distance; 1000.5 is not.
    assert tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric)[0] == 1.0
    assert tie_aware_recall([[0, 1, 4]], gt, ds.queries, ds.base, 3, ds.metric)[0] == 2 / 3
    strict = tie_aware_recall([[0, 1, 3]], gt, ds.queries, ds.base, 3, ds.metric, eps=0.0)
    assert strict[0] == 2 / 3


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


def test_a_tied_point_counts_even_with_eps_zero(tied: tuple[Dataset, GroundTruth]) -> None:
    """id 4 lies exactly at the k-th distance (3.0, like ids 2 and 3) and is not in gt.ids:
    a hit by ``<=``, a miss if the rule became ``<``. id 5 (4.0) stays a miss."""
    ds, gt = tied

    def exact(returned: list[list[int]]) -> list[float]:
        return tie_aware_recall(returned, gt, ds.queries, ds.base, 4, ds.metric, eps=0.0).tolist()

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
    hits = tie_aware_recall([[0, 2]], gt, ds.queries, ds.base, 2, metric, eps=0.0)
    assert hits.tolist() == [1.0]
    misses = tie_aware_recall([[0, 3]], gt, ds.queries, ds.base, 2, metric, eps=0.0)
    assert misses.tolist() == [0.5]
