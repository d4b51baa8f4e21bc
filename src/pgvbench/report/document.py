"""The report's document model: a flat list of blocks, written twice (Markdown, HTML).

Sections build blocks from typed records; the writers in markdown.py and html.py turn
them into text. Nothing here knows about results or studies.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str
    lead: str = ""  # bold lead-in, e.g. "Recommendation."
    style: str = ""  # HTML class: "recommendation" | "warning" | ""


@dataclasses.dataclass(frozen=True)
class KeyValues:
    items: list[tuple[str, str]]


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclasses.dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    flagged: list[bool] = dataclasses.field(default_factory=list)  # rows to highlight
    numeric: frozenset[int] = frozenset()  # right-aligned columns


@dataclasses.dataclass(frozen=True)
class Code:
    text: str


@dataclasses.dataclass(frozen=True)
class Image:
    src: str  # relative to the report directory
    alt: str


Block = Heading | Paragraph | KeyValues | Bullets | Table | Code | Image
