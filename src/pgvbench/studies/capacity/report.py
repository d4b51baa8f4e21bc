"""The capacity study's report section: what was measured per level, the held-out check of
every fit (a miss is said, not hidden), the answers at the target with their intervals,
backup and restore times, and the figures; plus plan.md / plan.html beside the report
(``pgvbench plan``'s own answer). No database: everything comes from the record.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from ...report.document import Block, Bullets, Heading, Image, KeyValues, Paragraph, Table
from ...report.fmt import DASH, format_fixed, format_sig
from ...results import Results
from ..tune.words import secs_text, size_text
from .advice import (
    KIND_NAME,
    KNOB,
    beyond_text,
    bytes_range,
    held_out_text,
    int_range,
    kind_advice,
    seconds_range,
)
from .fits import Fit
from .predict import ACCEPTANCE, BACKUP, BY_BYTES, KindAnalysis, analyse, at_target, target_of
from .records import CapacityRecord, IndexLevel, Level

FOREIGN_CORES = 0.3  # foreign load beyond this during a window is worth saying
WINDOW_SPREAD = 0.25  # a level's window QPS varying more than this is worth saying
QUANTITY_NAMES = {
    "build_seconds": "build time",
    "build_cpu_seconds": "build CPU-seconds",
    "index_bytes": "index size",
    "heap_bytes": "heap size",
    "knob": "knob for the target",
    "qps_per_core": "QPS per server core",
    "fixed_qps_per_core": "QPS per server core, fixed knob",
    "qps": "QPS",
    "load_seconds": "load time",
    "restore_seconds": "restore time",
    "restore_cpu_seconds": "restore's index rebuild, CPU-seconds",
    "basebackup_seconds": "base backup time (vs cluster bytes)",
    "dump_seconds": "pg_dump time",
}


def report_blocks(record: CapacityRecord, images: Sequence[Image], results: Results) -> list[Block]:
    parts = analyse(record)
    blocks: list[Block] = [Heading(2, "Capacity: how costs grow with the data"), _intro(record)]
    if not record.complete:
        blocks.append(
            Paragraph(
                f"The sweep stopped after {len(record.levels)} of "
                f"{len(record.spec.get('levels') or [])} levels: the fits use what was measured.",
                style="warning",
            )
        )
    for part in parts:
        name = KIND_NAME.get(part.kind, part.kind)
        blocks += [Heading(3, f"{name}: measured per level"), _levels_table(record, part.kind)]
        blocks += _held_out(part)
        blocks += _answers(record, part)
        for image in images:
            if image.src == f"capacity_{part.kind}.png":
                blocks.append(image)
    blocks += _backups(record)
    blocks += _cache_tie(record, results)
    return blocks


def _intro(record: CapacityRecord) -> Paragraph:
    spec, server = record.spec, record.server
    levels = ", ".join(f"{r:,}" for r in record.level_rows)
    settings = ", ".join(f"{k} = {v}" for k, v in server.settings.items()) or "unknown"
    host = (
        f"{server.cores} cores and {size_text(server.ram_bytes)} of RAM "
        + ("(the [server] memory_limit / cpus it ran under)" if server.limited else "on this host")
        if server.ram_bytes and server.cores
        else "an external server (its RAM and cores are not known here)"
    )
    build = (
        ", ".join(
            f"{k} = {spec[k]}"
            for k in ("maintenance_work_mem", "max_parallel_maintenance_workers")
            if spec.get(k) is not None
        )
        or "the server's build settings"
    )
    rounds = max((len(ix.window_qps) for lv in record.levels for ix in lv.indexes), default=0)
    warm = (
        ", each level's index and table prewarmed into shared_buffers first"
        if record.prewarmed
        else " (pg_prewarm is not installed: not prewarmed)"
    )
    return Paragraph(
        f"The first {levels} rows of the dataset ({record.dim} dimensions, {record.metric}), "
        f"each level on its own table: loaded, its exact ground truth computed, each index "
        f"built with {build}, recall@{record.k} measured at a fixed knob and the smallest knob "
        f"whose {spec.get('confidence', 0.95):.0%} lower bound reaches {spec.get('recall')} "
        f"found by bisection ({record.recall_queries} recall queries). Once every level was "
        f"built, QPS and p99 at {spec.get('clients')} clients, at both knobs: {rounds} rounds "
        f"of {spec.get('window_seconds', 1.0)} s windows, the levels interleaved in a fresh "
        f"random order each round{warm}. Server: {settings}; {host}. Every "
        "quantity is fitted against rows; the largest level is held out and predicted from "
        "the others, and that error is printed beside every extrapolation."
    )


def _levels_table(record: CapacityRecord, kind: str) -> Table:
    knob = KNOB.get(kind, "knob")
    header = [
        "rows",
        "load s",
        "build s",
        "build CPU s",
        "index",
        "heap",
        "graph in memory",
        f"recall at {knob}",
        f"{knob} for target",
        "recall low there",
        "QPS",
        "p99 ms",
        "server cores",
        "QPS/core",
        "QPS/core at fixed",
    ]
    rows: list[list[str]] = []
    flagged: list[bool] = []
    for level in record.levels:
        ix = level.index(kind)
        if ix is None:
            continue
        rows.append(_level_row(level, ix))
        flagged.append(ix.reason is not None or not ix.graph_fits)
    return Table(header, rows, flagged=flagged, numeric=frozenset(range(len(header))) - {6})


def _level_row(level: Level, ix: IndexLevel) -> list[str]:
    lat = ix.latency
    fixed = ix.fixed_recall
    fits = "yes" if ix.graph_fits else f"no (after {ix.fits_after_tuples:,} tuples)"
    if ix.kind != "hnsw":
        fits = DASH
    return [
        f"{level.rows:,}",
        format_sig(level.load_seconds),
        format_sig(ix.build_seconds) if ix.build_seconds is not None else "failed",
        format_sig(ix.build_cpu_seconds) if ix.build_cpu_seconds is not None else DASH,
        size_text(ix.index_bytes) if ix.index_bytes else DASH,
        size_text(level.heap_bytes),
        fits,
        f"{format_fixed(fixed.mean)} ({ix.fixed_knob})" if fixed else DASH,
        str(ix.knob) if ix.knob is not None else (ix.reason or DASH),
        format_fixed(ix.recall.low) if ix.recall is not None and ix.knob else DASH,
        f"{lat.qps:,.0f}" if lat else DASH,
        format_sig(lat.p99_ms) if lat else DASH,
        format_sig(lat.server_cpu_cores) if lat and lat.server_cpu_cores is not None else DASH,
        f"{ix.qps_per_core:,.0f}" if ix.qps_per_core is not None else DASH,
        f"{ix.fixed_qps_per_core:,.0f}" if ix.fixed_qps_per_core is not None else DASH,
    ]


def _held_out(part: KindAnalysis) -> list[Block]:
    rows: list[list[str]] = []
    flagged: list[bool] = []
    misses: list[str] = []
    for quantity, fit in part.fits.items():
        held = fit.holdout
        if held is None:
            rows.append(
                [
                    QUANTITY_NAMES.get(quantity, quantity),
                    fit.form,
                    DASH,
                    DASH,
                    DASH,
                    DASH,
                    "no level held out",
                ]
            )
            flagged.append(False)
            continue
        p = held.predicted
        interval = (
            f"{_value(quantity, p.low)}–{_value(quantity, p.high)}" if p.bounded else "unbounded"
        )
        verdict = (
            f"yes (±{held.tolerance:.0%})" if held.within else f"NO: missed (±{held.tolerance:.0%})"
        )
        rows.append(
            [
                QUANTITY_NAMES.get(quantity, quantity),
                _forms(fit),
                f"{held.rows:,}" if quantity not in BY_BYTES else size_text(held.rows),
                f"{_value(quantity, p.value)} [{interval}]",
                _value(quantity, held.measured),
                f"{held.relative_error:+.1%}",
                verdict,
            ]
        )
        flagged.append(not held.within)
        if not held.within and quantity in (*ACCEPTANCE, *BACKUP):
            misses.append(
                f"{QUANTITY_NAMES.get(quantity, quantity)} ({held.relative_error:+.1%}, "
                f"tolerance ±{held.tolerance:.0%})"
            )
    blocks: list[Block] = [
        Heading(4, "Held-out check: the largest level predicted from the others"),
        Table(
            [
                "quantity",
                "form",
                "held out",
                "predicted [95% interval]",
                "measured",
                "error",
                "within",
            ],
            rows,
            flagged=flagged,
            numeric=frozenset({2, 3, 4, 5}),
        ),
    ]
    knob_note = _knob_step_note(part)
    if misses:
        blocks.append(
            Paragraph(
                f"The fit missed the held-out level for {', '.join(misses)}: extrapolations of "
                "these rest on a curve that did not predict the level it did not see, so they "
                "are less certain than their intervals say. More levels, or a quieter machine "
                f"(see the foreign CPU in the validity section), tighten them.{knob_note}",
                lead="A fit missed.",
                style="warning",
            )
        )
    if part.missing:
        blocks.append(
            Bullets(
                [
                    f"{QUANTITY_NAMES.get(q, q)}: not fitted ({why})"
                    for q, why in part.missing.items()
                ]
            )
        )
    return blocks


def _knob_step_note(part: KindAnalysis) -> str:
    """Why QPS at the target's knob may miss when the fixed knob's does not: the knob
    itself moved at the held-out level."""
    at_knob, fixed = part.fit("qps_per_core"), part.fit("fixed_qps_per_core")
    knob = part.fit("knob")
    if at_knob is None or fixed is None or knob is None:
        return ""
    if at_knob.holdout is None or at_knob.holdout.within:
        return ""
    if fixed.holdout is None or not fixed.holdout.within or knob.holdout is None:
        return ""
    return (
        f" QPS at the target's knob moves with that knob as well as with the rows, and the "
        f"knob needed at the held-out level was {knob.holdout.measured:,.0f} where its fit "
        f"expected {knob.holdout.predicted.value:,.0f} ({knob.holdout.relative_error:+.0%}): "
        f"at the fixed knob, the same query as the data grows, the fit was within "
        f"({fixed.holdout.relative_error:+.1%})."
    )


def _answers(record: CapacityRecord, part: KindAnalysis) -> list[Block]:
    a = part.answers
    target = target_of(record)
    if a is None or target is None:
        return [
            Paragraph(
                "No target_rows: the fits above are the answer; give one "
                "(`pgvbench plan --target-rows N`) for RAM, build, disk and cores."
            )
        ]
    items = [
        (
            "target",
            f"{a.target.rows:,} rows x {a.dim} dimensions ({a.extrapolation:,.1f}x the "
            f"largest level)",
        ),
        ("index", f"{bytes_range(a.index_bytes)}; {held_out_text(part.fit('index_bytes'))}"),
        ("index + heap", bytes_range(a.resident_bytes)),
        ("shared_buffers to stay resident", size_text(a.shared_buffers_bytes)),
        (
            "RAM serving / while rebuilding",
            f"{size_text(a.ram_serving_bytes)} / {size_text(a.ram_rebuild_bytes)}",
        ),
        (
            "build time",
            f"{seconds_range(a.build_seconds)}; {held_out_text(part.fit('build_seconds'))}",
        ),
        (
            "disk (with a second index during REINDEX)",
            f"{bytes_range(a.disk_bytes)} ({size_text(a.rebuild_disk_bytes.value)})",
        ),
    ]
    if a.build_memory_bytes is not None:
        verdict = {True: "enough", False: "not enough", None: "unknown"}[a.build_fits]
        have = size_text(a.maintenance_work_mem_bytes) if a.maintenance_work_mem_bytes else "?"
        items.append(
            (
                "maintenance_work_mem for the build",
                f"{size_text(a.build_memory_bytes)} (the levels ran with {have}: {verdict})",
            )
        )
    if a.knob is not None:
        items.append(
            (
                f"{KNOB.get(part.kind, 'knob')} for the recall target",
                f"{a.knob.value:,.0f} ({int_range(a.knob)}); {held_out_text(part.fit('knob'))}",
            )
        )
    if a.qps_per_core is not None:
        items.append(
            (
                "QPS per server core",
                f"{a.qps_per_core.value:,.0f}; {held_out_text(part.fit('qps_per_core'))}",
            )
        )
    if a.cores is not None and a.target.qps is not None:
        cores = f"{a.cores.cores:,}" if a.cores.cores is not None else "not reachable"
        servers = (
            f"; {a.cores.servers:,} servers of {a.cores.cores_per_server} cores"
            if a.cores.servers is not None and a.cores.cores_per_server
            else ""
        )
        items.append((f"cores for {a.target.qps:,.0f} QPS", cores + servers))
    if a.p99_ms is not None:
        bound = f" (bound {a.target.p99_ms:g} ms)" if a.target.p99_ms is not None else ""
        items.append(("p99 there", f"{a.p99_ms:,.1f} ms{bound}"))
    for quantity in BACKUP:
        fit = part.fit(quantity)
        if fit is not None:
            items.append(
                (
                    QUANTITY_NAMES[quantity],
                    f"{seconds_range(at_target(quantity, fit, a))}; {held_out_text(fit)}",
                )
            )
    blocks: list[Block] = [Heading(4, f"At the target: {a.target.rows:,} x {a.dim}")]
    if a.beyond_limit:
        blocks.append(
            Paragraph(beyond_text(a).rstrip(": ") + ".", lead="Extrapolation.", style="warning")
        )
    blocks.append(KeyValues(items))
    blocks.append(Bullets([r.text for r in kind_advice(record, part)]))
    return blocks


def _backups(record: CapacityRecord) -> list[Block]:
    timed = [level for level in record.levels if level.backup is not None]
    if record.backup_skipped == "external":
        return [
            Paragraph(
                "Backups were not timed: with --dsn pgvbench does not run "
                "pg_basebackup or create a scratch database on your server."
            )
        ]
    if not timed:
        return []
    rows = []
    flagged = []
    for level in timed:
        b = level.backup
        assert b is not None
        rows.append(
            [
                f"{level.rows:,}",
                f"{_secs(b.basebackup_seconds)} ({size_text(b.basebackup_bytes)})",
                f"{_secs(b.dump_seconds)} ({size_text(b.dump_bytes)})",
                _secs(b.restore_schema_seconds),
                _secs(b.restore_data_seconds),
                _secs(b.restore_index_seconds),
                _secs(b.restore_seconds),
                f"{b.restored_rows:,}",
                b.error or "",
            ]
        )
        flagged.append(b.error is not None or b.restored_rows != level.rows)
    jobs = timed[0].backup.jobs if timed[0].backup else 1
    settings = timed[0].backup.restore_settings if timed[0].backup else {}
    method = timed[0].backup.compression if timed[0].backup else None
    compression = f"--compress={method}" if method else "its default compression, gzip"
    with_settings = (
        " with " + ", ".join(f"{k} = {v}" for k, v in settings.items()) if settings else ""
    )
    return [
        Heading(3, "Backup and restore per level"),
        Paragraph(
            f"pg_basebackup copies the whole cluster (its size in brackets, this level's table "
            f"among the rest); pg_dump -Fd -j {jobs} ({compression}) dumps the level's table, "
            f"and pg_restore "
            f"-j {jobs} restores it into a scratch database in three timed sections: the table, "
            f"its rows (COPY) and its index (CREATE INDEX, the rebuild){with_settings}."
        ),
        Table(
            [
                "rows",
                "base backup s",
                "pg_dump s",
                "restore: table s",
                "rows s",
                "index s",
                "total s",
                "rows restored",
                "error",
            ],
            rows,
            flagged=flagged,
            numeric=frozenset(range(8)),
        ),
    ]


def _cache_tie(record: CapacityRecord, results: Results) -> list[Block]:
    """The memory cliff as the cache study measured it, when this run has one."""
    from ..cache.records import CacheStudy

    data = results.tuning.cache if results.tuning is not None else None
    if not isinstance(data, dict):
        return []
    rows = [r for r in CacheStudy.from_dict(data).rows if r.p99_ms is not None]
    inside = [r.p99_ms for r in rows if r.index_mb + r.heap_mb <= r.shared_buffers_mb]
    past = [r.p99_ms for r in rows if r.index_mb + r.heap_mb > r.shared_buffers_mb]
    if not inside or not past:
        return []
    best_in = min(v for v in inside if v is not None)
    best_out = min(v for v in past if v is not None)
    return [
        Paragraph(
            f"The cache study of this run measured the cliff itself: p99 {best_in:,.2f} ms with "
            f"index + heap within shared_buffers, {best_out:,.2f} ms past it (its best "
            "strategy each). Past the shared_buffers line on the memory chart, expect that.",
            lead="The memory cliff, measured.",
        )
    ]


def validity(record: CapacityRecord) -> list[str]:
    """Lines for the report's validity section."""
    lines: list[str] = []
    for part in analyse(record):
        name = KIND_NAME.get(part.kind, part.kind)
        for quantity, fit in part.fits.items():
            held = fit.holdout
            if held is not None and not held.within and quantity in (*ACCEPTANCE, *BACKUP):
                lines.append(
                    f"capacity, {name}: the {QUANTITY_NAMES.get(quantity, quantity)} fit missed "
                    f"the held-out (largest) level by {held.relative_error:+.1%} "
                    f"(tolerance ±{held.tolerance:.0%})"
                )
        if part.answers is not None and part.answers.beyond_limit:
            lines.append(
                f"capacity, {name}: the target is {part.answers.extrapolation:,.0f}x the largest "
                "level, beyond the 100x the fits are trusted for"
            )
    for level in record.levels:
        for ix in level.indexes:
            lat = ix.latency
            wide = spread(ix.window_qps)
            if wide is not None and wide > WINDOW_SPREAD:
                lines.append(
                    f"capacity, {level.rows:,} rows: its QPS windows spread {wide:.0%} "
                    "(standard deviation over mean): the machine's speed changed between them"
                )
            if lat is not None and (lat.foreign_cpu_cores or 0) > FOREIGN_CORES:
                lines.append(
                    f"capacity, {level.rows:,} rows: {lat.foreign_cpu_cores:.2f} cores of "
                    "foreign load during the QPS window (other processes on the host)"
                )
            if (ix.build_foreign_cores or 0) > FOREIGN_CORES:
                lines.append(
                    f"capacity, {level.rows:,} rows: {ix.build_foreign_cores:.2f} cores of "
                    "foreign load during the build: its wall time is stretched (the build "
                    "CPU-seconds fit is the steadier figure)"
                )
            if ix.kind == "hnsw" and ix.build_seconds is not None and not ix.graph_fits:
                lines.append(
                    f"capacity, {level.rows:,} rows: the HNSW graph no longer fit "
                    "maintenance_work_mem: the build slowed down, and the build-time fit mixes "
                    "two regimes"
                )
            if ix.reason is not None:
                lines.append(f"capacity, {level.rows:,} rows, {ix.kind}: {ix.reason}")
        foreign = level.backup.restore_index_foreign_cores if level.backup else None
        if foreign is not None and foreign > FOREIGN_CORES:
            lines.append(
                f"capacity, {level.rows:,} rows: {foreign:.2f} cores of foreign load during "
                "the restore's index rebuild"
            )
        if level.backup is not None and level.backup.error:
            lines.append(f"capacity, {level.rows:,} rows: backup failed: {level.backup.error}")
    if not record.complete:
        lines.append("capacity: the sweep did not finish every level")
    return lines


def spread(values: Sequence[float]) -> float | None:
    """Relative spread of a level's window QPS (standard deviation over mean)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


def _forms(fit: Fit) -> str:
    if len(fit.held_out_errors) > 1:
        others = ", ".join(f"{k} {v:.1%}" for k, v in fit.held_out_errors.items() if k != fit.form)
        return f"{fit.form} (vs {others})"
    return fit.form


def _value(quantity: str, value: float) -> str:
    if quantity.endswith("_bytes"):
        return size_text(value)
    if quantity.endswith("_seconds"):
        return secs_text(value)
    return format_sig(value)


def _secs(value: float | None) -> str:
    return format_sig(value) if value is not None else DASH
