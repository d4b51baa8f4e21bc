"""pgvbench merge: several runs of one spec pooled into one file for compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from compare_support import point, results, variant, write
from pgvbench.cli import main
from pgvbench.compare import compare_results
from pgvbench.compare.merge import merge_results
from pgvbench.errors import IncompatibleResults
from pgvbench.results import load_results

RUN_A = [0.300, 0.302, 0.298, 0.301, 0.299, 0.303, 0.297]
RUN_B = [p * 1.06 for p in RUN_A]  # a second run that sits 6% away as a whole
RUN_C = [p * 0.97 for p in RUN_A]


def test_merged_points_pool_every_runs_repeats() -> None:
    merged = merge_results([("a", results([point(40, RUN_A)])), ("b", results([point(40, RUN_B)]))])
    assert [m.source for m in merged.merged_from] == ["a", "b"]
    assert len(merged.runs) == 2 and len(merged.indexes) == 2
    assert [s.run for s in merged.runs[1].samples] == [1] * 7
    c = compare_results(merged, results([point(40, RUN_A)]))
    p50 = next(r for r in c.rows if r.metric == "p50")
    assert (p50.n_base, p50.n_current) == (14, 7)
    build = next(r for r in c.rows if r.metric == "build_s")
    assert build.n_base == 2


def test_pooled_base_absorbs_a_between_run_shift() -> None:
    """One run against one run: a 6% whole-run shift looks like a clean regression. Against
    a base pooled from runs that differ as much, it is within the base's own spread."""
    single = compare_results(results([point(40, RUN_A)]), results([point(40, RUN_B)]))
    assert any(r.metric == "p50" and r.verdict == "regression" for r in single.rows)
    base = merge_results(
        [
            ("a", results([point(40, RUN_A)])),
            ("b", results([point(40, RUN_B)])),
            ("c", results([point(40, RUN_C)])),
        ]
    )
    pooled = compare_results(base, results([point(40, RUN_B)]))
    assert not [r for r in pooled.rows if r.metric == "p50" and r.verdict == "regression"]
    slow = compare_results(base, results([point(40, [p * 1.25 for p in RUN_A])]))
    assert any(r.metric == "p50" and r.verdict == "regression" for r in slow.rows)


def test_merge_refuses_incompatible_partial_or_merged_inputs() -> None:
    a = results([point(40, RUN_A)])
    other = variant(a)
    other.environment.pgvector_version = "0.7.4"
    # the values come in the order of the labels: a's first
    with pytest.raises(IncompatibleResults, match=r"a vs b: pgvector version: 0\.8\.6 vs 0\.7\.4"):
        merge_results([("a", a), ("b", other)])
    assert other.dataset is not None
    other.dataset.name = "base_fortran"
    with pytest.raises(IncompatibleResults, match="a vs b: dataset name: 'clustered' vs 'base_f"):
        merge_results([("a", a), ("b", other)])
    partial = results([point(40, RUN_A)], status="partial")
    with pytest.raises(IncompatibleResults, match="b: the run is partial"):
        merge_results([("a", a), ("b", partial)])
    merged = merge_results([("a", a), ("b", variant(a))])
    with pytest.raises(IncompatibleResults, match="already a merged file"):
        merge_results([("m", merged), ("a", a)])


def test_merge_and_multi_run_baseline_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a.json", results([point(40, RUN_A)]))
    second = results([point(40, RUN_B)])
    second.started_at = "2026-11-28T01:00:00+00:00"  # another run, not a copy of a
    b = write(tmp_path / "b.json", second)
    out = tmp_path / "merged.json"
    assert main(["merge", str(out), str(a), str(b)]) == 0
    merged = load_results(out)  # round-trips through the schema
    assert len(merged.merged_from) == 2 and len(merged.runs) == 2
    store = tmp_path / "baselines"
    assert main(["baseline", "save", "main", str(a), str(b), "--dir", str(store)]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert len(load_results(store / "main.json").merged_from) == 2
    assert main(["compare", "main", str(a), "--baselines-dir", str(store)]) == 0
    assert main(["merge", str(out), str(a)]) == 2  # one file is not a merge


def test_report_shows_the_spread_of_repeats(tmp_path: Path) -> None:
    from pgvbench.report.render import render_report

    files = render_report(results([point(40, RUN_A)]), tmp_path / "r")
    text = files.md.read_text()
    assert "### Repeats" in text
    assert "| hnsw(m=16,ef_construction=64) | hnsw.ef_search=40 | 7 |" in text
    single = render_report(results([point(40, [0.3])]), tmp_path / "s").md.read_text()
    assert "### Repeats" not in single
