"""Filtered targets for the tuner: the target's queries carry a ``[filtered]`` predicate.

``[tune] filter`` names a predicate of the filtered study (``"label"``, ``"range"``,
``"overlap"``), optionally with its column (``"range:price"``); without one the column is
the one ``[filtered]`` would choose. Every recall and load query gets its own filter value,
drawn as a real application's would be (the filtered study's drawing, reused):

* ``label``: the query's own label when the data has query labels, else a label drawn by
  frequency (common labels more often);
* ``range``: bounds keeping a moderate share of the rows (``RANGE_SHARE``: 1-10%);
* ``overlap``: one tag, drawn by frequency.

Values are drawn among the rows the tuner measures (``id < rows``), so every recall query
matches at least one row; a query's own label with no row there is replaced by a label
drawn by frequency (counted in ``replaced``). The ground truth is exact over the matching
rows (truth.exact_truth); recall is the filtered study's (truth.recall_fill: tie-aware, at
min(k, rows matching)). No database here; the condition is SQL text with ``$2`` (and
``$3``) for the value, cast so that every parameter can be sent as text.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from psycopg import sql

from ...datasets.base import Dataset
from ...datasets.groundtruth import GroundTruth
from ...errors import SpecError
from ...metrics import Metric
from ...recall_rule import DEFAULT_RULE, RecallRule
from ..filtered.predicates import (
    EQ,
    FORMS,
    OVERLAP,
    PREDICATES,
    RANGE,
    attribute_kinds,
    draw_labels,
    draw_ranges,
    label_counts,
    matches,
    sql_text,
    tag_counts,
    tag_rows,
)
from ..filtered.spec import STRATEGIES, FilteredSpec, resolve
from ..filtered.truth import FilteredTruth, exact_truth, recall_fill

#: the share of rows a drawn range keeps: low and high edge (the filtered study's bucket)
RANGE_SHARE = (0.01, 0.10)
#: the iterative scan modes each index kind has (pgvector 0.8: IVFFlat has no strict order)
ITERATIVE_MODES: dict[str, tuple[str, ...]] = {
    "hnsw": ("off", "relaxed_order", "strict_order"),
    "ivfflat": ("off", "relaxed_order"),
}
# seed streams: the recall queries' values apart from the load queries'
_RECALL_STREAM, _LOAD_STREAM = 0x7E1, 0x7E2


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class FilterTarget:
    """The target's queries carry a filter: each recall and load query has its own value.

    ``truth`` pads each query's ids with -1 (distances with inf) past its matching rows:
    score it with :func:`filtered_recall_per_query`, not the unfiltered recall.
    """

    predicate: str  # "label" | "range" | "overlap"
    attribute: str  # the column filtered on
    kind: str  # its attribute kind (int, text, timestamp, text[], ...)
    condition: str  # WHERE clause, $2 (and $3: a range's upper end) cast from text
    recall_params: list[tuple[str, ...]]  # the text parameters per recall query
    load_params: list[tuple[str, ...]]  # per load query (cycled like the load stream)
    truth: GroundTruth  # exact filtered top-k over rows id < rows
    selectivity: float  # mean share of the rows that match, over the recall queries
    matching: np.ndarray  # per recall query: how many rows match
    rows: int  # the rows filtered (id < rows)
    own_labels: bool  # label: the recall queries filter on their own label
    replaced: int  # recall queries whose own label has no row in ``rows``: drawn by frequency
    filtered: FilteredTruth  # the matching rows of each recall query (what recall needs)

    def summary(self) -> dict[str, Any]:
        """What the record keeps of the target's filter (plain values)."""
        share = self.matching / max(1, self.rows)
        return {
            "predicate": self.predicate,
            "attribute": self.attribute,
            "kind": self.kind,
            "condition": self.condition,
            "rows": self.rows,
            "selectivity": self.selectivity,
            "selectivity_min": float(share.min()) if share.size else None,
            "selectivity_max": float(share.max()) if share.size else None,
            "matching_min": int(self.matching.min()) if self.matching.size else None,
            "short_queries": int((self.matching < self.truth.k).sum()),
            "own_labels": self.own_labels,
            "replaced": self.replaced,
        }


def split_filter(text: str) -> tuple[str, str | None]:
    """``"range:price"`` -> ("range", "price"); ``"label"`` -> ("label", None)."""
    name, _, column = text.partition(":")
    return name.strip(), column.strip() or None


def filter_problem(spec_filter: str, dataset: Dataset, where: str | None = None) -> str | None:
    """Why ``dataset`` cannot carry ``[tune] filter`` (unknown predicate, no attribute of a
    kind it allows, a named column missing or of the wrong kind), naming what the data has;
    None when it can."""
    predicate, attribute = split_filter(spec_filter)
    try:
        _choose(predicate, attribute, dataset, where or "<spec>")
    except SpecError as exc:
        return str(exc)
    return None


def filter_target(
    dataset: Dataset,
    recall_queries: np.ndarray,
    load_queries: np.ndarray,
    *,
    k: int,
    metric: Metric,
    predicate: str,
    attribute: str | None,
    rows: int,
    seed: int,
    query_offset: int = 0,
    load_offset: int | None = None,
    where: str = "<spec>",
) -> FilterTarget:
    """Filter values for every recall and load query, and the exact filtered truth.

    ``recall_queries`` are ``dataset.queries[query_offset:]`` (as split_queries lays them
    out), the load queries follow them (``load_offset``; None: right after the recall
    queries when the dataset has enough, else from 0 as split_queries reuses them): that
    is how a query's own label is found. ``attribute`` None: the column ``[filtered]``
    would choose. SpecError names ``[tune] filter`` and the dataset's attributes when no
    column fits.
    """
    if not 1 <= rows <= dataset.n:
        raise ValueError(f"rows must lie in [1, {dataset.n}], got {rows}")
    attr_name = _choose(predicate, attribute, dataset, where)
    attr = dataset.attribute(attr_name)
    assert attr is not None
    form = FORMS[predicate][0]
    values = attr.values[:rows]
    n_recall, n_load = int(recall_queries.shape[0]), int(load_queries.shape[0])
    own: list[np.ndarray | None] = [None, None]
    if form == EQ and attr.query_values is not None:
        if load_offset is None:
            after = query_offset + n_recall
            load_offset = after if after + n_load <= dataset.n_queries else 0
        own = [
            _own_values(dataset, attr.query_values, recall_queries, query_offset, "recall"),
            _own_values(dataset, attr.query_values, load_queries, load_offset, "load"),
        ]
    drawer = _Values(form, values, seed, where)
    recall_values, replaced = drawer.draw(n_recall, own[0], _RECALL_STREAM)
    load_values, _ = drawer.draw(n_load, own[1], _LOAD_STREAM)
    started = time.perf_counter()
    truth = drawer.truth(dataset.base[:rows], metric, recall_values, recall_queries, k)
    seconds = time.perf_counter() - started
    matching = truth.matching
    assert not n_recall or int(matching.min()) > 0, "every drawn value matches a row"
    return FilterTarget(
        predicate=predicate,
        attribute=attr_name,
        kind=attr.kind,
        condition=condition_sql(form, attr_name, attr.sql_type),
        recall_params=[_params(form, attr.kind, v) for v in recall_values],
        load_params=[_params(form, attr.kind, v) for v in load_values],
        truth=_padded(truth, k, seconds),
        selectivity=float(np.mean(matching / rows)) if n_recall else 0.0,
        matching=matching,
        rows=rows,
        own_labels=own[0] is not None,
        replaced=replaced,
        filtered=truth,
    )


def condition_sql(form: str, column: str, sql_type: str) -> str:
    """The WHERE clause of a predicate form, its value ``$2`` (a range: ``$2``..``$3``)
    cast to the column's type, e.g. ``"label" = $2::bigint``."""
    col = sql.Identifier(column).as_string()
    if form == EQ:
        return f"{col} = $2::{sql_type}"
    if form == RANGE:
        return f"{col} BETWEEN $2::{sql_type} AND $3::{sql_type}"
    if form == OVERLAP:
        return f"{col} && $2::{sql_type}"
    raise ValueError(f"unknown predicate form {form!r}")


def filtered_recall_per_query(
    returned: Sequence[Sequence[int]],
    target: FilterTarget,
    base: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: Metric,
    rule: RecallRule = DEFAULT_RULE,
) -> np.ndarray:
    """Recall of each recall query against its filtered truth (float64, one per query).

    ``returned[i]`` are the ids query i returned (the row indexes; anything outside its
    matching rows is a miss). Tie-aware as the unfiltered recall; a query with fewer than
    k matching rows counts over its matching rows (the filtered study's recall_fill).
    ``base``: the dataset's rows (at least the first ``target.rows``).
    """
    recall, _ = recall_fill(returned, target.filtered, base, metric, queries, k, rule)
    return recall


def iterative_scan_modes(kind: str, modes: Sequence[str]) -> tuple[str, ...]:
    """The ``[tune] iterative_scan`` modes index ``kind`` has, in the spec's order."""
    allowed = ITERATIVE_MODES.get(kind, ())
    return tuple(m for m in modes if m in allowed)


def iterative_scan_settings(kind: str, mode: str) -> dict[str, str]:
    """The session setting of an iterative scan mode, e.g. ``{"hnsw.iterative_scan":
    "relaxed_order"}``; ValueError for a mode the kind lacks (IVFFlat: strict_order)."""
    allowed = ITERATIVE_MODES.get(kind)
    if allowed is None:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {tuple(ITERATIVE_MODES)}")
    if mode not in allowed:
        raise ValueError(f"{kind} has no iterative scan {mode!r}; it has {', '.join(allowed)}")
    return {f"{kind}.iterative_scan": mode}


# --------------------------------------------------------------------------- internals


def _choose(predicate: str, attribute: str | None, dataset: Dataset, where: str) -> str:
    """The column the predicate filters on (``[filtered]``'s choice when None)."""
    has = attribute_kinds(dataset.attributes)
    named = f"{predicate}:{attribute}" if attribute else predicate
    if predicate not in FORMS:
        raise SpecError(
            f"{where}: [tune] filter = {named!r}: unknown predicate; use one of "
            f'{", ".join(PREDICATES)}, optionally with its column ("range:price")'
        )
    kinds = ", ".join(FORMS[predicate][1])
    spec = FilteredSpec(
        strategies=STRATEGIES,
        predicates=(predicate,),
        attribute=attribute if predicate == "label" else None,
        range_attribute=attribute if predicate == "range" else None,
        tags_attribute=attribute if predicate == "overlap" else None,
    )
    try:
        (chosen,) = resolve(spec, dataset.attributes, where)
    except SpecError:
        if attribute is not None and dataset.attribute(attribute) is None:
            why = f"there is no column {attribute!r}"
        elif attribute is not None:
            why = f"{attribute!r} is not of a kind it filters ({kinds})"
        else:
            why = f"it needs an attribute of kind {kinds}"
        raise SpecError(
            f"{where}: [tune] filter = {named!r}: {why}; the dataset has {has}. Add such an "
            "attribute to [dataset] ([[dataset.labels]] for synthetic data), name another "
            "column, or remove filter"
        ) from None
    return chosen.attribute


def _own_values(
    dataset: Dataset, query_values: np.ndarray, queries: np.ndarray, offset: int, what: str
) -> np.ndarray:
    """The own labels of ``queries``, which must be ``dataset.queries[offset:]``."""
    stop = offset + int(queries.shape[0])
    if (
        offset < 0
        or stop > query_values.shape[0]
        or not np.array_equal(dataset.queries[offset:stop], queries)
    ):
        raise ValueError(
            f"the {what} queries are not the dataset's queries {offset}..{stop}: their own "
            "labels cannot be found"
        )
    return query_values[offset:stop]


class _Values:
    """Draws one predicate's values over the first rows (seeded per stream)."""

    def __init__(self, form: str, values: np.ndarray, seed: int, where: str) -> None:
        self.form, self.values, self.seed, self.where = form, values, seed, where
        self.rows: dict[Hashable, np.ndarray] = {}  # repr(value) -> its rows, ascending
        self.by_repr: dict[Hashable, Any] = {}
        if form == EQ:
            self.labels, self.counts = label_counts(values)
        elif form == OVERLAP:
            self.labels, self.counts = tag_counts(values)
            self.rows = {repr((t,)): r for t, r in tag_rows(values).items()}

    def draw(self, n: int, own: np.ndarray | None, stream: int) -> tuple[list[Any], int]:
        """``n`` values (a query's own label where it has rows), and how many own labels
        were replaced by a draw."""
        rng = np.random.default_rng([self.seed, stream])
        if n == 0:
            return [], 0
        if self.form == RANGE:
            return self._ranges(n, rng), 0
        everything = np.arange(len(self.labels))
        if own is None:
            picked = draw_labels(self.labels, self.counts, everything, n, rng, by_frequency=True)
            return (picked if self.form == EQ else [(t,) for t in picked]), 0
        present = set(self.labels)
        out = [_scalar(v) for v in own]
        missing = [i for i, v in enumerate(out) if v not in present]
        fill = draw_labels(self.labels, self.counts, everything, len(missing), rng,
                           by_frequency=True)  # fmt: skip
        for i, v in zip(missing, fill, strict=True):
            out[i] = v
        return out, len(missing)

    def _ranges(self, n: int, rng: np.random.Generator) -> list[Any]:
        """Ranges keeping RANGE_SHARE of the rows; the closest non-empty share band when
        the column cannot (too few rows with a value, too few distinct values)."""
        drawn = draw_ranges(self.values, RANGE_SHARE, n, rng)  # bands: below, within, above
        for band in (1, 0, 2):
            if drawn[band]:
                return list(drawn[band])
        raise SpecError(
            f"{self.where}: [tune] filter: the range column has no value in the "
            f"{self.values.size:,} rows measured"
        )

    def rows_of(self, f: Hashable) -> np.ndarray:
        if f not in self.rows:
            self.rows[f] = np.flatnonzero(matches(self.values, self.form, self.by_repr[f]))
        return self.rows[f]

    def truth(
        self, base: np.ndarray, metric: Metric, values: list[Any], queries: np.ndarray, k: int
    ) -> FilteredTruth:
        self.by_repr = {repr(v): v for v in values}
        filters = [repr(v) for v in values]
        return exact_truth(base, metric, filters, self.rows_of, queries, k)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _params(form: str, kind: str, value: Any) -> tuple[str, ...]:
    """A value as the condition's text parameters ($2, and $3 for a range)."""
    if form == RANGE:
        low, high = value
        return (sql_text(kind, low), sql_text(kind, high))
    return (sql_text(kind, value),)


def _padded(truth: FilteredTruth, k: int, seconds: float) -> GroundTruth:
    """The filtered truth as one (nq, k) table: ids -1 and distances inf past the rows a
    query matches."""
    nq = len(truth.ids)
    ids = np.full((nq, k), -1, dtype=np.int64)
    distances = np.full((nq, k), np.inf, dtype=np.float32)
    for i, (got, dist) in enumerate(zip(truth.ids, truth.distances, strict=True)):
        ids[i, : got.size] = got
        distances[i, : dist.size] = dist
    return GroundTruth(
        ids=ids,
        distances=distances,
        method="exact over each query's matching rows",
        seconds=seconds,
        cached=False,
    )
