"""The vector sweep's headline with its margin: how far the chosen point's recall clears the
target (the lower confidence bound over queries, the tail, queries with recall 0, the
build-to-build spread), and what to try when nothing reaches the target."""

from __future__ import annotations

from ...analysis.pareto import (
    highest_recall,
    knob_value,
    largest_knob,
    measured_points,
    recall_bound,
    safer_point,
)
from ...results import Recall, Results, SweepPoint
from ...spec.model import QUERY_GUCS
from ...spec.settings import PGVECTOR_INT_SETTINGS
from ..fmt import EXACT_KIND, format_params, format_qps, format_sig

CONFIDENCE = "95% confidence"
# an ef_search this large that still misses the target points at the graph, not the search
_HIGH_EF_SEARCH = 400


def recall_figures(recall: Recall, target: float, p5_target: float | None) -> str:
    """E.g. `recall 0.962, at least 0.955 with 95% confidence (target 0.95), p5 0.900`."""
    if recall.low is None:  # files written before the bound was recorded
        text = f"recall {recall.mean:.3f} (p5 {recall.p5:.3f})"
    else:
        text = (
            f"recall {recall.mean:.3f}, at least {_floor3(recall.low)} with "
            f"{CONFIDENCE} (target {target:g}), p5 {recall.p5:.3f}"
        )
    if p5_target is not None:
        text += f" (p5 target {p5_target:g})"
    return text


def zero_recall_flag(recall: Recall) -> str:
    """A sentence flagging queries with recall 0 (empty when there are none)."""
    if not recall.zero:
        return ""
    of = f" of {recall.queries:,}" if recall.queries else ""
    share = f" ({recall.zero / recall.queries:.1%})" if recall.queries else ""
    return (
        f" Flag: {recall.zero:,}{of} recall queries{share} found none of their true "
        "neighbours (recall 0) at this setting; the mean hides them."
    )


def spread_sentence(
    results: Results,
    best: SweepPoint,
    target: float,
    p5_target: float | None,
    describe: str,
) -> str:
    """The build-to-build spread of the chosen point ([query] rebuilds), and when its margin
    over the target is smaller than that spread, the next safer point of the same build."""
    spread = best.rebuilds
    if spread is None or len(spread.recall) < 2:
        return ""
    width = spread.recall_spread
    text = (
        f" Across {len(spread.recall)} builds of this index its recall ranged "
        f"{min(spread.recall):.3f}–{max(spread.recall):.3f} and its QPS "
        f"{format_qps(min(spread.qps))}–{format_qps(max(spread.qps))}"
    )
    margin = recall_bound(best) - target
    if margin >= width and min(spread.recall) >= target:
        return text + "; the target holds on every build."
    text += (
        f": its margin over the target ({format_sig(max(margin, 0.0), 2)}) is smaller than "
        f"that build-to-build spread ({format_sig(width, 2)}), so a rebuild of the same index "
        "may miss the target"
    )
    safer = safer_point(results.runs, best, target, width, p5_target=p5_target)
    param = _param_name(best)
    if safer is None or safer.recall is None:
        return text + f"; no larger {param} in this sweep clears it by that spread: extend it."
    return (
        text + f". The next safer point is {describe} with {format_params(safer.query_params)} "
        f"(recall {safer.recall.mean:.3f}, at least {recall_bound(safer):.3f}; "
        f"{format_qps(safer.qps)} QPS)."
    )


def next_steps(results: Results, name: str, target: float, p5_target: float | None) -> str:
    """No point reaches the target: the best reached, and what to try next."""
    best = highest_recall(results.runs)
    if best is None or best.recall is None:
        return "No valid sweep point has a recall measurement, so nothing can be recommended."
    goal = f"{name} ≥ {target:g} with {CONFIDENCE}"
    if p5_target is not None:
        goal += f" and p5 ≥ {p5_target:g}"
    reached = recall_below(best.recall.mean, target)
    if best.recall.low is not None:
        reached += f" (at least {recall_below(best.recall.low, target)})"
    text = (
        f"No configuration reaches {goal}; the highest recall reached is {reached} by "
        f"{_describe(best)} ({format_qps(best.qps)} QPS)"
    )
    if best.recall.mean >= target and best.recall.low is not None:
        text += f", whose mean clears the target but not with {CONFIDENCE}"
    if p5_target is not None and best.recall.p5 < p5_target:
        text += f", p5 {best.recall.p5:.3f}"
    text += "." + zero_recall_flag(best.recall)
    indexed = [p for p in measured_points(results.runs) if p.index_kind != EXACT_KIND]
    tries = _what_to_try(results, highest_recall(indexed) or best)
    exact = _exact_cost(results)
    return f"{text} Next: {tries}; {exact}, or lower the target."


def index_shortfall(results: Results, target: float) -> str:
    """The exact scan won: why no index did, and what to try on the best one."""
    indexed = [p for p in measured_points(results.runs) if p.index_kind != EXACT_KIND]
    best = highest_recall(indexed)
    if best is None or best.recall is None:
        return ""
    reached = recall_below(recall_bound(best), target)
    return (
        f" No index reaches the target: the best is {_describe(best)} (recall "
        f"{best.recall.mean:.3f}, at least {reached}; {format_qps(best.qps)} QPS). Next: "
        f"{_what_to_try(results, best)}."
    )


def recall_below(value: float, target: float) -> str:
    """Enough decimals that a near miss (0.9496 vs 0.95) does not print as a hit."""
    for decimals in (3, 4, 5, 6):
        text = f"{value:.{decimals}f}"
        if float(text) < target:
            return text
    return f"{value:.6f}"


def _floor3(value: float) -> str:
    """A lower bound printed so that it never reads higher than it is."""
    text = f"{value:.3f}"
    return text if float(text) <= value else recall_below(value, float(text))


def _param_name(point: SweepPoint) -> str:
    if point.query_params:
        return next(iter(point.query_params))
    return QUERY_GUCS.get(point.index_kind, "query parameter")


def _describe(point: SweepPoint) -> str:
    if point.index_kind == EXACT_KIND:
        return "the exact scan (no index)"
    if point.query_params:
        return f"{point.index} with {format_params(point.query_params)}"
    return point.index


def _what_to_try(results: Results, best: SweepPoint) -> str:
    """A larger query-time setting than the largest tried on that build, or a denser build
    when the setting is already high (or at pgvector's maximum)."""
    if best.index_kind == EXACT_KIND:
        return "check the exact scan's notes: it should reach recall 1"
    top = largest_knob(results.runs, best)
    value = knob_value(top)
    param = _param_name(top)
    if value is None:
        return f"set {param} in the spec (this sweep left it to the server) and sweep it upwards"
    reached = f"the largest {param} tried on {top.index} was {value}"
    if top.recall is not None:
        reached += f" (recall {recall_below(top.recall.mean, 1.0)})"
    if best.index_kind == "hnsw":
        _, ceiling = PGVECTOR_INT_SETTINGS[param]
        denser = _denser(top, "m", 2) + " or " + _denser(top, "ef_construction", 2)
        if value >= ceiling:
            return f"{reached}, pgvector's maximum: rebuild with a larger {denser}"
        step = f"{reached}: try {param} = {min(ceiling, value * 2)}"
        if value >= _HIGH_EF_SEARCH:
            step += f", or rebuild with a larger {denser}"
        return step
    lists = top.index_params.get("lists")
    if lists is not None and value >= lists:
        return f"{reached}, already every list: check the points' notes"
    step = f"{reached}: try {param} = {min(lists or value * 2, value * 2)}"
    if lists is not None and value * 4 >= lists:
        step += (
            f" (of lists = {lists}: close to scanning every list, so compare its cost with "
            "the exact scan's)"
        )
    return step


def _denser(point: SweepPoint, param: str, factor: int) -> str:
    value = point.index_params.get(param)
    return f"{param} (now {value}, e.g. {value * factor})" if value else param


def _exact_cost(results: Results) -> str:
    exact = [p for p in measured_points(results.runs) if p.index_kind == EXACT_KIND]
    if not exact:
        return (
            'the exact scan always reaches recall 1 (add an [[index]] kind = "none" to '
            "measure its cost here)"
        )
    fastest = max(exact, key=lambda p: p.qps)
    qps = format_qps(fastest.qps)
    if fastest.recall is not None and fastest.recall.mean < 0.9995:
        return (
            f"the exact scan ran at {qps} QPS here but reached only recall "
            f"{recall_below(fastest.recall.mean, 1.0)} (see its notes: timeouts?)"
        )
    return f"the exact scan reaches recall 1 at {qps} QPS (measured in this run)"
