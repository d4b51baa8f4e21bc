"""generate_clustered's heterogeneity (size_skew, scale_spread, tail_dof): absent, the
bytes are those of earlier versions; present, cluster sizes follow Zipf and per-query LID
spreads wider, as real embeddings' does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pgvbench.analysis.difficulty import measure_difficulty
from pgvbench.cli import main
from pgvbench.datasets.prepared import build_dataset
from pgvbench.datasets.synthetic import generate_clustered
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric
from pgvbench.spec.parse import load_spec
from support import write_toml

# Fingerprints computed with the generator of commit 3c9de1d, before these parameters:
# ground-truth caches and recorded specs of shipped workloads depend on them not moving.
_BEFORE: list[tuple[dict[str, Any], str]] = [
    (
        dict(n=2000, dim=32, n_queries=50, clusters=8, spread=0.3, seed=1, metric=Metric.L2),
        "932d7f179d2592fb7661f45621695708",
    ),
    (
        dict(
            n=1500,
            dim=64,
            n_queries=40,
            clusters=16,
            spread=0.5,
            seed=7,
            metric=Metric.COSINE,
            intrinsic_dim=8,
        ),
        "d5bbfda55682cbf0d80032a718b654eb",
    ),
    (
        dict(
            n=3000,
            dim=24,
            n_queries=30,
            clusters=1,
            spread=1.0,
            seed=0,
            metric=Metric.INNER_PRODUCT,
            intrinsic_dim=24,
        ),
        "7e80e105b8cf13fa94c937b25e35fe7f",
    ),
    (
        dict(
            n=500,
            dim=16,
            n_queries=20,
            clusters=64,
            spread=0.3,
            seed=42,
            metric=Metric.L2,
            intrinsic_dim=4,
        ),
        "bf06c15e6db79a1c4f0db22fc5f2436a",
    ),
]


@pytest.mark.parametrize(("args", "fingerprint"), _BEFORE)
def test_defaults_give_the_bytes_of_earlier_versions(
    args: dict[str, Any], fingerprint: str
) -> None:
    assert generate_clustered(**args).fingerprint() == fingerprint
    explicit = {**args, "size_skew": 0.0, "scale_spread": 0.0, "tail_dof": 0.0}
    assert generate_clustered(**explicit).fingerprint() == fingerprint


def test_a_spec_without_the_keys_records_none_of_them(tmp_path: Path) -> None:
    data = {
        "experiment": {"name": "het", "seed": 1},
        "dataset": {
            "source": "synthetic",
            "n": 2000,
            "dim": 32,
            "clusters": 8,
            "spread": 0.3,
            "queries": 50,
        },
        "query": {"k": 10, "recall_queries": 50},
        "index": [{"kind": "none"}],
    }
    spec = load_spec(write_toml(tmp_path / "plain.toml", data))
    assert not {"size_skew", "scale_spread", "tail_dof"} & set(spec.to_dict()["dataset"])
    assert build_dataset(spec).fingerprint() == _BEFORE[0][1]
    data["dataset"] = {**data["dataset"], "size_skew": 1.0, "tail_dof": 4}
    skewed = load_spec(write_toml(tmp_path / "skewed.toml", data))
    recorded = skewed.to_dict()["dataset"]
    assert recorded["size_skew"] == 1.0 and recorded["tail_dof"] == 4
    assert build_dataset(skewed).fingerprint() != _BEFORE[0][1]


def test_size_skew_gives_zipf_cluster_sizes_and_keeps_the_centres() -> None:
    args = dict(n=20_000, dim=8, n_queries=1, clusters=10, spread=1e-5, seed=3, metric=Metric.L2)
    plain = generate_clustered(**args)
    skewed = generate_clustered(**args, size_skew=1.0)
    # tiny spread: every point sits on its centre, so the distinct centres are its labels
    centres, counts = np.unique(np.round(skewed.base, 2), axis=0, return_counts=True)
    plain_centres = np.unique(np.round(plain.base, 2), axis=0)
    assert len(centres) == 10 and np.array_equal(centres, plain_centres)
    zipf = 1 / np.arange(1, 11)
    expected = 20_000 * zipf / zipf.sum()
    assert np.sort(counts)[::-1] == pytest.approx(expected, rel=0.15)
    assert skewed.name.endswith("-z1-seed3")


def _lid_ratio(**extra: Any) -> float:
    data = generate_clustered(
        n=3_000,
        dim=64,
        n_queries=1,
        clusters=10,
        spread=0.7,
        seed=0,
        metric=Metric.COSINE,
        intrinsic_dim=24,
        **extra,
    )
    lid = measure_difficulty(data.base, Metric.COSINE, k=50, max_queries=300).lid
    return lid.p90 / lid.p10


def test_heterogeneity_widens_the_lid_distribution() -> None:
    plain = _lid_ratio()  # LID p90/p10, about 1.5: every cluster alike
    assert _lid_ratio(tail_dof=3.0) > 1.4 * plain  # dense cores and sparse halos: 2.5
    assert _lid_ratio(scale_spread=1.5) > 1.05 * plain  # mostly moves contrast: 1.7
    assert _lid_ratio(size_skew=1.0, scale_spread=1.5) > 1.15 * plain  # 1.9


@pytest.mark.parametrize(
    ("key", "value"),
    [("size_skew", -1.0), ("size_skew", 5.0), ("scale_spread", float("nan")), ("tail_dof", 1.0)],
)
def test_bad_arguments_are_dataset_errors(key: str, value: float) -> None:
    with pytest.raises(DatasetError, match=key):
        generate_clustered(
            n=10,
            dim=4,
            n_queries=1,
            clusters=2,
            spread=0.3,
            seed=0,
            metric=Metric.L2,
            **{key: value},
        )


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("size_skew", -0.5, "minimum 0"),
        ("scale_spread", 9, "maximum 3"),
        ("tail_dof", 1, "0 (Gaussian) or between 2 and 1000"),
        ("tails", 3, "Allowed keys:"),
    ],
)
def test_spec_errors_exit_2_naming_file_key_and_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: float, allowed: str
) -> None:
    data = {
        "experiment": {"name": "het", "seed": 1},
        "dataset": {"source": "synthetic", "n": 100, "dim": 8, key: value},
        "query": {"k": 10, "recall_queries": 50},
        "index": [{"kind": "none"}],
    }
    path = write_toml(tmp_path / "bad.toml", data)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and key in err and allowed in err, err
