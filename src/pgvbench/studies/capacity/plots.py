"""The capacity figures: each quantity against rows on log axes, the measured levels, the fit
with its prediction interval out to the target, the held-out level's prediction (made
without it) beside its measurement, and on the memory panel the cliff where index + heap
outgrow shared_buffers and RAM. Imported only when figures are drawn (matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from ...report.document import Image
from ...report.figures import PALETTE, TARGET_COLOR, new_figure, save_figure, tick_text
from ..tune.words import size_text
from .advice import KIND_NAME, KNOB
from .fits import Fit
from .predict import KindAnalysis, analyse, target_of
from .records import CapacityRecord

HELD_OUT_COLOR = "#b07aa1"
GRID = 200  # points along each fitted curve
# byte axes: 1 MB, 10 MB, 100 MB, 1 GB, 10 GB ... (powers of ten of binary units read well)
BYTE_TICKS = [float(unit * 10**k) for unit in (2**20, 2**30, 2**40) for k in range(3)]


def draw_figures(record: CapacityRecord, out_dir: Path) -> list[Image]:
    """One figure per index kind (file capacity_<kind>.png); none without two levels."""
    if len(record.levels) < 2:
        return []
    images = []
    for part in analyse(record):
        path = draw_kind(record, part, out_dir / f"capacity_{part.kind}.png")
        if path is not None:
            name = KIND_NAME.get(part.kind, part.kind)
            images.append(Image(path.name, f"{name}: each cost against rows, fitted and held out"))
    return images


def draw_kind(record: CapacityRecord, part: KindAnalysis, path: Path) -> Path | None:
    panels: list[tuple[str, list[tuple[str, str]], str]] = [
        ("build time (s)", [("build_seconds", "build")], "seconds"),
        ("memory", [("index_bytes", "index"), ("heap_bytes", "heap")], "bytes"),
        (f"{KNOB.get(part.kind, 'knob')} for the recall target", [("knob", "needed")], "value"),
        (
            "QPS per server core" if "qps_per_core" in part.fits else "QPS",
            [("qps_per_core", "at the target's knob"), ("fixed_qps_per_core", "at the fixed knob")]
            if "qps_per_core" in part.fits
            else [("qps", "at the target's knob")],
            "queries/s",
        ),
        (
            "pg_restore (rebuilds the index), pg_dump (s)",
            [("restore_seconds", "pg_restore"), ("dump_seconds", "pg_dump")],
            "seconds",
        ),
    ]
    shown = [p for p in panels if any(q in part.fits for q, _ in p[1])]
    if not shown:
        return None
    columns = 3 if len(shown) > 4 else 2
    rows = math.ceil(len(shown) / columns)
    fig = new_figure(4.2 * columns, 3.4 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).flatten()
    target = target_of(record)
    x_max = max(record.level_rows) * 1.5
    if target is not None:
        x_max = max(x_max, target.rows * 1.2)
    frame = record.frame(part.kind)
    for ax, (title, series, unit) in zip(axes, shown, strict=False):
        ax.set_xscale("log")  # first: a scale change resets the tick formatters
        ax.set_yscale("log")
        values: list[float] = []  # what the y range must show (the bands may be far wider)
        for i, (quantity, label) in enumerate(series):
            fit = part.fits.get(quantity)
            if fit is None:
                continue
            color = PALETTE[i % len(PALETTE)]
            measured = frame[["rows", quantity]].dropna()
            values += _draw_fit(ax, fit, color, label, x_max)
            ax.scatter(measured["rows"], measured[quantity], color=color, s=28, zorder=3)
            values += [float(v) for v in measured[quantity]]
            _draw_held_out(ax, fit)
            if target is not None:
                p = fit.predict(target.rows)
                _star(ax, target.rows, p.value, p.low, p.high, color)
        if unit == "bytes":
            values += _memory_cliff(ax, record, part, x_max, top=max(values, default=0.0))
            ax.yaxis.set_major_locator(FixedLocator(BYTE_TICKS))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: size_text(v)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        positive = [v for v in values if v > 0 and math.isfinite(v)]
        if positive:
            ax.set_ylim(min(positive) / 4, max(positive) * 4)
        if unit != "bytes":
            ax.yaxis.set_major_formatter(FuncFormatter(tick_text))
        if target is not None:
            ax.axvline(target.rows, color=TARGET_COLOR, linestyle="--", linewidth=1)
        ax.xaxis.set_major_formatter(FuncFormatter(_rows_tick))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("rows")
        ax.grid(True, which="major", alpha=0.3)
        if len(series) > 1 or unit == "bytes":
            ax.legend(fontsize=7, loc="upper left")
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    name = KIND_NAME.get(part.kind, part.kind)
    where = f"; target {target.rows:,} rows (dashed)" if target is not None else ""
    fig.suptitle(
        f"{name} at {', '.join(f'{r:,}' for r in record.level_rows)} rows x {record.dim} "
        f"(sizes and times at the measured dimension)\nfits with 95% intervals; diamond = "
        f"the largest level predicted from the others{where}",
        fontsize=10,
    )
    return save_figure(fig, path)


def _draw_fit(ax: Axes, fit: Fit, color: str, label: str, x_max: float) -> list[float]:
    """The fitted curve and its band; the curve's values (for the y range)."""
    xs = np.geomspace(min(fit.levels), x_max, GRID)
    predictions = [fit.predict(float(x)) for x in xs]
    values = [p.value for p in predictions]
    ax.plot(xs, values, color=color, linewidth=1.4, label=f"{label} ({fit.form})")
    if all(p.bounded for p in predictions):
        lows = [max(p.low, 1e-12) for p in predictions]
        ax.fill_between(xs, lows, [p.high for p in predictions], color=color, alpha=0.15)
    return values


def _draw_held_out(ax: Axes, fit: Fit) -> None:
    held = fit.holdout
    if held is None:
        return
    p = held.predicted
    low = max(0.0, p.value - max(p.low, 1e-12)) if p.bounded else 0.0
    high = max(0.0, p.high - p.value) if p.bounded else 0.0
    ax.errorbar(
        [held.rows * 1.04],
        [p.value],
        yerr=[[low], [high]],
        fmt="D",
        color=HELD_OUT_COLOR,
        markersize=6,
        capsize=3,
        zorder=4,
    )
    ax.annotate(
        f"{held.relative_error:+.0%}" + ("" if held.within else " (miss)"),
        (held.rows, p.value),
        textcoords="offset points",
        xytext=(6, -10),
        fontsize=7,
        color=TARGET_COLOR if not held.within else HELD_OUT_COLOR,
    )


def _star(ax: Axes, x: float, value: float, low: float, high: float, color: str) -> None:
    bounded = math.isfinite(high)
    yerr = [[max(0.0, value - max(low, 1e-12))], [max(0.0, high - value)]] if bounded else None
    ax.errorbar([x], [value], yerr=yerr, fmt="*", color=color, markersize=10, capsize=3)


def _memory_cliff(
    ax: Axes, record: CapacityRecord, part: KindAnalysis, x_max: float, *, top: float
) -> list[float]:
    """shared_buffers and RAM as lines, where the fitted index + heap crosses each; the
    limits drawn within reach of the curves (``top``: their largest value)."""
    index, heap = part.fits.get("index_bytes"), part.fits.get("heap_bytes")
    limits = [("shared_buffers", record.server.bytes_of("shared_buffers"), "#59a14f")]
    if record.server.ram_bytes:
        ram = "memory_limit" if record.server.limited else "RAM"
        limits.append((ram, record.server.ram_bytes, "#9c755f"))
    xs = np.geomspace(min(record.level_rows), x_max, GRID)
    resident: Sequence[float] = []
    if index is not None and heap is not None:
        resident = [index.predict(float(x)).value + heap.predict(float(x)).value for x in xs]
        ax.plot(xs, resident, color="#4e4e4e", linewidth=1, linestyle=":", label="index + heap")
    shown: list[float] = []
    for label, limit, color in limits:
        if not limit or limit > 20 * max(top, *resident, 1.0):
            continue  # far above everything drawn: a line there would flatten the curves
        shown.append(float(limit))
        ax.axhline(
            limit, color=color, linewidth=1, linestyle="-.", label=f"{label} {size_text(limit)}"
        )
        crossing = next((x for x, r in zip(xs, resident, strict=True) if r > limit), None)
        if crossing is not None:
            ax.axvline(crossing, color=color, linewidth=1, linestyle=":")
            ax.annotate(
                f"> {label} at ~{_rows_tick(crossing)}",
                (crossing, limit),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=color,
            )
    return shown


def _rows_tick(value: float, _pos: int | None = None) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:g}"
