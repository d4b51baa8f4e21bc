"""An output location pgvbench cannot write ends every command with exit 2 and one
paragraph, before any work: no comparison printed, no report drawn, no dataset generated.

Tests run as root in CI, where mode bits deny nothing: the locations are a path through a
regular file (works everywhere), a read-only tmpfs mount and an immutable directory (each
skips with its reason where the machine cannot make it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compare_support import point, results, write
from output_faults import immutable, readonly_mount, through_a_file
from pgvbench.cli import main
from support import write_toml

pytestmark = pytest.mark.integration

STEADY = [0.300, 0.302, 0.298, 0.301, 0.299, 0.303, 0.297]


@pytest.fixture(params=["through-a-file", "read-only-mount", "immutable-dir"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A directory nothing can be written into (or under), root included."""
    (tmp_path / "faults").mkdir()
    if request.param == "through-a-file":
        yield through_a_file(tmp_path / "faults")
    elif request.param == "read-only-mount":
        with readonly_mount(tmp_path / "faults" / "ro") as ro:
            yield ro
    else:
        frozen = tmp_path / "faults" / "frozen"
        frozen.mkdir()
        with immutable(frozen):
            yield frozen


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return write(tmp_path / "in" / "results.json", results([point(40, STEADY)]))


def _refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], *, what: str, path: Path, option: str
) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was compared, rendered or saved first
    err = captured.err
    assert err.startswith(f"pgvbench: error: cannot write {what} to {path}: "), err
    assert err.rstrip().endswith(option), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_report_out(
    unwritable: Path, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = unwritable / "report"
    argv = ["report", str(results_file), "--out", str(out)]
    _refused(capsys, argv, what="the report", path=out, option="with --out.")
    assert sorted(p.name for p in results_file.parent.iterdir()) == ["results.json"]


def test_report_beside_its_results_file_in_an_immutable_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --out the report goes beside the results file: that directory is checked."""
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    results_file = write(frozen / "results.json", results([point(40, STEADY)]))
    with immutable(frozen):
        argv = ["report", str(results_file)]
        _refused(capsys, argv, what="the report", path=frozen, option="with --out.")
    assert sorted(p.name for p in frozen.iterdir()) == ["results.json"]


@pytest.mark.parametrize(
    ("option", "what"),
    [
        ("--json", "the JSON comparison"),
        ("--markdown", "the Markdown comparison"),
        ("--junit", "the JUnit XML"),
    ],
)
def test_compare_outputs(
    unwritable: Path,
    results_file: Path,
    option: str,
    what: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = unwritable / "comparison.out"
    argv = ["compare", str(results_file), str(results_file), option, str(target)]
    _refused(capsys, argv, what=what, path=target, option=f"with {option}.")


def test_baseline_save(
    unwritable: Path, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = unwritable / "baselines"
    argv = ["baseline", "save", "main", str(results_file), "--dir", str(store)]
    _refused(capsys, argv, what="the baseline", path=store, option="with --dir.")


def test_merge_out(
    unwritable: Path, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = unwritable / "merged.json"
    argv = ["merge", str(out), str(results_file), str(results_file)]
    _refused(capsys, argv, what="the merged results", path=out, option="OUT file.")


def test_run_out_is_checked_before_any_work(
    unwritable: Path,
    tmp_path: Path,
    tiny_spec: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(cache))
    spec_path = write_toml(tmp_path / "tiny.toml", tiny_spec)
    out = unwritable / "run"
    # An unreachable DSN: should the check come late, the run still starts no server.
    argv = ["run", str(spec_path), "--out", str(out), "--dsn", "host=/nonexistent port=1"]
    _refused(capsys, argv, what="the results", path=out, option="with --out.")
    assert not cache.exists()  # no dataset generated, no ground truth computed


def test_a_dangling_symlink_is_refused_before_the_work(
    tmp_path: Path, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mkdir -p on a link to nowhere fails with EEXIST: once all the work is done, if
    the check lets it through."""
    link = tmp_path / "danglink"
    link.symlink_to("/nonexistent/x")
    for argv, what, option in (
        (["report", str(results_file), "--out", str(link)], "the report", "--out"),
        (
            ["baseline", "save", "main", str(results_file), "--dir", str(link)],
            "the baseline",
            "--dir",
        ),
    ):
        err = _refused(capsys, argv, what=what, path=link, option=f"with {option}.")
        assert "it is a symbolic link to /nonexistent/x, which does not exist" in err
    assert link.is_symlink() and not link.exists()
