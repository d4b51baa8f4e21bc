"""Render a run's results as ``report.md`` and a self-contained ``report.html``.

The report is built once as a small document model (headings, paragraphs,
tables, ...) and then written twice, so the Markdown and HTML always say the
same thing. Both are rendered from a :class:`~pgvbench.results.Results` alone,
deterministically: the same results give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from .._atomic import write_bytes_atomic
from ..analysis import (
    fastest_at_recall,
    highest_recall,
    pareto_front,
    point_order_key,
    resolve_target_recall,
)
from ..analysis.scalability import (
    MIN_CLIENT_COUNTS,
    LoadSeries,
    clients_text,
    knee,
    littles_law_check,
    load_series,
    point_label,
    pool_params_text,
    pool_wait_ms_per_op,
    recommend_pool_size,
    resolve_slo,
)
from ..results import (
    ConcurrentSession,
    DatasetInfo,
    Environment,
    IndexBuild,
    Latency,
    LoadInfo,
    LoadPoint,
    Results,
    SweepPoint,
    describe_status,
)
from .document import Block, Bullets, Code, Heading, Image, KeyValues, Paragraph, Table
from .fmt import EXACT_KIND, format_params, format_qps, format_sig, recall_name
from .html import to_html
from .load_plots import (
    plot_load_timeseries,
    plot_p99_vs_clients,
    plot_pool_wait,
    plot_throughput_vs_clients,
)
from .markdown import to_markdown
from .sweep_plots import plot_build_cost, plot_latency, plot_recall_vs_qps

MD_NAME = "report.md"
HTML_NAME = "report.html"
_DASH = "—"  # shown for a value that was not measured


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    md: Path
    html: Path
    images: list[Path]


# --- entry point -------------------------------------------------------------------------

_Plotter = Callable[[Results, Path, float], Path | None]
_FIGURES: tuple[tuple[str, str, _Plotter], ...] = (
    (
        "recall_vs_qps.png",
        "Recall vs throughput",
        lambda r, p, t: plot_recall_vs_qps(r, p, target_recall=t),
    ),
    ("latency.png", "Latency vs recall", lambda r, p, t: plot_latency(r, p, target_recall=t)),
    ("build_cost.png", "Index build cost", lambda r, p, _t: plot_build_cost(r, p)),
)
# Concurrency figures; the float passed is the p99 SLO (ms).
_LOAD_FIGURES: tuple[tuple[str, str, _Plotter], ...] = (
    (
        "throughput_vs_clients.png",
        "Throughput vs clients (dashed: USL fit)",
        lambda r, p, _s: plot_throughput_vs_clients(r, p),
    ),
    (
        "p99_vs_clients.png",
        "Latency vs clients (p99 thick, p50 thin)",
        lambda r, p, s: plot_p99_vs_clients(r, p, slo_p99_ms=s),
    ),
    ("pool_wait.png", "Pool wait per operation", lambda r, p, _s: plot_pool_wait(r, p)),
    (
        "load_timeseries.png",
        "Per-second throughput and p99 at each series' largest client count",
        lambda r, p, s: plot_load_timeseries(r, p, slo_p99_ms=s),
    ),
)


def render_report(
    results: Results, out_dir: Path, *, target_recall: float | None = None
) -> ReportFiles:
    """Write figures, ``report.md`` and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = resolve_target_recall(results, target_recall)
    figures = _render_figures(results, out_dir, _FIGURES, target)
    load_figures = (
        _render_figures(results, out_dir, _LOAD_FIGURES, resolve_slo(results))
        if results.load_points
        else []
    )
    from .agents import render_agent_figures  # agents.py builds on this module's blocks

    agent_images = render_agent_figures(results, out_dir)
    from .tuning import tuning_figures  # the tuning sections build on this module's blocks

    tuning_images = tuning_figures(results, out_dir)
    blocks = build_document(
        results,
        target,
        [Image(p.name, alt) for p, alt in figures],
        load_images=[Image(p.name, alt) for p, alt in load_figures],
        agent_images=agent_images,
        tuning_images=tuning_images,
    )
    md_path, html_path = out_dir / MD_NAME, out_dir / HTML_NAME
    write_bytes_atomic(md_path, to_markdown(blocks).encode("utf-8"))
    write_bytes_atomic(html_path, to_html(blocks, _title(results), out_dir).encode("utf-8"))
    images = [p for p, _ in figures] + [p for p, _ in load_figures]
    images += [out_dir / image.src for image in [*agent_images, *tuning_images]]
    return ReportFiles(md=md_path, html=html_path, images=images)


def _render_figures(
    results: Results,
    out_dir: Path,
    plots: Sequence[tuple[str, str, _Plotter]],
    threshold: float,
) -> list[tuple[Path, str]]:
    drawn: list[tuple[Path, str]] = []
    for name, alt, plot in plots:
        path = plot(results, out_dir / name, threshold)
        if path is not None:
            drawn.append((path, alt))
    return drawn


# --- building the document ---------------------------------------------------------------


def build_document(
    results: Results,
    target: float,
    images: Sequence[Image],
    *,
    load_images: Sequence[Image] = (),
    agent_images: Sequence[Image] = (),
    tuning_images: Sequence[Image] = (),
) -> list[Block]:
    """The whole report, section by section."""
    from .agents import agent_blocks  # imported here: agents.py imports this module
    from .tuning import tuning_blocks

    agent = agent_blocks(results, agent_images)
    tuning = tuning_blocks(results, tuning_images)
    return [
        Heading(1, _title(results)),
        Paragraph(_timing(results)),
        *_status_section(results),
        Paragraph(
            _headline(results, target, has_agent=bool(agent)),
            lead="Recommendation.",
            style="recommendation",
        ),
        *_figures_section(images, has_load=bool(results.load_points), has_agent=bool(agent)),
        *_dataset_section(results.dataset),
        *_load_section(results.load),
        *_environment_section(results.environment),
        *_builds_section(results.indexes),
        *_sweep_section(results),
        *_concurrency_section(results, load_images),
        *agent,
        *tuning,
        *_validity_section(results),
        Heading(2, "Workload spec"),
        Code(json.dumps(results.spec, indent=2, sort_keys=True)),
    ]


def _title(results: Results) -> str:
    return f"pgvbench report: {results.run_name} ({describe_status(results)})"


def _timing(results: Results) -> str:
    if results.finished_at is None:
        return f"Started {results.started_at}; {describe_status(results)}."
    return f"Started {results.started_at}, finished {results.finished_at}."


def _status_section(results: Results) -> list[Block]:
    if results.status == "complete":
        return []
    blocks: list[Block] = [
        Paragraph(
            f"This run is {describe_status(results)}: the numbers below cover only what was "
            "measured "
            "before it stopped.",
            lead="Warning.",
            style="warning",
        )
    ]
    if results.failure:
        blocks.append(Code(results.failure))
    return blocks


def _figures_section(
    images: Sequence[Image], *, has_load: bool = False, has_agent: bool = False
) -> list[Block]:
    if not images and has_agent:
        where = "Concurrency and the agent sections" if has_load else "the agent sections"
        return [Heading(2, "Figures"), Paragraph(f"No sweep figures; see {where} below.")]
    if not images and has_load:
        text = "No sweep figures; the concurrency figures are under Concurrency."
        return [Heading(2, "Figures"), Paragraph(text)]
    if not images:
        return [Heading(2, "Figures"), Paragraph("No figures: the run recorded no measurements.")]
    return [Heading(2, "Figures"), *images]


# --- recommendation ----------------------------------------------------------------------


def _headline(results: Results, target: float, *, has_agent: bool) -> str:
    """The sweep's recommendation; an agent run without a sweep points to its own."""
    if not has_agent or results.runs:
        return recommendation(results, target)
    where = "Agent recommendations" if results.agent is not None else "Operations"
    return f"This run has no vector-search sweep; see {where} below."


def recommendation(results: Results, target: float) -> str:
    """One sentence: the fastest configuration reaching ``target``, with its numbers."""
    name = recall_name(results)
    best = fastest_at_recall(results.runs, target)
    if best is None:
        return _unreachable(results, name, target)
    return (
        f"At {name} ≥ {target:g} the fastest configuration is "
        f"{_describe(best, results)}: {_headline_numbers(best)}{_versus_exact(best, results)}."
    )


def _unreachable(results: Results, name: str, target: float) -> str:
    best = highest_recall(results.runs)
    if best is None or best.recall is None:
        return "No valid sweep point has a recall measurement, so nothing can be recommended."
    return (
        f"No configuration reaches {name} ≥ {target:g}; the highest recall reached is "
        f"{_recall_below(best.recall.mean, target)} by {_describe(best, results)} "
        f"({format_qps(best.qps)} QPS). Extend the sweep (higher ef_search / probes, "
        "or a bigger index) or lower the target."
    )


def _recall_below(value: float, target: float) -> str:
    """Enough decimals that a near miss (0.9496 vs 0.95) does not print as a hit."""
    for decimals in (3, 4, 5, 6):
        text = f"{value:.{decimals}f}"
        if float(text) < target:
            return text
    return f"{value:.6f}"


def _describe(point: SweepPoint, results: Results) -> str:
    """How a reader would name the configuration: build, query params, concurrency."""
    text = "the exact scan (no index)" if point.index_kind == EXACT_KIND else point.index
    if point.query_params:
        text += f" with {format_params(point.query_params)}"
    if _varies_concurrency(results):
        text += f" at concurrency {point.concurrency}"
    return text


def _headline_numbers(point: SweepPoint) -> str:
    assert point.recall is not None  # fastest_at_recall only returns measured points
    text = f"recall {point.recall.mean:.3f} (p5 {point.recall.p5:.3f}), {format_qps(point.qps)} QPS"
    if point.latency_ms is not None:
        text += f", p99 {format_sig(point.latency_ms.p99)} ms"
    return text


def _versus_exact(best: SweepPoint, results: Results) -> str:
    exact = _exact_baseline(results, best.concurrency)
    if best.index_kind == EXACT_KIND or exact is None or exact.qps <= 0:
        return ""
    return f" — {format_sig(best.qps / exact.qps, 2)}× the exact scan's QPS"


def _exact_baseline(results: Results, concurrency: int) -> SweepPoint | None:
    """The exact-scan point to compare against: same concurrency if there is one."""
    exact = [p for p in results.runs if p.index_kind == EXACT_KIND and p.valid and p.qps > 0]
    same = [p for p in exact if p.concurrency == concurrency] or exact
    return max(same, key=lambda p: p.qps, default=None)


def _varies_concurrency(results: Results) -> bool:
    return len({p.concurrency for p in results.runs}) > 1


# --- dataset, load, environment ----------------------------------------------------------


def _dataset_section(dataset: DatasetInfo | None) -> list[Block]:
    if dataset is None:
        return [Heading(2, "Dataset"), Paragraph("No dataset information was recorded.")]
    return [
        Heading(2, "Dataset"),
        KeyValues(
            [
                ("Name", dataset.name),
                ("Source", dataset.source),
                ("Vectors (n)", f"{dataset.n:,}"),
                ("Dimensions", str(dataset.dim)),
                ("Metric", dataset.metric),
                ("Seed", _DASH if dataset.seed is None else str(dataset.seed)),
                (
                    "Queries",
                    f"{dataset.n_queries:,} timed, {dataset.n_recall_queries:,} for recall",
                ),
                ("Ground truth", _ground_truth(dataset)),
            ]
        ),
    ]


def _ground_truth(dataset: DatasetInfo) -> str:
    gt = dataset.ground_truth
    if gt is None:
        return "not recorded"
    cached = ", cached" if gt.cached else ""
    return f"{gt.method}, k={gt.k}, {format_sig(gt.seconds)} s{cached}"


def _load_section(load: LoadInfo | None) -> list[Block]:
    if load is None:
        return []
    return [
        Heading(2, "Load"),
        KeyValues(
            [
                ("Table", load.table),
                ("Rows", f"{load.rows:,}"),
                ("Time", f"{format_sig(load.seconds)} s"),
                ("Rate", f"{format_qps(load.rows_per_second)} rows/s"),
                ("Table size", f"{format_sig(load.table_bytes / 1e6)} MB"),
            ]
        ),
    ]


def _environment_section(env: Environment) -> list[Block]:
    host = env.host
    clients = ", ".join(f"{k} {v}" for k, v in sorted(env.client_libraries.items()))
    blocks: list[Block] = [
        Heading(2, "Environment"),
        KeyValues(
            [
                ("PostgreSQL", f"{env.postgres_version} ({env.server_kind})"),
                ("pgvector", env.pgvector_version),
                (
                    "Host",
                    f"{host.cpu_model}, {host.cores} cores, "
                    f"{host.ram_bytes / 2**30:.1f} GiB RAM, {host.os}",
                ),
                ("pgvbench", f"{env.pgvbench_version} (commit {env.git_commit or 'unknown'})"),
                ("Python", env.python_version),
                ("Client libraries", clients or _DASH),
            ]
        ),
        Heading(3, "Non-default server settings"),
    ]
    settings = sorted(env.non_default_settings.items())
    if not settings:
        blocks.append(Paragraph("None recorded."))
    else:
        blocks.append(Table(["Setting", "Value"], [[k, v] for k, v in settings]))
    return blocks


# --- builds and sweep tables -------------------------------------------------------------


def _builds_section(builds: Sequence[IndexBuild]) -> list[Block]:
    if not builds:
        return [Heading(2, "Index builds"), Paragraph("No index was built.")]
    header = ["Index", "Kind", "Build s", "Size MB", "Phases", "Build settings", "Notices"]
    return [
        Heading(2, "Index builds"),
        Table(header, [_build_row(b) for b in builds], numeric=frozenset({2, 3})),
    ]


def _build_row(build: IndexBuild) -> list[str]:
    built = build.kind != EXACT_KIND
    return [
        build.label,
        build.kind,
        format_sig(build.build_seconds) if built else _DASH,
        format_sig(build.index_bytes / 1e6) if built else _DASH,
        "; ".join(f"{ph.phase} {format_sig(ph.seconds)} s" for ph in build.phases) or _DASH,
        ", ".join(f"{k}={v}" for k, v in sorted(build.build_settings.items())) or _DASH,
        "; ".join(build.notices) or _DASH,
    ]


_SWEEP_HEADER = [
    "Index", "Query params", "Conc.", "Recall mean", "Recall p5", "Recall min", "QPS",
    "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "Ops", "Errors", "Valid", "Front",
    "Notes",
]  # fmt: skip
_SWEEP_NUMERIC = frozenset(range(2, 14))


def _sweep_section(results: Results) -> list[Block]:
    points = sweep_order(results)
    if not points:
        return [Heading(2, "Sweep"), Paragraph("No sweep point was measured.")]
    front = {id(p) for p in pareto_front(points)}
    return [
        Heading(2, "Sweep"),
        Paragraph(
            "Front ● marks points on the recall/QPS Pareto front (valid points only). "
            "Rows marked ⚠ INVALID must not be used; the reason is in Notes and under Validity."
        ),
        Table(
            _SWEEP_HEADER,
            [_sweep_row(p, id(p) in front) for p in points],
            flagged=[not p.valid for p in points],
            numeric=_SWEEP_NUMERIC,
        ),
        *_repeats_blocks(points),
    ]


def _repeats_blocks(points: list[SweepPoint]) -> list[Block]:
    """With [experiment] repeats: how far the repeats of each point spread (noise)."""
    repeated = [p for p in points if len(p.samples) > 1]
    if not repeated:
        return []

    def spread(values: list[float]) -> str:
        return f"{format_sig(min(values))}–{format_sig(max(values))}" if values else _DASH

    rows = []
    for p in repeated:
        lats = [s.latency_ms for s in p.samples if s.latency_ms is not None]
        blocks = [s.shared_blks_per_query for s in p.samples if s.shared_blks_per_query]
        rows.append(
            [
                p.index,
                format_params(p.query_params) or _DASH,
                str(len(p.samples)),
                spread([s.qps for s in p.samples]),
                spread([lat.p50 for lat in lats]),
                spread([lat.p99 for lat in lats]),
                spread([b for b in blocks if b is not None]),
            ]
        )
    return [
        Heading(3, "Repeats"),
        Paragraph(
            "Each point was measured several times, interleaved with the other points of its "
            "build (A B A B); the table above merges the repeats. Ranges over the repeats "
            "show the noise within this run; `pgvbench compare` tests differences against it."
        ),
        Table(
            ["Index", "Query params", "Repeats", "QPS", "p50 ms", "p99 ms", "Blocks/query"],
            rows,
            numeric=frozenset(range(2, 7)),
        ),
    ]


def sweep_order(results: Results) -> list[SweepPoint]:
    """Points in build order (as built), then by query params and concurrency."""
    position = {b.label: i for i, b in enumerate(results.indexes)}
    unknown = len(position)  # points naming a build the run did not record go last
    return sorted(
        results.runs,
        key=lambda p: (position.get(p.index, unknown), _param_values(p), point_order_key(p)),
    )


def _param_values(point: SweepPoint) -> tuple[int, ...]:
    # numeric order (ef_search 40 before 100), which point_order_key's tuples also give
    return tuple(v for _, v in sorted(point.query_params.items()))


def _sweep_row(p: SweepPoint, on_front: bool) -> list[str]:
    recall = (
        [f"{p.recall.mean:.3f}", f"{p.recall.p5:.3f}", f"{p.recall.min:.3f}"]
        if p.recall is not None
        else [_DASH] * 3
    )
    lat = p.latency_ms
    latency = (
        [format_sig(v) for v in (lat.p50, lat.p95, lat.p99, lat.p999, lat.max)]
        if lat is not None
        else [_DASH] * 5
    )
    return [
        p.index,
        format_params(p.query_params) or _DASH,
        str(p.concurrency),
        *recall,
        format_qps(p.qps),
        *latency,
        f"{p.operations:,}",
        f"{p.errors:,}",
        "yes" if p.valid else "⚠ INVALID",
        "●" if on_front else "",
        _notes_text(p),
    ]


def _notes_text(point: SweepPoint) -> str:
    if point.notes:
        return "; ".join(point.notes)
    return "" if point.valid else "no reason recorded"


# --- concurrency (load points) -----------------------------------------------------------


def _concurrency_section(results: Results, images: Sequence[Image]) -> list[Block]:
    if not results.load_points:
        return []
    slo = resolve_slo(results)
    series = load_series(results.load_points)
    return [
        Heading(2, "Concurrency"),
        Paragraph("", lead=recommend_pool_size(results, slo), style="recommendation"),
        Paragraph(_knee_sentence(results.load_points, slo)),
        Paragraph(_load_setup(results, slo)),
        *images,
        *_load_points_table(series),
        *_usl_table(series),
        *_little_table(series),
    ]


def _load_order(results: Results) -> list[LoadPoint]:
    """Load points as the tables list them: series by series, by clients."""
    if not results.load_points:
        return []
    return [p for s in load_series(results.load_points) for p in s.points]


def _knee_sentence(points: Sequence[LoadPoint], slo: float) -> str:
    best = knee([p for p in points if p.engine == "python"], slo)
    reference = knee([p for p in points if p.engine == "pgbench"], slo)
    if best is None:
        text = f"No python-engine load point met p99 ≤ SLO {format_sig(slo)} ms."
    else:
        text = (
            f"Highest throughput within p99 ≤ SLO {format_sig(slo)} ms: {point_label(best)}, "
            f"{format_qps(best.qps)} QPS (p99 {format_sig(_p99(best))} ms)."
        )
    if reference is not None:
        text += (
            f" pgbench reference: {format_qps(reference.qps)} QPS at "
            f"{clients_text(reference.clients)} (p99 {format_sig(_p99(reference))} ms)."
        )
    return text


def _p99(point: LoadPoint) -> float:
    assert point.latency_ms is not None  # knee() only returns points with latency
    return point.latency_ms.p99


def _load_setup(results: Results, slo: float) -> str:
    """What was run, and the pool-size rule of thumb to read the numbers against."""
    first = results.load_points[0]
    params = format_params(first.query_params)
    target = f"{first.index} with {params}" if params else first.index
    durations = sorted({(p.duration_s, p.warmup_s) for p in results.load_points})
    timing = ", ".join(
        f"{format_sig(d, 2)} s after {format_sig(w, 2)} s warm-up" for d, w in durations
    )
    cores = results.environment.host.cores
    return (
        f"Load on {target}; each point measured for {timing}; SLO p99 ≤ {format_sig(slo)} ms. "
        f"Rule of thumb (HikariCP): pool size ≈ 2 × cores + effective spindles, "
        f"i.e. {2 * cores} + spindles on this {cores}-core host."
    )


_LOAD_HEADER = [
    "Engine", "Strategy", "Pool", "Clients", "Mode", "QPS", "p50 ms", "p95 ms", "p99 ms",
    "p99.9 ms", "Errors", "Dropped", "Pool wait ms/op", "Client CPU cores",
    "Server CPU cores", "Fidelity",
]  # fmt: skip
_OPEN_HEADER = ["Queue wait p99 ms", "Service p99 ms", "Sched. lag ms"]


def _load_points_table(series: Sequence[LoadSeries]) -> list[Block]:
    points = [p for s in series for p in s.points]
    open_loop = any(p.mode == "open" for p in points)
    header = [*_LOAD_HEADER, *(_OPEN_HEADER if open_loop else []), "Valid", "Notes"]
    rows = [_load_row(p, open_loop) for p in points]
    return [
        Heading(3, "Load points"),
        Paragraph(
            "Latency is measured by the client (open loop: from the intended start, so queueing "
            "counts). Pool wait is psycopg_pool's requests_wait_ms / operations. Fidelity is "
            "python QPS / pgbench QPS at the same SQL and clients. ⚠ suspect: the load "
            "generator may be the limit; ⚠ INVALID rows must not be used."
        ),
        Table(
            header,
            rows,
            flagged=[not p.valid for p in points],
            numeric=frozenset(range(3, len(header) - 2)) - {4},
        ),
    ]


def _load_row(p: LoadPoint, open_loop: bool) -> list[str]:
    wait = pool_wait_ms_per_op(p)
    row = [
        p.engine,
        p.strategy,
        pool_params_text(p.pool) or _DASH,
        str(p.clients),
        _mode_text(p),
        format_qps(p.qps),
        *_latency_cells(p.latency_ms, ("p50", "p95", "p99", "p999")),
        f"{p.errors:,}",
        f"{p.dropped:,}",
        _DASH if wait is None else format_sig(wait),
        _optional(p.client_cpu_cores, 2),
        _optional(p.server_cpu_cores, 2),
        _DASH if p.fidelity is None else f"{p.fidelity:.2f}",
    ]
    if open_loop:
        row += [
            *_latency_cells(p.queue_wait_ms, ("p99",)),
            *_latency_cells(p.service_ms, ("p99",)),
            _optional(p.schedule_lag_ms, 3),
        ]
    return [*row, _validity_word(p), _load_notes(p)]


def _mode_text(p: LoadPoint) -> str:
    if p.mode == "open":
        rate = f" {format_sig(p.target_rate)}/s" if p.target_rate else ""
        return f"open{rate}" + (f" {p.arrival}" if p.arrival else "")
    think = f", think {format_sig(p.think_time_ms)} ms" if p.think_time_ms else ""
    return f"{p.mode}{think}"


def _latency_cells(latency: Latency | None, fields: Sequence[str]) -> list[str]:
    if latency is None:
        return [_DASH] * len(fields)
    return [format_sig(float(getattr(latency, f))) for f in fields]


def _optional(value: float | None, digits: int) -> str:
    return _DASH if value is None else format_sig(value, digits)


def _validity_word(p: LoadPoint) -> str:
    if not p.valid:
        return "⚠ INVALID"
    return "⚠ suspect" if p.suspect else "yes"


def _load_notes(p: LoadPoint) -> str:
    notes = list(p.notes)
    if p.error_messages:
        message, count = max(p.error_messages.items(), key=lambda kv: (kv[1], kv[0]))
        notes.append(f"most frequent error ({count:,}×): {message}")
    if not notes and not p.valid:
        return "no reason recorded"
    return "; ".join(notes)


_USL_HEADER = ["Series", "Points", "γ QPS/client", "α", "β", "N*", "Peak QPS", "R²", "Note"]


def _usl_table(series: Sequence[LoadSeries]) -> list[Block]:
    fitted = [s for s in series if s.usl_eligible]
    intro = (
        "X(N) = γN / (1 + α(N−1) + βN(N−1)) fitted to the valid points of each python "
        "closed-loop series: α is contention, β coherency cost; throughput peaks at "
        "N* = √((1−α)/β). pgbench and open-loop series are not fitted."
    )
    blocks: list[Block] = [Heading(3, "Universal Scalability Law"), Paragraph(intro)]
    if not fitted:
        return [*blocks, Paragraph("No python closed-loop series to fit.")]
    rows = [_usl_row(s) for s in fitted]
    return [*blocks, Table(_USL_HEADER, rows, numeric=frozenset(range(1, 8)))]


def _usl_row(s: LoadSeries) -> list[str]:
    valid = s.valid_points
    fit = s.fit
    if fit is None:
        counts = len({p.clients for p in valid})
        note = (
            f"too few client counts ({counts}; needs {MIN_CLIENT_COUNTS})"
            if counts < MIN_CLIENT_COUNTS
            else "the fit did not converge"
        )
        return [s.label, str(len(valid)), *[_DASH] * 6, note]
    measured = max(p.clients for p in valid)
    if math.isinf(fit.n_star):
        n_star, note = "∞", "no coherency penalty: throughput levels off, no peak"
    else:
        n_star = format_sig(fit.n_star)
        note = "peak beyond the measured clients" if fit.n_star > measured else ""
    peak = "∞" if math.isinf(fit.peak_qps) else format_qps(fit.peak_qps)
    return [
        s.label,
        str(fit.points),
        format_sig(fit.gamma),
        format_sig(fit.alpha),
        format_sig(fit.beta),
        n_star,
        peak + (" (ceiling)" if math.isinf(fit.n_star) and fit.alpha > 0 else ""),
        f"{fit.r_squared:.3f}",
        note,
    ]


def _count(value: float) -> str:
    """Clients as a count (16, not 16.0), unless think time made it fractional."""
    return str(int(value)) if value.is_integer() else format_sig(value)


_LITTLE_HEADER = ["Series", "Clients", "QPS", "Mean ms", "L = X·W", "Expected", "Ratio", "Note"]


def _little_table(series: Sequence[LoadSeries]) -> list[Block]:
    rows: list[list[str]] = []
    for s in series:
        for p in s.points:
            check = littles_law_check(p)
            if check is None or p.latency_ms is None:
                continue
            note = check.note or ("open loop: informational" if p.mode == "open" else "")
            rows.append(
                [
                    s.label,
                    str(p.clients),
                    format_qps(p.qps),
                    format_sig(p.latency_ms.mean),
                    format_sig(check.in_flight),
                    _count(check.expected),
                    "—" if math.isnan(check.ratio) else f"{check.ratio:.2f}",
                    note,
                ]
            )
    intro = (
        "Little's law: operations in flight L = throughput × mean latency. In a closed loop "
        "each client always has one operation in flight unless it is thinking, so L should "
        "match the busy clients (Expected); a ratio off by more than 20% is noted."
    )
    blocks: list[Block] = [Heading(3, "Little's law cross-check"), Paragraph(intro)]
    if not rows:
        return [*blocks, Paragraph("No load point has both throughput and latency.")]
    return [*blocks, Table(_LITTLE_HEADER, rows, numeric=frozenset(range(1, 7)))]


# --- validity ----------------------------------------------------------------------------


def _validity_section(results: Results) -> list[Block]:
    items = [_point_validity(p, results) for p in sweep_order(results)]
    items += [
        f"{b.label} build: notice — {notice}" for b in results.indexes for notice in b.notices
    ]
    items += [_load_point_validity(p) for p in _load_order(results)]
    from .agents import filtered_validity  # imported here: agents.py imports this module

    agent_lines, agent_summary = filtered_validity(results)
    concurrent_lines, concurrent_summary = _concurrent_validity(results)
    lines = [item for item in [*concurrent_lines, *items, *agent_lines] if item]
    if not lines:
        if results.runs:
            summary = f"All {len(results.runs)} sweep points are valid; there are no notes."
            if results.load_points:
                summary += f" All {len(results.load_points)} load points are valid."
        elif results.load_points:
            summary = f"All {len(results.load_points)} load points are valid; there are no notes."
        else:
            summary = "Nothing was flagged; there are no notes."
        return [Heading(2, "Validity"), Paragraph(summary + agent_summary)]
    invalid = sum(not p.valid for p in results.runs)
    summary = f"Invalid sweep points: {invalid} of {len(results.runs)}." if results.runs else ""
    if results.load_points:
        summary += " " + _load_validity_summary(results.load_points)
    summary = f"{concurrent_summary} {summary}{agent_summary}".strip()
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
    name = _describe(point, results)
    if not point.valid:
        return f"{name}: INVALID — {_notes_text(point)}"
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


# --- Markdown ----------------------------------------------------------------------------
