"""The [filtered] table: which strategies to compare, and how hard to measure them; on a
vector dataset also which predicates, on which attributes.

Vector data keys (the defaults come from the attributes the dataset has, resolved when
the data is loaded by :func:`resolve`):

``predicates``       ["label", "range", "overlap"]: equality on a label (int, text, bool),
                     a range on a number or time, ``&&`` on an array (text[], int[])
``attribute``        the label column (default: the first label attribute, one with
                     query labels first)
``range_attribute``  the number or time column (default: the first float/timestamp one,
                     else an int one other than the label)
``tags_attribute``   the array column (default: the first text[] or int[] one)
``hot_labels``       labels with a partial index (``partial_hot``)
``partitions``       labels with a LIST partition of their own (``partitioned``)

Both kinds also take ``explain_queries`` (EXPLAIN ANALYZE only the first n queries of each
strategy and bucket; default all): the plan check's cost on slow strategies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ...datasets.attributes import ARRAY_KINDS, LABEL_KINDS, RANGE_KINDS, Attribute
from ...errors import SpecError
from ...spec.model import INDEX_MAX_DIM
from ...spec.table import Table
from .predicates import FORMS, PREDICATES, Predicate, attribute_kinds

STRATEGIES = (
    "hnsw_plain",
    "hnsw_strict",
    "hnsw_relaxed",
    "ivfflat_iterative",
    "btree_exact",
    "partial_hot",
    "partitioned",
)
#: Shares of all memories that separate the selectivity buckets: < 0.1%, 0.1-1%, 1-5%, > 5%.
DEFAULT_BUCKET_EDGES = (0.001, 0.01, 0.05)
_KEYS = [
    "strategies",
    "k",
    "ef_search",
    "max_scan_tuples",
    "bucket_edges",
    "queries_per_bucket",
    "recall_target",
    "measure_seconds",
    "explain_queries",
]
#: keys of vector data only (agent data filters by agent, partitions by tenant)
VECTOR_KEYS = [
    "predicates",
    "attribute",
    "range_attribute",
    "tags_attribute",
    "hot_labels",
    "partitions",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FilteredSpec:
    strategies: tuple[str, ...]
    k: int = 10
    ef_search: int | tuple[int, ...] = 40  # a list: the HNSW strategies at each value
    max_scan_tuples: int = 20_000
    bucket_edges: tuple[float, ...] = DEFAULT_BUCKET_EDGES
    queries_per_bucket: int = 30
    recall_target: float = 0.9
    measure_seconds: float = 1.0
    explain_queries: int | None = None  # EXPLAIN (ANALYZE) the first n queries (None: all)
    # vector data (None: derived from the dataset's attributes)
    predicates: tuple[str, ...] | None = None
    attribute: str | None = None
    range_attribute: str | None = None
    tags_attribute: str | None = None
    hot_labels: int = 3
    partitions: int = 8

    @property
    def ef_values(self) -> tuple[int, ...]:
        return (self.ef_search,) if isinstance(self.ef_search, int) else self.ef_search


#: fields recorded in results.json only when set (absent from specs written before them)
ABSENT_MEANS: dict[str, object] = {
    "explain_queries": None,
    "predicates": None,
    "attribute": None,
    "range_attribute": None,
    "tags_attribute": None,
    "hot_labels": 3,
    "partitions": 8,
}


def parse(t: Table, kind: str = "agents") -> FilteredSpec:
    """Validate [filtered]; every error names the file, the table and the key."""
    t.only(_KEYS + VECTOR_KEYS)
    if kind != "vector":
        for key in VECTOR_KEYS:
            if key in t.data:
                t.fail(
                    key,
                    "applies to vector data only: agent data filters by agent_id and "
                    f"partitions by tenant_id. Allowed keys here: {', '.join(_KEYS)}.",
                )
    strategies = tuple(
        dict.fromkeys(t.str_list("strategies", default=list(STRATEGIES), allowed=STRATEGIES))
    )
    edges = t.data.get("bucket_edges", list(DEFAULT_BUCKET_EDGES))
    if (
        not isinstance(edges, list)
        or not edges
        or not all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and 0 < e < 1 for e in edges
        )
        or sorted(edges) != edges
    ):
        t.fail(
            "bucket_edges",
            f"= {edges!r} must be increasing fractions in (0, 1), e.g. "
            "[0.001, 0.01, 0.05] (share of all memories held by one agent)",
        )
    raw_ef = t.data.get("ef_search", 40)
    ef: int | tuple[int, ...] = (
        t.integer("ef_search", default=40, minimum=1, maximum=1000)
        if isinstance(raw_ef, int) and not isinstance(raw_ef, bool)
        else t.int_list("ef_search", default=[40], minimum=1, maximum=1000)
    )
    if isinstance(ef, tuple) and len(ef) == 1:
        ef = ef[0]
    predicates = (
        tuple(dict.fromkeys(t.str_list("predicates", default=[], allowed=PREDICATES)))
        if "predicates" in t.data
        else None
    )
    return FilteredSpec(
        strategies=strategies,
        k=t.integer("k", default=10, minimum=1, maximum=100),
        ef_search=ef,
        max_scan_tuples=t.integer(
            "max_scan_tuples", default=20_000, minimum=1, maximum=100_000_000
        ),
        bucket_edges=tuple(float(e) for e in edges),
        queries_per_bucket=t.integer("queries_per_bucket", default=30, minimum=1, maximum=10_000),
        recall_target=t.number("recall_target", default=0.9, minimum=0.0, maximum=1.0),
        measure_seconds=t.number("measure_seconds", default=1.0, minimum=0.1, maximum=600.0),
        explain_queries=(
            t.integer("explain_queries", minimum=1, maximum=10_000)
            if "explain_queries" in t.data
            else None
        ),
        predicates=predicates,
        attribute=_name(t, "attribute"),
        range_attribute=_name(t, "range_attribute"),
        tags_attribute=_name(t, "tags_attribute"),
        hot_labels=t.integer("hot_labels", default=3, minimum=0, maximum=100),
        partitions=t.integer("partitions", default=8, minimum=1, maximum=256),
    )


def _name(t: Table, key: str) -> str | None:
    return t.string(key) if key in t.data else None


#: each predicate's spec key naming its column
_ATTRIBUTE_KEY = {"label": "attribute", "range": "range_attribute", "overlap": "tags_attribute"}


def resolve(spec: FilteredSpec, attributes: Sequence[Attribute], where: str) -> list[Predicate]:
    """The predicates a vector dataset's run measures: those the spec names (or every one
    the attributes allow), each on its column. SpecError (exit 2) names the key, what the
    dataset has and what would do."""
    has = attribute_kinds(attributes)
    chosen: dict[str, Attribute | None] = {}
    for name, (_, kinds) in FORMS.items():
        key = _ATTRIBUTE_KEY[name]
        wanted = getattr(spec, key)
        if wanted is not None:
            found = next((a for a in attributes if a.name == wanted), None)
            if found is None:
                raise SpecError(
                    f"{where}: [filtered] {key} = {wanted!r}: the dataset has no such "
                    f"attribute; it has {has}"
                )
            if found.kind not in kinds:
                raise SpecError(
                    f"{where}: [filtered] {key} = {wanted!r} is of kind {found.kind}; the "
                    f"{name} predicate needs one of: {', '.join(kinds)} (the dataset has {has})"
                )
            chosen[name] = found
        else:
            chosen[name] = _default(name, attributes, chosen.get("label"))
    names = spec.predicates or tuple(n for n in PREDICATES if chosen[n] is not None)
    if not names:
        raise SpecError(
            f"{where}: [filtered] needs an attribute to filter on: a label (int, text, bool), "
            f"a number or time (int, float, timestamp) or an array (text[], int[]); the "
            f"dataset has {has}. Add attributes to [dataset] or remove [filtered]."
        )
    out: list[Predicate] = []
    for name in names:
        attr = chosen[name]
        if attr is None:
            raise SpecError(
                f"{where}: [filtered] predicates contains {name!r}, which needs an attribute "
                f"of kind {', '.join(FORMS[name][1])}; the dataset has {has}"
            )
        out.append(Predicate(name, FORMS[name][0], attr.name))
    return out


def _default(
    name: str, attributes: Sequence[Attribute], label: Attribute | None
) -> Attribute | None:
    if name == "label":
        labels = [a for a in attributes if a.kind in LABEL_KINDS]
        own = [a for a in labels if a.query_values is not None]
        return next(iter(own or labels), None)
    if name == "range":
        ranged = [a for a in attributes if a.kind in RANGE_KINDS and a is not label]
        ranged.sort(key=lambda a: a.kind == "int")  # float and time first
        return next(iter(ranged), None)
    return next((a for a in attributes if a.kind in ARRAY_KINDS), None)


def dim_problem(spec: FilteredSpec, dim: int, dim_from: str) -> str | None:
    """pgvector's index dimension limit for the strategies that build a vector index."""
    limit = INDEX_MAX_DIM["vector"]
    if dim <= limit:
        return None
    indexed = [s for s in spec.strategies if s != "btree_exact"]
    if not indexed:
        return None
    return (
        f"[filtered] strategies {', '.join(indexed)} build HNSW or IVFFlat indexes, "
        f"which pgvector limits to {limit:,} dimensions of type vector ({dim_from}); "
        'keep only "btree_exact" or use at most 2,000 dimensions'
    )
