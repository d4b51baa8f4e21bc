"""Index-build tuning: build time vs maintenance_work_mem and parallel maintenance workers.

pgvector builds an HNSW graph in memory while it fits into ``maintenance_work_mem``; when
it stops fitting it says so (NOTICE "hnsw graph no longer fits into maintenance_work_mem
after N tuples") and inserts the rest on disk, which is much slower. Parallel builds
(``max_parallel_maintenance_workers``) keep the graph in dynamic shared memory.

Both settings are user-settable, so the study sets them per session (no restart), builds
the index once per (memory, workers) combination through :func:`db.indexes.build_index`,
records time, size, phases and whether the graph fitted, and drops each index again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ..db import indexes as db_indexes
from ..errors import RunFailed
from ..metrics import Metric
from ..results import BuildPhase
from ..spec.model import IndexSpec

if TYPE_CHECKING:
    from ..spec.table import Table as _Table

DEFAULT_MEMORY = ("64MB", "256MB", "1GB")
DEFAULT_WORKERS = (0, 1)
MEMORY_UNITS = ("kB", "MB", "GB", "TB")
MIN_MEMORY_BYTES = 1024 * 1024  # PostgreSQL's floor for maintenance_work_mem
MAX_MEMORY_BYTES = 2_147_483_647 * 1024  # INT_MAX kB
MAX_WORKERS = 1024  # PostgreSQL's ceiling for max_parallel_maintenance_workers
LIMIT_SETTINGS = (
    "max_worker_processes",
    "max_parallel_workers",
    "max_parallel_maintenance_workers",
    "min_parallel_table_scan_size",
    "dynamic_shared_memory_type",
    "shared_buffers",
)
_TUNED = ("maintenance_work_mem", "max_parallel_maintenance_workers")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT][bB])\s*$")
_NO_FIT_RE = re.compile(r"no longer fits into maintenance_work_mem after (\d+) tuples")
_WORKER_POLL_S = 0.1
_SIMILAR = 0.05  # relative build-time difference treated as noise
PARTICIPANT_MIN_BYTES = 32 * 1024**2  # plan_create_index_workers: >= 32MB per participant


def memory_worker_cap(memory_bytes: int) -> int:
    """Workers PostgreSQL plans for a build at this maintenance_work_mem.

    plan_create_index_workers leaves each participant (leader included) at least 32MB,
    so 16MB allows no worker, 64MB one, 96MB two.
    """
    return max(0, memory_bytes // PARTICIPANT_MIN_BYTES - 1)


# --------------------------------------------------------------------------- sizes


def parse_size(text: str) -> int:
    """``"64MB"`` -> bytes (PostgreSQL memory units kB, MB, GB, TB; any case)."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 64MB (units: kB, MB, GB, TB)")
    unit = match.group(2).lower()
    power = [u.lower() for u in MEMORY_UNITS].index(unit) + 1
    return int(match.group(1)) * int(1024**power)


def format_size(num_bytes: float) -> str:
    """Bytes as PostgreSQL spells a setting: the largest exact unit (``1GB``, ``1536MB``)."""
    value = int(num_bytes)
    for power in range(len(MEMORY_UNITS), 0, -1):
        scale = 1024**power
        if value >= scale and value % scale == 0:
            return f"{value // scale}{MEMORY_UNITS[power - 1]}"
    return f"{max(1, math.ceil(value / 1024))}kB"


def _mb(num_bytes: float) -> str:
    mb = num_bytes / 1024**2
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------- spec


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


def parse_build_tuning(t: _Table, indexes: Sequence[IndexSpec] = ()) -> BuildTuningSpec:
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


# --------------------------------------------------------------------------- records


@dataclasses.dataclass
class BuildTuningPoint:
    """One build at one (maintenance_work_mem, max_parallel_maintenance_workers)."""

    maintenance_work_mem: str
    maintenance_work_mem_bytes: int
    workers: int  # max_parallel_maintenance_workers requested
    workers_launched: int | None  # most parallel workers seen at once (pg_stat_activity)
    build_seconds: float | None  # None: the build failed (see error)
    index_bytes: int | None
    graph_fits: bool  # False: pgvector said the graph no longer fits
    fits_after_tuples: int | None  # tuples in memory when it stopped fitting
    phases: list[BuildPhase] = dataclasses.field(default_factory=list)
    notices: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


@dataclasses.dataclass
class BuildTuningStudy:
    index: str  # IndexSpec.label
    kind: str
    params: dict[str, int]
    metric: str
    table: str
    rows: int  # rows with a vector: the tuples an index build reads
    limits: dict[str, str]  # server settings that cap parallel workers or memory
    restored: dict[str, str]  # session values put back afterwards
    points: list[BuildTuningPoint] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    recommendations: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildTuningStudy:
        fields = {f.name for f in dataclasses.fields(BuildTuningPoint)}
        points = [
            BuildTuningPoint(
                **{
                    **{k: v for k, v in p.items() if k in fields},
                    "phases": [BuildPhase(**ph) for ph in p.get("phases", [])],
                }
            )
            for p in data.get("points", [])
        ]
        top = {f.name for f in dataclasses.fields(cls)} - {"points"}
        return cls(**{k: v for k, v in data.items() if k in top}, points=points)


def notice_tuples(notices: Sequence[str]) -> int | None:
    """N from pgvector's "hnsw graph no longer fits ... after N tuples", else None."""
    for notice in notices:
        match = _NO_FIT_RE.search(notice)
        if match is not None:
            return int(match.group(1))
    return None


# --------------------------------------------------------------------------- measuring


def measure_build_tuning(
    *,
    dsn: str,
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    index_spec: IndexSpec,
    metric: Metric,
    spec: BuildTuningSpec,
    on_point: Callable[[BuildTuningPoint], None] | None = None,
) -> BuildTuningStudy:
    """Build ``index_spec`` once per combination of ``spec``; every index is dropped again.

    ``conn`` must be in autocommit mode (as :func:`server.connection.connect` opens it).
    The session's two build settings are restored at the end, also on failure.
    A build that fails is recorded with its error and the study goes on.
    """
    if index_spec.kind == "none":
        raise RunFailed("build tuning needs an index to build; 'none' is an exact scan")
    name = db_indexes.index_name(table, index_spec)
    exists = conn.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s", (schema, name)
    ).fetchone()
    if exists is not None:
        raise RunFailed(
            f"build tuning of {index_spec.label}: index {schema}.{name} already exists; "
            "measure build settings before building the run's index (or drop it first)"
        )
    original = {s: _setting(conn, s) for s in _TUNED}
    limits = {s: _setting(conn, s) for s in LIMIT_SETTINGS}
    row = conn.execute(
        sql.SQL("SELECT count(embedding) FROM {}").format(sql.Identifier(schema, table))
    ).fetchone()
    study = BuildTuningStudy(
        index=index_spec.label,
        kind=index_spec.kind,
        params=dict(index_spec.params),
        metric=str(metric),
        table=f"{schema}.{table}",
        rows=int(row[0]) if row else 0,
        limits=limits,
        restored=dict(original),
    )
    try:
        for memory, workers in spec.combinations():
            _set(conn, "maintenance_work_mem", memory)
            _set(conn, "max_parallel_maintenance_workers", str(workers))
            point = _measure_one(dsn, conn, schema, table, index_spec, metric, memory, workers)
            study.points.append(point)
            if on_point is not None:
                on_point(point)
    finally:
        for setting, value in original.items():
            with contextlib.suppress(psycopg.Error):  # a lost connection took its settings
                _set(conn, setting, value)
    study.notes = _study_notes(study)
    return study


def _measure_one(
    dsn: str,
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    index_spec: IndexSpec,
    metric: Metric,
    memory: str,
    workers: int,
) -> BuildTuningPoint:
    watcher = _WorkerWatcher(dsn, conn.info.backend_pid)
    watcher.start()
    name = db_indexes.index_name(table, index_spec)
    try:
        try:
            name, build = db_indexes.build_index(
                dsn, conn, schema=schema, table=table, spec=index_spec, metric=metric
            )
        finally:
            launched = watcher.stop()
    except RunFailed as exc:
        return BuildTuningPoint(
            maintenance_work_mem=memory,
            maintenance_work_mem_bytes=parse_size(memory),
            workers=workers,
            workers_launched=launched,
            build_seconds=None,
            index_bytes=None,
            graph_fits=False,
            fits_after_tuples=None,
            error=str(exc),
        )
    finally:
        with contextlib.suppress(psycopg.Error):  # an interrupted build: the index rolled back
            db_indexes.drop_index(conn, schema, name)
    tuples = notice_tuples(build.notices)
    return BuildTuningPoint(
        maintenance_work_mem=memory,
        maintenance_work_mem_bytes=parse_size(memory),
        workers=workers,
        workers_launched=launched,
        build_seconds=build.build_seconds,
        index_bytes=build.index_bytes,
        graph_fits=tuples is None,
        fits_after_tuples=tuples,
        phases=list(build.phases),
        notices=list(build.notices),
    )


class _WorkerWatcher:
    """Counts the parallel workers of one backend while its build runs."""

    def __init__(self, dsn: str, leader_pid: int) -> None:
        self._dsn = dsn
        self._pid = leader_pid
        self._stop = threading.Event()
        self._max: int | None = None
        self._thread = threading.Thread(target=self._run, name="build-workers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(timeout=5)
        return self._max

    def _run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as poll:
                self._max = 0
                while not self._stop.is_set():
                    row = poll.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s",
                        (self._pid, self._pid),
                    ).fetchone()
                    self._max = max(self._max, int(row[0]) if row else 0)
                    self._stop.wait(_WORKER_POLL_S)
        except psycopg.Error:
            self._max = None  # unknown rather than wrong


def _setting(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    return "" if row is None else str(row[0])


def _set(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def _study_notes(study: BuildTuningStudy) -> list[str]:
    notes: list[str] = []
    requested = max((p.workers for p in study.points), default=0)
    caps = []
    for setting in ("max_parallel_workers", "max_worker_processes"):
        value = study.limits.get(setting, "")
        if value.isdigit() and int(value) < requested:
            caps.append(f"{setting} = {value}")
    if caps:
        notes.append(
            f"up to {requested} workers were requested but {' and '.join(caps)} caps them "
            "(max_worker_processes needs a restart to raise)"
        )
    short = [
        p for p in study.points
        if p.workers > 0 and p.workers_launched is not None and p.workers_launched < p.workers
        and p.error is None
    ]  # fmt: skip
    capped = [p for p in short if memory_worker_cap(p.maintenance_work_mem_bytes) < p.workers]
    if capped:
        mems = sorted({p.maintenance_work_mem_bytes for p in capped})
        allowed = ", ".join(f"{format_size(m)} allows {memory_worker_cap(m)}" for m in mems)
        notes.append(
            "PostgreSQL leaves every build participant (leader included) at least 32MB of "
            f"maintenance_work_mem, so fewer workers ran than requested ({allowed})"
        )
    short = [p for p in short if memory_worker_cap(p.maintenance_work_mem_bytes) >= p.workers]
    if short:
        seen = sorted({(p.workers, p.workers_launched or 0) for p in short})
        pairs = ", ".join(f"{w} requested -> {n} seen" for w, n in seen)
        notes.append(
            f"fewer parallel workers ran than requested ({pairs}): PostgreSQL plans workers "
            "from the table size (min_parallel_table_scan_size = "
            f"{study.limits.get('min_parallel_table_scan_size', '?')}) and the free worker "
            "slots"
        )
    failed = [p for p in study.points if p.error is not None]
    for p in failed:
        notes.append(
            f"at {p.maintenance_work_mem}, {p.workers} workers the build failed: {p.error}"
        )
    return notes


# --------------------------------------------------------------------------- advice


def graph_bytes_estimate(study: BuildTuningStudy, rows: int | None = None) -> float | None:
    """The in-memory graph size for ``rows`` tuples, from the "no longer fits" NOTICEs.

    At maintenance_work_mem M pgvector held N tuples, so one tuple takes about M / N; the
    largest such ratio over the measured points, times the rows. None without a NOTICE.
    """
    ratios = [
        p.maintenance_work_mem_bytes / p.fits_after_tuples
        for p in study.points
        if p.fits_after_tuples
    ]
    if not ratios:
        return None
    return max(ratios) * (study.rows if rows is None else rows)


def _ok(points: Sequence[BuildTuningPoint]) -> list[BuildTuningPoint]:
    return [p for p in points if p.error is None and p.build_seconds is not None]


def _seconds(p: BuildTuningPoint) -> float:
    return p.build_seconds if p.build_seconds is not None else math.inf


def _fastest_workers(points: Sequence[BuildTuningPoint]) -> BuildTuningPoint:
    """The fastest point; a slower one with fewer workers wins when within 5%."""
    best = min(points, key=_seconds)
    close = [p for p in points if _seconds(p) <= _seconds(best) * (1 + _SIMILAR)]
    return min(close, key=lambda p: (p.workers, _seconds(p)))


def _nice_size(num_bytes: float) -> int:
    """The next power-of-two MB at or above ``num_bytes``."""
    mb = max(1.0, num_bytes / 1024**2)
    return int(2 ** math.ceil(math.log2(mb))) * 1024**2


def recommend_build(study: BuildTuningStudy, *, rows: int, cores: int) -> list[str]:
    """The maintenance_work_mem and workers to build with, the measured curve as evidence.

    ``rows`` is the data size to build for (the study's own table, or a production size
    to extrapolate to); ``cores`` the server's CPU cores.
    """
    ok = _ok(study.points)
    if not ok:
        return [
            f"No {study.index} build completed, so there is no build setting to recommend"
            + (f" (first error: {study.points[0].error})." if study.points else ".")
        ]
    memory, target = _memory_sentence(study, ok, rows)
    chosen = _chosen_memory(study, ok, rows)
    at_memory = [p for p in ok if p.maintenance_work_mem_bytes == chosen]
    return [memory, _workers_sentence(study, at_memory, cores, target)]


def _chosen_memory(study: BuildTuningStudy, ok: Sequence[BuildTuningPoint], rows: int) -> int:
    """The measured memory whose points the workers advice compares."""
    fits = sorted({p.maintenance_work_mem_bytes for p in ok if p.graph_fits})
    return fits[0] if fits else max(p.maintenance_work_mem_bytes for p in ok)


def _memory_sentence(
    study: BuildTuningStudy, ok: Sequence[BuildTuningPoint], rows: int
) -> tuple[str, int]:
    """The memory advice and the size it recommends."""
    scale = rows / study.rows if study.rows else 1.0
    need = graph_bytes_estimate(study, rows)
    need_text = f"the graph needs ~{_mb(need)} for {rows:,} rows" if need else ""
    fits = sorted((p for p in ok if p.graph_fits), key=lambda p: p.maintenance_work_mem_bytes)
    misses = sorted((p for p in ok if not p.graph_fits), key=lambda p: p.maintenance_work_mem_bytes)
    if not fits:
        largest = misses[-1]
        target = _nice_size(need * 1.1) if need else largest.maintenance_work_mem_bytes * 2
        return (
            f"Build {study.index} with maintenance_work_mem >= {format_size(target)}: none of "
            f"the measured settings held the graph (at {largest.maintenance_work_mem} pgvector "
            f"reported it no longer fits after {largest.fits_after_tuples:,} of "
            f"{study.rows:,} tuples and the build took {_secs(_seconds(largest))})"
            + (f"; {need_text}" if need_text else "")
            + ".",
            target,
        )
    smallest = fits[0]
    mem = smallest.maintenance_work_mem_bytes
    target = mem
    if need is not None and scale > 1.0 and need * 1.1 > mem:
        target = _nice_size(need * 1.1)  # more rows than measured: scale the NOTICE's ratio
    elif need is None and scale > 1.0:
        target = _nice_size(mem * scale)  # measured fit at ``mem``: an upper bound per row
    evidence: list[str] = []
    if need_text:
        smaller = _nice_size(need * 1.1) if need else mem
        hint = (
            f", so {format_size(smaller)} would likely do (not measured)" if smaller < mem else ""
        )
        evidence.append(need_text + hint)
    elif scale > 1.0:
        evidence.append(
            f"{smallest.maintenance_work_mem} held the graph of {study.rows:,} rows, scaled "
            f"to {rows:,} rows"
        )
    if misses:
        workers = _fastest_workers([p for p in fits if p.maintenance_work_mem_bytes == mem]).workers
        top_miss = max(p.maintenance_work_mem_bytes for p in misses)
        at_top = [p for p in misses if p.maintenance_work_mem_bytes == top_miss]
        miss = next((p for p in at_top if p.workers == workers), at_top[0])
        same = [p for p in fits if p.workers == miss.workers] or fits
        ref = min(same, key=lambda p: p.maintenance_work_mem_bytes)
        evidence.append(
            f"at {miss.maintenance_work_mem} pgvector reported it no longer fits after "
            f"{miss.fits_after_tuples:,} of {study.rows:,} tuples and the build took "
            f"{_secs(_seconds(miss))} vs {_secs(_seconds(ref))} at {ref.maintenance_work_mem}"
            f" ({_workers_text(miss.workers)})"
        )
    else:
        evidence.append(
            f"every measured setting from {smallest.maintenance_work_mem} up held the graph"
        )
    bigger = [
        p for p in fits if p.maintenance_work_mem_bytes > mem and p.workers == smallest.workers
    ]
    if bigger and target == mem:
        top = max(bigger, key=lambda p: p.maintenance_work_mem_bytes)
        gain = 1 - _seconds(top) / _seconds(smallest) if _seconds(smallest) > 0 else 0.0
        verdict = "barely pays" if gain < _SIMILAR else f"saves {gain:.0%}"
        evidence.append(
            f"more memory once it fits {verdict}: {_secs(_seconds(top))} at "
            f"{top.maintenance_work_mem} vs {_secs(_seconds(smallest))} at "
            f"{smallest.maintenance_work_mem} ({_workers_text(smallest.workers)})"
        )
    return (
        f"Build {study.index} with maintenance_work_mem >= {format_size(target)} "
        f"({'; '.join(evidence)}).",
        target,
    )


def _workers_text(workers: int) -> str:
    return (
        "single-process"
        if workers == 0
        else f"{workers} parallel worker" + ("s" if workers > 1 else "")
    )


def _workers_sentence(
    study: BuildTuningStudy, points: Sequence[BuildTuningPoint], cores: int, target_bytes: int
) -> str:
    rule = max(0, cores - 1)
    shm = (
        " Parallel builds keep the graph in dynamic shared memory: in Docker give the "
        "container --shm-size above maintenance_work_mem."
    )
    memory = points[0].maintenance_work_mem
    counts = sorted({p.workers for p in points})
    if len(counts) < 2:
        measured = counts[0]
        tail = shm if rule > 0 else ""
        return (
            f"Only max_parallel_maintenance_workers = {measured} was measured at {memory} "
            f"({_secs(_seconds(points[0]))}); the rule of thumb is cores - 1 = {rule} on "
            f"{cores} cores.{tail}"
        )
    best = _fastest_workers(points)
    serial = next((p for p in points if p.workers == 0), None)
    others = [p for p in points if p is not best]
    ref = serial if serial is not None and serial is not best else min(others, key=_seconds)
    text = (
        f"Use max_parallel_maintenance_workers = {best.workers} "
        f"({_secs(_seconds(best))} vs {_secs(_seconds(ref))} {_workers_text(ref.workers)} "
        f"at {memory} on {cores} cores"
    )
    if best.workers_launched is not None and best.workers_launched < best.workers:
        text += f"; only {best.workers_launched} workers actually ran"
    text += ")"
    if best.workers == 0 and serial is not None:
        faster = [p for p in points if p.workers > 0]
        if faster and all(_seconds(p) >= _seconds(serial) * (1 - _SIMILAR) for p in faster):
            text += ": parallel workers did not speed this build up" + (
                " (none were launched; the table is below min_parallel_table_scan_size "
                "or worker slots are taken)"
                if all(p.workers_launched == 0 for p in faster)
                else ""
            )
    text += "."
    floor = PARTICIPANT_MIN_BYTES * (best.workers + 1)
    if best.workers > 0 and target_bytes < floor:
        text += (
            f" {best.workers} workers need maintenance_work_mem >= {format_size(floor)}: "
            "PostgreSQL leaves every participant at least 32MB and launches fewer otherwise."
        )
    if best.workers > rule:
        text += f" That is more than cores - 1 = {rule}: other work on the server will contend."
    if best.workers > 0:
        text += shm
    return text
