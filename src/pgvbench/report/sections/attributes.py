"""The dataset's attribute columns (labels, dates, tags) in the report's dataset section."""

from __future__ import annotations

from ...datasets.attribute_values import AttributeInfo
from ...results import DatasetInfo
from ..document import Block, Heading, Paragraph, Table
from ..fmt import DASH


def attribute_blocks(dataset: DatasetInfo) -> list[Block]:
    """One short table of the loaded attributes, and the source's per-row data not loaded."""
    records = [AttributeInfo.from_dict(d) for d in dataset.attributes or []]
    unloaded = dataset.attributes_unloaded or []
    if not records and not unloaded:
        return []
    blocks: list[Block] = [Heading(3, "Attributes")]
    if records:
        blocks.append(
            Table(
                ["Column", "Type", "From", "Distinct", "NULLs", "Query values"],
                [
                    [
                        r.name,
                        r.sql_type,
                        r.origin or DASH,
                        DASH if r.distinct is None else f"{r.distinct:,}",
                        f"{r.nulls:,}",
                        "yes" if r.query_values else "no",
                    ]
                    for r in records
                ],
                numeric=frozenset({3, 4}),
            )
        )
    else:
        blocks.append(Paragraph("No attribute columns were loaded."))
    if unloaded:
        blocks.append(
            Paragraph(
                f"Not loaded (per-row data the source also has): {', '.join(unloaded)}. "
                "Name them under [dataset] attributes to load them as columns."
            )
        )
    return blocks
