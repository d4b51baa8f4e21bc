"""Report sections of the result-cache and quantization studies.

``results.tuning.result_cache`` / ``results.tuning.quantization`` hold the JSON forms
of :class:`pgvbench.tuning.result_cache.ResultCacheStudy` and
:class:`pgvbench.tuning.quantization.QuantizationStudy`; they are read with ``.get``
because a results file may come from another version or a run that stopped early.
Figures follow plots.py: a ``Figure`` on the Agg canvas, one PNG written atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._atomic import write_bytes_atomic
from ..results import Results
from .fmt import format_sig

if TYPE_CHECKING:
    from .document import Block, Image

RESULT_CACHE_FIGURE = "result_cache.png"
RESULT_CACHE_ALT = "Result caches: hit rate and recall of served results"
QUANTIZATION_FIGURE = "quantization.png"
QUANTIZATION_ALT = "Quantized indexes: recall vs single-client QPS"
_DPI = 110
_DASH = "—"
_COLORS = {
    "full": "#4e79a7",
    "halfvec": "#f28e2b",
    "binary": "#59a14f",
    "binary_norerank": "#e15759",
}
_VARIANT_ORDER = ("full", "halfvec", "binary", "binary_norerank")


# --- defensive readers -------------------------------------------------------------------


def _section(results: Results, key: str) -> Mapping[str, Any] | None:
    tuning = results.tuning
    data = getattr(tuning, key, None) if tuning is not None else None
    return data if isinstance(data, Mapping) else None


def _rows(study: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    raw = study.get(key)
    return [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any, digits: int = 3) -> str:
    num = _num(value)
    return _DASH if num is None else format_sig(num, digits)


def _int(value: Any) -> str:
    num = _num(value)
    return _DASH if num is None else f"{int(num):,}"


def _pct(value: Any) -> str:
    num = _num(value)
    return _DASH if num is None else f"{num:.1%}"


def _strings(study: Mapping[str, Any], key: str) -> list[str]:
    raw = study.get(key)
    return [str(s) for s in raw if isinstance(s, str)] if isinstance(raw, list) else []


def _mine(images: Sequence[Image], name: str) -> list[Image]:
    return [i for i in images if i.src == name]


# --- result caches -----------------------------------------------------------------------


def result_cache_blocks(results: Results, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, setup, figure, per-configuration table and advice of the result-cache study."""
    from .document import Bullets, Heading, KeyValues, Paragraph, Table

    study = _section(results, "result_cache")
    if study is None:
        return []
    runs = _rows(study, "runs")
    blocks: list[Block] = [Heading(2, "Application result caches")]
    blocks.append(
        KeyValues(
            [
                ("table", str(study.get("table", _DASH))),
                (
                    "stream",
                    f"{study.get('stream_length', _DASH)} requests over "
                    f"{study.get('distinct_queries', _DASH)} distinct queries, Zipf "
                    f"{_fmt(study.get('zipf'))}, jitter {_fmt(study.get('jitter'))}",
                ),
                ("k / metric", f"{study.get('k', _DASH)} / {study.get('metric', _DASH)}"),
                ("writes per second", _fmt(study.get("writes_per_second"))),
            ]
        )
    )
    blocks.extend(_mine(images, RESULT_CACHE_FIGURE))
    if runs:
        header = [
            "cache", "size", "delta", "hit rate", "expected", "p50 ms", "p99 ms",
            "miss p50 ms", "recall", "recall p5", "hit recall", "stale hits",
        ]  # fmt: skip
        rows = [
            [
                str(r.get("kind", _DASH)),
                _int(r.get("size")),
                _fmt(r.get("delta")),
                _pct(r.get("hit_rate")),
                _pct(r.get("expected_hit_rate")),
                _fmt(r.get("p50_ms")),
                _fmt(r.get("p99_ms")),
                _fmt(r.get("miss_p50_ms")),
                _fmt(r.get("recall_mean")),
                _fmt(r.get("recall_p5")),
                _fmt(r.get("hit_recall_mean")),
                _pct(r.get("stale_hit_fraction")),
            ]
            for r in runs
        ]
        flagged = [(_num(r.get("recall_mean")) or 1.0) < 0.99 for r in runs]
        blocks.append(
            Table(header=header, rows=rows, flagged=flagged, numeric=frozenset(range(1, 12)))
        )
    else:
        blocks.append(Paragraph("No cache configuration finished.", style="warning"))
    notes = _strings(study, "notes")
    if notes:
        blocks.append(Bullets(notes))
    advice = _strings(study, "recommendations")
    if advice:
        blocks.append(Paragraph(" ".join(advice), lead="Result caches.", style="recommendation"))
    return blocks


def plot_result_cache(study: Mapping[str, Any], path: Path) -> Path | None:
    """Left: LRU hit rate (measured, simulated) vs size. Right: semantic hit rate and
    recall of served results vs delta."""
    runs = _rows(study, "runs")
    lru = sorted(
        (r for r in runs if r.get("kind") == "lru" and _num(r.get("size")) is not None),
        key=lambda r: _num(r.get("size")) or 0.0,
    )
    sem = sorted(
        (r for r in runs if r.get("kind") == "semantic" and _num(r.get("delta")) is not None),
        key=lambda r: _num(r.get("delta")) or 0.0,
    )
    if not lru and not sem:
        return None
    fig = Figure(figsize=(11, 4.5), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    if lru:
        sizes = [_num(r.get("size")) for r in lru]
        left.plot(sizes, [_num(r.get("hit_rate")) for r in lru], marker="o", label="measured")
        expected = [_num(r.get("expected_hit_rate")) for r in lru]
        if any(v is not None for v in expected):
            left.plot(
                sizes, [math.nan if v is None else v for v in expected], linestyle="--",
                marker="x", label="simulated (same stream)",
            )  # fmt: skip
        analytic = [_num(r.get("analytic_hit_rate")) for r in lru]
        if any(v is not None for v in analytic):
            left.plot(
                sizes, [math.nan if v is None else v for v in analytic], linestyle=":",
                label="Che approximation",
            )  # fmt: skip
        left.set_xscale("log")
        left.legend(loc="lower right")
    left.set_xlabel("LRU cache size (entries)")
    left.set_ylabel("hit rate")
    left.set_ylim(0, 1.02)
    left.grid(True, alpha=0.3)
    left.set_title("Exact-key LRU")
    if sem:
        deltas = [_num(r.get("delta")) for r in sem]
        right.plot(deltas, [_num(r.get("hit_rate")) for r in sem], marker="o", label="hit rate")
        right.plot(
            deltas, [_num(r.get("recall_mean")) for r in sem], marker="s",
            label=f"recall@{study.get('k', 'k')} of served results",
        )  # fmt: skip
        stale = [_num(r.get("stale_hit_fraction")) for r in sem]
        if any(v is not None for v in stale):
            right.plot(
                deltas, [math.nan if v is None else v for v in stale], linestyle="--",
                label="stale hits / hits",
            )  # fmt: skip
        right.legend(loc="center right")
    right.set_xlabel("semantic cache delta (query distance)")
    right.set_ylim(0, 1.02)
    right.grid(True, alpha=0.3)
    right.set_title("Semantic cache: hit rate vs recall cost")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    write_bytes_atomic(path, buf.getvalue())
    return path


# --- quantization ------------------------------------------------------------------------


def _variant_rank(point: Mapping[str, Any]) -> tuple[int, float, float]:
    variant = str(point.get("variant", ""))
    rank = _VARIANT_ORDER.index(variant) if variant in _VARIANT_ORDER else len(_VARIANT_ORDER)
    return rank, _num(point.get("ef_search")) or 0.0, _num(point.get("overfetch")) or 0.0


def quantization_blocks(results: Results, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, index table, figure, point table and advice of the quantization study."""
    from .document import Bullets, Heading, KeyValues, Paragraph, Table

    study = _section(results, "quantization")
    if study is None:
        return []
    blocks: list[Block] = [Heading(2, "Quantized indexes")]
    blocks.append(
        KeyValues(
            [
                ("table", str(study.get("table", _DASH))),
                ("rows x dim", f"{study.get('rows', _DASH)} x {study.get('dim', _DASH)}"),
                (
                    "HNSW",
                    f"m {study.get('m', _DASH)}, ef_construction "
                    f"{study.get('ef_construction', _DASH)}",
                ),
                ("k / metric", f"{study.get('k', _DASH)} / {study.get('metric', _DASH)}"),
            ]
        )
    )
    indexes = _rows(study, "indexes")
    if indexes:
        blocks.append(
            Table(
                header=["variant", "index MB", "build s", "definition"],
                rows=[
                    [
                        str(ix.get("variant", _DASH)),
                        _fmt((_num(ix.get("index_bytes")) or 0.0) / 1e6),
                        _fmt(ix.get("build_seconds")),
                        str(ix.get("definition", "")),
                    ]
                    for ix in indexes
                ],
                numeric=frozenset({1, 2}),
            )
        )
    blocks.extend(_mine(images, QUANTIZATION_FIGURE))
    points = sorted(_rows(study, "points"), key=_variant_rank)
    if points:
        header = [
            "variant", "ef_search", "overfetch", "index MB", "build s", "recall", "recall p5",
            "QPS", "p99 ms", "plan",
        ]  # fmt: skip
        rows = [
            [
                str(p.get("variant", _DASH)),
                _int(p.get("ef_search")),
                _int(p.get("overfetch")),
                _fmt((_num(p.get("index_bytes")) or 0.0) / 1e6),
                _fmt(p.get("build_seconds")),
                _fmt(p.get("recall_mean")),
                _fmt(p.get("recall_p5")),
                _fmt(p.get("qps")),
                _fmt(p.get("p99_ms")),
                "ok" if p.get("plan_ok") else str(p.get("plan_note") or "not checked"),
            ]
            for p in points
        ]
        flagged = [not p.get("plan_ok") or bool(p.get("capped")) for p in points]
        blocks.append(
            Table(header=header, rows=rows, flagged=flagged, numeric=frozenset(range(1, 9)))
        )
    notes = _strings(study, "notes")
    if notes:
        blocks.append(Bullets(notes))
    advice = _strings(study, "recommendations")
    if advice:
        blocks.append(Paragraph(" ".join(advice), lead="Quantization.", style="recommendation"))
    return blocks


def plot_quantization(study: Mapping[str, Any], path: Path) -> Path | None:
    """Recall vs QPS, one line per variant (full precision included), same axes."""
    series: dict[str, list[tuple[float, float]]] = {}
    for p in _rows(study, "points"):
        qps, recall = _num(p.get("qps")), _num(p.get("recall_mean"))
        if qps is None or recall is None or qps <= 0:
            continue
        variant = str(p.get("variant", "?"))
        series.setdefault(variant, []).append((qps, recall))
    if not series:
        return None
    fig = Figure(figsize=(8, 5), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for variant in sorted(series, key=lambda v: _variant_rank({"variant": v})):
        pts = sorted(series[variant], key=lambda xy: xy[1])
        ax.plot(
            [x for x, _ in pts], [y for _, y in pts], marker="o", linewidth=1.6,
            color=_COLORS.get(variant), label=variant.replace("_", " "),
        )  # fmt: skip
    ax.set_xlabel("single-client QPS")
    ax.set_ylabel(f"recall@{study.get('k', 'k')}")
    ax.set_ylim(top=1.01)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Quantized HNSW: recall vs throughput (points: ef_search x overfetch)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    write_bytes_atomic(path, buf.getvalue())
    return path


# --- figures -----------------------------------------------------------------------------


def tuning_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the result-cache and quantization figures that have data; their Images."""
    from .document import Image

    drawn: list[Image] = []
    cache = _section(results, "result_cache")
    if cache is not None:
        path = plot_result_cache(cache, out_dir / RESULT_CACHE_FIGURE)
        if path is not None:
            drawn.append(Image(path.name, RESULT_CACHE_ALT))
    quant = _section(results, "quantization")
    if quant is not None:
        path = plot_quantization(quant, out_dir / QUANTIZATION_FIGURE)
        if path is not None:
            drawn.append(Image(path.name, QUANTIZATION_ALT))
    return drawn
