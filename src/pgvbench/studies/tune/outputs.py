"""The files ``pgvbench tune`` leaves beside the report: ``tune.md`` and a self-contained
``tune.html`` (the tuning section on its own, with the house renderers), ``apply.sql``,
``postgresql.conf`` and the figures. Every file is written whole or not at all."""

from __future__ import annotations

from pathlib import Path

from ..._atomic import write_bytes_atomic
from ...report.document import Block, Bullets, Heading, Paragraph
from ...report.html import to_html
from ...report.markdown import to_markdown
from ...results import Results
from .apply import apply_sql, postgresql_conf
from .records import TuneRecord
from .report import report_blocks, validity
from .words import secs_text

MD_NAME = "tune.md"
HTML_NAME = "tune.html"
SQL_NAME = "apply.sql"
CONF_NAME = "postgresql.conf"


def write_tune_outputs(record: TuneRecord, results: Results, out_dir: Path) -> list[Path]:
    """Write the four files and the figures into ``out_dir``; return their paths."""
    from .plots import draw_figures  # matplotlib: only when drawing

    out_dir.mkdir(parents=True, exist_ok=True)
    images = draw_figures(record, out_dir)
    title = f"pgvbench tune: {results.run_name}"
    blocks: list[Block] = [
        Heading(1, title),
        Paragraph(
            f"Started {results.started_at}; the session took {secs_text(record.elapsed_s)}. "
            f"The whole run's report is report.md / report.html."
        ),
        *report_blocks(record, images, results),
    ]
    lines = validity(record)
    if lines:
        blocks += [Heading(2, "Validity"), Bullets(lines)]
    files = {
        MD_NAME: to_markdown(blocks),
        HTML_NAME: to_html(blocks, title, out_dir),
        SQL_NAME: _apply(record, results),
        CONF_NAME: postgresql_conf(record, ram_bytes=_ram(results, record)),
    }
    paths = []
    for name, text in files.items():
        write_bytes_atomic(out_dir / name, text.encode("utf-8"))
        paths.append(out_dir / name)
    return paths + [out_dir / image.src for image in images]


def _apply(record: TuneRecord, results: Results) -> str:
    """apply.sql for the user's table when the data came from one (the table source's
    record in results.dataset.table_source); otherwise with a placeholder to edit."""
    source = results.dataset.table_source if results.dataset is not None else None
    table = source.get("table") if source else None
    if not source or not isinstance(table, str):
        return apply_sql(record)
    column, kind = source.get("column"), source.get("vector_type")
    return apply_sql(
        record,
        schema_table=table,
        column=column if isinstance(column, str) else "embedding",
        column_type=kind if kind in ("vector", "halfvec") else "vector",
    )


def _ram(results: Results, record: TuneRecord) -> int | None:
    """The server host's RAM: pgvbench's host when the server was its embedded one (its
    [server] memory_limit, when it ran under one)."""
    if record.external:
        return None
    ram = results.environment.server_ram_bytes()
    return ram if ram > 0 else None
