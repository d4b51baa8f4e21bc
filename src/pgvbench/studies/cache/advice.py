"""The cache study's advice: the working set against shared_buffers, whether to prewarm,
what autoprewarm changed, and the shared_buffers size to set. No database here."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...advice_margin import Margin, difference_text, from_single, noise_text, relative_range
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
        noise = second_to_second(by.get("warm"))
        prewarm = _prewarm(study, by.get("cold"), by.get("warm"), sb, where, noise)
        if prewarm is not None:
            out.append(prewarm)
        auto = _autoprewarm(by.get("autoprewarm"), by.get("cold"), sb, where, noise)
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


def second_to_second(warm: CacheRow | None) -> tuple[float, int] | None:
    """How far two one-second p99s of the warm run drift apart ((max - min) / mean) and
    over how many seconds: the noise a single second (the cold start's first) must beat."""
    if warm is None:
        return None
    values = [s.p99_ms for s in warm.series if s.p99_ms is not None and s.ops > 0]
    spread = relative_range(values)
    return None if spread is None else (spread, len(values))


def _margin(a: float, b: float, noise: tuple[float, int] | None) -> Margin:
    basis = "seconds of the warm run"
    if noise is None:
        return from_single(a, b, basis=basis)
    return from_single(a, b, basis=basis, noise=noise[0], n=noise[1])


def _noise_clause(margin: Margin) -> str:
    if margin.noise is None:
        return "; no second-to-second spread measured"
    verdict = "beyond" if margin.decisive else "within"
    return f"; {difference_text(margin)}, {verdict} the noise of {noise_text(margin)}"


def _prewarm(
    study: CacheStudy,
    cold: CacheRow | None,
    warm: CacheRow | None,
    sb: float,
    where: str,
    noise: tuple[float, int] | None,
) -> Recommendation | None:
    if not (cold and warm and cold.first_second_p99_ms and warm.p99_ms):
        return None
    ratio = cold.first_second_p99_ms / warm.p99_ms
    margin = _margin(warm.p99_ms, cold.first_second_p99_ms, noise)
    slow = cold.time_to_warm_s is None or cold.time_to_warm_s >= STEADY_SECONDS
    ttw = (
        f"{cold.time_to_warm_s:g} s"
        if cold.time_to_warm_s is not None
        else f"not within the {study.warmup_series_seconds:g} s recorded"
    )
    evidence = (
        f"first-second p99 from cold {_fmt(cold.first_second_p99_ms)} vs warm p99 "
        f"{_fmt(warm.p99_ms)} ({ratio:.1f}x{_noise_clause(margin)}); steady state {ttw}{where}"
    )
    # A large first-second penalty counts when it clears the warm run's own second-to-
    # second spread (old files without a series: as before, on the ratio alone).
    large = ratio >= 2 and (margin.decisive or margin.noise is None)
    if large or slow:
        text = (
            "Prewarm after restarts and failovers (pg_prewarm the index and heap, or "
            "preload pg_prewarm with pg_prewarm.autoprewarm = on)"
        )
    elif ratio >= 2:
        text = (
            "The cold start and the warm run are within the noise of this run; pick on "
            "other grounds or measure longer (warmup_series_seconds)"
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
            **margin.evidence(),
        },
    )


def _autoprewarm(
    auto: CacheRow | None,
    cold: CacheRow | None,
    sb: float,
    where: str,
    noise: tuple[float, int] | None,
) -> Recommendation | None:
    if not (auto and cold and auto.first_second_p99_ms and cold.first_second_p99_ms):
        return None
    ratio = auto.first_second_p99_ms / cold.first_second_p99_ms
    margin = _margin(cold.first_second_p99_ms, auto.first_second_p99_ms, noise)
    # no warm series (an older file): within +-20% counts as run-to-run noise, as before
    clear = abs(ratio - 1.0) > 0.2 if margin.noise is None else margin.decisive
    if not clear:
        head = (
            f"autoprewarm and a plain cold start{where} are within the noise of this run; "
            "pick on other grounds or measure longer"
        )
    else:
        head = f"autoprewarm{where} {'shortens' if ratio < 1 else 'lengthens'} the cold start"
    return Recommendation(
        text=f"{head}: first-second p99 "
        f"{_fmt(auto.first_second_p99_ms)} vs {_fmt(cold.first_second_p99_ms)} from "
        f"plain cold{_noise_clause(margin)}; steady after {_fmt(auto.time_to_warm_s, ' s')} "
        f"vs {_fmt(cold.time_to_warm_s, ' s')}.",
        evidence={
            "shared_buffers_mb": sb,
            "autoprewarm_first_second_p99_ms": auto.first_second_p99_ms,
            "cold_first_second_p99_ms": cold.first_second_p99_ms,
            "autoprewarm_to_cold_ratio": round(ratio, 2),
            "autoprewarm_time_to_warm_s": _figure(auto.time_to_warm_s),
            "cold_time_to_warm_s": _figure(cold.time_to_warm_s),
            **margin.evidence(),
        },
    )


def recommendations(study: CacheStudy) -> list[str]:
    """The advice sentences alone (what results.json keeps in the record)."""
    return [r.text for r in advice(study)]
