"""Small helpers both runners use to record a run."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import PgvbenchError, Terminated
from .results import Results, write_results

RESULTS_FILE = "results.json"

R = TypeVar("R")


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def plain(obj: Any) -> Any:
    """JSON form of an analysis record (dataclasses, tuples, numpy scalars)."""
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type):
        return plain(to_dict())  # the record's own JSON form (may add derived fields)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def describe_failure(exc: BaseException) -> str:
    """The failure line stored in results.json."""
    if isinstance(exc, Terminated):
        return f"terminated ({exc.name}); results hold the points measured before"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C); results hold the points measured before"
    if isinstance(exc, PgvbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def update_in_place(target: R, source: R) -> None:
    """Copy every field of ``source`` onto ``target``, so a record already listed in the
    results (and saved) keeps its identity while its values grow repeat by repeat."""
    for field in dataclasses.fields(source):  # type: ignore[arg-type]
        setattr(target, field.name, getattr(source, field.name))


class ResultsRecorder:
    """What both runners share: results.json under ``out_dir``, rewritten after every step
    and stamped with its final status, so an interrupted run keeps what it measured."""

    out_dir: Path
    results: Results | None = None
    saved = False  # True once results.json exists for this run
    # Finds the root cause behind a failure (e.g. the server crashed, and the error seen
    # was only a broken connection or the interrupt that broke it); set by the CLI.
    diagnose: Callable[[BaseException], BaseException | None] | None = None

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    def _record_failure(self, exc: BaseException) -> BaseException:
        """Stamp results.json with the failure's root cause; return the exception to raise
        (the root cause, or ``exc`` itself)."""
        root = (self.diagnose(exc) if self.diagnose is not None else None) or exc
        status = "partial" if isinstance(root, KeyboardInterrupt) else "failed"
        self._finish(status, failure=describe_failure(root))
        return root

    def _finish(self, status: str, failure: str | None = None) -> None:
        if self.results is None:
            return
        self.results.status = status  # type: ignore[assignment]
        self.results.finished_at = now_iso()
        self.results.failure = failure
        self._save()

    def _save(self) -> None:
        assert self.results is not None
        write_results(self.results, self.results_path)
        self.saved = True
