"""The Validity section: every sweep point, build and load point that may not be trusted,
and the other pgvbench sessions that shared the server during the run."""

from __future__ import annotations

from collections.abc import Sequence

from ...analysis.scalability import point_label
from ...results import ConcurrentSession, LoadPoint, Results, SweepPoint
from ..document import Block, Bullets, Heading, Paragraph
from .concurrency import load_order
from .summary import describe
from .sweep import notes_text, sweep_order


def validity_section(
    results: Results, *, study_lines: Sequence[str] = (), study_summary: str = ""
) -> list[Block]:
    """``study_lines`` / ``study_summary`` are the studies' own validity findings (a line per
    flagged row; a sentence with a leading space, "" when the study did not run)."""
    items = [_point_validity(p, results) for p in sweep_order(results)]
    items += [
        f"{b.label} build: notice — {notice}" for b in results.indexes for notice in b.notices
    ]
    items += [_load_point_validity(p) for p in load_order(results)]
    concurrent_lines, concurrent_summary = _concurrent_validity(results)
    lines = [item for item in [*concurrent_lines, *items, *study_lines] if item]
    if not lines:
        if results.runs:
            summary = f"All {len(results.runs)} sweep points are valid; there are no notes."
            if results.load_points:
                summary += f" All {len(results.load_points)} load points are valid."
        elif results.load_points:
            summary = f"All {len(results.load_points)} load points are valid; there are no notes."
        else:
            summary = "Nothing was flagged; there are no notes."
        return [Heading(2, "Validity"), Paragraph(summary + study_summary)]
    invalid = sum(not p.valid for p in results.runs)
    summary = f"Invalid sweep points: {invalid} of {len(results.runs)}." if results.runs else ""
    if results.load_points:
        summary += " " + _load_validity_summary(results.load_points)
    summary = f"{concurrent_summary} {summary}{study_summary}".strip()
    return [Heading(2, "Validity"), Paragraph(summary), Bullets(lines)]


def _concurrent_validity(results: Results) -> tuple[list[str], str]:
    """Other pgvbench sessions seen on the server during the run: a sentence saying their
    timings overlap, and a line per session name (one per other run)."""
    sessions = results.concurrent_runs
    if not sessions:
        return [], ""
    n = len(sessions)
    summary = (
        f"{n} other pgvbench session{'s were' if n != 1 else ' was'} active on the server "
        "during this run: their timings overlap, so latencies and throughput here may be "
        "worse than on a server of its own."
    )
    by_name: dict[str, list[ConcurrentSession]] = {}
    for session in sessions:
        by_name.setdefault(session.application_name, []).append(session)
    lines = []
    for name, group in sorted(by_name.items()):
        pids = ", ".join(str(s.pid) for s in group)
        where = sorted(
            {f"{s.user or '?'}@{s.database or '?'} from {s.client or '?'}" for s in group}
        )
        first = min(s.first_seen for s in group)
        last = max(s.last_seen for s in group)
        lines.append(
            f"Concurrent pgvbench session {name}: {len(group)} backend"
            f"{'s' if len(group) != 1 else ''} (pid {pids}; {', '.join(where)}), seen from "
            f"{first} to {last} (server clock, UTC)"
        )
    return lines, summary


def _point_validity(point: SweepPoint, results: Results) -> str:
    name = describe(point, results)
    if not point.valid:
        return f"{name}: INVALID — {notes_text(point)}"
    if point.notes:
        return f"{name}: note — {'; '.join(point.notes)}"
    return ""


def _load_point_validity(point: LoadPoint) -> str:
    name = f"Load {point_label(point)}"
    notes = "; ".join(point.notes)
    if not point.valid:
        return f"{name}: INVALID — {notes or 'no reason recorded'}"
    if point.suspect:
        return f"{name}: suspect — {notes or 'may be limited by the client, not the server'}"
    if notes:
        return f"{name}: note — {notes}"
    return ""


def _load_validity_summary(points: Sequence[LoadPoint]) -> str:
    invalid = sum(not p.valid for p in points)
    suspect = sum(p.valid and p.suspect for p in points)
    return f"Invalid load points: {invalid} of {len(points)}; suspect (client-bound): {suspect}."
