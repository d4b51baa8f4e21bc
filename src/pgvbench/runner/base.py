"""The one runner contract for every experiment kind: ``prepare()`` does the client-side
work that needs no server (a bad input fails before anything starts), then
``run(target)`` applies the spec's settings through the server handle, checks the server,
measures, and runs the spec's studies from the registry. results.json is rewritten after
every step; on any failure it is stamped with the root cause and what was measured stays.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from .._records import ResultsRecorder, now_iso
from ..db.indexes import BuildProgress
from ..environment import collect_environment
from ..errors import RunFailed, SpecError
from ..progress import Reporter, Task
from ..results import DatasetInfo, Results, ServerSettingsInfo, current_writer
from ..server.connection import Target, connect
from ..server.handle import ServerHandle, as_handle
from ..server.sessions import watch_concurrent_runs
from ..spec.model import ExperimentSpec, SweepConfig
from ..studies.base import Study, StudyContext
from ..studies.registry import studies_in


class Runner(ResultsRecorder, abc.ABC):
    """Carries one experiment from spec to results.json."""

    def __init__(self, spec: ExperimentSpec, *, out_dir: Path, reporter: Reporter) -> None:
        self.spec = spec
        self.out_dir = out_dir
        self.reporter = reporter
        self.target = Target(dsn="", kind="unset")
        self.handle: ServerHandle | None = None
        self.results: Results | None = None
        self.saved = False
        self.server_settings: ServerSettingsInfo | None = None
        self._prepared = False

    # ------------------------------------------------------------------ the contract

    def prepare(self) -> None:
        """Client-side work that needs no server (datasets, ground truth); idempotent."""
        if not self._prepared:
            self._prepare()
            self._prepared = True

    def run(self, target: Target | ServerHandle) -> Results:
        """Run the experiment against ``target`` (a server handle applies the spec's
        settings first; a bare Target is used as it is)."""
        self.prepare()
        self.handle = as_handle(target)
        self._apply_settings()
        with connect(self.target.dsn) as conn:
            self._check_server(conn)  # privileges and ownership: before anything is written
            self.results = Results(
                run_name=self.spec.name,
                status="running",
                writer=current_writer(),
                started_at=now_iso(),
                finished_at=None,
                environment=collect_environment(conn, server_kind=self.target.kind),
                spec=self.spec.to_dict(),
                server_settings=self.server_settings,
                dataset=self._dataset_info(),
                recall_rule=self.spec.query.recall_rule,
            )
            watch_concurrent_runs(conn, self.target.dsn, self.results, log=self.reporter.log)
        try:
            self._save()
            self._run(self.results)
        except BaseException as exc:
            root = self._record_failure(exc)
            if root is exc:
                raise
            raise root from exc
        self._finish("complete")
        return self.results

    # ------------------------------------------------------------------ for subclasses

    @abc.abstractmethod
    def _prepare(self) -> None: ...

    @abc.abstractmethod
    def _check_server(self, conn: psycopg.Connection[Any]) -> None: ...

    @abc.abstractmethod
    def _dataset_info(self) -> DatasetInfo | None: ...

    @abc.abstractmethod
    def _run(self, results: Results) -> None: ...

    # ------------------------------------------------------------------ settings

    def _apply_settings(self) -> None:
        """[server.settings] now; [[server.sweep]] entries checked up front, applied later
        by :meth:`_configure`."""
        assert self.handle is not None
        spec = self.spec
        where = str(spec.source_path)
        applied = self.handle.apply(spec.server.settings, where=where, table="[server.settings]")
        self.target = applied.target
        if applied.info is not None:
            self.server_settings = applied.info
            for name, why in applied.info.not_applied.items():
                self.reporter.log(f"[yellow]setting {name} not applied: {why}[/yellow]")
        for i, config in enumerate(spec.server.sweep, start=1):
            self.handle.check(
                {**spec.server.settings, **config.settings},
                base=spec.server.settings,
                where=f"{where}: [[server.sweep]] #{i} ({config.label})",
            )

    def _configure(self, config: SweepConfig) -> dict[str, Any]:
        """Apply one [[server.sweep]] entry on top of [server.settings]; return what became
        of each of its settings (recorded in results.tuning.settings_sweep)."""
        assert self.handle is not None
        if not self.handle.configurable:
            raise RunFailed("[[server.sweep]] needs a server to configure; none was given")
        applied = self.handle.apply(
            {**self.spec.server.settings, **config.settings},
            where=str(self.spec.source_path),
            table=f"[[server.sweep]] ({config.label})",
        )
        self.target = applied.target
        info = applied.info
        assert info is not None
        return {
            "requested": dict(config.settings),
            "in_effect": info.in_effect,
            "not_applied": info.not_applied,
            "restarted": info.restarted,
            "method": info.method,
        }

    # ------------------------------------------------------------------ studies

    def _studies(self, stage: str) -> list[tuple[Study[Any, Any], Any]]:
        """The spec's studies of this stage, in registry order, with their parsed specs."""
        present: Mapping[str, Any] = self.spec.study_specs
        return [
            (study, present[study.name])
            for study in studies_in(self.spec.kind, stage)
            if present.get(study.name) is not None
        ]

    def _check_dataset(self, dataset: Any) -> None:
        """Every study of the spec can run on ``dataset`` (SpecError, exit 2, if not)."""
        where = str(self.spec.source_path) if self.spec.source_path else "<spec>"
        for stage in ("before", "after"):
            for study, spec in self._studies(stage):
                problem = study.dataset_problem(spec, dataset, where)
                if problem is not None:
                    raise SpecError(problem)

    def _run_study(self, study: Study[Any, Any], spec: Any, ctx: StudyContext) -> None:
        """Measure, store the record, add its advice; results saved after each study."""
        results = self.results
        assert results is not None

        def save_partial(partial: Any) -> None:
            study.store(results, partial)
            self._save()

        ctx = dataclasses.replace(ctx, save_partial=save_partial)
        label = study.progress_label(spec)
        with self.reporter.task(label) if label else contextlib.nullcontext():
            result = study.run(ctx, spec)
        study.store(results, result)
        texts = [r.text for r in study.advice(result)]
        if study.section == "agent":
            assert results.agent is not None
            results.agent.recommendations.extend(texts)
        else:
            assert results.tuning is not None
            results.tuning.recommendations.extend(texts)
        self._save()


def build_progress(task: Task, label: str) -> Callable[[BuildProgress], None]:
    """Show an index build's phase and share done on ``task`` (both runners build)."""

    def show(p: BuildProgress) -> None:
        frac = p.fraction
        task.update(
            description=f"build {label}: {p.phase}",
            completed=100 * frac if frac is not None else None,
        )

    return show
