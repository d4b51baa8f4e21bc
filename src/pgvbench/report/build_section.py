"""Report section of the index-build tuning study (``results.tuning.build_tuning``).

Reads the JSON form defensively (a results file may come from another version or a run
that stopped early). Same figure conventions as plots.py: a ``Figure`` on the Agg canvas,
one PNG written atomically, None / nothing when there is nothing to draw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .._atomic import write_bytes_atomic
from ..results import Results
from ..tuning.build import BuildTuningStudy, format_size, recommend_build
from .fmt import format_sig

if TYPE_CHECKING:
    from .document import Block, Image

FIGURE_NAME = "build_tuning.png"
FIGURE_ALT = "Index build time vs maintenance_work_mem (x: graph did not fit)"
_DPI = 110
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f")
_NO_FIT = "#c0392b"
_DASH = "—"


def _study(results: Results) -> Mapping[str, Any] | None:
    tuning = results.tuning
    data = tuning.build_tuning if tuning is not None else None
    return data if isinstance(data, Mapping) else None


def _points(study: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = study.get("points")
    return [p for p in raw if isinstance(p, Mapping)] if isinstance(raw, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    num = _num(value)
    return int(num) if num is not None else None


def _drawable(point: Mapping[str, Any]) -> tuple[float, float, int, bool] | None:
    """(memory bytes, seconds, workers, fits) of a completed build, else None."""
    mem, secs, workers = (
        _num(point.get("maintenance_work_mem_bytes")),
        _num(point.get("build_seconds")),
        _int(point.get("workers")),
    )
    if mem is None or mem <= 0 or secs is None or workers is None or point.get("error"):
        return None
    return mem, secs, workers, point.get("graph_fits") is not False


# --------------------------------------------------------------------------- figure


def build_tuning_figures(results: Results, out_dir: Path) -> list[Image]:
    """Draw the build-time curve into ``out_dir``; [] when there is no study to draw."""
    from .document import Image

    study = _study(results)
    if study is None:
        return []
    path = plot_build_tuning(study, out_dir / FIGURE_NAME)
    return [Image(path.name, FIGURE_ALT)] if path is not None else []


def plot_build_tuning(study: Mapping[str, Any], path: Path) -> Path | None:
    """Build seconds vs maintenance_work_mem (log2 x), one line per worker count."""
    drawn = [d for d in (_drawable(p) for p in _points(study)) if d is not None]
    if not drawn:
        return None
    fig = Figure(figsize=(9, 5.5), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas explicitly; no pyplot backend selection
    ax = fig.add_subplot()
    handles: list[Artist] = []
    for i, workers in enumerate(sorted({d[2] for d in drawn})):
        series = sorted((d for d in drawn if d[2] == workers), key=lambda d: d[0])
        color = _PALETTE[i % len(_PALETTE)]
        label = "single-process" if workers == 0 else f"{workers} parallel worker"
        label += "s" if workers > 1 else ""
        (line,) = ax.plot(
            [d[0] for d in series], [d[1] for d in series], color=color, marker="o",
            markersize=6, linewidth=1.8, label=f"max_parallel_maintenance_workers = {workers} "
            f"({label})",
        )  # fmt: skip
        handles.append(line)
        misses = [d for d in series if not d[3]]
        if misses:
            ax.scatter(
                [d[0] for d in misses], [d[1] for d in misses], s=140, marker="X",
                color=_NO_FIT, zorder=3, edgecolors="white", linewidths=0.8,
            )  # fmt: skip
    if any(not d[3] for d in drawn):
        handles.append(
            Line2D(
                [],
                [],
                color=_NO_FIT,
                marker="X",
                linestyle="none",
                markersize=10,
                label="graph no longer fit into maintenance_work_mem",
            )
        )
    mems = sorted({d[0] for d in drawn})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(mems))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(v)))
    if len(mems) == 1:
        ax.set_xlim(mems[0] / 2, mems[0] * 2)
    ax.set_ylim(bottom=0, top=max(d[1] for d in drawn) * 1.12)
    ax.set_xlabel("maintenance_work_mem (log2 scale)")
    ax.set_ylabel("build seconds")
    ax.grid(True, which="major", alpha=0.3)
    rows = _int(study.get("rows"))
    title = f"{study.get('index', 'index')} build time"
    if rows:
        title += f" over {rows:,} rows"
    fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncols=1 if len(handles) > 3 else 2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    write_bytes_atomic(path, buf.getvalue())
    return path


# --------------------------------------------------------------------------- blocks


def build_tuning_blocks(results: Results, images: Sequence[Image] = ()) -> list[Block]:
    """Heading, setup, figure, table, notes and recommendation of the build study."""
    from .document import Bullets, Heading, KeyValues, Paragraph, Table

    study = _study(results)
    if study is None:
        return []
    points = _points(study)
    blocks: list[Block] = [Heading(2, "Index build tuning")]
    advice = _recommendations(results, study)
    if advice:
        blocks.append(Paragraph(" ".join(advice), lead="Build settings.", style="recommendation"))
    blocks.append(KeyValues(_setup_items(study)))
    blocks.extend(images)
    if points:
        blocks.append(
            Table(
                header=[
                    "maintenance_work_mem",
                    "workers",
                    "workers seen",
                    "build s",
                    "index MB",
                    "graph fits",
                    "longest phase",
                    "notes",
                ],
                rows=[_row(p) for p in points],
                flagged=[p.get("graph_fits") is False or bool(p.get("error")) for p in points],
                numeric=frozenset({1, 2, 3, 4}),
            )
        )
    else:
        blocks.append(Paragraph("The study recorded no build.", style="warning"))
    notes = [str(n) for n in study.get("notes", []) or [] if n]
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _recommendations(results: Results, study: Mapping[str, Any]) -> list[str]:
    stored = study.get("recommendations")
    if isinstance(stored, list) and stored:
        return [str(s) for s in stored]
    rows = _int(study.get("rows"))
    if not rows:
        return []
    try:
        parsed = BuildTuningStudy.from_dict(study)
    except (TypeError, KeyError, ValueError):
        return []  # a record this version cannot read: show the table only
    cores = max(1, results.environment.host.cores or 1)
    return recommend_build(parsed, rows=rows, cores=cores)


def _setup_items(study: Mapping[str, Any]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = [("index", str(study.get("index", _DASH)))]
    if study.get("table"):
        items.append(("table", str(study["table"])))
    rows = _int(study.get("rows"))
    if rows is not None:
        items.append(("rows", f"{rows:,}"))
    limits = study.get("limits")
    if isinstance(limits, Mapping) and limits:
        items.append(("server limits", ", ".join(f"{k} = {v}" for k, v in limits.items())))
    return items


def _row(p: Mapping[str, Any]) -> list[str]:
    secs = _num(p.get("build_seconds"))
    size = _num(p.get("index_bytes"))
    seen = _int(p.get("workers_launched"))
    workers = _int(p.get("workers"))
    if p.get("error"):
        fits = _DASH
    elif p.get("graph_fits") is False:
        after = _int(p.get("fits_after_tuples"))
        fits = f"no, after {after:,} tuples" if after is not None else "no"
    else:
        fits = "yes"
    return [
        str(p.get("maintenance_work_mem", _DASH)),
        str(workers) if workers is not None else _DASH,
        str(seen) if seen is not None else _DASH,
        format_sig(secs) if secs is not None else _DASH,
        format_sig(size / 1024**2) if size is not None else _DASH,
        fits,
        _longest_phase(p.get("phases")),
        str(p.get("error") or ""),
    ]


def _longest_phase(phases: Any) -> str:
    if not isinstance(phases, list):
        return _DASH
    timed = [
        (_num(ph.get("seconds")), str(ph.get("phase", "")))
        for ph in phases
        if isinstance(ph, Mapping)
    ]
    timed_ok = [(s, name) for s, name in timed if s is not None]
    if not timed_ok:
        return _DASH
    secs, name = max(timed_ok)
    return f"{name} ({format_sig(secs)} s)"
