"""The "Tuning for a target" report section (report.md / report.html, and tune.md /
tune.html on their own) and its validity lines. Reads a TuneRecord; no database, no
matplotlib (plots.py draws the figures this section shows).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...analysis.paired import PairedRatio
from ...report.document import Block, Bullets, Heading, Image, KeyValues, Paragraph, Table
from ...report.fmt import DASH, format_percent, format_qps, format_sig
from ...results import Results
from .advice import recommendations, unreachable_message, winner_margin
from .facts import (
    better,
    chosen,
    confirmed,
    mb,
    objective_value,
    runner_up,
    swapped,
    target_spec,
    winner_over_runner_up,
    winner_trial,
)
from .records import Evaluation, Trial, TuneRecord
from .spec import TuneSpec
from .words import (
    at_knob,
    budget_texts,
    objective_text,
    plural,
    reason_text,
    recall_low,
    recall_text,
    secs_text,
    size_text,
    target_text,
    where_text,
)

TITLE = "Tuning for a target"
TRADEOFF_FIGURE = "tune_tradeoff.png"
TRADEOFF_ALT = (
    "Every trial at its chosen knob: recall (lower bound) vs QPS and vs latency; filled: met "
    "every bound, hollow: missed one; the line is the Pareto front, the shaded area the target"
)
CONVERGENCE_FIGURE = "tune_convergence.png"
CONVERGENCE_ALT = "Best objective found so far vs tuning time, against the full grid's estimate"
_STOPS = {
    "trials": "the trial budget was used up",
    "time_budget": "the time budget (time_budget_s) ran out",
    "space_exhausted": "every configuration of the space was measured",
}
_NOTES = {
    "swapped_on_confirmation": "the search's first choice lost the interleaved confirmation "
    "beyond the noise, so winner and runner-up were swapped",
    "duplicates_proposed": "the optimiser proposed configurations it had already measured; "
    "they were answered from the first measurement, not rebuilt",
}


def report_blocks(record: TuneRecord, images: Sequence[Image], results: Results) -> list[Block]:
    """The section: the answer, the target, the winner, its confirmation, the runner-ups,
    every trial, the time spent against the grid and the method."""
    spec = target_spec(record)
    shown = {i.src: i for i in images}
    blocks: list[Block] = [Heading(2, TITLE)]
    if record.winner is None:
        blocks.append(Paragraph(unreachable_message(record), lead="No recommendation:",
                                style="warning"))  # fmt: skip
    else:
        texts = [r.text for r in recommendations(record)]
        blocks.append(Paragraph(texts[0], lead="Recommendation.", style="recommendation"))
        if len(texts) > 1:
            blocks.append(Bullets(texts[1:]))
        blocks.append(Paragraph("apply.sql and postgresql.conf beside this report apply it."))
    blocks.append(KeyValues(_target_items(record, spec, results)))
    if TRADEOFF_FIGURE in shown:
        blocks.append(shown[TRADEOFF_FIGURE])
    blocks += _winner_blocks(record, spec)
    blocks += _confirmation_blocks(record, spec)
    blocks += _runner_up_blocks(record, spec)
    blocks += [Heading(3, "Trials"), _trials_table(record, spec)]
    blocks += _time_blocks(record)
    if CONVERGENCE_FIGURE in shown:
        blocks.append(shown[CONVERGENCE_FIGURE])
    blocks += [Heading(3, "Method"), KeyValues(_method_items(record, spec))]
    notes = [_NOTES.get(n, n.replace("_", " ")) for n in record.notes]
    if notes:
        blocks += [Heading(3, "Notes"), Bullets(notes)]
    return blocks


def validity(record: TuneRecord) -> list[str]:
    """Lines for the report's Validity section: what weakens the recommendation."""
    lines: list[str] = []
    win = chosen(record)
    trial = winner_trial(record)
    if win is None or trial is None:
        return lines
    confirmation = record.confirmation
    if confirmation is None or confirmation.rounds == 0:
        lines.append(
            f"Tune: the winner {win.config.label} was not rebuilt and re-measured, so "
            "build-to-build variation may have picked it"
        )
    elif not confirmation.recall_holds and not swapped(record):
        lines.append(
            f"Tune: the rebuild of {win.config.label} missed the recall bound at the trial's "
            f"knob ({trial.evaluation.knob_value}); apply.sql uses the rebuild's "
            f"{win.knob_value}"
        )
    if 0 < win.rows < record.rows:
        lines.append(f"Tune: the winner was measured on {win.rows:,} of {record.rows:,} rows only")
    if win.latency is not None and win.latency.errors:
        lines.append(
            f"Tune: {plural(win.latency.errors, 'query')} failed while the winner was timed"
        )
    margin = winner_margin(record)
    if margin is not None and margin.noise is not None and not margin.decisive:
        lines.append(
            "Tune: winner and runner-up are within the noise of the confirmation on the "
            "objective; either would do"
        )
    return lines


# --------------------------------------------------------------------------- parts


def _target_items(record: TuneRecord, spec: TuneSpec, results: Results) -> list[tuple[str, str]]:
    items = [
        ("target", target_text(spec, record.k)),
        ("objective", objective_text(spec)),
    ]
    if spec.filter or record.filter:
        items.append(("filtered queries", _filter_text(record, spec)))
    data = f"{record.rows:,} rows x {record.dim} dimensions, {record.metric}"
    if results.dataset is not None:
        data = f"{results.dataset.name}: {data}"
    items.append(("data", data))
    server = (
        "your server (--dsn): server settings are recommendations only"
        if record.external
        else "pgvbench's embedded server"
    )
    items.append(("measured on", server))
    return items


def _filter_text(record: TuneRecord, spec: TuneSpec) -> str:
    """``label on category: category = $2, 2.1% of the rows match on average``."""
    summary = record.filter or {}
    condition, share = summary.get("condition"), summary.get("selectivity")
    if not isinstance(condition, str):
        return spec.filter or DASH
    text = f"{summary.get('predicate', spec.filter)} on {summary.get('attribute', '?')}: "
    text += condition
    if isinstance(share, int | float):
        text += f", {format_percent(share)} of the rows match on average"
    return text


def _evidence_items(ev: Evaluation, spec: TuneSpec, k: int) -> list[tuple[str, str]]:
    items = [("configuration", ev.config.label)]
    if ev.knob_value is not None:
        items.append(("query setting", f"{ev.config.knob} = {ev.knob_value}"))
    if ev.recall is not None:
        items.append(("recall", recall_text(ev.recall, k)))
    if ev.latency is not None:
        lat = ev.latency.percentile(spec.latency)
        items.append(("throughput", f"{format_qps(ev.latency.qps)} QPS {where_text(spec)}"))
        items.append(
            (spec.latency, f"{format_sig(lat)} ms (p50 {format_sig(ev.latency.p50_ms)} ms)")
        )
    if ev.build_seconds is not None:
        items.append(("build", f"{secs_text(ev.build_seconds)} over {ev.rows:,} rows"))
    items.append(("index", size_text(ev.index_bytes)))
    items.append(("memory", f"{size_text(ev.memory_bytes)} (index + table heap "
                            f"{size_text(ev.table_bytes)})"))  # fmt: skip
    return items


def _winner_blocks(record: TuneRecord, spec: TuneSpec) -> list[Block]:
    win, trial = chosen(record), winner_trial(record)
    if win is None or trial is None:
        return []
    items = _evidence_items(win, spec, record.k)
    items.insert(0, ("trial", f"{trial.number} ({trial.phase})"))
    return [Heading(3, "Winner"), KeyValues(items)]


def _ratio_text(ratio: PairedRatio | None, what: str) -> str:
    if ratio is None:
        return f"{what}: not measured"
    text = f"{what} winner / runner-up {ratio.ratio:.3f}"
    if ratio.low is not None and ratio.high is not None:
        text += f" ({ratio.level:.0%} interval {ratio.low:.3f}–{ratio.high:.3f})"
    return text


def _confirmation_blocks(record: TuneRecord, spec: TuneSpec) -> list[Block]:
    confirmation = record.confirmation
    if confirmation is None:
        return []
    trial = winner_trial(record)
    rebuilt = confirmed(record, trial.evaluation if trial is not None else None)
    text = (
        f"The winner was rebuilt and measured again with the runner-up in "
        f"{plural(confirmation.rounds, 'interleaved round')} of "
        f"{format_sig(confirmation.window_s)} s "
        "(a random order in each round, so drift and neighbours hit both alike): "
        f"{_ratio_text(winner_over_runner_up(record, 'qps'), 'QPS')}; "
        f"{_ratio_text(winner_over_runner_up(record, spec.latency), spec.latency)}."
    )
    if rebuilt is not None and rebuilt.recall is not None:
        text += (
            f" On the rebuild, recall's lower bound was {recall_low(rebuilt.recall):.3f} at "
            f"{rebuilt.config.knob} = {rebuilt.knob_value}"
        )
        text += (
            "." if confirmation.recall_holds or swapped(record) else " (it needed a higher knob)."
        )
    text += _spread_text(confirmation.build_spread, trial, rebuilt)
    return [Heading(3, "Confirmation"), Paragraph(text)]


def _spread_text(spread: float | None, trial: Trial | None, rebuilt: Evaluation | None) -> str:
    """The build margin: how far recall moved between the two builds, and what it cost."""
    if spread is None or rebuilt is None:
        return (
            " Build-to-build spread: not measured (no knob value measured on both builds), "
            "so apply.sql's knob carries no build margin."
        )
    text = (
        f" Between the search's build and the rebuild, mean recall differed by up to "
        f"{spread:.3f} near the chosen knob; a fresh build (yours) can differ as much, so "
        f"apply.sql's {rebuilt.config.knob} is the smallest whose lower bound on the "
        f"rebuild meets the target after losing {spread:.3f} (the build margin)"
    )
    searched = trial.evaluation.knob_value if trial is not None else None
    if searched is not None and rebuilt.knob_value is not None and rebuilt.knob_value > searched:
        return text + f": {rebuilt.knob_value}, up from the search's {searched}."
    return text + "."


def _distinct(record: TuneRecord) -> list[Trial]:
    """One trial per configuration: the full-size measurement when there are both."""
    out: dict[str, Trial] = {}
    for t in sorted(record.trials, key=lambda t: (t.phase == "confirm", t.number)):
        if t.evaluation.reason != "duplicate":
            out[t.evaluation.config.key] = t
    return list(out.values())


def _runner_up_blocks(record: TuneRecord, spec: TuneSpec) -> list[Block]:
    win = chosen(record)
    trials = [t for t in _distinct(record) if t.number != record.winner]
    if not trials:
        return []
    best = objective_value(win, spec) if win is not None else None
    win_trial = winner_trial(record)
    run = runner_up(record)

    def order(t: Trial) -> tuple[int, float]:
        value = objective_value(t.evaluation, spec)
        if value is None:
            return (2 if t.evaluation.reason == "recall_unreachable" else 1, 0.0)
        return (0, -value if spec.objective == "qps" else value)

    rows = []
    for t in sorted(trials, key=order)[:10]:
        ev = t.evaluation
        if t.number == record.runner_up and run is not None:
            why = _runner_up_why(record)
        elif ev.reason is not None:
            why = reason_text(ev.reason, ev, spec)
        else:
            why = _objective_why(ev, win_trial, best, spec)
        rows.append([at_knob(ev), *_figures(ev, spec), why])
    header = [
        "configuration",
        "recall low",
        "QPS",
        spec.latency + " ms",
        "memory MB",
        "why it lost",
    ]
    return [
        Heading(3, "Runner-ups and why they lost"),
        Table(header=header, rows=rows, numeric=frozenset({1, 2, 3, 4})),
    ]


def _runner_up_why(record: TuneRecord) -> str:
    margin = winner_margin(record)
    if margin is None:
        return "runner-up"
    if margin.noise is not None and not margin.decisive:
        return "runner-up, within the noise of the winner (see the recommendation)"
    return "runner-up: " + ("beaten beyond the noise" if margin.noise is not None else
                            "behind in one measurement each")  # fmt: skip


def _objective_why(
    ev: Evaluation, win_trial: Trial | None, best: float | None, spec: TuneSpec
) -> str:
    """Why a feasible trial outside the confirmation lost, on the value the search ranked by:
    its build timed interleaved with the reference build when it was (the QPS column is
    one window of its own, which on a busy machine can put it above the winner)."""
    unit = {"qps": " QPS", "memory": " MB"}.get(spec.objective, " ms")
    theirs = win_trial.evaluation.relative if win_trial is not None else None
    if ev.relative is not None and theirs is not None and spec.objective != "memory":
        mine, best_ranked = ev.relative.value, theirs.value
        if better(best_ranked, mine, spec):
            return (
                f"met the target; ranked below the winner: {format_sig(mine)}{unit} vs "
                f"{format_sig(best_ranked)}{unit}, each timed interleaved with the search's "
                "reference build"
            )
        return "met the target; ranked as high as the winner by the search, not confirmed"
    value = objective_value(ev, spec)
    if value is None or best is None:
        return "met the target; not timed against the winner"
    if not better(best, value, spec):
        return "met the target; as good as the winner on one window each, not confirmed"
    return f"met the target with {format_sig(value)}{unit} vs the winner's {format_sig(best)}{unit}"


def _figures(ev: Evaluation, spec: TuneSpec) -> list[str]:
    lat = ev.latency
    return [
        f"{recall_low(ev.recall):.3f}" if ev.recall is not None else DASH,
        format_qps(lat.qps) if lat is not None else DASH,
        format_sig(lat.percentile(spec.latency)) if lat is not None else DASH,
        format_sig(mb(ev.memory_bytes)),
    ]


def _trials_table(record: TuneRecord, spec: TuneSpec) -> Table:
    rows, flagged = [], []
    for t in sorted(record.trials, key=lambda t: t.number):
        ev = t.evaluation
        status = "meets the target" if ev.feasible else reason_text(ev.reason or "")
        if t.number == record.winner:
            status = "winner"
        elif t.number == record.runner_up:
            status = "runner-up"
        lat = ev.latency
        rows.append([
            str(t.number) + (" (resumed)" if t.resumed else ""),
            t.phase,
            ev.config.label,
            _knob_cell(ev),
            f"{ev.recall.mean:.3f}" if ev.recall is not None else DASH,
            f"{recall_low(ev.recall):.3f}" if ev.recall is not None else DASH,
            format_qps(lat.qps) if lat is not None else DASH,
            format_sig(lat.percentile(spec.latency)) if lat is not None else DASH,
            format_sig(ev.build_seconds) if ev.build_seconds is not None else DASH,
            format_sig(mb(ev.index_bytes)),
            status,
        ])  # fmt: skip
        flagged.append(not ev.feasible)
    header = ["#", "phase", "configuration", "knob", "recall mean", "recall low", "QPS",
              f"{spec.latency} ms", "build s", "index MB", "status"]  # fmt: skip
    return Table(header=header, rows=rows, flagged=flagged,
                 numeric=frozenset({3, 4, 5, 6, 7, 8, 9}))  # fmt: skip


def _knob_cell(ev: Evaluation) -> str:
    """The knob value meeting the bound; ``none ≤ 1000`` when none up to the top did."""
    if ev.knob_value is not None:
        return str(ev.knob_value)
    return f"none ≤ {max(p.value for p in ev.probes)}" if ev.probes else DASH


def _time_blocks(record: TuneRecord) -> list[Block]:
    items = [("this session", secs_text(record.elapsed_s))]
    if record.grid_estimate_s > 0:
        share = record.elapsed_s / record.grid_estimate_s
        items.append(
            ("the full grid (estimate)", f"{secs_text(record.grid_estimate_s)}: "
             f"{plural(record.grid_builds, 'build')}, {plural(record.grid_points, 'point')} "
             "(build, knob value), timed from this session's own builds and probes")
        )  # fmt: skip
        items.append(
            ("share", f"this session took {format_percent(share)} of the grid's estimated time")
        )
    return [Heading(3, "Time spent"), KeyValues(items)]


def _method_items(record: TuneRecord, spec: TuneSpec) -> list[tuple[str, str]]:
    builds = len(_distinct(record))
    items = [
        ("sampler", record.sampler or DASH),
        ("trials", f"{len(record.trials)} ({plural(builds, 'distinct build')}; "
                   f"{record.resumed_trials} resumed from an earlier run)"),
        ("stopped because", _STOPS.get(record.stop_reason, record.stop_reason)),
        ("query knob", "the smallest value meeting the recall bound, by bisection per build"),
    ]  # fmt: skip
    if spec.subsample:
        items.append(("subsample", f"explored on {spec.subsample:,} rows, the best "
                                   f"{spec.confirm_top} confirmed at full size"))  # fmt: skip
    budgets = budget_texts(spec)
    if budgets:
        items.append(("budgets", ", ".join(budgets)))
    if record.storage_path:
        items.append(("storage", f"{record.storage_path} (pgvbench tune --resume continues it)"))
    return items
