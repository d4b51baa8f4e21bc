"""compare / merge / baseline save refuse inputs that would be destroyed or counted twice,
and options that would quietly turn the gate off: exit 2, one paragraph, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compare_support import point, results, write
from pgvbench.cli import main
from pgvbench.results import Writer

STEADY = [0.300, 0.302, 0.298, 0.301, 0.299, 0.303, 0.297]


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing compared, merged or saved first
    err = captured.err
    assert err.startswith("pgvbench: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    a = write(tmp_path / "a.json", results([point(40, STEADY)]))
    second = results([point(40, STEADY)])
    second.started_at = "2026-11-28T01:00:00+00:00"
    return a, write(tmp_path / "b.json", second)


@pytest.mark.parametrize("option", ["--json", "--markdown", "--junit"])
def test_compare_output_over_an_input_is_refused(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs(tmp_path)
    before = b.read_bytes()
    err = _refused(capsys, ["compare", str(a), str(b), option, str(b)])
    assert f"{option} {b} is the same file as the input CURRENT {b}" in err
    assert err.rstrip().endswith(f"Choose another file with {option}.")
    # through another spelling of the path (a symlink, a run directory) as well
    (tmp_path / "link.json").symlink_to(b)
    _refused(capsys, ["compare", str(a), str(tmp_path), option, str(tmp_path / "link.json")])
    assert b.read_bytes() == before


def test_compare_outputs_must_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _two_runs(tmp_path)
    out = tmp_path / "c.out"
    err = _refused(capsys, ["compare", str(a), str(b), "--json", str(out), "--junit", str(out)])
    assert "one output would overwrite the other" in err and not out.exists()


def test_merge_out_over_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs(tmp_path)
    before = a.read_bytes()
    err = _refused(capsys, ["merge", str(a), str(a), str(b)])
    assert f"OUT {a} is the same file as the input {a}" in err
    assert err.rstrip().endswith("Choose another OUT file.")
    assert a.read_bytes() == before


def test_baseline_over_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "baselines"
    store.mkdir()
    a, _ = _two_runs(tmp_path)
    kept = write(store / "main.json", results([point(40, STEADY)]))
    before = kept.read_bytes()
    for inputs in ([str(kept)], [str(a), str(kept)]):
        argv = ["baseline", "save", "main", *inputs, "--dir", str(store), "--force"]
        err = _refused(capsys, argv)
        assert f"baseline 'main' {kept} is the same file as the input {kept}" in err
    assert kept.read_bytes() == before


def test_empty_output_options_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'' would become Path('.'): the working directory, silently."""
    monkeypatch.chdir(tmp_path)
    a, b = _two_runs(tmp_path)
    for option in ("--json", "--markdown", "--junit", "--baselines-dir"):
        err = _refused(capsys, ["compare", str(a), str(b), option, ""])
        assert f"pgvbench: error: {option} is empty ('')" in err
    err = _refused(capsys, ["merge", "", str(a), str(b)])
    assert "OUT file is empty ('')" in err
    err = _refused(capsys, ["baseline", "save", "main", str(a), "--dir", ""])
    assert "--dir is empty ('')" in err
    _refused(capsys, ["baseline", "list", "--dir", ""])
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]


def test_one_run_given_twice_is_not_two_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs(tmp_path)
    store = tmp_path / "baselines"
    out = tmp_path / "merged.json"
    for argv in (
        ["merge", str(out), str(a), str(b), str(a)],
        ["baseline", "save", "m", str(a), str(a), "--dir", str(store)],
    ):
        err = _refused(capsys, argv)
        assert f"{a} and {a} are the same file ({a}): one run given twice" in err
    # a copy, or the run's directory beside its file, is the same run all the same
    copy = tmp_path / "copy.json"
    copy.write_bytes(a.read_bytes())
    err = _refused(capsys, ["merge", str(out), str(a), str(copy)])
    assert f"{copy} and {a} are the same run ('regression' started 2026-11-28T00:00:00" in err
    assert "Pass each run once" in err
    (tmp_path / "run").mkdir()
    os.link(a, tmp_path / "run" / "results.json")
    err = _refused(
        capsys, ["baseline", "save", "m", str(a), str(tmp_path / "run"), "--dir", str(store)]
    )
    assert "are the same run" in err
    assert not out.exists() and not store.exists()
    assert main(["merge", str(out), str(a), str(b)]) == 0  # two runs: fine


def test_the_writer_pid_tells_runs_of_the_same_second_apart(tmp_path: Path) -> None:
    """Two runs of one spec started in the same second by two processes are two runs."""
    runs = []
    for pid in (101, 202):
        res = results([point(40, STEADY)])
        res.writer = Writer(pid=pid, hostname="ci")
        runs.append(write(tmp_path / f"{pid}.json", res))
    assert main(["merge", str(tmp_path / "m.json"), *map(str, runs)]) == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.1", "NaN"])
def test_min_effect_must_be_finite_and_not_negative(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """nan never exceeds and inf is never exceeded: either would turn the gate off."""
    a, b = _two_runs(tmp_path)
    err = _refused(capsys, ["compare", str(a), str(b), "--min-effect", f"qps={value}"])
    assert f"--min-effect 'qps={value}': the minimum effect for qps must be a finite" in err
    assert "default qps=0.05" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--alpha", "nan"),
        ("--alpha", "0"),
        ("--alpha", "1"),
        ("--alpha", "inf"),
        ("--noise-k", "nan"),
        ("--noise-k", "inf"),
        ("--noise-k", "-1"),
    ],
)
def test_alpha_and_noise_k_are_checked(
    tmp_path: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_runs(tmp_path)
    err = _refused(capsys, ["compare", str(a), str(b), option, value])
    assert f"pgvbench: error: {option} {value.lower()} must be" in err


def test_nothing_compared_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A partial BASE that failed before its first point shares no run with CURRENT: exit 0
    would pass a gate that judged nothing."""
    empty = results([], status="partial")
    empty.indexes = []  # it failed before the build
    base = write(tmp_path / "partial.json", empty)
    _, current = _two_runs(tmp_path)
    js = tmp_path / "c.json"
    err = _refused(capsys, ["compare", str(base), str(current), "--json", str(js)])
    assert err.startswith(f"pgvbench: error: nothing to compare: no metric of {current} could")
    assert f"BASE {base} has no completed point (the run is partial)" in err
    assert not js.exists()
    # the other way round a partial CURRENT is invalid in its own right: exit 1 as before
    assert main(["compare", str(current), str(base)]) == 1


def test_runs_that_share_nothing_are_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, other = results([point(40, STEADY)]), results([point(80, STEADY)])
    one.indexes = other.indexes = []
    a, b = write(tmp_path / "a.json", one), write(tmp_path / "b.json", other)
    err = _refused(capsys, ["compare", str(a), str(b)])
    assert f"BASE {a} has 1 run(s) and CURRENT {b} 1, but none match" in err


def test_a_failed_current_with_nothing_in_common_stays_a_regression(tmp_path: Path) -> None:
    _, base = _two_runs(tmp_path)
    failed = results([], status="failed")
    failed.indexes = []
    current = write(tmp_path / "failed.json", failed)
    assert main(["compare", str(base), str(current)]) == 1
    # a partial BASE that shares some runs is still compared: the rest is 'removed'/'added'
    partial = write(tmp_path / "p.json", results([point(40, STEADY)], status="partial"))
    wider = write(tmp_path / "w.json", results([point(80, STEADY)]))
    assert main(["compare", str(partial), str(wider)]) == 0  # the index build matched
