"""LID (MLE over k nearest neighbours) and relative contrast, checked against data of
known intrinsic dimension and against a direct brute-force computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pgvbench.analysis.difficulty import Difficulty, lid_mle, measure_difficulty
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric


def _embedded(latent: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Latent points mapped isometrically onto a random d-dim subspace of R^dim."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, latent.shape[1])))
    return np.asarray(latent @ basis.T, dtype=np.float32)


@pytest.mark.parametrize("d", [3, 6, 10])
def test_lid_of_a_gaussian_on_a_linear_subspace_is_its_dimension(d: int) -> None:
    rng = np.random.default_rng(d)
    x = _embedded(rng.standard_normal((12_300, d)), 64, seed=d)
    result = measure_difficulty(x[:12_000], Metric.L2, queries=x[12_000:], max_queries=300)
    assert result.lid.median == pytest.approx(d, rel=0.12)
    assert result.k == 100 and result.queries == 300 and result.queries_from == "queries"


def test_lid_of_a_uniform_cube_is_its_dimension() -> None:
    # Queries from the cube's centre: near a face the neighbourhood is cut in half and
    # the estimate drops (a known boundary bias of the MLE), which is not what this checks.
    rng = np.random.default_rng(7)
    base = rng.random((20_000, 4))
    queries = 0.3 + 0.4 * rng.random((300, 4))
    both = _embedded(np.vstack([base, queries]), 32, seed=7)
    result = measure_difficulty(both[:20_000], Metric.L2, queries=both[20_000:])
    assert result.lid.median == pytest.approx(4, rel=0.1)
    assert result.lid.p10 < result.lid.median < result.lid.p90


def test_lid_mle_matches_the_formula_and_skips_duplicates() -> None:
    d = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    lid = lid_mle(d)
    # -1 / ((ln(1/4) + ln(2/4) + ln(1)) / 3)
    assert lid[0] == pytest.approx(-1 / ((np.log(0.25) + np.log(0.5)) / 3))
    assert lid[1] == pytest.approx(-1 / (np.log(0.5) / 2))  # the zero distance is left out
    assert np.isnan(lid[2])


def _brute_force(base: np.ndarray, queries: np.ndarray, metric: Metric, own: list[int]) -> tuple:
    """Per query, a plain loop: all distances, self removed, sorted."""
    lids, rcs = [], []
    for qi, q in enumerate(queries.astype(np.float64)):
        dists = []
        for bi, b in enumerate(base.astype(np.float64)):
            if own and bi == own[qi]:
                continue
            if metric is Metric.L2:
                dists.append(float(np.sqrt(np.sum((q - b) ** 2))))
            else:
                dists.append(1.0 - float(q @ b / (np.linalg.norm(q) * np.linalg.norm(b))))
        dists.sort()
        k = 20
        near = np.array(dists[:k])
        lids.append(-1.0 / np.mean(np.log(near / near[-1])))
        rcs.append(np.mean(dists) / dists[0])
    return np.array(lids), np.array(rcs)


@pytest.mark.parametrize("metric", [Metric.L2, Metric.COSINE, Metric.INNER_PRODUCT])
@pytest.mark.parametrize("from_base", [False, True])
def test_measures_equal_a_brute_force_loop(metric: Metric, from_base: bool) -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((600, 12)).astype(np.float32) + 0.5
    queries = rng.standard_normal((40, 12)).astype(np.float32) + 0.5
    result = measure_difficulty(
        base,
        metric,
        queries=None if from_base else queries,
        k=20,
        max_queries=40,
        base_sample=10_000,
    )
    picked = np.sort(np.random.default_rng(0).choice(600 if from_base else 40, 40, False))
    search = base[picked] if from_base else queries
    own = [int(i) for i in picked] if from_base else []
    # ip is measured with the cosine distance of the normalised vectors
    lids, rcs = _brute_force(base, search, Metric.L2 if metric is Metric.L2 else Metric.COSINE, own)
    assert result.rc.median == pytest.approx(np.median(rcs), rel=1e-5)
    assert result.rc.mean == pytest.approx(np.mean(rcs), rel=1e-5)
    assert result.rc.p10 == pytest.approx(np.percentile(rcs, 10), rel=1e-5)
    assert result.lid.median == pytest.approx(np.median(lids), rel=1e-4)
    assert result.lid.p90 == pytest.approx(np.percentile(lids, 90), rel=1e-4)
    assert result.base_sample == 600 and result.k == 20
    assert result.queries_from == ("base" if from_base else "queries")
    assert ("normalised" in result.distance) is (metric is Metric.INNER_PRODUCT)


def test_record_round_trips_through_json() -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal((2_000, 8)).astype(np.float32)
    result = measure_difficulty(base, Metric.COSINE, max_queries=50, base_sample=500)
    assert result.base_sample == 500 and result.k == 99  # k + 1 (self) fits MAX_K
    again = Difficulty.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.lid.median == pytest.approx(result.lid.median, rel=1e-4)
    assert again.rc.p90 == pytest.approx(result.rc.p90, rel=1e-4)
    assert again.queries == 50 and again.metric == "cosine" and again.skipped == 0


def test_duplicates_are_skipped_not_infinite() -> None:
    base = np.repeat(np.random.default_rng(1).standard_normal((50, 4)), 2, axis=0)
    result = measure_difficulty(base.astype(np.float32), Metric.L2, k=10, max_queries=20)
    assert result.skipped == 20  # each row's twin is at distance 0: RC undefined
    assert result.rc.median is not None and np.isnan(result.rc.median)
    assert Difficulty.from_dict(json.loads(json.dumps(result.to_dict()))).skipped == 20


def test_too_few_rows_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match="at least 3"):
        measure_difficulty(np.zeros((2, 3), dtype=np.float32), Metric.L2)
