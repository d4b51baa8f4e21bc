"""A synthetic twin: the clustered generator's parameters fitted so that its data is as
hard as a sample of the user's real vectors (median LID and median relative contrast).

The twin then generates the same distribution at any size, for capacity planning with
data that cannot leave production. ``dim`` and ``metric`` come from the sample; the fit
searches ``clusters``, ``spread`` and ``intrinsic_dim`` of ``generate_clustered``, and
``size_skew`` and ``tail_dof`` when the sample needs them (below).

Search: a coarse grid (clusters 1/10/100/1000 x intrinsic_dim 4/16/64/256 x spread
0.7/1.5, up to 32 points) finds the basin, then Nelder-Mead on (ln spread, ln
intrinsic_dim, ln clusters) refines it from the best grid point. Nelder-Mead because the
objective has no gradient (intrinsic_dim and clusters are integers, so the surface is
piecewise constant) but is deterministic (every evaluation generates with the same seed)
and smooth between steps; it reaches a 5% match in about 5-20 more evaluations where a
grid that fine in three parameters would need thousands. Three parameters for two
targets: the loss also weighs the p10 and p90 of both measures (1/4 each), which uses
the free parameter to match how many queries are easy, and the search stops at the
first candidate with the medians within the tolerance and the quantiles within twice
it. When three quarters of the budget (and the heterogeneous stage) found no candidate
with matching medians, the rest of the budget matches the medians alone. Each evaluation generates
``fit_rows`` rows (the target is measured on a sample of the same size: LID and RC
depend on n).

Heterogeneity: with clusters, spread and intrinsic_dim alone every cluster is alike, so
the twin's LID varies little between queries (p90/p10 about 1.3-1.5), while real-like
data with Zipf-sized, heavy-tailed clusters spreads far more (p90/p10 up to 4), and
medians then matched while recall at a low ef_search did not (0.33 apart at ef_search
10 in bench/twin_fidelity.py). When the sample's LID p90/p10 is more than 15% wider
than the best homogeneous candidate's, a third stage fits generate_clustered's
size_skew (Zipf cluster sizes) and tail_dof (Student-t per-point noise) too: a small
grid (10 and 50 clusters x tail_dof 3 and 6 x two ranks, size_skew 1) around the best
homogeneous candidate, then Nelder-Mead on all five (tails as 1/tail_dof, 0 Gaussian).
The quantiles in the loss are what it fits. scale_spread (per-cluster spread) is not
fitted: it moves contrast far more than LID's spread (tests/unit/
test_generator_heterogeneity.py). Budget: ``heterogeneous_evaluations`` (default 90) on
top of ``max_evaluations``, spent only by samples that need it (a 20k x 384 fit then
takes about 2.5 min instead of 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..analysis.difficulty import Difficulty, measure_difficulty
from ..errors import DatasetError
from ..metrics import Metric
from .synthetic import MAX_SIZE_SKEW, MAX_TAIL_DOF, MIN_TAIL_DOF, generate_clustered

DEFAULT_FIT_ROWS = 20_000
DEFAULT_MAX_EVALUATIONS = 60
#: Candidates the heterogeneous stage may add on top (only samples that need it pay).
DEFAULT_HETEROGENEOUS_EVALUATIONS = 90
#: The fit stops within 5%: the acceptance is 10%, and a twin generated with another seed
#: moves its medians by a few percent.
DEFAULT_TOLERANCE = 0.05
#: Queries and mean-distance sample of each measurement (target and twin alike).
FIT_QUERIES = 400
FIT_BASE_SAMPLE = 5_000
_K = 100
_QUANTILE_WEIGHT = 0.25
_SPREAD_BOUNDS = (0.02, 50.0)
_GRID_SPREADS = (0.7, 1.5)
_GRID_RANKS = (4, 16, 64, 256)
_GRID_CLUSTERS = (1, 10, 100, 1000)
#: The heterogeneous stage starts when the sample's LID p90/p10 is this much wider than
#: the best homogeneous candidate's.
_WIDER = 1.15
_HET_CLUSTERS = (10, 50)
_HET_TAILS = (3.0, 6.0)
_HET_SKEW = 1.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwinParams:
    """generate_clustered's free parameters."""

    clusters: int
    spread: float
    intrinsic_dim: int
    # heterogeneity (0: none, the generator's defaults); twin.json files of earlier
    # versions have none of them
    size_skew: float = 0.0
    tail_dof: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "spread": self.spread,
            "intrinsic_dim": self.intrinsic_dim,
            "size_skew": self.size_skew,
            "tail_dof": self.tail_dof,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TwinParams:
        return cls(
            clusters=int(data["clusters"]),
            spread=float(data["spread"]),
            intrinsic_dim=int(data["intrinsic_dim"]),
            size_skew=float(data.get("size_skew", 0.0)),
            tail_dof=float(data.get("tail_dof", 0.0)),
        )

    def generator_args(self) -> dict[str, Any]:
        """generate_clustered's keyword arguments for these parameters."""
        return {
            "clusters": self.clusters,
            "spread": self.spread,
            "intrinsic_dim": self.intrinsic_dim,
            "size_skew": self.size_skew,
            "tail_dof": self.tail_dof,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evaluation:
    """One generated candidate and its measured medians."""

    params: TwinParams
    lid: float  # medians
    rc: float
    stage: str  # "grid" | "nelder-mead" | "heterogeneous" (its grid)
    lid_p10: float = math.nan
    lid_p90: float = math.nan
    rc_p10: float = math.nan
    rc_p90: float = math.nan

    @classmethod
    def of(cls, params: TwinParams, found: Difficulty, stage: str) -> Evaluation:
        lid, rc = found.lid, found.rc
        return cls(
            params=params,
            lid=lid.median,
            rc=rc.median,
            stage=stage,
            lid_p10=lid.p10,
            lid_p90=lid.p90,
            rc_p10=rc.p10,
            rc_p90=rc.p90,
        )

    def to_dict(self) -> dict[str, Any]:
        values = ("lid", "rc", "lid_p10", "lid_p90", "rc_p10", "rc_p90")
        return {
            **self.params.to_dict(),
            **{name: _r(getattr(self, name)) for name in values},
            "stage": self.stage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        def value(name: str) -> float:
            raw = data.get(name)
            return math.nan if raw is None else float(raw)

        return cls(
            params=TwinParams.from_dict(data),
            lid=value("lid"),
            rc=value("rc"),
            stage=str(data["stage"]),
            lid_p10=value("lid_p10"),
            lid_p90=value("lid_p90"),
            rc_p10=value("rc_p10"),
            rc_p90=value("rc_p90"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwinFit:
    """The fit: target and twin medians, residuals, parameters, the search's history."""

    metric: str
    dim: int
    sample_rows: int
    fit_rows: int
    seed: int
    target: Difficulty
    twin: Difficulty  # the fitted parameters, generated with the fit's seed
    check: Difficulty  # the same parameters, generated with another seed
    params: TwinParams
    evaluations: tuple[Evaluation, ...]
    tolerance: float
    seconds: float

    @property
    def residuals(self) -> dict[str, float]:
        """Relative residuals (twin / target - 1) of the medians, fit and check."""
        return {
            "lid": self.twin.lid.median / self.target.lid.median - 1,
            "rc": self.twin.rc.median / self.target.rc.median - 1,
            "check_lid": self.check.lid.median / self.target.lid.median - 1,
            "check_rc": self.check.rc.median / self.target.rc.median - 1,
        }

    def matched(self, within: float) -> bool:
        """Both medians within ``within`` (relative), for the fit and the check seed."""
        return all(abs(v) <= within for v in self.residuals.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "dim": self.dim,
            "sample_rows": self.sample_rows,
            "fit_rows": self.fit_rows,
            "seed": self.seed,
            "target": self.target.to_dict(),
            "twin": self.twin.to_dict(),
            "check": self.check.to_dict(),
            "params": self.params.to_dict(),
            "residuals": {k: _r(v) for k, v in self.residuals.items()},
            "evaluations": [e.to_dict() for e in self.evaluations],
            "tolerance": self.tolerance,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TwinFit:
        return cls(
            metric=str(data["metric"]),
            dim=int(data["dim"]),
            sample_rows=int(data["sample_rows"]),
            fit_rows=int(data["fit_rows"]),
            seed=int(data["seed"]),
            target=Difficulty.from_dict(data["target"]),
            twin=Difficulty.from_dict(data["twin"]),
            check=Difficulty.from_dict(data["check"]),
            params=TwinParams.from_dict(data["params"]),
            evaluations=tuple(Evaluation.from_dict(e) for e in data["evaluations"]),
            tolerance=float(data["tolerance"]),
            seconds=float(data["seconds"]),
        )


class _Done(Exception):
    """Raised inside the optimiser once a candidate is within the tolerance."""


@dataclasses.dataclass
class _Search:
    """The target, the evaluation cache and budget shared by the grid and the optimiser."""

    dim: int
    metric: Metric
    rows: int
    seed: int
    target: Difficulty
    budget: int
    tolerance: float
    progress: Callable[[Evaluation, int], None] | None
    medians_only: bool = False  # the fallback phase: match the medians, nothing else
    seen: dict[TwinParams, Evaluation] = dataclasses.field(default_factory=dict)
    history: list[Evaluation] = dataclasses.field(default_factory=list)

    def measure(self, params: TwinParams, *, seed: int) -> Difficulty:
        data = generate_clustered(
            n=self.rows,
            dim=self.dim,
            n_queries=1,
            seed=seed,
            metric=self.metric,
            **params.generator_args(),
        )
        return _measure(data.base, self.metric, self.seed)

    def evaluate(self, params: TwinParams, stage: str) -> Evaluation:
        if params in self.seen:
            return self.seen[params]
        if len(self.history) >= self.budget:
            raise _Done
        found = self.measure(params, seed=self.seed)
        result = Evaluation.of(params, found, stage)
        self.seen[params] = result
        self.history.append(result)
        if self.progress is not None:
            self.progress(result, self.budget)
        return result

    def loss(self, e: Evaluation) -> float:
        """Squared log ratios of the medians (weight 1) and of the p10 and p90 (weight
        1/4 each); RC through RC - 1, its distance from "no contrast". The quantiles use
        the third parameter the medians leave free: two twins with equal medians differ
        in how many queries are easy, and recall at a low ef_search follows that."""
        t = self.target
        pairs = (
            (e.lid, t.lid.median, 1.0, 0.0),
            (e.rc, t.rc.median, 1.0, 1.0),
            (e.lid_p10, t.lid.p10, _QUANTILE_WEIGHT, 0.0),
            (e.lid_p90, t.lid.p90, _QUANTILE_WEIGHT, 0.0),
            (e.rc_p10, t.rc.p10, _QUANTILE_WEIGHT, 1.0),
            (e.rc_p90, t.rc.p90, _QUANTILE_WEIGHT, 1.0),
        )
        total = 0.0
        for mine, theirs, weight, offset in pairs[:2] if self.medians_only else pairs:
            if not (math.isfinite(mine) and math.isfinite(theirs)) or mine - offset <= 0:
                return math.inf
            ratio = math.log(max(mine - offset, 1e-9) / max(theirs - offset, 1e-9))
            total += weight * ratio * ratio
        return total

    def close(self, e: Evaluation) -> bool:
        """Medians within the tolerance; the quantiles within twice it."""
        if self.medians_only:
            return self.medians_close(e)
        t = self.target
        pairs = (
            (e.lid, t.lid.median, 1.0),
            (e.rc, t.rc.median, 1.0),
            (e.lid_p10, t.lid.p10, 2.0),
            (e.lid_p90, t.lid.p90, 2.0),
            (e.rc_p10, t.rc.p10, 2.0),
            (e.rc_p90, t.rc.p90, 2.0),
        )
        return all(abs(mine / theirs - 1) <= f * self.tolerance for mine, theirs, f in pairs)

    def medians_close(self, e: Evaluation) -> bool:
        t = self.target
        return (
            abs(e.lid / t.lid.median - 1) <= self.tolerance
            and abs(e.rc / t.rc.median - 1) <= self.tolerance
        )

    def best(self) -> Evaluation:
        """The lowest loss among candidates whose medians match, else overall."""
        matching = [e for e in self.history if self.medians_close(e)]
        return min(matching or self.history, key=self.loss)


def fit_twin(
    sample: np.ndarray,
    metric: Metric,
    *,
    fit_rows: int = DEFAULT_FIT_ROWS,
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS,
    heterogeneous_evaluations: int = DEFAULT_HETEROGENEOUS_EVALUATIONS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    progress: Callable[[Evaluation, int], None] | None = None,
) -> TwinFit:
    """Fit generate_clustered to ``sample`` (rows x dim) so that its median LID and RC
    match; see the module docstring for the search."""
    started = time.perf_counter()
    metric = Metric(metric)
    sample = np.asarray(sample)
    if sample.ndim != 2 or sample.shape[0] < 2 * _K or not np.isfinite(sample).all():
        raise DatasetError(
            f"twin: the sample must be a finite 2-D array of at least {2 * _K} rows "
            f"(the LID estimate uses {_K} neighbours), got shape {sample.shape}"
        )
    rows = min(int(sample.shape[0]), fit_rows)
    subset = sample
    if sample.shape[0] > rows:  # LID and RC depend on n: the twin is fitted at this size
        pick = np.sort(np.random.default_rng(seed).choice(sample.shape[0], rows, replace=False))
        subset = sample[pick]
    target = _measure(np.ascontiguousarray(subset, dtype=np.float32), metric, seed)
    if not (math.isfinite(target.lid.median) and math.isfinite(target.rc.median)):
        raise DatasetError(
            "twin: the sample's LID or relative contrast is undefined (most rows have an "
            "exact duplicate); remove duplicate vectors first"
        )
    search = _Search(
        dim=int(sample.shape[1]),
        metric=metric,
        rows=rows,
        seed=seed,
        target=target,
        budget=max(1, max_evaluations * 3 // 4),
        tolerance=tolerance,
        progress=progress,
    )
    with contextlib.suppress(_Done):
        _grid(search)
        _refine(search)
    if heterogeneous_evaluations > 0 and _wants_heterogeneity(search):
        search.budget = len(search.history) + heterogeneous_evaluations
        with contextlib.suppress(_Done):
            _heterogeneous(search)
    if not any(search.medians_close(e) for e in search.history):
        # the quantiles pulled the search away from the medians, which the acceptance
        # is about: the rest of the budget matches the medians alone
        rest = max_evaluations - max_evaluations * 3 // 4
        search.budget, search.medians_only = max(1, len(search.history) + rest), True
        with contextlib.suppress(_Done):
            _refine(search)
    best = search.best()
    twin = search.measure(best.params, seed=seed)
    check = search.measure(best.params, seed=seed + 1)
    return TwinFit(
        metric=metric.value,
        dim=search.dim,
        sample_rows=int(sample.shape[0]),
        fit_rows=rows,
        seed=seed,
        target=target,
        twin=twin,
        check=check,
        params=best.params,
        evaluations=tuple(search.history),
        tolerance=tolerance,
        seconds=time.perf_counter() - started,
    )


def _measure(base: np.ndarray, metric: Metric, seed: int) -> Difficulty:
    return measure_difficulty(
        base, metric, k=_K, max_queries=FIT_QUERIES, base_sample=FIT_BASE_SAMPLE, seed=seed
    )


def _grid(search: _Search) -> None:
    clusters = [c for c in _GRID_CLUSTERS if c <= _max_clusters(search.rows)]
    ranks = sorted({min(r, search.dim) for r in _GRID_RANKS})
    for c in clusters:
        for r in ranks:
            for s in _GRID_SPREADS:
                found = search.evaluate(TwinParams(clusters=c, spread=s, intrinsic_dim=r), "grid")
                if search.close(found):
                    raise _Done


def _refine(search: _Search) -> None:
    """Nelder-Mead on (ln spread, ln intrinsic_dim, ln clusters) from the best grid points
    of each cluster count, until close or out of budget. Clusters is searched too: at
    small n the grid's decades of clusters can straddle the target."""
    from scipy import optimize  # type: ignore[import-untyped, unused-ignore]  # ~0.3 s

    by_clusters: dict[int, Evaluation] = {}
    for e in sorted(search.history, key=search.loss):
        by_clusters.setdefault(e.params.clusters, e)
    most = _max_clusters(search.rows)

    current = [TwinParams(clusters=1, spread=1.0, intrinsic_dim=1)]

    def objective(x: np.ndarray) -> float:
        # the start's heterogeneity (size_skew, tail_dof) is kept: the medians-only
        # fallback can start from a heterogeneous candidate
        params = _params(x, most, search.dim)
        params = dataclasses.replace(
            params,
            size_skew=current[0].size_skew if params.clusters > 1 else 0.0,
            tail_dof=current[0].tail_dof,
        )
        found = search.evaluate(params, "nelder-mead")
        if search.close(found):
            raise _Done
        return search.loss(found)

    for start in sorted(by_clusters.values(), key=search.loss):
        p = current[0] = start.params
        x0 = np.log([p.spread, p.intrinsic_dim, p.clusters])
        steps = np.diag([0.25, 0.35, 0.7])  # a clusters step of 2x, others ~30%
        optimize.minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={"initial_simplex": np.vstack([x0, x0 + steps]), "xatol": 0.01, "fatol": 1e-4},
        )


def _wants_heterogeneity(search: _Search) -> bool:
    """The sample's LID spreads over queries wider than the best homogeneous twin's."""
    if not search.history or search.close(search.best()):
        return False
    best, t = search.best(), search.target.lid
    if not all(math.isfinite(v) and v > 0 for v in (best.lid_p10, best.lid_p90, t.p10, t.p90)):
        return False
    return t.p90 / t.p10 > _WIDER * best.lid_p90 / best.lid_p10


def _heterogeneous(search: _Search) -> None:
    """Zipf cluster sizes and Student-t tails (generate_clustered's size_skew and
    tail_dof): a small grid around the best homogeneous candidate, then Nelder-Mead on all
    five parameters (tails as 1/tail_dof, so that 0 is Gaussian and the scale is smooth)."""
    from scipy import optimize  # type: ignore[import-untyped, unused-ignore]

    base = search.best().params
    most = _max_clusters(search.rows)
    clusters = sorted({min(c, most) for c in _HET_CLUSTERS if min(c, most) > 1})
    for c in clusters:
        for tails in _HET_TAILS:
            for rank in sorted({base.intrinsic_dim, min(search.dim, base.intrinsic_dim * 3)}):
                params = dataclasses.replace(
                    base, clusters=c, intrinsic_dim=rank, size_skew=_HET_SKEW, tail_dof=tails
                )
                if search.close(search.evaluate(params, "heterogeneous")):
                    raise _Done

    def objective(x: np.ndarray) -> float:
        found = search.evaluate(_het_params(x, most, search.dim), "nelder-mead")
        if search.close(found):
            raise _Done
        return search.loss(found)

    starts = sorted((e for e in search.history if e.params.tail_dof > 0), key=search.loss)
    for start in starts[:3]:
        p = start.params
        x0 = np.array(
            [
                math.log(p.spread),
                math.log(p.intrinsic_dim),
                math.log(p.clusters),
                p.size_skew,
                1.0 / p.tail_dof,
            ]
        )
        steps = np.diag([0.25, 0.35, 0.7, 0.3, 0.08])
        optimize.minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={"initial_simplex": np.vstack([x0, x0 + steps]), "xatol": 0.01, "fatol": 1e-4},
        )


def _het_params(x: np.ndarray, most_clusters: int, dim: int) -> TwinParams:
    homogeneous = _params(x[:3], most_clusters, dim)
    skew = float(np.clip(float(x[3]), 0.0, MAX_SIZE_SKEW)) if homogeneous.clusters > 1 else 0.0
    heaviness = float(np.clip(float(x[4]), 0.0, 1.0 / MIN_TAIL_DOF))
    tails = 0.0 if heaviness < 1.0 / MAX_TAIL_DOF else round(1.0 / heaviness, 3)
    return dataclasses.replace(homogeneous, size_skew=round(skew, 3), tail_dof=tails)


def _max_clusters(rows: int) -> int:
    """At least 2k rows per cluster, so a query's k neighbours can lie in its own cluster."""
    return max(1, rows // (2 * _K))


def _params(x: np.ndarray, most_clusters: int, dim: int) -> TwinParams:
    low, high = _SPREAD_BOUNDS
    spread = float(np.clip(math.exp(float(x[0])), low, high))
    rank = int(np.clip(round(math.exp(min(float(x[1]), 10.0))), 1, dim))
    clusters = int(np.clip(round(math.exp(min(float(x[2]), 12.0))), 1, most_clusters))
    return TwinParams(clusters=clusters, spread=round(spread, 4), intrinsic_dim=rank)


def _r(value: float) -> float | None:
    return float(f"{value:.5g}") if math.isfinite(value) else None
