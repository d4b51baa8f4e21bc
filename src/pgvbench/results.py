"""Versioned result records: what a run measured, where, and how.

A results file is the only thing later stages (report, compare) read, so it is
self-describing: the resolved spec, the environment and every measurement.
Files are written atomically (temp file + rename) and loading rejects schema
versions this code does not know.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from ._atomic import write_bytes_atomic
from ._environment_records import Environment as Environment  # re-exported records
from ._environment_records import HostInfo as HostInfo
from ._environment_records import ServerLimits as ServerLimits
from ._hostload import HostLoad as HostLoad  # re-exported: results.HostLoad
from ._textfile import decode_text, read_regular_file
from .errors import ResultsError
from .recall_records import BuildSpread as BuildSpread  # re-exported: results.json records
from .recall_records import Recall as Recall
from .recall_rule import STRICT, RecallRule

SCHEMA_VERSION = 3
# Versions this code reads. v1 files (no load tests) load with empty load_points; v1/v2
# files have no per-repeat samples (compare treats each point as one sample).
READABLE_VERSIONS = (1, 2, 3)
RunStatus = Literal["running", "complete", "partial", "failed"]


@dataclasses.dataclass
class GroundTruthInfo:
    k: int
    method: str  # e.g. "faiss.knn (exact, blocked)" or "hdf5 neighbors (spot-checked)"
    seconds: float
    cached: bool


@dataclasses.dataclass
class DatasetInfo:
    name: str
    source: str  # "synthetic:clustered", "synthetic:uniform", "hdf5:<path>", "npy:<path>"
    n: int
    dim: int
    metric: str
    seed: int | None
    n_queries: int
    n_recall_queries: int
    ground_truth: GroundTruthInfo | None = None
    # issue 13, each a typed record's to_dict() owned by its module:
    attributes: list[dict[str, Any]] | None = None  # datasets.attributes: columns loaded
    # per-row data of the source that was not loaded as attributes (e.g. HDF5 dataset names)
    attributes_unloaded: list[str] | None = None
    table_source: dict[str, Any] | None = None  # source = "table": snapshot, checksum, copy
    difficulty: dict[str, Any] | None = None  # LID and relative contrast over queries


@dataclasses.dataclass
class LoadInfo:
    table: str
    rows: int
    seconds: float
    rows_per_second: float
    table_bytes: int


@dataclasses.dataclass
class BuildPhase:
    phase: str
    seconds: float


@dataclasses.dataclass
class IndexBuild:
    label: str  # unique within a run, e.g. "hnsw(m=16,ef_construction=64)"
    kind: str  # "none" | "ivfflat" | "hnsw"
    params: dict[str, int]
    build_seconds: float
    index_bytes: int
    build_settings: dict[str, str]
    phases: list[BuildPhase] = dataclasses.field(default_factory=list)
    notices: list[str] = dataclasses.field(default_factory=list)
    server_config: str | None = None  # label of the [[server.sweep]] entry in force


@dataclasses.dataclass
class Latency:
    """Milliseconds, from a merged HDR histogram (3 significant digits)."""

    p50: float
    p95: float
    p99: float
    p999: float
    max: float
    mean: float


@dataclasses.dataclass
class StatementStats:
    """pg_stat_statements deltas over the measured phase, for this point's query."""

    calls: int
    mean_exec_ms: float
    shared_blks_hit_per_call: float
    shared_blks_read_per_call: float


@dataclasses.dataclass
class Sample:
    """One repeat's measurement of a point; the point's own fields merge all repeats.

    ``sequence`` is the order in which measurements ran within the whole run, so the
    interleaving of repeats (A B A B, not A A B B) is visible in the file.
    """

    repeat: int  # 0-based
    sequence: int
    qps: float
    operations: int
    errors: int
    duration_s: float
    latency_ms: Latency | None
    shared_blks_per_query: float | None = None  # hit + read, from pg_stat_statements
    operations_detail: dict[str, OperationStats] = dataclasses.field(default_factory=dict)
    run: int = 0  # which source run, in a file made by `pgvbench merge` (index in merged_from)
    host: HostLoad | None = None  # host load around this window (absent in older files)


@dataclasses.dataclass
class SweepPoint:
    index: str  # IndexBuild.label
    index_kind: str
    index_params: dict[str, int]
    query_params: dict[str, int]  # e.g. {"hnsw.ef_search": 40}
    k: int
    concurrency: int
    recall: Recall | None
    qps: float
    latency_ms: Latency | None
    operations: int
    errors: int
    duration_s: float
    warmup_s: float
    valid: bool
    notes: list[str] = dataclasses.field(default_factory=list)
    plan: str | None = None
    statements: StatementStats | None = None
    histogram: str | None = None  # HdrHistogram, base64 (hdrh encode), nanoseconds
    client_cpu_cores: float | None = None  # load generator CPU over the measured window
    suspect: bool = False  # the client, not the server, may have limited the numbers
    server_config: str | None = None  # label of the [[server.sweep]] entry in force
    collectors: dict[str, Any] | None = None  # instrument.* deltas over the measured window
    samples: list[Sample] = dataclasses.field(default_factory=list)  # one per repeat
    rebuilds: BuildSpread | None = None  # the same point on each rebuild (absent: one build)


@dataclasses.dataclass
class TimeSlice:
    """One second of a load test (t = seconds since the measured window began)."""

    t: int
    ops: int
    p99_ms: float | None


@dataclasses.dataclass
class OperationStats:
    """One operation of a load point's mix (e.g. memory_recall within an agent workload)."""

    operations: int
    errors: int
    qps: float
    latency_ms: Latency | None


@dataclasses.dataclass
class LoadPoint:
    """One concurrency point: engine x pooling strategy x pool size x clients.

    Latency is measured by the client. In open loop it runs from the *intended* start
    of each operation (no coordinated omission); ``service_ms`` (from the real start)
    and ``queue_wait_ms`` (intended -> real start) split it.
    """

    engine: str  # "python" | "pgbench"
    index: str  # IndexBuild.label
    query_params: dict[str, int]
    strategy: str  # "direct" | "connect_per_op" | "psycopg_pool" | "pgbouncer"
    pool: dict[str, Any]  # strategy parameters (sizes, pool_mode, timeout ...)
    clients: int
    mode: str  # "closed" | "open"
    target_rate: float | None
    arrival: str | None  # "poisson" | "constant" (open loop)
    think_time_ms: float
    qps: float  # completed operations / measured duration (measured, not derived)
    operations: int
    errors: int
    dropped: int  # open loop: arrivals refused because max_inflight was reached
    duration_s: float
    warmup_s: float
    latency_ms: Latency | None
    service_ms: Latency | None = None
    queue_wait_ms: Latency | None = None
    schedule_lag_ms: float | None = None  # open loop: mean lateness of the dispatcher
    error_messages: dict[str, int] = dataclasses.field(default_factory=dict)
    pool_stats: dict[str, int] | None = None
    client_cpu_cores: float | None = None  # CPU seconds of the load generator / wall second
    server_cpu_cores: float | None = None  # same for the server's processes (embedded only)
    fidelity: float | None = None  # python QPS / pgbench QPS at the same SQL and clients
    # analysis.paired.PairedRatio.to_dict() of that figure over the interleaved rounds
    fidelity_interval: dict[str, Any] | None = None
    timeseries: list[TimeSlice] = dataclasses.field(default_factory=list)
    valid: bool = True
    suspect: bool = False  # measurement may be limited by the client, not the server
    notes: list[str] = dataclasses.field(default_factory=list)
    histogram: str | None = None  # HdrHistogram (ns), base64
    operations_detail: dict[str, OperationStats] = dataclasses.field(default_factory=dict)
    workload: str | None = None  # the operation mix's name (agent workloads), None for kNN
    samples: list[Sample] = dataclasses.field(default_factory=list)  # one per repeat
    # QPS of each interleaved window, in round order (repeats one after another): the
    # points of one client count ran the same rounds, so window i of two points is a pair
    window_qps: list[float] = dataclasses.field(default_factory=list)
    window_sequence: list[int] = dataclasses.field(default_factory=list)  # run order of each


@dataclasses.dataclass
class VersusExact:
    """One build's best point at the recall target and the exact scan, interleaved.

    ``ratio`` is analysis.paired.PairedRatio.to_dict() of index QPS / exact-scan QPS over
    the paired rounds; the QPS lists hold each round's window (0: nothing measured).
    """

    index: str  # IndexBuild.label
    query_params: dict[str, int]
    ratio: dict[str, Any]
    index_qps: list[float]
    exact_qps: list[float]
    concurrency: int = 1


@dataclasses.dataclass
class ServerSettingsInfo:
    """The spec's [server.settings] and what became of them."""

    requested: dict[str, str]
    in_effect: dict[str, str]
    not_applied: dict[str, str]  # setting -> why (e.g. needs a restart on an external server)
    restarted: bool
    method: str  # "ALTER SYSTEM" (embedded) or "session" (external: libpq options)


@dataclasses.dataclass
class AgentSection:
    """Agent experiments: the generated platform and what was measured on it.

    ``filtered``, ``drift`` and ``update_cost`` hold the JSON form of the agent studies'
    records (studies/filtered, studies/drift: each study stores and reads back its own, see
    Study.store/load); see docs/results.md.
    """

    selectivity: dict[str, dict[str, float]]
    tables: dict[str, dict[str, float]]  # table kind -> {rows, seconds}
    filtered: dict[str, Any] | None = None
    filtered_winners: dict[str, str] = dataclasses.field(default_factory=dict)
    tune: dict[str, Any] | None = None  # [tune] / `pgvbench tune` (studies/tune)
    drift: dict[str, Any] | None = None
    update_cost: dict[str, Any] | None = None
    recommendations: list[str] = dataclasses.field(default_factory=list)
    replicas: dict[str, Any] | None = None  # [replicas] (studies/replicas)


@dataclasses.dataclass
class TuningSection:
    """Server-tuning studies of a run (JSON forms of the records of studies/build, cache,
    result_cache and quantization; each study stores and reads back its own).

    ``settings_sweep`` lists each server configuration the run measured under (label,
    requested, in_effect, not_applied, restarted); sweep points and builds name theirs
    in ``server_config``.
    """

    settings_sweep: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    build_tuning: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    result_cache: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    recommendations: list[str] = dataclasses.field(default_factory=list)
    # [filtered] on a vector dataset (studies/filtered; agent runs keep it in AgentSection)
    filtered: dict[str, Any] | None = None
    filtered_winners: dict[str, str] = dataclasses.field(default_factory=dict)
    tune: dict[str, Any] | None = None  # [tune] / `pgvbench tune` (studies/tune)
    capacity: dict[str, Any] | None = None  # [capacity] / `pgvbench plan` (studies/capacity)


@dataclasses.dataclass
class MergedRun:
    """One source of a file made by `pgvbench merge` (runs of one spec, pooled for compare)."""

    source: str
    started_at: str
    finished_at: str | None
    git_commit: str | None


@dataclasses.dataclass
class Writer:
    """The process writing a results file: a file still "running" whose writer is gone
    was interrupted (the process died) rather than still going."""

    pid: int
    hostname: str


@dataclasses.dataclass
class ConcurrentSession:
    """A pgvbench session of another process seen on the server during this run (in
    pg_stat_activity by its application_name): its load overlapped this run's timings.
    Fields the role may not see (another user's session without pg_read_all_stats) are
    None."""

    pid: int
    application_name: str
    user: str | None
    database: str | None
    client: str | None  # client address, "local" for a Unix socket
    backend_start: str | None
    state: str | None  # as last seen
    query_start: str | None  # as last seen
    first_seen: str  # server clock, ISO 8601
    last_seen: str


@dataclasses.dataclass
class Results:
    run_name: str
    status: RunStatus
    started_at: str
    finished_at: str | None
    environment: Environment
    spec: dict[str, Any]
    dataset: DatasetInfo | None = None
    load: LoadInfo | None = None
    indexes: list[IndexBuild] = dataclasses.field(default_factory=list)
    runs: list[SweepPoint] = dataclasses.field(default_factory=list)
    failure: str | None = None
    server_settings: ServerSettingsInfo | None = None
    load_points: list[LoadPoint] = dataclasses.field(default_factory=list)
    agent: AgentSection | None = None
    tuning: TuningSection | None = None
    versus_exact: list[VersusExact] = dataclasses.field(default_factory=list)
    # set by `pgvbench merge`: indexes, runs and load_points then hold every source run's
    # records one after another (samples tagged with .run), for compare to pool
    merged_from: list[MergedRun] = dataclasses.field(default_factory=list)
    # other pgvbench sessions active on the server during the run (absent before 0.2)
    concurrent_runs: list[ConcurrentSession] = dataclasses.field(default_factory=list)
    writer: Writer | None = None  # absent in files written before 0.2
    # when a returned neighbour counted as a hit; files before it was recorded used STRICT
    recall_rule: RecallRule = STRICT
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        # schema_version first, so `head results.json` tells what it is
        return {"schema_version": data.pop("schema_version"), **data}

    def to_frame(self, table: str = "points") -> Any:
        """One table as a pandas DataFrame: points, load or capacity (see _frames.py)."""
        from ._frames import frame

        return frame(self.to_dict(), table, source=self.run_name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> Results:
        if "schema_version" not in data:
            raise ResultsError(
                f"{source}: not a pgvbench results file (no schema_version); pass a "
                "results.json written by `pgvbench run` or `pgvbench merge`, or a saved baseline"
            )
        version = data["schema_version"]
        if version not in READABLE_VERSIONS:
            readable = ", ".join(str(v) for v in READABLE_VERSIONS)
            raise ResultsError(
                f"{source}: schema_version {version!r} is not supported by this pgvbench "
                f"(it reads versions {readable}). Re-run the benchmark with this version, "
                "or use the pgvbench release that wrote the file."
            )
        if not isinstance(data.get("runs", []), list):
            raise ResultsError(
                f"{source}: malformed results file: 'runs' must be a list of sweep-point "
                f"records, not {_json_type(data['runs'])}"
            )
        try:
            results = _build(cls, data)
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ResultsError(f"{source}: malformed results file: {detail}") from None
        # 'runs' has a default for building, but every writer records it (empty for
        # agent-only runs): a file without it was cut down and would compare as "no runs"
        if "runs" not in data:
            raise ResultsError(
                f"{source}: not a complete pgvbench results file: it has no 'runs' (the list "
                "of sweep-point records every run writes, empty for agent-only runs); was it "
                "cut down or edited by hand? Use the results.json the run wrote"
            )
        results.schema_version = SCHEMA_VERSION  # upgraded in memory; v1 adds nothing
        return results


def current_writer() -> Writer:
    return Writer(pid=os.getpid(), hostname=socket.gethostname())


def describe_status(results: Results) -> str:
    """The status as a reader should see it: a file left "running" by a dead process
    reads "interrupted (the process died)"."""
    if results.status != "running":
        return results.status
    writer = results.writer
    if writer is not None and writer.hostname == socket.gethostname():
        if writer.pid != os.getpid() and _pid_alive(writer.pid):
            return f"still running (pid {writer.pid})"
        if writer.pid == os.getpid():
            return "running"
    return "interrupted (the process died)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


T = TypeVar("T")


class _Malformed(ValueError):
    """A field of a results file has the wrong JSON type (message names the field)."""


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


# Numbers a measurement cannot produce: refused on load so a hand-edited or corrupted file
# does not render "nan" or a negative throughput. Every typed float must be finite too.
_FRACTIONS = {"Recall"}  # every field in [0, 1] but the counts
_COUNTS = {"zero", "queries"}
_NON_NEGATIVE_CLASSES = {"Latency"}  # milliseconds
_NON_NEGATIVE = {
    "qps",
    "operations",
    "errors",
    "dropped",
    "duration_s",
    "warmup_s",
    "seconds",
    "build_seconds",
    "rows",
    "rows_per_second",
    "table_bytes",
    "index_bytes",
    "calls",
    "mean_exec_ms",
}


def _number_problem(cls_name: str, field: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return f"= {value} is not a finite number"
    if cls_name in _FRACTIONS and field not in _COUNTS and not 0.0 <= value <= 1.0:
        return f"= {value} is outside [0, 1]"
    if (cls_name in _NON_NEGATIVE_CLASSES or field in _NON_NEGATIVE) and value < 0:
        return f"= {value} is negative"
    return None


def _build(cls: type[T], data: Any) -> T:
    """Build dataclass ``cls`` from plain JSON data, recursively, by type hints."""
    if not isinstance(data, dict):
        raise _Malformed(f"{cls.__name__} must be an object, not {_json_type(data)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise KeyError(f"missing field {cls.__name__}.{field.name}")
            continue
        try:
            kwargs[field.name] = value = _convert(hints[field.name], data[field.name])
            problem = _number_problem(cls.__name__, field.name, value)
            if problem:
                raise _Malformed(problem)
        except _Malformed as exc:
            if str(exc).startswith("="):  # a scalar: name the field it belongs to
                raise _Malformed(f"{cls.__name__}.{field.name} {exc}") from None
            raise
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    """Plain JSON ``value`` as ``hint``; a value of the wrong JSON type is _Malformed, so a
    hand-edited or foreign file fails on load, not later inside report or compare."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(hint):
            if arg is not type(None):
                return _convert(arg, value)
    if origin is list:
        if not isinstance(value, list):
            raise _Malformed(f"= {_json_type(value)} where a list belongs")
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Malformed(f"= {_json_type(value)} where an object belongs")
        _, item = typing.get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise _Malformed(f"= {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value)
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise _Malformed(f"= {value!r} is not a number")
    if hint is str and not isinstance(value, str):
        raise _Malformed(f"= {value!r} is not a string")
    if hint is bool and not isinstance(value, bool):
        raise _Malformed(f"= {value!r} is not true or false")
    return value


def write_results(results: Results, path: Path) -> None:
    """Write atomically: a reader never sees a half-written file."""
    text = json.dumps(results.to_dict(), indent=2, sort_keys=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def load_results(path: Path) -> Results:
    """Read a results file; any problem is one ResultsError naming the file."""
    try:
        raw = read_regular_file(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise ResultsError(
            f"{path}: cannot read results file: it is a directory (pass {path}/results.json)"
        ) from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read results file: {exc.strerror or exc}") from None
    text = decode_text(raw, path, what="a results file", error=ResultsError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc}); was the run interrupted?") from exc
    except RecursionError:
        # json nests one Python frame per [ or {: thousands of them exhaust the stack
        raise ResultsError(
            f"{path}: not a pgvbench results file (nested too deeply); check that the path "
            "names a results.json written by pgvbench run"
        ) from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object at the top level")
    return Results.from_dict(data, source=str(path))
