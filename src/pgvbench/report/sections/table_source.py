"""source = "table": what was read from the user's table and how it was copied, in the
report's dataset section (from ``DatasetInfo.table_source``)."""

from __future__ import annotations

from ...datasets.table_record import TableSourceInfo
from ...results import DatasetInfo
from ..document import Block, Bullets, Heading, KeyValues
from ..fmt import DASH, format_sig

_METHODS = {
    "insert_select": "INSERT ... SELECT in the snapshot's transaction",
    "copy": "binary COPY from the snapshot's session into a second session",
}


def table_source_blocks(dataset: DatasetInfo) -> list[Block]:
    """The source table, its snapshot, the copy and its checksum; nothing for other sources."""
    if not dataset.table_source:
        return []
    r = TableSourceInfo.from_dict(dataset.table_source)
    column = f"{r.column} ({r.vector_type}({r.dim})" + (
        ", copied as vector)" if r.vector_type != "vector" else ")"
    )
    rows = f"{r.rows_in_source:,} with a vector" + (
        f" ({r.null_vectors:,} NULL, not copied)" if r.null_vectors else ""
    )
    copied = f"{r.rows_copied:,}" + (
        f" (a sample; seed {r.seed})" if r.sample else f" (all; ids in seed {r.seed}'s order)"
    )
    queries = (
        f"{r.held_out:,} held-out rows of the table, not in the copy (seed {r.seed})"
        if r.held_out
        else r.queries_from
    )
    rate = f", {r.rows_copied / r.copy_seconds:,.0f} rows/s" if r.copy_seconds > 0 else ""
    chosen = (
        "chosen by default (the faster, bench/table_copy.py)"
        if r.copy_method_from == "auto"
        else "set in the spec"
    )
    seconds = format_sig(r.copy_seconds)
    method = f"{_METHODS.get(r.copy_method, r.copy_method)}, {seconds} s{rate}; {chosen}"
    blocks: list[Block] = [
        Heading(3, "Source table"),
        KeyValues(
            [
                ("Table", f"{r.table} (read only, one REPEATABLE READ snapshot)"),
                ("Vector column", column),
                ("Id column", r.id_column),
                ("Snapshot", r.snapshot_at or DASH),
                ("Rows in the table", rows),
                ("Rows copied", copied),
                ("Queries", queries),
                ("Metric", f"{r.metric}, from {r.metric_from}"),
                ("Copy", method),
                ("Checksum", f"{r.checksum} (the selected rows and the copy agree)"),
            ]
        ),
    ]
    if r.notes:
        blocks.append(Bullets(list(r.notes)))
    return blocks
