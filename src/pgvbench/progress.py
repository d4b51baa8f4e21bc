"""Terminal progress: rich bars on a TTY-or-not console, silent when disabled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Task:
    """Handle for one progress line."""

    def __init__(self, progress: Progress | None, task_id: TaskID | None) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, amount: float = 1.0) -> None:
        if self._progress is not None and self._id is not None:
            self._progress.advance(self._id, amount)

    def update(
        self,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        if self._progress is not None and self._id is not None:
            self._progress.update(
                self._id, completed=completed, total=total, description=description
            )


class Reporter:
    """Progress bars and one-line messages for a run."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    def __enter__(self) -> Reporter:
        if self.enabled:
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
        if self._progress is None:
            yield Task(None, None)
            return
        task_id = self._progress.add_task(description, total=total)
        try:
            yield Task(self._progress, task_id)
        finally:
            task = self._progress.tasks[self._progress.task_ids.index(task_id)]
            if task.total is None:
                self._progress.update(task_id, total=1, completed=1)
            else:
                self._progress.update(task_id, completed=task.total)

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, highlight=False)
