"""Compare two results files run by run and metric by metric."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from ..results import Results
from .environment import EnvironmentCheck, check_environment
from .runs import BUILD_METRICS, RULES, Run, runs_of
from .stats import MetricRule, decide

RowVerdict = Literal["regression", "improvement", "unchanged", "added", "removed", "invalid"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareOptions:
    alpha: float = 0.01
    # with a base pooled from >= 3 runs, an effect must also exceed noise_k x the base's
    # run-to-run variation (coefficient of variation of the per-run medians)
    noise_k: float = 3.0
    # per-metric minimum effects overriding RULES (relative, or absolute for recall)
    min_effects: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def rule(self, name: str) -> MetricRule:
        rule = RULES[name]
        if name in self.min_effects:
            return dataclasses.replace(rule, min_effect=self.min_effects[name])
        return rule


@dataclasses.dataclass(frozen=True)
class Row:
    """One run x metric (or one whole run when it is added, removed or invalid)."""

    run: str
    metric: str
    verdict: RowVerdict
    base: float | None = None
    current: float | None = None
    change: float | None = None
    absolute: bool = False
    p_value: float | None = None
    method: str = ""
    n_base: int = 0
    n_current: int = 0
    reason: str = ""

    @property
    def fails(self) -> bool:
        return self.verdict in ("regression", "invalid")


@dataclasses.dataclass(frozen=True)
class Comparison:
    base_name: str
    current_name: str
    environment: EnvironmentCheck
    rows: tuple[Row, ...]
    notes: tuple[str, ...]  # run-level remarks (threshold fallback, incomplete runs)
    options: CompareOptions
    # runs found on both sides that yielded at least one judged row: 0 means nothing was
    # compared, which the CLI refuses rather than pass
    matched_runs: int = 0

    @property
    def regressions(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.fails)

    @property
    def verdict(self) -> Literal["regression", "ok"]:
        return "regression" if self.regressions else "ok"

    def count(self, verdict: RowVerdict) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)


def compare_results(
    base: Results,
    current: Results,
    *,
    options: CompareOptions | None = None,
    base_name: str = "base",
    current_name: str = "current",
) -> Comparison:
    """Judge every matched run and metric of ``current`` against ``base``.

    The environment check is reported, not enforced, here; the CLI refuses an
    incompatible pair unless told otherwise.
    """
    options = options or CompareOptions()
    env = check_environment(base, current)
    rows: list[Row] = []
    notes: list[str] = []
    if current.status != "complete":
        rows.append(
            Row(
                run="(whole run)",
                metric="status",
                verdict="invalid",
                reason=f"the current run is {current.status}"
                + (f": {current.failure}" if current.failure else ""),
            )
        )
    if base.status != "complete":
        notes.append(f"the base run is {base.status}: only its completed points are compared")
    base_runs, current_runs = runs_of(base), runs_of(current)
    fallback: set[str] = set()
    matched = 0
    for key, b in base_runs.items():
        c = current_runs.get(key)
        if c is None:
            rows.append(Row(run=b.label, metric="*", verdict="removed", reason="not in current"))
            continue
        run_rows = _compare_run(b, c, options)
        matched += bool(run_rows)
        fallback.update(r.metric for r in run_rows if r.method == "threshold")
        rows.extend(run_rows)
    for key, c in current_runs.items():
        if key not in base_runs:
            rows.append(Row(run=c.label, metric="*", verdict="added", reason="not in base"))
    builds = fallback & BUILD_METRICS
    if builds:
        notes.append(
            f"{', '.join(sorted(builds))}: index builds are measured once per run, so these "
            "are judged by their minimum effect alone (no significance test)"
        )
    timings = fallback - BUILD_METRICS
    if timings:
        notes.append(
            f"{', '.join(m for m in RULES if m in timings)}: a single sample (or too few "
            "repeats) on one side, judged by the minimum effect alone without a significance "
            f"test; set [experiment] repeats >= 6 for a statistical verdict at alpha "
            f"{options.alpha:g}"
        )
    return Comparison(
        base_name=base_name,
        current_name=current_name,
        environment=env,
        rows=tuple(rows),
        notes=tuple(notes),
        options=options,
        matched_runs=matched,
    )


def _compare_run(base: Run, current: Run, options: CompareOptions) -> list[Row]:
    rows: list[Row] = []
    if not current.valid and base.valid:
        rows.append(
            Row(
                run=current.label,
                metric="validity",
                verdict="invalid",
                reason="valid in base, invalid now: " + "; ".join(current.problems),
            )
        )
    elif current.problems or base.problems:
        problems = [f"base: {p}" for p in base.problems] + [
            f"current: {p}" for p in current.problems
        ]
        rows.append(
            Row(
                run=current.label,
                metric="validity",
                verdict="unchanged",
                reason="measurement may be invalid: " + "; ".join(problems),
            )
        )
    if current.errors and not base.errors:
        rows.append(
            Row(
                run=current.label,
                metric="errors",
                verdict="regression",
                base=0.0,
                current=float(current.errors),
                reason=f"{current.errors} operations failed (none in base)",
            )
        )
    for name in RULES:
        b, c = base.samples.get(name), current.samples.get(name)
        if not b or not c:
            continue
        rule = options.rule(name)
        d = decide(
            rule,
            b,
            c,
            alpha=options.alpha,
            base_runs=base.by_run.get(name, ()),
            noise_k=options.noise_k,
        )
        rows.append(
            Row(
                run=current.label,
                metric=name,
                verdict=d.verdict,
                base=d.base,
                current=d.current,
                change=d.change,
                absolute=rule.absolute,
                p_value=d.p_value,
                method=d.method,
                n_base=len(b),
                n_current=len(c),
                reason=d.reason,
            )
        )
    return rows
