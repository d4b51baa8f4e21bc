"""``plan.md`` and ``plan.html`` beside the report: the capacity section on its own
(``pgvbench plan``'s answer), written from the record alone, whole or not at all."""

from __future__ import annotations

from pathlib import Path

from ..._atomic import write_bytes_atomic
from ...report.document import Block, Bullets, Heading, Paragraph
from ...report.html import to_html
from ...report.markdown import to_markdown
from ...results import Results
from ..tune.words import secs_text
from .records import CapacityRecord
from .report import report_blocks, validity

MD_NAME = "plan.md"
HTML_NAME = "plan.html"


def write_plan(record: CapacityRecord, results: Results, out_dir: Path) -> list[Path]:
    """plan.md and plan.html: the capacity section on its own, beside the report."""
    from .plots import draw_figures  # matplotlib: only when drawing

    out_dir.mkdir(parents=True, exist_ok=True)
    images = draw_figures(record, out_dir)
    title = f"pgvbench plan: {results.run_name}"
    blocks: list[Block] = [
        Heading(1, title),
        Paragraph(
            f"Started {results.started_at}; the sweep took {secs_text(record.elapsed_s)}. "
            "The whole run's report is report.md / report.html."
        ),
        *report_blocks(record, images, results),
    ]
    lines = validity(record)
    if lines:
        blocks += [Heading(2, "Validity"), Bullets(lines)]
    paths = []
    for name, text in (
        (MD_NAME, to_markdown(blocks)),
        (HTML_NAME, to_html(blocks, title, out_dir)),
    ):
        write_bytes_atomic(out_dir / name, text.encode("utf-8"))
        paths.append(out_dir / name)
    return paths + [out_dir / image.src for image in images]
