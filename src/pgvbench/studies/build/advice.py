"""What the build-tuning record says, in words: the record's notes (what limited the
workers, which builds failed) and the maintenance_work_mem / workers advice, each with
the measured figures it rests on. No database here."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...advice_margin import difference_text, from_single
from ..base import Recommendation
from .records import BuildTuningPoint, BuildTuningStudy
from .sizes import PARTICIPANT_MIN_BYTES, format_size, memory_worker_cap

_SIMILAR = 0.05  # relative build-time difference treated as noise


def _mb(num_bytes: float) -> str:
    mb = num_bytes / 1024**2
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------- notes


def study_notes(study: BuildTuningStudy) -> list[str]:
    """The record's notes: why fewer workers ran than requested, and failed builds."""
    notes: list[str] = []
    requested = max((p.workers for p in study.points), default=0)
    caps = []
    for setting in ("max_parallel_workers", "max_worker_processes"):
        value = study.limits.get(setting, "")
        if value.isdigit() and int(value) < requested:
            caps.append(f"{setting} = {value}")
    if caps:
        notes.append(
            f"up to {requested} workers were requested but {' and '.join(caps)} caps them "
            "(max_worker_processes needs a restart to raise)"
        )
    short = [
        p for p in study.points
        if p.workers > 0 and p.workers_launched is not None and p.workers_launched < p.workers
        and p.error is None
    ]  # fmt: skip
    capped = [p for p in short if memory_worker_cap(p.maintenance_work_mem_bytes) < p.workers]
    if capped:
        mems = sorted({p.maintenance_work_mem_bytes for p in capped})
        allowed = ", ".join(f"{format_size(m)} allows {memory_worker_cap(m)}" for m in mems)
        notes.append(
            "PostgreSQL leaves every build participant (leader included) at least 32MB of "
            f"maintenance_work_mem, so fewer workers ran than requested ({allowed})"
        )
    short = [p for p in short if memory_worker_cap(p.maintenance_work_mem_bytes) >= p.workers]
    if short:
        seen = sorted({(p.workers, p.workers_launched or 0) for p in short})
        pairs = ", ".join(f"{w} requested -> {n} seen" for w, n in seen)
        notes.append(
            f"fewer parallel workers ran than requested ({pairs}): PostgreSQL plans workers "
            "from the table size (min_parallel_table_scan_size = "
            f"{study.limits.get('min_parallel_table_scan_size', '?')}) and the free worker "
            "slots"
        )
    for p in study.points:
        if p.error is not None:
            notes.append(
                f"at {p.maintenance_work_mem}, {p.workers} workers the build failed: {p.error}"
            )
    return notes


# --------------------------------------------------------------------------- advice


def advice(study: BuildTuningStudy) -> list[Recommendation]:
    """The advice for the rows and cores the record was measured for: the dataset's rows
    (the table's when an older record lacks them) and the host's cores (1 when unknown).
    Nothing when there are no rows to advise for."""
    rows = study.dataset_rows if study.dataset_rows is not None else study.rows
    if not rows:
        return []
    return build_advice(study, rows=rows, cores=max(1, study.cores or 1))


def recommend_build(study: BuildTuningStudy, *, rows: int, cores: int) -> list[str]:
    """The advice sentences of :func:`build_advice`."""
    return [r.text for r in build_advice(study, rows=rows, cores=cores)]


def graph_bytes_estimate(study: BuildTuningStudy, rows: int | None = None) -> float | None:
    """The in-memory graph size for ``rows`` tuples, from the "no longer fits" NOTICEs.

    At maintenance_work_mem M pgvector held N tuples, so one tuple takes about M / N; the
    largest such ratio over the measured points, times the rows. None without a NOTICE.
    """
    ratios = [
        p.maintenance_work_mem_bytes / p.fits_after_tuples
        for p in study.points
        if p.fits_after_tuples
    ]
    if not ratios:
        return None
    return max(ratios) * (study.rows if rows is None else rows)


def build_advice(study: BuildTuningStudy, *, rows: int, cores: int) -> list[Recommendation]:
    """The maintenance_work_mem and workers to build with, the measured curve as evidence.

    ``rows`` is the data size to build for (the study's own table, or a production size
    to extrapolate to); ``cores`` the server's CPU cores.
    """
    ok = [p for p in study.points if p.ok]
    if not ok:
        return [
            Recommendation(
                text=f"No {study.index} build completed, so there is no build setting to "
                "recommend"
                + (f" (first error: {study.points[0].error})." if study.points else "."),
                evidence={"builds": len(study.points), "completed": 0},
            )
        ]
    memory = _memory_advice(study, ok, rows)
    target = int(memory.evidence["maintenance_work_mem_bytes"])
    fits = sorted({p.maintenance_work_mem_bytes for p in ok if p.graph_fits})
    chosen = fits[0] if fits else max(p.maintenance_work_mem_bytes for p in ok)
    at_memory = [p for p in ok if p.maintenance_work_mem_bytes == chosen]
    return [memory, _workers_advice(at_memory, cores, target)]


def _fastest_workers(points: Sequence[BuildTuningPoint]) -> BuildTuningPoint:
    """The fastest point; a slower one with fewer workers wins when within 5%."""
    best = min(points, key=lambda p: p.seconds)
    close = [p for p in points if p.seconds <= best.seconds * (1 + _SIMILAR)]
    return min(close, key=lambda p: (p.workers, p.seconds))


def _nice_size(num_bytes: float) -> int:
    """The next power-of-two MB at or above ``num_bytes``."""
    mb = max(1.0, num_bytes / 1024**2)
    return int(2 ** math.ceil(math.log2(mb))) * 1024**2


def _memory_advice(
    study: BuildTuningStudy, ok: Sequence[BuildTuningPoint], rows: int
) -> Recommendation:
    """The memory advice; its evidence holds the size it recommends."""
    scale = rows / study.rows if study.rows else 1.0
    need = graph_bytes_estimate(study, rows)
    need_text = f"the graph needs ~{_mb(need)} for {rows:,} rows" if need else ""
    figures: dict[str, float | int | str] = {"rows": rows, "measured_rows": study.rows}
    if need:
        figures["graph_bytes_estimate"] = round(need)
    fits = sorted((p for p in ok if p.graph_fits), key=lambda p: p.maintenance_work_mem_bytes)
    misses = sorted((p for p in ok if not p.graph_fits), key=lambda p: p.maintenance_work_mem_bytes)
    if not fits:
        largest = misses[-1]
        target = _nice_size(need * 1.1) if need else largest.maintenance_work_mem_bytes * 2
        return _memory_recommendation(
            f"Build {study.index} with maintenance_work_mem >= {format_size(target)}: none of "
            f"the measured settings held the graph (at {largest.maintenance_work_mem} pgvector "
            f"reported it no longer fits after {largest.fits_after_tuples:,} of "
            f"{study.rows:,} tuples and the build took {_secs(largest.seconds)})"
            + (f"; {need_text}" if need_text else "")
            + ".",
            target,
            {
                **figures,
                "largest_measured_bytes": largest.maintenance_work_mem_bytes,
                "largest_measured_seconds": largest.seconds,
                "fits_after_tuples": largest.fits_after_tuples or 0,
            },
        )
    smallest = fits[0]
    mem = smallest.maintenance_work_mem_bytes
    figures.update(smallest_fit_bytes=mem, smallest_fit_seconds=smallest.seconds)
    target = mem
    if need is not None and scale > 1.0 and need * 1.1 > mem:
        target = _nice_size(need * 1.1)  # more rows than measured: scale the NOTICE's ratio
    elif need is None and scale > 1.0:
        target = _nice_size(mem * scale)  # measured fit at ``mem``: an upper bound per row
    evidence: list[str] = []
    if need_text:
        smaller = _nice_size(need * 1.1) if need else mem
        hint = (
            f", so {format_size(smaller)} would likely do (not measured)" if smaller < mem else ""
        )
        evidence.append(need_text + hint)
    elif scale > 1.0:
        evidence.append(
            f"{smallest.maintenance_work_mem} held the graph of {study.rows:,} rows, scaled "
            f"to {rows:,} rows"
        )
    if misses:
        workers = _fastest_workers([p for p in fits if p.maintenance_work_mem_bytes == mem]).workers
        top_miss = max(p.maintenance_work_mem_bytes for p in misses)
        at_top = [p for p in misses if p.maintenance_work_mem_bytes == top_miss]
        miss = next((p for p in at_top if p.workers == workers), at_top[0])
        same = [p for p in fits if p.workers == miss.workers] or fits
        ref = min(same, key=lambda p: p.maintenance_work_mem_bytes)
        figures.update(
            no_fit_bytes=miss.maintenance_work_mem_bytes,
            no_fit_seconds=miss.seconds,
            fits_after_tuples=miss.fits_after_tuples or 0,
            fit_seconds=ref.seconds,
        )
        evidence.append(
            f"at {miss.maintenance_work_mem} pgvector reported it no longer fits after "
            f"{miss.fits_after_tuples:,} of {study.rows:,} tuples and the build took "
            f"{_secs(miss.seconds)} vs {_secs(ref.seconds)} at {ref.maintenance_work_mem}"
            f" ({_workers_text(miss.workers)})"
        )
    else:
        evidence.append(
            f"every measured setting from {smallest.maintenance_work_mem} up held the graph"
        )
    bigger = [
        p for p in fits if p.maintenance_work_mem_bytes > mem and p.workers == smallest.workers
    ]
    if bigger and target == mem:
        top = max(bigger, key=lambda p: p.maintenance_work_mem_bytes)
        gain = 1 - top.seconds / smallest.seconds if smallest.seconds > 0 else 0.0
        verdict = "barely pays" if gain < _SIMILAR else f"saves {gain:.0%}"
        figures.update(largest_fit_bytes=top.maintenance_work_mem_bytes, more_memory_gain=gain)
        evidence.append(
            f"more memory once it fits {verdict}: {_secs(top.seconds)} at "
            f"{top.maintenance_work_mem} vs {_secs(smallest.seconds)} at "
            f"{smallest.maintenance_work_mem} ({_workers_text(smallest.workers)})"
        )
    return _memory_recommendation(
        f"Build {study.index} with maintenance_work_mem >= {format_size(target)} "
        f"({'; '.join(evidence)}).",
        target,
        figures,
    )


def _memory_recommendation(
    text: str, target: int, figures: dict[str, float | int | str]
) -> Recommendation:
    return Recommendation(
        text=text,
        evidence={**figures, "maintenance_work_mem_bytes": target},
        config_change={"maintenance_work_mem": format_size(target)},
    )


def _workers_text(workers: int) -> str:
    return (
        "single-process"
        if workers == 0
        else f"{workers} parallel worker" + ("s" if workers > 1 else "")
    )


def _workers_advice(
    points: Sequence[BuildTuningPoint], cores: int, target_bytes: int
) -> Recommendation:
    rule = max(0, cores - 1)
    shm = (
        " Parallel builds keep the graph in dynamic shared memory: in Docker give the "
        "container --shm-size above maintenance_work_mem."
    )
    memory = points[0].maintenance_work_mem
    counts = sorted({p.workers for p in points})
    if len(counts) < 2:
        measured = counts[0]
        tail = shm if rule > 0 else ""
        return Recommendation(
            text=f"Only max_parallel_maintenance_workers = {measured} was measured at {memory} "
            f"({_secs(points[0].seconds)}); the rule of thumb is cores - 1 = {rule} on "
            f"{cores} cores.{tail}",
            evidence={"workers": measured, "build_seconds": points[0].seconds, "cores": cores},
        )
    best = _fastest_workers(points)
    serial = next((p for p in points if p.workers == 0), None)
    others = [p for p in points if p is not best]
    if serial is not None and serial is not best:
        ref = serial
    else:
        ref = min(others, key=lambda p: p.seconds)
    # One build per setting: there is no build-to-build spread to weigh the difference
    # against, so the sentence says so (the 5% tie rule above stands in for the noise).
    margin = from_single(ref.seconds, best.seconds, basis="builds")
    text = (
        f"Use max_parallel_maintenance_workers = {best.workers} "
        f"({_secs(best.seconds)} vs {_secs(ref.seconds)} {_workers_text(ref.workers)} "
        f"at {memory} on {cores} cores, {difference_text(margin)} build time in one build "
        "each: no build-to-build spread measured, rebuild to confirm"
    )
    if best.workers_launched is not None and best.workers_launched < best.workers:
        text += f"; only {best.workers_launched} workers actually ran"
    text += ")"
    if best.workers == 0 and serial is not None:
        faster = [p for p in points if p.workers > 0]
        if faster and all(p.seconds >= serial.seconds * (1 - _SIMILAR) for p in faster):
            text += ": parallel workers did not speed this build up" + (
                " (none were launched; the table is below min_parallel_table_scan_size "
                "or worker slots are taken)"
                if all(p.workers_launched == 0 for p in faster)
                else ""
            )
    text += "."
    floor = PARTICIPANT_MIN_BYTES * (best.workers + 1)
    if best.workers > 0 and target_bytes < floor:
        text += (
            f" {best.workers} workers need maintenance_work_mem >= {format_size(floor)}: "
            "PostgreSQL leaves every participant at least 32MB and launches fewer otherwise."
        )
    if best.workers > rule:
        text += f" That is more than cores - 1 = {rule}: other work on the server will contend."
    if best.workers > 0:
        text += shm
    evidence: dict[str, float | int | str] = {
        "workers": best.workers,
        "build_seconds": best.seconds,
        "reference_workers": ref.workers,
        "reference_seconds": ref.seconds,
        "cores": cores,
        **margin.evidence(),
    }
    if best.workers_launched is not None:
        evidence["workers_launched"] = best.workers_launched
    return Recommendation(
        text=text,
        evidence=evidence,
        config_change={"max_parallel_maintenance_workers": str(best.workers)},
    )
