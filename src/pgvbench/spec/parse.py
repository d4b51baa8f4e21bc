"""Experiment specs: TOML files validated into immutable objects.

One spec file is one experiment. Every table accepts only known keys; a typo or an
out-of-range value is reported with the file, the table, the key and what is
allowed, so the user can fix it without reading code.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._textfile import decode_text, read_regular_file
from ..ab.spec import parse_ab
from ..errors import SpecError
from ..recall_rule import ANN_BENCHMARKS_EPSILON, STRICT_SPELLING
from ..studies.base import SpecContext
from ..studies.registry import REGISTRY, studies_for
from .agents import parse_agents
from .dataset import parse_dataset
from .limits import check_derived_names, check_schema_name, check_spec_numbers
from .model import (
    ARRIVALS,
    ENGINES,
    EXPERIMENT_KINDS,
    IDENT_RE,
    INDEX_KINDS,
    LOAD_MODES,
    MAX_NAME,
    NAME_RE,
    POOL_MODES,
    POOLING_STRATEGIES,
    QUERY_GUCS,
    QUERY_SOURCES,
    SERVER_VALUE,
    ExperimentSpec,
    IndexSpec,
    LoadSpec,
    PoolingSpec,
    QuerySpec,
    Studies,
    StudySpec,
)
from .settings import PGVECTOR_INT_SETTINGS, parse_server, pgvector_setting_problem
from .table import Table


def _parse_collectors(data: Mapping[str, Any], where: str) -> bool:
    if "collectors" not in data:
        return True
    t = Table(where, "collectors", data["collectors"])
    t.only(["enabled"])
    enabled = t.data.get("enabled", True)
    if not isinstance(enabled, bool):
        t.fail("enabled", f"= {enabled!r} must be true or false")
    return bool(enabled)


def _parse_studies(data: Mapping[str, Any], ctx: SpecContext) -> Studies:
    """Every registered study: its table parsed by the study, or None (always None for a
    study of another experiment kind: the key check refused its table)."""
    out: list[StudySpec] = []
    for study in REGISTRY:
        if study.name not in data or ctx.kind not in study.applies_to:
            out.append(StudySpec(name=study.name, section=study.section))
            continue
        if study.needs_index and not any(ix.kind != "none" for ix in ctx.indexes):
            raise SpecError(
                f"{ctx.where}: [{study.name}] measures an index: add an hnsw or ivfflat [[index]]"
            )
        parsed = study.parse(Table(ctx.where, study.name, data[study.name]), ctx)
        out.append(
            StudySpec(
                name=study.name,
                section=study.section,
                spec=parsed,
                as_dict=study.spec_to_dict(parsed),
            )
        )
    return Studies(tuple(out))


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
    exp = Table(where, "experiment", data.get("experiment", {}))
    exp.only(["name", "seed", "schema", "kind", "repeats"])
    kind = exp.choice("kind", EXPERIMENT_KINDS, default="vector")
    common = ["experiment", "query", "server", "index", "load"]
    study_tables = [study.name for study in studies_for(kind)]
    if kind == "vector":
        Table(where, "", data).only([*common, "dataset", *study_tables, "collectors", "ab"])
    else:
        Table(where, "", data).only([*common, "agents", "workload", "operation", *study_tables])
    name = exp.string("name", required=True)
    if not NAME_RE.fullmatch(name):
        length = f"; it has {len(name)}" if IDENT_RE.fullmatch(name) else ""
        exp.fail(
            "name",
            f"= {name!r} must be lowercase letters, digits and _, starting "
            f"with a letter, at most {MAX_NAME} characters (it names tables and report "
            f"folders){length}",
        )
    check_derived_names(exp, name, kind)
    seed = exp.integer("seed", default=42, minimum=0)
    # Each sweep and load point is measured `repeats` times, interleaved across points,
    # so `pgvbench compare` can test significance instead of trusting one sample.
    repeats = exp.integer("repeats", default=1, minimum=1, maximum=100)
    schema = exp.string("schema", default="pgvbench")
    check_schema_name(exp, schema)

    dataset = None
    agents = None
    if kind == "vector":
        dataset = parse_dataset(Table(where, "dataset", data.get("dataset")), base_dir)
    else:
        agents = parse_agents(
            data,
            where,
            seed,
            studies=study_tables,
            present={name for name in study_tables if name in data},
        )
    query = _parse_query(Table(where, "query", data.get("query", {})))
    server = parse_server(Table(where, "server", data.get("server", {})))

    raw_indexes = data.get("index")
    if kind == "agents" and raw_indexes is None:
        raw_indexes = [{"kind": "none"}]  # custom operations only: no vector index to build
    # [tune] searches the index space itself and [capacity] builds its own at each data
    # size: no [[index]] to list
    tune_only = kind == "vector" and raw_indexes is None and ("tune" in data or "capacity" in data)
    if tune_only:
        raw_indexes = []
    elif not isinstance(raw_indexes, list) or not raw_indexes:
        raise SpecError(
            f"{where}: at least one [[index]] table is required, e.g.\n"
            '  [[index]]\n  kind = "hnsw"\n  m = 16\n  ef_construction = 64\n'
            "  ef_search = [20, 40, 80]"
        )
    indexes = tuple(
        _parse_index(Table(where, f"index #{i + 1}", raw), query)
        for i, raw in enumerate(raw_indexes)
    )
    labels = [ix.label for ix in indexes]
    dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dupes:
        raise SpecError(f"{where}: [[index]] builds are listed twice: {', '.join(dupes)}")
    load = None
    if "load" in data:
        load = _parse_load(Table(where, "load", data["load"]), indexes, query)
        if kind == "agents" and load.processes > 1:  # agent operations hold closures
            raise SpecError(
                f"{where}: [load] processes = {load.processes} is not available for agent "
                "workloads yet (their operations cannot be sent to worker processes); "
                "allowed: 1"
            )
    if kind == "agents" and len(indexes) != 1:
        raise SpecError(
            f"{where}: an agent experiment builds exactly one [[index]] (on memories and "
            f"chunks); found {len(indexes)}. Compare index kinds with [filtered] strategies."
        )
    studies = _parse_studies(
        data,
        SpecContext(where=where, kind=kind, seed=seed, query=query, indexes=indexes, server=server),
    )
    if server.replicas and not any(st.name == "replicas" and st.spec for st in studies):
        raise SpecError(
            f"{where}: [server] replicas = {server.replicas} starts hot standbys that nothing "
            "would read: add a [replicas] table (agent experiments; see "
            "workloads/replicas.toml) to measure reads on them, or remove replicas"
        )
    spec = ExperimentSpec(
        studies=studies,
        collectors=_parse_collectors(data, where) if kind == "vector" else True,
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
    check_spec_numbers(spec)
    if "ab" in data:  # pgvbench ab's own table; `run` ignores it
        spec = dataclasses.replace(spec, ab=parse_ab(Table(where, "ab", data["ab"])))
    return spec


def _parse_query(t: Table) -> QuerySpec:
    t.only(
        [
            "k",
            "recall_queries",
            "warmup_seconds",
            "measure_seconds",
            "target_recall",
            "statement_timeout_ms",
            "recall_epsilon",
            "target_recall_p5",
            "rebuilds",
        ]
    )
    p5 = None
    if "target_recall_p5" in t.data:
        p5 = t.number("target_recall_p5", minimum=0.0, maximum=1.0)
    return QuerySpec(
        recall_epsilon=_recall_epsilon(t),
        target_recall_p5=p5,
        # each extra build repeats the whole sweep once: keep it a handful
        rebuilds=t.integer("rebuilds", default=1, minimum=1, maximum=10),
        k=t.integer("k", default=10, minimum=1, maximum=100),
        recall_queries=t.integer("recall_queries", default=200, minimum=1, maximum=100_000),
        warmup_seconds=t.number("warmup_seconds", default=1.0, minimum=0.0),
        measure_seconds=t.number("measure_seconds", default=3.0, minimum=0.1),
        target_recall=_target_recall(t),
        statement_timeout_ms=t.integer(
            "statement_timeout_ms", default=30_000, minimum=1, maximum=2_147_483_647
        ),
    )


def _recall_epsilon(t: Table) -> float | str:
    value = t.data.get("recall_epsilon", ANN_BENCHMARKS_EPSILON)
    if value == STRICT_SPELLING:
        return STRICT_SPELLING
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        t.fail(
            "recall_epsilon",
            f"= {value!r} must be a number in [0, 1) (a returned neighbour is a hit when its "
            f"distance is at most the k-th true distance plus this; default "
            f'{ANN_BENCHMARKS_EPSILON:g}, as ann-benchmarks) or "{STRICT_SPELLING}" (1e-5 x '
            "max(1, |d_k|), pgvbench's earlier rule)",
        )
    return float(value)


def _target_recall(t: Table) -> float:
    value = t.number("target_recall", default=0.95, minimum=0.0, maximum=1.0)
    if value <= 0.0:
        # recall 0 is met by any index: every "cheapest point reaching it" would be meaningless
        t.fail("target_recall", f"= {value} must be in (0, 1], e.g. 0.95")
    return value


def _parse_load(t: Table, indexes: tuple[IndexSpec, ...], query: QuerySpec) -> LoadSpec:
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
            "window_seconds",
            "slo_p99_ms",
            "query_source",
            "engines",
            "pooling",
            "processes",
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
    point = target.operating_point
    if target.sweep_param and target.sweep_param not in params and point is not None:
        params[target.sweep_param] = point
    mode = t.choice("mode", LOAD_MODES, default="closed")
    rate = t.number("rate", default=0.0, minimum=0.0, maximum=1e6)
    if mode == "open" and rate <= 0:
        t.fail("rate", "must be > 0 in open loop (target operations per second)")
    engines = tuple(dict.fromkeys(t.str_list("engines", default=["python"], allowed=ENGINES)))
    raw_pooling = t.data.get("pooling", [{"strategy": "direct"}])
    if not isinstance(raw_pooling, list) or not raw_pooling:
        t.fail("pooling", "must be one or more [[load.pooling]] tables")
    pooling = tuple(
        _parse_pooling(Table(t.where, f"load.pooling #{i + 1}", raw))
        for i, raw in enumerate(raw_pooling)
    )
    processes = _processes(t, pooling)
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
        window_seconds=t.number("window_seconds", default=1.0, minimum=0.1, maximum=3600.0),
        slo_p99_ms=t.number("slo_p99_ms", default=50.0, minimum=0.001),
        query_source=t.choice("query_source", QUERY_SOURCES, default="vector"),
        engines=engines,
        pooling=pooling,
        processes=processes,
    )


def _processes(t: Table, pooling: tuple[PoolingSpec, ...]) -> int:
    """[load] processes: worker processes for the python engine's clients."""
    most = (os.cpu_count() or 1) * 4
    allowed = f"an integer from 1 to {most} (4 x this machine's {most // 4} CPUs)"
    value = t.data.get("processes", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        t.fail("processes", f"= {value!r} must be {allowed}")
    if value > 1 and any(p.strategy == "psycopg_pool" for p in pooling):
        t.fail(
            "processes",
            f"= {value} cannot be combined with the psycopg_pool strategy (a pool is one "
            "process's); with processes > 1 the strategies are direct, connect_per_op "
            "and pgbouncer",
        )
    return int(value)


def _parse_pooling(t: Table) -> PoolingSpec:
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


def _parse_index(t: Table, query: QuerySpec) -> IndexSpec:
    kind = t.choice("kind", INDEX_KINDS, required=True)
    t.section = f"index.{kind}"
    t.only(["kind", *_INDEX_KEYS[kind]])
    if kind == "none":
        return IndexSpec(kind=kind, params={}, sweep_param=None, sweep_values=())
    if kind == "ivfflat":
        lists = t.integer("lists", default=100, minimum=1, maximum=32768)
        if t.data.get("probes") == SERVER_VALUE:
            return IndexSpec(kind=kind, params={"lists": lists}, sweep_param=None, sweep_values=())
        lo, hi = PGVECTOR_INT_SETTINGS[QUERY_GUCS["ivfflat"]]
        probes = t.int_list("probes", default=[1], minimum=lo, maximum=hi, server_value=True)
        for p in probes:
            if p > lists:
                t.fail(
                    "probes",
                    f"value {p} exceeds lists = {lists} (probes = lists is "
                    "already an exhaustive scan)",
                )
        return IndexSpec(
            kind=kind,
            params={"lists": lists},
            sweep_param=QUERY_GUCS["ivfflat"],
            sweep_values=probes,
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
    lo, hi = PGVECTOR_INT_SETTINGS[QUERY_GUCS["hnsw"]]
    ef_search = t.int_list("ef_search", default=[40], minimum=lo, maximum=hi, server_value=True)
    return IndexSpec(
        kind=kind,
        params=params,
        sweep_param=QUERY_GUCS["hnsw"],
        sweep_values=ef_search,
    )
