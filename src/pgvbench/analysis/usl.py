"""Gunther's Universal Scalability Law, fitted to throughput at several client counts.

    X(N) = gamma * N / (1 + alpha * (N - 1) + beta * N * (N - 1))

whose peak sits at N* = sqrt((1 - alpha) / beta).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

USL_PARAMETERS = 3  # gamma, alpha, beta
MIN_CLIENT_COUNTS = USL_PARAMETERS  # three parameters need at least three distinct N
# A curve with as many points as parameters passes through every one of them: its R² is
# 1 by construction and says nothing. Two residual degrees of freedom (points beyond the
# parameters) are the fewest that let a misfit show, so only then is a fit evidence.
MIN_RESIDUAL_DOF = 2
EVIDENCE_CLIENT_COUNTS = USL_PARAMETERS + MIN_RESIDUAL_DOF
# Several starting points: the USL surface has flat valleys where one start can stall.
_STARTS = ((0.01, 1e-4), (0.1, 1e-3), (0.3, 1e-2), (0.01, 1e-1))
# alpha or beta whose effect at the largest measured N is below this are taken as 0.
_NEGLIGIBLE = 1e-6

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class UslFit:
    """A fitted USL curve: X(N) = gamma*N / (1 + alpha(N-1) + beta*N(N-1))."""

    gamma: float  # λ in Gunther's notation: throughput of one client, no contention (QPS)
    alpha: float  # contention (serialised fraction), 0..1
    beta: float  # coherency (crosstalk) penalty, >= 0
    r_squared: float
    n_star: float  # clients at peak throughput; inf when beta == 0
    peak_qps: float  # X(N*), or the ceiling gamma/alpha when beta == 0 (inf if alpha == 0 too)
    points: int  # measurements the fit used
    client_counts: int  # distinct client counts among them

    @property
    def residual_dof(self) -> int:
        """Distinct client counts beyond the three parameters."""
        return self.client_counts - USL_PARAMETERS

    @property
    def evidence(self) -> bool:
        """Enough points that the fit could have missed them (see MIN_RESIDUAL_DOF);
        otherwise the curve is a sketch through the measurements, and its R² means nothing."""
        return self.residual_dof >= MIN_RESIDUAL_DOF

    def predict(self, clients: float) -> float:
        return usl(clients, self.gamma, self.alpha, self.beta)


def usl(clients: float, gamma: float, alpha: float, beta: float) -> float:
    n = clients
    return gamma * n / (1.0 + alpha * (n - 1.0) + beta * n * (n - 1.0))


def _usl_array(n: FloatArray, gamma: float, alpha: float, beta: float) -> FloatArray:
    return gamma * n / (1.0 + alpha * (n - 1.0) + beta * n * (n - 1.0))


def fit_usl(clients: Sequence[float], throughput: Sequence[float]) -> UslFit | None:
    """Least-squares USL fit; None with fewer than 3 distinct client counts or no convergence.

    Points with N < 1 or a non-positive / non-finite throughput are ignored.
    """
    pairs = [
        (float(n), float(x))
        for n, x in zip(clients, throughput, strict=True)
        if n >= 1 and math.isfinite(x) and x > 0
    ]
    if len({n for n, _ in pairs}) < MIN_CLIENT_COUNTS:
        return None
    n_arr = np.array([n for n, _ in pairs], dtype=np.float64)
    x_arr = np.array([x for _, x in pairs], dtype=np.float64)
    # Fit on a normalised scale so all three parameters are O(1) for the optimiser;
    # the best per-client throughput is close to gamma (exactly gamma at N = 1).
    scale = float(np.max(x_arr / n_arr))
    params = _best_fit(n_arr, x_arr / scale)
    if params is None:
        return None
    gamma, alpha, beta = params[0] * scale, params[1], params[2]
    n_max = float(np.max(n_arr))
    if beta * n_max * n_max < _NEGLIGIBLE:  # optimiser dust, not a measured penalty
        beta = 0.0
    if alpha * n_max < _NEGLIGIBLE:
        alpha = 0.0
    predicted = _usl_array(n_arr, gamma, alpha, beta)
    n_star = math.sqrt((1.0 - alpha) / beta) if beta > 0 else math.inf
    return UslFit(
        gamma=gamma,
        alpha=alpha,
        beta=beta,
        r_squared=_r_squared(x_arr, predicted),
        n_star=n_star,
        peak_qps=_peak(gamma, alpha, beta, n_star),
        points=len(pairs),
        client_counts=len({n for n, _ in pairs}),
    )


def _best_fit(n: FloatArray, x: FloatArray) -> tuple[float, float, float] | None:
    """The lowest-residual curve_fit over a few starts, or None if none converged."""
    # scipy's import costs ~0.3 s; only a report with load points pays it.
    from scipy.optimize import (  # type: ignore[import-untyped, unused-ignore]
        OptimizeWarning,
        curve_fit,
    )

    best: tuple[float, tuple[float, float, float]] | None = None
    for alpha0, beta0 in _STARTS:
        try:
            with warnings.catch_warnings():
                # 3 points for 3 parameters leave no covariance estimate; we do not use it.
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                found, _cov = curve_fit(
                    _usl_array,
                    n,
                    x,
                    p0=(1.0, alpha0, beta0),
                    bounds=([1e-12, 0.0, 0.0], [np.inf, 1.0, np.inf]),
                    maxfev=20_000,
                    ftol=1e-12,
                    xtol=1e-12,
                    gtol=1e-12,
                )
        except (RuntimeError, ValueError):  # no convergence / infeasible numbers
            continue
        params = (float(found[0]), float(found[1]), float(found[2]))
        if not all(math.isfinite(v) for v in params):
            continue
        sse = float(np.sum((x - _usl_array(n, *params)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, params)
    return None if best is None else best[1]


def _r_squared(observed: FloatArray, predicted: FloatArray) -> float:
    ss_res = float(np.sum((observed - predicted) ** 2))
    ss_tot = float(np.sum((observed - np.mean(observed)) ** 2))
    mean = float(np.mean(observed))
    if ss_tot <= (1e-9 * mean) ** 2 * len(observed):
        # flat throughput: R² is undefined; call a curve within 1% of it a perfect fit
        rms = math.sqrt(ss_res / len(observed))
        return 1.0 if rms <= 0.01 * mean else 0.0
    return 1.0 - ss_res / ss_tot


def _peak(gamma: float, alpha: float, beta: float, n_star: float) -> float:
    if math.isinf(n_star):
        return gamma / alpha if alpha > 0 else math.inf
    return usl(max(n_star, 1.0), gamma, alpha, beta)  # N* < 1: one client is already best
