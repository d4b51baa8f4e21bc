"""The result-cache study's advice: what an exact LRU saves, what a semantic cache trades
in recall for hits, and how stale cached results get under writes. No database here."""

from __future__ import annotations

from ...advice_margin import Margin, from_recall, versus
from ...analysis.paired import paired_difference
from ..base import Recommendation
from .records import CacheRun, ResultCacheStudy

_RECALL_KEPT = 0.99  # a delta "keeps recall" within 1% of exact-match caching


def recall_margin(reference: CacheRun, run: CacheRun) -> Margin | None:
    """``run``'s recall minus ``reference``'s over the same requests (None in older files)."""
    a, b = reference.recall_per_request, run.recall_per_request
    return from_recall(a, b, basis="requests") if len(a) == len(b) >= 2 else None


def keeps_recall(reference: CacheRun, run: CacheRun) -> bool:
    """Recall within 1% of the reference: on the lower 95% bound of the paired difference
    over requests when recorded, else on the means (older files)."""
    floor = (_RECALL_KEPT - 1.0) * (reference.recall_mean or 1.0)
    a, b = reference.recall_per_request, run.recall_per_request
    if len(a) == len(b) >= 2:
        return paired_difference(a, b).low >= floor
    return run.recall_mean >= _RECALL_KEPT * (reference.recall_mean or 1.0)


def advice(study: ResultCacheStudy) -> list[Recommendation]:
    """Plain-language conclusions of a study, each with the figures it rests on."""
    out: list[Recommendation] = []
    lru = [r for r in study.runs if r.kind == "lru"]
    sem = [r for r in study.runs if r.kind == "semantic"]
    if lru:
        best = max(lru, key=lambda r: r.hit_rate)
        line = (
            f"An exact LRU of {best.size} entries served {best.hit_rate:.0%} of "
            f"{best.requests} requests from the client (p50 {best.p50_ms:.3g} ms vs a "
            f"miss p50 of {best.miss_p50_ms or 0:.3g} ms)"
        )
        evidence: dict[str, float | int | str] = {
            "lru_size": best.size,
            "requests": best.requests,
            "hit_rate": best.hit_rate,
            "p50_ms": best.p50_ms,
            "miss_p50_ms": best.miss_p50_ms or 0.0,
        }
        if best.expected_hit_rate is not None:
            line += f"; the simulation of the same stream expects {best.expected_hit_rate:.0%}"
            evidence["simulated_hit_rate"] = best.expected_hit_rate
        out.append(Recommendation(text=line + ".", evidence=evidence))
        if study.jitter > 0 and best.hit_rate < 0.05:
            out.append(
                Recommendation(
                    text="Repeated questions arrive as slightly different vectors: an "
                    "exact-key cache barely hits; key on the normalised request text or use "
                    "a semantic cache.",
                    evidence={"jitter": study.jitter, "lru_hit_rate": best.hit_rate},
                )
            )
    if sem:
        exact_sem = [r for r in sem if r.delta == 0]
        base_hit = exact_sem[0].hit_rate if exact_sem else 0.0
        ok = [r for r in sem if keeps_recall(sem[0], r)]
        wide = max(sem, key=lambda r: r.delta or 0.0)
        if wide.delta:
            hit_recall = wide.hit_recall_mean if wide.hit_recall_mean is not None else 1.0
            evidence = {
                "delta": wide.delta,
                "hit_rate": wide.hit_rate,
                "exact_match_hit_rate": base_hit,
                "recall_mean": wide.recall_mean,
                "hit_recall_mean": hit_recall,
            }
            margin = recall_margin(exact_sem[0], wide) if exact_sem else None
            against = ""
            if margin is not None:
                against = f"; recall vs delta 0: {versus(margin)}"
                evidence |= margin.evidence()
            out.append(
                Recommendation(
                    text=f"A semantic cache with delta {wide.delta:g} raised the hit rate to "
                    f"{wide.hit_rate:.0%} (from {base_hit:.0%} at delta 0) at a recall of "
                    f"{wide.recall_mean:.3f} (hits alone: {hit_recall:.3f}{against}).",
                    evidence=evidence,
                )
            )
        if ok:
            safe = max(ok, key=lambda r: r.delta or 0.0)
            evidence = {
                "delta": safe.delta if safe.delta is not None else 0.0,
                "hit_rate": safe.hit_rate,
                "recall_mean": safe.recall_mean,
                "reference_recall_mean": sem[0].recall_mean,
            }
            margin = recall_margin(sem[0], safe) if safe is not sem[0] else None
            bound = ""
            if margin is not None:
                bound = f"; recall {versus(margin)}, bounded over the same requests"
                evidence |= margin.evidence()
            out.append(
                Recommendation(
                    text=f"The largest delta that keeps recall within 1% of exact-match "
                    f"caching is {safe.delta:g} (hit rate {safe.hit_rate:.0%}{bound}).",
                    evidence=evidence,
                )
            )
    stale = [r for r in study.runs if r.stale_hit_fraction is not None]
    if stale:
        worst = max(stale, key=lambda r: r.stale_hit_fraction or 0.0)
        out.append(
            Recommendation(
                text=f"With {study.writes_per_second:g} writes/s near popular queries, up to "
                f"{worst.stale_hit_fraction:.1%} of hits ({worst.label}) served a result "
                "missing a newer row of the true top-k: bound entry lifetime (TTL) or "
                "invalidate on write.",
                evidence={
                    "writes_per_second": study.writes_per_second,
                    "stale_hit_fraction": worst.stale_hit_fraction or 0.0,
                    "stale_hits": worst.stale_hits,
                    "hits": worst.hits,
                    "cache": worst.label,
                },
            )
        )
    return out


def recommendations(study: ResultCacheStudy) -> list[str]:
    """The advice sentences alone (what results.json keeps in the record)."""
    return [r.text for r in advice(study)]
