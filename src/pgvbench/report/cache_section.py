"""The cache-state part of the report: cold vs warm vs autoprewarm, residency, warm-up curve.

Reads ``results.tuning.cache``, the JSON form of :class:`pgvbench.tuning.cache.CacheStudy`,
with ``.get`` throughout: a results file from an older writer may lack fields. The
document model comes from :mod:`.render`, imported inside the functions because
render.py may import this module.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .._atomic import write_bytes_atomic
from ..results import Results
from .fmt import format_sig

if TYPE_CHECKING:
    from .document import Block, Image

RESIDENCY_FIGURE = "cache_residency.png"
RESIDENCY_ALT = "Share of index and heap in shared_buffers before and after each run"
WARMUP_FIGURE = "cache_warmup_p99.png"
WARMUP_ALT = "p99 per second from the first query, per cache state"
_DPI = 110
_DASH = "—"
_COLORS = {"cold": "#4e79a7", "warm": "#e15759", "autoprewarm": "#59a14f"}
_OTHER = "#9c755f"


# --- reading the record ------------------------------------------------------------------


def _study(results: Results) -> Mapping[str, Any] | None:
    tuning = results.tuning
    study = tuning.cache if tuning is not None else None
    return study if isinstance(study, Mapping) else None


def _rows(study: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = study.get("rows")
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _label(row: Mapping[str, Any], multi_size: bool) -> str:
    strategy = str(row.get("strategy", "?"))
    return f"{strategy} @ {row.get('shared_buffers', '?')}" if multi_size else strategy


def _multi_size(rows: Sequence[Mapping[str, Any]]) -> bool:
    return len({r.get("shared_buffers") for r in rows}) > 1


def _percent(row: Mapping[str, Any], when: str, relation: str) -> float | None:
    part = row.get(f"residency_{when}")
    entry = part.get(relation) if isinstance(part, Mapping) else None
    return _num(entry, "percent") if isinstance(entry, Mapping) else None


def _ms(value: float | None) -> str:
    return _DASH if value is None else format_sig(value)


def _series(row: Mapping[str, Any]) -> list[tuple[int, float]]:
    series = row.get("series")
    if not isinstance(series, list):
        return []
    out: list[tuple[int, float]] = []
    for point in series:
        if isinstance(point, Mapping):
            t, p99 = _num(point, "t"), _num(point, "p99_ms")
            if t is not None and p99 is not None:
                out.append((int(t), p99))
    return out


# --- blocks ------------------------------------------------------------------------------


def cache_blocks(results: Results, images: Sequence[Image] | None = None) -> list[Block]:
    """The cache-state section, or [] when the run has no cache study.

    ``images`` are the figures drawn by :func:`cache_figures`; when None, a figure is
    referenced whenever the record holds its data.
    """
    from .document import Bullets, Heading, Image, Paragraph, Table

    study = _study(results)
    if study is None:
        return []
    rows = _rows(study)
    blocks: list[Block] = [Heading(2, "Cache state")]
    recs = [str(r) for r in study.get("recommendations") or [] if r]
    if recs and "index + heap" in recs[0]:
        blocks.append(Paragraph(recs[0], lead="Working set."))
    if not rows:
        blocks.append(Paragraph("The cache study recorded no measurements.", style="warning"))
        return blocks
    multi = _multi_size(rows)
    series_s = format_sig(float(study.get("warmup_series_seconds") or 0))
    window_s = format_sig(float(study.get("measure_seconds") or 0))
    blocks.append(
        Paragraph(
            f"Single client, k = {study.get('k', '?')}: cold = restart, evict index and heap "
            "from shared_buffers, drop the OS page cache; warm = pg_prewarm of heap and "
            "index first; autoprewarm = restart with pg_prewarm's autoprewarm worker after "
            "warming the index. The cold and autoprewarm curves start at the very first "
            f"query ({series_s} s); latencies are from the following {window_s} s window."
            " Steady state: p99 within 20% of the warm p99 for 3 consecutive seconds."
        )
    )
    blocks.append(Heading(3, "Cold vs warm latency"))
    table_rows: list[list[str]] = []
    for row in rows:
        ttw = _num(row, "time_to_warm_s")
        table_rows.append(
            [
                str(row.get("strategy", "?")),
                str(row.get("shared_buffers", _DASH)),
                _ms(_num(row, "first_second_p99_ms")),
                _ms(_num(row, "p50_ms")),
                _ms(_num(row, "p95_ms")),
                _ms(_num(row, "p99_ms")),
                _DASH if ttw is None else f"{ttw:g}",
                _os_text(row),
            ]
        )
    blocks.append(
        Table(
            header=[
                "state",
                "shared_buffers",
                "first-second p99 ms",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "time to warm s",
                "OS cache",
            ],
            rows=table_rows,
            numeric=frozenset({2, 3, 4, 5, 6}),
        )
    )
    blocks.append(Heading(3, "Residency in shared_buffers"))
    index, table = str(study.get("index_name", "")), str(study.get("table", ""))
    blocks.append(
        Table(
            header=["state", "index before %", "index after %", "heap before %", "heap after %"],
            rows=[
                [
                    _label(row, multi),
                    *(
                        _ms(_percent(row, when, rel))
                        for rel in (index, table)
                        for when in ("before", "after")
                    ),
                ]
                for row in rows
            ],
            numeric=frozenset({1, 2, 3, 4}),
        )
    )
    wanted = {RESIDENCY_FIGURE: _has_residency(rows), WARMUP_FIGURE: _has_series(rows)}
    if images is None:
        shown = [Image(src, alt) for src, alt in _FIGURE_ALTS if wanted[src]]
    else:
        names = {src for src, _ in _FIGURE_ALTS}
        shown = [image for image in images if image.src in names]
    blocks.extend(shown)
    notes = [str(n) for n in study.get("notes") or []]
    notes += [
        f"{_label(row, multi)}: {note}" for row in rows for note in row.get("notes") or [] if note
    ]
    if notes:
        blocks.append(Heading(3, "Notes"))
        blocks.append(Bullets(notes))
    if len(recs) > 1 or (recs and "index + heap" not in recs[0]):
        blocks.append(Heading(3, "Cache recommendations"))
        blocks.append(Bullets(recs[1:] if "index + heap" in recs[0] else recs))
    return blocks


def _os_text(row: Mapping[str, Any]) -> str:
    if row.get("strategy") == "warm":
        return "kept"
    if row.get("os_cache_dropped"):
        return "dropped"
    reason = str(row.get("os_cache_note") or "")
    return f"not dropped ({reason})" if reason else "not dropped"


_FIGURE_ALTS = ((RESIDENCY_FIGURE, RESIDENCY_ALT), (WARMUP_FIGURE, WARMUP_ALT))


# --- figures -----------------------------------------------------------------------------


def _has_residency(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(row.get("residency_before") or row.get("residency_after") for row in rows)


def _has_series(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(_series(row) for row in rows)


def cache_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the cache figures that have data; the Images name them relative to out_dir."""
    from .document import Image

    study = _study(results)
    if study is None:
        return []
    rows = _rows(study)
    drawn: list[Image] = []
    if _has_residency(rows):
        index, table = str(study.get("index_name", "")), str(study.get("table", ""))
        _plot_residency(rows, index, table, out_dir / RESIDENCY_FIGURE)
        drawn.append(Image(RESIDENCY_FIGURE, RESIDENCY_ALT))
    if _has_series(rows):
        _plot_warmup(rows, study, out_dir / WARMUP_FIGURE)
        drawn.append(Image(WARMUP_FIGURE, WARMUP_ALT))
    return drawn


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas explicitly; no pyplot backend selection
    return fig


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    write_bytes_atomic(path, buf.getvalue())


def _plot_residency(rows: Sequence[Mapping[str, Any]], index: str, table: str, path: Path) -> None:
    """Grouped bars per state: % of index / heap resident before and after the run."""
    multi = _multi_size(rows)
    fig = _new_figure(max(6.0, 1.6 * len(rows) + 2), 4.2)
    ax = fig.add_subplot()
    bars = (
        (index, "before", "index before", "#4e79a7", ""),
        (index, "after", "index after", "#4e79a7", "//"),
        (table, "before", "heap before", "#f28e2b", ""),
        (table, "after", "heap after", "#f28e2b", "//"),
    )
    width = 0.8 / len(bars)
    for j, (rel, when, label, color, hatch) in enumerate(bars):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(rows))]
        heights = [_percent(row, when, rel) or 0.0 for row in rows]
        ax.bar(
            xs, heights, width, label=label, color=color, hatch=hatch, edgecolor="white",
            alpha=0.95 if when == "before" else 0.6,
        )  # fmt: skip
    ax.set_xticks(range(len(rows)), [_label(row, multi) for row in rows])
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of pages in shared_buffers")
    ax.set_title("Residency before and after each run")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncols=2)
    _save(fig, path)


def _plot_warmup(rows: Sequence[Mapping[str, Any]], study: Mapping[str, Any], path: Path) -> None:
    """p99 per second from the first query, one line per state (log scale: cold spikes)."""
    multi = _multi_size(rows)
    fig = _new_figure(9.0, 4.8)
    ax = fig.add_subplot()
    linestyles = ("-", "--", "-.", ":")
    sizes = sorted({str(r.get("shared_buffers")) for r in rows})
    for row in rows:
        points = _series(row)
        if not points:
            continue
        strategy = str(row.get("strategy", "?"))
        style = linestyles[sizes.index(str(row.get("shared_buffers"))) % len(linestyles)]
        ax.plot(
            [t for t, _ in points], [v for _, v in points], marker="o", markersize=3,
            linewidth=1.6, linestyle=style, color=_COLORS.get(strategy, _OTHER),
            label=_label(row, multi),
        )  # fmt: skip
        ttw = _num(row, "time_to_warm_s")
        if ttw is not None and strategy != "warm":
            ax.axvline(ttw, color=_COLORS.get(strategy, _OTHER), linestyle=":", linewidth=1)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _pos: format_sig(v, 2))  # not 10^0-style labels
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("seconds since the first query")
    ax.set_ylabel("p99 per second (ms)")
    ax.set_title(f"Warm-up: p99 from the first query (k = {study.get('k', '?')})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
