"""A vector experiment's data, prepared client-side before a server is touched: the
dataset (generated or read), the recall queries kept apart from the load stream, and the
exact ground truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..analysis.difficulty import measure_difficulty
from ..errors import DatasetError
from ..progress import Reporter
from ..results import DatasetInfo, GroundTruthInfo
from ..spec.model import ExperimentSpec
from .attribute_values import describe
from .base import Dataset
from .files import load_hdf5, load_npy
from .groundtruth import GroundTruth, ground_truth
from .parquet import load_parquet
from .synthetic import generate_clustered, generate_uniform
from .synthetic_labels import with_labels
from .unloaded import unloaded_columns


def build_dataset(spec: ExperimentSpec) -> Dataset:
    """The dataset a spec describes: generated, or read from the user's files."""
    ds = spec.dataset
    if ds is None:
        raise DatasetError(f"{spec.name}: a vector experiment needs a [dataset] table")
    if ds.source == "table":  # built by the runner once a server is connected
        raise DatasetError(
            f'{spec.source_path or spec.name}: [dataset] source = "table" is read from the '
            "server a `pgvbench run` targets; this command reads only files (export a sample "
            'of the table\'s vectors to .npy and use source = "npy")'
        )
    if ds.source == "synthetic":
        if ds.distribution == "uniform":
            vectors = generate_uniform(
                n=ds.n, dim=ds.dim, n_queries=ds.queries, seed=spec.seed, metric=ds.metric
            )
            return with_labels(vectors, ds.labels, seed=spec.seed, regions=ds.clusters)
        vectors = generate_clustered(
            n=ds.n,
            dim=ds.dim,
            n_queries=ds.queries,
            clusters=ds.clusters,
            spread=ds.spread,
            seed=spec.seed,
            metric=ds.metric,
            intrinsic_dim=ds.intrinsic_dim,
            size_skew=ds.size_skew,
            scale_spread=ds.scale_spread,
            tail_dof=ds.tail_dof,
        )
        return with_labels(vectors, ds.labels, seed=spec.seed, regions=ds.clusters)
    from ..plan.shape import dataset_shape

    dataset_shape(spec)  # headers checked against the spec (dims, query counts) before reading
    if ds.source == "hdf5":
        assert ds.path is not None
        return load_hdf5(
            ds.path,
            max_queries=ds.queries or None,
            attributes=ds.attributes,
            query_attributes=ds.query_attributes,
        )
    if ds.source == "parquet":
        return load_parquet(ds)
    assert ds.base is not None and ds.queries_file is not None
    return load_npy(
        ds.base,
        ds.queries_file,
        metric=ds.metric,
        attributes=ds.attributes,
        query_attributes=ds.query_attributes,
    )


@dataclasses.dataclass(frozen=True)
class QuerySets:
    """Recall queries (with ground truth) kept apart from the load stream."""

    recall: Dataset
    load_stream: np.ndarray
    note: str | None


def split_queries(dataset: Dataset, n_recall: int) -> QuerySets:
    nq = dataset.n_queries
    n_recall = min(n_recall, nq)
    recall = dataclasses.replace(
        dataset,
        queries=dataset.queries[:n_recall],
        neighbors=None if dataset.neighbors is None else dataset.neighbors[:n_recall],
        distances=None if dataset.distances is None else dataset.distances[:n_recall],
        attributes=tuple(a.take_queries(slice(0, n_recall)) for a in dataset.attributes),
    )
    if nq > n_recall:
        return QuerySets(recall, dataset.queries[n_recall:], None)
    return QuerySets(
        recall,
        dataset.queries,
        (
            f"only {nq} queries: the load stream reuses the recall queries "
            "(give the dataset more queries to keep them apart)"
        ),
    )


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Everything computed client-side before the server is touched."""

    dataset: Dataset
    sets: QuerySets
    truth: GroundTruth
    info: DatasetInfo


def prepare_data(spec: ExperimentSpec, *, cache_dir: Path, reporter: Reporter) -> PreparedData:
    """Dataset, recall/load query split and exact ground truth: client-side work that
    needs no server, so bad input fails before one starts."""
    with reporter.task("generate / read dataset") as task:
        dataset = build_dataset(spec)
        task.update(description=f"dataset {dataset.n:,} x {dataset.dim} ({dataset.metric})")
    return prepare_dataset(spec, dataset, cache_dir=cache_dir, reporter=reporter)


def prepare_dataset(
    spec: ExperimentSpec, dataset: Dataset, *, cache_dir: Path, reporter: Reporter
) -> PreparedData:
    """Query split and ground truth for a built dataset (a table source's dataset is
    built only once a server is connected)."""
    if spec.query.k > dataset.n:
        raise DatasetError(f"[query] k = {spec.query.k} exceeds the dataset's {dataset.n} rows")
    sets = split_queries(dataset, spec.query.recall_queries)
    with reporter.task(
        f"ground truth top-{spec.query.k} for {sets.recall.n_queries:,} queries"
    ) as task:
        truth = ground_truth(sets.recall, spec.query.k, cache_dir=cache_dir)
        task.update(
            description=f"ground truth ({truth.method}{', cached' if truth.cached else ''})"
        )
    difficulty = None
    if dataset.n >= 3:  # LID needs neighbours; ~0.4 s on the quickstart's 50k x 128
        with reporter.task("difficulty (LID, relative contrast)"):
            difficulty = measure_difficulty(dataset.base, dataset.metric, queries=dataset.queries)
    unloaded = unloaded_columns(spec.dataset, dataset)
    if unloaded:
        reporter.log(f"per-row data not loaded as attributes: {', '.join(unloaded)}")
    info = DatasetInfo(
        name=dataset.name,
        source=dataset.source,
        n=dataset.n,
        dim=dataset.dim,
        metric=str(dataset.metric),
        seed=dataset.seed,
        n_queries=dataset.n_queries,
        n_recall_queries=sets.recall.n_queries,
        ground_truth=GroundTruthInfo(
            k=spec.query.k,
            method=truth.method,
            seconds=round(truth.seconds, 4),
            cached=truth.cached,
        ),
        difficulty=None if difficulty is None else difficulty.to_dict(),
        attributes=[describe(a).to_dict() for a in dataset.attributes] or None,
        attributes_unloaded=unloaded or None,
    )
    return PreparedData(dataset=dataset, sets=sets, truth=truth, info=info)
