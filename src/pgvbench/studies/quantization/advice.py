"""What the quantization record says, in words: its notes (capped re-ranks, points off
plan) and the conclusions (size and build savings, the best point per variant, what
re-ranking buys), each with the measured figures it rests on. No database here."""

from __future__ import annotations

from ...advice_margin import (
    Margin,
    from_recall,
    from_rounds,
    from_samples,
    from_single,
    versus,
    within_noise,
)
from ...spec.model import QUERY_GUCS
from ..base import Recommendation
from .records import QuantizationPoint, QuantizationStudy

_EF_SEARCH = QUERY_GUCS["hnsw"]


def study_notes(study: QuantizationStudy) -> list[str]:
    """The record's notes: points that re-rank fewer candidates than asked, or that did
    not use the intended index."""
    notes: list[str] = []
    if any(p.capped for p in study.points):
        notes.append(
            "some binary points fetch k x overfetch > ef_search candidates; HNSW returns at "
            "most ef_search rows, so those points re-rank fewer candidates than asked"
        )
    if any(not p.plan_ok for p in study.points):
        notes.append("some points did not use the intended index (see plan_note)")
    return notes


def recommendations(study: QuantizationStudy) -> list[str]:
    """Plain-language conclusions: size and build savings, and the best point per variant."""
    return [r.text for r in advice(study)]


def _best_points(study: QuantizationStudy) -> dict[str, QuantizationPoint]:
    """Per variant, the valid point with the highest recall (then QPS)."""
    best: dict[str, QuantizationPoint] = {}
    for p in study.points:
        if not p.plan_ok or p.errors != 0:
            continue
        cur = best.get(p.variant)
        if cur is None or (p.recall_mean, p.qps) > (cur.recall_mean, cur.qps):
            best[p.variant] = p
    return best


def qps_margin(ref: QuantizationPoint, point: QuantizationPoint) -> Margin | None:
    """``point``'s QPS over ``ref``'s: paired over the interleaved rounds both ran in (window
    i of each is round i); in older files, against the spread of each point's own windows."""
    rounds = min(len(ref.window_qps), len(point.window_qps))
    if ref.window_sequence and point.window_sequence and rounds >= 2:
        try:
            return from_rounds(ref.window_qps[:rounds], point.window_qps[:rounds])
        except ValueError:  # no round in which both measured something
            pass
    if len(ref.window_qps) >= 2 and len(point.window_qps) >= 2:
        return from_samples(ref.window_qps, point.window_qps, basis="windows")
    return from_single(ref.qps, point.qps) if ref.qps > 0 else None


def recall_margin(ref: QuantizationPoint, point: QuantizationPoint) -> Margin | None:
    """``point``'s recall minus ``ref``'s over the same queries (None in older files)."""
    a, b = ref.recall_per_query, point.recall_per_query
    return from_recall(a, b) if len(a) == len(b) >= 2 else None


def advice(study: QuantizationStudy) -> list[Recommendation]:
    """The conclusions of :func:`recommendations` with their evidence."""
    out: list[Recommendation] = []
    by_variant = {ix.variant: ix for ix in study.indexes}
    full = by_variant.get("full")
    best = _best_points(study)
    for name in ("halfvec", "binary"):
        ix = by_variant.get(name)
        if ix is None or full is None or full.index_bytes == 0:
            continue
        out.append(
            Recommendation(
                text=f"The {name} index is {ix.index_bytes / full.index_bytes:.0%} of the "
                f"full-precision index's size ({ix.index_bytes / 1e6:.1f} vs "
                f"{full.index_bytes / 1e6:.1f} MB) and built in {ix.build_seconds:.2f} s vs "
                f"{full.build_seconds:.2f} s.",
                evidence={
                    "variant": name,
                    "index_bytes": ix.index_bytes,
                    "full_index_bytes": full.index_bytes,
                    "build_seconds": ix.build_seconds,
                    "full_build_seconds": full.build_seconds,
                },
            )
        )
    ref = best.get("full")
    for name, p in sorted(best.items()):
        if name == "full" or ref is None:
            continue
        evidence: dict[str, float | int | str] = {
            "variant": name,
            "ef_search": p.ef_search,
            "overfetch": p.overfetch,
            "recall_mean": p.recall_mean,
            "qps": p.qps,
            "full_recall_mean": ref.recall_mean,
            "full_qps": ref.qps,
        }
        speed = qps_margin(ref, p)
        margins = [versus(speed, "QPS")] if speed is not None else []
        if speed is not None:
            evidence |= speed.evidence("qps_margin_")
        quality = recall_margin(ref, p)
        if quality is not None:
            margins.append(versus(quality, "recall"))
            evidence |= quality.evidence("recall_margin_")
        tail = f" ({'; '.join(margins)})" if margins else ""
        out.append(
            Recommendation(
                text=f"Best {name} point (ef_search {p.ef_search}, overfetch {p.overfetch}): "
                f"recall {p.recall_mean:.3f} at {p.qps:,.0f} QPS vs full precision "
                f"{ref.recall_mean:.3f} at {ref.qps:,.0f} QPS{tail}.",
                evidence=evidence,
            )
        )
    rerank = best.get("binary")
    norerank = best.get("binary_norerank")
    if rerank and norerank:
        lift = recall_margin(norerank, rerank)
        figures: dict[str, float | int | str] = {
            "norerank_recall_mean": norerank.recall_mean,
            "rerank_recall_mean": rerank.recall_mean,
            "overfetch": rerank.overfetch,
        }
        if lift is not None:
            figures |= lift.evidence()
        if lift is not None and not lift.decisive:
            text = (
                within_noise("Re-ranking binary candidates", "Hamming order alone", lift)
                + f" (recall {rerank.recall_mean:.3f} vs {norerank.recall_mean:.3f})."
            )
        else:
            bound = f" ({versus(lift)})" if lift is not None else ""
            text = (
                "Re-ranking binary candidates by the full distance lifts recall from "
                f"{norerank.recall_mean:.3f} to {rerank.recall_mean:.3f}{bound}; never serve "
                "Hamming order alone."
            )
        out.append(Recommendation(text=text, evidence=figures))
    capped = [p for p in study.points if p.capped]
    if capped:
        needed = max(study.k * p.overfetch for p in capped)
        out.append(
            Recommendation(
                text=f"Raise {_EF_SEARCH} to at least k x overfetch for binary re-ranking.",
                evidence={"capped_points": len(capped), "k": study.k, "candidates": needed},
                config_change={_EF_SEARCH: str(needed)},
            )
        )
    off_plan = [p for p in study.points if not p.plan_ok]
    if off_plan:
        out.append(
            Recommendation(
                text="Some queries did not use the quantized index: check the plan notes.",
                evidence={"points_off_plan": len(off_plan), "points": len(study.points)},
            )
        )
    return out
