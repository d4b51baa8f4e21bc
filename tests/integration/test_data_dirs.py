"""--data-dir and --fresh: pgvbench initialises, re-creates, chowns or chmods only a
directory it created itself, and leaves everything else exactly as it was."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.server.ownership import MARKER
from support import write_toml

pytestmark = pytest.mark.integration


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's folder outside pytest's 0700 tmp tree; the cache (and lock files) apart."""
    path = Path(tempfile.mkdtemp(prefix="pgvbench-dirs-"))
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(path / "cache"))
    yield path
    for data in path.rglob("PG_VERSION"):
        EmbeddedServer(data_dir=data.parent, lock_dir=path / "cache" / "locks").stop()
    shutil.rmtree(path, ignore_errors=True)


def _snapshot(path: Path) -> dict[str, Any]:
    """Everything a run could change: each entry's type, mode, owner and content."""
    entries: dict[str, Any] = {}
    for item in [path, *sorted(path.rglob("*"))]:
        st = item.lstat()
        body = item.read_bytes() if stat.S_ISREG(st.st_mode) else None
        entries[str(item.relative_to(path))] = (st.st_mode, st.st_uid, st.st_gid, body)
    return entries


def _spec(home: Path, tiny_spec: dict[str, Any]) -> Path:
    tiny_spec["index"] = [{"kind": "none"}]
    tiny_spec["dataset"].update(n=500, queries=60)
    tiny_spec["query"].update(recall_queries=20, warmup_seconds=0.0, measure_seconds=0.1)
    return write_toml(home / "spec.toml", tiny_spec)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error: "), err
    assert err.count("\n") == 1, "one paragraph"
    return err


def test_non_empty_directory_is_refused_and_untouched(
    home: Path, tiny_spec: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    user_dir = home / "photos"
    user_dir.mkdir(mode=0o750)
    (user_dir / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (user_dir / "album").mkdir()
    before = _snapshot(user_dir)
    spec = _spec(home, tiny_spec)
    out = home / "out"

    for fresh in ([], ["--fresh"]):
        err = _refused(
            capsys, ["run", str(spec), "--data-dir", str(user_dir), "--out", str(out), *fresh]
        )
        assert f"{user_dir} already exists and is not a PostgreSQL data directory" in err
        assert "2 entries: album, holiday.jpg" in err
        assert "pgvbench has not changed it" in err

    assert _snapshot(user_dir) == before
    assert not out.exists()
    assert not (home / "cache").exists(), "refused before any work (no cache, no lock)"
    assert sorted(p.name for p in home.iterdir()) == ["photos", "spec.toml"]


def test_regular_file_is_refused(
    home: Path, tiny_spec: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    target = home / "notes.txt"
    target.write_text("keep me\n")
    before = _snapshot(home)

    err = _refused(capsys, ["run", str(_spec(home, tiny_spec)), "--data-dir", str(target)])

    assert f"the data directory {target} is not a directory" in err
    assert {k: v for k, v in _snapshot(home).items() if k != "spec.toml"} == {
        k: v for k, v in before.items() if k != "spec.toml"
    }


def test_empty_directory_not_created_by_pgvbench_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = home / "empty"
    empty.mkdir(mode=0o755)
    before = _snapshot(empty)

    err = _refused(capsys, ["server", "start", "--data-dir", str(empty)])

    assert "an existing empty directory that pgvbench did not create" in err
    assert f"rmdir {empty}" in err
    assert _snapshot(empty) == before


def test_foreign_postgres_data_directory_is_never_re_created(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone's own cluster: PG_VERSION, no marker. --fresh must not delete it."""
    cluster = home / "pgdata"
    cluster.mkdir(mode=0o700)
    (cluster / "PG_VERSION").write_text("18\n")
    (cluster / "postgresql.conf").write_text("shared_buffers = 4GB\n")
    (cluster / "base").mkdir()
    before = _snapshot(cluster)

    for argv in (["server", "start", "--fresh"], ["server", "start"]):
        err = _refused(capsys, [*argv, "--data-dir", str(cluster)])
        assert "is a PostgreSQL data directory that pgvbench did not create" in err
        assert "--dsn" in err

    assert _snapshot(cluster) == before


def test_fresh_re_creates_only_a_marked_directory(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = home / "a" / "b" / "data"  # parents made by pgvbench too
    assert main(["server", "start", "--data-dir", str(data)]) == 0
    marker = json.loads((data / MARKER).read_text())
    assert marker["created_by"] == "pgvbench"
    (data / "scratch").write_text("made by the old server's era\n")

    assert main(["server", "start", "--fresh", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert not (data / "scratch").exists(), "--fresh re-created the marked directory"
    assert (data / MARKER).exists()
    assert main(["server", "stop", "--data-dir", str(data)]) == 0
    # no lock file beside the user's directories: they live in the cache dir
    assert sorted(p.name for p in (home / "a" / "b").iterdir()) == ["data"]
    assert list((home / "cache" / "locks").glob("*.lock"))


def test_a_0_1_data_directory_is_adopted_by_its_conf_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Data dirs made before the marker existed carry pgvbench.conf: still pgvbench's."""
    data = home / "old"
    assert main(["server", "start", "--data-dir", str(data)]) == 0
    assert main(["server", "stop", "--data-dir", str(data)]) == 0
    (data / MARKER).unlink()

    assert main(["server", "start", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert (data / MARKER).exists()
    assert main(["server", "stop", "--data-dir", str(data)]) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="the parents' o+x is only changed as root")
def test_root_says_which_parent_directories_it_opened(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = home / "private"
    private.mkdir(mode=0o700)

    assert main(["server", "start", "--data-dir", str(private / "data")]) == 0

    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "added search permission" in line]
    assert len(notices) == 1, err
    assert str(private) in notices[0]
    assert private.stat().st_mode & 0o777 == 0o701  # o+x only: no read, no listing
    assert main(["server", "stop", "--data-dir", str(private / "data")]) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_initdb_failure_removes_only_what_this_run_created(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real initdb failure: a 2 MB file system fills up. The user's folder on it stays,
    the directories pgvbench made for the data dir are gone."""
    mount = home / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        users = mount / "projects"
        users.mkdir(mode=0o755)
        (users / "keep.txt").write_text("mine\n")
        before = _snapshot(users)

        code = main(["server", "start", "--data-dir", str(users / "new" / "pg" / "data")])

        err = capsys.readouterr().err
        assert code == 2, err
        assert "initdb failed" in err
        assert "No space left on device" in err
        assert (
            f"pgvbench removed what it had created for it ({users / 'new' / 'pg' / 'data'}" in err
        )
        assert "Traceback" not in err
        assert _snapshot(users) == before, "only the directories pgvbench made were removed"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_unusable_paths_are_bad_input_not_crashes(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = home / "loop1"
    loop.symlink_to(home / "loop2")
    (home / "loop2").symlink_to(loop)
    err = _refused(capsys, ["server", "start", "--data-dir", str(loop)])
    assert f"the data directory {loop} cannot be used" in err

    blocker = home / "blocker"
    blocker.write_text("a file where a parent directory should be\n")
    err = _refused(capsys, ["server", "start", "--data-dir", str(blocker / "sub" / "data")])
    assert f"cannot create the data directory {blocker / 'sub' / 'data'}" in err
    assert blocker.read_text() == "a file where a parent directory should be\n"

    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(blocker / "cache"))
    err = _refused(capsys, ["server", "start", "--data-dir", str(home / "fine")])
    assert "cannot write pgvbench's cache (ground truth, lock files)" in err
    assert "PGVBENCH_CACHE_DIR" in err
    assert not (home / "fine").exists()


def test_out_inside_the_data_dir_is_refused(
    home: Path, tiny_spec: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = home / "data"
    assert main(["server", "start", "--data-dir", str(data)]) == 0
    assert main(["server", "stop", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    out = data / "reports"

    argv = ["run", str(_spec(home, tiny_spec)), "--data-dir", str(data), "--out", str(out)]
    err = _refused(capsys, argv)

    assert "is inside the embedded server's data directory" in err
    assert not out.exists()


def test_a_name_too_long_is_bad_input(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = home / ("x" * 300) / "data"
    err = _refused(capsys, ["server", "start", "--data-dir", str(long)])
    assert "cannot be used (File name too long)" in err


def test_a_runs_settings_that_break_the_server_do_not_outlive_it(
    home: Path, tiny_spec: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """statement_timeout = 1ms cancels the run (exit 1, said plainly); the next run on the
    same data dir starts from pgvbench's base configuration and completes."""
    data = home / "data"
    tiny_spec["server"] = {"settings": {"statement_timeout": "1ms"}}
    broken = _spec(home, tiny_spec)
    code = main(["run", str(broken), "--data-dir", str(data), "--out", str(home / "o1")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "the server cancelled a statement" in err
    assert "Traceback" not in err

    del tiny_spec["server"]
    fine = write_toml(home / "fine.toml", tiny_spec)
    code = main(["run", str(fine), "--data-dir", str(data), "--out", str(home / "o2")])
    assert code == 0, capsys.readouterr().err


def test_the_users_libpq_environment_does_not_reach_the_embedded_server(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PGSERVICE, PGOPTIONS, PGSSLMODE are for the user's own servers (--dsn)."""
    monkeypatch.setenv("PGSERVICE", "no-such-service")
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=1")
    monkeypatch.setenv("PGSSLMODE", "require")
    data = home / "data"

    assert main(["server", "start", "--data-dir", str(data)]) == 0, capsys.readouterr().err
    assert main(["server", "stop", "--data-dir", str(data)]) == 0
