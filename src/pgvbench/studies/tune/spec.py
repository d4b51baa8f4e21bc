"""``[tune]``: the target (recall@k lower bound, a latency bound at a concurrency or an
arrival rate, the objective), the budgets, and the search space the user pins or narrows.

Every space key left out is derived from the data (space.py) once its shape is known;
the parsed spec keeps ``None`` for "derive it" so the recorded spec says what the user
wrote, not what this version of pgvbench derived.
"""

from __future__ import annotations

import dataclasses

from ...spec.table import Table

KINDS = ("hnsw", "ivfflat")
# vector: the column as loaded; halfvec_index: an expression index on embedding::halfvec(d)
# (the table keeps full precision); halfvec_column: the column itself is halfvec(d), so
# the table shrinks too (queries then compare halfvec with halfvec)
STORAGES = ("vector", "halfvec_index", "halfvec_column")
OBJECTIVES = ("qps", "p99", "memory")  # maximise QPS | minimise p99 | minimise memory
LATENCY_STATS = ("p99", "p95")
ITERATIVE_SCANS = ("off", "relaxed_order", "strict_order")
MAX_EF_SEARCH = 1000  # pgvector's hnsw.ef_search maximum


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuneSpec:
    """The parsed ``[tune]`` table (``None``: derive from the data / take from [query])."""

    # -- the target
    recall: float = 0.95  # recall@k's one-sided lower bound must reach this
    confidence: float = 0.95  # of that lower bound (bootstrap over queries)
    latency: str = "p99"  # p99 | p95
    latency_ms: float | None = None  # the bound on that percentile; None: no latency bound
    clients: int = 1  # closed loop at this concurrency ...
    rate: float | None = None  # ... or open loop at this arrival rate (operations/s)
    objective: str = "qps"
    # -- budgets (None: unbounded)
    max_index_mb: float | None = None
    max_build_seconds: float | None = None
    max_memory_mb: float | None = None  # index + heap (what must stay resident)
    time_budget_s: float | None = None  # the whole tuning session
    # -- the method
    trials: int = 12  # builds the optimiser may propose (duplicates are not rebuilt)
    startup_trials: int = 4  # random proposals before TPE models the space
    subsample: int | None = None  # explore on this many rows, then confirm at full size
    confirm_top: int = 3  # with subsample: candidates re-measured at full size
    seed: int | None = None  # None: [experiment] seed
    # -- the space (None: derived from the data, space.py)
    kinds: tuple[str, ...] = KINDS
    m: tuple[int, ...] | None = None
    ef_construction: tuple[int, ...] | None = None
    lists: tuple[int, ...] | None = None
    storage: tuple[str, ...] | None = None
    max_ef_search: int = MAX_EF_SEARCH
    max_probes: int | None = None  # None: every list
    # session-settable build settings searched per build (empty: the server's own)
    maintenance_work_mem: tuple[str, ...] = ()
    max_parallel_maintenance_workers: tuple[int, ...] = ()
    # -- filtered queries: a [filtered] predicate the target's queries carry (None: plain)
    filter: str | None = None
    iterative_scan: tuple[str, ...] = ITERATIVE_SCANS
    # -- measurement
    measure_seconds: float | None = None  # each latency window (None: [query])
    warmup_seconds: float | None = None
    # -- how it was invoked (never a TOML key: `pgvbench tune --resume` sets it)
    resume: bool = False


def parse_tune(t: Table) -> TuneSpec:
    """Validate ``[tune]``; errors name the file, table and key (SpecError)."""
    t.only(
        [
            "recall", "confidence", "latency", "latency_ms", "clients", "rate", "objective",
            "max_index_mb", "max_build_seconds", "max_memory_mb", "time_budget_s",
            "trials", "startup_trials", "subsample", "confirm_top", "seed",
            "kinds", "m", "ef_construction", "lists", "storage", "max_ef_search", "max_probes",
            "maintenance_work_mem", "max_parallel_maintenance_workers",
            "filter", "iterative_scan", "measure_seconds", "warmup_seconds",
        ]
    )  # fmt: skip
    data = t.data
    recall = t.number("recall", default=0.95, minimum=0.01, maximum=1.0)
    rate = _opt_number(t, "rate", minimum=0.1, maximum=1e7)
    trials = t.integer("trials", default=12, minimum=1, maximum=1000)
    startup = t.integer("startup_trials", default=min(4, trials), minimum=1, maximum=1000)
    m = t.int_list("m", default=[16], minimum=2, maximum=100) if "m" in data else None
    efc = (
        t.int_list("ef_construction", default=[64], minimum=4, maximum=1000)
        if "ef_construction" in data
        else None
    )
    if m is not None and efc is not None and max(efc) < 2 * min(m):
        t.fail(
            "ef_construction",
            f"= {list(efc)}: no value is at least 2 x m = {2 * min(m)} (pgvector's rule), so "
            "no HNSW build is possible",
        )
    memory_settings = t.data.get("maintenance_work_mem", [])
    if isinstance(memory_settings, str):
        memory_settings = [memory_settings]
    if not isinstance(memory_settings, list) or not all(
        isinstance(v, str) and v.strip() for v in memory_settings
    ):
        t.fail("maintenance_work_mem", f"= {memory_settings!r} must be a list of sizes, e.g. "
               '["256MB", "1GB"]')  # fmt: skip
    return TuneSpec(
        recall=recall,
        confidence=t.number("confidence", default=0.95, minimum=0.5, maximum=0.999),
        latency=t.choice("latency", LATENCY_STATS, default="p99"),
        latency_ms=_opt_number(t, "latency_ms", minimum=0.001, maximum=1e6),
        clients=t.integer("clients", default=1, minimum=1, maximum=1000),
        rate=rate,
        objective=t.choice("objective", OBJECTIVES, default="qps"),
        max_index_mb=_opt_number(t, "max_index_mb", minimum=0.001, maximum=1e9),
        max_build_seconds=_opt_number(t, "max_build_seconds", minimum=0.001, maximum=1e9),
        max_memory_mb=_opt_number(t, "max_memory_mb", minimum=0.001, maximum=1e9),
        time_budget_s=_opt_number(t, "time_budget_s", minimum=1.0, maximum=1e7),
        trials=trials,
        startup_trials=startup,
        subsample=(
            t.integer("subsample", minimum=100, maximum=10**9) if "subsample" in data else None
        ),
        confirm_top=t.integer("confirm_top", default=3, minimum=1, maximum=50),
        seed=t.integer("seed", minimum=0) if "seed" in data else None,
        kinds=tuple(dict.fromkeys(t.str_list("kinds", default=list(KINDS), allowed=KINDS))),
        m=m,
        ef_construction=efc,
        lists=(
            t.int_list("lists", default=[100], minimum=1, maximum=32768)
            if "lists" in data
            else None
        ),
        storage=(
            tuple(dict.fromkeys(t.str_list("storage", default=["vector"], allowed=STORAGES)))
            if "storage" in data
            else None
        ),
        max_ef_search=t.integer(
            "max_ef_search", default=MAX_EF_SEARCH, minimum=1, maximum=MAX_EF_SEARCH
        ),
        max_probes=(
            t.integer("max_probes", minimum=1, maximum=32768) if "max_probes" in data else None
        ),
        maintenance_work_mem=tuple(dict.fromkeys(s.strip() for s in memory_settings)),
        max_parallel_maintenance_workers=(
            t.int_list("max_parallel_maintenance_workers", default=[0], minimum=0, maximum=64)
            if "max_parallel_maintenance_workers" in data
            else ()
        ),
        filter=t.string("filter") or None if "filter" in data else None,
        iterative_scan=tuple(
            dict.fromkeys(
                t.str_list("iterative_scan", default=list(ITERATIVE_SCANS), allowed=ITERATIVE_SCANS)
            )
        ),
        measure_seconds=_opt_number(t, "measure_seconds", minimum=0.1, maximum=3600),
        warmup_seconds=_opt_number(t, "warmup_seconds", minimum=0.0, maximum=3600),
    )


def _opt_number(t: Table, key: str, *, minimum: float, maximum: float) -> float | None:
    return t.number(key, minimum=minimum, maximum=maximum) if key in t.data else None
