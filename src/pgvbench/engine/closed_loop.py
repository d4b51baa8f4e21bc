"""Closed-loop load: each client issues its next operation when the last one ends.

Today one client (the foundation's single-client sweep); the concurrency seam is
``clients``, which the load-engine issue fills in with its worker model.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from .histogram import LatencyHistogram

Operation = Callable[[int], None]  # called with the operation's sequence number


@dataclasses.dataclass
class LoadOutcome:
    histogram: LatencyHistogram
    operations: int
    errors: int
    duration_s: float  # measured time actually elapsed, warm-up excluded
    warmup_s: float
    warmup_operations: int
    error_messages: collections.Counter[str]
    aborted: str | None = None  # why the loop stopped early, if it did


def run_closed_loop(
    operation: Operation,
    *,
    warmup_s: float,
    duration_s: float,
    clients: int = 1,
    is_fatal: Callable[[BaseException], bool] = lambda exc: False,
) -> LoadOutcome:
    """Run ``operation`` back to back: warm-up (unrecorded), then the measured window.

    An exception from an operation is counted as an error; when ``is_fatal`` says
    it is (e.g. the connection is gone) the loop stops and reports why.
    """
    if clients != 1:
        raise ValueError("the closed-loop engine currently drives exactly one client")
    errors: collections.Counter[str] = collections.Counter()
    seq = 0
    clock = time.perf_counter_ns

    warm_end = clock() + int(warmup_s * 1e9)
    warm_ops = 0
    while clock() < warm_end:
        try:
            operation(seq)
        except Exception as exc:
            if is_fatal(exc):
                return _aborted(exc, errors, warmup_s, warm_ops)
        seq += 1
        warm_ops += 1

    latencies = np.empty(1 << 16, dtype=np.int64)
    n = 0
    n_errors = 0
    start = clock()
    end = start + int(duration_s * 1e9)
    now = start
    aborted: str | None = None
    while now < end:
        t0 = clock()
        try:
            operation(seq)
        except Exception as exc:
            n_errors += 1
            errors[_describe(exc)] += 1
            if is_fatal(exc):
                aborted = _describe(exc)
                now = clock()
                break
        else:
            now = clock()
            if n == len(latencies):
                latencies = np.concatenate([latencies, np.empty_like(latencies)])
            latencies[n] = now - t0
            n += 1
        seq += 1
        now = clock()
    hist = LatencyHistogram()
    hist.record_many(latencies[:n])
    return LoadOutcome(
        histogram=hist,
        operations=n,
        errors=n_errors,
        duration_s=(now - start) / 1e9,
        warmup_s=warmup_s,
        warmup_operations=warm_ops,
        error_messages=errors,
        aborted=aborted,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]


def _aborted(
    exc: BaseException, errors: collections.Counter[str], warmup_s: float, warm_ops: int
) -> LoadOutcome:
    errors[_describe(exc)] += 1
    return LoadOutcome(
        histogram=LatencyHistogram(),
        operations=0,
        errors=1,
        duration_s=0.0,
        warmup_s=warmup_s,
        warmup_operations=warm_ops,
        error_messages=errors,
        aborted=_describe(exc),
    )
