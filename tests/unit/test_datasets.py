"""Synthetic generators, the Dataset container and the file loaders."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pgvbench.datasets import Dataset, generate_clustered, generate_uniform, load_hdf5, load_npy
from pgvbench.datasets.files import probe_hdf5, probe_npy, probe_vectors
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric


def clustered(**overrides: object) -> Dataset:
    args: dict[str, object] = dict(
        n=2000, dim=32, n_queries=50, clusters=8, spread=0.3, seed=7, metric=Metric.L2
    )
    args.update(overrides)
    return generate_clustered(**args)  # type: ignore[arg-type]


def row_set(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in (x + np.float32(0))}  # + 0 folds -0.0 into 0.0


# --- synthetic ---------------------------------------------------------------------------


@pytest.mark.parametrize("intrinsic_dim", [None, 4])
def test_clustered_same_seed_is_bit_identical(intrinsic_dim: int | None) -> None:
    a = clustered(intrinsic_dim=intrinsic_dim)
    b = clustered(intrinsic_dim=intrinsic_dim)
    assert np.array_equal(a.base, b.base)
    assert np.array_equal(a.queries, b.queries)
    assert a.fingerprint() == b.fingerprint()
    c = clustered(intrinsic_dim=intrinsic_dim, seed=8)
    assert not np.array_equal(a.base, c.base)
    assert a.fingerprint() != c.fingerprint()


def test_uniform_same_seed_is_bit_identical() -> None:
    a = generate_uniform(n=1000, dim=16, n_queries=20, seed=3, metric=Metric.L2)
    b = generate_uniform(n=1000, dim=16, n_queries=20, seed=3, metric=Metric.L2)
    c = generate_uniform(n=1000, dim=16, n_queries=20, seed=4, metric=Metric.L2)
    assert np.array_equal(a.base, b.base) and np.array_equal(a.queries, b.queries)
    assert not np.array_equal(a.base, c.base)
    assert a.base.min() >= -1 and a.base.max() < 1


def test_shapes_dtype_and_layout() -> None:
    ds = clustered()
    assert (ds.n, ds.dim, ds.queries.shape) == (2000, 32, (50, 32))
    for array in (ds.base, ds.queries):
        assert array.dtype == np.float32 and array.flags.c_contiguous
        assert not array.flags.writeable  # the cached fingerprint cannot go stale
    assert ds.source == "synthetic:clustered" and ds.seed == 7
    assert ds.neighbors is None and ds.distances is None


def test_queries_disjoint_from_base() -> None:
    ds = clustered()
    assert not row_set(ds.queries) & row_set(ds.base)


def test_colliding_queries_are_redrawn() -> None:
    # 1-D float32 in [-1, 1) has ~2**24 values: ~24 query/base collisions expected.
    ds = generate_uniform(n=200_000, dim=1, n_queries=2000, seed=0, metric=Metric.L2)
    assert not np.isin(ds.queries[:, 0], ds.base[:, 0]).any()
    assert ds.queries.shape == (2000, 1)


def test_impossible_disjointness_is_reported() -> None:
    # In 1-D, cosine leaves only the unit vectors -1 and +1.
    with pytest.raises(DatasetError, match="distinct"):
        generate_uniform(n=100, dim=1, n_queries=5, seed=0, metric=Metric.COSINE)


@pytest.mark.parametrize("make", ["clustered", "uniform"])
def test_cosine_vectors_are_unit_length(make: str) -> None:
    if make == "clustered":
        ds = clustered(metric=Metric.COSINE)
    else:
        ds = generate_uniform(n=500, dim=24, n_queries=10, seed=1, metric=Metric.COSINE)
    for array in (ds.base, ds.queries):
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)


def test_l2_and_ip_are_not_normalised() -> None:
    for metric in (Metric.L2, Metric.INNER_PRODUCT):
        norms = np.linalg.norm(clustered(metric=metric).base, axis=1)
        assert norms.std() > 0.1


def test_cluster_sizes_are_uneven() -> None:
    # With a tiny spread every point sits on its centre, so rounding recovers clusters.
    remaining = clustered(n=20_000, clusters=10, spread=1e-4).base
    counts = []
    while remaining.shape[0]:
        near = np.linalg.norm(remaining - remaining[0], axis=1) < 0.01
        counts.append(int(near.sum()))
        remaining = remaining[~near]
    assert len(counts) == 10
    assert max(counts) > 1.5 * min(counts)


def test_intrinsic_dim_concentrates_variance() -> None:
    ds = clustered(n=4000, dim=64, clusters=1, spread=1.0, intrinsic_dim=4)
    centred = ds.base - ds.base.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False) ** 2
    assert singular[:4].sum() / singular.sum() > 0.95
    full = clustered(n=4000, dim=64, clusters=1, spread=1.0)
    singular = np.linalg.svd(full.base - full.base.mean(axis=0), compute_uv=False) ** 2
    assert singular[:4].sum() / singular.sum() < 0.2


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"n": 0}, "n"),
        ({"n_queries": 0}, "n_queries"),
        ({"dim": 0}, "dim"),
        ({"dim": 16001}, "dim"),
        ({"clusters": 0}, "clusters"),
        ({"spread": 0.0}, "spread"),
        ({"spread": float("nan")}, "spread"),
        ({"seed": -1}, "seed"),
        ({"intrinsic_dim": 33}, "intrinsic_dim"),
        ({"n": 2.5}, "n"),
        ({"metric": "hamming"}, "metric"),
    ],
)
def test_invalid_arguments_are_named(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(DatasetError, match=rf"\b{named}\b"):
        clustered(**overrides)


# --- Dataset ------------------------------------------------------------------------------


def test_fingerprint_covers_content_and_metric() -> None:
    base = np.arange(12, dtype=np.float32).reshape(4, 3)
    queries = np.ones((2, 3), dtype=np.float32)
    ds = Dataset("a", "x", Metric.L2, base, queries)
    same = Dataset("b", "y", Metric.L2, base.copy(), queries.copy(), seed=1)
    assert ds.fingerprint() == same.fingerprint()
    assert ds.fingerprint() != Dataset("a", "x", Metric.COSINE, base, queries).fingerprint()
    changed = base.copy()
    changed[3, 2] += 1
    assert ds.fingerprint() != Dataset("a", "x", Metric.L2, changed, queries).fingerprint()
    reshaped = base.reshape(3, 4)
    assert (
        Dataset("a", "x", Metric.L2, reshaped, np.ones((2, 4), np.float32)).fingerprint()
        != ds.fingerprint()
    )


def test_dataset_converts_and_leaves_caller_array_writable() -> None:
    base = np.asfortranarray(np.random.default_rng(0).standard_normal((5, 3)))
    ds = Dataset("a", "src", "cosine", base, base[:2])  # type: ignore[arg-type]
    assert ds.metric is Metric.COSINE
    assert ds.base.dtype == np.float32 and ds.base.flags.c_contiguous
    assert base.flags.writeable


def test_dataset_rejects_dim_mismatch_naming_source() -> None:
    with pytest.raises(DatasetError, match=r"my-source.*dim 4.*dim 3"):
        Dataset("a", "my-source", Metric.L2, np.ones((5, 3)), np.ones((2, 4)))


# --- HDF5 --------------------------------------------------------------------------------


def write_hdf5(path: Path, distance: str | None = "euclidean", **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        if distance is not None:
            f.attrs["distance"] = distance
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def random_vectors(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


@pytest.mark.parametrize(("distance", "metric"), [("euclidean", Metric.L2), ("angular", "cosine")])
def test_hdf5_round_trip(tmp_path: Path, distance: str, metric: str) -> None:
    train, test = random_vectors(100, 8), random_vectors(10, 8, seed=1)
    neighbors = np.tile(np.arange(5, dtype=np.int32), (10, 1))
    distances = np.ones((10, 5), dtype=np.float32)
    path = write_hdf5(
        tmp_path / "toy-8-x.hdf5",
        distance,
        train=train,
        test=test,
        neighbors=neighbors,
        distances=distances,
    )
    ds = load_hdf5(path)
    assert ds.metric is Metric(metric)
    assert ds.name == "toy-8-x" and ds.source == f"hdf5:{path}" and ds.seed is None
    np.testing.assert_array_equal(ds.base, train)
    np.testing.assert_array_equal(ds.queries, test)
    assert ds.neighbors is not None and ds.neighbors.dtype == np.int64
    np.testing.assert_array_equal(ds.neighbors, neighbors)
    assert ds.distances is not None
    np.testing.assert_array_equal(ds.distances, distances)

    few = load_hdf5(path, max_queries=3)
    np.testing.assert_array_equal(few.queries, test[:3])
    assert few.neighbors is not None and few.neighbors.shape == (3, 5)


def test_hdf5_float64_and_bytes_attribute(tmp_path: Path) -> None:
    train = random_vectors(20, 4).astype(np.float64)
    path = write_hdf5(tmp_path / "d.hdf5", None, train=train, test=train[:3])
    with h5py.File(path, "a") as f:
        f.attrs["distance"] = np.bytes_(b"dot")
    ds = load_hdf5(path)
    assert ds.metric is Metric.INNER_PRODUCT and ds.base.dtype == np.float32
    assert ds.neighbors is None


def test_hdf5_errors_name_the_file(tmp_path: Path) -> None:
    good = random_vectors(20, 4)
    cases: list[tuple[Path, str]] = [
        (tmp_path / "missing.hdf5", "not found"),
        (tmp_path / "text.hdf5", "not a readable HDF5"),
        (write_hdf5(tmp_path / "notrain.hdf5", test=good), "'train' is missing"),
        (write_hdf5(tmp_path / "nodist.hdf5", None, train=good, test=good), "'distance'"),
        (write_hdf5(tmp_path / "ham.hdf5", "hamming", train=good, test=good), "angular"),
        (write_hdf5(tmp_path / "1d.hdf5", train=good[0], test=good), "2-D"),
        (write_hdf5(tmp_path / "dims.hdf5", train=good, test=good[:, :3]), "dim 3"),
        (write_hdf5(tmp_path / "int.hdf5", train=good.astype(np.int32), test=good), "float"),
        (write_hdf5(tmp_path / "empty.hdf5", train=good[:0], test=good), "empty"),
    ]
    (tmp_path / "text.hdf5").write_text("not hdf5")
    nan = good.copy()
    nan[7, 1] = np.nan
    cases.append((write_hdf5(tmp_path / "nan.hdf5", train=nan, test=good), "row 7"))
    for path, message in cases:
        with pytest.raises(DatasetError, match=message) as info:
            load_hdf5(path)
        assert str(path) in str(info.value)


def test_hdf5_neighbors_out_of_range(tmp_path: Path) -> None:
    good = random_vectors(20, 4)
    bad = np.full((20, 3), 20, dtype=np.int64)
    path = write_hdf5(tmp_path / "nb.hdf5", train=good, test=good, neighbors=bad)
    with pytest.raises(DatasetError, match=r"nb\.hdf5.*neighbors"):
        load_hdf5(path)


# --- npy / fvecs -------------------------------------------------------------------------


def write_fvecs(path: Path, x: np.ndarray) -> Path:
    rows = np.empty((x.shape[0], x.shape[1] + 1), dtype="<i4")
    rows[:, 0] = x.shape[1]
    rows[:, 1:] = x.astype("<f4").view("<i4")
    rows.tofile(path)
    return path


def test_npy_and_fvecs_load_identically(tmp_path: Path) -> None:
    base, queries = random_vectors(50, 6), random_vectors(5, 6, seed=2)
    np.save(tmp_path / "base.npy", base.astype(np.float64))
    np.save(tmp_path / "q.npy", queries)
    write_fvecs(tmp_path / "base.fvecs", base)
    write_fvecs(tmp_path / "q.fvecs", queries)

    from_npy = load_npy(tmp_path / "base.npy", tmp_path / "q.npy", metric=Metric.L2)
    from_fvecs = load_npy(tmp_path / "base.fvecs", tmp_path / "q.fvecs", metric=Metric.L2)
    mixed = load_npy(tmp_path / "base.npy", tmp_path / "q.fvecs", metric=Metric.COSINE)
    for ds in (from_npy, from_fvecs, mixed):
        np.testing.assert_array_equal(ds.base, base)
        np.testing.assert_array_equal(ds.queries, queries)
        assert ds.base.dtype == np.float32 and ds.base.flags.c_contiguous
    assert from_npy.source == f"npy:{tmp_path / 'base.npy'}" and from_npy.name == "base"
    assert from_fvecs.source.startswith("fvecs:")
    assert from_npy.fingerprint() == from_fvecs.fingerprint()
    assert mixed.metric is Metric.COSINE


def test_npy_errors_name_the_file(tmp_path: Path) -> None:
    base = random_vectors(10, 4)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "q3.npy", base[:, :3])
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2), np.float32))
    np.save(tmp_path / "ints.npy", np.ones((2, 4), np.int64))
    np.save(tmp_path / "inf.npy", np.array([[1, 2, 3, np.inf]], np.float32))
    np.save(tmp_path / "empty.npy", np.ones((0, 4), np.float32))
    np.save(tmp_path / "objects.npy", np.array([[None] * 4], dtype=object))
    (tmp_path / "base.csv").write_text("1,2,3,4\n")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    (tmp_path / "bad.fvecs").write_bytes(np.array([4, 0, 0], "<i4").tobytes())
    cases = {
        "q3.npy": "dim 3",
        "cube.npy": "2-D",
        "ints.npy": "float",
        "inf.npy": "row 0",
        "empty.npy": "empty",
        "objects.npy": "not a readable",
        "base.csv": r"\.npy or \.fvecs",
        "junk.npy": r"not a NumPy \.npy file",
        "bad.fvecs": "not a valid .fvecs",
        "missing.npy": "not found",
    }
    for name, message in cases.items():
        with pytest.raises(DatasetError, match=message) as info:
            load_npy(tmp_path / "base.npy", tmp_path / name, metric=Metric.L2)
        assert name in str(info.value)


# --- header probes (pgvbench validate) ---------------------------------------------------


def test_probes_read_shapes_without_loading(tmp_path: Path) -> None:
    base, queries = random_vectors(50, 6), random_vectors(7, 6, seed=2)
    np.save(tmp_path / "base.npy", base.astype(np.float64))
    write_fvecs(tmp_path / "q.fvecs", queries)
    header = probe_npy(tmp_path / "base.npy", tmp_path / "q.fvecs", metric="cosine")
    assert (header.rows, header.dim, header.queries) == (50, 6, 7)
    assert header.metric is Metric.COSINE and header.source == f"npy:{tmp_path / 'base.npy'}"
    assert probe_vectors(tmp_path / "base.npy", "base vectors").dtype == "float64"

    path = write_hdf5(
        tmp_path / "a.hdf5",
        "angular",
        train=base,
        test=queries,
        neighbors=np.zeros((7, 3), np.int32),
    )
    h5 = probe_hdf5(path)
    assert (h5.rows, h5.dim, h5.queries, h5.metric) == (50, 6, 7, Metric.COSINE)
    assert probe_hdf5(path, max_queries=3).queries == 3


def test_text_file_named_npy_is_not_a_numpy_file(tmp_path: Path) -> None:
    text = tmp_path / "base.npy"
    text.write_text("0.1,0.2,0.3\n0.4,0.5,0.6\n")
    for call in (
        lambda: probe_vectors(text, "base vectors"),
        lambda: load_npy(text, text, metric=Metric.L2),
    ):
        with pytest.raises(DatasetError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{text}: not a NumPy .npy file (it looks like a text file")
        assert "pickle" not in message


def test_npz_archive_named_npy(tmp_path: Path) -> None:
    path = tmp_path / "base.npy"
    with open(path, "wb") as fh:
        np.savez(fh, x=random_vectors(4, 2))
    with pytest.raises(DatasetError, match=r"base\.npy: not a NumPy \.npy file but an \.npz"):
        probe_vectors(path, "base vectors")


def test_truncated_npy_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "base.npy"
    np.save(path, random_vectors(100, 8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DatasetError, match=r"truncated: its header says 100 x 8 float32"):
        probe_vectors(path, "base vectors")
    with pytest.raises(DatasetError, match="truncated"):
        load_npy(path, path, metric=Metric.L2)


def test_npy_object_array_names_the_dtype_without_numpy_pickle_hint(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[None] * 4], dtype=object))
    with pytest.raises(DatasetError) as info:
        probe_vectors(path, "query vectors")
    assert "stores Python objects (dtype object)" in str(info.value)
    assert "allow_pickle" not in str(info.value)


def test_fvecs_probe_uses_first_int_and_size(tmp_path: Path) -> None:
    path = write_fvecs(tmp_path / "b.fvecs", random_vectors(9, 5))
    header = probe_vectors(path, "base vectors")
    assert (header.rows, header.dim) == (9, 5)
    path.write_bytes(path.read_bytes()[:-4])  # cut into the last row
    with pytest.raises(DatasetError, match=r"not a valid \.fvecs file \(header says dim=5"):
        probe_vectors(path, "base vectors")


def test_hdf5_probe_checks_metadata(tmp_path: Path) -> None:
    good = random_vectors(20, 4)
    cases: list[tuple[Path, str]] = [
        (tmp_path / "missing.hdf5", "not found"),
        (tmp_path / "text.hdf5", "does not start with the HDF5 signature"),
        (write_hdf5(tmp_path / "notest.hdf5", train=good), "'test' is missing"),
        (write_hdf5(tmp_path / "nodist.hdf5", None, train=good, test=good), "'distance'"),
        (write_hdf5(tmp_path / "dims.hdf5", train=good, test=good[:, :3]), "dim 3"),
        (write_hdf5(tmp_path / "int.hdf5", train=good.astype(np.int32), test=good), "float"),
        (write_hdf5(tmp_path / "empty.hdf5", train=good[:0], test=good), "empty"),
        (
            write_hdf5(tmp_path / "nb.hdf5", train=good, test=good, neighbors=good[:5]),
            "'neighbors': expected a 2-D integer dataset with at least 20 rows",
        ),
    ]
    (tmp_path / "text.hdf5").write_text("not hdf5")
    for path, message in cases:
        with pytest.raises(DatasetError, match=message) as info:
            probe_hdf5(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["npy", "fvecs", "hdf5"])
def test_zero_vectors_are_refused_for_cosine(tmp_path: Path, fmt: str) -> None:
    # cosine distance to a zero vector is NaN in pgvector: recall would be meaningless
    base = random_vectors(20, 4)
    base[[3, 11]] = 0.0
    queries = random_vectors(5, 4, seed=1)
    if fmt == "hdf5":
        path = write_hdf5(tmp_path / "zero.hdf5", "angular", train=base, test=queries)
        with pytest.raises(DatasetError) as info:
            load_hdf5(path)
        where = f"{path}: 'train'"
        assert load_hdf5(write_hdf5(tmp_path / "l2.hdf5", train=base, test=queries)).n == 20
    else:
        path = tmp_path / f"base.{fmt}"
        if fmt == "npy":
            np.save(path, base)
            np.save(tmp_path / "q.npy", queries)
        else:
            write_fvecs(path, base)
            np.save(tmp_path / "q.npy", queries)
        with pytest.raises(DatasetError) as info:
            load_npy(path, tmp_path / "q.npy", metric=Metric.COSINE)
        where = str(path)
        assert load_npy(path, tmp_path / "q.npy", metric=Metric.L2).n == 20  # l2 is fine
    message = str(info.value)
    assert message.startswith(f"{where}: row 3 is a zero vector (2 zero rows in all)")
    assert "cosine" in message


def test_zero_query_vector_is_refused_for_cosine(tmp_path: Path) -> None:
    queries = random_vectors(5, 4, seed=1)
    queries[4] = 0.0
    np.save(tmp_path / "base.npy", random_vectors(20, 4))
    np.save(tmp_path / "q.npy", queries)
    with pytest.raises(DatasetError, match=r"q\.npy: row 4 is a zero vector \(1 zero rows"):
        load_npy(tmp_path / "base.npy", tmp_path / "q.npy", metric=Metric.COSINE)
