"""The search space: every build configuration the tuner may propose, with defaults derived
from the data (rows, dimension) where the user left a key out, and the ladder of query
knob values each build's bisection walks.

Discrete on purpose: the same space enumerates as a full grid (grid_configs) for the
"tuning time vs grid" estimate and for bench/tune_vs_grid.py, so the two answer the
same question.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ...spec.model import INDEX_MAX_DIM
from .records import Config
from .spec import TuneSpec

# HNSW: m beyond 32 rarely pays at these sizes and build time grows with it; the
# ef_construction values double, as pgvector's docs and ann-benchmarks sweep them.
DEFAULT_M = (8, 12, 16, 24, 32)
DEFAULT_EF_CONSTRUCTION = (32, 64, 128, 256)
HALFVEC_FROM_DIM = 256  # below this halfvec saves little next to the row overhead
# the ef_search ladder (pgvector caps it at 1000); values below k are skipped
EF_SEARCH_LADDER = (10, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200, 256, 320, 400,
                    512, 640, 800, 1000)  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class Space:
    """The resolved space (every key known) and where each part came from."""

    kinds: tuple[str, ...]
    m: tuple[int, ...]
    ef_construction: tuple[int, ...]
    lists: tuple[int, ...]
    storage: tuple[str, ...]
    maintenance_work_mem: tuple[str, ...]
    max_parallel_maintenance_workers: tuple[int, ...]
    max_ef_search: int
    max_probes: int | None
    k: int
    derived: tuple[str, ...]  # keys derived from the data, not given by the user

    def hnsw_pairs(self) -> list[tuple[int, int]]:
        """(m, ef_construction) pairs pgvector accepts (ef_construction >= 2 m)."""
        return [(m, e) for m in self.m for e in self.ef_construction if e >= 2 * m]

    def knob_ladder(self, config: Config) -> tuple[int, ...]:
        """The query knob values a build's bisection may test, ascending."""
        if config.kind == "hnsw":
            top = self.max_ef_search
            values = [v for v in EF_SEARCH_LADDER if self.k <= v <= top]
            if not values or values[-1] != top:
                values.append(top)
            return tuple(sorted(set(values)))
        lists = int(config.params["lists"])
        top = min(lists, self.max_probes or lists)
        return probes_ladder(top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "m": list(self.m),
            "ef_construction": list(self.ef_construction),
            "lists": list(self.lists),
            "storage": list(self.storage),
            "maintenance_work_mem": list(self.maintenance_work_mem),
            "max_parallel_maintenance_workers": list(self.max_parallel_maintenance_workers),
            "max_ef_search": self.max_ef_search,
            "max_probes": self.max_probes,
            "k": self.k,
            "derived": list(self.derived),
        }


def probes_ladder(top: int) -> tuple[int, ...]:
    """1, 2, 3, 4, 6, 8, 12, 16, ... up to ``top`` (about 1.4x apart), ``top`` included."""
    values: set[int] = {top}
    v = 1.0
    while v < top:
        values.add(round(v))
        v *= math.sqrt(2)
    return tuple(sorted(x for x in values if 1 <= x <= top))


def default_lists(rows: int) -> tuple[int, ...]:
    """pgvector's rule of thumb is rows/1000 lists up to 1M rows, sqrt(rows) beyond; the
    space brackets it by 4x each way (at least 4 lists, each list holding >= 20 rows)."""
    centre = rows / 1000 if rows <= 1_000_000 else math.sqrt(rows)
    values = {max(4, round(centre * f)) for f in (0.25, 0.5, 1.0, 2.0, 4.0)}
    return tuple(sorted(v for v in values if rows / v >= 20)) or (max(1, rows // 20),)


def resolve_space(spec: TuneSpec, *, rows: int, dim: int, k: int) -> Space:
    """The space of ``spec`` on data of ``rows`` x ``dim`` (keys left out derived here)."""
    derived: list[str] = []
    m = spec.m or DEFAULT_M
    efc = spec.ef_construction or DEFAULT_EF_CONSTRUCTION
    lists = spec.lists or default_lists(rows)
    derived.extend(
        key
        for key, given in (("m", spec.m), ("ef_construction", spec.ef_construction),
                           ("lists", spec.lists))
        if given is None
    )  # fmt: skip
    storage = spec.storage
    if storage is None:
        derived.append("storage")
        storage = ("vector",)
        if dim >= HALFVEC_FROM_DIM:
            storage = ("vector", "halfvec_index", "halfvec_column")
        if dim > INDEX_MAX_DIM["vector"]:  # pgvector indexes vector up to 2,000 dims only
            storage = ("halfvec_index", "halfvec_column")
    return Space(
        kinds=spec.kinds,
        m=tuple(m),
        ef_construction=tuple(efc),
        lists=tuple(v for v in lists if v <= rows) or (max(1, rows // 20),),
        storage=tuple(storage),
        maintenance_work_mem=spec.maintenance_work_mem,
        max_parallel_maintenance_workers=spec.max_parallel_maintenance_workers,
        max_ef_search=spec.max_ef_search,
        max_probes=spec.max_probes,
        k=k,
        derived=tuple(derived),
    )


def build_settings_choices(space: Space) -> list[dict[str, str]]:
    """Every combination of the searched build settings ([{}] when none are searched)."""
    out: list[dict[str, str]] = [{}]
    if space.maintenance_work_mem:
        out = [{**s, "maintenance_work_mem": v} for s in out for v in space.maintenance_work_mem]
    if space.max_parallel_maintenance_workers:
        out = [
            {**s, "max_parallel_maintenance_workers": str(v)}
            for s in out
            for v in space.max_parallel_maintenance_workers
        ]
    return out


def grid_configs(space: Space) -> list[Config]:
    """Every build of the space: what a full grid would build."""
    configs: list[Config] = []
    for settings in build_settings_choices(space):
        for storage in space.storage:
            if "hnsw" in space.kinds:
                for m, efc in space.hnsw_pairs():
                    params = {"m": m, "ef_construction": efc}
                    configs.append(
                        Config(kind="hnsw", params=params, storage=storage, build_settings=settings)
                    )
            if "ivfflat" in space.kinds:
                for lists in space.lists:
                    configs.append(
                        Config(
                            kind="ivfflat",
                            params={"lists": lists},
                            storage=storage,
                            build_settings=settings,
                        )
                    )
    return configs


def grid_points(space: Space) -> int:
    """(build, knob value) points of the full grid."""
    return sum(len(space.knob_ladder(c)) for c in grid_configs(space))


def neighbours(config: Config, space: Space) -> list[Config]:
    """Buildable configurations one step from ``config`` in the ordered value lists (m,
    ef_construction, lists; diagonals for HNSW; the other storages of the same build),
    nearest first: where a local search looks once the global one found a good region."""
    out: list[tuple[int, Config]] = []

    def add(distance: int, **changes: Any) -> None:
        out.append((distance, dataclasses.replace(config, **changes)))

    if config.kind == "hnsw":
        mi = space.m.index(config.params["m"]) if config.params["m"] in space.m else -1
        ei = (
            space.ef_construction.index(config.params["ef_construction"])
            if config.params["ef_construction"] in space.ef_construction
            else -1
        )
        if mi >= 0 and ei >= 0:
            pairs = set(space.hnsw_pairs())
            for dm in (-1, 0, 1):
                for de in (-1, 0, 1):
                    m_j, e_j = mi + dm, ei + de
                    if (dm, de) == (0, 0) or not (0 <= m_j < len(space.m)):
                        continue
                    if not 0 <= e_j < len(space.ef_construction):
                        continue
                    pair = (space.m[m_j], space.ef_construction[e_j])
                    if pair in pairs:
                        add(abs(dm) + abs(de), params={"m": pair[0], "ef_construction": pair[1]})
    elif config.params.get("lists") in space.lists:
        li = space.lists.index(config.params["lists"])
        for j in (li - 1, li + 1):
            if 0 <= j < len(space.lists):
                add(1, params={"lists": space.lists[j]})
    for storage in space.storage:
        if storage != config.storage:
            add(1, storage=storage)
    return [c for _, c in sorted(out, key=lambda item: item[0])]
