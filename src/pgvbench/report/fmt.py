"""Number formatting shared by every report section (one way to print a figure)."""

from __future__ import annotations

import math
from collections.abc import Mapping

DASH = "—"  # shown for a value that was not measured


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
