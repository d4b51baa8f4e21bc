"""The result-cache report section: setup, figure (LRU hit rate vs size; semantic hit
rate and recall vs delta), one row per cache configuration, and the advice. Reads the
typed record; never touches the database."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ...report.document import Block, Bullets, Heading, Image, KeyValues, Paragraph, Table
from ...report.figures import new_figure, save_figure
from ...report.fmt import DASH, format_sig
from ...results import Results
from .records import ResultCacheStudy, from_results

RESULT_CACHE_FIGURE = "result_cache.png"
RESULT_CACHE_ALT = "Result caches: hit rate and recall of served results"


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None, digits: int = 3) -> str:
    num = _num(value)
    return DASH if num is None else format_sig(num, digits)


def _pct(value: float | None) -> str:
    num = _num(value)
    return DASH if num is None else f"{num:.1%}"


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _or_dash(value: object) -> str:
    return str(value) if value else DASH


def blocks(study: ResultCacheStudy, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, setup, figure, per-configuration table and advice of the result-cache study."""
    runs = study.runs
    out: list[Block] = [Heading(2, "Application result caches")]
    out.append(
        KeyValues(
            [
                ("table", _or_dash(study.table)),
                (
                    "stream",
                    f"{_or_dash(study.stream_length)} requests over "
                    f"{_or_dash(study.distinct_queries)} distinct queries, Zipf "
                    f"{_fmt(study.zipf)}, jitter {_fmt(study.jitter)}",
                ),
                ("k / metric", f"{_or_dash(study.k)} / {_or_dash(study.metric)}"),
                ("writes per second", _fmt(study.writes_per_second)),
            ]
        )
    )
    out.extend(i for i in images if i.src == RESULT_CACHE_FIGURE)
    if runs:
        header = [
            "cache", "size", "delta", "hit rate", "expected", "p50 ms", "p99 ms",
            "miss p50 ms", "recall", "recall p5", "hit recall", "stale hits",
        ]  # fmt: skip
        rows = [
            [
                _or_dash(r.kind),
                f"{r.size:,}",
                _fmt(r.delta),
                _pct(r.hit_rate),
                _pct(r.expected_hit_rate),
                _fmt(r.p50_ms),
                _fmt(r.p99_ms),
                _fmt(r.miss_p50_ms),
                _fmt(r.recall_mean),
                _fmt(r.recall_p5),
                _fmt(r.hit_recall_mean),
                _pct(r.stale_hit_fraction),
            ]
            for r in runs
        ]
        flagged = [(_num(r.recall_mean) or 1.0) < 0.99 for r in runs]
        out.append(
            Table(header=header, rows=rows, flagged=flagged, numeric=frozenset(range(1, 12)))
        )
    else:
        out.append(Paragraph("No cache configuration finished.", style="warning"))
    if study.notes:
        out.append(Bullets(list(study.notes)))
    if study.recommendations:
        out.append(
            Paragraph(
                " ".join(study.recommendations), lead="Result caches.", style="recommendation"
            )
        )
    return out


def figures(study: ResultCacheStudy, out_dir: Path) -> list[Image]:
    """The result-cache figure, when any configuration finished."""
    path = plot_result_cache(study, out_dir / RESULT_CACHE_FIGURE)
    return [] if path is None else [Image(path.name, RESULT_CACHE_ALT)]


def plot_result_cache(study: ResultCacheStudy, path: Path) -> Path | None:
    """Left: LRU hit rate (measured, simulated) vs size. Right: semantic hit rate and
    recall of served results vs delta."""
    lru = sorted((r for r in study.runs if r.kind == "lru"), key=lambda r: r.size)
    sem = sorted(
        (r for r in study.runs if r.kind == "semantic" and _num(r.delta) is not None),
        key=lambda r: r.delta or 0.0,
    )
    if not lru and not sem:
        return None
    fig = new_figure(11, 4.5)
    left, right = fig.subplots(1, 2)
    if lru:
        sizes = [r.size for r in lru]
        left.plot(sizes, [_nan(_num(r.hit_rate)) for r in lru], marker="o", label="measured")
        expected = [_num(r.expected_hit_rate) for r in lru]
        if any(v is not None for v in expected):
            left.plot(
                sizes, [_nan(v) for v in expected], linestyle="--", marker="x",
                label="simulated (same stream)",
            )  # fmt: skip
        analytic = [_num(r.analytic_hit_rate) for r in lru]
        if any(v is not None for v in analytic):
            left.plot(sizes, [_nan(v) for v in analytic], linestyle=":", label="Che approximation")
        left.set_xscale("log")
        left.legend(loc="lower right")
    left.set_xlabel("LRU cache size (entries)")
    left.set_ylabel("hit rate")
    left.set_ylim(0, 1.02)
    left.grid(True, alpha=0.3)
    left.set_title("Exact-key LRU")
    if sem:
        deltas = [r.delta for r in sem]
        right.plot(deltas, [_nan(_num(r.hit_rate)) for r in sem], marker="o", label="hit rate")
        right.plot(
            deltas, [_nan(_num(r.recall_mean)) for r in sem], marker="s",
            label=f"recall@{study.k or 'k'} of served results",
        )  # fmt: skip
        stale = [_num(r.stale_hit_fraction) for r in sem]
        if any(v is not None for v in stale):
            right.plot(deltas, [_nan(v) for v in stale], linestyle="--", label="stale hits / hits")
        right.legend(loc="center right")
    right.set_xlabel("semantic cache delta (query distance)")
    right.set_ylim(0, 1.02)
    right.grid(True, alpha=0.3)
    right.set_title("Semantic cache: hit rate vs recall cost")
    return save_figure(fig, path)


# --- from a results file -----------------------------------------------------------------


def result_cache_blocks(results: Results, images: Sequence[Image] = ()) -> list[Block]:
    """The result-cache section of ``results``, or [] when the run has none."""
    study = from_results(results)
    return [] if study is None else blocks(study, images)


def result_cache_figures(results: Results, out_dir: Path) -> list[Image]:
    """The result-cache figure of ``results`` (none without the study or a finished run)."""
    study = from_results(results)
    return [] if study is None else figures(study, out_dir)
