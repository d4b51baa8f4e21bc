"""What a tuning session recommends, in words: the winner with its evidence and its margin
over the runner-up (from the interleaved confirmation), the recall headroom, notes when the
winner sits at the edge of the searched space or needed a higher knob on its rebuild, the
memory to give it, and, when nothing met the target, the one paragraph that says why and
what to change. Reads a TuneRecord only; no database.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from ...advice_margin import (
    Margin,
    ahead_clause,
    difference_text,
    from_paired,
    from_single,
    noise_text,
    versus,
    within_noise,
)
from ...report.fmt import format_sig
from ..base import Recommendation
from .facts import (
    SHARED_BUFFERS_HEADROOM,
    chosen,
    knob_short,
    knob_top,
    mb,
    query_settings,
    resolved_space,
    runner_up,
    shared_buffers_bytes,
    size_step,
    swapped,
    target_spec,
    winner_over_runner_up,
    winner_trial,
)
from .records import Evaluation, TuneRecord
from .space import Space
from .spec import MAX_EF_SEARCH, TuneSpec
from .words import (
    at_knob,
    figures_text,
    knob_text,
    plural,
    reason_text,
    recall_low,
    secs_text,
    size_text,
    target_text,
)

__all__ = ["reason_text", "recommendations", "unreachable_message", "winner_margin"]

Evidence = dict[str, float | int | str]
_SEPARATES = 0.05  # a memory / build-time difference worth naming when QPS does not separate


def recommendations(record: TuneRecord) -> list[Recommendation]:
    """The winner and the notes on it; without a winner, the unreachable paragraph."""
    win = chosen(record)
    if record.winner is None or win is None:
        return [Recommendation(text=_capital(unreachable_message(record)), evidence=_unmet(record))]
    spec, space = target_spec(record), resolved_space(record)
    out = [_winner(record, win, spec)]
    out += _edges(win, space)
    out += [n for n in (_recall_rebuild(record, spec), _swap_note(record)) if n is not None]
    if 0 < win.rows < record.rows:
        out.append(
            Recommendation(
                text=f"{win.config.label} was measured on {win.rows:,} of the table's "
                f"{record.rows:,} rows: its build time and sizes at full size will be larger.",
                evidence={"rows_measured": win.rows, "rows": record.rows},
            )
        )
    out.append(_shared_buffers(record, win))
    return out


# --------------------------------------------------------------------------- the winner


def winner_margin(record: TuneRecord) -> Margin | None:
    """The winner over the runner-up on the objective: over the confirmation's interleaved
    rounds when there were any (the interval is the noise), else one measurement each."""
    spec = target_spec(record)
    win, run = chosen(record), runner_up(record)
    if win is None or run is None:
        return None
    if spec.objective == "memory":
        return from_single(run.memory_bytes, win.memory_bytes, basis="builds")
    ratio = winner_over_runner_up(record, spec.objective)
    if ratio is not None:
        return from_paired(ratio)
    if win.latency is None or run.latency is None:
        return None
    if spec.objective == "qps":
        return from_single(run.latency.qps, win.latency.qps) if run.latency.qps > 0 else None
    lat_run = run.latency.percentile(spec.latency)
    return from_single(lat_run, win.latency.percentile(spec.latency)) if lat_run > 0 else None


def _winner(record: TuneRecord, win: Evaluation, spec: TuneSpec) -> Recommendation:
    label = win.config.label
    evidence: Evidence = {"config": label, "knob": win.config.knob}
    if win.knob_value is not None:
        evidence["knob_value"] = win.knob_value
    settings = query_settings(record)
    with_text = " and ".join(f"{k} = {v}" for k, v in settings.items()) or knob_text(win)
    text = f"Use {label} with {with_text}: {figures_text(win, spec, record.k)}"
    evidence |= _figures(win, spec)
    if win.recall is not None:
        headroom = recall_low(win.recall) - spec.recall
        evidence["recall_headroom"] = round(headroom, 4)
        side = "above" if headroom >= 0 else "below"
        text += f"; its recall lower bound is {abs(headroom):.3f} {side} the {spec.recall:g} target"

    run = runner_up(record)
    margin = winner_margin(record)
    if run is None or margin is None:
        text += "; no other configuration met the target, so there is no runner-up to weigh it"
        evidence["margin_basis"] = "no runner-up"
    else:
        evidence |= {"runner_up": run.config.label, **margin.evidence()}
        evidence |= _figures(run, spec, "runner_up_")
        text += "; " + _versus_runner_up(win, run, margin, spec)
    change = {"index": win.config.kind, **{k: str(v) for k, v in win.config.params.items()}}
    change["storage"] = win.config.storage
    change.update(settings)
    return Recommendation(text=text + ".", evidence=evidence, config_change=change)


def _versus_runner_up(win: Evaluation, run: Evaluation, margin: Margin, spec: TuneSpec) -> str:
    other = at_knob(run)
    if margin.noise is not None and not margin.decisive:
        return within_noise(win.config.label, other, margin) + _separators(win, run)
    if spec.objective == "qps":
        return ahead_clause(other, margin, measure="QPS")
    if spec.objective == "memory":
        less = -margin.difference
        return (
            f"it needs {less:.0%} less memory than {other} ({size_text(win.memory_bytes)} vs "
            f"{size_text(run.memory_bytes)}, one build each)"
        )
    if margin.noise is None:
        return f"against {other}: {versus(margin, spec.latency)}"
    lower = "lower" if margin.difference < 0 else "higher"
    return (
        f"its {spec.latency} is {difference_text(margin).lstrip('+-')} {lower} than {other}'s "
        f"(noise {noise_text(margin)})"
    )


def _separators(win: Evaluation, run: Evaluation) -> str:
    """What separates two configurations QPS does not: memory, build time, index size."""
    parts = []
    pairs: list[tuple[str, float, float, Callable[[float], str]]] = [
        ("memory (index + heap)", win.memory_bytes, run.memory_bytes, size_text)
    ]
    if win.build_seconds is not None and run.build_seconds is not None:
        pairs.append(("build time", win.build_seconds, run.build_seconds, secs_text))
    for what, a, b, fmt in pairs:
        if max(a, b) > 0 and abs(a - b) / max(a, b) >= _SEPARATES:
            lighter, heavier = (win, run) if a < b else (run, win)
            parts.append(
                f"{lighter.config.label} has the smaller {what} ({fmt(min(a, b))} vs "
                f"{fmt(max(a, b))} for {heavier.config.label})"
            )
    if not parts:
        return "; nor do memory or build time separate them"
    return ": " + " and ".join(parts)


def _figures(ev: Evaluation, spec: TuneSpec, prefix: str = "") -> Evidence:
    out: Evidence = {
        f"{prefix}index_bytes": ev.index_bytes,
        f"{prefix}memory_bytes": ev.memory_bytes,
    }
    if ev.recall is not None:
        out[f"{prefix}recall_mean"] = round(ev.recall.mean, 4)
        out[f"{prefix}recall_low"] = round(recall_low(ev.recall), 4)
    if ev.latency is not None:
        out[f"{prefix}qps"] = round(ev.latency.qps, 1)
        out[f"{prefix}{spec.latency}_ms"] = round(ev.latency.percentile(spec.latency), 3)
    if ev.build_seconds is not None:
        out[f"{prefix}build_seconds"] = round(ev.build_seconds, 2)
    return out


# --------------------------------------------------------------------------- notes


def _edges(win: Evaluation, space: Space) -> list[Recommendation]:
    """The knob at the top of its ladder; a build parameter at an end of its searched range."""
    out = []
    config, knob = win.config, knob_short(win.config)
    top = knob_top(space, config)
    if win.knob_value is not None and top and win.knob_value >= top:
        raise_it = (
            f" or raise max_ef_search (now {top})"
            if config.kind == "hnsw" and top < MAX_EF_SEARCH
            else ""
        )
        out.append(
            Recommendation(
                text=f"The chosen {knob} = {win.knob_value} is the largest the search allowed: "
                f"{config.label} only just reaches the recall bound; a denser build may reach "
                f"it at a smaller {knob} and be faster, so widen the space{raise_it}.",
                evidence={"knob_value": win.knob_value, "knob_top": top},
            )
        )
    searched = {"m": space.m, "ef_construction": space.ef_construction, "lists": space.lists}
    for param, value in config.params.items():
        values = searched.get(param, ())
        if len(values) < 2 or value not in (min(values), max(values)):
            continue
        upward = value == max(values)
        which = f"{'above' if upward else 'below'} {value}"
        out.append(
            Recommendation(
                text=f"The best value is at the edge of the searched space: widen {param} "
                f"{which} (searched {', '.join(str(v) for v in sorted(values))}); a value "
                "beyond it was not measured and may do better.",
                evidence={
                    "parameter": param,
                    "value": value,
                    "searched_min": min(values),
                    "searched_max": max(values),
                },
            )
        )
    return out


def _recall_rebuild(record: TuneRecord, spec: TuneSpec) -> Recommendation | None:
    """The rebuild missed the recall bound at the trial's knob: apply.sql uses the higher."""
    confirmation, trial = record.confirmation, winner_trial(record)
    if confirmation is None or confirmation.recall_holds or trial is None or swapped(record):
        return None
    first, again = trial.evaluation, confirmation.winner
    knob = knob_short(first.config)
    evidence: Evidence = {"trial_knob_value": first.knob_value or 0}
    text = (
        f"The rebuild of {first.config.label} did not reach the recall bound at "
        f"{knob} = {first.knob_value}: graphs differ from build to build"
    )
    if again.knob_value is not None and again.recall is not None:
        evidence |= {"rebuild_knob_value": again.knob_value,
                     "rebuild_recall_low": round(recall_low(again.recall), 4)}  # fmt: skip
        text += (
            f", so apply.sql sets {knob} = {again.knob_value}, where the rebuild's lower bound "
            f"is {recall_low(again.recall):.3f} (target {spec.recall:g})"
        )
    else:
        text += "; the rebuild met it at no knob value tried, so the winner is fragile: "
        text += "measure it again before relying on it"
    return Recommendation(text=text + ".", evidence=evidence)


def _swap_note(record: TuneRecord) -> Recommendation | None:
    """The search's first choice lost the interleaved confirmation to the runner-up."""
    if not swapped(record):
        return None
    win, run = winner_trial(record), runner_up(record)
    if win is None or run is None:
        return None
    return Recommendation(
        text=f"The search ranked {run.config.label} first on single timed windows, but "
        f"measured interleaved with it {win.evaluation.config.label} was better beyond the "
        "noise, so the recommendation is the latter.",
        evidence={"search_first": run.config.label, "confirmed_first": win.evaluation.config.label},
    )


def _shared_buffers(record: TuneRecord, win: Evaluation) -> Recommendation:
    size = shared_buffers_bytes(win)
    step = size_step(win.memory_bytes * SHARED_BUFFERS_HEADROOM)
    where = (
        "a recommendation for your server, not applied nor measured here"
        if record.external
        else "sized from the measured bytes, not compared against other settings"
    )
    return Recommendation(
        text=f"Give shared_buffers at least {size_text(size)} so the index "
        f"({size_text(win.index_bytes)}) and the table ({size_text(win.table_bytes)}) stay in "
        f"PostgreSQL's cache (index + heap + {SHARED_BUFFERS_HEADROOM - 1:.0%}, rounded up to a "
        f"multiple of {size_text(step)}; {where}).",
        evidence={"shared_buffers_bytes": size, "memory_bytes": win.memory_bytes},
        config_change={"shared_buffers": f"{size // 1024**2}MB"},
    )


# --------------------------------------------------------------------------- no winner


def unreachable_message(record: TuneRecord) -> str:
    """One paragraph: no configuration met the target, which bound failed, the closest
    evaluation and what to change. Starts lower case (it follows ``pgvbench tune:``)."""
    spec, space = target_spec(record), resolved_space(record)
    best = record.best_unmet
    counts = Counter(t.evaluation.reason for t in record.trials if t.evaluation.reason)
    counts.pop("duplicate", None)
    if not record.trials:
        return (
            f"the session finished no trial (stopped: {record.stop_reason.replace('_', ' ')}), "
            "so nothing was measured against the target; raise time_budget_s or trials"
        )
    reason = best.reason if best is not None and best.reason else counts.most_common(1)[0][0]
    tally = _tally(counts, len(record.trials))
    if reason == "recall_unreachable":
        head = (
            f"no configuration in the space reaches recall {spec.recall:g} within {_limits(space)}"
        )
        if best is not None and best.recall is not None:
            low = recall_low(best.recall)
            head += (
                f"; best was {low:.3f} ({at_knob(best)}; {spec.confidence:.0%} lower bound, "
                f"mean {best.recall.mean:.3f})"
            )
            lower = f"lower the target to ≤ {math.floor(low * 1000) / 1000:g}"
        else:
            lower = "lower the target"
        fixes = [lower, "widen the space (larger m and ef_construction, more lists)"]
        if "hnsw" in space.kinds and space.max_ef_search < MAX_EF_SEARCH:
            fixes.append(f"raise max_ef_search (now {space.max_ef_search}; pgvector allows 1000)")
        return f"{head}. {tally} To get a recommendation: {_either(fixes)}."
    head = f"no configuration in the space meets {target_text(spec, record.k)}"
    if best is not None:
        head += f"; the closest was {at_knob(best)}: {reason_text(reason, best, spec)}"
    return f"{head}. {tally} To get a recommendation: {_either(_fixes(reason, spec, best))}."


def _fixes(reason: str, spec: TuneSpec, best: Evaluation | None) -> list[str]:
    if reason == "latency_over":
        bound = f"relax the {spec.latency} bound"
        if best is not None and best.latency is not None:
            bound += f" to ≥ {_sig(best.latency.percentile(spec.latency))} ms"
        return [bound, "lower the recall target (a smaller knob is faster)",
                "widen the space (halfvec storage, IVFFlat)"]  # fmt: skip
    if reason == "index_over":
        raise_it = "raise max_index_mb" + (
            f" to ≥ {_sig(mb(best.index_bytes))}" if best is not None else ""
        )
        return [raise_it, "add halfvec storage (it halves the index)", "lower m"]
    if reason == "build_over":
        raise_it = "raise max_build_seconds" + (
            f" to ≥ {_sig(best.build_seconds)}"
            if best is not None and best.build_seconds is not None
            else ""
        )
        return [raise_it, "lower ef_construction",
                "search max_parallel_maintenance_workers and maintenance_work_mem"]  # fmt: skip
    if reason == "memory_over":
        raise_it = "raise max_memory_mb" + (
            f" to ≥ {_sig(mb(best.memory_bytes))}" if best is not None else ""
        )
        return [raise_it, "add halfvec_column storage (it halves the table too)"]
    if reason == "build_failed":
        return ["raise maintenance_work_mem (the error is above)", "lower m"]
    return ["lower the target", "widen the space"]


def _sig(value: float) -> str:
    """Rounded up to 3 significant digits, so "raise it to X" admits the closest."""
    digits = 3 - 1 - math.floor(math.log10(abs(value))) if value > 0 else 0
    return format_sig(math.ceil(value * 10**digits) / 10**digits)


def _limits(space: Space) -> str:
    """``ef_search ≤ 1000`` / ``probes ≤ 64`` / both, for the kinds searched."""
    parts = []
    if "hnsw" in space.kinds:
        parts.append(f"ef_search ≤ {space.max_ef_search}")
    if "ivfflat" in space.kinds:
        probes = f"probes ≤ {space.max_probes}" if space.max_probes else "probes ≤ lists"
        parts.append(probes)
    if len(parts) == 2:
        return f"{parts[0]} (HNSW) and {parts[1]} (IVFFlat)"
    return parts[0] if parts else "the knob's range"


_SHORT = {
    "recall_unreachable": "missed the recall bound",
    "latency_over": "{was} over the latency bound",
    "index_over": "{was} over the index budget",
    "build_over": "{was} over the build-time budget",
    "memory_over": "{was} over the memory budget",
    "build_failed": "failed to build",
}


def _tally(counts: Counter[str], trials: int) -> str:
    """``Of 12 trials, 9 missed the recall bound and 3 were over the latency bound.``"""
    parts = [
        f"{n} " + _SHORT.get(r, r).format(was="was" if n == 1 else "were")
        for r, n in counts.most_common()
    ]
    if not parts:
        return f"{plural(trials, 'trial')} ran."
    return f"Of {plural(trials, 'trial')}, {_either(parts, 'and')}."


def _either(items: list[str], word: str = "or") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} {items[-1]}"


def _unmet(record: TuneRecord) -> Evidence:
    out: Evidence = {"trials": len(record.trials), "stop_reason": record.stop_reason}
    best = record.best_unmet
    if best is not None:
        out |= {"closest": best.config.label, "reason": best.reason or ""}
        out |= _figures(best, target_spec(record), "closest_")
    return out


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
