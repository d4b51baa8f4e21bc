"""The cache study's advice: the working set against shared_buffers, whether to prewarm,
what autoprewarm changed, and the shared_buffers size to set. No database here."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..base import Recommendation
from .records import STEADY_SECONDS, CacheRow, CacheStudy

WORKING_SET = "index + heap"  # the first sentence starts with this (the report leads with it)


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "—" if value is None else f"{value:.3g}{unit}"


def _mb_list(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g} MB" for v in values)


def _figure(value: float | None) -> float | str:
    return "none" if value is None else value


def advice(study: CacheStudy) -> list[Recommendation]:
    """Plain-language advice from the measured rows, each with the figures it rests on."""
    if not study.rows:
        return []
    out: list[Recommendation] = []
    first = study.rows[0]
    data_mb = first.index_mb + first.heap_mb
    sb_values = sorted({r.shared_buffers_mb for r in study.rows})
    fits = [v for v in sb_values if v >= data_mb]
    short = [v for v in sb_values if v < data_mb]
    if not fits:
        verdict = "index and heap do not fit; queries keep reading from the OS cache or disk"
    elif short:
        verdict = f"they fit at {_mb_list(fits)} but not at {_mb_list(short)}"
    else:
        verdict = "index and heap fit"
    out.append(
        Recommendation(
            text=f"{WORKING_SET} = {data_mb:.1f} MB ({first.index_mb:.1f} MB index + "
            f"{first.heap_mb:.1f} MB heap) vs shared_buffers = {_mb_list(sb_values)}: "
            f"{verdict}.",
            evidence={
                "index_mb": first.index_mb,
                "heap_mb": first.heap_mb,
                "working_set_mb": round(data_mb, 2),
                "shared_buffers_mb": _mb_list(sb_values),
            },
        )
    )
    for sb in sb_values:
        by = {r.strategy: r for r in study.rows if r.shared_buffers_mb == sb}
        where = f" at shared_buffers {sb:g} MB" if len(sb_values) > 1 else ""
        prewarm = _prewarm(study, by.get("cold"), by.get("warm"), sb, where)
        if prewarm is not None:
            out.append(prewarm)
        auto = _autoprewarm(by.get("autoprewarm"), by.get("cold"), sb, where)
        if auto is not None:
            out.append(auto)
    suggest = 1 << max(0, math.ceil(data_mb * 1.25) - 1).bit_length()  # power of two, +25%
    sizing = {"working_set_mb": round(data_mb, 2), "suggested_shared_buffers_mb": suggest}
    if not fits:
        out.append(
            Recommendation(
                text=f"Set shared_buffers to at least {suggest} MB (index + heap + 25% headroom) "
                "if the host has the memory (PGTune: about RAM/4); below that, expect the "
                "latencies measured here.",
                evidence={**sizing, "largest_shared_buffers_mb": max(sb_values)},
                config_change={"shared_buffers": f"{suggest}MB"},
            )
        )
    else:
        out.append(
            Recommendation(
                text=f"shared_buffers {min(fits):g} MB holds index and heap; as the table grows, "
                f"keep it at index + heap + 25% (today {suggest} MB, rounded up to a power of "
                "two).",
                evidence={**sizing, "smallest_fitting_shared_buffers_mb": min(fits)},
            )
        )
    return out


def _prewarm(
    study: CacheStudy, cold: CacheRow | None, warm: CacheRow | None, sb: float, where: str
) -> Recommendation | None:
    if not (cold and warm and cold.first_second_p99_ms and warm.p99_ms):
        return None
    ratio = cold.first_second_p99_ms / warm.p99_ms
    slow = cold.time_to_warm_s is None or cold.time_to_warm_s >= STEADY_SECONDS
    ttw = (
        f"{cold.time_to_warm_s:g} s"
        if cold.time_to_warm_s is not None
        else f"not within the {study.warmup_series_seconds:g} s recorded"
    )
    evidence = (
        f"first-second p99 from cold {_fmt(cold.first_second_p99_ms)} vs warm p99 "
        f"{_fmt(warm.p99_ms)} ({ratio:.1f}x); steady state {ttw}{where}"
    )
    if ratio >= 2 or slow:
        text = (
            "Prewarm after restarts and failovers (pg_prewarm the index and heap, or "
            "preload pg_prewarm with pg_prewarm.autoprewarm = on)"
        )
    else:
        text = "Prewarming is optional: the cold penalty is small and short"
    return Recommendation(
        text=f"{text}: {evidence}.",
        evidence={
            "shared_buffers_mb": sb,
            "cold_first_second_p99_ms": cold.first_second_p99_ms,
            "warm_p99_ms": warm.p99_ms,
            "cold_to_warm_ratio": round(ratio, 2),
            "cold_time_to_warm_s": _figure(cold.time_to_warm_s),
        },
    )


def _autoprewarm(
    auto: CacheRow | None, cold: CacheRow | None, sb: float, where: str
) -> Recommendation | None:
    if not (auto and cold and auto.first_second_p99_ms and cold.first_second_p99_ms):
        return None
    ratio = auto.first_second_p99_ms / cold.first_second_p99_ms
    # within +-20% is run-to-run noise on a busy host, not an effect
    effect = (
        "shortens" if ratio < 0.8 else "lengthens" if ratio > 1.2 else "made no clear difference to"
    )
    return Recommendation(
        text=f"autoprewarm{where} {effect} the cold start: first-second p99 "
        f"{_fmt(auto.first_second_p99_ms)} vs {_fmt(cold.first_second_p99_ms)} from "
        f"plain cold; steady after {_fmt(auto.time_to_warm_s, ' s')} vs "
        f"{_fmt(cold.time_to_warm_s, ' s')}.",
        evidence={
            "shared_buffers_mb": sb,
            "autoprewarm_first_second_p99_ms": auto.first_second_p99_ms,
            "cold_first_second_p99_ms": cold.first_second_p99_ms,
            "autoprewarm_to_cold_ratio": round(ratio, 2),
            "autoprewarm_time_to_warm_s": _figure(auto.time_to_warm_s),
            "cold_time_to_warm_s": _figure(cold.time_to_warm_s),
        },
    )


def recommendations(study: CacheStudy) -> list[str]:
    """The advice sentences alone (what results.json keeps in the record)."""
    return [r.text for r in advice(study)]
