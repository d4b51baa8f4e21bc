"""The cache-state report section: cold vs warm vs autoprewarm latency, residency in
shared_buffers, the warm-up curve. Reads the typed record; never touches the database."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...report.document import Block, Bullets, Heading, Image, Paragraph, Table
from ...report.figures import LINESTYLES, PALETTE, new_figure, save_figure
from ...report.fmt import DASH, format_sig
from ...results import Results
from .advice import WORKING_SET
from .records import CacheRow, CacheStudy, from_results

RESIDENCY_FIGURE = "cache_residency.png"
RESIDENCY_ALT = "Share of index and heap in shared_buffers before and after each run"
WARMUP_FIGURE = "cache_warmup_p99.png"
WARMUP_ALT = "p99 per second from the first query, per cache state"
_FIGURE_ALTS = ((RESIDENCY_FIGURE, RESIDENCY_ALT), (WARMUP_FIGURE, WARMUP_ALT))
_COLORS = {"cold": PALETTE[0], "warm": PALETTE[2], "autoprewarm": PALETTE[4]}
_OTHER = PALETTE[8]
_INDEX_COLOR, _HEAP_COLOR = PALETTE[0], PALETTE[1]


# --- helpers -----------------------------------------------------------------------------


def _label(row: CacheRow, multi_size: bool) -> str:
    return f"{row.strategy} @ {row.shared_buffers or '?'}" if multi_size else row.strategy


def _multi_size(rows: Sequence[CacheRow]) -> bool:
    return len({r.shared_buffers for r in rows}) > 1


def _ms(value: float | None) -> str:
    return DASH if value is None else format_sig(value)


def _series(row: CacheRow) -> list[tuple[int, float]]:
    return [(s.t, s.p99_ms) for s in row.series if s.p99_ms is not None]


def _os_text(row: CacheRow) -> str:
    if row.strategy == "warm":
        return "kept"
    if row.os_cache_dropped:
        return "dropped"
    return f"not dropped ({row.os_cache_note})" if row.os_cache_note else "not dropped"


def _k(study: CacheStudy) -> str:
    return "?" if study.k is None else str(study.k)


# --- blocks ------------------------------------------------------------------------------


def blocks(study: CacheStudy, images: Sequence[Image] | None = None) -> list[Block]:
    """The cache-state section.

    ``images`` are the figures :func:`figures` drew; when None, a figure is referenced
    whenever the record holds its data.
    """
    rows = study.rows
    out: list[Block] = [Heading(2, "Cache state")]
    recs = study.recommendations
    leads = bool(recs) and WORKING_SET in recs[0]
    if leads:
        out.append(Paragraph(recs[0], lead="Working set."))
    if not rows:
        out.append(Paragraph("The cache study recorded no measurements.", style="warning"))
        return out
    multi = _multi_size(rows)
    out.append(
        Paragraph(
            f"Single client, k = {_k(study)}: cold = restart, evict index and heap "
            "from shared_buffers, drop the OS page cache; warm = pg_prewarm of heap and "
            "index first; autoprewarm = restart with pg_prewarm's autoprewarm worker after "
            "warming the index. The cold and autoprewarm curves start at the very first "
            f"query ({format_sig(study.warmup_series_seconds)} s); latencies are from the "
            f"following {format_sig(study.measure_seconds)} s window."
            " Steady state: p99 within 20% of the warm p99 for 3 consecutive seconds."
        )
    )
    out.append(Heading(3, "Cold vs warm latency"))
    out.append(
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
            rows=[
                [
                    row.strategy,
                    row.shared_buffers or DASH,
                    _ms(row.first_second_p99_ms),
                    _ms(row.p50_ms),
                    _ms(row.p95_ms),
                    _ms(row.p99_ms),
                    DASH if row.time_to_warm_s is None else f"{row.time_to_warm_s:g}",
                    _os_text(row),
                ]
                for row in rows
            ],
            numeric=frozenset({2, 3, 4, 5, 6}),
        )
    )
    out.append(Heading(3, "Residency in shared_buffers"))
    relations = (study.index_name, study.table)
    out.append(
        Table(
            header=["state", "index before %", "index after %", "heap before %", "heap after %"],
            rows=[
                [
                    _label(row, multi),
                    *(
                        _ms(row.percent(when, rel))
                        for rel in relations
                        for when in ("before", "after")
                    ),
                ]
                for row in rows
            ],
            numeric=frozenset({1, 2, 3, 4}),
        )
    )
    if images is None:
        wanted = {RESIDENCY_FIGURE: _has_residency(rows), WARMUP_FIGURE: _has_series(rows)}
        out.extend(Image(src, alt) for src, alt in _FIGURE_ALTS if wanted[src])
    else:
        names = {src for src, _ in _FIGURE_ALTS}
        out.extend(image for image in images if image.src in names)
    notes = [*study.notes]
    notes += [f"{_label(row, multi)}: {note}" for row in rows for note in row.notes if note]
    if notes:
        out.append(Heading(3, "Notes"))
        out.append(Bullets(notes))
    advice = recs[1:] if leads else recs
    if advice:
        out.append(Heading(3, "Cache recommendations"))
        out.append(Bullets(list(advice)))
    return out


# --- figures -----------------------------------------------------------------------------


def _has_residency(rows: Sequence[CacheRow]) -> bool:
    return any(row.residency_before or row.residency_after for row in rows)


def _has_series(rows: Sequence[CacheRow]) -> bool:
    return any(_series(row) for row in rows)


def figures(study: CacheStudy, out_dir: Path) -> list[Image]:
    """Draw the cache figures that have data; the Images name them relative to out_dir."""
    drawn: list[Image] = []
    if _has_residency(study.rows):
        _plot_residency(study, out_dir / RESIDENCY_FIGURE)
        drawn.append(Image(RESIDENCY_FIGURE, RESIDENCY_ALT))
    if _has_series(study.rows):
        _plot_warmup(study, out_dir / WARMUP_FIGURE)
        drawn.append(Image(WARMUP_FIGURE, WARMUP_ALT))
    return drawn


def _plot_residency(study: CacheStudy, path: Path) -> None:
    """Grouped bars per state: % of index / heap resident before and after the run."""
    rows = study.rows
    multi = _multi_size(rows)
    fig = new_figure(max(6.0, 1.6 * len(rows) + 2), 4.2)
    ax = fig.add_subplot()
    index, table = study.index_name, study.table
    bars = (
        (index, "before", "index before", _INDEX_COLOR, ""),
        (index, "after", "index after", _INDEX_COLOR, "//"),
        (table, "before", "heap before", _HEAP_COLOR, ""),
        (table, "after", "heap after", _HEAP_COLOR, "//"),
    )
    width = 0.8 / len(bars)
    for j, (rel, when, label, color, hatch) in enumerate(bars):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(rows))]
        heights = [row.percent(when, rel) or 0.0 for row in rows]
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
    save_figure(fig, path)


def _plot_warmup(study: CacheStudy, path: Path) -> None:
    """p99 per second from the first query, one line per state (log scale: cold spikes)."""
    rows = study.rows
    multi = _multi_size(rows)
    fig = new_figure(9.0, 4.8)
    ax = fig.add_subplot()
    sizes = sorted({str(r.shared_buffers) for r in rows})
    for row in rows:
        points = _series(row)
        if not points:
            continue
        color = _COLORS.get(row.strategy, _OTHER)
        style = LINESTYLES[sizes.index(str(row.shared_buffers)) % len(LINESTYLES)]
        ax.plot(
            [t for t, _ in points], [v for _, v in points], marker="o", markersize=3,
            linewidth=1.6, linestyle=style, color=color, label=_label(row, multi),
        )  # fmt: skip
        if row.time_to_warm_s is not None and row.strategy != "warm":
            ax.axvline(row.time_to_warm_s, color=color, linestyle=":", linewidth=1)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter  # drawing only: keep report imports light

    plain = FuncFormatter(lambda v, _pos: format_sig(v, 2))  # not 10^0-style labels
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("seconds since the first query")
    ax.set_ylabel("p99 per second (ms)")
    ax.set_title(f"Warm-up: p99 from the first query (k = {_k(study)})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)


# --- from a results file (the report and its tests) --------------------------------------


def cache_blocks(results: Results, images: Sequence[Image] | None = None) -> list[Block]:
    """The cache-state section of ``results``, or [] when the run has no cache study."""
    study = from_results(results)
    return [] if study is None else blocks(study, images)


def cache_figures(results: Results, out_dir: Path) -> list[Image]:
    """The cache figures of ``results`` that have data (none without a cache study)."""
    study = from_results(results)
    return [] if study is None else figures(study, out_dir)
