"""``[build_tuning]``: the grid of build settings, parsed and checked against the spec's
[[index]] builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ...spec.model import IndexSpec
from ...spec.table import Table
from .sizes import (
    DEFAULT_MEMORY,
    DEFAULT_WORKERS,
    MAX_MEMORY_BYTES,
    MAX_WORKERS,
    MIN_MEMORY_BYTES,
    format_size,
    parse_size,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildTuningSpec:
    """``[build_tuning]``: the grid of build settings to measure on one index build."""

    maintenance_work_mem: tuple[str, ...] = DEFAULT_MEMORY  # canonical text, ascending
    max_parallel_maintenance_workers: tuple[int, ...] = DEFAULT_WORKERS  # ascending
    index: str | None = None  # label of an [[index]] build; None: the first hnsw

    @property
    def memory_bytes(self) -> tuple[int, ...]:
        return tuple(parse_size(m) for m in self.maintenance_work_mem)

    def combinations(self) -> list[tuple[str, int]]:
        """(memory, workers) in measuring order: memory ascending, then workers."""
        return [
            (m, w) for m in self.maintenance_work_mem for w in self.max_parallel_maintenance_workers
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "maintenance_work_mem": list(self.maintenance_work_mem),
            "max_parallel_maintenance_workers": list(self.max_parallel_maintenance_workers),
            "index": self.index,
        }


def tuned_index(spec: BuildTuningSpec, indexes: Sequence[IndexSpec]) -> IndexSpec | None:
    """The [[index]] the study builds: by label, else the first hnsw, else the first
    build that is not ``none``; None when nothing can be built."""
    wanted = spec.index
    fallback = next((ix for ix in indexes if ix.kind != "none"), None)
    return next(
        (ix for ix in indexes if (ix.label == wanted if wanted else ix.kind == "hnsw")),
        fallback,
    )


def parse_build_tuning(t: Table, indexes: Sequence[IndexSpec] = ()) -> BuildTuningSpec:
    """Validate ``[build_tuning]``; with ``indexes``, resolve and check the ``index`` label."""
    t.only(["maintenance_work_mem", "max_parallel_maintenance_workers", "index"])
    raw = t.data.get("maintenance_work_mem", list(DEFAULT_MEMORY))
    if isinstance(raw, str):
        raw = [raw]
    example = 'e.g. ["16MB", "64MB", "256MB", "1GB"]'
    if not isinstance(raw, list) or not raw:
        t.fail("maintenance_work_mem", f"= {raw!r} must be a non-empty list of sizes, {example}")
    sizes: dict[int, str] = {}
    for item in raw:
        if not isinstance(item, str):
            t.fail(
                "maintenance_work_mem",
                f"contains {item!r}; every value must be a size string with a unit "
                f"(kB, MB, GB, TB), {example}",
            )
        try:
            num = parse_size(item)
        except ValueError:
            t.fail(
                "maintenance_work_mem",
                f"contains {item!r}, which is not a size; allowed: a whole number with a "
                f"unit kB, MB, GB or TB, {example}",
            )
        if not MIN_MEMORY_BYTES <= num <= MAX_MEMORY_BYTES:
            t.fail(
                "maintenance_work_mem",
                f"contains {item!r}; allowed sizes are 1MB to {format_size(MAX_MEMORY_BYTES)}",
            )
        sizes[num] = format_size(num)
    workers = t.int_list(
        "max_parallel_maintenance_workers", default=list(DEFAULT_WORKERS), minimum=0,
        maximum=MAX_WORKERS,
    )  # fmt: skip
    label: str | None = None
    if "index" in t.data:
        label = t.string("index")
    if indexes:
        buildable = [ix.label for ix in indexes if ix.kind != "none"]
        if label is None:
            label = next((ix.label for ix in indexes if ix.kind == "hnsw"), None)
            if label is None:
                t.fail(
                    "index",
                    "is required when no [[index]] is hnsw; allowed: "
                    f"{', '.join(buildable) or '(no index to build)'}",
                )
        elif label not in buildable:
            t.fail(
                "index",
                f"= {label!r} is not one of the [[index]] builds to tune: "
                f"{', '.join(buildable) or '(none: kind = none builds nothing)'}",
            )
    return BuildTuningSpec(
        maintenance_work_mem=tuple(sizes[k] for k in sorted(sizes)),
        max_parallel_maintenance_workers=workers,
        index=label,
    )
