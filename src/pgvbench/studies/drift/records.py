"""What the drift study measures: recall checkpoints while memories churn, and the cost of
single-row updates next to an HNSW index.

The JSON form (``to_dict``) is the one results.json has always held under
``agent.drift`` / ``agent.update_cost``: every field, in declaration order. Lists and dicts
(not tuples) so the records also rebuild with ``dataclasses.asdict`` and the results
file's own reader. ``from_dict`` is lenient, as the report always was: a field an older
(or hand-edited) file lacks takes a stand-in value, and the first such problem is kept so
the report can say why it does not draw the figure.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from ...engine.histogram import LatencyHistogram
from ...results import Latency

T = TypeVar("T")


# --------------------------------------------------------------------------- drift


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftCheckpoint:
    """One measurement while the writer runs (t = writer seconds since the start)."""

    t: float
    label: str  # "start" | "interval" | "before_vacuum" | "after_vacuum" | "end"
    live_rows: int  # the client mirror's live rows: what ground truth is computed over
    db_rows: int  # SELECT count(*) at the same moment (must equal live_rows)
    dead_tuples: int  # pg_stat_user_tables.n_dead_tup
    n_live_tup: int  # pg_stat_user_tables.n_live_tup (an estimate kept by the stats system)
    n_tup_upd: int  # cumulative counters of the table
    n_tup_hot_upd: int
    recall_mean: float  # tie-aware recall@k against exact top-k over the live rows
    recall_p5: float
    recall_min: float
    recall_frozen_gt: float | None  # the same results scored against the start's ground truth
    returned_mean: float  # rows a query returned (< k: dead tuples used up ef_search, #244)
    gt_new_share: float  # share of the true top-k that was inserted during the run
    returned_new_share: float  # share of returned rows that were inserted during the run
    inserted: int  # cumulative since the start
    deleted: int
    updated: int  # memory rows updated (importance) since the start
    churn: float  # (inserted + deleted) / rows at the start
    query_p50_ms: float
    query_p99_ms: float
    vacuum_count: int  # manual + auto VACUUMs of the table so far (cumulative counters)
    autovacuum_count: int


@dataclasses.dataclass(frozen=True)
class HotStats:
    """Updates of a table over a measurement and how many were HOT (heap-only)."""

    updates: int
    hot_updates: int
    hot_ratio: float | None  # None when there were no updates


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftResult:
    table: str  # schema.table of the memories
    index: str | None  # the HNSW index the queries used
    k: int
    metric: str
    ef_search: int
    duration_s: float
    interval_s: float
    insert_rate: float  # requested rows/s
    expire_rate: float
    update_rate: float
    achieved_insert_rate: float  # rows/s of writer time actually inserted
    achieved_expire_rate: float
    queries: int
    initial_rows: int
    autovacuum: bool  # False: autovacuum was off on the table during the run
    vacuum_at_s: float | None
    vacuum_seconds: float | None
    checkpoints: list[DriftCheckpoint]
    hot: dict[str, HotStats]  # "memories" / "tasks": updates during the run
    query_ms: Latency | None = None  # the k-NN queries of every checkpoint (absent in 0.1)
    write_batch_ms: Latency | None  # latency of one writer transaction (insert or delete batch)
    wall_seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _json_object(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        return read_record(cls, data, [])


# --------------------------------------------------------------------------- update cost


@dataclasses.dataclass(frozen=True, kw_only=True)
class UpdatePhase:
    """N single-row updates by primary key in one configuration."""

    name: str  # "hnsw" | "no_hnsw" | "hnsw_fillfactor<N>" | "tasks_status"
    table: str
    column: str
    hnsw_index: bool  # an HNSW index was on the table during the phase
    fillfactor: int
    updates: int  # statements run
    rows_updated: int  # rows they changed (should equal updates)
    latency_ms: Latency | None
    histogram: str | None  # HdrHistogram (ns), base64
    counted_updates: int  # n_tup_upd delta
    hot_updates: int  # n_tup_hot_upd delta
    hot_ratio: float | None
    same_page: int  # updates whose new version stayed on the row's page (= HOT if unblocked)
    same_page_latency_ms: Latency | None
    moved_latency_ms: Latency | None  # new version on another page: non-HOT, indexes written
    seconds: float
    blocking_indexes: list[str]  # indexes on the updated columns: HOT only if unchanged


@dataclasses.dataclass(frozen=True, kw_only=True)
class UpdateCostResult:
    table: str  # schema.table of the memories
    column: str
    rows: int
    avg_row_bytes: float  # heap bytes per row: how much free space a HOT update needs
    index: str
    index_def: str
    phases: list[UpdatePhase]
    p50_ratio: float | None  # p50 with HNSW / p50 without
    p99_ratio: float | None
    moved_p50_ratio: float | None  # the same for non-HOT updates only (pgvector #875)
    index_rebuild_seconds: float | None
    index_restored: bool
    notes: list[str] = dataclasses.field(default_factory=list)

    def phase(self, name: str) -> UpdatePhase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return _json_object(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpdateCostResult:
        return read_record(cls, data, [])


# --------------------------------------------------------------------------- the study's record


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftStudyResult:
    """Both parts of the study; either may be absent in a file read back (a run that
    stopped between them, or an older file)."""

    update_cost: UpdateCostResult | None
    drift: DriftResult | None
    # Why the drift record did not read back whole (a field missing or of the wrong type):
    # the tables still show what is there, the figure is not drawn. Never stored.
    drift_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The two JSON forms, as results.json's agent section keeps them."""
        return {
            "update_cost": None if self.update_cost is None else self.update_cost.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftStudyResult:
        cost, drift = data.get("update_cost"), data.get("drift")
        problems: list[str] = []
        return cls(
            update_cost=UpdateCostResult.from_dict(cost) if isinstance(cost, Mapping) else None,
            drift=read_record(DriftResult, drift, problems) if isinstance(drift, Mapping) else None,
            drift_problem=problems[0] if problems else None,
        )


def latency_of(hist: LatencyHistogram) -> Latency | None:
    """The histogram's percentiles in ms, rounded as results.json keeps them."""
    summary = hist.summary()
    if summary is None:
        return None
    return Latency(**{k: round(v, 4) for k, v in dataclasses.asdict(summary).items()})


# --------------------------------------------------------------------------- JSON


def _json_object(record: Any) -> dict[str, Any]:
    return {f.name: _json(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_object(value)
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return value.item()
    return value


def read_record(cls: type[T], data: Mapping[str, Any], problems: list[str]) -> T:
    """``cls`` from its JSON form. A missing field without a default, or a value of the
    wrong type, takes a stand-in (NaN, 0, "", empty) and is noted in ``problems`` in the
    words the results reader uses."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint = hints[field.name]
        if field.name not in data:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                problems.append(f"'missing field {cls.__name__}.{field.name}'")
                kwargs[field.name] = _stand_in(hint)
            continue
        kwargs[field.name] = _read(hint, data[field.name], problems, f"{cls.__name__}.{field.name}")
    return cls(**kwargs)


def _read(hint: Any, value: Any, problems: list[str], where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _read(inner, value, problems, where)
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where} = {_kind(value)} where a list belongs")
            return []
        items = [_read(args[0], v, problems, where) for v in value]
        return [v for v in items if v is not _SKIP]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where} = {_kind(value)} where an object belongs")
            return {}
        entries = {str(k): _read(args[1], v, problems, where) for k, v in value.items()}
        return {k: v for k, v in entries.items() if v is not _SKIP}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            problems.append(f"{hint.__name__} must be an object, not {_kind(value)}")
            return _SKIP
        return read_record(hint, value, problems)
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where} = {value!r} is not a number")
            return _stand_in(hint)
        if not math.isfinite(value):
            problems.append(f"{where} = {value} is not a finite number")
        return value
    if hint is str and not isinstance(value, str):
        problems.append(f"{where} = {value!r} is not a string")
        return ""
    if hint is bool and not isinstance(value, bool):
        problems.append(f"{where} = {value!r} is not true or false")
        return True
    return value


_SKIP = object()  # an item of a list or dict that is not an object: left out, as the report did


def _stand_in(hint: Any) -> Any:
    """What a missing value reads as: nothing for optionals and containers, NaN for a
    measured float (the report prints a dash), 0 for a count, "" for a name; True for a
    flag, whose False is the one the report warns about."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return None
    if origin is list:
        return []
    if origin is dict:
        return {}
    if hint is float:
        return math.nan
    if hint is int:
        return 0
    if hint is bool:
        return True
    return ""


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")
