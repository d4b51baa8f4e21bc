"""The report's Churn section: recall over time while memories churn, HOT updates during
the churn, and what an update costs with and without the HNSW index.

Reads the typed records only. A record read back from an older or hand-edited file may
hold stand-ins for missing figures (NaN prints as a dash; see records.read_record).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...report import fmt
from ...report.document import Block, Bullets, Heading, Image, Paragraph, Table
from ...report.fmt import (
    DASH,
    format_sig,
    number,
)
from ...results import Latency
from .records import DriftResult, DriftStudyResult, UpdateCostResult, UpdatePhase

DRIFT_FIGURE = "recall_over_time.png"
DRIFT_ALT = "Recall while memories are inserted and expired"

# the shared formatters under the short names this module's tables use
_count = fmt.format_count
_fixed = fmt.format_fixed
_sig = fmt.format_number
_pct = fmt.format_percent
_share = fmt.format_share


def churn_section(result: DriftStudyResult, images: Sequence[Image]) -> list[Block]:
    """The Churn section, or [] when neither part was measured."""
    drift, cost = result.drift, result.update_cost
    if drift is None and cost is None:
        return []
    image = next((i for i in images if i.src == DRIFT_FIGURE), None)
    blocks: list[Block] = [Heading(2, "Churn")]
    if drift is not None:
        blocks += _drift_blocks(drift, image, result.drift_problem)
    if cost is not None:
        blocks += _update_cost_blocks(cost)
    return blocks


# --- small formatting helpers ------------------------------------------------------------


def _latency(latency: Latency | None, fields: Sequence[str]) -> list[str]:
    if latency is None:
        return [DASH] * len(fields)
    return [_sig(getattr(latency, f)) for f in fields]


# --- recall over time --------------------------------------------------------------------


def _drift_blocks(drift: DriftResult, image: Image | None, problem: str | None) -> list[Block]:
    blocks: list[Block] = [Heading(3, "Recall over time"), Paragraph(_drift_setup(drift))]
    if image is not None:
        blocks.append(image)
    elif problem is not None:
        reason = f"the drift record cannot be read back ({problem})"
        blocks.append(Paragraph(f"No recall-over-time figure: {reason}."))
    blocks += _checkpoints_table(drift)
    blocks += _hot_table(drift)
    if drift.notes:
        blocks.append(Bullets([str(n) for n in drift.notes]))
    return blocks


def _drift_setup(drift: DriftResult) -> str:
    # k and ef_search are at least 1 in a measurement: 0 is a field the file lacked
    text = (
        f"A writer inserted memories at {_sig(drift.insert_rate)} rows/s and expired them at "
        f"{_sig(drift.expire_rate)} rows/s (achieved {_sig(drift.achieved_insert_rate)} and "
        f"{_sig(drift.achieved_expire_rate)}) for {_sig(drift.duration_s)} s on "
        f"{drift.table or 'the memories table'} ({_count(drift.initial_rows)} rows at the "
        f"start), while {_count(drift.queries)} queries measured recall@{drift.k or 'k'} "
        f"(ef_search {drift.ef_search or '?'}) every {_sig(drift.interval_s)} s against exact "
        "ground truth over the rows live at that moment."
    )
    if drift.autovacuum is False:
        text += " Autovacuum was off on the table during the run."
    vacuum_at, vacuum_s = number(drift.vacuum_at_s), number(drift.vacuum_seconds)
    if vacuum_at is not None:
        took = f", taking {format_sig(vacuum_s)} s" if vacuum_s is not None else ""
        text += f" A manual VACUUM ran at {format_sig(vacuum_at)} s{took}."
    if drift.write_batch_ms is not None:
        p50, p99 = _latency(drift.write_batch_ms, ("p50", "p99"))
        text += f" One writer transaction took p50 {p50} ms, p99 {p99} ms."
    return text


_CHECKPOINT_HEADER = [
    "t s", "Checkpoint", "Live rows", "Inserted", "Deleted", "Churn", "Dead tuples",
    "Recall mean", "Recall p5", "Recall (start GT)", "Rows returned", "Query p99 ms",
]  # fmt: skip


def _checkpoints_table(drift: DriftResult) -> list[Block]:
    if not drift.checkpoints:
        return [Paragraph("No checkpoint was recorded.")]
    rows = [
        [
            _sig(c.t),
            (c.label or DASH).replace("_", " "),
            _count(c.live_rows),
            _count(c.inserted),
            _count(c.deleted),
            _pct(c.churn),
            _count(c.dead_tuples),
            _fixed(c.recall_mean),
            _fixed(c.recall_p5),
            _fixed(c.recall_frozen_gt),
            _sig(c.returned_mean),
            _sig(c.query_p99_ms),
        ]
        for c in drift.checkpoints
    ]
    note = Paragraph(
        "Recall (start GT) scores the same results against the ground truth of the start: "
        "what a benchmark that ignores the writes would report. Rows returned below k means "
        "dead tuples used up the ef_search candidates (pgvector #244)."
    )
    numeric = frozenset(range(len(_CHECKPOINT_HEADER))) - {1}
    return [note, Table(_CHECKPOINT_HEADER, rows, numeric=numeric)]


def _hot_table(drift: DriftResult) -> list[Block]:
    if not drift.hot:
        return []
    rows = [
        [table, _count(s.updates), _count(s.hot_updates), _pct(s.hot_ratio)]
        for table, s in sorted(drift.hot.items())
    ]
    return [
        Heading(3, "HOT updates during the churn"),
        Table(["Table", "Updates", "HOT updates", "HOT ratio"], rows, numeric=frozenset({1, 2, 3})),
    ]


# --- update cost -------------------------------------------------------------------------

_PHASE_HEADER = [
    "Phase", "Table", "Column", "HNSW index", "Fillfactor", "Updates", "p50 ms", "p95 ms",
    "p99 ms", "HOT ratio", "Same page", "Same-page p50 ms", "Moved p50 ms",
    "Indexes on the column",
]  # fmt: skip
_PHASE_NUMERIC = frozenset(range(4, 13))


def _update_cost_blocks(cost: UpdateCostResult) -> list[Block]:
    blocks: list[Block] = [
        Heading(3, "Update cost with and without the HNSW index"),
        Paragraph(_update_setup(cost)),
    ]
    if cost.phases:
        rows = [_phase_row(p) for p in cost.phases]
        blocks.append(Table(_PHASE_HEADER, rows, numeric=_PHASE_NUMERIC))
    else:
        blocks.append(Paragraph("No update phase was measured."))
    if cost.notes:
        blocks.append(Bullets([str(n) for n in cost.notes]))
    return blocks


def _update_setup(cost: UpdateCostResult) -> str:
    text = (
        f"Single-row updates of {cost.column or 'a non-vector column'} by primary key on "
        f"{cost.table or 'the memories table'} ({_count(cost.rows)} rows, "
        f"{_sig(cost.avg_row_bytes)} bytes per row on average), with the HNSW index "
        f"{cost.index} present, then dropped; a non-HOT update re-inserts the row into "
        "every index, HNSW included (pgvector #875)."
    )
    p50, p99 = number(cost.p50_ratio), number(cost.p99_ratio)
    if p50 is not None or p99 is not None:
        text += f" With / without the index: p50 {_ratio(p50)}, p99 {_ratio(p99)}"
        moved = number(cost.moved_p50_ratio)
        text += "." if moved is None else f"; p50 of the non-HOT (moved) updates {_ratio(moved)}."
    text += (
        " Same page: updates whose new row version stayed on its page (HOT unless an index "
        "covers the column); moved: the new version went to another page, so every index "
        "was written."
    )
    rebuild = number(cost.index_rebuild_seconds)
    if rebuild is not None:
        text += f" Rebuilding the index afterwards took {format_sig(rebuild)} s."
    if cost.index_restored is False:
        text += " ⚠ The HNSW index was NOT restored: later measurements ran without it."
    return text


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{format_sig(value, 2)}×"


_PHASE_NAMES = {
    "hnsw": "with HNSW index",
    "no_hnsw": "without HNSW index",
    "tasks_status": "task status",
}


def _phase_name(name: str) -> str:
    if name.startswith("hnsw_fillfactor"):
        return f"with HNSW index, fillfactor {name.removeprefix('hnsw_fillfactor')}"
    return _PHASE_NAMES.get(name, name)


def _phase_row(phase: UpdatePhase) -> list[str]:
    return [
        _phase_name(phase.name or "?"),
        phase.table or DASH,
        phase.column or DASH,
        "yes" if phase.hnsw_index else "no",
        _count(phase.fillfactor),
        _count(phase.updates),
        *_latency(phase.latency_ms, ("p50", "p95", "p99")),
        _pct(phase.hot_ratio),
        _share(phase.same_page, phase.updates),
        *_latency(phase.same_page_latency_ms, ("p50",)),
        *_latency(phase.moved_latency_ms, ("p50",)),
        ", ".join(phase.blocking_indexes) or DASH,
    ]
