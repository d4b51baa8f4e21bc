"""The Validity section: every sweep point, build and load point that may not be trusted,
the other pgvbench sessions that shared the server during the run, and the measured windows
that ran while something else loaded the host."""

from __future__ import annotations

from collections.abc import Sequence

from ...analysis.scalability import point_label
from ...results import ConcurrentSession, HostLoad, LoadPoint, Results, Sample, SweepPoint
from ..document import Block, Bullets, Heading, Paragraph
from ..fmt import format_sig
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
    host_lines, host_summary = host_load_validity(results)
    study_summary += host_summary
    lines = [item for item in [*concurrent_lines, *host_lines, *items, *study_lines] if item]
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


# --- host load -------------------------------------------------------------------------------

# A window ran under foreign load when, on average over it, the host's CPUs did at least
# this much work beyond the benchmark's own client and server. Half a core is a quarter of
# the 2-core machines pgvbench is often run on, enough to take CPU from the server; below
# it, the remainder is mostly background daemons and three counters (/proc/stat, the
# client's rusage, the server's processes) read at slightly different moments.
FOREIGN_CORES_FLAG = 0.5
# ... or when the hypervisor took at least this share of the host's CPU time (steal): it
# slows every process alike and is invisible inside the guest except here. A few percent is
# common on shared VMs; 5% is half the 10% change the A/B gate is built to detect.
STEAL_SHARE_FLAG = 0.05


def under_foreign_load(host: HostLoad) -> bool:
    """Whether a window's host load crosses either threshold above."""
    if host.foreign_cores is not None and host.foreign_cores >= FOREIGN_CORES_FLAG:
        return True
    return _steal_share(host) >= STEAL_SHARE_FLAG


def _steal_share(host: HostLoad) -> float:
    if host.steal_cores is None or not host.cpu_count:
        return 0.0
    return host.steal_cores / host.cpu_count


def host_load_validity(results: Results) -> tuple[list[str], str]:
    """A line per point with windows under foreign load, and a sentence for the summary
    (with a leading space); nothing for a results file that recorded no host load."""
    named: list[tuple[str, list[Sample]]] = [
        (describe(p, results), p.samples) for p in sweep_order(results)
    ]
    named += [(f"Load {point_label(p)}", p.samples) for p in load_order(results)]
    windows = [s.host for _, samples in named for s in samples if s.host is not None]
    if not windows:
        return [], ""
    rule = (
        f"≥ {FOREIGN_CORES_FLAG:g} core of other work beyond this benchmark's client "
        f"and server, or steal ≥ {STEAL_SHARE_FLAG:.0%} of the CPU time"
    )
    lines = [
        line
        for name, samples in named
        if (line := _host_line(name, [s.host for s in samples if s.host is not None]))
    ]
    flagged = sum(under_foreign_load(h) for h in windows)
    if not flagged:
        return [], f" No measured window ran under foreign load ({rule})."
    return lines, (
        f" {flagged} of {len(windows)} measured windows ran under foreign load ({rule}): "
        "the machine was shared, so their throughput and latency may be worse and noisier "
        "than it gives alone."
    )


def _host_line(name: str, loads: Sequence[HostLoad]) -> str:
    hit = [h for h in loads if under_foreign_load(h)]
    if not hit:
        return ""
    foreign = [h.foreign_cores for h in hit if h.foreign_cores is not None]
    parts = []
    if foreign:
        parts.append(
            f"{format_sig(sum(foreign) / len(foreign), 2)} cores of other work on average"
            + (f" (up to {format_sig(max(foreign), 2)})" if len(foreign) > 1 else "")
        )
    steal = max(_steal_share(h) for h in hit)
    if steal >= STEAL_SHARE_FLAG:
        parts.append(f"steal {steal:.0%} of the CPU time")
    cores = hit[0].cpu_count
    load = f"1-minute load average {format_sig(hit[0].loadavg_start, 2)} → "
    load += f"{format_sig(hit[-1].loadavg_end, 2)}" + (f" on {cores} cores" if cores else "")
    windows = f"{len(hit)} of {len(loads)} windows" if len(loads) > 1 else "its window"
    return f"{name}: foreign load in {windows} — {', '.join(parts)}; {load}"
