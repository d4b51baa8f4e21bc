"""What a filtered-search comparison recommends: the winner of each bucket, the under-fill
without iterative scan, recall lost to strict_order, and the rows that do not count.

Each sentence comes with the figures it rests on (``Recommendation.evidence``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...advice_margin import (
    Margin,
    difference_text,
    from_recall,
    from_rounds,
    from_samples,
    from_single,
    noise_text,
    within_noise,
)
from ..base import Recommendation
from .bounds import bucket_subject
from .notes import INVALIDATING
from .ranking import (
    FILL_TARGET,
    RECALL_TARGET,
    LatencyKey,
    hot_alternative,
    latency_of,
    ranked,
)
from .records import BucketInfo, FilteredComparison, FilteredRow, arm_name

_STRICT_LOSS = 0.02  # recall strict_order may lose to relaxed_order before it is worth a word
_INVALID_LISTED = 4


def advice(
    comparison: FilteredComparison,
    *,
    recall_target: float = RECALL_TARGET,
    fill_target: float = FILL_TARGET,
    latency: LatencyKey = "p99",
) -> list[Recommendation]:
    """The winner of each bucket, under-fill, strict_order's recall loss, invalid rows."""
    out = _bucket_winners(comparison, recall_target, fill_target, latency)
    out += _under_fill(comparison, fill_target)
    out += _strict_loss(comparison)
    out += _hot_scope(comparison)
    out += _invalid(comparison)
    return out


def summary_sentences(
    comparison: FilteredComparison,
    *,
    recall_target: float = RECALL_TARGET,
    fill_target: float = FILL_TARGET,
    latency: LatencyKey = "p99",
) -> list[str]:
    """Plain sentences for the report: the winner of each bucket, under-fill, invalid rows."""
    found = advice(
        comparison, recall_target=recall_target, fill_target=fill_target, latency=latency
    )
    return [r.text for r in found]


def _bucket_winners(
    comparison: FilteredComparison, recall_target: float, fill_target: float, key: LatencyKey
) -> list[Recommendation]:
    out: list[Recommendation] = []
    for info in comparison.buckets:
        if info.queries == 0:
            continue
        best = ranked(comparison, info.label, recall_target, fill_target, key)
        subject = _subject(comparison, info)
        evidence: dict[str, float | int | str] = {"bucket": info.label, "agents": info.agents}
        if not best:
            rows = [r for r in comparison.rows if r.bucket == info.label and r.valid]
            top = max(rows, key=lambda r: r.recall_mean or 0.0, default=None)
            tail = ""
            if top is not None and top.recall_mean is not None and top.fill_mean is not None:
                tail = f" (best recall {top.recall_mean:.2f}, fill {top.fill_mean:.2f}: {top.arm})"
                evidence |= {
                    "best_strategy": top.arm,
                    "best_recall_mean": top.recall_mean,
                    "best_fill_mean": top.fill_mean,
                }
            text = (
                f"{subject}, no strategy reached recall >= {recall_target:.2f} with fill >= "
                f"{fill_target:.2f}{tail}"
            )
            hot_row = hot_alternative(
                comparison, info.label, recall_target=recall_target, fill_target=fill_target,
                key=key,
            )  # fmt: skip
            if hot_row is not None:
                text += "; " + _hot_clause(comparison, hot_row, key)
            text += "."
            evidence |= {"recall_target": recall_target, "fill_target": fill_target}
            out.append(Recommendation(text=text, evidence=evidence))
            continue
        win = best[0]
        scope = ""  # partial_hot (hot labels only) never wins a bucket: see _hot_clause
        figures = (
            f"recall {win.recall_mean:.2f}, fill {win.fill_mean:.2f}, "
            f"{key} {_ms(latency_of(win, key))}"
        )
        text = f"{subject}, {win.arm}{scope} wins: {figures}"
        evidence |= {"strategy": win.arm, **_figures(win, key)}
        if win.ef_search is not None:
            evidence["ef_search"] = win.ef_search
        if len(best) > 1:
            nxt = best[1]
            margin = latency_margin(win, nxt, key)
            evidence |= {"next_strategy": nxt.arm, **_figures(nxt, key, prefix="next_")}
            evidence |= margin.evidence()
            if margin.noise is not None and not margin.decisive:
                text = (
                    f"{subject}, "
                    + within_noise(f"{win.arm}{scope}", nxt.arm, margin)
                    + f" ({win.arm}: {figures}; {nxt.arm}: {key} "
                    f"{_ms(latency_of(nxt, key))})"
                )
            else:
                text += f"; next {nxt.arm} at {_ms(latency_of(nxt, key))}, {_slower(margin)}"
        hot_row = hot_alternative(
            comparison, info.label, recall_target=recall_target, fill_target=fill_target, key=key
        )
        if hot_row is not None:
            text += "; " + _hot_clause(comparison, hot_row, key)
            evidence |= {"hot_only_strategy": hot_row.arm, **_figures(hot_row, key, "hot_")}
        out.append(Recommendation(text=text + ".", evidence=evidence))
    return out


def _hot_clause(comparison: FilteredComparison, row: FilteredRow, key: LatencyKey) -> str:
    """The partial-index alternative for the bucket's commonest labels (it serves no other)."""
    who = "agents" if comparison.source == "agents" else "labels"
    return (
        f"for its hot {who} alone, {row.arm} (a partial index per {who[:-1]}) is faster at "
        f"{_ms(latency_of(row, key))} (recall {row.recall_mean:.2f}), but serves no other "
        f"{who[:-1]}"
    )


def _subject(comparison: FilteredComparison, info: BucketInfo) -> str:
    if comparison.source == "vectors":
        text = bucket_subject(info, info.label)
        return "For " + text[0].lower() + text[1:]
    return f"For agents with {info.label} of memories ({info.agents} agents)"


def latency_margin(win: FilteredRow, nxt: FilteredRow, key: LatencyKey) -> Margin:
    """How much slower ``nxt`` is than ``win`` at ``key``: over the paired rounds when the two
    were timed interleaved, else against the spread of each one's own windows (a single
    figure each in files written before windows were recorded)."""
    if nxt.arm in win.paired_with:
        paired = _paired_windows(win, nxt, key)
        if paired is not None:
            return paired
    a, b = _windows(win, key), _windows(nxt, key)
    if len(a) >= 2 and len(b) >= 2:
        return from_samples(a, b, basis="windows")
    return from_single(latency_of(win, key) or 0.0, latency_of(nxt, key) or 0.0)


def runner_up_clause(
    comparison: FilteredComparison,
    bucket: str,
    *,
    recall_target: float = RECALL_TARGET,
    fill_target: float = FILL_TARGET,
    key: LatencyKey = "p99",
) -> str:
    """For a bucket's winner line elsewhere (the report): how it compares with the next
    eligible strategy, e.g. ``next hnsw_relaxed +15% slower (noise ±4.0% over 4 windows)``
    or ``within the noise of hnsw_relaxed (...)``; empty when nothing else qualified."""
    best = ranked(comparison, bucket, recall_target, fill_target, key)
    if len(best) < 2:
        return ""
    win, nxt = best[0], best[1]
    margin = latency_margin(win, nxt, key)
    if margin.noise is not None and not margin.decisive:
        return (
            f"within the noise of this run with {nxt.arm} ({difference_text(margin)}, "
            f"noise {noise_text(margin)})"
        )
    return f"next {nxt.arm} {_slower(margin)}"


def _windows(row: FilteredRow, key: LatencyKey) -> list[float]:
    values: Sequence[float | None] = getattr(row, f"window_{key}_ms")
    return [v for v in values if v is not None and v > 0]


def _paired_windows(win: FilteredRow, nxt: FilteredRow, key: LatencyKey) -> Margin | None:
    """The margin over the rounds both ran in (window i of each is round i)."""
    a: Sequence[float | None] = getattr(win, f"window_{key}_ms")
    b: Sequence[float | None] = getattr(nxt, f"window_{key}_ms")
    rounds = min(len(a), len(b))
    if rounds < 2:
        return None
    nan = float("nan")  # a window that completed no query pairs with nothing
    try:
        return from_rounds(
            [nan if v is None else v for v in a[:rounds]],
            [nan if v is None else v for v in b[:rounds]],
        )
    except ValueError:  # no round in which both completed a query
        return None


def _slower(margin: Margin) -> str:
    """``+15% slower (noise ±4.0% over 4 windows)``."""
    if margin.noise is None:
        return f"{difference_text(margin)} in one window each (no spread measured)"
    return f"{difference_text(margin)} slower (noise {noise_text(margin)})"


def _under_fill(comparison: FilteredComparison, fill_target: float) -> list[Recommendation]:
    plain = [
        r
        for r in comparison.rows
        if r.strategy == "hnsw_plain" and r.fill_mean is not None and r.fill_mean < fill_target
    ]
    if not plain:
        return []
    parts = ", ".join(
        f"{r.bucket}{'' if r.ef_search is None else f' at ef_search {r.ef_search}'}: fill "
        f"{r.fill_mean:.2f} (min {r.fill_min or 0.0:.2f})"
        for r in plain
    )
    ef = "swept" if comparison.swept else str(comparison.ef_search)
    text = (
        f"Without iterative scan (hnsw_plain, ef_search {ef}) the filter "
        f"leaves fewer than k rows: {parts}."
    )
    evidence: dict[str, float | int | str] = {"ef_search": comparison.ef_search}
    for r in plain:
        assert r.fill_mean is not None  # selected above
        evidence[f"fill_mean[{r.bucket}]"] = r.fill_mean
        evidence[f"fill_min[{r.bucket}]"] = r.fill_min or 0.0
    return [Recommendation(text=text, evidence=evidence)]


def _strict_loss(comparison: FilteredComparison) -> list[Recommendation]:
    out: list[Recommendation] = []
    efs: list[int | None] = list(comparison.ef_values) if comparison.swept else [None]
    for info, ef in [(i, e) for i in comparison.buckets for e in efs]:
        strict = comparison.row(_arm("hnsw_strict", ef), info.label)
        relaxed = comparison.row(_arm("hnsw_relaxed", ef), info.label)
        if (
            strict is not None
            and relaxed is not None
            and strict.recall_mean is not None
            and relaxed.recall_mean is not None
            and strict.recall_mean < relaxed.recall_mean - _STRICT_LOSS
        ):
            evidence: dict[str, float | int | str] = {
                "bucket": info.label,
                "strict_recall_mean": strict.recall_mean,
                "relaxed_recall_mean": relaxed.recall_mean,
            }
            at = "" if ef is None else f" at ef_search {ef}"
            subject = _subject(comparison, info).split(" (")[0] + at
            paired = len(strict.recall_per_query) == len(relaxed.recall_per_query) > 1
            bound = ""
            if paired:
                margin = from_recall(relaxed.recall_per_query, strict.recall_per_query)
                evidence |= margin.evidence()
                if not margin.decisive:
                    text = (
                        f"{subject}, "
                        + within_noise("strict_order", "relaxed_order", margin)
                        + f" (recall {strict.recall_mean:.2f} vs {relaxed.recall_mean:.2f})."
                    )
                    out.append(Recommendation(text=text, evidence=evidence))
                    continue
                bound = f", {difference_text(margin)} (noise {noise_text(margin)})"
            text = (
                f"{subject} strict_order lost recall against "
                f"relaxed_order: {strict.recall_mean:.2f} vs {relaxed.recall_mean:.2f}{bound} "
                "(it skips candidates nearer than one the filter already dropped)."
            )
            out.append(Recommendation(text=text, evidence=evidence))
    return out


def _arm(strategy: str, ef: int | None) -> str:
    return strategy if ef is None else arm_name(strategy, ef)


def _hot_scope(comparison: FilteredComparison) -> list[Recommendation]:
    hot = [r for r in comparison.rows if r.strategy == "partial_hot" and r.n_queries > 0]
    if not hot:
        return []
    buckets = ", ".join(dict.fromkeys(r.bucket for r in hot))
    if comparison.source == "vectors":
        text = (
            f"partial_hot was measured on the {len(comparison.hot_agents)} commonest labels "
            f"only ({buckets}); other labels have no partial index."
        )
    else:
        text = (
            f"partial_hot was measured on the {len(comparison.hot_agents)} agents with most "
            f"memories only ({buckets}); other agents have no partial index."
        )
    evidence: dict[str, float | int | str] = {
        "hot_agents": len(comparison.hot_agents),
        "buckets": buckets,
    }
    return [Recommendation(text=text, evidence=evidence)]


def _invalid(comparison: FilteredComparison) -> list[Recommendation]:
    invalid = [r for r in comparison.rows if not r.valid and r.n_queries > 0]
    if not invalid:
        return []
    shown = invalid[:_INVALID_LISTED]
    listed = "; ".join(f"{r.arm} {r.bucket}: {_reason(r)}" for r in shown)
    more = f" (and {len(invalid) - _INVALID_LISTED} more)" if len(invalid) > _INVALID_LISTED else ""
    evidence = {
        "invalid_rows": len(invalid),
        "measured_rows": sum(1 for r in comparison.rows if r.n_queries > 0),
    }
    return [Recommendation(text=f"Not counted (invalid): {listed}{more}.", evidence=evidence)]


def _figures(row: FilteredRow, key: LatencyKey, prefix: str = "") -> dict[str, float | int | str]:
    """The measured figures of ``row`` a sentence quotes (those that were measured)."""
    values = {
        "recall_mean": row.recall_mean,
        "fill_mean": row.fill_mean,
        f"latency_{key}_ms": latency_of(row, key),
    }
    return {f"{prefix}{k}": v for k, v in values.items() if v is not None}


def _reason(row: FilteredRow) -> str:
    """The note that made a row invalid (plan check, failure), else its first note."""
    picked = [n for n in row.notes if any(k in n for k in INVALIDATING)]
    return (picked or list(row.notes) or ["invalid"])[0]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} ms"
