"""Progress: plain whole lines off a terminal, rich bars on one, summary on stdout."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from pgvbench.progress import HEARTBEAT_S, Reporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plain(clock: FakeClock) -> tuple[Reporter, io.StringIO]:
    buffer = io.StringIO()
    return Reporter(console=Console(file=buffer), clock=clock), buffer


def test_off_a_terminal_each_step_is_one_plain_line() -> None:
    clock = FakeClock()
    reporter, buffer = _plain(clock)
    assert reporter.plain
    with reporter:
        clock.now += 11.9
        with reporter.task("ground truth top-10 for 200 queries") as task:
            clock.now += 0.4
            task.update(description="ground truth (exact, cached)")
        with reporter.task("ANALYZE"):
            clock.now += 0.2
    assert buffer.getvalue().splitlines() == [
        "[  12.3s] ground truth top-10 for 200 queries ... done (0.4 s): "
        "ground truth (exact, cached)",
        "[  12.5s] ANALYZE ... done (0.2 s)",
    ]


def test_plain_lines_are_never_cut_wrapped_or_coloured() -> None:
    clock = FakeClock()
    reporter, buffer = _plain(clock)
    long = "build hnsw(m=16,ef_construction=64) on a table with a rather long name " * 4
    with reporter:
        reporter.log(f"[yellow]setting work_mem not applied: {long}[/yellow]")
        with reporter.task(long, total=10) as task:
            task.advance(10)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0] == f"[   0.0s] setting work_mem not applied: {long}"
    assert lines[1] == f"[   0.0s] {long} ... done (0.0 s)"
    assert "\x1b" not in text and "…" not in text and "━" not in text


def test_a_long_step_prints_where_it_is_at_most_every_heartbeat() -> None:
    clock = FakeClock()
    reporter, buffer = _plain(clock)
    with reporter, reporter.task("build hnsw", total=100) as task:
        for _ in range(10):
            clock.now += HEARTBEAT_S / 4
            task.update(completed=task.completed + 5, description="build hnsw: loading tuples")
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "[  30.0s] build hnsw: loading tuples ... 20/100, running for 30 s",
        "[  60.0s] build hnsw: loading tuples ... 40/100, running for 60 s",
        "[  75.0s] build hnsw ... done (75.0 s): build hnsw: loading tuples",
    ]


def test_failed_and_interrupted_steps_say_so_and_the_error_propagates() -> None:
    clock = FakeClock()
    reporter, buffer = _plain(clock)
    with pytest.raises(RuntimeError), reporter.task("load 3,000 rows"):
        clock.now += 2
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), reporter.task("sweep hnsw"):
        raise KeyboardInterrupt
    assert buffer.getvalue().splitlines() == [
        "[   2.0s] load 3,000 rows ... failed (2.0 s)",
        "[   2.0s] sweep hnsw ... interrupted (0.0 s)",
    ]


def test_quiet_prints_no_progress_but_the_summary_goes_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reporter = Reporter(enabled=False)
    with reporter:
        reporter.log("embedded server: /x")
        with reporter.task("ANALYZE") as task:
            task.advance()
    reporter.summary("results: reports/x/results.json (complete)")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == "results: reports/x/results.json (complete)\n"


def test_default_console_is_stderr_and_plain_when_it_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reporter = Reporter()
    assert reporter.plain
    with reporter, reporter.task("generate / read dataset"):
        pass
    reporter.summary("report: r.md  r.html")
    captured = capsys.readouterr()
    assert re.fullmatch(
        r"\[ +\d+\.\ds\] generate / read dataset \.\.\. done \(\d+\.\d s\)\n", captured.err
    )
    assert captured.out == "report: r.md  r.html\n"


def test_on_a_terminal_progress_is_rich_bars() -> None:
    buffer = TtyBuffer()
    reporter = Reporter(console=Console(file=buffer, force_terminal=True, width=100))
    assert not reporter.plain
    with reporter, reporter.task("load 10 rows", total=10) as task:
        task.advance(10)
    text = buffer.getvalue()
    assert "load 10 rows" in text and "10/10" in text
    assert "━" in text and "\x1b[" in text
