"""Report stage: Pareto analysis, figures, Markdown and self-contained HTML."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from pgvbench.analysis import fastest_at_recall, pareto_front, resolve_target_recall
from pgvbench.report.fmt import format_params, format_qps, format_sig
from pgvbench.report.render import render_report
from pgvbench.report.sweep_plots import plot_build_cost, plot_latency, plot_recall_vs_qps
from pgvbench.results import (
    BuildPhase,
    DatasetInfo,
    Environment,
    GroundTruthInfo,
    HostInfo,
    IndexBuild,
    Latency,
    LoadInfo,
    Recall,
    Results,
    Sample,
    StatementStats,
    SweepPoint,
    load_results,
    write_results,
)

Plot = Callable[[Results, Path], Path | None]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXACT = "exact"
IVF = "ivfflat(lists=100)"
HNSW16 = "hnsw(m=16,ef_construction=64)"
HNSW32 = "hnsw(m=32,ef_construction=128)"
XSS_NOTE = "plan note <script>alert(1)</script> & more"


# --- building realistic results ----------------------------------------------------------


def _point(
    index: str,
    kind: str,
    params: dict[str, int],
    recall: float,
    qps: float,
    *,
    valid: bool = True,
    notes: list[str] | None = None,
    errors: int = 0,
) -> SweepPoint:
    p50 = 1000.0 / qps * 4  # 4 clients: latency ~ concurrency / throughput
    return SweepPoint(
        index=index,
        index_kind=kind,
        index_params={"lists": 100} if kind == "ivfflat" else {},
        query_params=params,
        k=10,
        concurrency=4,
        recall=Recall(mean=recall, p5=max(0.0, recall - 0.1), min=max(0.0, recall - 0.3)),
        qps=qps,
        latency_ms=Latency(
            p50=p50, p95=p50 * 1.8, p99=p50 * 2.5, p999=p50 * 4, max=p50 * 9, mean=p50 * 1.1
        ),
        operations=int(qps * 30),
        errors=errors,
        duration_s=30.0,
        warmup_s=5.0,
        valid=valid,
        notes=notes or [],
    )


def _build(label: str, kind: str, seconds: float, mb: float) -> IndexBuild:
    return IndexBuild(
        label=label,
        kind=kind,
        params={},
        build_seconds=seconds,
        index_bytes=int(mb * 1e6),
        build_settings={"maintenance_work_mem": "2GB"} if kind != "none" else {},
        phases=[BuildPhase("loading tuples", seconds * 0.9)] if kind != "none" else [],
        notices=["hnsw graph no longer fits into maintenance_work_mem"] if label == HNSW32 else [],
    )


def make_results() -> Results:
    ef, probes = "hnsw.ef_search", "ivfflat.probes"
    runs = [
        _point(EXACT, "none", {}, 1.0, 45.0),
        _point(IVF, "ivfflat", {probes: 1}, 0.62, 3100.0),
        _point(IVF, "ivfflat", {probes: 5}, 0.88, 1400.0),
        _point(IVF, "ivfflat", {probes: 10}, 0.94, 900.0),
        _point(IVF, "ivfflat", {probes: 20}, 0.975, 520.0),
        _point(HNSW16, "hnsw", {ef: 20}, 0.81, 4200.0),
        _point(HNSW16, "hnsw", {ef: 40}, 0.90, 3300.0),
        _point(HNSW16, "hnsw", {ef: 80}, 0.955, 2100.0, notes=[XSS_NOTE]),
        _point(HNSW16, "hnsw", {ef: 160}, 0.985, 1200.0),
        _point(HNSW32, "hnsw", {ef: 40}, 0.93, 2500.0),
        # faster than every valid point above the target, but invalid: must not win
        _point(
            HNSW32,
            "hnsw",
            {ef: 80},
            0.97,
            2600.0,
            valid=False,
            errors=40,
            notes=["40 errors (1.3%) exceed the 0.1% limit"],
        ),
        _point(HNSW32, "hnsw", {ef: 160}, 0.991, 1500.0),
    ]
    return Results(
        run_name="demo-run",
        status="complete",
        started_at="2025-03-01T10:00:00+00:00",
        finished_at="2025-03-01T10:42:00+00:00",
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={"shared_buffers": "2GB", "max_parallel_workers": "8"},
            host=HostInfo(cpu_model="AMD EPYC 7B13", cores=16, ram_bytes=64 * 2**30, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit="0123abc",
            python_version="3.11.9",
            client_libraries={"psycopg": "3.2.3", "numpy": "2.1.0"},
        ),
        spec={"query": {"target_recall": 0.95, "k": 10}},
        dataset=DatasetInfo(
            name="clustered-100k",
            source="synthetic:clustered",
            n=100_000,
            dim=128,
            metric="l2",
            seed=42,
            n_queries=1000,
            n_recall_queries=500,
            ground_truth=GroundTruthInfo(
                k=10, method="faiss.knn (exact, blocked)", seconds=1.9, cached=False
            ),
        ),
        load=LoadInfo(
            table="pgvbench_items",
            rows=100_000,
            seconds=12.5,
            rows_per_second=8000.0,
            table_bytes=60_000_000,
        ),
        indexes=[
            _build(EXACT, "none", 0.0, 0.0),
            _build(IVF, "ivfflat", 8.4, 52.0),
            _build(HNSW16, "hnsw", 41.0, 78.5),
            _build(HNSW32, "hnsw", 96.0, 131.0),
        ],
        runs=runs,
    )


def _expected_fastest(results: Results, target: float) -> SweepPoint:
    """Independent of the code under test: brute force over the data."""
    candidates = [
        p for p in results.runs if p.valid and p.recall is not None and p.recall.mean >= target
    ]
    return max(candidates, key=lambda p: p.qps)


# --- analysis ----------------------------------------------------------------------------


def _bare(name: str, recall: float | None, qps: float, *, valid: bool = True) -> SweepPoint:
    point = _point(name, "hnsw", {"hnsw.ef_search": 10}, recall or 0.0, qps, valid=valid)
    return dataclasses.replace(point, recall=None) if recall is None else point


def test_pareto_front_excludes_dominated_invalid_and_unmeasured() -> None:
    a = _bare("a", 0.5, 100)
    b = _bare("b", 0.6, 90)
    c = _bare("c", 0.6, 80)  # same recall as b, slower
    d = _bare("d", 0.55, 70)  # worse than b on both axes
    e = _bare("e", 0.9, 10)
    f = _bare("f", 0.9, 10)  # exact duplicate of e: only the first in stable order stays
    g = _bare("g", 0.95, 1000, valid=False)  # would dominate everything, but invalid
    h = _bare("h", None, 5000)  # no recall: cannot be placed
    i = _bare("i", 0.4, 100)  # same QPS as a, lower recall
    points = [i, h, g, f, e, d, c, b, a]
    assert [p.index for p in pareto_front(points)] == ["a", "b", "e"]
    assert [p.index for p in pareto_front(list(reversed(points)))] == ["a", "b", "e"]


def test_pareto_front_of_nothing_is_empty() -> None:
    assert pareto_front([]) == []
    assert pareto_front([_bare("x", 0.9, 100, valid=False)]) == []


def test_fastest_at_recall_picks_highest_qps_over_target() -> None:
    results = make_results()
    best = fastest_at_recall(results.runs, 0.95)
    assert best is _expected_fastest(results, 0.95)
    assert best is not None and best.index == HNSW16  # not the faster, invalid HNSW32 point


def test_fastest_at_recall_ties_are_deterministic() -> None:
    slow_low = _bare("b", 0.96, 100)
    fast_low = _bare("c", 0.96, 200)
    fast_high = _bare("z", 0.99, 200)  # same QPS, more recall: wins
    assert fastest_at_recall([slow_low, fast_low, fast_high], 0.95) is fast_high
    twin_a, twin_b = _bare("a", 0.97, 300), _bare("b", 0.97, 300)
    assert fastest_at_recall([twin_b, twin_a], 0.95) is twin_a
    assert fastest_at_recall([twin_a, twin_b], 0.95) is twin_a


def test_fastest_at_recall_none_when_unreachable() -> None:
    assert fastest_at_recall([_bare("a", 0.5, 100)], 0.95) is None


def test_target_recall_resolution() -> None:
    results = make_results()
    assert resolve_target_recall(results) == 0.95
    assert resolve_target_recall(results, 0.8) == 0.8
    results.spec = {"query": {"target_recall": 0.9}}
    assert resolve_target_recall(results) == 0.9
    results.spec = {}
    assert resolve_target_recall(results) == 0.95


# --- number formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.8, "1.80"), (0.01234, "0.0123"), (9.996, "10.0"), (222.2, "222"), (1234.5, "1,230"),
     (0.0, "0")],
)  # fmt: skip
def test_format_sig_three_significant_digits(value: float, text: str) -> None:
    assert format_sig(value) == text


def test_format_qps_uses_thousands_separators() -> None:
    assert format_qps(1234.4) == "1,234"
    assert format_qps(45.0) == "45.0"


# --- figures -----------------------------------------------------------------------------


@pytest.mark.parametrize("plot", [plot_recall_vs_qps, plot_build_cost, plot_latency])
def test_each_plot_writes_a_png(plot: Plot, tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    assert plot(make_results(), path) == path
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temp left behind


@pytest.mark.parametrize("plot", [plot_recall_vs_qps, plot_build_cost, plot_latency])
def test_plots_skip_empty_results(plot: Plot, tmp_path: Path) -> None:
    empty = dataclasses.replace(make_results(), indexes=[], runs=[], status="failed")
    assert plot(empty, tmp_path / "figure.png") is None
    assert not (tmp_path / "figure.png").exists()


# --- rendering ---------------------------------------------------------------------------


def test_render_writes_all_files(tmp_path: Path) -> None:
    files = render_report(make_results(), tmp_path / "report")
    assert files.md.name == "report.md" and files.md.stat().st_size > 0
    assert files.html.name == "report.html" and files.html.stat().st_size > 0
    assert len(files.images) == 3
    for image in files.images:
        assert image.read_bytes().startswith(PNG_MAGIC)
    md = files.md.read_text(encoding="utf-8")
    for image in files.images:
        assert f"]({image.name})" in md  # embedded by relative path
    assert not list(files.md.parent.glob("*.tmp")) and not list(files.md.parent.glob(".*"))


def test_recommendation_names_fastest_configuration(tmp_path: Path) -> None:
    results = make_results()
    best = _expected_fastest(results, 0.95)
    exact = next(p for p in results.runs if p.index_kind == "none")
    assert best.recall is not None and best.latency_ms is not None
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    line = next(ln for ln in md.splitlines() if ln.startswith("**Recommendation.**"))
    assert "recall@10 ≥ 0.95" in line
    params = ", ".join(f"{k}={v}" for k, v in best.query_params.items())
    assert f"is {best.index} with {params}:" in line
    assert f"recall {best.recall.mean:.3f} (p5 {best.recall.p5:.3f})" in line
    assert f"{best.qps:,.0f} QPS" in line
    assert f"{best.qps / exact.qps:.0f}× the exact scan" in line  # 46.7 -> "47"


def test_recommendation_honours_explicit_target(tmp_path: Path) -> None:
    results = make_results()
    best = _expected_fastest(results, 0.98)
    md = render_report(results, tmp_path, target_recall=0.98).md.read_text(encoding="utf-8")
    assert f"recall@10 ≥ 0.98 the fastest configuration is {best.index} with" in md
    assert best.index == HNSW32  # 0.991 @ 1,500 beats HNSW16 0.985 @ 1,200


def test_exact_scan_can_be_the_recommendation(tmp_path: Path) -> None:
    md = render_report(make_results(), tmp_path, target_recall=1.0).md.read_text("utf-8")
    assert "the fastest configuration is the exact scan (no index): recall 1.000" in md
    assert "× the exact scan" not in md  # no ratio against itself


def test_unreachable_target_names_best_recall(tmp_path: Path) -> None:
    results = make_results()
    results.runs = [p for p in results.runs if p.index_kind != "none"]  # no exact scan
    md = render_report(results, tmp_path, target_recall=0.999).md.read_text(encoding="utf-8")
    assert "No configuration reaches recall@10 ≥ 0.999" in md
    assert f"highest recall reached is 0.991 by {HNSW32} with hnsw.ef_search=160" in md


def test_near_miss_is_not_printed_as_a_hit(tmp_path: Path) -> None:
    results = make_results()
    results.runs = [_point(IVF, "ivfflat", {"ivfflat.probes": 9}, 0.9496, 800.0)]
    md = render_report(results, tmp_path, target_recall=0.95).md.read_text(encoding="utf-8")
    assert "highest recall reached is 0.9496 by" in md


def test_invalid_points_are_flagged_with_reason(tmp_path: Path) -> None:
    md = render_report(make_results(), tmp_path).md.read_text(encoding="utf-8")
    invalid_rows = [ln for ln in md.splitlines() if "⚠ INVALID" in ln and ln.startswith("|")]
    assert len(invalid_rows) == 1
    assert HNSW32 in invalid_rows[0] and "hnsw.ef_search=80" in invalid_rows[0]
    assert "40 errors (1.3%) exceed the 0.1% limit" in invalid_rows[0]
    validity = md.split("## Validity", 1)[1]
    assert "Invalid sweep points: 1 of 12." in validity
    assert "INVALID — 40 errors (1.3%) exceed the 0.1% limit" in validity
    assert "plan note" in validity  # notes of valid points are listed too
    assert "maintenance\\_work\\_mem" not in validity  # intraword underscores left readable


def test_markdown_sections_and_numbers(tmp_path: Path) -> None:
    md = render_report(make_results(), tmp_path).md.read_text(encoding="utf-8")
    assert md.startswith("# pgvbench report: demo-run (complete)\n")
    for heading in ("## Dataset", "## Load", "## Environment", "## Index builds", "## Sweep"):
        assert heading in md
    assert "faiss.knn (exact, blocked)" in md
    assert "100,000" in md  # n with separators
    assert "| 4,200 |" in md  # QPS with separators
    assert "\\<script\\>" in md  # markup in notes is escaped in Markdown too


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    files = render_report(make_results(), tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert 'src="recall_vs_qps.png"' not in page  # no external image references
    assert '<tr class="invalid">' in page


def test_round_trip_through_results_file_renders_identically(tmp_path: Path) -> None:
    original = make_results()
    path = tmp_path / "results.json"
    write_results(original, path)
    loaded = load_results(path)
    first = render_report(original, tmp_path / "a")
    second = render_report(loaded, tmp_path / "b")
    assert first.md.read_bytes() == second.md.read_bytes()
    assert first.html.read_bytes() == second.html.read_bytes()
    for a, b in zip(first.images, second.images, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_failed_run_without_measurements_renders(tmp_path: Path) -> None:
    failed = dataclasses.replace(
        make_results(),
        status="failed",
        finished_at=None,
        dataset=None,
        load=None,
        indexes=[],
        runs=[],
        failure="ServerError: could not start postgres\n  port 5432 in use",
    )
    files = render_report(failed, tmp_path)
    assert files.images == []
    md = files.md.read_text(encoding="utf-8")
    assert "# pgvbench report: demo-run (failed)" in md
    assert "nothing can be recommended" in md
    assert "port 5432 in use" in md
    assert "No figures" in md
    assert "<script" not in files.html.read_text(encoding="utf-8").lower()


def test_partial_run_with_only_unmeasured_points_renders(tmp_path: Path) -> None:
    results = make_results()
    results.status = "partial"
    results.runs = [
        dataclasses.replace(p, recall=None, latency_ms=None, valid=False, notes=[])
        for p in results.runs[:2]
    ]
    files = render_report(results, tmp_path)
    assert [p.name for p in files.images] == ["build_cost.png"]
    md = files.md.read_text(encoding="utf-8")
    assert "This run is partial" in md
    assert "INVALID — no reason recorded" in md


# --- buffers per query -------------------------------------------------------------------


def _with_statements(point: SweepPoint, hit: float, read: float) -> SweepPoint:
    """``point`` measured once (repeats = 1) with pg_stat_statements deltas."""
    stats = StatementStats(
        calls=point.operations,
        mean_exec_ms=0.5,
        shared_blks_hit_per_call=hit,
        shared_blks_read_per_call=read,
    )
    sample = Sample(
        repeat=0,
        sequence=0,
        qps=point.qps,
        operations=point.operations,
        errors=point.errors,
        duration_s=point.duration_s,
        latency_ms=point.latency_ms,
        shared_blks_per_query=hit + read,
    )
    return dataclasses.replace(point, statements=stats, samples=[sample])


def _sweep_table(md: str) -> list[list[str]]:
    sweep = md.split("\n## Sweep\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in sweep.splitlines() if ln.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_sweep_table_shows_blocks_per_query_with_a_single_repeat(tmp_path: Path) -> None:
    results = make_results()
    results.runs = [
        _with_statements(p, 40.0, 2.5) if p.index == HNSW16 else p for p in results.runs
    ]
    path = tmp_path / "results.json"
    write_results(results, path)  # the figure as stored in results.json
    files = render_report(load_results(path), tmp_path / "report")
    md = files.md.read_text(encoding="utf-8")
    header, _rule, *rows = _sweep_table(md)
    column = header.index("Blocks/query")
    measured = next(r for r in rows if r[0] == HNSW16 and r[1] == "hnsw.ef_search=40")
    assert measured[column] == "42.5"
    exact = next(r for r in rows if r[0] == EXACT)
    assert exact[column] == "—"  # not measured for this point
    assert "### Repeats" not in md  # one repeat: no repeats table, the column is still there
    assert "<th>Blocks/query</th>" in files.html.read_text(encoding="utf-8")


def test_sweep_table_without_statements_has_no_blocks_column(tmp_path: Path) -> None:
    md = render_report(make_results(), tmp_path).md.read_text(encoding="utf-8")
    header = _sweep_table(md)[0]
    assert "Blocks/query" not in header
    assert header[-3:] == ["Valid", "Front", "Notes"]


def test_sweep_table_shows_the_recall_bound_and_zero_recall_queries(tmp_path: Path) -> None:
    results = make_results()
    target = next(p for p in results.runs if p.index == HNSW16 and p.recall is not None)
    assert target.recall is not None
    target.recall = dataclasses.replace(target.recall, low=0.9123, min=0.0, zero=3)
    md = render_report(results, tmp_path).md.read_text(encoding="utf-8")
    header, _rule, *rows = _sweep_table(md)
    row = next(r for r in rows if r[0] == HNSW16 and r[1] == format_params(target.query_params))
    assert row[header.index("Recall ≥")] == "0.912"
    assert row[header.index("Recall min")] == "0.000 (3 at 0)"
    old = next(r for r in rows if r is not row and r[0] == HNSW16)
    assert old[header.index("Recall ≥")] == "—"  # files before the bound: no figure
