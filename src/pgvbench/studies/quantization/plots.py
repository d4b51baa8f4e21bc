"""The quantization figure: recall vs single-client QPS, one line per variant (full
precision included). Imported only when figures are drawn."""

from __future__ import annotations

from pathlib import Path

from ...report.figures import PALETTE, new_figure, save_figure
from .records import QuantizationStudy
from .report import variant_rank

_COLORS = {
    "full": PALETTE[0],
    "halfvec": PALETTE[1],
    "binary": PALETTE[4],
    "binary_norerank": PALETTE[2],
}


def plot_quantization(study: QuantizationStudy, path: Path) -> Path | None:
    """Recall vs QPS, one line per variant (full precision included), same axes."""
    series: dict[str, list[tuple[float, float]]] = {}
    for p in study.points:
        if p.qps <= 0:
            continue
        series.setdefault(p.variant or "?", []).append((p.qps, p.recall_mean))
    if not series:
        return None
    fig = new_figure(8, 5)
    ax = fig.add_subplot()
    for variant in sorted(series, key=variant_rank):
        pts = sorted(series[variant], key=lambda xy: xy[1])
        ax.plot(
            [x for x, _ in pts], [y for _, y in pts], marker="o", linewidth=1.6,
            color=_COLORS.get(variant), label=variant.replace("_", " "),
        )  # fmt: skip
    ax.set_xlabel("single-client QPS")
    ax.set_ylabel(f"recall@{study.k or 'k'}")
    ax.set_ylim(top=1.01)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Quantized HNSW: recall vs throughput (points: ef_search x overfetch)")
    return save_figure(fig, path)
