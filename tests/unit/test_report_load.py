"""Report stage for concurrency tests: figures, the Concurrency section, validity, round trip."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pgvbench.analysis.pool_advice import recommend_pool_size
from pgvbench.analysis.usl import usl
from pgvbench.report.load_plots import (
    plot_load_timeseries,
    plot_p99_vs_clients,
    plot_pool_wait,
    plot_throughput_vs_clients,
)
from pgvbench.report.markdown import md_escape
from pgvbench.report.render import ReportFiles, render_report
from pgvbench.results import (
    Environment,
    HostInfo,
    IndexBuild,
    Latency,
    LoadPoint,
    Recall,
    Results,
    SweepPoint,
    TimeSlice,
    load_results,
    write_results,
)

Plot = Callable[[Results, Path], Path | None]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HNSW = "hnsw(m=16,ef_construction=64)"
PARAMS = {"hnsw.ef_search": 40}
CLIENTS = (2, 4, 8, 16, 32)
SLO_MS = 10.0
LOAD_FIGURES = (
    "throughput_vs_clients.png",
    "p99_vs_clients.png",
    "pool_wait.png",
    "load_timeseries.png",
)
POOL = {"min_size": 8, "max_size": 8, "timeout_s": 30.0, "max_waiting": 0}


# --- building realistic load results ----------------------------------------------------


def _latency(mean_ms: float, tail: float) -> Latency:
    """A right-skewed distribution around ``mean_ms``; ``tail`` scales p99 / mean."""
    return Latency(
        p50=mean_ms * 0.85,
        p95=mean_ms * (1 + tail * 0.5),
        p99=mean_ms * (1 + tail),
        p999=mean_ms * (1 + tail * 2),
        max=mean_ms * (1 + tail * 4),
        mean=mean_ms,
    )


def _slices(qps: float, p99: float, seconds: int = 10) -> list[TimeSlice]:
    # a deterministic wobble, and one slow second in the middle
    return [
        TimeSlice(
            t=t,
            ops=int(qps * (1 + 0.03 * math.sin(t))),
            p99_ms=p99 * (1.6 if t == seconds // 2 else 1.0),
        )
        for t in range(seconds)
    ]


def load_point(
    clients: int,
    qps: float,
    *,
    strategy: str = "direct",
    engine: str = "python",
    pool: dict[str, Any] | None = None,
    tail: float = 1.5,
    mean_ms: float | None = None,
    **changes: Any,
) -> LoadPoint:
    """A closed-loop point whose mean latency obeys Little's law unless told otherwise."""
    mean = mean_ms if mean_ms is not None else clients / qps * 1000.0
    latency = _latency(mean, tail)
    point = LoadPoint(
        engine=engine,
        index=HNSW,
        query_params=dict(PARAMS),
        strategy=strategy,
        pool=dict(pool or {}),
        clients=clients,
        mode="closed",
        target_rate=None,
        arrival=None,
        think_time_ms=0.0,
        qps=qps,
        operations=int(qps * 10),
        errors=0,
        dropped=0,
        duration_s=10.0,
        warmup_s=2.0,
        latency_ms=latency,
        client_cpu_cores=min(1.9, qps / 3000) if engine == "python" else 0.2,
        server_cpu_cores=min(6.5, qps / 1000),
        timeseries=_slices(qps, latency.p99),
    )
    return dataclasses.replace(point, **changes)


def _direct() -> list[LoadPoint]:
    points = []
    for n in CLIENTS:
        qps = usl(n, 900.0, 0.06, 0.004)
        # many server connections: the tail grows with each one added
        points.append(load_point(n, qps, tail=1.0 + 0.12 * n))
    points[-1] = dataclasses.replace(
        points[-1], suspect=True, notes=["client CPU 1.9 of 2 cores: client-bound"]
    )
    return points


def _pooled() -> list[LoadPoint]:
    """psycopg_pool max_size=8: the server sees at most 8 connections; the rest queue."""
    points = []
    for n in CLIENTS:
        # past 8 clients a little more: a queued request is handed over without a gap
        qps = usl(min(n, 8), 950.0, 0.05, 0.003) * (1 + 0.01 * math.log2(max(n, 8) / 8))
        mean = n / qps * 1000.0
        service = min(n, 8) / qps * 1000.0
        wait_ms = (mean - service) * qps * 10
        stats = {"requests_num": int(qps * 10), "requests_wait_ms": int(wait_ms)}
        points.append(
            load_point(n, qps, strategy="psycopg_pool", pool=POOL, tail=1.2, pool_stats=stats)
        )
    return points


def _per_op() -> list[LoadPoint]:
    points = [
        load_point(n, qps, strategy="connect_per_op", tail=1.0)
        for n, qps in zip(CLIENTS, (260.0, 380.0, 410.0, 400.0, 395.0), strict=True)
    ]
    points[-1] = dataclasses.replace(
        points[-1],
        valid=False,
        errors=412,
        error_messages={"connection refused: too many clients already": 412},
        notes=["412 errors (10%) exceed the 0.1% limit"],
    )
    return points


def _pgbench() -> list[LoadPoint]:
    return [load_point(n, usl(n, 1050.0, 0.05, 0.003), engine="pgbench", tail=0.9) for n in CLIENTS]


def _with_fidelity(python: list[LoadPoint], reference: list[LoadPoint]) -> list[LoadPoint]:
    by_clients = {p.clients: p.qps for p in reference}
    return [dataclasses.replace(p, fidelity=p.qps / by_clients[p.clients]) for p in python]


def make_load_results() -> Results:
    reference = _pgbench()
    points = [*_with_fidelity(_direct(), reference), *_pooled(), *_per_op(), *reference]
    sweep = SweepPoint(
        index=HNSW,
        index_kind="hnsw",
        index_params={"m": 16, "ef_construction": 64},
        query_params=dict(PARAMS),
        k=10,
        concurrency=1,
        recall=Recall(mean=0.96, p5=0.9, min=0.8),
        qps=1200.0,
        latency_ms=_latency(0.8, 1.5),
        operations=3600,
        errors=0,
        duration_s=3.0,
        warmup_s=1.0,
        valid=True,
    )
    return Results(
        run_name="load-demo",
        status="complete",
        started_at="2025-03-01T10:00:00+00:00",
        finished_at="2025-03-01T10:20:00+00:00",
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={},
            host=HostInfo(cpu_model="Test CPU", cores=4, ram_bytes=16 * 2**30, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit="0123abc",
            python_version="3.11.9",
        ),
        spec={"query": {"target_recall": 0.95}, "load": {"slo_p99_ms": SLO_MS}},
        indexes=[
            IndexBuild(
                label=HNSW,
                kind="hnsw",
                params={"m": 16, "ef_construction": 64},
                build_seconds=20.0,
                index_bytes=80_000_000,
                build_settings={},
            )
        ],
        runs=[sweep],
        load_points=points,
    )


def _no_load(results: Results) -> Results:
    return dataclasses.replace(results, load_points=[])


# --- figures ------------------------------------------------------------------------------

PLOTS: list[Plot] = [
    plot_throughput_vs_clients,
    plot_p99_vs_clients,
    plot_pool_wait,
    plot_load_timeseries,
]


@pytest.mark.parametrize("plot", PLOTS)
def test_each_load_plot_writes_a_png(plot: Plot, tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    assert plot(make_load_results(), path) == path
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


@pytest.mark.parametrize("plot", PLOTS)
def test_load_plots_skip_results_without_load_points(plot: Plot, tmp_path: Path) -> None:
    assert plot(_no_load(make_load_results()), tmp_path / "figure.png") is None
    assert not list(tmp_path.iterdir())


def test_pool_wait_plot_skips_runs_without_pool_stats(tmp_path: Path) -> None:
    results = make_load_results()
    results.load_points = [dataclasses.replace(p, pool_stats=None) for p in results.load_points]
    assert plot_pool_wait(results, tmp_path / "pool.png") is None
    assert plot_throughput_vs_clients(results, tmp_path / "x.png") is not None


def test_timeseries_plot_skips_points_without_slices(tmp_path: Path) -> None:
    results = make_load_results()
    results.load_points = [dataclasses.replace(p, timeseries=[]) for p in results.load_points]
    assert plot_load_timeseries(results, tmp_path / "ts.png") is None


def test_throughput_plot_survives_a_single_client_count(tmp_path: Path) -> None:
    results = make_load_results()
    results.load_points = [p for p in results.load_points if p.clients == 8]
    assert plot_throughput_vs_clients(results, tmp_path / "x.png") is not None
    assert plot_p99_vs_clients(results, tmp_path / "p.png") is not None


# --- the report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    """One render of the sample shared by the read-only checks (rendering takes seconds)."""
    return render_report(make_load_results(), tmp_path_factory.mktemp("load-report"))


def test_render_writes_all_load_figures(rendered: ReportFiles) -> None:
    files = rendered
    names = [p.name for p in files.images]
    for name in LOAD_FIGURES:
        assert name in names
        assert (files.md.parent / name).read_bytes().startswith(PNG_MAGIC)
    md = files.md.read_text(encoding="utf-8")
    for name in LOAD_FIGURES:
        assert f"]({name})" in md
    assert files.html.read_text(encoding="utf-8").count("data:image/png;base64,") == len(names)


def test_concurrency_section_in_markdown(rendered: ReportFiles) -> None:
    results = make_load_results()
    md = rendered.md.read_text(encoding="utf-8")
    section = md.split("## Concurrency", 1)[1].split("\n## ", 1)[0]
    first = section.strip().splitlines()[0]
    assert first == f"**{md_escape(recommend_pool_size(results, SLO_MS))}**"  # bold, first
    assert first.startswith("**Use psycopg_pool max_size=8 (≈ 2×cores): it sustained")
    assert "≤ SLO 10.0 ms" in first
    assert "Highest throughput within p99 ≤ SLO 10.0 ms: psycopg_pool max_size=8 at" in section
    assert "pgbench reference:" in section
    for heading in ("### Load points", "### Universal Scalability Law", "### Little's law"):
        assert heading in section
    # 20 load points, one USL row per python series, Little rows for every point
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == (1 + 20) + (1 + 3) + (1 + 20)
    assert any("⚠ INVALID" in r and "connection refused" in r for r in rows)
    assert any("⚠ suspect" in r and "client-bound" in r for r in rows)
    assert any("max_size=8, min_size=8, timeout_s=30, max_waiting=0" in r for r in rows)
    assert "Queue wait p99 ms" not in section  # closed loop only: no open-loop columns


def test_usl_table_reports_fits_per_series(rendered: ReportFiles) -> None:
    md = rendered.md.read_text(encoding="utf-8")
    usl_part = md.split("### Universal Scalability Law", 1)[1].split("###", 1)[0]
    rows = [ln for ln in usl_part.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| direct",
        "| connect_per_op",
        "| psycopg_pool max_size=8",
    ]  # strategies in the spec's order
    direct = rows[0].split(" | ")
    assert direct[1] == "5"  # the suspect point is valid and counts
    assert abs(float(direct[3]) - 0.06) < 0.01  # alpha recovered from noiseless data
    per_op = rows[1].split(" | ")
    assert per_op[1] == "4"  # the invalid point is left out


def test_open_loop_columns_appear_when_a_point_is_open(tmp_path: Path) -> None:
    results = make_load_results()
    base = results.load_points[0]
    results.load_points.append(
        dataclasses.replace(
            base,
            mode="open",
            target_rate=500.0,
            arrival="poisson",
            qps=498.0,
            clients=8,
            queue_wait_ms=_latency(0.5, 3.0),
            service_ms=_latency(2.0, 1.0),
            schedule_lag_ms=0.04,
            dropped=3,
        )
    )
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    assert "Queue wait p99 ms | Service p99 ms | Sched. lag ms" in md
    assert "| open 500/s poisson |" in md
    assert "| direct open 500/s | 8 |" in md  # own series, not fitted, in Little's table


def test_invalid_and_suspect_load_points_in_validity(rendered: ReportFiles) -> None:
    md = rendered.md.read_text(encoding="utf-8")
    validity = md.split("## Validity", 1)[1]
    assert "Invalid sweep points: 0 of 1. Invalid load points: 1 of 20; suspect" in validity
    assert "Load connect_per_op at 32 clients: INVALID — 412 errors" in validity
    assert "Load direct at 32 clients: suspect — client CPU 1.9 of 2 cores" in validity


def test_little_law_notes_flag_client_overhead(tmp_path: Path) -> None:
    results = make_load_results()
    first = results.load_points[0]
    assert first.latency_ms is not None
    results.load_points[0] = dataclasses.replace(
        first, latency_ms=_latency(first.latency_ms.mean * 0.5, 1.0)
    )
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    little = md.split("### Little's law", 1)[1]
    assert "L = X·W is only 0.50× the 2 busy clients" in little
    assert little.count("outside the measured latency") == 1


def test_html_has_the_concurrency_section(rendered: ReportFiles) -> None:
    page = rendered.html.read_text(encoding="utf-8")
    assert "<h2>Concurrency</h2>" in page
    assert '<p class="recommendation"><strong>Use psycopg_pool max_size=8' in page
    assert "<h3>Universal Scalability Law</h3>" in page
    assert "<h3>Little&#x27;s law cross-check</h3>" in page
    assert page.count('<tr class="invalid">') == 1  # the invalid load point's row
    assert "⚠ suspect" in page


def test_round_trip_renders_identically(tmp_path: Path) -> None:
    original = make_load_results()
    path = tmp_path / "results.json"
    write_results(original, path)
    loaded = load_results(path)
    assert loaded.load_points == original.load_points
    first = render_report(original, tmp_path / "a")
    second = render_report(loaded, tmp_path / "b")
    assert first.md.read_bytes() == second.md.read_bytes()
    assert first.html.read_bytes() == second.html.read_bytes()
    assert [p.name for p in first.images] == [p.name for p in second.images]
    for a, b in zip(first.images, second.images, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_results_without_load_points_have_no_concurrency_section(tmp_path: Path) -> None:
    files = render_report(_no_load(make_load_results()), tmp_path)
    md = files.md.read_text(encoding="utf-8")
    assert "Concurrency" not in md and "load points" not in md
    assert not any(p.name in LOAD_FIGURES for p in files.images)
    assert "All 1 sweep points are valid; there are no notes." in md


def test_load_only_run_points_to_the_concurrency_figures(tmp_path: Path) -> None:
    results = dataclasses.replace(make_load_results(), runs=[], indexes=[])
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    assert "No sweep figures; the concurrency figures are under Concurrency." in md
    assert "## Concurrency" in md
