"""Datasets: synthetic generators, file loaders, exact ground truth and recall."""

from pgvbench.datasets.base import Dataset
from pgvbench.datasets.files import load_hdf5, load_npy
from pgvbench.datasets.groundtruth import (
    MAX_K,
    GroundTruth,
    exact_knn,
    ground_truth,
    pair_distances,
    true_distances,
    true_distances_batch,
)
from pgvbench.datasets.recall import summarize_recall, tie_aware_recall
from pgvbench.datasets.synthetic import generate_clustered, generate_uniform

__all__ = [
    "MAX_K",
    "Dataset",
    "GroundTruth",
    "exact_knn",
    "generate_clustered",
    "generate_uniform",
    "ground_truth",
    "load_hdf5",
    "load_npy",
    "pair_distances",
    "summarize_recall",
    "tie_aware_recall",
    "true_distances",
    "true_distances_batch",
]
