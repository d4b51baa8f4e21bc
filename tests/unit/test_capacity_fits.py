"""Capacity fits on synthetic curves with known parameters, the hold-out check, the
extrapolation flag, and the answers computed from hand-made fits."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from pgvbench.analysis.usl import UslFit
from pgvbench.studies.capacity.answers import (
    MIB,
    OS_RESERVE_BYTES,
    CapacityAnswers,
    Target,
    answer,
    cores_for,
)
from pgvbench.studies.capacity.fits import (
    EXTRAPOLATION_LIMIT,
    Fit,
    TooFewLevels,
    extrapolation,
    fit_build_seconds,
    fit_forms,
    fit_index_bytes,
    fit_knob,
    fit_qps,
    rescale_dim,
)

LEVELS = np.array([25_000, 50_000, 100_000, 200_000], dtype=np.float64)


def _noisy(values: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Multiplicative (lognormal) noise: timings scatter by a fraction, not a constant."""
    return values * np.exp(np.random.default_rng(seed).normal(0.0, sigma, len(values)))


def _frame(column: str, values: np.ndarray, levels: np.ndarray = LEVELS) -> pd.DataFrame:
    return pd.DataFrame({"rows": levels.astype(int), column: values})


def _exact(form: str, coefficients: tuple[float, ...], levels: tuple[int, ...]) -> Fit:
    """A hand-made fit with a zero-width interval (residual scale 0)."""
    p = len(coefficients)
    return Fit(
        quantity="q",
        form=form,
        coefficients=coefficients,
        unscaled_covariance=tuple(tuple(0.0 for _ in range(p)) for _ in range(p)),
        residual_scale=0.0,
        dof=len(levels) - p,
        points=len(levels),
        levels=levels,
    )


def test_n_log_n_build_time_is_recovered_and_chosen() -> None:
    a = 3.0e-6
    seconds = _noisy(a * LEVELS * np.log(LEVELS), 0.001, seed=1)
    fit = fit_build_seconds(_frame("build_seconds", seconds))
    assert fit.form == "n_log_n"
    assert fit.chosen_by == "holdout"
    assert set(fit.held_out_errors) == {"n_log_n", "power"}
    assert fit.held_out_errors["n_log_n"] < fit.held_out_errors["power"]
    assert fit.params["a"] == pytest.approx(a, rel=0.03)
    assert fit.holdout is not None and fit.holdout.rows == 200_000 and fit.holdout.within
    # the prediction at 10M lies near the truth and its interval contains it
    truth = a * 1e7 * math.log(1e7)
    at = fit.predict(1e7)
    assert at.value == pytest.approx(truth, rel=0.05)
    assert at.low < truth < at.high


def test_a_steeper_power_law_is_chosen_over_n_log_n() -> None:
    a, b = 2.0e-7, 1.4  # e.g. a build whose graph outgrew maintenance_work_mem
    seconds = _noisy(a * LEVELS**b, 0.01, seed=2)
    fit = fit_build_seconds(_frame("build_seconds", seconds))
    assert fit.form == "power"
    assert fit.params["b"] == pytest.approx(b, abs=0.05)
    assert fit.held_out_errors["power"] < fit.held_out_errors["n_log_n"]
    assert fit.holdout is not None and fit.holdout.within


def test_a_form_the_holdout_cannot_reject_widens_the_interval() -> None:
    """n^1.1 looks like n·ln n over 25k-200k but is 12% apart at 10M: the interval covers
    both forms; a clearly steeper curve rejects n·ln n and keeps its own interval."""
    close = fit_build_seconds(_frame("build_seconds", _noisy(2e-6 * LEVELS**1.1, 0.01, seed=5)))
    assert close.rival is not None and close.rival.form != close.form
    at, alone, other = (
        close.predict(1e7),
        dataclasses.replace(close, rival=None).predict(1e7),
        close.rival.predict(1e7),
    )
    assert at.value == alone.value
    assert at.low == min(alone.low, other.low) and at.high == max(alone.high, other.high)
    assert at.low <= 2e-6 * 1e7**1.1 <= at.high
    assert Fit.from_dict(json.loads(json.dumps(close.to_dict()))).predict(1e7) == at
    steep = fit_build_seconds(_frame("build_seconds", _noisy(2e-7 * LEVELS**1.4, 0.01, seed=2)))
    assert steep.rival is None


def test_index_bytes_are_linear_and_the_holdout_flags_a_bent_last_level() -> None:
    a, b = 3 * 8192.0, 620.0
    size = a + b * LEVELS
    fit = fit_index_bytes(_frame("index_bytes", size))
    assert (fit.form, fit.chosen_by) == ("linear", "only_form")
    assert fit.params["a"] == pytest.approx(a, rel=1e-6)
    assert fit.params["b"] == pytest.approx(b, rel=1e-9)
    assert fit.holdout is not None and fit.holdout.within
    bent = size.copy()
    bent[-1] *= 1.3  # the largest level 30% over the line (e.g. pages packed differently)
    held = fit_index_bytes(_frame("index_bytes", bent)).holdout
    assert held is not None
    assert not held.within
    assert held.relative_error == pytest.approx(1 / 1.3 - 1, abs=1e-6)
    assert not held.inside_interval  # the others lie on a line: a tight interval misses


def test_the_knob_fit_chooses_its_form_and_rounds_up() -> None:
    log_form = np.ceil(-200 + 40 * np.log(LEVELS))
    fit = fit_knob(_frame("knob", log_form))
    assert fit.form == "log" and fit.integer
    at = fit.predict(1e6)
    assert at.value == math.ceil(at.value) and at.low >= 1
    assert at.value == pytest.approx(-200 + 40 * math.log(1e6), abs=3)
    power = np.ceil(2 * LEVELS**0.5)
    assert fit_knob(_frame("knob", power)).form == "power"


def test_qps_per_core_falls_as_a_power_law() -> None:
    qps = _noisy(4.0e4 * LEVELS**-0.3, 0.02, seed=3)
    fit = fit_qps(_frame("qps_per_core", qps))
    assert fit.form == "power"
    assert fit.params["b"] == pytest.approx(-0.3, abs=0.05)
    assert fit.holdout is not None and fit.holdout.tolerance == 0.25


def test_the_prediction_interval_is_honest() -> None:
    """Over many noise draws a form's 95% interval at the held-out level covers a new
    measurement about 95% of the time: it is neither a decoration nor a blanket."""
    a, sigma = 3.0e-6, 0.05
    truth = a * LEVELS * np.log(LEVELS)
    covered = 0
    trials = 400
    for seed in range(trials):
        df = _frame("build_seconds", _noisy(truth, sigma, seed))
        # one form (the true one), the three smaller levels only
        fit = fit_forms(df.iloc[:3], "build_seconds", ("n_log_n",), tolerance=0.15)
        at = fit.predict(200_000)
        # a new measurement at 200k, independent of the fitted ones
        new = _noisy(truth[-1:], sigma, seed + 10_000)[0]
        covered += at.low <= new <= at.high
    assert 0.91 <= covered / trials <= 0.99


def test_too_few_levels_leave_the_interval_unbounded_or_refuse() -> None:
    two = _frame("build_seconds", np.array([1.0, 2.2]), LEVELS[:2])
    fit = fit_build_seconds(two)
    assert fit.form == "n_log_n"  # the power law has no hold-out with 1 level left
    power = fit_qps(_frame("qps_per_core", np.array([900.0, 800.0]), LEVELS[:2]))
    assert power.dof == 0 and not power.predict(1e6).bounded
    with pytest.raises(TooFewLevels, match="index_bytes: 1 usable"):
        fit_index_bytes(_frame("index_bytes", np.array([1e6]), LEVELS[:1]))
    with pytest.raises(KeyError, match="no column 'index_bytes'"):
        fit_index_bytes(pd.DataFrame({"rows": [1, 2]}))


def test_failed_levels_are_left_out() -> None:
    values = 620.0 * LEVELS
    values[1] = np.nan  # a level that measured nothing
    values[2] = 0  # a failed build's size, as the export's capacity table has it
    fit = fit_index_bytes(_frame("index_bytes", values))
    assert fit.points == 2 and fit.levels == (25_000, 200_000)


def test_extrapolation_is_flagged_beyond_100x() -> None:
    assert extrapolation(20_000_000, 200_000) == 100.0
    fit = fit_index_bytes(_frame("index_bytes", 600.0 * LEVELS))
    assert not fit.predict(200_000 * EXTRAPOLATION_LIMIT).beyond_limit
    far = fit.predict(200_000 * 101)
    assert far.beyond_limit and far.extrapolation == pytest.approx(101)
    assert far.to_dict()["beyond_limit"] is True


def test_a_fit_survives_its_json_form() -> None:
    seconds = _noisy(3.0e-6 * LEVELS * np.log(LEVELS), 0.02, seed=4)
    fit = fit_build_seconds(_frame("build_seconds", seconds))
    back = Fit.from_dict(json.loads(json.dumps(fit.to_dict())))
    assert back.form == fit.form and back.holdout == fit.holdout
    assert back.held_out_errors == pytest.approx(fit.held_out_errors, rel=1e-5)
    for n in (1e5, 1e7):
        assert back.predict(n).value == pytest.approx(fit.predict(n).value, rel=1e-9)
        assert back.predict(n).high == pytest.approx(fit.predict(n).high, rel=1e-9)


def test_bytes_rescale_to_another_dimension_by_the_stated_rule() -> None:
    fit = fit_index_bytes(_frame("index_bytes", 8192 + 620.0 * LEVELS))
    wide = rescale_dim(fit, measured_dim=128, target_dim=768)
    assert wide.dim_rescale is not None and wide.dim_rescale.bytes_per_row == 4 * 640
    n = 1e7
    assert wide.predict(n).value - fit.predict(n).value == pytest.approx(4 * 640 * n)
    half = rescale_dim(fit, measured_dim=128, target_dim=768, storage="halfvec")
    assert half.predict(n).value - fit.predict(n).value == pytest.approx(2 * 640 * n)
    assert Fit.from_dict(json.loads(json.dumps(wide.to_dict()))).dim_rescale == wide.dim_rescale
    with pytest.raises(ValueError, match="only a linear bytes fit"):
        rescale_dim(
            fit_qps(_frame("qps_per_core", 1e4 / LEVELS**0.2)), measured_dim=1, target_dim=2
        )


# --- answers ----------------------------------------------------------------------------


def _usl(alpha: float, beta: float) -> UslFit:
    return UslFit(
        gamma=1.0,
        alpha=alpha,
        beta=beta,
        r_squared=1.0,
        n_star=math.inf,
        peak_qps=math.inf,
        points=5,
        client_counts=5,
    )


def test_cores_are_target_over_per_core_with_the_usl_correction() -> None:
    assert cores_for(2000, 250) == 8
    # 250·C / (1 + 0.05(C-1)) >= 2000  <=>  C >= 12.67
    assert cores_for(2000, 250, alpha=0.05) == 13
    # a coherency penalty that peaks below the target: no core count reaches it
    assert cores_for(2000, 250, alpha=0.05, beta=0.01) is None
    assert cores_for(2000, 0.0) is None


def test_answers_from_hand_made_fits() -> None:
    levels = (25_000, 50_000, 100_000, 200_000)
    gib = 1024 * MIB
    rows = 10_000_000
    index = _exact("linear", (0.0, gib / rows), levels)  # 1 GiB at 10M rows
    heap = _exact("linear", (0.0, gib / 2 / rows), levels)
    build = _exact("n_log_n", (math.log(1e-6),), levels)
    qps = _exact("power", (math.log(250.0), 0.0), levels)  # 250 QPS per core at any size
    knob = dataclasses.replace(_exact("log", (10.0, 8.0), levels), integer=True)
    got = answer(
        target=Target(rows=rows, qps=2000, p99_ms=20),
        measured_dim=128,
        build=build,
        index_bytes=index,
        heap_bytes=heap,
        knob=knob,
        qps_per_core=qps,
        maintenance_work_mem=gib,
        parallel_workers=2,
        parallel_speedup=1.6,
        usl=_usl(0.05, 0.0),
        cores_per_server=4,
        measured_p99_ms=12.0,
    )
    assert got.resident_bytes.value == pytest.approx(1.5 * gib)
    assert got.shared_buffers_bytes == math.ceil(1.5 * 1.1 * 1024) * MIB
    assert got.ram_serving_bytes == got.shared_buffers_bytes + OS_RESERVE_BYTES
    assert got.build_memory_bytes == math.ceil(1.1 * 1024) * MIB
    assert got.build_fits is False  # 1.1 GiB of graph, 1 GiB of maintenance_work_mem
    assert got.build_seconds.value == pytest.approx(1e-6 * rows * math.log(rows))
    assert got.parallel_build_seconds is not None
    assert got.parallel_build_seconds.value == pytest.approx(got.build_seconds.value / 1.6)
    assert got.disk_bytes.value == pytest.approx(1.5 * gib)
    assert got.rebuild_disk_bytes.value == pytest.approx(2.5 * gib)
    assert got.knob is not None and got.knob.value == math.ceil(10 + 8 * math.log(rows))
    assert got.cores is not None and got.cores.cores == 13
    # one 4-core server: 1000 / 1.15 QPS; 2000 needs 3 of them
    assert got.cores.servers == 3
    assert got.p99_ms == pytest.approx(12.0) and got.p99_ok
    assert got.extrapolation == 50.0 and not got.beyond_limit
    assert not got.dim_rescaled
    assert CapacityAnswers.from_dict(json.loads(json.dumps(got.to_dict()))) == got


def test_answers_rescale_bytes_to_the_target_dimension() -> None:
    levels = (25_000, 50_000, 100_000)
    index = _exact("linear", (0.0, 600.0), levels)
    build = _exact("n_log_n", (math.log(1e-6),), levels)
    got = answer(
        target=Target(rows=1_000_000, dim=768), measured_dim=128, build=build, index_bytes=index
    )
    assert got.dim_rescaled and got.dim_ratio == 6.0
    assert got.index_bytes.value == pytest.approx((600 + 4 * 640) * 1e6)
    assert got.cores is None and got.heap_bytes is None
    far = answer(target=Target(rows=20_000_000), measured_dim=128, build=build, index_bytes=index)
    assert far.beyond_limit and far.to_dict()["beyond_limit"] is True
