"""Write the document model as one self-contained HTML page (images inlined)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from .document import Block, Bullets, Code, Heading, Image, KeyValues, Paragraph, Table

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1280px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #eee; }
h3 { font-size: 1.05em; }
p.recommendation { background: #eef6ee; border-left: 4px solid #59a14f; padding: .7em 1em; }
p.warning { background: #fff4e5; border-left: 4px solid #f28e2b; padding: .7em 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .3em .55em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
tr.invalid td { background: #fdecea; color: #8a1f11; }
table.kv th { width: 11em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: .85em; }
"""


def to_html(blocks: Sequence[Block], title: str, base_dir: Path) -> str:
    """A single self-contained page; images are read from ``base_dir`` and inlined."""
    body = "\n".join(_html_block(b, base_dir) for b in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(block: Block, base_dir: Path) -> str:
    match block:
        case Heading(level, text):
            return f"<h{level}>{_esc(text)}</h{level}>"
        case Paragraph(text, lead, style):
            cls = f' class="{_esc(style)}"' if style else ""
            bold = f"<strong>{_esc(lead)}</strong>" if lead else ""
            return f"<p{cls}>{' '.join(part for part in (bold, _esc(text)) if part)}</p>"
        case KeyValues(items):
            rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items)
            return f'<table class="kv">{rows}</table>'
        case Bullets(items):
            return "<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in items) + "</ul>"
        case Table():
            return _html_table(block)
        case Code(text):
            return f"<pre>{_esc(text)}</pre>"
        case Image(src, alt):
            data = base64.b64encode((base_dir / src).read_bytes()).decode("ascii")
            return (
                f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(alt)}">'
                f"<figcaption>{_esc(alt)}</figcaption></figure>"
            )


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in table.header)
    body = []
    for i, cells in enumerate(table.rows):
        flagged = i < len(table.flagged) and table.flagged[i]
        tds = "".join(
            f'<td class="num">{_esc(c)}</td>' if j in table.numeric else f"<td>{_esc(c)}</td>"
            for j, c in enumerate(cells)
        )
        body.append(f'<tr class="invalid">{tds}</tr>' if flagged else f"<tr>{tds}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
