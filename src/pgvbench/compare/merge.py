"""``pgvbench merge``: pool several runs of one spec into one results file.

One run's repeats only see the noise of the minute it ran in; a second run on the same
machine can sit a few percent away as a whole (CPU frequency, neighbours, a different
HNSW graph or IVFFlat clustering from the random build). Pooling runs gives each side of
a comparison that between-run variation, so a typical run does not look significant.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from ..errors import IncompatibleResults
from ..results import MergedRun, Results
from .environment import check_environment


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
        problems += [f"{name} vs {first_name}: {r}" for r in env.refusals]
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
