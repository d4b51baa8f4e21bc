"""pgvbench compare / baseline on synthetic results files: matching, environment checks,
outputs (Markdown, JSON, JUnit) and exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compare_support import point, results, variant, write
from pgvbench.cli import main
from pgvbench.compare import compare_results

STEADY = [0.300, 0.302, 0.298, 0.301, 0.299, 0.303, 0.297]
SLOWER = [p * 1.2 for p in STEADY]


def _pair(tmp_path: Path, base_points, current_points, **current_kw):  # type: ignore[no-untyped-def]
    base = write(tmp_path / "base.json", results(base_points))
    current = write(tmp_path / "current.json", results(current_points, **current_kw))
    return base, current


def test_same_results_compare_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, current = _pair(tmp_path, [point(40, STEADY)], [point(40, STEADY)])
    assert main(["compare", str(base), str(current)]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out
    assert "p-value" in out


def test_slowdown_exits_1_and_names_the_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, current = _pair(tmp_path, [point(40, STEADY)], [point(40, SLOWER)])
    assert main(["compare", str(base), str(current)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert "p50" in out and "+20.0%" in out


def test_runs_missing_on_one_side_are_added_or_removed(tmp_path: Path) -> None:
    base = results([point(40, STEADY), point(80, STEADY)])
    current = results([point(80, STEADY), point(160, STEADY)])
    c = compare_results(base, current)
    removed = [r for r in c.rows if r.verdict == "removed"]
    added = [r for r in c.rows if r.verdict == "added"]
    assert [r.run for r in removed] == [
        "sweep hnsw(ef_construction=64,m=16) hnsw.ef_search=40 k=10 clients=1"
    ]
    assert [r.run for r in added] == [
        "sweep hnsw(ef_construction=64,m=16) hnsw.ef_search=160 k=10 clients=1"
    ]
    matched = {r.run for r in c.rows if r.verdict not in ("added", "removed")}
    assert any("ef_search=80" in run for run in matched)
    assert c.verdict == "ok"  # reported, not failed: a changed spec is refused elsewhere


def test_matching_is_by_key_not_position(tmp_path: Path) -> None:
    base = results([point(40, STEADY), point(80, SLOWER)])
    current = results([point(80, SLOWER), point(40, STEADY)])
    assert compare_results(base, current).verdict == "ok"


def test_recall_drop_of_002_is_a_regression() -> None:
    c = compare_results(
        results([point(40, STEADY, recall=0.97)]), results([point(40, STEADY, recall=0.95)])
    )
    [row] = [r for r in c.rows if r.metric == "recall"]
    assert row.verdict == "regression" and row.change == pytest.approx(-0.02)


def test_point_that_lost_its_index_is_invalid() -> None:
    c = compare_results(results([point(40, STEADY)]), results([point(40, STEADY, valid=False)]))
    [row] = [r for r in c.rows if r.metric == "validity"]
    assert row.verdict == "invalid" and "Seq Scan" in row.reason
    assert c.verdict == "regression"


def test_new_errors_are_a_regression() -> None:
    c = compare_results(results([point(40, STEADY)]), results([point(40, STEADY, errors=3)]))
    assert any(r.metric == "errors" and r.verdict == "regression" for r in c.rows)


def test_failed_current_run_is_a_regression() -> None:
    current = results([point(40, STEADY)], status="failed")
    c = compare_results(results([point(40, STEADY)]), current)
    assert c.verdict == "regression"
    assert c.rows[0].metric == "status"


def test_single_samples_use_thresholds_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, current = _pair(tmp_path, [point(40, [0.30])], [point(40, [0.30])])
    assert main(["compare", str(base), str(current)]) == 0
    out = capsys.readouterr().out
    assert "note: qps, p50, p95, p99, blocks: a single sample" in out
    notes = compare_results(results([point(40, [0.30])]), results([point(40, [0.30])])).notes
    assert any("judged by the minimum effect alone without a significance test" in n for n in notes)
    assert any("index builds are measured once per run" in n for n in notes)


def test_incompatible_environment_is_refused_with_the_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = results([point(40, STEADY)])
    current = variant(base)
    current.environment.pgvector_version = "0.8.1"
    current.environment.postgres_version = "17.2"
    assert current.dataset is not None
    current.dataset.n = 40000
    current.spec["seed"] = 7
    b, c = write(tmp_path / "b.json", base), write(tmp_path / "c.json", current)
    assert main(["compare", str(b), str(c)]) == 2
    err = capsys.readouterr().err
    for expected in ("pgvector version: 0.8.6 vs 0.8.1", "PostgreSQL major version", "dataset n"):
        assert expected in err
    assert "spec seed: 42 vs 7" in err
    assert "--allow-env-diff" in err
    assert main(["compare", str(b), str(c), "--allow-env-diff"]) == 0
    assert "compared despite" in capsys.readouterr().out


def test_host_differences_only_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = results([point(40, STEADY)])
    current = variant(base)
    current.environment.host.cores = 8
    current.environment.non_default_settings["port"] = "6543"  # meaningless: ignored
    current.spec["source_path"] = "/ci/checkout/workloads/regression.toml"  # path: ignored
    current.spec["repeats"] = 9  # more repeats measure the same thing
    b, c = write(tmp_path / "b.json", base), write(tmp_path / "c.json", current)
    assert main(["compare", str(b), str(c)]) == 0
    out = capsys.readouterr().out
    assert "warning: environment differs: host cores: 2 vs 8" in out
    assert "port" not in out


def test_outputs_are_well_formed_and_carry_verdicts(tmp_path: Path) -> None:
    base, current = _pair(
        tmp_path, [point(40, STEADY), point(80, STEADY)], [point(40, SLOWER), point(160, STEADY)]
    )
    md, js, xml = tmp_path / "o" / "c.md", tmp_path / "o" / "c.json", tmp_path / "o" / "c.xml"
    code = main(
        [
            "compare",
            str(base),
            str(current),
            "--markdown",
            str(md),
            "--json",
            str(js),
            "--junit",
            str(xml),
        ]
    )
    assert code == 1

    text = md.read_text()
    assert text.startswith("## ❌ pgvbench compare: REGRESSION")
    assert "| run | metric | base | current | change | p-value | verdict | why |" in text
    assert "❌ regression" in text and "➖ removed" in text and "➕ added" in text

    data = json.loads(js.read_text())
    assert data["compare_schema_version"] == 1 and data["verdict"] == "regression"
    verdicts = {(r["metric"], r["verdict"]) for r in data["rows"]}
    assert ("p50", "regression") in verdicts and ("*", "removed") in verdicts
    p50 = next(r for r in data["rows"] if r["metric"] == "p50")
    assert p50["method"] == "mann-whitney" and p50["p_value"] < 0.01
    assert p50["n_base"] == p50["n_current"] == 7

    root = ET.parse(xml).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(data["rows"]) == int(suite.get("tests", "0"))
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == int(suite.get("failures", "0")) >= 1
    assert {c.get("name") for c in failed} >= {"p50"}
    assert len([c for c in cases if c.find("skipped") is not None]) == 2


def test_min_effect_override_and_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, current = _pair(tmp_path, [point(40, STEADY)], [point(40, SLOWER)])
    flat: list[str] = []
    for metric in ("p50", "p95", "p99", "qps"):
        flat += ["--min-effect", f"{metric}=0.5"]
    assert main(["compare", str(base), str(current), *flat]) == 0
    assert main(["compare", str(base), str(current), "--min-effect", "latency=0.1"]) == 2
    err = capsys.readouterr().err
    assert "qps, p50, p95, p99, recall, blocks, build_s, index_mb" in err
    assert main(["compare", str(base), str(current), "--alpha", "2"]) == 2


def test_missing_or_corrupt_inputs_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path / "good.json", results([point(40, STEADY)]))
    assert main(["compare", str(tmp_path / "nope.json"), str(good)]) == 2
    assert "no such results file, directory or baseline name" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compare", str(good), str(bad)]) == 2


def test_baseline_save_list_and_compare_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "baselines"
    base, current = _pair(tmp_path, [point(40, STEADY)], [point(40, STEADY)])
    assert main(["baseline", "save", "main", str(base), "--dir", str(store)]) == 0
    assert (store / "main.json").is_file()
    assert main(["baseline", "save", "main", str(base), "--dir", str(store)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["baseline", "save", "main", str(base), "--dir", str(store), "--force"]) == 0
    assert main(["baseline", "list", "--dir", str(store)]) == 0
    assert "main" in capsys.readouterr().out
    code = main(["compare", "main", str(current), "--baselines-dir", str(store)])
    assert code == 0
    assert "baseline main" in capsys.readouterr().out
    assert main(["compare", "nosuch", str(current), "--baselines-dir", str(store)]) == 2
    assert "saved baselines in" in capsys.readouterr().err


def test_baseline_refuses_incomplete_runs_and_bad_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = write(tmp_path / "p.json", results([point(40, STEADY)], status="partial"))
    assert main(["baseline", "save", "x", str(partial), "--dir", str(tmp_path)]) == 2
    assert "must be a complete run" in capsys.readouterr().err
    good = write(tmp_path / "g.json", results([point(40, STEADY)]))
    assert main(["baseline", "save", "../evil", str(good), "--dir", str(tmp_path)]) == 2
    assert "not valid" in capsys.readouterr().err
