"""The metrics ``pgvbench ab`` judges and their minimum effects (light: no numpy, so the
command line's --help stays fast)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbRule:
    name: str
    better: Literal["higher", "lower"]
    min_effect: float  # relative (0.04 = 4%) unless absolute
    absolute: bool = False
    unit: str = ""
    description: str = ""
    field: str = ""  # Window attribute (ratio metrics)


# Calibrated with bench/gate_quality.py --ab on a 2-core VM (docs/ci.md): a 10% QPS loss is
# caught in >= 19/20 comparisons, A/A false alarms <= 1/20.
RULES: Mapping[str, AbRule] = {
    r.name: r
    for r in (
        AbRule(
            name="qps",
            better="higher",
            min_effect=0.04,
            unit="ops/s",
            description="throughput",
            field="qps",
        ),
        AbRule(
            name="p50",
            better="lower",
            min_effect=0.04,
            unit="ms",
            description="median latency",
            field="p50_ms",
        ),
        AbRule(
            name="p99",
            better="lower",
            min_effect=0.10,
            unit="ms",
            description="99th percentile latency",
            field="p99_ms",
        ),
        AbRule(
            name="recall",
            better="higher",
            min_effect=0.01,
            absolute=True,
            description="mean recall@k over the recall queries, a drop",
        ),
        AbRule(
            name="cpu",
            better="lower",
            min_effect=0.05,
            unit="ms",
            description="server CPU time per query (the arm's backends; server on this host only)",
            field="cpu_ms_per_query",
        ),
        AbRule(
            name="blocks",
            better="lower",
            min_effect=0.05,
            unit="blocks",
            description="shared buffers hit + read per query (pg_stat_statements)",
            field="blocks_per_query",
        ),
    )
}
DEFAULT_ALPHA = 0.01


def rules_with(min_effects: Mapping[str, float]) -> dict[str, AbRule]:
    return {
        name: dataclasses.replace(rule, min_effect=min_effects[name])
        if name in min_effects
        else rule
        for name, rule in RULES.items()
    }


def min_effects_help() -> str:
    return "; ".join(
        f"{r.name}: {r.description} ({'absolute' if r.absolute else 'relative'}, "
        f"default {r.min_effect:g})"
        for r in RULES.values()
    )
