"""Experiment specs: TOML files validated into immutable objects.

One spec file is one experiment. Every table accepts only known keys; a typo or an
out-of-range value is reported with the file, the table, the key and what is
allowed, so the user can fix it without reading code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._textfile import decode_text, read_regular_file
from .errors import DatasetError, SpecError
from .metrics import Metric

INDEX_KINDS = ("none", "ivfflat", "hnsw")
EXPERIMENT_KINDS = ("vector", "agents")
DATASET_SOURCES = ("synthetic", "hdf5", "npy")
DISTRIBUTIONS = ("clustered", "uniform")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
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
    queries: int = 1000
    # files
    path: Path | None = None
    base: Path | None = None
    queries_file: Path | None = None


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuerySpec:
    k: int = 10
    recall_queries: int = 200
    warmup_seconds: float = 1.0
    measure_seconds: float = 3.0
    target_recall: float = 0.95
    statement_timeout_ms: int = 30_000


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
    slo_p99_ms: float = 50.0
    query_source: str = "vector"  # vector: the app sends the vector; table: pgbench's SQL
    engines: tuple[str, ...] = ("python",)
    pooling: tuple[PoolingSpec, ...] = (PoolingSpec(strategy="direct"),)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerSpec:
    settings: Mapping[str, str]
    # [[server.sweep]]: each entry's settings are applied on top of `settings` in turn and
    # the index builds and sweeps run under each; empty = one pass with `settings`
    sweep: tuple[SweepConfig, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepConfig:
    label: str
    settings: Mapping[str, str]


STUDY_TABLES = ("build_tuning", "cache", "result_cache", "quantization", "collectors")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Studies:
    """Tuning studies run after the index sweeps (each None unless its table is present)."""

    build_tuning: Any = None  # tuning.build.BuildTuningSpec
    cache: Any = None  # tuning.cache.CacheSpec
    result_cache: Any = None  # tuning.result_cache.ResultCacheSpec
    quantization: Any = None  # tuning.quantization.QuantizationSpec
    collectors: bool = True  # [collectors] enabled: server counters around each sweep point

    def to_dict(self) -> dict[str, Any]:
        def plain(obj: Any) -> Any:
            if obj is None or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
                return obj
            return {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(obj).items()
            }

        return {
            "build_tuning": plain(self.build_tuning),
            "cache": plain(self.cache),
            "result_cache": plain(self.result_cache),
            "quantization": plain(self.quantization),
            "collectors": self.collectors,
        }


def _parse_studies(data: Mapping[str, Any], where: str, indexes: tuple[IndexSpec, ...]) -> Studies:
    # imported here: the tuning modules use this module's _Table
    from .tuning.build import parse_build_tuning
    from .tuning.cache import parse_cache
    from .tuning.quantization import parse_quantization
    from .tuning.result_cache import parse_result_cache

    collectors = True
    if "collectors" in data:
        t = _Table(where, "collectors", data["collectors"])
        t.only(["enabled"])
        enabled = t.data.get("enabled", True)
        if not isinstance(enabled, bool):
            t.fail("enabled", f"= {enabled!r} must be true or false")
        collectors = enabled
    needs_index = [name for name in ("cache", "result_cache") if name in data]
    if needs_index and not any(ix.kind != "none" for ix in indexes):
        raise SpecError(
            f"{where}: [{needs_index[0]}] measures an index: add an hnsw or ivfflat [[index]]"
        )
    return Studies(
        build_tuning=parse_build_tuning(
            _Table(where, "build_tuning", data["build_tuning"]), indexes
        )
        if "build_tuning" in data
        else None,
        cache=parse_cache(_Table(where, "cache", data["cache"])) if "cache" in data else None,
        result_cache=parse_result_cache(_Table(where, "result_cache", data["result_cache"]))
        if "result_cache" in data
        else None,
        quantization=parse_quantization(_Table(where, "quantization", data["quantization"]))
        if "quantization" in data
        else None,
        collectors=collectors,
    )


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
    studies: Studies = dataclasses.field(default_factory=lambda: Studies())
    agents: Any = None  # agent_spec.AgentExperiment when kind == "agents"
    source_path: Path | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    repeats: int = 1  # measurements per sweep/load point, interleaved across points

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain JSON data, recorded in every result."""
        return {
            "name": self.name,
            "seed": self.seed,
            "repeats": self.repeats,
            "schema": self.schema,
            "source_path": str(self.source_path) if self.source_path else None,
            "kind": self.kind,
            "dataset": _jsonable(dataclasses.asdict(self.dataset)) if self.dataset else None,
            "agents": self.agents.to_dict() if self.agents is not None else None,
            "query": dataclasses.asdict(self.query),
            "server": {
                "settings": dict(self.server.settings),
                "sweep": [
                    {"label": c.label, "settings": dict(c.settings)} for c in self.server.sweep
                ],
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
            "studies": self.studies.to_dict(),
        }


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
    return data


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, (Path, Metric)) else v) for k, v in data.items()}


# --------------------------------------------------------------------------- loading


def load_spec(path: Path) -> ExperimentSpec:
    """Read and validate a TOML spec; raise SpecError naming file, table and key."""
    try:
        raw = read_regular_file(path)
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: cannot read spec file: it is a directory") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec file: {exc.strerror or exc}") from None
    text = decode_text(raw, path, what="a spec file", error=SpecError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_spec(data, source=path)


def parse_spec(data: Mapping[str, Any], *, source: Path | None = None) -> ExperimentSpec:
    where = str(source) if source else "<spec>"
    base_dir = source.parent if source else Path.cwd()
    exp = _Table(where, "experiment", data.get("experiment", {}))
    exp.only(["name", "seed", "schema", "kind", "repeats"])
    kind = exp.choice("kind", EXPERIMENT_KINDS, default="vector")
    common = ["experiment", "query", "server", "index", "load"]
    if kind == "vector":
        _Table(where, "", data).only([*common, "dataset", *STUDY_TABLES])
    else:
        _Table(where, "", data).only(
            [*common, "agents", "workload", "operation", "filtered", "drift"]
        )
    name = exp.string("name", required=True)
    if not _NAME_RE.fullmatch(name):
        length = f"; it has {len(name)}" if _IDENT_RE.fullmatch(name) else ""
        exp.fail(
            "name",
            f"= {name!r} must be lowercase letters, digits and _, starting "
            f"with a letter, at most {MAX_NAME} characters (it names tables and report "
            f"folders){length}",
        )
    _check_derived_names(exp, name, kind)
    seed = exp.integer("seed", default=42, minimum=0)
    # Each sweep and load point is measured `repeats` times, interleaved across points,
    # so `pgvbench compare` can test significance instead of trusting one sample.
    repeats = exp.integer("repeats", default=1, minimum=1, maximum=100)
    schema = exp.string("schema", default="pgvbench")
    _check_schema_name(exp, schema)

    dataset = None
    agents = None
    if kind == "vector":
        dataset = _parse_dataset(_Table(where, "dataset", data.get("dataset")), base_dir)
    else:
        from .agent_spec import parse_agents

        agents = parse_agents(data, where, seed, _Table)
    query = _parse_query(_Table(where, "query", data.get("query", {})))
    server = _parse_server(_Table(where, "server", data.get("server", {})))

    raw_indexes = data.get("index")
    if kind == "agents" and raw_indexes is None:
        raw_indexes = [{"kind": "none"}]  # custom operations only: no vector index to build
    if not isinstance(raw_indexes, list) or not raw_indexes:
        raise SpecError(
            f"{where}: at least one [[index]] table is required, e.g.\n"
            '  [[index]]\n  kind = "hnsw"\n  m = 16\n  ef_construction = 64\n'
            "  ef_search = [20, 40, 80]"
        )
    indexes = tuple(
        _parse_index(_Table(where, f"index #{i + 1}", raw), query)
        for i, raw in enumerate(raw_indexes)
    )
    labels = [ix.label for ix in indexes]
    dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dupes:
        raise SpecError(f"{where}: [[index]] builds are listed twice: {', '.join(dupes)}")
    load = None
    if "load" in data:
        load = _parse_load(_Table(where, "load", data["load"]), indexes, query)
    studies = _parse_studies(data, where, indexes) if kind == "vector" else Studies()
    if kind == "agents" and len(indexes) != 1:
        raise SpecError(
            f"{where}: an agent experiment builds exactly one [[index]] (on memories and "
            f"chunks); found {len(indexes)}. Compare index kinds with [filtered] strategies."
        )
    if agents is not None and agents.drift is not None and indexes[0].kind != "hnsw":
        raise SpecError(
            f"{where}: [drift] measures recall through an HNSW index on memories, but the "
            f'[[index]] is {indexes[0].label}; set kind = "hnsw" in [[index]]'
        )
    spec = ExperimentSpec(
        studies=studies,
        kind=kind,
        agents=agents,
        load=load,
        name=name,
        seed=seed,
        repeats=repeats,
        schema=schema,
        dataset=dataset,
        query=query,
        server=server,
        indexes=indexes,
        source_path=source,
        raw=dict(data),
    )
    _check_spec_numbers(spec)
    return spec


# --------------------------------------------------------------------------- limits


def _check_derived_names(exp: _Table, name: str, kind: str) -> None:
    """The experiment name prefixes tables and indexes: the longest must fit 63 bytes."""
    derived = [f"{name}_items", f"{name}_queries"]
    if kind == "agents":
        # imported here: agent_schema pulls in psycopg, and vector specs never need it
        from .workloads.agent_model import table_name
        from .workloads.agent_schema import _SECONDARY_INDEXES

        derived += [f"{table_name(name, t)}_{suffix}" for t, suffix, _ in _SECONDARY_INDEXES]
    longest = max(derived, key=lambda n: len(n.encode()))
    size = len(longest.encode())
    if size > MAX_IDENTIFIER_BYTES:
        room = MAX_IDENTIFIER_BYTES - (size - len(name.encode()))
        exp.fail(
            "name",
            f"= {name!r} has {len(name)} characters, too many for the names it prefixes: "
            f"{longest!r} would be {size} bytes, and PostgreSQL names hold at most "
            f"{MAX_IDENTIFIER_BYTES} (NAMEDATALEN - 1); use a name of at most {room} characters",
        )


def _check_schema_name(exp: _Table, schema: str) -> None:
    if not _IDENT_RE.fullmatch(schema):
        exp.fail(
            "schema",
            f"= {schema!r} must be a plain lowercase identifier (letters, digits and _, "
            "starting with a letter)",
        )
    size = len(schema.encode())
    if size > MAX_IDENTIFIER_BYTES:
        exp.fail(
            "schema",
            f"= {schema!r} is {size} bytes long; PostgreSQL names hold at most "
            f"{MAX_IDENTIFIER_BYTES} bytes (NAMEDATALEN - 1) and longer ones are silently "
            "truncated: use a shorter schema name",
        )
    if schema.startswith("pg_") or schema in RESERVED_SCHEMAS:
        exp.fail(
            "schema",
            f"= {schema!r} is reserved: names starting with pg_ belong to PostgreSQL's "
            "system schemas and information_schema to the SQL standard's catalog; choose "
            'another name, e.g. schema = "pgvbench"',
        )


def _check_spec_numbers(spec: ExperimentSpec) -> None:
    """Limits known from the spec alone (synthetic data, agents): fail in validate."""
    where = str(spec.source_path) if spec.source_path else "<spec>"
    q = spec.studies.quantization
    if q is not None and q.k > spec.query.k:
        raise SpecError(
            f"{where}: [quantization] k = {q.k} exceeds [query] k = {spec.query.k}, the "
            "depth of the exact ground truth; raise [query] k or lower [quantization] k"
        )
    ds = spec.dataset
    if ds is not None and ds.source == "synthetic":
        problem = dataset_problem(
            spec,
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
            rows_from=f"[dataset] n = {ds.n}",
            dim_from=f"[dataset] dim = {ds.dim}",
            queries_from=f"[dataset] queries = {ds.queries}",
        )
        if problem:
            raise SpecError(f"{where}: {problem}")
    if ds is not None and ds.source == "hdf5" and 0 < ds.queries < spec.query.recall_queries:
        raise SpecError(
            f"{where}: [query] recall_queries = {spec.query.recall_queries} is more than "
            f"[dataset] queries = {ds.queries} (the test rows read from the file); lower "
            f"recall_queries to at most {ds.queries} or raise queries"
        )
    if spec.agents is not None and spec.agents.data is not None:
        dim = spec.agents.data.dim
        problem = _index_dim_problem(spec, dim, f"[agents] dim = {dim}")
        if problem:
            raise SpecError(f"{where}: {problem}")


def check_dataset_shape(
    spec: ExperimentSpec,
    *,
    rows: int,
    dim: int,
    queries: int,
    base: Path,
    queries_path: Path,
) -> None:
    """Refuse a file dataset this spec cannot run on (k, recall_queries, pgvector's
    dimension limits), from its header or once loaded; DatasetError names file and spec."""
    where = str(spec.source_path) if spec.source_path else "<spec>"
    same = base == queries_path
    problem = dataset_problem(
        spec,
        rows=rows,
        dim=dim,
        queries=queries,
        rows_from=f"{base}",
        dim_from=f"{base} holds {dim}-dimensional vectors",
        queries_from=f"{queries_path}{' (test rows)' if same else ''}",
    )
    if problem:
        raise DatasetError(f"{where}: {problem}")


def dataset_problem(
    spec: ExperimentSpec,
    *,
    rows: int,
    dim: int,
    queries: int,
    rows_from: str,
    dim_from: str,
    queries_from: str,
) -> str | None:
    """Why this dataset cannot run ``spec``, or None; ``*_from`` say where each number is."""
    k = spec.query.k
    if k > rows:
        return f"[query] k = {k} exceeds the dataset's {rows} rows ({rows_from}); lower k"
    wanted = spec.query.recall_queries
    if queries < wanted:
        return (
            f"[query] recall_queries = {wanted} but the dataset has only {queries} queries "
            f"({queries_from}); lower recall_queries to at most {queries}, or give the "
            "dataset more queries"
        )
    rc = spec.studies.result_cache
    if rc is not None and rc.distinct_queries > queries:
        return (
            f"[result_cache] distinct_queries = {rc.distinct_queries} exceeds the dataset's "
            f"{queries} queries ({queries_from}); lower it or give the dataset more queries"
        )
    return _index_dim_problem(spec, dim, dim_from)


def _index_dim_problem(spec: ExperimentSpec, dim: int, dim_from: str) -> str | None:
    """pgvector's dimension limits for the column and every index the spec builds."""
    if dim > VECTOR_MAX_DIM:
        return (
            f"{dim_from}: pgvector's vector columns hold at most {VECTOR_MAX_DIM:,} "
            "dimensions; reduce the dimension (e.g. a smaller embedding model)"
        )
    limit = INDEX_MAX_DIM["vector"]
    limits = ", ".join(f"{t} {n:,}" for t, n in INDEX_MAX_DIM.items() if t != "vector")
    built = [ix for ix in spec.indexes if ix.kind != "none"]
    if built and dim > limit:
        ix = built[0]
        on = " (on memories and chunks)" if spec.kind == "agents" else ""
        return (
            f"[index.{ix.kind}] {ix.label}{on} cannot index {dim}-dimensional vectors "
            f"({dim_from}): pgvector's HNSW and IVFFlat indexes on type vector take at most "
            f"{limit:,} dimensions ({limits}); use at most {limit:,} dimensions, or kind = "
            '"none" (exact scan)'
            + (
                ' with [quantization] variants = ["halfvec", "binary"]'
                if spec.kind == "vector" and dim <= INDEX_MAX_DIM["halfvec"]
                else ""
            )
        )
    q = spec.studies.quantization
    if q is not None:
        types = {"full": "vector", "halfvec": "halfvec", "binary": "bit"}
        for variant in q.variants:
            vtype = types[variant]
            if dim > INDEX_MAX_DIM[vtype]:
                return (
                    f"[quantization] variants includes {variant!r}, an HNSW index on "
                    f"{vtype}, which pgvector limits to {INDEX_MAX_DIM[vtype]:,} dimensions "
                    f"({dim_from}); remove {variant!r} from variants"
                )
    filtered = spec.agents.filtered if spec.agents is not None else None
    if filtered is not None and dim > limit:
        indexed = [s for s in filtered.strategies if s != "btree_exact"]
        if indexed:
            return (
                f"[filtered] strategies {', '.join(indexed)} build HNSW or IVFFlat indexes, "
                f"which pgvector limits to {limit:,} dimensions of type vector ({dim_from}); "
                'keep only "btree_exact" or use at most 2,000 dimensions'
            )
    return None


def _parse_dataset(t: _Table, base_dir: Path) -> DatasetSpec:
    source = t.choice("source", DATASET_SOURCES, required=True)
    common = ["source", "metric"]
    if source == "synthetic":
        t.only(
            [*common, "distribution", "n", "dim", "clusters", "spread", "intrinsic_dim", "queries"]
        )
        metric = Metric(t.choice("metric", [m.value for m in Metric], default="l2"))
        dim = t.integer("dim", required=True, minimum=1, maximum=16000)
        intrinsic = t.integer("intrinsic_dim", default=0, minimum=0, maximum=dim)
        return DatasetSpec(
            source=source,
            metric=metric,
            distribution=t.choice("distribution", DISTRIBUTIONS, default="clustered"),
            n=t.integer("n", required=True, minimum=1, maximum=100_000_000),
            dim=dim,
            clusters=t.integer("clusters", default=64, minimum=1),
            spread=t.number("spread", default=0.3, minimum=1e-6),
            intrinsic_dim=intrinsic or None,
            queries=t.integer("queries", default=1000, minimum=1, maximum=1_000_000),
        )
    if source == "hdf5":
        t.only([*common, "path", "queries"])
        if "metric" in t.data:
            t.fail("metric", "is read from the HDF5 file's 'distance' attribute; remove it")
        return DatasetSpec(
            source=source,
            metric=Metric.L2,  # replaced by the file's distance attribute on load
            path=t.path("path", base_dir),
            queries=t.integer("queries", default=0, minimum=0),
        )
    t.only([*common, "base", "queries_file"])
    return DatasetSpec(
        source=source,
        metric=Metric(t.choice("metric", [m.value for m in Metric], required=True)),
        base=t.path("base", base_dir),
        queries_file=t.path("queries_file", base_dir),
    )


def _parse_query(t: _Table) -> QuerySpec:
    t.only(
        [
            "k",
            "recall_queries",
            "warmup_seconds",
            "measure_seconds",
            "target_recall",
            "statement_timeout_ms",
        ]
    )
    return QuerySpec(
        k=t.integer("k", default=10, minimum=1, maximum=100),
        recall_queries=t.integer("recall_queries", default=200, minimum=1, maximum=100_000),
        warmup_seconds=t.number("warmup_seconds", default=1.0, minimum=0.0),
        measure_seconds=t.number("measure_seconds", default=3.0, minimum=0.1),
        target_recall=_target_recall(t),
        statement_timeout_ms=t.integer(
            "statement_timeout_ms", default=30_000, minimum=1, maximum=2_147_483_647
        ),
    )


def _target_recall(t: _Table) -> float:
    value = t.number("target_recall", default=0.95, minimum=0.0, maximum=1.0)
    if value <= 0.0:
        # recall 0 is met by any index: every "cheapest point reaching it" would be meaningless
        t.fail("target_recall", f"= {value} must be in (0, 1], e.g. 0.95")
    return value


def _parse_server(t: _Table) -> ServerSpec:
    t.only(["settings", "sweep"])
    settings = _settings_table(t, "settings", t.data.get("settings", {}))
    raw_sweep = t.data.get("sweep", [])
    if not isinstance(raw_sweep, list):
        t.fail("sweep", "must be one or more [[server.sweep]] tables of settings")
    sweep: list[SweepConfig] = []
    for i, entry in enumerate(raw_sweep):
        if not isinstance(entry, Mapping) or not entry:
            t.fail(f"sweep #{i + 1}", "must be a table of setting = value (and an optional label)")
        values = {k: v for k, v in entry.items() if k != "label"}
        config = _settings_table(t, f"sweep #{i + 1}", values)
        label = entry.get("label") or ", ".join(f"{k}={v}" for k, v in config.items())
        if not isinstance(label, str):
            t.fail(f"sweep #{i + 1}.label", "must be a string")
        sweep.append(SweepConfig(label=label, settings=config))
    labels = [c.label for c in sweep]
    if len(set(labels)) != len(labels):
        t.fail("sweep", f"has duplicate configurations: {', '.join(labels)}")
    return ServerSpec(settings=settings, sweep=tuple(sweep))


# Settings pgvbench chooses for its embedded server: a spec value would move the server
# where pgvbench cannot find or reach it (port = 5999 left the data dir unusable).
_WHERE_IT_LISTENS = "it picks a free port and connects through it"
_ITS_FILES = "it keeps the server's files in its data directory"
_ITS_LOGS = "it reads the server log to diagnose failures"
MANAGED_SETTINGS: Mapping[str, str] = {
    "port": _WHERE_IT_LISTENS,
    "listen_addresses": _WHERE_IT_LISTENS,
    "unix_socket_directories": _WHERE_IT_LISTENS,
    "unix_socket_permissions": _WHERE_IT_LISTENS,
    "unix_socket_group": _WHERE_IT_LISTENS,
    "data_directory": _ITS_FILES,
    "hba_file": _ITS_FILES,
    "ident_file": _ITS_FILES,
    "config_file": _ITS_FILES,
    "external_pid_file": _ITS_FILES,
    "logging_collector": _ITS_LOGS,
    "log_directory": _ITS_LOGS,
    "log_filename": _ITS_LOGS,
}

# pgvector 0.8's query-time settings and the values it accepts. Outside them SET fails, or,
# when the value reaches the server before the library loads (postgresql.conf, a
# placeholder), pgvector warns and silently keeps its default while results would record
# the spec's value.
PGVECTOR_INT_SETTINGS: Mapping[str, tuple[int, int]] = {
    "hnsw.ef_search": (1, 1000),
    "hnsw.max_scan_tuples": (1, 2_147_483_647),
    "ivfflat.probes": (1, 32768),
    "ivfflat.max_probes": (1, 32768),
}
PGVECTOR_ENUM_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "hnsw.iterative_scan": ("off", "strict_order", "relaxed_order"),
    "ivfflat.iterative_scan": ("off", "relaxed_order"),
}


def pgvector_setting_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not valid for pgvector query setting ``name`` (None if it is, or if
    ``name`` is not one): the text follows "<key> = <value>" in a message."""
    if name in PGVECTOR_INT_SETTINGS:
        lo, hi = PGVECTOR_INT_SETTINGS[name]
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        if number is None or not lo <= number <= hi:
            return (
                f"is outside pgvector's range for {name}: it must be an integer {lo}..{hi} "
                "(pgvector would ignore it and use its default)"
            )
    elif name in PGVECTOR_ENUM_SETTINGS:
        allowed = PGVECTOR_ENUM_SETTINGS[name]
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            return f"is not a value pgvector accepts for {name}: use one of {', '.join(allowed)}"
    return None


def _settings_table(t: _Table, key: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        t.fail(key, 'must be a table of name = value, e.g. shared_buffers = "512MB"')
    table = _Table(t.where, f"{t.section}.{key}", raw)
    settings: dict[str, str] = {}
    for name, value in raw.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
            t.fail(f"{key}.{name}", "is not a PostgreSQL setting name")
        if name in MANAGED_SETTINGS:
            # with --dsn they are not applied at all, so refusing them always is safe
            table.fail(
                name,
                f"is managed by pgvbench for its embedded server ({MANAGED_SETTINGS[name]}); "
                "remove it",
            )
        if isinstance(value, bool):
            settings[name] = "on" if value else "off"
        elif isinstance(value, (int, float, str)):
            settings[name] = str(value)
        else:
            t.fail(f"{key}.{name}", "must be a string, number or boolean")
        problem = pgvector_setting_problem(name, settings[name])
        if problem:
            table.fail(name, f"= {value!r} {problem}")
    return settings


def _parse_load(t: _Table, indexes: tuple[IndexSpec, ...], query: QuerySpec) -> LoadSpec:
    t.only(
        [
            "index",
            "query_params",
            "clients",
            "mode",
            "think_time_ms",
            "rate",
            "arrival",
            "max_inflight",
            "warmup_seconds",
            "duration_seconds",
            "slo_p99_ms",
            "query_source",
            "engines",
            "pooling",
        ]
    )
    labels = [ix.label for ix in indexes]
    default_index = next((ix.label for ix in indexes if ix.kind != "none"), labels[0])
    label = t.string("index", default=default_index)
    if label not in labels:
        t.fail("index", f"= {label!r} is not one of the [[index]] builds: {', '.join(labels)}")
    target = indexes[labels.index(label)]
    raw_params = t.data.get("query_params", {})
    if not isinstance(raw_params, Mapping):
        t.fail("query_params", 'must be a table, e.g. { "hnsw.ef_search" = 40 }')
    params: dict[str, int] = {}
    for key, value in raw_params.items():
        if key != target.sweep_param:
            allowed = target.sweep_param or (
                "(none: this build has no query parameter set by the spec)"
            )
            t.fail(f"query_params.{key}", f"does not apply to {label}; allowed: {allowed}")
        problem = pgvector_setting_problem(key, value)
        if problem:
            t.fail(f"query_params.{key}", f"= {value!r} {problem}")
        lists = target.params.get("lists")
        if key == "ivfflat.probes" and lists is not None and value > lists:
            t.fail(
                f"query_params.{key}",
                f"= {value} exceeds lists = {lists} of {label} (probes = lists is already an "
                "exhaustive scan)",
            )
        params[key] = value
    if target.sweep_param and target.sweep_param not in params:
        params[target.sweep_param] = target.sweep_values[len(target.sweep_values) // 2]
    mode = t.choice("mode", LOAD_MODES, default="closed")
    rate = t.number("rate", default=0.0, minimum=0.0, maximum=1e6)
    if mode == "open" and rate <= 0:
        t.fail("rate", "must be > 0 in open loop (target operations per second)")
    engines = tuple(dict.fromkeys(t.str_list("engines", default=["python"], allowed=ENGINES)))
    raw_pooling = t.data.get("pooling", [{"strategy": "direct"}])
    if not isinstance(raw_pooling, list) or not raw_pooling:
        t.fail("pooling", "must be one or more [[load.pooling]] tables")
    pooling = tuple(
        _parse_pooling(_Table(t.where, f"load.pooling #{i + 1}", raw))
        for i, raw in enumerate(raw_pooling)
    )
    return LoadSpec(
        index=label,
        query_params=params,
        clients=t.int_list("clients", default=[1, 2, 4, 8], minimum=1, maximum=1000),
        mode=mode,
        think_time_ms=t.number("think_time_ms", default=0.0, minimum=0.0, maximum=60_000.0),
        rate=rate,
        arrival=t.choice("arrival", ARRIVALS, default="poisson"),
        max_inflight=t.integer("max_inflight", default=0, minimum=0, maximum=1_000_000),
        warmup_seconds=t.number("warmup_seconds", default=1.0, minimum=0.0, maximum=3600.0),
        duration_seconds=t.number("duration_seconds", default=5.0, minimum=0.5, maximum=86400.0),
        slo_p99_ms=t.number("slo_p99_ms", default=50.0, minimum=0.001),
        query_source=t.choice("query_source", QUERY_SOURCES, default="vector"),
        engines=engines,
        pooling=pooling,
    )


def _parse_pooling(t: _Table) -> PoolingSpec:
    strategy = t.choice("strategy", POOLING_STRATEGIES, required=True)
    t.section = f"load.pooling.{strategy}"
    if strategy == "psycopg_pool":
        t.only(["strategy", "min_size", "max_size", "timeout", "max_waiting"])
        sizes = t.int_list("max_size", default=[4], minimum=1, maximum=10_000)
        min_size = t.integer("min_size", default=-1, minimum=-1, maximum=10_000)
        if min_size > min(sizes):
            t.fail("min_size", f"= {min_size} exceeds the smallest max_size {min(sizes)}")
        return PoolingSpec(
            strategy=strategy,
            min_size=None if min_size < 0 else min_size,
            max_sizes=sizes,
            timeout_s=t.number("timeout", default=30.0, minimum=0.001, maximum=3600.0),
            max_waiting=t.integer("max_waiting", default=0, minimum=0, maximum=1_000_000),
        )
    if strategy == "pgbouncer":
        t.only(["strategy", "pool_mode", "pool_size"])
        return PoolingSpec(
            strategy=strategy,
            pool_mode=t.choice("pool_mode", POOL_MODES, default="transaction"),
            pool_sizes=t.int_list("pool_size", default=[20], minimum=1, maximum=10_000),
        )
    t.only(["strategy"])
    return PoolingSpec(strategy=strategy)


_INDEX_KEYS = {
    "none": [],
    "ivfflat": ["lists", "probes"],
    "hnsw": ["m", "ef_construction", "ef_search"],
}


def _parse_index(t: _Table, query: QuerySpec) -> IndexSpec:
    kind = t.choice("kind", INDEX_KINDS, required=True)
    t.section = f"index.{kind}"
    t.only(["kind", *_INDEX_KEYS[kind]])
    if kind == "none":
        return IndexSpec(kind=kind, params={}, sweep_param=None, sweep_values=())
    if kind == "ivfflat":
        lists = t.integer("lists", default=100, minimum=1, maximum=32768)
        if t.data.get("probes") == SERVER_VALUE:
            return IndexSpec(kind=kind, params={"lists": lists}, sweep_param=None, sweep_values=())
        lo, hi = PGVECTOR_INT_SETTINGS["ivfflat.probes"]
        probes = t.int_list("probes", default=[1], minimum=lo, maximum=hi, server_value=True)
        for p in probes:
            if p > lists:
                t.fail(
                    "probes",
                    f"value {p} exceeds lists = {lists} (probes = lists is "
                    "already an exhaustive scan)",
                )
        return IndexSpec(
            kind=kind, params={"lists": lists}, sweep_param="ivfflat.probes", sweep_values=probes
        )
    m = t.integer("m", default=16, minimum=2, maximum=100)
    efc = t.integer("ef_construction", default=64, minimum=4, maximum=1000)
    if efc < 2 * m:
        t.fail("ef_construction", f"= {efc} must be at least 2 * m = {2 * m} (pgvector rule)")
    params = {"m": m, "ef_construction": efc}
    if t.data.get("ef_search") == SERVER_VALUE:
        # queries run at whatever hnsw.ef_search the server/database/role sets: a regression
        # spec then catches a changed default without the spec itself changing
        return IndexSpec(kind=kind, params=params, sweep_param=None, sweep_values=())
    lo, hi = PGVECTOR_INT_SETTINGS["hnsw.ef_search"]
    ef_search = t.int_list("ef_search", default=[40], minimum=lo, maximum=hi, server_value=True)
    return IndexSpec(
        kind=kind,
        params=params,
        sweep_param="hnsw.ef_search",
        sweep_values=ef_search,
    )


class _Table:
    """Typed, validating access to one TOML table; every error names file + table + key."""

    def __init__(self, where: str, section: str, data: Any) -> None:
        self.where = where
        self.section = section
        if data is None:
            raise SpecError(f"{where}: missing required table [{section}]")
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: [{section}] must be a table")
        self.data: Mapping[str, Any] = data

    def fail(self, key: str, message: str) -> Any:
        prefix = f"[{self.section}] " if self.section else ""
        raise SpecError(f"{self.where}: {prefix}{key} {message}")

    def only(self, allowed: list[str]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "."
                self.fail(
                    repr(key)[1:-1],
                    f"is not a known key{hint} Allowed keys: "
                    f"{', '.join(allowed) if allowed else '(none)'}.",
                )

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return default
        return self.data[key]

    def string(self, key: str, *, default: str = "", required: bool = False) -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str):
            self.fail(key, f"= {value!r} must be a string")
        return str(value)

    def choice(self, key: str, allowed: Any, *, default: str = "", required: bool = False) -> str:
        value = self.string(key, default=default, required=required)
        if value not in allowed:
            self.fail(key, f"= {value!r} is not one of: {', '.join(allowed)}")
        return value

    def integer(
        self,
        key: str,
        *,
        default: int = 0,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"= {value!r} must be an integer")
        return int(self._bounded(key, value, minimum, maximum))

    def number(
        self,
        key: str,
        *,
        default: float = 0.0,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"= {value!r} must be a number")
        if not math.isfinite(value):
            self.fail(key, f"= {value} must be a finite number")
        return float(self._bounded(key, value, minimum, maximum))

    def int_list(
        self,
        key: str,
        *,
        default: list[int],
        minimum: int,
        maximum: int,
        server_value: bool = False,
    ) -> tuple[int, ...]:
        """``server_value``: the key also accepts "server" (ef_search, probes), so say so."""
        value = self._get(key, default, False)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        allowed = (
            f'an integer {minimum}..{maximum}, a list of them, or "{SERVER_VALUE}" (the '
            "server's own setting)"
            if server_value
            else "an integer or a non-empty list of integers"
        )
        if not isinstance(value, list) or not value:
            self.fail(key, f"= {value!r} must be {allowed}")
        out: list[int] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                if server_value:
                    self.fail(key, f"contains {item!r}; it must be {allowed}")
                self.fail(key, f"contains {item!r}; every value must be an integer")
            out.append(self._bounded(key, item, minimum, maximum))
        return tuple(sorted(set(out)))

    def str_list(
        self, key: str, *, default: list[str], allowed: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = self._get(key, default, False)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(key, f"= {value!r} must be a non-empty list of: {', '.join(allowed)}")
        for item in value:
            if item not in allowed:
                self.fail(key, f"contains {item!r}, which is not one of: {', '.join(allowed)}")
        return tuple(value)

    def path(self, key: str, base_dir: Path) -> Path:
        value = self.string(key, required=True)
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base_dir / p)

    def _bounded(self, key: str, value: Any, minimum: Any, maximum: Any) -> Any:
        if minimum is not None and value < minimum:
            self.fail(key, f"= {value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            self.fail(key, f"= {value} is above the maximum {maximum}")
        return value
