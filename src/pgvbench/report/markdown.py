"""Write the document model as GitHub-flavoured Markdown."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .document import Block, Bullets, Code, Heading, Image, KeyValues, Paragraph, Table

# CommonMark lets any ASCII punctuation be backslash-escaped; escape what could
# start markup. "_" only at word edges: intraword underscores (ef_search) are
# literal in GitHub Markdown and escaping them would clutter the source.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|&#!])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def md_escape(text: str) -> str:
    escaped = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return " ".join(escaped.splitlines())  # a newline would break a table row or paragraph


def to_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join(_md_block(b) for b in blocks) + "\n"


def _md_block(block: Block) -> str:
    match block:
        case Heading(level, text):
            return f"{'#' * level} {md_escape(text)}"
        case Paragraph(text, lead, _style):
            bold = f"**{md_escape(lead)}**" if lead else ""
            return " ".join(part for part in (bold, md_escape(text)) if part)
        case KeyValues(items):
            return "\n".join(f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in items)
        case Bullets(items):
            return "\n".join(f"- {md_escape(item)}" for item in items)
        case Table():
            return _md_table(block)
        case Code(text):
            fence = "`" * max(3, _longest_backtick_run(text) + 1)
            return f"{fence}\n{text}\n{fence}"
        case Image(src, alt):
            return f"![{md_escape(alt)}]({src})"


def _md_table(table: Table) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(md_escape(c) for c in cells) + " |"

    rule = ["---:" if i in table.numeric else "---" for i in range(len(table.header))]
    lines = [row(table.header), "| " + " | ".join(rule) + " |"]
    lines += [row(r) for r in table.rows]
    return "\n".join(lines)


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)
