"""The one list of studies. Spec parsing, both runners, the plan estimate and the report
loop over it; adding a study is a package under studies/ and one line here.

Order matters twice: it is the order of the report's sections, and (within a stage)
the order studies run in, except that a vector run measures the studies that share the
index build after the others, and a study that restarts the server last.
"""

from __future__ import annotations

from typing import Any

from .base import Study
from .build import STUDY as BUILD_TUNING
from .cache import STUDY as CACHE
from .capacity import STUDY as CAPACITY
from .drift import STUDY as DRIFT
from .filtered import STUDY as FILTERED
from .filtered import VECTOR_STUDY as FILTERED_VECTOR
from .quantization import STUDY as QUANTIZATION
from .replicas import STUDY as REPLICAS
from .result_cache import STUDY as RESULT_CACHE
from .tune import STUDY as TUNE

REGISTRY: tuple[Study[Any, Any], ...] = (
    FILTERED,
    FILTERED_VECTOR,  # the same [filtered] table on vector data (results.tuning)
    DRIFT,
    REPLICAS,  # after drift: measured on the platform the agent studies leave
    BUILD_TUNING,
    CACHE,
    RESULT_CACHE,
    QUANTIZATION,
    CAPACITY,
    TUNE,  # last: its report section follows the measurements it builds on
)


def studies_for(kind: str) -> list[Study[Any, Any]]:
    """The studies an experiment of ``kind`` may have, in report order."""
    return [study for study in REGISTRY if kind in study.applies_to]


def studies_in(kind: str, stage: str) -> list[Study[Any, Any]]:
    """The studies of one stage in the order they run: those sharing the index build
    after the others, and one that restarts the server last."""
    chosen = [s for s in studies_for(kind) if s.stage == stage]
    return sorted(chosen, key=lambda s: (s.needs_index, s.restarts_server))


def study_named(name: str) -> Study[Any, Any]:
    """The registered study of that name (its spec table)."""
    for study in REGISTRY:
        if study.name == name:
            return study
    raise KeyError(f"no study named {name!r}; registered: {[s.name for s in REGISTRY]}")
