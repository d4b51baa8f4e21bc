"""The CLI's last line of defence: every exception class ends in one paragraph and the
documented exit code (docs/errors.md), with the traceback only under --debug.

The errors are real ones: the psycopg errors come from a real server, the OS error from
a real failed write; only the command they escape from is replaced."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

import psycopg
import pytest

from pgvbench import cli
from pgvbench.errors import Terminated
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer

pytestmark = pytest.mark.integration


def _raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def command(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(cli, "_command", command)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, "validate", "unused.toml"])
    return code, capsys.readouterr().err


def _paragraph(err: str) -> str:
    assert err.startswith("pgvbench: error: "), err
    assert "\n\n" not in err.strip()
    return err


def test_server_error_mid_command_is_exit_1(
    embedded_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connect(embedded_server.dsn()) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT 1 / 0")
    _raising(monkeypatch, info.value)

    code, err = _run(capsys)

    assert code == 1
    assert "the server refused a statement (SQLSTATE 22012): division by zero" in _paragraph(err)
    assert "Traceback" not in err


def test_lost_connection_is_exit_1(
    embedded_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connect(embedded_server.dsn()) as victim, connect(embedded_server.dsn()) as admin:
        pid = victim.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError) as info:
            victim.execute("SELECT 1")
    _raising(monkeypatch, info.value)

    code, err = _run(capsys)

    assert code == 1
    assert "the connection to the server failed" in _paragraph(err)


def test_os_error_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("")
    with pytest.raises(OSError) as info:
        (target / "results.json").write_text("{}")  # a real ENOTDIR from the kernel
    assert info.value.errno == errno.ENOTDIR
    _raising(monkeypatch, info.value)

    code, err = _run(capsys)

    assert code == 1
    assert f"an operating-system error stopped pgvbench ({target / 'results.json'})" in err
    _paragraph(err)


def test_unexpected_error_is_an_internal_error_with_traceback_only_under_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _raising(monkeypatch, ZeroDivisionError("float division by zero"))

    code, err = _run(capsys)
    assert code == 1
    assert "internal error (ZeroDivisionError: float division by zero)" in _paragraph(err)
    assert "--debug" in err
    assert "Traceback" not in err

    code, err = _run(capsys, "--debug")
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "pgvbench: error: internal error" in err

    monkeypatch.setenv("PGVBENCH_DEBUG", "1")
    code, err = _run(capsys)
    assert code == 1
    assert "Traceback" in err


def test_termination_and_interrupt_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _raising(monkeypatch, Terminated(15))
    code, err = _run(capsys)
    assert (code, err.strip()) == (
        143,
        "pgvbench: terminated (SIGTERM); partial results (if any) were written",
    )

    _raising(monkeypatch, KeyboardInterrupt())
    code, err = _run(capsys)
    assert (code, err.strip()) == (
        130,
        "pgvbench: interrupted; partial results (if any) were written",
    )


def test_out_of_memory_says_what_to_shrink(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _raising(monkeypatch, MemoryError())

    code, err = _run(capsys)

    assert code == 1
    assert "pgvbench ran out of memory" in _paragraph(err)
    assert "[dataset] n" in err


def test_debug_may_follow_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text("[experiment\n")
    code = cli.main(["validate", str(spec), "--debug"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Traceback (most recent call last):"), err
    assert "pgvbench: error: " in err


@pytest.mark.parametrize("argv", [["compare", "", "x.json"], ["merge", "out.json", "", "y"]])
def test_an_empty_results_argument_is_not_the_current_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results.json").write_text("{}")  # what "." would have picked up
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is empty" in _paragraph(err)
