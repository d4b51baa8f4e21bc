"""Progress on stderr, the final summary on stdout.

On a terminal, progress is rich bars. Anywhere else (a CI log, a pipe, a file) it is plain
lines, one per finished step, never cut to a width and without escape codes::

    [  12.3s] ground truth top-10 for 200 queries ... done (0.4 s): ground truth (exact)

A step still running after ``HEARTBEAT_S`` prints where it is, at most that often, so a
long index build does not look like a hung job. ``enabled=False`` (``--quiet``) silences
progress only; :meth:`Reporter.summary` always prints.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

from rich.console import Console
from rich.errors import MarkupError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

HEARTBEAT_S = 30.0


class Task:
    """Handle for one step: advance it, change its total or description."""

    def __init__(
        self,
        reporter: Reporter | None = None,
        task_id: TaskID | None = None,
        *,
        description: str = "",
        total: float | None = None,
    ) -> None:
        self._reporter = reporter
        self._id = task_id
        self.first_description = description
        self.description = description
        self.total = total
        self.completed = 0.0
        self.started = time.monotonic()
        self.last_line = self.started

    def advance(self, amount: float = 1.0) -> None:
        self.completed += amount
        if self._reporter is not None:
            self._reporter._changed(self, advance=amount)

    def update(
        self,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        if self._reporter is not None:
            self._reporter._changed(self, completed=completed, total=total, description=description)


class Reporter:
    """Progress of a run: bars on a terminal, plain lines elsewhere, nothing when disabled.

    ``plain`` forces one style (default: plain unless the console writes to a terminal).
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        console: Console | None = None,
        plain: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.plain = not _is_tty(self.console.file) if plain is None else plain
        self._clock = clock
        self._t0 = clock()
        self._progress: Progress | None = None
        self._lock = threading.Lock()
        self.active: list[str] = []

    def __enter__(self) -> Reporter:
        self._t0 = self._clock()
        if self.enabled and not self.plain:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Task]:
        # The steps under way, innermost last: a failure report names where it happened.
        self.active.append(description)
        try:
            with self._task(description, total) as task:
                yield task
        finally:
            self.active.remove(description)

    @contextlib.contextmanager
    def _task(self, description: str, total: float | None) -> Iterator[Task]:
        if not self.enabled:
            yield Task(description=description, total=total)
            return
        if self.plain:
            yield from self._plain_task(description, total)
            return
        if self._progress is None:  # bars, but outside ``with reporter``: nothing to draw on
            yield Task(description=description, total=total)
            return
        task_id = self._progress.add_task(description, total=total)
        try:
            yield Task(self, task_id, description=description, total=total)
        finally:
            task = self._progress.tasks[self._progress.task_ids.index(task_id)]
            if task.total is None:
                self._progress.update(task_id, total=1, completed=1)
            else:
                self._progress.update(task_id, completed=task.total)

    def log(self, message: str) -> None:
        """A one-line message among the progress (rich markup such as [yellow] allowed)."""
        if not self.enabled:
            return
        if self.plain:
            self._line(_plain_text(message))
        else:
            self.console.print(message, highlight=False)

    def summary(self, message: str) -> None:
        """The run's outcome for the user (where the results and report are): stdout,
        plain text, printed even with ``enabled=False``. Call it after the ``with``
        block, once the bars are gone."""
        out = sys.stdout
        out.write(message + "\n")
        out.flush()

    # ------------------------------------------------------------------ internals

    def _plain_task(self, description: str, total: float | None) -> Iterator[Task]:
        task = Task(self, None, description=description, total=total)
        task.started = task.last_line = self._clock()
        outcome = "done"
        try:
            yield task
        except Exception:
            outcome = "failed"
            raise
        except BaseException:
            outcome = "interrupted"
            raise
        finally:
            seconds = self._clock() - task.started
            line = f"{_plain_text(task.first_description)} ... {outcome} ({seconds:.1f} s)"
            if task.description != task.first_description:
                line += f": {_plain_text(task.description)}"
            self._line(line)

    def _changed(
        self,
        task: Task,
        *,
        advance: float | None = None,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        if self.plain:
            now = self._clock()
            if now - task.last_line >= HEARTBEAT_S:
                task.last_line = now
                done = f"{task.completed:g}/{task.total:g}, " if task.total else ""
                self._line(
                    f"{_plain_text(task.description)} ... {done}running for "
                    f"{now - task.started:.0f} s"
                )
            return
        if self._progress is None or task._id is None:
            return
        if advance is not None:
            self._progress.advance(task._id, advance)
        else:
            self._progress.update(
                task._id, completed=completed, total=total, description=description
            )

    def _line(self, text: str) -> None:
        # straight to the stream: rich would wrap to 80 columns and may add colour codes
        stamp = f"[{self._clock() - self._t0:6.1f}s] "
        with self._lock:
            out = self.console.file
            out.write(stamp + text + "\n")
            out.flush()


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _plain_text(message: str) -> str:
    """The text of a message written with rich markup ([yellow]...[/yellow]), tags removed."""
    try:
        return Text.from_markup(message).plain
    except MarkupError:
        return message
