"""Number formatting shared by every report section (one way to print a figure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..results import Latency, Results

DASH = "—"  # shown for a value that was not measured
EXACT_KIND = "none"  # index kind of the exact scan (no index): named, not drawn as a build


def format_sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, thousands-separated when large."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.{digits}g}")  # round first so 9.996 becomes 10.0, not 10.00
    if abs(rounded) >= 10 ** (digits - 1):
        return f"{rounded:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    return f"{rounded:.{decimals}f}"


def format_qps(qps: float) -> str:
    """Whole queries per second with separators; small rates keep 3 digits."""
    return f"{qps:,.0f}" if qps >= 100 else format_sig(qps)


def format_params(params: Mapping[str, int]) -> str:
    """``{"hnsw.ef_search": 40}`` -> ``hnsw.ef_search=40`` (sorted, so stable)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def format_optional(value: float | None, digits: int = 3) -> str:
    """``format_sig``, or the dash for a value that was not measured."""
    return DASH if value is None else format_sig(value, digits)


def latency_cells(latency: Latency | None, fields: Sequence[str]) -> list[str]:
    """Table cells for the named percentiles (``"p50"``, ``"p999"`` ...) of ``latency``."""
    if latency is None:
        return [DASH] * len(fields)
    return [format_sig(float(getattr(latency, f))) for f in fields]


def number(value: Any) -> float | None:
    """A finite float, or None (missing, null, NaN: JSON can hold all three)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def format_count(value: Any) -> str:
    """A row count: 12,345 (non-integers keep 3 significant digits); the dash if missing."""
    x = number(value)
    if x is None:
        return DASH
    return f"{x:,.0f}" if x.is_integer() else format_sig(x)


def format_number(value: Any, digits: int = 3) -> str:
    """``format_sig`` of a value read from JSON; the dash if missing or not finite."""
    x = number(value)
    return DASH if x is None else format_sig(x, digits)


def format_fixed(value: Any, decimals: int = 3) -> str:
    """A fixed number of decimals (recall 0.953); the dash if missing."""
    x = number(value)
    return DASH if x is None else f"{x:.{decimals}f}"


def format_percent(value: Any) -> str:
    """A ratio as a percentage, 2 significant digits so tiny shares do not print as 0%."""
    x = number(value)
    return DASH if x is None else format_sig(100 * x, 2) + "%"


def format_share(part: Any, total: Any) -> str:
    """``part`` as a percentage of ``total``."""
    p, t = number(part), number(total)
    return DASH if p is None or t is None or t <= 0 else format_percent(p / t)


def recall_name(results: Results) -> str:
    """``recall@10`` when every point shares one k, else ``recall@k``."""
    ks = {p.k for p in results.runs}
    return f"recall@{ks.pop()}" if len(ks) == 1 else "recall@k"
