"""``pgvbench merge``: pool several runs of one spec into one results file.

One run's repeats only see the noise of the minute it ran in; a second run on the same
machine can sit a few percent away as a whole (CPU frequency, neighbours, a different
HNSW graph or IVFFlat clustering from the random build). Pooling runs gives each side of
a comparison that between-run variation, so a typical run does not look significant.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import IncompatibleResults
from ..results import MergedRun, Results
from .environment import check_environment


def refuse_duplicate_runs(parts: Sequence[tuple[str, Path, Results]]) -> None:
    """One run given twice (the same file, or a copy of it) would pool as two runs with no
    variation between them, and make the gate trust a spread that was never measured."""
    paths: dict[str, str] = {}
    runs: dict[tuple[str, str, int | None], str] = {}
    for name, path, results in parts:
        real = os.path.realpath(path)
        if real in paths:
            raise IncompatibleResults(
                f"{name} and {paths[real]} are the same file ({real}): one run given twice "
                "would count as two runs with no variation between them. Pass each run once."
            )
        paths[real] = name
        pid = results.writer.pid if results.writer else None
        identity = (results.run_name, results.started_at, pid)
        if identity in runs:
            who = f", pid {pid}" if pid is not None else ""
            raise IncompatibleResults(
                f"{name} and {runs[identity]} are the same run ({results.run_name!r} started "
                f"{results.started_at}{who}), copied: it would count twice with no variation "
                "between the copies. Pass each run once; the runs to pool come from separate "
                "`pgvbench run`s of the spec."
            )
        runs[identity] = name


def merge_results(parts: Sequence[tuple[str, Results]]) -> Results:
    """Concatenate the records of complete, comparable runs; samples keep their source."""
    if len(parts) < 2:
        raise IncompatibleResults("merge needs at least two results files")
    problems: list[str] = []
    first_name, first = parts[0]
    for name, results in parts:
        if results.status != "complete":
            problems.append(f"{name}: the run is {results.status}, not complete")
        if results.merged_from:
            problems.append(f"{name}: already a merged file; merge the original runs")
    for name, results in parts[1:]:
        env = check_environment(first, results)
        # the values read first-file-first, like the labels
        problems += [f"{first_name} vs {name}: {r}" for r in env.refusals]
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise IncompatibleResults(f"cannot merge these runs:\n{listed}")
    merged = copy.deepcopy(first)
    merged.indexes, merged.runs, merged.load_points = [], [], []
    for i, (name, results) in enumerate(parts):
        part = copy.deepcopy(results)
        for sample in [s for p in part.runs for s in p.samples] + [
            s for p in part.load_points for s in p.samples
        ]:
            sample.run = i
        merged.indexes += part.indexes
        merged.runs += part.runs
        merged.load_points += part.load_points
        merged.merged_from.append(
            MergedRun(
                source=name,
                started_at=results.started_at,
                finished_at=results.finished_at,
                git_commit=results.environment.git_commit,
            )
        )
    merged.started_at = min(r.started_at for _, r in parts)
    finished = [r.finished_at for _, r in parts if r.finished_at]
    merged.finished_at = max(finished) if finished else None
    return merged
