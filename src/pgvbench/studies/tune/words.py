"""The tuner's phrases shared by advice, apply.sql, postgresql.conf and the report: the
target, the load it was measured at, sizes and durations, one evaluation's figures, and
why a configuration was not a candidate (reason codes from records.REASONS). No database.
"""

from __future__ import annotations

from ...recall_records import Recall
from ...report.fmt import format_qps, format_sig
from .facts import knob_short, mb
from .records import Evaluation
from .spec import TuneSpec

OBJECTIVES = {"qps": "the most QPS", "p99": "the lowest {latency}", "memory": "the least memory"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 client`` / ``8 clients`` / ``1,000 queries`` (``many``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def size_text(num_bytes: float) -> str:
    """``45 MB`` / ``1.2 GB`` / ``850 kB``."""
    if num_bytes >= 1024**3:
        return f"{format_sig(num_bytes / 1024**3)} GB"
    if num_bytes >= 1024**2:
        return f"{format_sig(mb(num_bytes))} MB"
    return f"{format_sig(num_bytes / 1024)} kB"


def secs_text(seconds: float) -> str:
    """``12.3 s`` / ``4.5 min`` / ``6.2 h``."""
    if seconds >= 7200:
        return f"{format_sig(seconds / 3600, 2)} h"
    if seconds >= 120:
        return f"{format_sig(seconds / 60, 2)} min"
    return f"{format_sig(seconds)} s"


def ms_text(ms: float) -> str:
    return f"{format_sig(ms)} ms"


def where_text(spec: TuneSpec) -> str:
    """The load the latency was measured at: ``at 8 clients`` / ``at 200 queries/s``."""
    if spec.rate is not None:
        return f"at {format_sig(spec.rate)} queries/s (open loop)"
    return f"at {plural(spec.clients, 'client')}"


def objective_text(spec: TuneSpec) -> str:
    return OBJECTIVES.get(spec.objective, spec.objective).format(latency=spec.latency)


def target_text(spec: TuneSpec, k: int) -> str:
    """``recall@10 ≥ 0.95 (95% lower bound) and p99 ≤ 10 ms at 8 clients``, budgets after."""
    text = f"recall@{k} ≥ {spec.recall:g} ({spec.confidence:.0%} lower bound)"
    if spec.latency_ms is not None:
        text += f" and {spec.latency} ≤ {spec.latency_ms:g} ms {where_text(spec)}"
    budgets = budget_texts(spec)
    if budgets:
        text += ", " + ", ".join(budgets)
    return text


def budget_texts(spec: TuneSpec) -> list[str]:
    out = []
    if spec.max_index_mb is not None:
        out.append(f"index ≤ {spec.max_index_mb:g} MB")
    if spec.max_build_seconds is not None:
        out.append(f"build ≤ {secs_text(spec.max_build_seconds)}")
    if spec.max_memory_mb is not None:
        out.append(f"index + heap ≤ {spec.max_memory_mb:g} MB")
    return out


def recall_low(recall: Recall) -> float:
    """The value the recall bound is checked against: the lower bound, else the mean."""
    return recall.mean if recall.low is None else min(recall.low, recall.mean)


def knob_text(evaluation: Evaluation, value: int | None = None) -> str:
    """``hnsw.ef_search = 40`` (the evaluation's knob value unless ``value`` is given)."""
    shown = evaluation.knob_value if value is None else value
    return f"{evaluation.config.knob} = {shown}"


def at_knob(evaluation: Evaluation) -> str:
    """``hnsw m=16 efc=64 at ef_search=40``: a configuration and its knob value, short."""
    value = evaluation.knob_value
    if value is None and evaluation.probes:
        value = max(p.value for p in evaluation.probes)
    if value is None:
        return evaluation.config.label
    return f"{evaluation.config.label} at {knob_short(evaluation.config)}={value}"


def recall_text(recall: Recall, k: int) -> str:
    """``recall@10 0.962 (lower bound 0.955 over 1,000 queries)``."""
    over = f" over {plural(recall.queries, 'query', 'queries')}" if recall.queries else ""
    return f"recall@{k} {recall.mean:.3f} (lower bound {recall_low(recall):.3f}{over})"


def figures_text(evaluation: Evaluation, spec: TuneSpec, k: int) -> str:
    """One evaluation's evidence: recall, QPS and the target percentile at the target's
    load, build time, index size and memory (index + heap)."""
    parts = []
    if evaluation.recall is not None:
        parts.append(recall_text(evaluation.recall, k))
    latency = evaluation.latency
    if latency is not None:
        lat = ms_text(latency.percentile(spec.latency))
        parts.append(f"{format_qps(latency.qps)} QPS and {spec.latency} {lat} {where_text(spec)}")
    if evaluation.build_seconds is not None:
        parts.append(f"built in {secs_text(evaluation.build_seconds)}")
    parts.append(
        f"index {size_text(evaluation.index_bytes)}, memory {size_text(evaluation.memory_bytes)} "
        "(index + heap)"
    )
    return ", ".join(parts)


_REASONS = {
    "recall_unreachable": "missed the recall bound even at the largest query knob allowed",
    "latency_over": "over the latency bound at the smallest knob that meets recall",
    "index_over": "index over the max_index_mb budget",
    "build_over": "build over the max_build_seconds budget",
    "memory_over": "index + heap over the max_memory_mb budget",
    "build_failed": "the build failed",
    "duplicate": "a configuration already measured, proposed again (not rebuilt)",
}


def reason_text(
    reason: str, evaluation: Evaluation | None = None, spec: TuneSpec | None = None
) -> str:
    """Why a configuration is not a candidate, in words; with its evaluation and the target,
    the figures that failed against the bound (``p99 7.2 ms > 5 ms at ef_search=40``)."""
    base = _REASONS.get(reason, reason.replace("_", " "))
    if evaluation is None or spec is None:
        return base
    figures = _failed_figures(reason, evaluation, spec)
    return f"{base}: {figures}" if figures else base


def _failed_figures(reason: str, ev: Evaluation, spec: TuneSpec) -> str:
    knob = knob_short(ev.config)
    if reason == "recall_unreachable" and ev.recall is not None:
        top = max((p.value for p in ev.probes), default=ev.knob_value)
        at = f" at {knob}={top}" if top is not None else ""
        return f"lower bound {recall_low(ev.recall):.3f} < {spec.recall:g}{at}"
    if reason == "latency_over" and ev.latency is not None and spec.latency_ms is not None:
        lat = ev.latency.percentile(spec.latency)
        return f"{spec.latency} {ms_text(lat)} > {spec.latency_ms:g} ms at {knob}={ev.knob_value}"
    if reason == "index_over" and spec.max_index_mb is not None:
        return f"{size_text(ev.index_bytes)} > {spec.max_index_mb:g} MB"
    if reason == "build_over" and spec.max_build_seconds is not None:
        took = secs_text(ev.build_seconds) if ev.build_seconds is not None else "it"
        return f"{took} > {secs_text(spec.max_build_seconds)}"
    if reason == "memory_over" and spec.max_memory_mb is not None:
        return f"{size_text(ev.memory_bytes)} > {spec.max_memory_mb:g} MB"
    if reason == "build_failed" and ev.error:
        return ev.error.strip().splitlines()[0]
    return ""
