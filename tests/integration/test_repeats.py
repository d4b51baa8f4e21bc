"""[experiment] repeats on a real server: interleaved samples, merged points, and a
comparison of real results files (pgvbench compare)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import TINY_SPEC
from pgvbench.cli import main
from pgvbench.compare import CompareOptions, compare_results
from pgvbench.compare.stats import min_p_value
from pgvbench.engine import LatencyHistogram
from pgvbench.progress import Reporter
from pgvbench.results import Results
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec

pytestmark = pytest.mark.integration
REPEATS = 3


def _spec(tiny_spec: dict[str, Any]) -> dict[str, Any]:
    tiny_spec["experiment"]["repeats"] = REPEATS
    tiny_spec["query"]["measure_seconds"] = 0.2
    tiny_spec["index"] = [
        {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10, 40]},
        {"kind": "ivfflat", "lists": 20, "probes": "server"},
    ]
    tiny_spec["load"] = {
        "index": "hnsw(m=8,ef_construction=32)",
        "clients": [1, 2],
        "warmup_seconds": 0.05,
        "duration_seconds": 0.5,
    }
    return tiny_spec


def _run(server: EmbeddedServer, spec_data: dict[str, Any], out: Path) -> Results:
    runner = ExperimentRunner(
        parse_spec(spec_data),
        out_dir=out,
        cache_dir=out / "cache",
        reporter=Reporter(enabled=False),
    )
    return runner.run(Target(server.dsn(), "embedded"))


@pytest.fixture(scope="module")
def repeated(
    embedded_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Results, Path]:
    import copy

    from conftest import TINY_SPEC  # module scope: build the spec without the per-test fixture

    spec = copy.deepcopy(TINY_SPEC)
    spec["experiment"].update(name="trepeats", schema="s_trepeats")
    out = tmp_path_factory.mktemp("repeats") / "out"
    return _run(embedded_server, _spec(spec), out), out / "results.json"


def test_every_point_keeps_one_sample_per_repeat(repeated: tuple[Results, Path]) -> None:
    results, _ = repeated
    assert results.spec["repeats"] == REPEATS
    for point in [*results.runs, *results.load_points]:
        assert [s.repeat for s in point.samples] == list(range(REPEATS))
        # the point merges its repeats: counts add up, the histogram holds every operation
        assert point.operations == sum(s.operations for s in point.samples)
        assert point.histogram is not None
        assert LatencyHistogram.decode(point.histogram).count == point.operations
        for s in point.samples:
            assert s.latency_ms is not None and s.qps > 0


def test_repeats_are_interleaved_across_points(repeated: tuple[Results, Path]) -> None:
    """A B A B, not A A B B: within an index build the points alternate."""
    results, _ = repeated
    hnsw = [p for p in results.runs if p.index_kind == "hnsw"]
    assert len(hnsw) == 2
    seq_a = [s.sequence for s in hnsw[0].samples]
    seq_b = [s.sequence for s in hnsw[1].samples]
    merged = sorted((s, "a") for s in seq_a) + sorted((s, "b") for s in seq_b)
    order = [tag for _, tag in sorted(merged)]
    assert order == ["a", "b"] * REPEATS
    load = results.load_points
    assert [lp.clients for lp in load] == [1, 2]
    order = [lp.clients for _, lp in sorted((s.sequence, lp) for lp in load for s in lp.samples)]
    assert order == [1, 2] * REPEATS


def test_blocks_per_query_are_recorded_per_repeat(repeated: tuple[Results, Path]) -> None:
    results, _ = repeated
    for point in results.runs:
        blocks = [s.shared_blks_per_query for s in point.samples]
        assert all(b is not None and b > 0 for b in blocks), blocks


def test_server_value_of_a_query_parameter_is_recorded(repeated: tuple[Results, Path]) -> None:
    """probes = "server": no SET by pgvbench, and the value in force is written down."""
    results, _ = repeated
    [ivf] = [p for p in results.runs if p.index_kind == "ivfflat"]
    assert ivf.query_params == {}
    assert any(n.startswith("ivfflat.probes = 1 (the server's setting") for n in ivf.notes)


def test_a_run_compared_with_itself_is_clean(
    repeated: tuple[Results, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    results, path = repeated
    c = compare_results(results, results)
    assert c.verdict == "ok"
    assert not [r for r in c.rows if r.verdict in ("added", "removed")]
    p50 = [r for r in c.rows if r.metric == "p50"]
    assert p50
    # 3 vs 3 repeats cannot reach p < 0.01 (the smallest two-sided p is 2 / C(6, 3) = 0.1):
    # the gate falls back to the minimum effect, and says so in the row and the notes
    assert min_p_value(REPEATS, REPEATS) == pytest.approx(0.1)
    for row in p50:
        assert (row.method, row.n_base, row.n_current) == ("threshold", REPEATS, REPEATS)
        assert row.verdict == "unchanged" and row.p_value is None
        assert f"{REPEATS} vs {REPEATS} repeats cannot reach p < 0.01" in row.reason
    assert any("p50" in n and "without a significance test" in n for n in c.notes), c.notes
    assert main(["compare", str(path), str(path.parent), "--only-changes"]) == 0


def test_at_alpha_0_2_three_repeats_go_through_mann_whitney(
    repeated: tuple[Results, Path],
) -> None:
    """At alpha 0.2 the 3-vs-3 samples of a real run go through the Mann-Whitney test;
    a run against itself gives p = 1 and no change."""
    results, _ = repeated
    c = compare_results(results, results, options=CompareOptions(alpha=0.2))
    p50 = [r for r in c.rows if r.metric == "p50"]
    assert p50
    for row in p50:
        assert (row.method, row.n_base, row.n_current) == ("mann-whitney", REPEATS, REPEATS)
        assert row.p_value == pytest.approx(1.0) and row.verdict == "unchanged"
    assert c.verdict == "ok"


def test_a_database_default_change_shows_in_compare(
    embedded_server: EmbeddedServer,
    repeated: tuple[Results, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same spec run after ALTER DATABASE ... SET ivfflat.probes: recall and blocks per
    query of the point that leaves probes to the server move, and compare warns."""
    results, path = repeated
    spec = dict(results.spec)
    with psycopg.connect(embedded_server.dsn(), autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f"ALTER DATABASE {dbname} SET ivfflat.probes = 20")
    try:
        data = copy.deepcopy(TINY_SPEC)
        data["experiment"].update(name="trepeats", schema="s_trepeats")
        current = _run(embedded_server, _spec(data), tmp_path / "out")
    finally:
        with psycopg.connect(embedded_server.dsn(), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {dbname} RESET ivfflat.probes")
    assert current.spec == spec
    code = main(["compare", str(path), str(tmp_path / "out"), "--json", str(tmp_path / "c.json")])
    out = capsys.readouterr().out
    assert "server setting ivfflat.probes" in out
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    ivf = {r["metric"]: r for r in rows if r["run"].startswith("sweep ivfflat")}
    assert ivf["recall"]["verdict"] == "improvement"  # probes 1 -> 20 of 20 lists: exact
    assert ivf["blocks"]["verdict"] == "regression"  # ... at the cost of reading every list
    assert code == 1
