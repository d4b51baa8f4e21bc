"""What a spec will do, counted, and roughly how long it will take (``pgvbench validate``).

:func:`validate` parses the spec, opens the dataset files' headers (shapes, dims, dtypes,
metric; no vectors read) and checks them against the spec, then :func:`plan_run` counts
every index build, sweep point, repeat, load point and study and estimates the run's time.

The estimate is deliberately simple and says so. Measured windows come straight from the
spec (warm-up + measure seconds, times repeats). Builds use a model calibrated on the
README's figure, HNSW m=16, ef_construction=64 on 100k x 128 vectors in 18.6 s on 2 cores,
scaled linearly in rows x dim x m x ef_construction; IVFFlat scales in rows x dim x lists
and is much cheaper. A real run can differ by a factor of two either way (cores, memory,
maintenance_work_mem, data); the point is that a spec with hundreds of builds or hours of
measurement does not surprise anyone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import psutil

from .datasets.files import probe_hdf5, probe_npy
from .errors import DatasetError, SpecError
from .spec import ExperimentSpec, IndexSpec, LoadSpec, check_dataset_shape, load_spec

# Calibration (2 cores, PostgreSQL 18, pgvector 0.8): see the module docstring.
HNSW_REF_SECONDS = 18.6  # m=16, ef_construction=64, 100,000 x 128
HNSW_REF_WORK = 100_000 * 128 * 16 * 64
IVFFLAT_REF_SECONDS = 1.5  # lists=100, 100,000 x 128 (k-means on a sample + assignment)
IVFFLAT_REF_WORK = 100_000 * 128 * 100
LOAD_VALUES_PER_S = 2.5e6  # generate + binary COPY + ANALYZE, floats per second
TRUTH_FLOPS = 2e9  # exact kNN for the recall queries (faiss, blocked)
INDEX_QUERY_S = 0.002  # one top-k through an index (recall passes, result-cache streams)
SCAN_VALUES_PER_S = 5e8  # an exact scan reads this many floats per second
POINT_OVERHEAD_S = 0.3  # EXPLAIN, collectors, results re-saved
LOAD_POINT_OVERHEAD_S = 0.5  # connections / pool / pgbench start-up
RESTART_S = 3.0  # an embedded server restart (settings sweeps, cache study)

# A run holds base vectors and queries in memory as float32; ground truth, generation
# buffers and the copies made while loading roughly triple that.
MEMORY_FACTOR = 3

LONG_RUN_S = 30 * 60  # warn above this estimate ...
MANY_BUILDS = 50  # ... or this many index builds


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetShape:
    """The dataset as the run will see it: from the spec, or from the files' headers."""

    description: str  # e.g. "synthetic clustered 50,000 x 128 (l2)"
    rows: int
    dim: int
    queries: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanItem:
    """One kind of work: how many, and the estimated seconds for all of them."""

    what: str  # e.g. "index builds", "sweep points x 3 repeats"
    count: int
    seconds: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunPlan:
    """Everything a spec will do, counted; ``estimated_seconds`` is a rough estimate."""

    source: str  # the spec file
    kind: str  # "vector" | "agents"
    dataset: DatasetShape | None
    server_configs: int  # [[server.sweep]] entries (1 without a sweep)
    repeats: int
    index_builds: int  # every CREATE INDEX: [[index]] builds x configs, plus the studies'
    sweep_points: int  # distinct sweep points (x server configurations)
    load_points: int  # distinct load points (x server configurations)
    measurements: int  # timed windows: sweep and load points x repeats, study points
    studies: tuple[str, ...]
    items: tuple[PlanItem, ...]
    estimated_seconds: float
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- entry points


def validate(path: Path) -> RunPlan:
    """Parse a spec, check its dataset files' headers against it, and count its work.

    Raises the same errors a run would (SpecError, DatasetError), before any work starts.
    """
    spec = load_spec(path)
    return plan_run(spec, dataset_shape(spec))


def dataset_shape(spec: ExperimentSpec) -> DatasetShape | None:
    """The dataset's shape; file datasets are opened (headers only) and checked."""
    ds = spec.dataset
    if ds is None:
        data = spec.agents.data if spec.agents is not None else None
        if data is None:
            return None
        return DatasetShape(
            description=(
                f"agent platform: {data.memories:,} memories, {data.chunks:,} chunks, "
                f"{data.tasks:,} tasks, dim {data.dim} ({data.metric})"
            ),
            rows=data.memories + data.chunks,
            dim=data.dim,
            queries=0,
        )
    where = str(spec.source_path) if spec.source_path else "<spec>"
    if ds.source == "synthetic":
        problem = memory_problem(
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
            shape_from=f"[dataset] n = {ds.n:,}, dim = {ds.dim:,}, queries = {ds.queries:,}",
        )
        if problem:
            raise SpecError(f"{where}: {problem}; lower n or dim, or run on a larger machine")
        return DatasetShape(
            description=f"synthetic {ds.distribution} {ds.n:,} x {ds.dim} ({ds.metric})",
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
        )
    if ds.source == "hdf5":
        assert ds.path is not None
        header = probe_hdf5(ds.path, max_queries=ds.queries or None)
    else:
        assert ds.base is not None and ds.queries_file is not None
        header = probe_npy(ds.base, ds.queries_file, metric=ds.metric)
    check_dataset_shape(
        spec,
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
        base=header.base,
        queries_path=header.queries_path,
    )
    problem = memory_problem(
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
        shape_from=f"{header.base} holds {header.rows:,} x {header.dim:,} vectors and "
        f"{header.queries:,} queries",
    )
    if problem:
        raise DatasetError(f"{where}: {problem}; use a subset of the data or a larger machine")
    return DatasetShape(
        description=f"{header.source} {header.rows:,} x {header.dim} ({header.metric})",
        rows=header.rows,
        dim=header.dim,
        queries=header.queries,
    )


def memory_estimate(*, rows: int, dim: int, queries: int) -> int:
    """Bytes a run needs for its dataset: float32 base + queries, x MEMORY_FACTOR."""
    return (rows + queries) * dim * 4 * MEMORY_FACTOR


def memory_problem(*, rows: int, dim: int, queries: int, shape_from: str) -> str | None:
    """Why this dataset cannot fit in this machine's RAM, or None."""
    need = memory_estimate(rows=rows, dim=dim, queries=queries)
    total = int(psutil.virtual_memory().total)
    if need <= total:
        return None
    return (
        f"the dataset cannot fit in memory ({shape_from}): a run needs about "
        f"{_bytes(need)} (float32 base vectors and queries, x{MEMORY_FACTOR} for ground truth "
        f"and copies) but this machine has {_bytes(total)} of RAM"
    )


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def plan_run(spec: ExperimentSpec, shape: DatasetShape | None) -> RunPlan:
    """Count the work of ``spec`` on a dataset of ``shape`` and estimate its duration."""
    counter = _Counter(spec, shape)
    if spec.kind == "agents":
        counter.agents()
    else:
        counter.vector()
    return counter.finish()


def format_plan(plan: RunPlan) -> list[str]:
    """The plan as lines for stdout: a summary line, then one line per kind of work."""
    head = (
        f"{plan.source}: ok ({_n(plan.index_builds, 'index build')}, "
        f"{_n(plan.sweep_points, 'sweep point')}, {_n(plan.load_points, 'load point')})"
    )
    lines = [head]
    if plan.dataset is not None:
        extra = f", {plan.dataset.queries:,} queries" if plan.dataset.queries else ""
        lines.append(f"  dataset: {plan.dataset.description}{extra}")
    if plan.server_configs > 1:
        lines.append(f"  server configurations: {plan.server_configs} ([[server.sweep]])")
    if plan.studies:
        lines.append(f"  studies: {', '.join(plan.studies)}")
    width = max((len(item.what) for item in plan.items), default=0)
    for item in plan.items:
        lines.append(f"  {item.what:<{width}}  {item.count:>6,}  ~{_duration(item.seconds)}")
    lines.append(
        f"  estimated time: about {_duration(plan.estimated_seconds)} (rough: the spec's "
        "measured windows, plus builds modelled on HNSW m=16, ef_construction=64 over "
        "100k x 128 vectors = 18.6 s on 2 cores)"
    )
    return lines


# --------------------------------------------------------------------------- counting


def hnsw_build_seconds(rows: int, dim: int, m: int, ef_construction: int) -> float:
    """Rough HNSW build time: linear in rows x dim x m x ef_construction."""
    return HNSW_REF_SECONDS * (rows * dim * m * ef_construction) / HNSW_REF_WORK


def ivfflat_build_seconds(rows: int, dim: int, lists: int) -> float:
    """Rough IVFFlat build time: k-means plus assigning every row to one of ``lists``."""
    return 0.2 + IVFFLAT_REF_SECONDS * (rows * dim * lists) / IVFFLAT_REF_WORK


def build_seconds(index: IndexSpec, rows: int, dim: int) -> float:
    if index.kind == "hnsw":
        return hnsw_build_seconds(
            rows, dim, index.params.get("m", 16), index.params.get("ef_construction", 64)
        )
    if index.kind == "ivfflat":
        return ivfflat_build_seconds(rows, dim, index.params.get("lists", 100))
    return 0.0


def load_plan(load: LoadSpec, *, custom_operations: bool = False) -> int:
    """Load points of a [load] table: engines x pooling variants x clients (as loadtest)."""
    points = 0
    for engine in load.engines:
        for pooling in load.pooling:
            if engine == "pgbench" and (pooling.strategy != "direct" or custom_operations):
                continue  # pgbench runs the kNN reference on dedicated connections only
            points += len(pooling.variants()) * len(load.clients)
    return points


class _Counter:
    """Accumulates the plan's items; one method per experiment kind."""

    def __init__(self, spec: ExperimentSpec, shape: DatasetShape | None) -> None:
        self.spec = spec
        self.shape = shape
        self.rows = shape.rows if shape else 0
        self.dim = shape.dim if shape else 0
        self.configs = max(1, len(spec.server.sweep))
        self.items: list[PlanItem] = []
        self.builds = 0
        self.sweep_points = 0
        self.load_points = 0
        self.measurements = 0
        self.studies: list[str] = []

    def add(self, what: str, count: int, seconds: float) -> None:
        if count > 0:
            self.items.append(PlanItem(what=what, count=count, seconds=seconds))

    def _query_s(self, index: IndexSpec | None) -> float:
        """One top-k query: through an index, or an exact scan of every row."""
        if index is None or index.kind == "none":
            return self.rows * self.dim / SCAN_VALUES_PER_S
        return INDEX_QUERY_S

    # ------------------------------------------------------------------ vector experiments

    def vector(self) -> None:
        spec, q, repeats = self.spec, self.spec.query, self.spec.repeats
        recall_n = q.recall_queries
        setup = self.rows * self.dim / LOAD_VALUES_PER_S
        setup += recall_n * self.rows * self.dim / TRUTH_FLOPS
        self.add("data, load and ground truth", 1, setup)
        if self.configs > 1:
            self.add("server configurations applied", self.configs, self.configs * RESTART_S)

        built = [ix for ix in spec.indexes if ix.kind != "none"]
        build_s = sum(build_seconds(ix, self.rows, self.dim) for ix in built)
        self.builds += len(built) * self.configs
        self.add("index builds", len(built) * self.configs, build_s * self.configs)

        points = 0
        sweep_s = 0.0
        for ix in spec.indexes:
            values = max(1, len(ix.sweep_values))
            points += values
            window = q.warmup_seconds + q.measure_seconds
            recall_pass = recall_n * self._query_s(ix)
            sweep_s += values * (recall_pass + repeats * (window + POINT_OVERHEAD_S))
        self.sweep_points = points * self.configs
        self.measurements += self.sweep_points * repeats
        self.add(
            f"sweep points x {_n(repeats, 'repeat')}",
            self.sweep_points,
            sweep_s * self.configs,
        )
        if spec.load is not None:
            load = spec.load
            n = load_plan(load)
            self.load_points = n * self.configs
            self.measurements += self.load_points * repeats
            window = load.warmup_seconds + load.duration_seconds + LOAD_POINT_OVERHEAD_S
            self.add(
                f"load points x {_n(repeats, 'repeat')}",
                self.load_points,
                self.load_points * repeats * window,
            )
        self._vector_studies()

    def _vector_studies(self) -> None:
        st, spec = self.spec.studies, self.spec
        measure = spec.query.measure_seconds
        recall_n = spec.query.recall_queries
        if st.build_tuning is not None:
            self.studies.append("build_tuning")
            wanted = st.build_tuning.index
            index = next(
                (
                    ix
                    for ix in spec.indexes
                    if (ix.label == wanted if wanted else ix.kind == "hnsw")
                ),
                next((ix for ix in spec.indexes if ix.kind != "none"), None),
            )
            combos = st.build_tuning.combinations()
            one = build_seconds(index, self.rows, self.dim) if index is not None else 0.0
            # parallel workers shorten a build, less than linearly
            seconds = sum(one / (1 + 0.7 * workers) for _, workers in combos)
            self.builds += len(combos)
            self.add("build tuning builds", len(combos), seconds)
        if st.quantization is not None:
            self.studies.append("quantization")
            qz = st.quantization
            full = hnsw_build_seconds(self.rows, self.dim, qz.m, qz.ef_construction)
            cost = {"full": 1.0, "halfvec": 0.7, "binary": 0.3}
            self.builds += len(qz.variants)
            self.add(
                "quantization builds",
                len(qz.variants),
                sum(full * cost[v] for v in qz.variants),
            )
            runs = sum(len(qz.overfetch) + 1 if v == "binary" else 1 for v in qz.variants)
            points = runs * len(qz.ef_search)
            self.measurements += points
            per_point = measure + recall_n * INDEX_QUERY_S + POINT_OVERHEAD_S
            self.add("quantization points", points, points * per_point)
        if st.result_cache is not None or st.cache is not None:
            index = next((ix for ix in spec.indexes if ix.kind != "none"), None)
            self.builds += 1
            self.add(
                "index build for the cache studies",
                1,
                build_seconds(index, self.rows, self.dim) if index else 0.0,
            )
        if st.result_cache is not None:
            self.studies.append("result_cache")
            rc = st.result_cache
            configs = len(rc.lru_sizes) + len(rc.semantic_deltas)
            self.measurements += configs
            self.add(
                "result cache configurations",
                configs,
                configs * rc.stream_length * INDEX_QUERY_S,
            )
        if st.cache is not None:
            self.studies.append("cache")
            cache = st.cache
            sizes = max(1, len(cache.shared_buffers))
            seconds = 0.0
            for strategy in cache.strategies:
                if strategy == "warm":
                    seconds += cache.measure_seconds + 1.0  # pg_prewarm first
                else:
                    seconds += RESTART_S + cache.warmup_series_seconds + cache.measure_seconds
            points = sizes * len(cache.strategies)
            self.measurements += points
            self.add("cache states", points, sizes * (seconds + RESTART_S))
        if not st.collectors:
            self.studies.append("collectors off")

    # ------------------------------------------------------------------ agent experiments

    def agents(self) -> None:
        spec = self.spec
        ag = spec.agents
        assert ag is not None
        repeats = spec.repeats
        data = ag.data
        index = spec.indexes[0]
        memories = data.memories if data else 0
        if data is not None:
            rows = data.memories + data.chunks
            other = data.agents + data.tasks * (1 + data.messages_per_task)
            self.add(
                "data generation and load",
                1,
                rows * data.dim / LOAD_VALUES_PER_S + other / 50_000,
            )
            if index.kind != "none":
                seconds = build_seconds(index, data.memories, data.dim) + build_seconds(
                    index, data.chunks, data.dim
                )
                self.builds += 2
                self.add("index builds (memories, chunks)", 2, seconds)
        if ag.workload is not None or ag.operations:
            self.studies.append("workload")
            load = spec.load or LoadSpec(index=index.label, query_params={}, clients=(1, 4))
            n = load_plan(load, custom_operations=True)
            self.load_points = n
            self.measurements += n * repeats
            window = load.warmup_seconds + load.duration_seconds + LOAD_POINT_OVERHEAD_S
            self.add(f"load points x {_n(repeats, 'repeat')}", n, n * repeats * window)
        if ag.filtered is not None and data is not None:
            self.studies.append("filtered")
            f = ag.filtered
            hnsw = hnsw_build_seconds(memories, data.dim, 16, 64)
            builds, seconds = 0, 0.0
            if any(s.startswith("hnsw_") for s in f.strategies):
                builds, seconds = builds + 1, seconds + hnsw
            if "ivfflat_iterative" in f.strategies:
                lists = max(1, memories // 1000)
                builds += 1
                seconds += ivfflat_build_seconds(memories, data.dim, lists)
            if "partial_hot" in f.strategies:
                builds, seconds = builds + 3, seconds + 0.1 * hnsw
            if "partitioned" in f.strategies:
                builds, seconds = builds + data.tenants, seconds + hnsw
            self.builds += builds
            self.add("filtered-search index builds", builds, seconds)
            buckets = len(f.bucket_edges) + 1
            points = len(f.strategies) * buckets
            self.measurements += points
            per_point = f.measure_seconds + f.queries_per_bucket * INDEX_QUERY_S + 0.2
            self.add("filtered-search points", points, points * per_point)
        if ag.drift is not None and data is not None:
            self.studies.append("drift")
            d = ag.drift
            rebuild = build_seconds(index, memories, data.dim)
            self.builds += 1
            checkpoints = max(1, math.ceil(d.duration_seconds / d.interval_seconds))
            self.measurements += checkpoints
            self.add(
                "drift: update cost and churn",
                1,
                d.duration_seconds + 2 * d.update_samples * INDEX_QUERY_S + rebuild,
            )

    # ------------------------------------------------------------------ result

    def finish(self) -> RunPlan:
        total = sum(item.seconds for item in self.items)
        warnings: list[str] = []
        if total > LONG_RUN_S:
            warnings.append(
                f"{self.spec.source_path or '<spec>'}: this spec will run for about "
                f"{_duration(total)} (a rough estimate; the longest part: "
                f"{_longest(self.items)}); lower the repeats, sweep values or durations for "
                "a quicker run"
            )
        if self.builds > MANY_BUILDS:
            warnings.append(
                f"{self.spec.source_path or '<spec>'}: this spec builds {self.builds} indexes "
                f"(more than {MANY_BUILDS}): every [[index]] is built once per server "
                f"configuration ({self.configs}), plus the studies' builds; check that this "
                "is intended"
            )
        return RunPlan(
            source=str(self.spec.source_path or "<spec>"),
            kind=self.spec.kind,
            dataset=self.shape,
            server_configs=self.configs,
            repeats=self.spec.repeats,
            index_builds=self.builds,
            sweep_points=self.sweep_points,
            load_points=self.load_points,
            measurements=self.measurements,
            studies=tuple(self.studies),
            items=tuple(self.items),
            estimated_seconds=total,
            warnings=tuple(warnings),
        )


def _longest(items: Sequence[PlanItem]) -> str:
    top = max(items, key=lambda item: item.seconds)
    return f"{top.count:,} {top.what}, ~{_duration(top.seconds)}"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "1 s" if seconds > 0 else "0 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
