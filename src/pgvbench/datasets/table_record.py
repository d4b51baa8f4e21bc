"""The record of a table-source run (results.json: ``dataset.table_source``): what was read
from the user's table and how it was copied. No database access here: the report reads it.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableSourceInfo:
    """What a table-source run read and copied (results.json: dataset.table_source)."""

    table: str
    column: str
    id_column: str
    vector_type: str  # as declared: "vector" | "halfvec" (copied as vector)
    dim: int
    metric: str
    metric_from: str  # "spec" | "index <name> (<opclass>)"
    rows_in_source: int  # rows with a vector, in the snapshot
    null_vectors: int
    rows_copied: int
    sample: int | None
    seed: int
    queries_from: str  # "held-out rows" | "queries_table <name>" | "queries_file <path>"
    held_out: int
    snapshot_at: str
    copy_method: str  # "insert_select" | "copy"
    copy_method_from: str  # "spec" | "auto"
    copy_seconds: float
    checksum: str  # sum of hashtextextended over the copied rows' text (source == copy)
    attributes: tuple[dict[str, str], ...] = ()  # name, source_type, kind
    notes: tuple[str, ...] = ()
    method_comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["attributes"] = [dict(a) for a in self.attributes]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSourceInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["attributes"] = tuple(dict(a) for a in kept.get("attributes", ()))
        kept["notes"] = tuple(kept.get("notes", ()))
        return cls(**kept)
