"""The words of the notes a drift or update-cost record carries (results.json keeps them as
text). The measurement modules pass the figures; the sentences live here, with no
database access."""

from __future__ import annotations

from collections.abc import Sequence

# --------------------------------------------------------------------------- drift


def wrong_opclass(index: str, opclass: str, wanted: str) -> str:
    return f"the HNSW index {index} uses {opclass}, not {wanted}: queries cannot use it"


def plan_skips_index_at_start(index: str, used: Sequence[str]) -> str:
    found = ", ".join(used) if used else "a sequential scan"
    return f"the k-NN plan uses {found}, not {index}, at the start"


def plan_skips_index_at_end(index: str) -> str:
    return f"at the end the k-NN plan no longer uses {index}"


def mirror_mismatches(mismatches: Sequence[tuple[float, int, int]]) -> str:
    """``mismatches``: (writer seconds, count(*), mirror rows) of each disagreement."""
    listed = [f"t={t:.1f}s: count(*) {db} vs mirror {mirror}" for t, db, mirror in mismatches]
    return "the mirror disagreed with count(*) (another session wrote to the table?): " + (
        "; ".join(listed[:5])
    )


def unknown_deletes(count: int) -> str:
    return f"{count} deleted ids were not in the mirror"


def unknown_returned(count: int) -> str:
    return f"queries returned {count} ids that are not live rows"


def writer_behind(done: int, what: str, requested: int) -> str:
    return (
        f"the writer fell behind (or the table ran down to k rows): {done} {what} of "
        f"{requested} requested"
    )


# --------------------------------------------------------------------------- update cost


def several_hnsw(count: int, index: str) -> str:
    return f"{count} HNSW indexes on the table; only {index} is dropped in the no_hnsw phase"


def shared_rows(rows: int, updates: int) -> str:
    return f"the table has {rows} rows, fewer than 2 x {updates}: the phases share rows"


def index_not_copied(definition: str) -> str:
    return f"index not copied (unparsed definition): {definition}"


def hot_count_mismatch(phase: str, same_page: int, hot_updates: int) -> str:
    return (
        f"{phase}: {same_page} updates stayed on their page but the statistics count "
        f"{hot_updates} HOT (another session updating the table?)"
    )


def column_indexed(column: str, blocking: Sequence[str]) -> str:
    return f"{column} is indexed by {', '.join(blocking)}: its updates cannot be HOT"


def no_tasks_table(table: str) -> str:
    return f"no {table} table: task updates not measured"


def tasks_table_empty() -> str:
    return "the tasks table is empty: task updates not measured"
