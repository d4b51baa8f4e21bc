"""The wording of the notes a comparison records (results.json keeps them as text).

Measurement modules call these with the figures they measured and never spell a sentence
themselves; the report and advice read the stored text back. Changing a sentence here
changes what new results files hold, so keep them stable.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- scopes: whose queries a row measured --------------------------------------------------

ALL_AGENTS = "all agents of the bucket"
HOT_ONLY = "hot agents only"
ALL_FILTERS = "all filters of the bucket"
HOT_LABELS_ONLY = "hot labels only"


def hot_scope(agents: int, agent_data: bool = True) -> str:
    return f"{HOT_ONLY if agent_data else HOT_LABELS_ONLY} ({agents})"


def scope(hot_only: bool, agent_data: bool) -> str:
    if hot_only:
        return HOT_ONLY if agent_data else HOT_LABELS_ONLY
    return ALL_AGENTS if agent_data else ALL_FILTERS


# --- the comparison ------------------------------------------------------------------------


def agents_without_memories(n: int) -> str:
    return f"{n} agents without memories are not queried"


def empty_bucket(label: str, noun: str = "agent") -> str:
    return f"bucket {label} has no {noun}: not measured"


TENANT_MISMATCH = "some memories carry another tenant than their agent's"


def ground_truth(seconds: float) -> str:
    return f"filtered ground truth: exact, client-side, {seconds:.2f} s"


def work_copy(schema: str, work: str, source: str, seconds: float) -> str:
    return (
        f"strategies run on {schema}.{work}, a copy of {source} without its "
        f"indexes ({seconds:.2f} s to copy), dropped at the end"
    )


COMMON_SETTINGS = (
    "all strategies: plan_cache_mode = force_custom_plan (a partial index only matches "
    "a bound agent id; what EXPLAIN shows is what runs) and enable_seqscan = off (the "
    "planner otherwise picks a sequential scan + sort for small agents, which is none "
    "of the strategies)"
)


# --- strategies ----------------------------------------------------------------------------

HNSW_PLAIN = (
    "at most ef_search candidates, filtered afterwards: selective filters return fewer than k rows"
)
HNSW_STRICT = (
    "strict_order skips a candidate nearer than the last one the index returned (even if "
    "the filter then dropped that one), so later batches lose rows"
)
HNSW_RELAXED = "relaxed_order, re-sorted by exact distance in an outer query (pgvector's advice)"
BTREE_EXACT = (
    "ORDER BY (distance) + 0: no vector index can serve it, so the B-tree selects "
    "the agent's rows and they are sorted exactly"
)
GIN_EXACT = (
    "ORDER BY (distance) + 0: no vector index can serve it, so a GIN index selects "
    "the rows whose array overlaps the query's and they are sorted exactly"
)


def exact(gin: bool) -> str:
    return GIN_EXACT if gin else BTREE_EXACT


def equality_only(strategy: str, predicate: str) -> str:
    what = "a partial index" if strategy == "partial_hot" else "a partition"
    return (
        f"not applicable: {strategy} gives {what} to each of the commonest labels, which "
        f"only an equality filter selects; the {predicate} predicate is not one"
    )


NOT_APPLICABLE = "not applicable"


def ivfflat(lists: int, probes: int) -> str:
    return (
        f"lists {lists}, probes {probes}, relaxed_order (the only iterative mode of "
        "IVFFlat), re-sorted by exact distance in an outer query"
    )


def partial_hot(indexes: int, agents: bool = True) -> str:
    if not agents:
        return (
            f"partial HNSW indexes for the {indexes} commonest labels; only their queries "
            "are measured (other labels would take the plain path)"
        )
    return (
        f"partial HNSW indexes for the {indexes} agents with most memories; only "
        "their queries are measured (other agents would take the plain path)"
    )


def partitioned(partitions: int, column: str = "tenant_id") -> str:
    if column != "tenant_id":
        return (
            f"{partitions} LIST partitions by {column} for its commonest labels + a DEFAULT "
            "partition for the rest, one HNSW index each; relaxed_order, re-sorted outside"
        )
    return (
        f"{partitions} LIST partitions by tenant_id (+ DEFAULT), one HNSW index "
        "each; tenant and agent filter, relaxed_order, re-sorted outside"
    )


def setup_failed(message: str) -> str:
    return f"setup failed: {message}"


# --- rows ----------------------------------------------------------------------------------

NO_HOT_AGENT = "no hot agent in this bucket"
NO_AGENT = "no agent in this bucket"
NO_HOT_LABEL = "no hot label in this bucket"
NO_QUERY = "no query in this bucket"
PLAIN_UNDER_FILL = (
    "iterative scan off: the index returns ef_search candidates "
    "and the filter drops the other agents' rows"
)
PLAIN_UNDER_FILL_ROWS = (
    "iterative scan off: the index returns ef_search candidates "
    "and the filter drops the rows it does not keep"
)


def failed(message: str) -> str:
    return f"failed: {message}"


def not_memories(wrong: int, agents: bool = True) -> str:
    if not agents:
        return f"{wrong} returned rows do not match the query's filter"
    return f"{wrong} returned rows are not memories of the queried agent"


def under_fill(short: int, queries: int) -> str:
    return (
        f"under-fill: {short} of {queries} queries returned fewer than min(k, rows matching) rows"
    )


def plan_check_failed(problems: int, explained: int, first: str) -> str:
    return (
        f"plan check failed on {problems} of {explained} EXPLAINed queries: "
        f"{first}; timings are not of the intended path"
    )


def plan_uses(used: Iterable[str], wanted: Iterable[str]) -> str:
    found = ", ".join(sorted(used)) or "no index"
    return f"the plan uses {found} instead of {', '.join(sorted(wanted))}"


def plan_scans(scanned: Iterable[str], wanted: Iterable[str]) -> str:
    return f"the plan scans {', '.join(sorted(scanned))}, not only {', '.join(wanted)}"


def timed_failures(errors: int, first: str) -> str:
    return f"{errors} timed queries failed: {first}"


def aborted(reason: str) -> str:
    return f"timed run aborted: {reason}"


#: Words of the notes above that make a row invalid (the advice names the first such note).
INVALIDATING = ("plan check", "failed", "not memories", "do not match", "aborted")
