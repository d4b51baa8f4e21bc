"""Output locations are checked up front, probed for real, and never created by the check."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from output_faults import as_unprivileged_user, immutable, readonly_mount, through_a_file
from pgvbench._outputs import check_not_empty, check_writable_dir, check_writable_file
from pgvbench.errors import OutputError, PgvbenchError


def _one_paragraph(exc: pytest.ExceptionInfo[OutputError]) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_output_error_is_a_user_error() -> None:
    assert issubclass(OutputError, PgvbenchError)
    assert OutputError("x").exit_code == 2


def test_writable_directory_passes_and_is_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    check_writable_dir(tmp_path, what="the report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_missing_directory_is_judged_by_its_ancestor_and_not_created(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "a" / "b" / "c", what="the report")
    assert list(tmp_path.iterdir()) == []


def test_relative_path_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_writable_dir(Path("reports") / "x", what="the report")
    assert list(tmp_path.iterdir()) == []


def test_a_parent_that_is_a_file_is_named(tmp_path: Path) -> None:
    out = through_a_file(tmp_path)
    with pytest.raises(OutputError) as info:
        check_writable_dir(out / "deeper", what="the report")
    assert _one_paragraph(info) == (
        f"cannot write the report to {out / 'deeper'}: {out.parent} is a file, not a "
        "directory. Choose another directory with --out."
    )


def test_the_directory_itself_being_a_file_is_refused(tmp_path: Path) -> None:
    out = through_a_file(tmp_path).parent
    with pytest.raises(OutputError, match="it is a file, not a directory"):
        check_writable_dir(out, what="results")


def test_read_only_file_system(tmp_path: Path) -> None:
    with readonly_mount(tmp_path / "ro") as ro:
        with pytest.raises(OutputError) as info:
            check_writable_dir(ro, what="the report")
        assert _one_paragraph(info) == (
            f"cannot write the report to {ro}: read-only file system (EROFS). "
            "Choose another directory with --out."
        )
        with pytest.raises(OutputError) as info:
            check_writable_dir(ro / "new" / "dir", what="results")
        message = _one_paragraph(info)
        assert f"{ro} (where it would be created) is not writable" in message
        assert "(EROFS)" in message
        with pytest.raises(OutputError, match=r"EROFS.*--json"):
            check_writable_file(ro / "c.json", what="the JSON comparison", option="--json")


def test_immutable_directory(tmp_path: Path) -> None:
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    with immutable(frozen):
        with pytest.raises(OutputError) as info:
            check_writable_dir(frozen, what="the report")
        message = _one_paragraph(info)
        assert message.startswith(f"cannot write the report to {frozen}: operation not permitted")
        assert "(EPERM)" in message and "chattr +i" in message
        with pytest.raises(OutputError, match="EPERM"):
            check_writable_dir(frozen / "sub", what="the report")
    assert list(frozen.iterdir()) == []


def test_immutable_existing_output_file(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    target.write_text("old")
    expected = r"c\.json: operation not permitted \(EPERM\)"
    with immutable(target), pytest.raises(OutputError, match=expected):
        check_writable_file(target, what="the JSON comparison", option="--json")
    assert target.read_text() == "old"


def test_no_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    locked.chmod(0o555)
    # pytest's tmp tree is 0700: let an unprivileged child reach the directory (only the
    # directories pytest made for this session, below the system temp dir, are opened up)
    system_tmp = Path(tempfile.gettempdir()).resolve()
    for parent in [tmp_path, *tmp_path.parents]:
        if parent.resolve() == system_tmp or system_tmp not in parent.resolve().parents:
            break
        parent.chmod(parent.stat().st_mode | 0o001)

    def attempt() -> str:
        try:
            check_writable_dir(locked / "out", what="the report")
        except OutputError as exc:
            return str(exc)
        return "no error"

    try:
        message = as_unprivileged_user(attempt)
    finally:
        locked.chmod(0o755)
    assert message == (
        f"cannot write the report to {locked / 'out'}: {locked} (where it would be created) "
        "is not writable: permission denied (EACCES). Choose another directory with --out."
    )


def test_file_checks(tmp_path: Path) -> None:
    existing = tmp_path / "old.json"
    existing.write_text("keep")
    check_writable_file(existing, what="x", option="--json")
    assert existing.read_text() == "keep"
    check_writable_file(tmp_path / "new" / "deep" / "c.xml", what="x", option="--junit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    with pytest.raises(OutputError, match=r"it is a directory\. Choose another file with --json"):
        check_writable_file(tmp_path, what="the JSON comparison", option="--json")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_writable_file(through_a_file(tmp_path) / "c.md", what="x", option="--markdown")
    with pytest.raises(OutputError, match="Choose another OUT file"):
        check_writable_file(through_a_file(tmp_path) / "m.json", what="x", option="OUT file")


def test_a_device_is_never_replaced(tmp_path: Path) -> None:
    """The atomic writer renames over its target: /dev/null must not become a file."""
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    with pytest.raises(OutputError, match="character device, not a regular file"):
        check_writable_file(Path("/dev/null"), what="the JSON comparison", option="--json")


def test_an_empty_option_is_refused_before_it_becomes_the_working_directory() -> None:
    check_not_empty(None, "--out")  # not given: the default applies
    check_not_empty("reports/x", "--out")
    for blank in ("", "  "):
        with pytest.raises(OutputError) as info:
            check_not_empty(blank, "--out")
        message = _one_paragraph(info)
        assert message.startswith(f"--out is empty ({blank!r}): give a path, or leave --out out")
    with pytest.raises(OutputError, match=r"^OUT file is empty \(''\): give a path"):
        check_not_empty("", "OUT file")


def test_a_dangling_symlink_is_refused_up_front(tmp_path: Path) -> None:
    """mkdir -p on a link to nowhere fails with EEXIST: at the end of a run, if unchecked."""
    link = tmp_path / "danglink"
    link.symlink_to("/nonexistent/x")
    with pytest.raises(OutputError) as info:
        check_writable_dir(link, what="the report")
    assert _one_paragraph(info) == (
        f"cannot write the report to {link}: it is a symbolic link to /nonexistent/x, which "
        "does not exist. Create that directory, remove the link, or choose another directory "
        "with --out."
    )
    with pytest.raises(OutputError, match=f"{link} is a symbolic link to /nonexistent/x"):
        check_writable_dir(link / "sub", what="the report")
    with pytest.raises(OutputError, match=r"symbolic link.*choose another file with --json\.$"):
        check_writable_file(link / "c.json", what="the JSON comparison", option="--json")
    assert link.is_symlink() and not os.path.exists("/nonexistent/x")
    # a link to a directory that exists is a fine place to write
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "good").symlink_to(real)
    check_writable_dir(tmp_path / "good" / "new", what="the report")
