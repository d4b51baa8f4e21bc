"""The objective value of an evaluation and how two compare (the search ranks builds with
it; measure.py picks a filtered build's iterative-scan mode with it)."""

from __future__ import annotations

from .records import Evaluation
from .spec import TuneSpec


def objective(spec: TuneSpec, ev: Evaluation) -> float | None:
    """The objective value of a measured build (None: nothing to compare)."""
    if spec.objective == "memory":
        return ev.memory_bytes / 2**20
    if ev.latency is None:
        return None
    if ev.relative is not None:  # timed interleaved with the reference build: comparable
        return ev.relative.value
    if spec.objective == "p99":
        return ev.latency.percentile(spec.latency)
    return ev.latency.qps


def better(spec: TuneSpec, a: float, b: float) -> bool:
    """Is objective value ``a`` better than ``b``?"""
    return a > b if spec.objective == "qps" else a < b


def best_of(spec: TuneSpec, evaluations: list[Evaluation]) -> Evaluation:
    """The best of several evaluations of one build: feasible before infeasible, then the
    objective (ties: the lower target percentile), then the higher recall bound."""

    def key(ev: Evaluation) -> tuple[int, float, float, float]:
        value = objective(spec, ev)
        signed = 0.0 if value is None else (-value if spec.objective == "qps" else value)
        lat = ev.latency.percentile(spec.latency) if ev.latency is not None else float("inf")
        low = ev.recall.low if ev.recall is not None and ev.recall.low is not None else 0.0
        return (0 if ev.feasible else 1, signed if ev.feasible else 0.0, lat, -low)

    return min(evaluations, key=key)
