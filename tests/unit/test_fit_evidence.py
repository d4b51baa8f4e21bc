"""A fit is evidence only with residual degrees of freedom: the USL (3 parameters) through
3 client counts is exact by construction and is shown as a sketch, without R², and the
pool advice does not rest on it; through 6 client counts it is evidence with its R²."""

from __future__ import annotations

from pathlib import Path

from pgvbench.analysis.pool_advice import recommend_pool_size
from pgvbench.analysis.scalability import load_series, sketch_text
from pgvbench.analysis.usl import fit_usl, usl
from pgvbench.report.load_plots import plot_throughput_vs_clients
from pgvbench.report.markdown import to_markdown
from pgvbench.report.sections.concurrency import concurrency_section
from pgvbench.results import Latency, LoadPoint, Results
from study_support import results_for

SLO_MS = 50.0


def _point(clients: int, qps: float) -> LoadPoint:
    mean = clients / qps * 1000.0
    return LoadPoint(
        engine="python", index="hnsw(m=16,ef_construction=64)", query_params={},
        strategy="direct", pool={}, clients=clients, mode="closed", target_rate=None,
        arrival=None, think_time_ms=0.0, qps=qps, operations=int(qps * 10), errors=0,
        dropped=0, duration_s=10.0, warmup_s=1.0,
        latency_ms=Latency(p50=mean, p95=mean * 1.5, p99=mean * 2, p999=mean * 3,
                           max=mean * 4, mean=mean),
    )  # fmt: skip


def _results(clients: tuple[int, ...]) -> Results:
    results = results_for(spec={"load": {"slo_p99_ms": SLO_MS}})
    # a little noise so the 6-point fit is not exact either
    wobble = (1.0, 0.98, 1.03, 0.99, 1.02, 0.97)
    results.load_points = [
        _point(n, usl(n, 900.0, 0.06, 0.004) * w) for n, w in zip(clients, wobble, strict=False)
    ]
    return results


def test_three_points_for_three_parameters_is_a_sketch() -> None:
    fit = fit_usl([1, 2, 4], [100.0, 180.0, 300.0])
    assert fit is not None
    assert fit.r_squared > 0.999  # exact by construction: this is why R² is not shown
    assert (fit.client_counts, fit.residual_dof, fit.evidence) == (3, 0, False)
    assert sketch_text(fit) == "sketch: 3 points for 3 parameters"
    # four points leave one degree of freedom: still a sketch
    four = fit_usl([1, 2, 4, 8], [100.0, 180.0, 300.0, 380.0])
    assert four is not None and not four.evidence


def test_six_points_are_evidence() -> None:
    clients = [1, 2, 4, 8, 16, 32]
    fit = fit_usl(clients, [usl(n, 900.0, 0.06, 0.004) for n in clients])
    assert fit is not None
    assert (fit.client_counts, fit.residual_dof, fit.evidence) == (6, 3, True)


def test_report_shows_a_sketch_without_r2_and_advice_does_not_rest_on_it(tmp_path: Path) -> None:
    results = _results((1, 2, 4))
    series = load_series(results.load_points)
    assert series[0].fit is not None and series[0].evidence_fit is None
    md = to_markdown(concurrency_section(results, []))
    row = next(line for line in md.splitlines() if line.startswith("| direct"))
    assert "sketch: 3 points for 3 parameters: not evidence" in row
    assert "1.000" not in row  # no R² column value for an exact curve
    advice = recommend_pool_size(results, SLO_MS)
    assert "R²" not in advice and "N*" not in advice
    assert "sketch: 3 points for 3 parameters, not evidence" in advice
    assert plot_throughput_vs_clients(results, tmp_path / "t.png") is not None


def test_report_shows_an_evidence_fit_with_r2() -> None:
    results = _results((1, 2, 4, 8, 16, 32))
    series = load_series(results.load_points)
    fit = series[0].evidence_fit
    assert fit is not None
    md = to_markdown(concurrency_section(results, []))
    row = next(line for line in md.splitlines() if line.startswith("| direct"))
    assert f"{fit.r_squared:.3f}" in row and "sketch" not in row
    assert f"R² {fit.r_squared:.2f}" in recommend_pool_size(results, SLO_MS)
