"""The "Quantized indexes" report section: setup, the index table, its own figure, the
point table, notes and the stored advice. No database, no matplotlib (plots.py draws)."""

from __future__ import annotations

from collections.abc import Sequence

from ...report.document import Block, Bullets, Heading, Image, KeyValues, Paragraph, Table
from ...report.fmt import DASH, format_sig
from .records import QuantizationPoint, QuantizationStudy

FIGURE_NAME = "quantization.png"
FIGURE_ALT = "Quantized indexes: recall vs single-client QPS"
VARIANT_ORDER = ("full", "halfvec", "binary", "binary_norerank")


def variant_rank(variant: str) -> int:
    """Where a variant sorts in tables and legends (unknown ones last)."""
    return VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER)


def _point_rank(point: QuantizationPoint) -> tuple[int, int, int]:
    return variant_rank(point.variant), point.ef_search, point.overfetch


def _opt(value: float | None) -> str:
    return DASH if value is None else format_sig(value)


def blocks(study: QuantizationStudy, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, setup, index table, figure, point table, notes and advice of the study.
    Of ``images`` only the study's own figure is shown."""
    out: list[Block] = [Heading(2, "Quantized indexes")]
    out.append(
        KeyValues(
            [
                ("table", study.table or DASH),
                ("rows x dim", f"{study.rows} x {study.dim}"),
                ("HNSW", f"m {study.m}, ef_construction {study.ef_construction}"),
                ("k / metric", f"{study.k} / {study.metric or DASH}"),
            ]
        )
    )
    if study.indexes:
        out.append(
            Table(
                header=["variant", "index MB", "build s", "definition"],
                rows=[
                    [
                        ix.variant or DASH,
                        format_sig(ix.index_bytes / 1e6),
                        format_sig(ix.build_seconds),
                        ix.definition,
                    ]
                    for ix in study.indexes
                ],
                numeric=frozenset({1, 2}),
            )
        )
    out.extend(i for i in images if i.src == FIGURE_NAME)
    points = sorted(study.points, key=_point_rank)
    if points:
        header = [
            "variant", "ef_search", "overfetch", "index MB", "build s", "recall", "recall p5",
            "QPS", "p99 ms", "plan",
        ]  # fmt: skip
        rows = [
            [
                p.variant or DASH,
                f"{p.ef_search:,}",
                f"{p.overfetch:,}",
                format_sig(p.index_bytes / 1e6),
                format_sig(p.build_seconds),
                format_sig(p.recall_mean),
                format_sig(p.recall_p5),
                format_sig(p.qps),
                _opt(p.p99_ms),
                "ok" if p.plan_ok else (p.plan_note or "not checked"),
            ]
            for p in points
        ]
        flagged = [not p.plan_ok or p.capped for p in points]
        out.append(Table(header=header, rows=rows, flagged=flagged, numeric=frozenset(range(1, 9))))
    if study.notes:
        out.append(Bullets(list(study.notes)))
    if study.recommendations:
        out.append(
            Paragraph(" ".join(study.recommendations), lead="Quantization.", style="recommendation")
        )
    return out
