"""How each cost grows with the number of rows: fits over the measured levels, with honest
error, for the capacity study. Pure functions over pandas DataFrames (one row per measured
level, column ``rows`` plus the quantity's column); no database, no prose.

Method. Every form is a linear regression in a fitted space::

    form      curve            fitted space                used for
    n_log_n   y = a·n·ln n     ln y - ln(n ln n) = ln a    build seconds
    power     y = a·n^b        ln y = ln a + b·ln n        build seconds, knob, QPS per core
    linear    y = a + b·n      y                           index and heap bytes
    log       y = a + b·ln n   y                           knob

Ordinary least squares there gives the coefficients, the residual scale s (with k points
and p coefficients, k - p degrees of freedom) and the prediction interval at a new n,
``mean ± t(k-p) · s · sqrt(1 + x0' (X'X)^-1 x0)`` (back-transformed with exp in log
space: a multiplicative interval). With 3-4 levels t has 1-2 degrees of freedom and the
interval is wide: that is what 3-4 levels can tell. With none left (as many points as
coefficients) the interval is unbounded.

Validation. The largest level is held out, the same form is fitted on the others and
predicts it; the relative error and whether it is within a tolerance are kept
(:class:`HoldOut`). Where two forms compete, the one with the smaller held-out error is
kept and both errors are recorded. The returned fit itself uses every level.

Which form. Over 25k-200k rows, n·ln n and a power law with b near 1.1 are nearly the same
curve, yet 50x further on they differ by ~12%; one held-out level cannot always tell them
apart, and a single form's interval then claims more than the data know (simulated, 4
levels, 1% noise, truth n^1.1: the chosen form's 95% interval held the truth at 10M in
54% of draws). So when the competing form is not rejected by the hold-out (its prediction
within the tolerance and its interval holding the measured value) it is kept as ``rival``
and the interval covers both forms' intervals (same simulation: 95%).

Extrapolation. Every prediction carries its factor (n / largest measured level); beyond
:data:`EXTRAPOLATION_LIMIT` it is flagged (``beyond_limit``) and the report must say so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._fields import float_or, int_or, text
from .prediction import BYTES_PER_DIM as BYTES_PER_DIM  # re-exported: fits.X for callers
from .prediction import DEFAULT_LEVEL as DEFAULT_LEVEL
from .prediction import EXTRAPOLATION_LIMIT as EXTRAPOLATION_LIMIT
from .prediction import DimRescale as DimRescale
from .prediction import HoldOut as HoldOut
from .prediction import Prediction as Prediction
from .prediction import extrapolation as extrapolation
from .prediction import json_number

FloatArray = npt.NDArray[np.float64]

# The acceptance: the held-out level within these of its prediction
BUILD_TOLERANCE = 0.15
BYTES_TOLERANCE = 0.15
QPS_TOLERANCE = 0.25
KNOB_TOLERANCE = 0.25


class TooFewLevels(ValueError):
    """No form could be fitted: fewer usable levels than its coefficients."""


# --- forms ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Form:
    log_space: bool  # regress ln y instead of y
    design: Callable[[FloatArray], FloatArray]  # n -> X (k x p)
    offset: Callable[[FloatArray], FloatArray] | None  # a fixed term in the fitted space
    params: Callable[[Sequence[float]], dict[str, float]]  # coefficients -> a, b


def _ones(n: FloatArray) -> FloatArray:
    return np.ones((len(n), 1))


def _with_log(n: FloatArray) -> FloatArray:
    return np.column_stack([np.ones(len(n)), np.log(n)])


def _with_n(n: FloatArray) -> FloatArray:
    return np.column_stack([np.ones(len(n)), n])


FORMS: dict[str, _Form] = {
    "n_log_n": _Form(True, _ones, lambda n: np.log(n * np.log(n)), lambda c: {"a": math.exp(c[0])}),
    "power": _Form(True, _with_log, None, lambda c: {"a": math.exp(c[0]), "b": c[1]}),
    "linear": _Form(False, _with_n, None, lambda c: {"a": c[0], "b": c[1]}),
    "log": _Form(False, _with_log, None, lambda c: {"a": c[0], "b": c[1]}),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fit:
    """One quantity's curve over the measured levels, with what it takes to predict and
    how well it predicted the held-out level.

    ``coefficients`` and ``unscaled_covariance`` ((X'X)^-1) live in the fitted space of
    ``form`` (see the module docstring); ``params`` are the curve's a and b.
    ``held_out_errors``: every form tried -> its held-out |relative error|; ``chosen_by`` is
    "holdout" (smallest error), "only_form" or "no_holdout" (too few levels to hold one
    out: the first form listed, the simpler, is kept).
    """

    quantity: str
    form: str
    coefficients: tuple[float, ...]
    unscaled_covariance: tuple[tuple[float, ...], ...]
    residual_scale: float  # s in the fitted space (log units in log space); NaN: dof 0
    dof: int
    points: int
    levels: tuple[int, ...]  # distinct row counts measured, ascending
    level: float = DEFAULT_LEVEL
    integer: bool = False  # predictions rounded up (a query knob)
    holdout: HoldOut | None = None
    held_out_errors: Mapping[str, float] = dataclasses.field(default_factory=dict)
    chosen_by: str = "only_form"
    dim_rescale: DimRescale | None = None
    rival: Fit | None = None  # the competing form, not rejected: the interval covers it too

    @property
    def params(self) -> dict[str, float]:
        return FORMS[self.form].params(self.coefficients)

    @property
    def largest(self) -> int:
        return max(self.levels)

    def predict(self, n: float) -> Prediction:
        """The value at ``n`` rows, its interval widened to the rival form's if any."""
        own = self._predict(n)
        if self.rival is None:
            return own
        other = dataclasses.replace(self.rival, dim_rescale=self.dim_rescale)._predict(n)
        return dataclasses.replace(own, low=min(own.low, other.low), high=max(own.high, other.high))

    def _predict(self, n: float) -> Prediction:
        form = FORMS[self.form]
        x = np.asarray([float(n)], dtype=np.float64)
        row = form.design(x)[0]
        mean = float(row @ np.asarray(self.coefficients))
        if form.offset is not None:
            mean += float(form.offset(x)[0])
        if self.dof > 0 and math.isfinite(self.residual_scale):
            from scipy import stats  # type: ignore[import-untyped, unused-ignore]

            cov = np.asarray(self.unscaled_covariance, dtype=np.float64)
            se = self.residual_scale * math.sqrt(1.0 + float(row @ cov @ row))
            half = float(stats.t.ppf(0.5 + self.level / 2.0, self.dof)) * se
        else:
            half = math.inf
        if form.log_space:
            value, low, high = (
                math.exp(v) if v < 700 else math.inf for v in (mean, mean - half, mean + half)
            )
        else:
            value, low, high = mean, mean - half, mean + half
        if self.dim_rescale is not None:
            shift = self.dim_rescale.bytes_per_row * float(n)
            value, low, high = value + shift, low + shift, high + shift
        value, low = max(value, 0.0), max(low, 0.0)  # every quantity here is >= 0
        if self.integer:
            value, low = (
                float(max(1, math.ceil(value - 1e-9))),
                float(max(1, math.ceil(low - 1e-9))),
            )
            high = float(math.ceil(high - 1e-9)) if math.isfinite(high) else high
        return Prediction(
            value=value,
            low=low,
            high=high,
            level=self.level,
            extrapolation=extrapolation(n, self.largest),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "form": self.form,
            "params": {k: json_number(v) for k, v in self.params.items()},
            "coefficients": list(self.coefficients),
            "unscaled_covariance": [list(r) for r in self.unscaled_covariance],
            "residual_scale": json_number(self.residual_scale),
            "dof": self.dof,
            "points": self.points,
            "levels": list(self.levels),
            "level": self.level,
            "integer": self.integer,
            "holdout": None if self.holdout is None else self.holdout.to_dict(),
            "held_out_errors": {k: json_number(v) for k, v in self.held_out_errors.items()},
            "chosen_by": self.chosen_by,
            "dim_rescale": None if self.dim_rescale is None else self.dim_rescale.to_dict(),
            "rival": None if self.rival is None else self.rival.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fit:
        form = text(data, "form", "linear")
        if form not in FORMS:
            raise ValueError(f"unknown fit form {form!r} (known: {', '.join(FORMS)})")
        holdout, rescale, rival = data.get("holdout"), data.get("dim_rescale"), data.get("rival")
        errors = data.get("held_out_errors")
        return cls(
            quantity=text(data, "quantity"),
            form=form,
            coefficients=tuple(float(c) for c in data.get("coefficients") or ()),
            unscaled_covariance=tuple(
                tuple(float(v) for v in r) for r in data.get("unscaled_covariance") or ()
            ),
            residual_scale=float_or(data, "residual_scale", math.nan),
            dof=int_or(data, "dof", 0),
            points=int_or(data, "points", 0),
            levels=tuple(int(v) for v in data.get("levels") or ()),
            level=float_or(data, "level", DEFAULT_LEVEL),
            integer=bool(data.get("integer")),
            holdout=HoldOut.from_dict(holdout) if isinstance(holdout, Mapping) else None,
            held_out_errors={
                str(k): float(v) if v is not None else math.inf for k, v in errors.items()
            }
            if isinstance(errors, Mapping)
            else {},
            chosen_by=text(data, "chosen_by", "only_form"),
            dim_rescale=DimRescale.from_dict(rescale) if isinstance(rescale, Mapping) else None,
            rival=Fit.from_dict(rival) if isinstance(rival, Mapping) else None,
        )


# --- fitting -------------------------------------------------------------------------------


def _regress(
    name: str, n: FloatArray, y: FloatArray, *, quantity: str, level: float, integer: bool
) -> Fit | None:
    """OLS of one form in its fitted space; None with fewer distinct levels than
    coefficients."""
    form = FORMS[name]
    x = form.design(n)
    if len(np.unique(n)) < x.shape[1]:
        return None
    target = np.log(y) if form.log_space else y.copy()
    if form.offset is not None:
        target = target - form.offset(n)
    pinv = np.linalg.pinv(x)  # via SVD: (X'X)^-1 = pinv pinv' without squaring cond(X)
    coefficients = pinv @ target
    dof = len(n) - x.shape[1]
    residuals = target - x @ coefficients
    scale = math.sqrt(float(residuals @ residuals) / dof) if dof > 0 else math.nan
    covariance = pinv @ pinv.T
    return Fit(
        quantity=quantity,
        form=name,
        coefficients=tuple(float(c) for c in coefficients),
        unscaled_covariance=tuple(tuple(float(v) for v in r) for r in covariance),
        residual_scale=scale,
        dof=dof,
        points=len(n),
        levels=tuple(sorted({int(v) for v in n})),
        level=level,
        integer=integer,
    )


def _holdout(
    name: str,
    n: FloatArray,
    y: FloatArray,
    *,
    quantity: str,
    level: float,
    integer: bool,
    tolerance: float,
) -> HoldOut | None:
    largest = float(np.max(n))
    keep = n < largest
    if not keep.any():
        return None
    fit = _regress(name, n[keep], y[keep], quantity=quantity, level=level, integer=integer)
    if fit is None:
        return None
    return HoldOut(
        rows=int(largest),
        predicted=fit.predict(largest),
        measured=float(np.mean(y[~keep])),
        tolerance=tolerance,
    )


def _columns(df: Any, column: str) -> tuple[FloatArray, FloatArray]:
    """The usable (rows, column) pairs. Every quantity fitted here is positive: NaN, or 0 (a
    level that measured nothing, e.g. a failed build's index_bytes in the export), is
    dropped."""
    for name in ("rows", column):
        if name not in df.columns:
            raise KeyError(f"the levels' frame has no column {name!r} (it has {list(df.columns)})")
    n = np.asarray(df["rows"], dtype=np.float64)
    y = np.asarray(df[column], dtype=np.float64)
    usable = np.isfinite(n) & np.isfinite(y) & (n > 1) & (y > 0)
    return n[usable], y[usable]


def fit_forms(
    df: Any,
    column: str,
    forms: Sequence[str],
    *,
    tolerance: float,
    level: float = DEFAULT_LEVEL,
    integer: bool = False,
) -> Fit:
    """Fit each of ``forms`` to ``df[column]`` over ``df["rows"]``; keep the one with the
    smallest held-out error (the first listed when none could hold a level out).

    Raises TooFewLevels when no form can be fitted."""
    n, y = _columns(df, column)
    kw: dict[str, Any] = {"quantity": column, "level": level, "integer": integer}
    fits: dict[str, Fit] = {}
    holdouts: dict[str, HoldOut] = {}
    for name in forms:
        fit = _regress(name, n, y, **kw)
        if fit is None:
            continue
        fits[name] = fit
        held = _holdout(name, n, y, tolerance=tolerance, **kw)
        if held is not None:
            holdouts[name] = held
    if not fits:
        levels = len(np.unique(n))
        raise TooFewLevels(
            f"{column}: {levels} usable measured level(s); the forms {', '.join(forms)} "
            "need at least 2 distinct row counts"
        )
    errors = {k: abs(h.relative_error) for k, h in holdouts.items()}
    if errors:
        best = min(errors, key=lambda k: (errors[k], list(forms).index(k)))
        chosen_by = "holdout" if len(fits) > 1 else "only_form"
    else:
        best = next(f for f in forms if f in fits)
        chosen_by = "no_holdout" if len(fits) > 1 else "only_form"
    # a competing form the hold-out did not reject: the data cannot tell the two apart
    standing = [
        name
        for name, held in holdouts.items()
        if name != best and held.within and held.inside_interval
    ]
    rival = None
    if standing:
        other = min(standing, key=lambda k: errors[k])
        rival = dataclasses.replace(fits[other], holdout=holdouts[other])
    return dataclasses.replace(
        fits[best],
        holdout=holdouts.get(best),
        held_out_errors=errors,
        chosen_by=chosen_by,
        rival=rival,
    )


def fit_build_seconds(
    df: Any, *, column: str = "build_seconds", tolerance: float = BUILD_TOLERANCE
) -> Fit:
    """Build time vs rows: a·n·ln n (HNSW's expected insert cost) or a free a·n^b."""
    return fit_forms(df, column, ("n_log_n", "power"), tolerance=tolerance)


def fit_index_bytes(
    df: Any, *, column: str = "index_bytes", tolerance: float = BYTES_TOLERANCE
) -> Fit:
    """Bytes vs rows, a + b·n (also for heap bytes: ``column="heap_bytes"``); see
    :func:`rescale_dim` for another dimension."""
    return fit_forms(df, column, ("linear",), tolerance=tolerance)


def rescale_dim(
    fit: Fit, *, measured_dim: int, target_dim: int, storage: str = "vector", copies: int = 1
) -> Fit:
    """``fit`` (bytes, linear) carried to ``target_dim`` by DimRescale's rule; the record
    says so. The interval and hold-out stay those measured at ``measured_dim``."""
    if fit.form != "linear":
        raise ValueError(f"only a linear bytes fit can be rescaled, not {fit.form!r}")
    if storage not in BYTES_PER_DIM:
        raise ValueError(f"storage {storage!r}: one of {', '.join(BYTES_PER_DIM)}")
    return dataclasses.replace(
        fit,
        dim_rescale=DimRescale(
            measured_dim=measured_dim,
            target_dim=target_dim,
            bytes_per_dim=BYTES_PER_DIM[storage],
            copies=copies,
        ),
    )


def fit_knob(df: Any, *, column: str = "knob", tolerance: float = KNOB_TOLERANCE) -> Fit:
    """The smallest ef_search (or probes) meeting the recall target vs rows: a + b·ln n or
    a·n^b, by held-out error; predictions rounded up to whole values."""
    return fit_forms(df, column, ("log", "power"), tolerance=tolerance, integer=True)


def fit_qps(df: Any, *, column: str = "qps_per_core", tolerance: float = QPS_TOLERANCE) -> Fit:
    """QPS per server core at the knob meeting the target vs rows: a·n^b. (Not a + b·ln n:
    a falling line in ln n crosses zero; over 8x of rows it is indistinguishable from the
    power law and would take the interval at 50x down to no throughput at all.)"""
    return fit_forms(df, column, ("power",), tolerance=tolerance)
