"""The experiment spec model: immutable, validated records of one TOML spec.

Parsing lives in parse.py (and each study's own spec.py); this module holds only the
records, the limits they are checked against, and what follows from them (an index
kind's query-time setting and its default operating point).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..metrics import Metric
from ..recall_rule import ANN_BENCHMARKS_EPSILON, STRICT_SPELLING, RecallRule, rule_from_spec

INDEX_KINDS = ("none", "ivfflat", "hnsw")
# each index kind's query-time setting: the parameter sweeps vary
QUERY_GUCS: Mapping[str, str] = {"hnsw": "hnsw.ef_search", "ivfflat": "ivfflat.probes"}
EXPERIMENT_KINDS = ("vector", "agents")
DATASET_SOURCES = ("synthetic", "hdf5", "npy", "parquet", "table")
DISTRIBUTIONS = ("clustered", "uniform")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 40  # experiment names also name report folders: keep them short
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names
RESERVED_SCHEMAS = ("information_schema",)  # and every name starting with pg_
# pgvector 0.8: a vector column holds up to 16,000 dimensions; HNSW and IVFFlat index up
# to 2,000 of type vector, 4,000 of halfvec and 64,000 of bit
VECTOR_MAX_DIM = 16_000
INDEX_MAX_DIM = {"vector": 2_000, "halfvec": 4_000, "bit": 64_000}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    source: str
    metric: Metric
    # synthetic
    distribution: str = "clustered"
    n: int = 0
    dim: int = 0
    clusters: int = 64
    spread: float = 0.3
    intrinsic_dim: int | None = None
    # heterogeneity (generate_clustered): Zipf exponent of cluster sizes, log-normal sigma
    # of per-cluster spread, Student-t degrees of freedom of per-point noise (0: none)
    size_skew: float = 0.0
    scale_spread: float = 0.0
    tail_dof: float = 0.0
    queries: int = 1000
    # files
    path: Path | None = None
    base: Path | None = None
    queries_file: Path | None = None
    # attributes (every source): column name in pgvbench's table -> where it is read from
    # (an HDF5 dataset, a .npy file, a Parquet or table column); query_attributes: the same
    # for the queries (e.g. ann-benchmarks' test_labels: each query's own label)
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    query_attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # synthetic attributes: spec.dataset.LabelsSpec records ([dataset.labels])
    labels: tuple[Any, ...] = ()
    # parquet: "vectordbbench" (train/test/neighbors/scalar_labels.parquet in `path`) or
    # "columns" (`base` / `queries_file` with named columns)
    layout: str = ""
    # parquet and table: the vector column and the id column
    column: str = ""
    id_column: str = ""
    # table: the user's table, read only ("schema.table"); rows sampled (None: all)
    table: str = ""
    sample: int | None = None
    queries_table: str = ""
    queries_from: str = ""  # "sample": held-out rows of the table
    copy_method: str = ""  # "insert_select" | "copy" | "" (auto)
    # table: False when the spec left the metric to an index on the column
    metric_given: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexSpec:
    kind: str
    params: Mapping[str, int]  # build parameters (m, ef_construction, lists)
    sweep_param: str | None  # the query-time GUC swept, e.g. "hnsw.ef_search"
    sweep_values: tuple[int, ...]

    @property
    def label(self) -> str:
        if not self.params:
            return self.kind
        inner = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({inner})"

    @property
    def query_guc(self) -> str | None:
        """The query-time setting of this index kind (None for an exact scan)."""
        return QUERY_GUCS.get(self.kind)

    @property
    def operating_point(self) -> int | None:
        """The default query-time value when one build is measured at one setting (load
        tests, cache studies, agent workloads): the middle of the swept values; None when
        the spec leaves the setting to the server."""
        if self.sweep_param is None or not self.sweep_values:
            return None
        return self.sweep_values[len(self.sweep_values) // 2]


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuerySpec:
    k: int = 10
    recall_queries: int = 200
    warmup_seconds: float = 1.0
    measure_seconds: float = 3.0
    target_recall: float = 0.95
    statement_timeout_ms: int = 30_000
    # a returned neighbour is a hit within this of the k-th true distance: a number
    # (absolute; 1e-3 as ann-benchmarks) or "strict" (1e-5 x max(1, |d_k|)); recall_rule.py
    recall_epsilon: float | str = ANN_BENCHMARKS_EPSILON
    target_recall_p5: float | None = None  # the headline's point must also clear this p5
    rebuilds: int = 1  # builds per [[index]]: the extra ones measure build-to-build spread

    @property
    def recall_rule(self) -> RecallRule:
        return rule_from_spec(self.recall_epsilon)


SERVER_VALUE = "server"  # ef_search / probes: leave the query parameter at the server's value
POOLING_STRATEGIES = ("direct", "connect_per_op", "psycopg_pool", "pgbouncer")
LOAD_MODES = ("closed", "open")
ARRIVALS = ("poisson", "constant")
ENGINES = ("python", "pgbench")
QUERY_SOURCES = ("vector", "table")
POOL_MODES = ("transaction", "session")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolingSpec:
    """One pooling strategy; list-valued sizes expand into several load points."""

    strategy: str
    # psycopg_pool
    min_size: int | None = None  # None: equal to max_size (psycopg_pool's default)
    max_sizes: tuple[int, ...] = ()
    timeout_s: float = 30.0
    max_waiting: int = 0
    # pgbouncer
    pool_mode: str = "transaction"
    pool_sizes: tuple[int, ...] = ()

    def variants(self) -> list[dict[str, Any]]:
        """The parameter set of each load point this strategy contributes."""
        if self.strategy == "psycopg_pool":
            return [
                {
                    "min_size": self.min_size if self.min_size is not None else size,
                    "max_size": size,
                    "timeout_s": self.timeout_s,
                    "max_waiting": self.max_waiting,
                }
                for size in self.max_sizes
            ]
        if self.strategy == "pgbouncer":
            return [{"pool_mode": self.pool_mode, "pool_size": size} for size in self.pool_sizes]
        return [{}]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """Concurrency tests run on one index build at fixed query parameters."""

    index: str  # label of an [[index]] build
    query_params: Mapping[str, int]
    clients: tuple[int, ...]
    mode: str = "closed"
    think_time_ms: float = 0.0
    rate: float = 0.0  # open loop: target operations per second (all clients together)
    arrival: str = "poisson"
    max_inflight: int = 0  # open loop: queued + running cap; 0 means 10 x clients
    warmup_seconds: float = 1.0
    duration_seconds: float = 5.0
    # the arms at one client count (engines, strategies, pool sizes) alternate in windows
    # of about this length, in random order per round, so a ratio between them is paired
    window_seconds: float = 1.0
    slo_p99_ms: float = 50.0
    query_source: str = "vector"  # vector: the app sends the vector; table: pgbench's SQL
    engines: tuple[str, ...] = ("python",)
    pooling: tuple[PoolingSpec, ...] = (PoolingSpec(strategy="direct"),)
    # the python engine's clients spread over this many worker processes (engine/multiproc)
    processes: int = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerSpec:
    settings: Mapping[str, str]
    # [[server.sweep]]: each entry's settings are applied on top of `settings` in turn and
    # the index builds and sweeps run under each; empty = one pass with `settings`
    sweep: tuple[SweepConfig, ...] = ()
    # memory_limit / cpus: the embedded server runs as a smaller machine (spec/machine.py)
    limits: MachineLimits | None = None
    # hot standbys of the embedded server on streaming replication (server/replicas.py);
    # with --dsn, the number of standbys its hosts must list
    replicas: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class MachineLimits:
    memory_bytes: int | None = None  # cgroup memory limit, page cache included
    cpus: tuple[int, ...] = ()  # the server's cpuset; () = every CPU


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepConfig:
    label: str
    settings: Mapping[str, str]


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudySpec:
    """One registered study's table in this spec: its parsed spec (None when the table is
    absent) and that spec's JSON form, recorded in results.json."""

    name: str
    section: str  # "tuning": recorded under "studies"; "agent": under "agents"
    spec: Any = None
    as_dict: Mapping[str, Any] | None = None


class Studies:
    """The study tables of a spec, one entry per registered study of its kind (in registry
    order); ``studies.cache`` is the parsed [cache] spec, or None when the table is absent."""

    def __init__(self, entries: tuple[StudySpec, ...] = ()) -> None:
        self.entries = entries

    def __iter__(self) -> Iterator[StudySpec]:
        return iter(self.entries)

    def __getattr__(self, name: str) -> Any:
        for entry in self.__dict__.get("entries", ()):
            if entry.name == name:
                return entry.spec
        raise AttributeError(f"no study {name!r} for this kind of experiment")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Studies) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"Studies({self.entries!r})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentSpec:
    name: str
    seed: int
    schema: str
    dataset: DatasetSpec | None  # None for agent experiments
    query: QuerySpec
    server: ServerSpec
    indexes: tuple[IndexSpec, ...]
    load: LoadSpec | None = None
    kind: str = "vector"  # "vector" (kNN over a dataset) | "agents" (agent platform workloads)
    # every registered study that applies to this kind, in registry order
    studies: Studies = dataclasses.field(default_factory=Studies)
    collectors: bool = True  # [collectors] enabled: server counters around each sweep point
    agents: Any = None  # spec.agents.AgentExperiment when kind == "agents"
    source_path: Path | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    repeats: int = 1  # measurements per sweep/load point, interleaved across points
    ab: Any = None  # ab.spec.AbSpec: the optional [ab] table (pgvbench ab only)

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain JSON data, recorded in every result."""
        return {
            "name": self.name,
            "seed": self.seed,
            "repeats": self.repeats,
            "schema": self.schema,
            "source_path": str(self.source_path) if self.source_path else None,
            "kind": self.kind,
            "dataset": _dataset_to_dict(self.dataset) if self.dataset else None,
            "agents": (
                {**self.agents.to_dict(), **self._study_dicts("agent")}
                if self.agents is not None
                else None
            ),
            "query": _query_to_dict(self.query),
            "server": {
                "settings": dict(self.server.settings),
                "sweep": [
                    {"label": c.label, "settings": dict(c.settings)} for c in self.server.sweep
                ],
                # only when set: results without limits stay comparable with older ones
                **(_limits_to_dict(self.server.limits) if self.server.limits else {}),
                **({"replicas": self.server.replicas} if self.server.replicas else {}),
            },
            "indexes": [
                {
                    "kind": ix.kind,
                    "label": ix.label,
                    "params": dict(ix.params),
                    "sweep_param": ix.sweep_param,
                    "sweep_values": list(ix.sweep_values),
                }
                for ix in self.indexes
            ],
            "load": _load_to_dict(self.load),
            "studies": {**self._study_dicts("tuning"), "collectors": self.collectors},
        }

    @property
    def study_specs(self) -> Mapping[str, Any]:
        """The parsed spec of each study the spec has, by study name."""
        return {st.name: st.spec for st in self.studies if st.spec is not None}

    def _study_dicts(self, section: str) -> dict[str, Any]:
        return {
            st.name: dict(st.as_dict) if st.as_dict is not None else None
            for st in self.studies
            if st.section == section
        }


# [query] keys added after 0.1, at the value their absence meant: left out of the recorded
# spec, so results of earlier versions stay comparable (compare refuses spec differences)
_QUERY_ABSENT_MEANS = {"recall_epsilon": STRICT_SPELLING, "target_recall_p5": None, "rebuilds": 1}


def _query_to_dict(query: QuerySpec) -> dict[str, Any]:
    data = dataclasses.asdict(query)
    return {
        k: v for k, v in data.items() if k not in _QUERY_ABSENT_MEANS or v != _QUERY_ABSENT_MEANS[k]
    }


def _limits_to_dict(limits: MachineLimits) -> dict[str, Any]:
    return {"memory_limit_bytes": limits.memory_bytes, "cpus": list(limits.cpus)}


def _load_to_dict(load: LoadSpec | None) -> dict[str, Any] | None:
    if load is None:
        return None
    data = dataclasses.asdict(load)
    data["query_params"] = dict(load.query_params)
    data["clients"] = list(load.clients)
    data["engines"] = list(load.engines)
    data["pooling"] = [
        {**dataclasses.asdict(p), "max_sizes": list(p.max_sizes), "pool_sizes": list(p.pool_sizes)}
        for p in load.pooling
    ]
    if load.processes == 1:  # added later: absent means 1, so older specs compare equal
        del data["processes"]
    return data


# [dataset] fields added after 0.1, at the value their absence means: left out of the
# recorded spec, so results of earlier versions stay comparable
_DATASET_ABSENT_MEANS: Mapping[str, Any] = {
    "attributes": {},
    "query_attributes": {},
    "labels": (),
    "layout": "",
    "column": "",
    "id_column": "",
    "table": "",
    "sample": None,
    "queries_table": "",
    "queries_from": "",
    "copy_method": "",
    "metric_given": True,
    "size_skew": 0.0,
    "scale_spread": 0.0,
    "tail_dof": 0.0,
}


def _dataset_to_dict(dataset: DatasetSpec) -> dict[str, Any]:
    data = {
        f.name: getattr(dataset, f.name)
        for f in dataclasses.fields(dataset)
        if f.name not in _DATASET_ABSENT_MEANS
        or getattr(dataset, f.name) != _DATASET_ABSENT_MEANS[f.name]
    }
    for key in ("attributes", "query_attributes"):
        if key in data:
            data[key] = dict(data[key])
    if "labels" in data:
        data["labels"] = [
            dataclasses.asdict(lb) if dataclasses.is_dataclass(lb) else lb  # type: ignore[arg-type]
            for lb in data["labels"]
        ]
    return _jsonable(data)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, (Path, Metric)) else v) for k, v in data.items()}
