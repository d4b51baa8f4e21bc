"""The records of a filtered-search comparison, as results.json keeps them.

``FilteredComparison.to_dict()`` is the JSON under ``results.agent.filtered`` (the same
form the first writer produced with ``dataclasses.asdict``); ``from_dict`` reads it back,
and tolerates a file that lacks fields or holds values of the wrong type (older or
hand-edited files): a missing measurement reads as None, a missing list as empty.

Constructors take lists or tuples; the records keep tuples, so they compare equal after
a round trip through JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .._fields import flag, float_or, int_or, objects, opt_float, str_map, strings, text


def _freeze(record: Any, *names: str) -> None:
    """Store the named sequence fields of a frozen record as tuples."""
    for name in names:
        object.__setattr__(record, name, tuple(getattr(record, name)))


@dataclasses.dataclass(frozen=True)
class BucketInfo:
    """Filters whose share of all rows lies in [low, high): agents by their share of the
    memories, or a vector dataset's labels, ranges or tags by the share they keep."""

    label: str
    low: float
    high: float | None  # None: no upper edge
    agents: int  # labels (agents) in the bucket; distinct filters for ranges and tags
    memories: int  # their rows together (labels); the most rows one filter kept (others)
    queries: int  # query vectors drawn for the bucket (0 when it has no agent)
    hot_queries: int  # of partial_hot (hot agents of the bucket only)
    # Added with filters on any dataset (issue 13; absent in older files): the predicate
    # and column of the bucket, and the share of rows its queries' filters kept.
    predicate: str = ""
    attribute: str = ""
    share_min: float | None = None
    share_median: float | None = None
    share_max: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BucketInfo:
        return cls(
            label=text(data, "label", "?"),
            low=float_or(data, "low", 0.0),
            high=opt_float(data, "high"),
            agents=int_or(data, "agents", 0),
            memories=int_or(data, "memories", 0),
            queries=int_or(data, "queries", 0),
            hot_queries=int_or(data, "hot_queries", 0),
            predicate=text(data, "predicate"),
            attribute=text(data, "attribute"),
            share_min=opt_float(data, "share_min"),
            share_median=opt_float(data, "share_median"),
            share_max=opt_float(data, "share_max"),
        )


@dataclasses.dataclass(frozen=True)
class PredicateInfo:
    """What the data says about one predicate's column: the bounds of what was measured.

    Labels and tags: how many there are, the commonest and rarest with their share of all
    rows, and those no query used (counted, the first few named). Ranges: distinct values.
    """

    name: str  # "agent" | "label" | "range" | "overlap"
    form: str  # "eq" | "range" | "overlap"
    attribute: str
    attribute_kind: str
    rows: int
    rows_with_value: int  # not NULL (an empty array counts as having none)
    cardinality: int  # distinct labels / tags / values
    commonest: str = ""
    commonest_share: float | None = None
    rarest: str = ""
    rarest_share: float | None = None
    own_query_labels: bool = False  # eq: each query filtered by its own label
    used: int = 0  # distinct filter values the queries used
    unused: int = 0  # labels or tags no query used
    unused_examples: Sequence[str] = ()

    def __post_init__(self) -> None:
        _freeze(self, "unused_examples")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredicateInfo:
        return cls(
            name=text(data, "name", "?"),
            form=text(data, "form", "?"),
            attribute=text(data, "attribute"),
            attribute_kind=text(data, "attribute_kind"),
            rows=int_or(data, "rows", 0),
            rows_with_value=int_or(data, "rows_with_value", 0),
            cardinality=int_or(data, "cardinality", 0),
            commonest=text(data, "commonest"),
            commonest_share=opt_float(data, "commonest_share"),
            rarest=text(data, "rarest"),
            rarest_share=opt_float(data, "rarest_share"),
            own_query_labels=flag(data, "own_query_labels"),
            used=int_or(data, "used", 0),
            unused=int_or(data, "unused", 0),
            unused_examples=strings(data, "unused_examples"),
        )


@dataclasses.dataclass(frozen=True)
class StrategySetup:
    """What one strategy created (all dropped again afterwards) and how it queried."""

    strategy: str
    objects: Sequence[str]  # schema-qualified names of the tables and indexes created
    setup_seconds: float
    index_bytes: int
    settings: Mapping[str, str]  # session settings of its queries
    sql: str  # the query, $1 = vector, $2 = agent uuid, $3 = tenant uuid
    notes: Sequence[str] = ()

    def __post_init__(self) -> None:
        _freeze(self, "objects", "notes")
        object.__setattr__(self, "settings", dict(self.settings))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategySetup:
        return cls(
            strategy=text(data, "strategy", "?"),
            objects=strings(data, "objects"),
            setup_seconds=float_or(data, "setup_seconds", 0.0),
            index_bytes=int_or(data, "index_bytes", 0),
            settings=str_map(data, "settings"),
            sql=text(data, "sql"),
            notes=strings(data, "notes"),
        )


@dataclasses.dataclass(frozen=True)
class FilteredRow:
    """One strategy x selectivity bucket. Latencies in ms (single client, closed loop)."""

    strategy: str
    bucket: str
    scope: str  # "all agents of the bucket" or "hot agents only (n)"
    n_queries: int
    agents: int  # distinct agents among the queries
    rows_matching_mean: float  # rows that pass the filter, mean over the queries
    recall_mean: float | None
    recall_p5: float | None
    fill_mean: float | None
    fill_min: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    qps: float | None
    buffers_per_query: float | None  # shared hit + read, EXPLAIN (ANALYZE, BUFFERS) mean
    valid: bool
    plan_indexes: Sequence[str] = ()  # seen by EXPLAIN
    notes: Sequence[str] = ()
    # Added with the margins of issue 12 (empty in older files): recall of each query in
    # query order, and the timed loop's consecutive short windows (their spread is the noise).
    recall_per_query: Sequence[float] = ()
    window_p50_ms: Sequence[float | None] = ()  # None: the window completed no query
    window_p95_ms: Sequence[float | None] = ()
    window_p99_ms: Sequence[float | None] = ()
    window_qps: Sequence[float] = ()
    # Added with the interleaved rounds (empty in older files and in rows timed alone):
    # each window's place in the comparison's run order, and the strategies whose windows
    # ran in the same rounds (window i of each in round i, so they pair up).
    window_sequence: Sequence[int] = ()
    paired_with: Sequence[str] = ()  # their arms (see ``arm``)
    # Added with the ef_search sweep: the value this row ran at when the comparison swept
    # more than one (None: the comparison's single ef_search, or no HNSW setting).
    ef_search: int | None = None

    @property
    def arm(self) -> str:
        """The strategy, with its ef_search in a sweep: what winners and pairs name."""
        return self.strategy if self.ef_search is None else arm_name(self.strategy, self.ef_search)

    def __post_init__(self) -> None:
        _freeze(
            self,
            "window_sequence",
            "paired_with",
            "plan_indexes",
            "notes",
            "recall_per_query",
            "window_p50_ms",
            "window_p95_ms",
            "window_p99_ms",
            "window_qps",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilteredRow:
        return cls(
            strategy=text(data, "strategy", "?"),
            bucket=text(data, "bucket", "?"),
            scope=text(data, "scope"),
            n_queries=int_or(data, "n_queries", 0),
            agents=int_or(data, "agents", 0),
            rows_matching_mean=float_or(data, "rows_matching_mean", 0.0),
            recall_mean=opt_float(data, "recall_mean"),
            recall_p5=opt_float(data, "recall_p5"),
            fill_mean=opt_float(data, "fill_mean"),
            fill_min=opt_float(data, "fill_min"),
            latency_p50_ms=opt_float(data, "latency_p50_ms"),
            latency_p95_ms=opt_float(data, "latency_p95_ms"),
            latency_p99_ms=opt_float(data, "latency_p99_ms"),
            qps=opt_float(data, "qps"),
            buffers_per_query=opt_float(data, "buffers_per_query"),
            valid=bool(data.get("valid", True)),  # a row that does not say was not flagged
            plan_indexes=strings(data, "plan_indexes"),
            notes=strings(data, "notes"),
            recall_per_query=_numbers(data.get("recall_per_query")),
            window_p50_ms=_numbers(data.get("window_p50_ms"), missing=True),
            window_p95_ms=_numbers(data.get("window_p95_ms"), missing=True),
            window_p99_ms=_numbers(data.get("window_p99_ms"), missing=True),
            window_qps=_numbers(data.get("window_qps")),
            window_sequence=[int(v) for v in _numbers(data.get("window_sequence"))],
            paired_with=strings(data, "paired_with"),
            ef_search=_opt_int(data.get("ef_search")),
        )


def arm_name(strategy: str, ef_search: int) -> str:
    return f"{strategy}@ef_search={ef_search}"


def _opt_int(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, int) and not isinstance(raw, bool) else None


def _numbers(raw: Any, *, missing: bool = False) -> list[Any]:
    """A list of numbers from JSON; ``missing`` keeps nulls as None (else they are dropped)."""
    if not isinstance(raw, list):
        return []
    out: list[Any] = []
    for v in raw:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif v is None and missing:
            out.append(None)
    return out


@dataclasses.dataclass(frozen=True)
class FilteredComparison:
    """Every strategy x bucket on one table; plain fields, JSON-serialisable.

    ``memories`` and ``agents`` are the rows and the labels of the equality filter (agent
    data: memories and agents)."""

    table: str
    memories: int
    agents: int
    dim: int
    metric: str
    k: int
    ef_search: int
    max_scan_tuples: int
    bucket_edges: Sequence[float]
    queries_per_bucket: int
    tenant_filter: bool
    seed: int
    measure_seconds: float
    hot_agents: Sequence[str]  # uuids of the agents with partial indexes
    buckets: Sequence[BucketInfo]
    setups: Sequence[StrategySetup]
    rows: Sequence[FilteredRow]
    notes: Sequence[str] = ()
    # Added with filters on any dataset (issue 13; defaults in older files)
    source: str = "agents"  # "agents" | "vectors"
    dataset: str = ""
    ef_values: Sequence[int] = ()  # the ef_search values swept (one: not swept)
    predicates: Sequence[PredicateInfo] = ()

    def __post_init__(self) -> None:
        _freeze(
            self, "bucket_edges", "hot_agents", "buckets", "setups", "rows", "notes",
            "ef_values", "predicates",
        )  # fmt: skip

    @property
    def swept(self) -> bool:
        return len(self.ef_values) > 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: field order and types as results.json has always held them."""
        data: dict[str, Any] = _plain(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilteredComparison:
        edges = data.get("bucket_edges")
        return cls(
            table=text(data, "table"),
            memories=int_or(data, "memories", 0),
            agents=int_or(data, "agents", 0),
            dim=int_or(data, "dim", 0),
            metric=text(data, "metric", "?"),
            k=int_or(data, "k", 0),
            ef_search=int_or(data, "ef_search", 0),
            max_scan_tuples=int_or(data, "max_scan_tuples", 0),
            bucket_edges=[
                float(e)
                for e in (edges if isinstance(edges, list) else [])
                if isinstance(e, (int, float)) and not isinstance(e, bool)
            ],
            queries_per_bucket=int_or(data, "queries_per_bucket", 0),
            tenant_filter=flag(data, "tenant_filter"),
            seed=int_or(data, "seed", 0),
            measure_seconds=float_or(data, "measure_seconds", 0.0),
            hot_agents=strings(data, "hot_agents"),
            buckets=[BucketInfo.from_dict(b) for b in objects(data, "buckets")],
            setups=[StrategySetup.from_dict(s) for s in objects(data, "setups")],
            rows=[FilteredRow.from_dict(r) for r in objects(data, "rows")],
            notes=strings(data, "notes"),
            source=text(data, "source", "agents"),
            dataset=text(data, "dataset"),
            ef_values=[int(v) for v in _numbers(data.get("ef_values"))],
            predicates=[PredicateInfo.from_dict(p) for p in objects(data, "predicates")],
        )

    def row(self, arm: str, bucket: str) -> FilteredRow | None:
        """The row of ``arm`` (a strategy, with its ef_search in a sweep) on ``bucket``."""
        for r in self.rows:
            if r.arm == arm and r.bucket == bucket:
                return r
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class FilteredResult:
    """What the study stores and reports: the comparison and each bucket's winner.

    ``run_name`` is the run's name (the figure's title); it is not stored with the
    comparison (results.json has it at the top)."""

    comparison: FilteredComparison
    winners: Mapping[str, str]  # bucket label -> strategy (results.agent.filtered_winners)
    run_name: str = ""
    recall_target: float = 0.9  # [filtered] recall_target (ranking.RECALL_TARGET by default)

    def __post_init__(self) -> None:
        object.__setattr__(self, "winners", dict(self.winners))


# --- JSON ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
