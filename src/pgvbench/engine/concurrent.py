"""Outcomes of one measured window run side by side (the worker processes of one load
point, engine/multiproc.py): merged into one, and sent between processes.

``engine.outcome.merge_outcomes`` lays windows end to end (repeats); here the windows are
the same wall interval, so operations add up within it.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from ..results import TimeSlice
from .histogram import LatencyHistogram
from .outcome import EngineOutcome, KindStats


def merge_concurrent(outcomes: list[EngineOutcome]) -> EngineOutcome:
    """Outcomes of the same window run side by side: one outcome, counts summed,
    histograms merged exactly. (engine.outcome.merge_outcomes lays windows end to end.)"""
    if not outcomes:
        raise ValueError("merge_concurrent needs at least one outcome")

    def merged(hists: list[LatencyHistogram | None]) -> LatencyHistogram | None:
        if all(h is None for h in hists):
            return None
        total = LatencyHistogram()
        for h in hists:
            if h is not None:
                total.merge(h)
        return total

    latency = merged([o.latency for o in outcomes])
    assert latency is not None
    per_kind: dict[str, KindStats] = {}
    errors: collections.Counter[str] = collections.Counter()
    for o in outcomes:
        errors.update(o.error_messages)
        for name, stats in o.per_kind.items():
            into = per_kind.setdefault(name, KindStats())
            into.latency.merge(stats.latency)
            into.operations += stats.operations
            into.errors += stats.errors
    operations = sum(o.operations for o in outcomes)
    lags = [(o.schedule_lag_ms, o.operations) for o in outcomes if o.schedule_lag_ms is not None]
    weight = sum(n for _, n in lags)
    cpu = [o.client_cpu_cores for o in outcomes if o.client_cpu_cores is not None]
    return EngineOutcome(
        latency=latency,
        operations=operations,
        errors=sum(o.errors for o in outcomes),
        duration_s=max(o.duration_s for o in outcomes),
        warmup_s=outcomes[0].warmup_s,
        service=merged([o.service for o in outcomes]),
        queue_wait=merged([o.queue_wait for o in outcomes]),
        dropped=sum(o.dropped for o in outcomes),
        error_messages=errors,
        timeseries=_series([o.timeseries for o in outcomes]),
        schedule_lag_ms=sum(v * n for v, n in lags) / weight if lags and weight else None,
        client_cpu_cores=sum(cpu) if len(cpu) == len(outcomes) else None,
        aborted=next((o.aborted for o in outcomes if o.aborted), None),
        per_kind=per_kind,
    )


def _series(series: list[list[TimeSlice]]) -> list[TimeSlice]:
    out: list[TimeSlice] = []
    for t in range(max((len(s) for s in series), default=0)):
        slices = [s[t] for s in series if t < len(s)]
        p99 = [x.p99_ms for x in slices if x.p99_ms is not None]
        out.append(TimeSlice(t=t, ops=sum(x.ops for x in slices), p99_ms=max(p99, default=None)))
    return out


def pack_outcome(outcome: EngineOutcome) -> dict[str, Any]:
    """The outcome as plain data (an HDR histogram object does not pickle; its encoding
    holds every count, so decoding it is exact)."""
    data = {f.name: getattr(outcome, f.name) for f in dataclasses.fields(outcome)}
    for name in ("latency", "service", "queue_wait"):
        data[name] = _encode(data[name])
    data["per_kind"] = {
        name: (_encode(s.latency), s.operations, s.errors) for name, s in outcome.per_kind.items()
    }
    return data


def unpack_outcome(data: dict[str, Any]) -> EngineOutcome:
    data = dict(data)
    for name in ("latency", "service", "queue_wait"):
        data[name] = _decode(data[name])
    data["per_kind"] = {
        name: KindStats(latency=_decode(h) or LatencyHistogram(), operations=n, errors=e)
        for name, (h, n, e) in data["per_kind"].items()
    }
    return EngineOutcome(**data)


def _encode(hist: LatencyHistogram | None) -> str | None:
    return None if hist is None else hist.encode()


def _decode(text: str | None) -> LatencyHistogram | None:
    return None if text is None else LatencyHistogram.decode(text)
