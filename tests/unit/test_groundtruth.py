"""Exact k-NN, the ground-truth cache and file-neighbour verification."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pgvbench.datasets import (
    Dataset,
    exact_knn,
    generate_clustered,
    ground_truth,
    load_hdf5,
    true_distances,
    true_distances_batch,
)
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric


def oracle_distances(base: np.ndarray, queries: np.ndarray, metric: Metric) -> np.ndarray:
    """All query x base distances in float64, pgvector convention, by plain numpy."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric is Metric.L2:
        l2: np.ndarray = np.sqrt(((q[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
        return l2
    if metric is Metric.INNER_PRODUCT:
        ip: np.ndarray = -(q @ b.T)
        return ip
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    cos: np.ndarray = 1.0 - qn @ bn.T
    return cos


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    base = rng.standard_normal((3000, 24)).astype(np.float32)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    return base, queries


@pytest.mark.parametrize("metric", list(Metric))
def test_exact_knn_matches_numpy_oracle(
    data: tuple[np.ndarray, np.ndarray], metric: Metric
) -> None:
    base, queries = data
    k = 15
    full = oracle_distances(base, queries, metric)
    expected_ids = np.argsort(full, axis=1, kind="stable")[:, :k]
    ids, distances = exact_knn(base, queries, k, metric)
    assert ids.dtype == np.int64 and distances.dtype == np.float32
    assert ids.shape == distances.shape == (40, k)
    # Random Gaussian data has no ties, so the ids must match exactly.
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(
        distances, np.take_along_axis(full, expected_ids, axis=1), rtol=1e-6, atol=1e-6
    )
    assert (np.diff(distances, axis=1) >= 0).all()


@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize(("rows", "block_rows"), [(60, 1), (500, 7), (3000, 1000), (3000, 2999)])
def test_block_merging_equals_one_block(
    data: tuple[np.ndarray, np.ndarray], metric: Metric, rows: int, block_rows: int
) -> None:
    # Blocks smaller than k, uneven last blocks and a single leftover row all merge exactly.
    base, queries = data[0][:rows], data[1]
    one = exact_knn(base, queries, 10, metric, block_rows=len(base))
    blocked = exact_knn(base, queries, 10, metric, block_rows=block_rows)
    np.testing.assert_array_equal(blocked[0], one[0])
    np.testing.assert_array_equal(blocked[1], one[1])


def test_non_float32_and_strided_inputs_give_same_answer(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    base, queries = data
    expected = exact_knn(base, queries, 5, Metric.L2)
    wide = np.asfortranarray(base.astype(np.float64))
    ids, distances = exact_knn(wide, queries.astype(np.float64), 5, Metric.L2)
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_allclose(distances, expected[1], rtol=1e-6)


def test_pgvector_distance_conventions() -> None:
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    l2_ids, l2 = exact_knn(np.array([[4.0, 4.0], [1.0, 0.0], [4.0, 0.0]]), query, 3, Metric.L2)
    assert l2_ids.tolist() == [[1, 2, 0]]
    np.testing.assert_allclose(l2, [[0.0, 3.0, 5.0]])  # Euclidean, not squared
    ip_ids, ip = exact_knn(
        np.array([[1.0, 0.0], [3.0, 0.0], [-1.0, 0.0]]), query, 3, Metric.INNER_PRODUCT
    )
    assert ip_ids.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(ip, [[-3.0, -1.0, 1.0]])  # <#> is the negative inner product
    cos_ids, cos = exact_knn(
        np.array([[0.0, 5.0], [-2.0, 0.0], [7.0, 0.0]]), query, 3, Metric.COSINE
    )
    assert cos_ids.tolist() == [[2, 0, 1]]
    np.testing.assert_allclose(cos, [[0.0, 1.0, 2.0]], atol=1e-7)  # 1 - cos similarity


def test_ties_sort_by_id() -> None:
    base = np.array([[0.0, 2.0], [2.0, 0.0], [0.0, -2.0], [-2.0, 0.0], [9.0, 9.0]])
    ids, distances = exact_knn(base, np.zeros((1, 2)), 4, Metric.L2)
    assert ids.tolist() == [[0, 1, 2, 3]]
    np.testing.assert_array_equal(distances, [[2.0, 2.0, 2.0, 2.0]])


@pytest.mark.parametrize(("k", "message"), [(0, "1 to 100"), (101, "1 to 100"), (11, "exceeds")])
def test_invalid_k(k: int, message: str) -> None:
    base = np.ones((10, 3), dtype=np.float32)
    with pytest.raises(DatasetError, match=message):
        exact_knn(base, base[:2], k, Metric.L2)


def test_dim_mismatch_is_rejected() -> None:
    with pytest.raises(DatasetError, match="dim"):
        exact_knn(np.ones((10, 3), np.float32), np.ones((2, 4), np.float32), 1, Metric.L2)


@pytest.mark.parametrize("metric", list(Metric))
def test_true_distances_match_oracle(data: tuple[np.ndarray, np.ndarray], metric: Metric) -> None:
    base, queries = data
    ids = np.array([5, 0, 2999, 17])
    expected = oracle_distances(base, queries[3:4], metric)[0, ids]
    got = true_distances(base, queries[3], ids, metric)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    batch = true_distances_batch(base, queries[:2], np.array([[1, 2], [3, 4]]), metric)
    full = oracle_distances(base, queries[:2], metric)
    np.testing.assert_allclose(batch, [full[0, [1, 2]], full[1, [3, 4]]], rtol=1e-12, atol=1e-12)
    with pytest.raises(DatasetError, match="ids"):
        true_distances(base, queries[0], np.array([-1]), metric)


# --- ground_truth ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate_clustered(
        n=2000, dim=16, n_queries=30, clusters=5, spread=0.5, seed=1, metric=Metric.COSINE
    )


def test_ground_truth_without_cache(dataset: Dataset, tmp_path: Path) -> None:
    gt = ground_truth(dataset, 10, cache_dir=None)
    ids, distances = exact_knn(dataset.base, dataset.queries, 10, dataset.metric)
    np.testing.assert_array_equal(gt.ids, ids)
    np.testing.assert_array_equal(gt.distances, distances)
    assert not gt.cached and "exact" in gt.method and gt.seconds >= 0 and gt.k == 10
    assert not list(tmp_path.iterdir())


def test_cache_hit_returns_identical_arrays(dataset: Dataset, tmp_path: Path) -> None:
    first = ground_truth(dataset, 10, cache_dir=tmp_path / "gt")
    path = tmp_path / "gt" / f"{dataset.fingerprint()}-cosine-k10.npz"
    assert path.is_file() and not first.cached
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left over
    second = ground_truth(dataset, 10, cache_dir=tmp_path / "gt")
    assert second.cached and "cache" in second.method and "exact" in second.method
    np.testing.assert_array_equal(second.ids, first.ids)
    np.testing.assert_array_equal(second.distances, first.distances)
    assert second.ids.dtype == np.int64 and second.distances.dtype == np.float32
    other_k = ground_truth(dataset, 5, cache_dir=tmp_path / "gt")
    assert not other_k.cached
    np.testing.assert_array_equal(other_k.ids, first.ids[:, :5])


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong-shape"])
def test_corrupt_cache_is_recomputed(dataset: Dataset, tmp_path: Path, damage: str) -> None:
    good = ground_truth(dataset, 10, cache_dir=tmp_path)
    path = tmp_path / f"{dataset.fingerprint()}-cosine-k10.npz"
    if damage == "garbage":
        path.write_bytes(b"\x00not a zip file")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        np.savez(path, ids=good.ids[:, :3], distances=good.distances[:, :3], method="x")
    again = ground_truth(dataset, 10, cache_dir=tmp_path)
    assert not again.cached
    np.testing.assert_array_equal(again.ids, good.ids)
    assert ground_truth(dataset, 10, cache_dir=tmp_path).cached  # the cache was rewritten


def write_ann_file(
    path: Path, base: np.ndarray, queries: np.ndarray, neighbors: np.ndarray
) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=base)
        f.create_dataset("test", data=queries)
        f.create_dataset("neighbors", data=neighbors.astype(np.int32))
        f.create_dataset("distances", data=np.zeros(neighbors.shape, np.float32))  # ignored
    return path


def test_file_neighbors_are_used_and_verified(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    ids, distances = exact_knn(base, queries, 20, Metric.L2)
    ds = load_hdf5(write_ann_file(tmp_path / "good.hdf5", base, queries, ids))
    gt = ground_truth(ds, 10, cache_dir=None)
    assert "file neighbors" in gt.method and "spot-checked" in gt.method
    np.testing.assert_array_equal(gt.ids, ids[:, :10])
    np.testing.assert_allclose(gt.distances, distances[:, :10], rtol=1e-6)  # recomputed
    wide = ground_truth(ds, 30, cache_dir=None)  # the file has only 20 columns
    assert "exact" in wide.method and "only 20 columns" in wide.method


def test_wrong_file_neighbors_are_rejected(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    ids, _ = exact_knn(base, queries, 10, Metric.L2)
    path = write_ann_file(tmp_path / "wrong.hdf5", base, queries, ids[::-1])  # rows swapped
    with pytest.raises(DatasetError, match=r"wrong\.hdf5.*neighbors"):
        ground_truth(load_hdf5(path), 10, cache_dir=None)
    duplicated = ids.copy()
    duplicated[:, 1] = duplicated[:, 0]
    path = write_ann_file(tmp_path / "dup.hdf5", base, queries, duplicated)
    with pytest.raises(DatasetError, match=r"dup\.hdf5.*twice"):
        ground_truth(load_hdf5(path), 10, cache_dir=None)


def test_file_neighbors_may_pick_any_tied_point(tmp_path: Path) -> None:
    # Query at the origin; ids 1..4 are all at distance 1, id 0 at 0.5, the rest far.
    base = np.array(
        [[0.5, 0], [1, 0], [0, 1], [-1, 0], [0, -1], [5, 5], [6, 6], [7, 7]], np.float32
    )
    queries = np.zeros((1, 2), np.float32)
    exact_ids, _ = exact_knn(base, queries, 3, Metric.L2)
    assert exact_ids.tolist() == [[0, 1, 2]]
    ds = load_hdf5(write_ann_file(tmp_path / "ties.hdf5", base, queries, np.array([[0, 4, 3]])))
    gt = ground_truth(ds, 3, cache_dir=None)
    assert gt.ids.tolist() == [[0, 3, 4]]  # the file's choice, re-sorted by (distance, id)
    np.testing.assert_allclose(gt.distances, [[0.5, 1.0, 1.0]])
