"""What a results file contributes to a comparison: matchable runs and their samples.

A *run* is one measured configuration: a sweep point, a load point (and each operation
of a mix within it) or an index build. Runs are matched across files by a key made of
workload, index kind and parameters, query parameters, concurrency, pooling, operation
and server configuration, never by position, so adding a point elsewhere in the spec
does not shift the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from ..results import IndexBuild, Latency, LoadPoint, Results, Sample, SweepPoint
from .stats import MetricRule

# Defaults follow the gate: 5% on medians and QPS, 10% on tails, recall 0.01.
RULES: dict[str, MetricRule] = {
    rule.name: rule
    for rule in (
        MetricRule("qps", "higher", 0.05, unit="ops/s", description="throughput"),
        MetricRule("p50", "lower", 0.05, unit="ms", description="median latency"),
        MetricRule("p95", "lower", 0.10, unit="ms", description="95th percentile latency"),
        MetricRule("p99", "lower", 0.10, unit="ms", description="99th percentile latency"),
        MetricRule("recall", "higher", 0.01, absolute=True, description="mean recall@k, a drop"),
        MetricRule(
            "blocks",
            "lower",
            0.10,
            unit="blocks",
            description="shared buffers hit+read per query (pg_stat_statements): "
            "nearly deterministic, catches plan and index changes without timing noise",
        ),
        MetricRule("build_s", "lower", 0.25, unit="s", description="index build seconds"),
        MetricRule("index_mb", "lower", 0.05, unit="MB", description="index size"),
    )
}

BUILD_METRICS = frozenset({"build_s", "index_mb"})  # one sample per run: builds are not repeated


@dataclasses.dataclass(frozen=True)
class Run:
    """One matchable configuration with its metric samples (one value per repeat)."""

    key: tuple[tuple[str, str], ...]
    label: str
    samples: Mapping[str, tuple[float, ...]]
    valid: bool = True
    problems: tuple[str, ...] = ()  # why a measurement may be invalid (plan, errors, client)
    errors: int = 0
    # per metric, the samples of each source run separately (one group unless the file
    # was made by `pgvbench merge`): the spread between groups is the run-to-run noise
    by_run: Mapping[str, tuple[tuple[float, ...], ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_run:
            object.__setattr__(self, "by_run", {m: (v,) for m, v in self.samples.items()})


def runs_of(results: Results) -> dict[tuple[tuple[str, str], ...], Run]:
    """Every matchable run of a results file, by key.

    Records with the same key (a file made by ``pgvbench merge`` holds one per source run)
    are pooled: their samples are concatenated, so the base or current side of a
    comparison can span several runs and carry the variation between runs.
    """
    out: dict[tuple[tuple[str, str], ...], Run] = {}
    for run in _all_runs(results):
        seen = out.get(run.key)
        out[run.key] = run if seen is None else _pool(seen, run)
    return out


def _pool(a: Run, b: Run) -> Run:
    metrics = list(dict.fromkeys([*a.samples, *b.samples]))
    return Run(
        key=a.key,
        label=a.label,
        samples={m: (*a.samples.get(m, ()), *b.samples.get(m, ())) for m in metrics},
        by_run={m: (*a.by_run.get(m, ()), *b.by_run.get(m, ())) for m in metrics},
        valid=a.valid and b.valid,
        problems=a.problems + b.problems,
        errors=a.errors + b.errors,
    )


def _all_runs(results: Results) -> Iterator[Run]:
    builds = {b.label: b for b in results.indexes}
    for build in results.indexes:
        if build.kind != "none":
            yield _build_run(build)
    for point in results.runs:
        yield _sweep_run(point)
    for lp in results.load_points:
        yield from _load_runs(lp, builds.get(lp.index))


def _key(**parts: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, _plain(v)) for k, v in parts.items() if v not in (None, "", {}))


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={value[k]}" for k in sorted(value))
    return str(value)


def _label(key: tuple[tuple[str, str], ...]) -> str:
    parts = dict(key)
    section = parts.pop("section")
    index = parts.pop("index", "")
    params = parts.pop("index_params", "")
    head = f"{section} {index}({params})" if params else f"{section} {index}".rstrip()
    rest = " ".join(
        f"{v}" if k in ("query_params", "pool") else f"{k}={v}" for k, v in parts.items()
    )
    return f"{head} {rest}".strip()


def _build_run(build: IndexBuild) -> Run:
    key = _key(
        section="build",
        index=build.kind,
        index_params=build.params,
        config=build.server_config,
    )
    return Run(
        key=key,
        label=_label(key),
        samples={
            "build_s": (build.build_seconds,),
            "index_mb": (build.index_bytes / 2**20,),
        },
    )


def _sweep_run(point: SweepPoint) -> Run:
    key = _key(
        section="sweep",
        index=point.index_kind,
        index_params=point.index_params,
        query_params=point.query_params,
        k=point.k,
        clients=point.concurrency,
        config=point.server_config,
    )
    samples = _timing_samples(point.samples, point.qps, point.latency_ms)
    blocks = [s.shared_blks_per_query for s in point.samples]
    if point.samples and all(b is not None for b in blocks):
        samples["blocks"] = tuple(float(b) for b in blocks if b is not None)
    elif not point.samples and point.statements is not None:
        st = point.statements
        samples["blocks"] = (st.shared_blks_hit_per_call + st.shared_blks_read_per_call,)
    if point.recall is not None:
        samples["recall"] = (point.recall.mean,)
    problems = _problems(point.valid, point.suspect, point.notes)
    return Run(
        key=key,
        label=_label(key),
        samples=samples,
        valid=point.valid,
        problems=problems,
        errors=point.errors,
    )


def _load_runs(lp: LoadPoint, build: IndexBuild | None) -> Iterator[Run]:
    common: dict[str, Any] = dict(
        section="load",
        workload=lp.workload or "knn",
        index=build.kind if build else lp.index,
        index_params=build.params if build else None,
        query_params=lp.query_params,
        engine=lp.engine,
        strategy=lp.strategy,
        pool={k: v for k, v in lp.pool.items() if k in ("max_size", "pool_mode", "pool_size")},
        mode=lp.mode if lp.mode != "closed" else None,
        rate=lp.target_rate,
        clients=lp.clients,
    )
    problems = _problems(lp.valid, lp.suspect, lp.notes)
    key = _key(**common, operation="all")
    yield Run(
        key=key,
        label=_label(key),
        samples=_timing_samples(lp.samples, lp.qps, lp.latency_ms),
        valid=lp.valid,
        problems=problems,
        errors=lp.errors,
    )
    if len(lp.operations_detail) < 2:
        return  # a single-operation point: the "all" run says it all
    for name, stats in lp.operations_detail.items():
        key = _key(**common, operation=name)
        per_repeat = [s.operations_detail[name] for s in lp.samples if name in s.operations_detail]
        if lp.samples and len(per_repeat) == len(lp.samples):
            samples = _from_latencies([(o.qps, o.latency_ms) for o in per_repeat])
        else:
            samples = _from_latencies([(stats.qps, stats.latency_ms)])
        yield Run(
            key=key,
            label=_label(key),
            samples=samples,
            valid=lp.valid,
            problems=problems,
            errors=stats.errors,
        )


def _timing_samples(
    samples: list[Sample], qps: float, latency: Latency | None
) -> dict[str, tuple[float, ...]]:
    if samples:
        return _from_latencies([(s.qps, s.latency_ms) for s in samples])
    return _from_latencies([(qps, latency)])  # pre-repeat files: the point is one sample


def _from_latencies(values: list[tuple[float, Latency | None]]) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {"qps": tuple(q for q, _ in values)}
    lats = [lat for _, lat in values if lat is not None]
    if len(lats) == len(values):
        out["p50"] = tuple(lat.p50 for lat in lats)
        out["p95"] = tuple(lat.p95 for lat in lats)
        out["p99"] = tuple(lat.p99 for lat in lats)
    return out


def _problems(valid: bool, suspect: bool, notes: list[str]) -> tuple[str, ...]:
    """Why a point's numbers may not be trusted: its notes when invalid, or a suspect flag."""
    out = tuple(notes) if not valid else ()
    if suspect:
        out += ("the load generator may have limited this point (suspect)",)
    return out
