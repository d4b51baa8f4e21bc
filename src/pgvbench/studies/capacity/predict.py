"""From the record to its fits and answers: which quantity is fitted with which of fits.py's
forms, and the answers at the spec's target (answers.py). Pure: no database, no prose;
advice.py, report.py and plots.py all read the same :class:`KindAnalysis`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from ...analysis.usl import UslFit
from .answers import CapacityAnswers, Target, answer
from .fits import (
    BUILD_TOLERANCE,
    QPS_TOLERANCE,
    Fit,
    Prediction,
    TooFewLevels,
    fit_build_seconds,
    fit_forms,
    fit_index_bytes,
    fit_knob,
    fit_qps,
)
from .records import CapacityRecord, IndexLevel, Level

# quantity (a frame column) -> how it is fitted; the order is the report's
FITTERS: dict[str, Callable[[Any], Fit]] = {
    "build_seconds": fit_build_seconds,
    # CPU-seconds of the build: what a neighbour's load does not stretch
    "build_cpu_seconds": lambda df: fit_build_seconds(df, column="build_cpu_seconds"),
    "index_bytes": fit_index_bytes,
    "heap_bytes": lambda df: fit_index_bytes(df, column="heap_bytes"),
    "knob": fit_knob,
    "qps_per_core": fit_qps,
    "fixed_qps_per_core": lambda df: fit_qps(df, column="fixed_qps_per_core"),
    "qps": lambda df: fit_qps(df, column="qps"),
    "load_seconds": lambda df: fit_forms(
        df, "load_seconds", ("linear",), tolerance=BUILD_TOLERANCE
    ),
    # a restore rebuilds the index: the build's forms
    "restore_seconds": lambda df: fit_build_seconds(df, column="restore_seconds"),
    "restore_cpu_seconds": lambda df: fit_build_seconds(df, column="restore_cpu_seconds"),
    # a base backup copies the whole cluster: its time against the bytes copied (the
    # cluster also holds every level measured so far), predicted at the target's bytes
    "basebackup_seconds": lambda df: fit_forms(
        df.assign(rows=df["cluster_bytes"]),
        "basebackup_seconds",
        ("linear",),
        tolerance=QPS_TOLERANCE,
    ),
    "dump_seconds": lambda df: fit_forms(df, "dump_seconds", ("linear",), tolerance=QPS_TOLERANCE),
}
# the quantities the acceptance checks at the held-out level
ACCEPTANCE = ("build_seconds", "index_bytes", "qps_per_core", "fixed_qps_per_core", "qps")
BACKUP = ("basebackup_seconds", "dump_seconds", "restore_seconds")
BY_BYTES = frozenset({"basebackup_seconds"})  # fitted against cluster bytes, not rows


def at_target(quantity: str, fit: Fit, answers: CapacityAnswers) -> Prediction:
    """``fit``'s prediction at the target: its rows, or (a fit against bytes) the bytes of
    the target's heap + index."""
    if quantity in BY_BYTES:
        return fit.predict(answers.disk_bytes.value)
    return fit.predict(answers.target.rows)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KindAnalysis:
    """One index kind's fits over the levels and its answers at the target."""

    kind: str
    fits: Mapping[str, Fit]  # quantity -> fit
    missing: Mapping[str, str]  # quantity -> why it has no fit (too few levels measured it)
    answers: CapacityAnswers | None  # None: no target, or no build/size fit
    measured_p99_ms: float | None  # at the largest level, at the target's knob

    def fit(self, quantity: str) -> Fit | None:
        return self.fits.get(quantity)

    def held_out_error(self, quantity: str) -> float | None:
        fit = self.fits.get(quantity)
        holdout = fit.holdout if fit is not None else None
        return holdout.relative_error if holdout is not None else None


def target_of(record: CapacityRecord) -> Target | None:
    """The target the spec names (None: no target_rows)."""
    spec = record.spec
    rows = spec.get("target_rows")
    if not isinstance(rows, int) or rows <= 0:
        return None
    return Target(
        rows=rows,
        dim=_opt_int(spec.get("target_dim")),
        qps=_opt_float(spec.get("target_qps")),
        p99_ms=_opt_float(spec.get("p99_ms")),
    )


def analyse(record: CapacityRecord, *, usl: UslFit | None = None) -> list[KindAnalysis]:
    """Every index kind's fits and answers (``usl``: a fit over clients, when the run has
    one, scales the cores; without it cores add throughput linearly)."""
    out = []
    for kind in record.kinds:
        df = record.frame(kind)
        fits: dict[str, Fit] = {}
        missing: dict[str, str] = {}
        for quantity, fitter in FITTERS.items():
            if quantity not in df.columns or not df[quantity].notna().any():
                continue  # never measured (no backups, no server CPU): nothing to say
            try:
                fits[quantity] = fitter(df)
            except TooFewLevels as exc:
                missing[quantity] = str(exc)
        p99 = _largest_p99(record.levels, kind)
        out.append(
            KindAnalysis(
                kind=kind,
                fits=fits,
                missing=missing,
                answers=_answers(record, kind, fits, usl, p99),
                measured_p99_ms=p99,
            )
        )
    return out


def _answers(
    record: CapacityRecord,
    kind: str,
    fits: Mapping[str, Fit],
    usl: UslFit | None,
    p99: float | None,
) -> CapacityAnswers | None:
    target = target_of(record)
    build, index = fits.get("build_seconds"), fits.get("index_bytes")
    if target is None or build is None or index is None:
        return None
    return answer(
        target=target,
        measured_dim=record.dim,
        build=build,
        index_bytes=index,
        heap_bytes=fits.get("heap_bytes"),
        knob=fits.get("knob"),
        qps_per_core=fits.get("qps_per_core"),
        index_kind=kind,
        maintenance_work_mem=build_memory_setting(record),
        usl=usl,
        cores_per_server=record.server.cores,
        measured_p99_ms=p99,
    )


def build_memory_setting(record: CapacityRecord) -> int | None:
    """The maintenance_work_mem the levels' builds ran with, in bytes: the spec's session
    setting when it set one, else the server's."""
    from ..build.sizes import parse_size

    value = record.spec.get("maintenance_work_mem")
    if isinstance(value, str):
        try:
            return parse_size(value.strip())
        except ValueError:
            return None
    return record.server.bytes_of("maintenance_work_mem")


def _largest_p99(levels: tuple[Level, ...], kind: str) -> float | None:
    for level in reversed(levels):
        ix: IndexLevel | None = level.index(kind)
        if ix is not None and ix.latency is not None:
            return ix.latency.p99_ms
    return None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
