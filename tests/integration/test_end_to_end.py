"""A tiny spec end to end on a real embedded server: recall, plans, results, report."""

from __future__ import annotations

import copy
import dataclasses
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import TINY_SPEC
from pgvbench.cli import main
from pgvbench.engine import LatencyHistogram
from pgvbench.progress import Reporter
from pgvbench.results import Results, load_results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from support import write_toml

pytestmark = pytest.mark.integration


def _run(server: EmbeddedServer, spec_data: dict[str, Any], tmp_path: Path) -> Results:
    spec = parse_spec(spec_data)
    runner = ExperimentRunner(
        spec,
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    return runner.run(Target(server.dsn(), "embedded"))


@dataclasses.dataclass(frozen=True)
class TinyRun:
    results: Results
    out: Path


@pytest.fixture(scope="module")
def tiny_run(embedded_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One run of the tiny spec for every test that only reads its results (each test
    running it again cost ~10 s apiece)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    spec = copy.deepcopy(TINY_SPEC)
    spec["experiment"].update(name=name, schema=f"s_{name}")
    root = tmp_path_factory.mktemp("tiny_run")
    return TinyRun(_run(embedded_server, spec, root), root / "out")


@pytest.fixture
def tiny_results(tiny_run: TinyRun) -> Results:
    return tiny_run.results


def _recalls(results: Results, kind: str, param: str) -> list[tuple[int, float]]:
    points = [p for p in results.runs if p.index_kind == kind]
    assert points, f"no {kind} points"
    out = []
    for p in sorted(points, key=lambda p: p.query_params[param]):
        assert p.recall is not None
        out.append((p.query_params[param], p.recall.mean))
    return out


def test_exact_scan_has_perfect_recall(tiny_results: Results) -> None:
    exact = [p for p in tiny_results.runs if p.index_kind == "none"]
    assert len(exact) == 1
    assert exact[0].recall is not None
    assert exact[0].recall.mean == 1.0
    assert exact[0].recall.min == 1.0
    assert exact[0].valid, exact[0].notes


def test_recall_rises_with_ef_search(tiny_results: Results) -> None:
    series = _recalls(tiny_results, "hnsw", "hnsw.ef_search")
    recalls = [r for _, r in series]
    assert recalls == sorted(recalls), series
    assert recalls[-1] > recalls[0], "ef_search 1 -> 40 should change recall on this data"


def test_recall_rises_with_probes(tiny_results: Results) -> None:
    series = _recalls(tiny_results, "ivfflat", "ivfflat.probes")
    recalls = [r for _, r in series]
    assert recalls == sorted(recalls), series
    # probes = lists scans every list: exhaustive, so exact. The point must have used the
    # index (an unused index would make the exact recall prove nothing, so that fails too).
    last = next(p for p in tiny_results.runs if p.query_params.get("ivfflat.probes") == 20)
    assert last.valid, last.notes
    assert "ivfflat" in (last.plan or ""), last.plan
    assert last.recall is not None and last.recall.mean == 1.0


def test_points_are_measured_and_consistent(tiny_results: Results) -> None:
    assert tiny_results.status == "complete"
    assert tiny_results.dataset is not None and tiny_results.dataset.n == 3000
    assert tiny_results.load is not None and tiny_results.load.rows == 3000
    builds = {b.kind: b for b in tiny_results.indexes}
    assert builds["hnsw"].index_bytes > 0 and builds["hnsw"].build_seconds > 0
    for build in tiny_results.indexes:
        # a tiny build may finish before the first progress poll: phases can be empty,
        # but those recorded must lie within the build
        assert sum(p.seconds for p in build.phases) <= build.build_seconds + 0.05
        assert all(p.phase for p in build.phases)
    assert builds["hnsw"].build_settings["maintenance_work_mem"]
    assert len(tiny_results.runs) == 1 + 4 + 5
    for point in tiny_results.runs:
        assert point.operations > 0 and point.qps > 0
        assert point.errors == 0
        assert point.latency_ms is not None
        assert 0 < point.latency_ms.p50 <= point.latency_ms.p99 <= point.latency_ms.max
        assert point.histogram is not None
        assert LatencyHistogram.decode(point.histogram).count == point.operations
        # throughput is measured, and consistent with one client's latency
        assert point.qps == pytest.approx(point.operations / point.duration_s, rel=1e-3)
        assert point.qps <= 1e3 / point.latency_ms.mean * 1.05
        assert point.plan
        if point.statements is not None:
            assert point.statements.calls >= point.operations
        # server counters around the measured window, and one EXPLAIN ANALYZE
        assert point.collectors is not None
        assert "explain_analyze" in point.collectors
        assert all("error" not in v for v in point.collectors.values()), point.collectors
    hnsw_points = [p for p in tiny_results.runs if p.index_kind == "hnsw"]
    assert all(p.valid for p in hnsw_points), [p.notes for p in hnsw_points]
    assert all("hnsw" in (p.plan or "") for p in hnsw_points)
    low = [p for p in hnsw_points if p.query_params["hnsw.ef_search"] < 10]
    assert all(any("ef_search" in n for n in p.notes) for p in low)


def test_environment_and_results_file(tiny_results: Results, tiny_run: TinyRun) -> None:
    env = tiny_results.environment
    assert env.postgres_version.startswith("18")
    assert env.pgvector_version.startswith("0.8")
    assert env.server_kind == "embedded"
    assert env.host.cores >= 1 and env.host.ram_bytes > 0
    assert "shared_preload_libraries" in env.non_default_settings
    on_disk = load_results(tiny_run.out / "results.json")
    assert on_disk.to_dict() == tiny_results.to_dict()


def test_indexes_are_dropped_after_their_sweep(
    tiny_results: Results, embedded_server: EmbeddedServer
) -> None:
    schema = tiny_results.spec["schema"]
    with connect(embedded_server.dsn()) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
        ).fetchall()
    assert rows == []


def test_cli_run_writes_report(
    embedded_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10]}]
    spec_path = write_toml(tmp_path / "tiny.toml", tiny_spec)
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "report"
    code = main(
        [
            "run",
            str(spec_path),
            "--out",
            str(out),
            "--quiet",
            "--data-dir",
            str(embedded_server.data_dir),
        ]
    )
    assert code == 0
    for name in ("results.json", "report.md", "report.html", "recall_vs_qps.png"):
        assert (out / name).stat().st_size > 0, name
    assert "hnsw" in (out / "report.md").read_text()
    # the server was already running, so the CLI must leave it running
    assert embedded_server.is_running()
    # `report` re-renders from the results file alone
    (out / "report.md").unlink()
    assert main(["report", str(out / "results.json")]) == 0
    assert (out / "report.md").exists()


def test_point_is_invalid_when_the_plan_skips_the_index(
    embedded_server: EmbeddedServer, tiny_spec: dict[str, Any], tmp_path: Path
) -> None:
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10]}]
    spec = parse_spec(tiny_spec)
    runner = ExperimentRunner(
        spec,
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )
    # the planner is told not to use index scans: the timings would be of a seq scan
    dsn = embedded_server.dsn() + " options='-c enable_indexscan=off'"
    results = runner.run(Target(dsn, "external"))
    (point,) = results.runs
    assert point.valid is False
    assert any("instead of" in note and "sequential scan" in note for note in point.notes)
    assert point.plan is not None and "Seq Scan" in point.plan
    assert point.recall is not None and point.recall.mean == 1.0  # exact, since seq scan
    report = (tmp_path / "out").glob("*")
    assert any(p.name == "results.json" for p in report)


def test_cli_progress_in_a_log_is_plain_whole_lines(
    embedded_server: EmbeddedServer,
    tiny_spec: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """stderr that is not a terminal (a CI log) gets one plain line per step: no bar
    columns, no '…' cut, no escape codes; the summary goes to stdout."""
    tiny_spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10, 20]}]
    spec_path = write_toml(tmp_path / "tiny.toml", tiny_spec)
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "report"
    argv = ["run", str(spec_path), "--out", str(out), "--data-dir", str(embedded_server.data_dir)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "\x1b" not in err and "…" not in err and "━" not in err, err
    lines = err.splitlines()
    steps = [
        line for line in lines if re.match(r"\[ *\d+\.\ds\] .* \.\.\. done \(\d+\.\d s\)", line)
    ]
    for wanted in (
        "generate / read dataset ... done",
        "ground truth top-10 for 50 queries ... done",
        "load 3,000 rows (binary COPY) ... done",
        "build hnsw(m=4,ef_construction=8) ... done",
        "sweep hnsw(m=4,ef_construction=8) ... done",
    ):
        assert sum(wanted in line for line in steps) == 1, (wanted, lines)
    # whole lines: rich would have wrapped these at 80 columns
    assert any(len(line) > 100 for line in steps), steps
    assert f"results: {out / 'results.json'} (complete)" in captured.out
    assert "results:" not in err


def test_best_point_is_measured_against_the_exact_scan_interleaved(
    tiny_results: Results,
) -> None:
    """Each build's best point at the target alternates with the exact scan per round."""
    from pgvbench.analysis import fastest_at_recall, resolve_target_recall
    from pgvbench.analysis.paired import PairedRatio
    from pgvbench.report.sections.summary import recommendation

    target = resolve_target_recall(tiny_results)
    builds = {b.label for b in tiny_results.indexes if b.kind != "none"}
    expected = {
        label
        for label in builds
        if fastest_at_recall([p for p in tiny_results.runs if p.index == label], target)
    }
    assert expected, "the tiny spec should reach its target with some build"
    assert {v.index for v in tiny_results.versus_exact} == expected
    for record in tiny_results.versus_exact:
        ratio = PairedRatio.from_dict(record.ratio)
        assert ratio.rounds == len(record.index_qps) == len(record.exact_qps) >= 3
        per_round = [i / e for i, e in zip(record.index_qps, record.exact_qps, strict=True)]
        assert ratio.per_round == pytest.approx(per_round, rel=1e-4)
        best = fastest_at_recall([p for p in tiny_results.runs if p.index == record.index], target)
        assert best is not None and record.query_params == best.query_params
    # the exact scan wins outright on this tiny table; among the index points, the best
    # one's sentence quotes the interleaved ratio
    indexed = dataclasses.replace(
        tiny_results, runs=[p for p in tiny_results.runs if p.index_kind != "none"]
    )
    sentence = recommendation(indexed, target)
    assert "the exact scan's QPS" in sentence and "interleaved rounds" in sentence
