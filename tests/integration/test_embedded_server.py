"""Embedded server lifecycle and settings: restart only when needed, values verified."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgvbench.cli import main
from pgvbench.errors import SpecError
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EXTENSIONS, EmbeddedServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    root = Path(tempfile.mkdtemp(prefix="pgvbench-srv-"))
    srv = EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks")
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def _show(server: EmbeddedServer, name: str) -> str:
    with connect(server.dsn()) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])


def test_start_creates_database_with_extensions_and_preload(server: EmbeddedServer) -> None:
    assert server.ensure_started() is True
    assert server.ensure_started() is False  # already running: not ours to start again
    with connect(server.dsn()) as conn:
        rows = conn.execute("SELECT extname FROM pg_extension").fetchall()
        installed = {r[0] for r in rows}
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert set(EXTENSIONS) <= installed
    assert preload is not None and "pg_stat_statements" in preload[0]
    assert server.url().startswith("postgresql://postgres@127.0.0.1:")


def test_settings_restart_only_when_pending(server: EmbeddedServer) -> None:
    server.ensure_started()
    pid = server.postmaster_pid()
    reload_only = server.apply_settings({"work_mem": "12MB"})
    assert reload_only.restarted is False
    assert reload_only.in_effect == {"work_mem": "12MB"}
    assert server.postmaster_pid() == pid

    needs_restart = server.apply_settings({"shared_buffers": "160MB", "work_mem": "6MB"})
    assert needs_restart.restarted is True
    assert needs_restart.not_applied == {}
    assert _show(server, "shared_buffers") == "160MB"
    assert _show(server, "work_mem") == "6MB"
    assert server.postmaster_pid() != pid

    # a later run starts from the baseline: earlier values are reset, not inherited
    server.apply_settings({})
    assert _show(server, "work_mem") == "4MB"


def test_invalid_setting_is_a_spec_error_and_leaves_no_trace(server: EmbeddedServer) -> None:
    server.ensure_started()
    with pytest.raises(SpecError, match=r"\[server.settings\] shared_buffers = 'lots'"):
        server.apply_settings({"work_mem": "9MB", "shared_buffers": "lots"}, source="x.toml")
    with pytest.raises(SpecError, match="no_such_setting"):
        server.apply_settings({"no_such_setting": "1"}, source="x.toml")
    assert _show(server, "work_mem") == "4MB"


# Each value passes ALTER SYSTEM; together they stop the postmaster from starting
# (reserved connections must leave room under max_connections).
UNSTARTABLE = {"max_connections": "5", "superuser_reserved_connections": "10"}


def test_settings_the_server_cannot_start_with_are_taken_back(server: EmbeddedServer) -> None:
    server.ensure_started()
    with pytest.raises(SpecError) as info:
        server.apply_settings(UNSTARTABLE, source="x.toml")
    message = str(info.value)
    assert message.startswith("x.toml: the embedded server would not restart with")
    assert "superuser_reserved_connections" in message  # the server's own FATAL line
    assert "took the settings back" in message
    assert server.is_running()
    assert _show(server, "max_connections") == "200"  # pgvbench's base configuration


def test_a_start_that_fails_on_the_last_runs_settings_starts_without_them(
    server: EmbeddedServer,
) -> None:
    server.ensure_started()
    server.stop()
    auto_conf = server.data_dir / "postgresql.auto.conf"
    with open(auto_conf, "a", encoding="utf-8") as fh:  # as a run's ALTER SYSTEM left it
        fh.writelines(f"{k} = '{v}'\n" for k, v in UNSTARTABLE.items())
    notices: list[str] = []
    server.notify = notices.append

    assert server.ensure_started() is True

    assert len(notices) == 1
    assert "did not start with the settings the last run left" in notices[0]
    assert "superuser_reserved_connections" in notices[0]
    assert _show(server, "max_connections") == "200"
    assert "max_connections" not in auto_conf.read_text()


def test_server_cli_commands(server: EmbeddedServer, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(server.data_dir)
    server.stop()
    assert main(["server", "status", "--data-dir", data_dir]) == 3
    assert "stopped" in capsys.readouterr().out
    assert main(["server", "start", "--data-dir", data_dir]) == 0
    assert "started: postgresql://" in capsys.readouterr().out
    assert main(["server", "url", "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.strip() == server.url()
    assert main(["server", "status", "--data-dir", data_dir]) == 0
    assert main(["server", "stop", "--data-dir", data_dir]) == 0
    assert not server.is_running()
    # data survives a stop/start: the data directory is reused, not re-created
    assert main(["server", "start", "--data-dir", data_dir]) == 0
    assert (server.data_dir / "PG_VERSION").exists()


def test_list_valued_setting_keeps_pgvbench_instrumentation(server: EmbeddedServer) -> None:
    server.ensure_started()
    applied = server.apply_settings({"shared_preload_libraries": "pg_prewarm"})
    assert applied.restarted is True
    libraries = {x.strip() for x in _show(server, "shared_preload_libraries").split(",")}
    assert libraries == {"pg_stat_statements", "pg_prewarm"}
    server.apply_settings({})
    assert _show(server, "shared_preload_libraries") == "pg_stat_statements"
