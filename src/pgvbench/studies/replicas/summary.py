"""Figures derived from the replicas records (no database, no prose): lag percentiles per
standby, recall-after-write per delay, the read scaling the cores allow."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .records import LagSample, Probe, ReadArm, ReplicasResult


@dataclasses.dataclass(frozen=True, kw_only=True)
class LagSummary:
    standby: str
    samples: int
    replay_p50_s: float | None
    replay_p99_s: float | None
    replay_max_s: float | None
    bytes_p50: float | None
    bytes_p99: float | None
    bytes_max: int | None


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def lag_summaries(samples: Sequence[LagSample]) -> list[LagSummary]:
    """Per standby, over the mix. A reading without a replay_lag (nothing left to replay
    when the primary asked) counts as 0 s when its byte lag is 0."""
    out = []
    for name in sorted({s.standby for s in samples}):
        mine = [s for s in samples if s.standby == name]
        replay = [
            s.replay_lag_s if s.replay_lag_s is not None else 0.0
            for s in mine
            if s.replay_lag_s is not None or s.lag_bytes == 0
        ]
        lag_bytes = [float(s.lag_bytes) for s in mine if s.lag_bytes is not None]
        out.append(
            LagSummary(
                standby=name,
                samples=len(mine),
                replay_p50_s=_pct(replay, 50),
                replay_p99_s=_pct(replay, 99),
                replay_max_s=max(replay) if replay else None,
                bytes_p50=_pct(lag_bytes, 50),
                bytes_p99=_pct(lag_bytes, 99),
                bytes_max=int(max(lag_bytes)) if lag_bytes else None,
            )
        )
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class Visibility:
    """Recall-after-write at one delay: the share of probes whose new row the standby's
    search returned, and what the standby's replay was at that moment."""

    delay_ms: float
    probes: int
    hits: int
    later_hits: int  # the same searches once every standby caught up
    later_known: int
    not_yet_visible: int  # missed, then found once caught up: replication's misses
    replayed: int  # the standby had replayed up to the primary's position after the commit
    replayed_known: int
    since_commit_p50_ms: float | None
    behind_bytes_p50: float | None
    behind_bytes_max: int | None
    replay_lag_p50_s: float | None

    @property
    def recall(self) -> float:
        return self.hits / self.probes if self.probes else 0.0

    @property
    def later_recall(self) -> float | None:
        return self.later_hits / self.later_known if self.later_known else None


def visibility(probes: Sequence[Probe]) -> list[Visibility]:
    out = []
    for delay in sorted({p.delay_ms for p in probes}):
        mine = [p for p in probes if p.delay_ms == delay]
        later = [p for p in mine if p.later_hit is not None]
        known = [p for p in mine if p.replayed is not None]
        behind = [float(p.behind_bytes) for p in mine if p.behind_bytes is not None]
        lags = [p.replay_lag_s for p in mine if p.replay_lag_s is not None]
        out.append(
            Visibility(
                delay_ms=delay,
                probes=len(mine),
                hits=sum(p.hit for p in mine),
                later_hits=sum(bool(p.later_hit) for p in later),
                later_known=len(later),
                not_yet_visible=sum(1 for p in later if not p.hit and p.later_hit),
                replayed=sum(bool(p.replayed) for p in known),
                replayed_known=len(known),
                since_commit_p50_ms=_pct([p.since_commit_ms for p in mine], 50),
                behind_bytes_p50=_pct(behind, 50),
                behind_bytes_max=int(max(behind)) if behind else None,
                replay_lag_p50_s=_pct(lags, 50),
            )
        )
    return out


def primary_arm(result: ReplicasResult) -> ReadArm | None:
    return next((a for a in result.arms if a.replicas == 0), None)


def best_arm(result: ReplicasResult) -> ReadArm | None:
    """The standby arm of highest QPS."""
    arms = [a for a in result.arms if a.replicas > 0]
    return max(arms, key=lambda a: a.qps) if arms else None


def shared_host(result: ReplicasResult) -> bool:
    """The primary and every standby ran on this host's cores (the embedded default)."""
    return result.source == "embedded"
