"""A synthetic twin fitted to a small sample of differently shaped data matches its
median LID and relative contrast within 10%."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pgvbench.analysis.difficulty import measure_difficulty
from pgvbench.datasets.synthetic import generate_clustered
from pgvbench.datasets.twin import TwinFit, fit_twin
from pgvbench.errors import DatasetError
from pgvbench.metrics import Metric


def _power_law_mixture(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors from anisotropic, heavy-tailed clusters with a power-law spectrum and
    Zipf-sized clusters: not what generate_clustered draws."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 21)
    labels = rng.choice(20, size=n, p=weights / weights.sum())
    common = rng.standard_normal(dim) * 0.6
    scales = np.arange(1, dim + 1) ** -0.25
    out = np.empty((n, dim))
    for c in range(20):
        rows = np.flatnonzero(labels == c)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        t = np.sqrt(4 / rng.chisquare(4, size=(rows.size, 1)))
        noise = rng.standard_normal((rows.size, dim)) * scales * t
        out[rows] = common + rng.standard_normal(dim) * 0.15 + noise @ rotation.T
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def _swiss_roll(n: int, dim: int, seed: int) -> np.ndarray:
    """A curved 2-d sheet plus a little noise, rotated into ``dim`` dimensions (l2)."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    latent = np.stack([t * np.cos(t), 20 * rng.random(n), t * np.sin(t)], axis=1)
    latent = np.hstack([latent, 0.3 * rng.standard_normal((n, 3))])
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent.shape[1])))
    return (latent @ basis.T).astype(np.float32)


@pytest.mark.parametrize(
    ("sample", "metric"),
    [
        (_power_law_mixture(2_000, 48, seed=1), Metric.COSINE),
        (_swiss_roll(2_000, 24, 2), Metric.L2),
    ],
    ids=["power-law-mixture-cosine", "swiss-roll-l2"],
)
def test_twin_matches_lid_and_contrast_within_ten_percent(
    sample: np.ndarray, metric: Metric
) -> None:
    fit = fit_twin(sample, metric, fit_rows=2_000, max_evaluations=60)
    assert fit.matched(0.10), fit.residuals
    assert fit.fit_rows == fit.sample_rows == 2_000 and fit.dim == sample.shape[1]
    # the fitted parameters reproduce the twin's medians independently of the fit
    p = fit.params
    twin = generate_clustered(
        n=2_000,
        dim=sample.shape[1],
        n_queries=1,
        clusters=p.clusters,
        spread=p.spread,
        seed=5,
        metric=metric,
        intrinsic_dim=p.intrinsic_dim,
    )
    again = measure_difficulty(twin.base, metric, max_queries=400)
    target = measure_difficulty(sample, metric, max_queries=400)
    assert again.lid.median == pytest.approx(target.lid.median, rel=0.12)
    assert again.rc.median == pytest.approx(target.rc.median, rel=0.12)
    assert 1 <= len(fit.evaluations) <= 60
    assert {e.stage for e in fit.evaluations} <= {"grid", "nelder-mead"}


def test_fit_record_round_trips_and_subsamples_large_samples() -> None:
    sample = _power_law_mixture(3_000, 16, seed=3)
    fit = fit_twin(sample, Metric.COSINE, fit_rows=1_000, max_evaluations=2)
    assert fit.sample_rows == 3_000 and fit.fit_rows == 1_000
    assert len(fit.evaluations) == 2  # the budget ends the search (the grid's first two miss)
    assert not fit.matched(0.10)
    again = TwinFit.from_dict(json.loads(json.dumps(fit.to_dict())))
    assert again.params == fit.params
    assert again.residuals["lid"] == pytest.approx(fit.residuals["lid"], abs=1e-3)
    assert len(again.evaluations) == 2


@pytest.mark.parametrize(
    "sample",
    [np.zeros((50, 8), np.float32), np.full((300, 8), np.nan, np.float32), np.zeros(10)],
)
def test_unusable_samples_are_dataset_errors(sample: np.ndarray) -> None:
    with pytest.raises(DatasetError, match="twin"):
        fit_twin(sample, Metric.L2)
