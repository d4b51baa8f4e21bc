"""``[capacity]``: the data sizes to measure, the index measured at each, the recall target,
the concurrency, what to extrapolate to, and whether to time backups and restores.

Every level is the first ``n`` rows of the experiment's dataset (a synthetic dataset's rows
are independent draws, so its first n rows are a dataset of the same family with n rows);
the dataset must hold at least the largest level (``pgvbench plan`` sets a synthetic
dataset's ``n`` to it).
"""

from __future__ import annotations

import dataclasses

from ...spec.table import Table

KINDS = ("hnsw", "ivfflat")
COMPRESSIONS = ("none", "gzip", "lz4", "zstd")  # pg_dump --compress methods
MIN_LEVELS = 3  # the largest is held out and predicted from at least two others
MAX_LEVELS = 12
MIN_ROWS = 100
DEFAULT_LEVELS = (25_000, 50_000, 100_000, 200_000)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CapacitySpec:
    """The parsed ``[capacity]`` table (``None``: take it from [query] / the data / the
    server)."""

    levels: tuple[int, ...] = DEFAULT_LEVELS  # ascending, distinct
    kinds: tuple[str, ...] = ("hnsw",)
    m: int = 16
    ef_construction: int = 64
    lists: int | None = None  # IVFFlat lists; None: rows / 1000 at each level (at least 10)
    # session settings of every build (and of the restore's rebuild); None: the server's
    maintenance_work_mem: str | None = None
    max_parallel_maintenance_workers: int | None = None
    # the recall target: the smallest ef_search / probes whose one-sided lower bound meets it
    recall: float = 0.95
    confidence: float = 0.95
    max_ef_search: int = 1000
    max_probes: int | None = None  # None: every list
    # "recall at fixed parameters": the same query knob at every level
    ef_search: int = 40
    probes: int = 10
    # timed windows (closed loop at `clients`)
    clients: int = 2
    measure_seconds: float | None = None  # each arm's windows add up to this; None: [query]
    warmup_seconds: float | None = None  # before an arm's first window; None: [query]
    window_seconds: float = 1.0  # the levels' windows alternate in rounds of this length
    # what to answer for (None: curves and held-out checks only)
    target_rows: int | None = None
    target_dim: int | None = None  # None: the data's dimension
    target_qps: float | None = None
    p99_ms: float | None = None
    # backups: pg_basebackup, pg_dump -Fd -j jobs, pg_restore -j jobs (embedded server only)
    backup_levels: tuple[int, ...] = ()  # the levels timed (empty: no backups)
    jobs: int = 2
    # pg_dump --compress; None: pg_dump's default (gzip), which float vectors barely repay
    dump_compression: str | None = None

    @property
    def largest(self) -> int:
        return self.levels[-1]


def parse_capacity(t: Table) -> CapacitySpec:
    """Validate ``[capacity]``; errors name the file, table and key (SpecError)."""
    t.only(
        [
            "levels",
            "kinds",
            "m",
            "ef_construction",
            "lists",
            "maintenance_work_mem",
            "max_parallel_maintenance_workers",
            "recall",
            "confidence",
            "max_ef_search",
            "max_probes",
            "ef_search",
            "probes",
            "clients",
            "measure_seconds",
            "warmup_seconds",
            "window_seconds",
            "target_rows",
            "target_dim",
            "target_qps",
            "p99_ms",
            "backup",
            "jobs",
            "dump_compression",
        ]
    )
    data = t.data
    levels = t.int_list("levels", default=list(DEFAULT_LEVELS), minimum=MIN_ROWS, maximum=10**9)
    if not MIN_LEVELS <= len(levels) <= MAX_LEVELS:
        t.fail(
            "levels",
            f"= {list(levels)} must list {MIN_LEVELS} to {MAX_LEVELS} distinct row counts: the "
            "largest is held out and predicted from the others, so at least two others are "
            "needed, e.g. [25000, 50000, 100000, 200000]",
        )
    m = t.integer("m", default=16, minimum=2, maximum=100)
    efc = t.integer("ef_construction", default=64, minimum=4, maximum=1000)
    if efc < 2 * m:
        t.fail("ef_construction", f"= {efc} is below 2 x m = {2 * m} (pgvector's rule)")
    target_rows = (
        t.integer("target_rows", minimum=1, maximum=10**12) if "target_rows" in data else None
    )
    p99_ms = _opt_number(t, "p99_ms", minimum=0.001, maximum=1e6)
    target_qps = _opt_number(t, "target_qps", minimum=0.001, maximum=1e9)
    if p99_ms is not None and target_qps is None:
        t.fail("p99_ms", "needs target_qps: the bound is checked at that throughput")
    memory = data.get("maintenance_work_mem")
    if memory is not None and (not isinstance(memory, str) or not memory.strip()):
        t.fail("maintenance_work_mem", f'= {memory!r} must be a size, e.g. "512MB"')
    workers = (
        t.integer("max_parallel_maintenance_workers", minimum=0, maximum=64)
        if "max_parallel_maintenance_workers" in data
        else None
    )
    return CapacitySpec(
        levels=levels,
        kinds=tuple(dict.fromkeys(t.str_list("kinds", default=["hnsw"], allowed=KINDS))),
        m=m,
        ef_construction=efc,
        lists=t.integer("lists", minimum=1, maximum=32768) if "lists" in data else None,
        maintenance_work_mem=memory.strip() if isinstance(memory, str) else None,
        max_parallel_maintenance_workers=workers,
        recall=t.number("recall", default=0.95, minimum=0.01, maximum=1.0),
        confidence=t.number("confidence", default=0.95, minimum=0.5, maximum=0.999),
        max_ef_search=t.integer("max_ef_search", default=1000, minimum=1, maximum=1000),
        max_probes=t.integer("max_probes", minimum=1, maximum=32768)
        if "max_probes" in data
        else None,
        ef_search=t.integer("ef_search", default=40, minimum=1, maximum=1000),
        probes=t.integer("probes", default=10, minimum=1, maximum=32768),
        clients=t.integer("clients", default=2, minimum=1, maximum=1000),
        measure_seconds=_opt_number(t, "measure_seconds", minimum=0.1, maximum=3600),
        warmup_seconds=_opt_number(t, "warmup_seconds", minimum=0.0, maximum=3600),
        window_seconds=t.number("window_seconds", default=1.0, minimum=0.1, maximum=600),
        target_rows=target_rows,
        target_dim=t.integer("target_dim", minimum=1, maximum=16000)
        if "target_dim" in data
        else None,
        target_qps=target_qps,
        p99_ms=p99_ms,
        backup_levels=_backup_levels(t, levels),
        jobs=t.integer("jobs", default=2, minimum=1, maximum=64),
        dump_compression=(
            t.choice("dump_compression", COMPRESSIONS) if "dump_compression" in data else None
        ),
    )


def _backup_levels(t: Table, levels: tuple[int, ...]) -> tuple[int, ...]:
    """``backup = true`` (every level), ``false`` (none) or a list of the levels to time."""
    value = t.data.get("backup", False)
    if isinstance(value, bool):
        return levels if value else ()
    if isinstance(value, list):
        chosen = t.int_list("backup", default=[], minimum=MIN_ROWS, maximum=10**9)
        stray = [v for v in chosen if v not in levels]
        if stray:
            t.fail("backup", f"lists {stray}, which are not among levels = {list(levels)}")
        return chosen
    t.fail(
        "backup",
        f"= {value!r} must be true (time a base backup, pg_dump and pg_restore at every "
        "level), false, or a list of levels to time, e.g. [25000, 50000]",
    )
    return ()  # not reached: fail() raises


def _opt_number(t: Table, key: str, *, minimum: float, maximum: float) -> float | None:
    return t.number(key, minimum=minimum, maximum=maximum) if key in t.data else None
