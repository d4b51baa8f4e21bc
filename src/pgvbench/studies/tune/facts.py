"""What the prose modules (advice, apply, report, plots) read off a :class:`TuneRecord`:
the target as a typed spec, the resolved space, the winner's evaluation and the query
settings to apply. No sentences here and no database: plain derivations shared by the
modules that word and draw the session, so they agree on which figure is which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...analysis.paired import PairedRatio
from ..build.sizes import parse_size
from .records import Config, Evaluation, Trial, TuneRecord
from .space import Space, probes_ladder
from .spec import MAX_EF_SEARCH, TuneSpec

_MB = 1024**2
# shared_buffers: the winner's index + heap and a quarter more for the rest of the database
# (catalogs, other tables, the queries' own pages); maintenance_work_mem: the measured
# index size stands in for the in-memory graph, a quarter more for the estimate's error
SHARED_BUFFERS_HEADROOM = 1.25
GRAPH_HEADROOM = 1.25
DEFAULT_SHARED_BUFFERS = 128 * _MB  # PostgreSQL's defaults: never recommend less
DEFAULT_MAINTENANCE_WORK_MEM = 64 * _MB


def target_spec(record: TuneRecord) -> TuneSpec:
    """The ``[tune]`` spec the session ran with (JSON lists back to tuples; a key an older
    or newer record lacks keeps the spec's default)."""
    names = {f.name for f in dataclasses.fields(TuneSpec)}
    kept: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.target.items() if k in names
    }
    try:
        return TuneSpec(**kept)
    except TypeError:  # a malformed record: the defaults still word something sensible
        return TuneSpec()


def resolved_space(record: TuneRecord) -> Space:
    """The space the session searched (Space.to_dict read back)."""
    data: Mapping[str, Any] = record.space

    def ints(key: str) -> tuple[int, ...]:
        value = data.get(key) or ()
        return tuple(int(v) for v in value) if isinstance(value, list | tuple) else ()

    def texts(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list | tuple) else default

    probes = data.get("max_probes")
    return Space(
        kinds=texts("kinds", ("hnsw", "ivfflat")),
        m=ints("m"),
        ef_construction=ints("ef_construction"),
        lists=ints("lists"),
        storage=texts("storage", ("vector",)),
        maintenance_work_mem=texts("maintenance_work_mem"),
        max_parallel_maintenance_workers=ints("max_parallel_maintenance_workers"),
        max_ef_search=int(data.get("max_ef_search") or MAX_EF_SEARCH),
        max_probes=int(probes) if isinstance(probes, int) else None,
        k=int(data.get("k") or record.k),
        derived=texts("derived"),
    )


def winner_trial(record: TuneRecord) -> Trial | None:
    return record.trial(record.winner)


def runner_up_trial(record: TuneRecord) -> Trial | None:
    return record.trial(record.runner_up)


def confirmed(record: TuneRecord, evaluation: Evaluation | None) -> Evaluation | None:
    """The confirmation's measurement of ``evaluation``'s configuration (None: not in it).

    Matched by configuration, not by role: when the runner-up won the interleaved rounds
    the session swaps winner and runner-up, and the confirmation's "winner" is then the
    record's runner-up."""
    confirmation = record.confirmation
    if confirmation is None or evaluation is None:
        return None
    key = evaluation.config.key
    for again in (confirmation.winner, confirmation.runner_up):
        if again is not None and again.config.key == key:
            return again
    return None


def swapped(record: TuneRecord) -> bool:
    """The record's winner is the confirmation's runner-up (swapped on confirmation)."""
    confirmation, trial = record.confirmation, winner_trial(record)
    if confirmation is None or confirmation.runner_up is None or trial is None:
        return False
    return confirmation.runner_up.config.key == trial.evaluation.config.key


def inverse(ratio: PairedRatio) -> PairedRatio:
    """b / a turned into a / b: the ratio, its interval and every round."""
    return dataclasses.replace(
        ratio,
        ratio=1.0 / ratio.ratio,
        low=None if ratio.high is None else 1.0 / ratio.high,
        high=None if ratio.low is None else 1.0 / ratio.low,
        per_round=tuple(1.0 / r for r in ratio.per_round if r),
    )


def winner_over_runner_up(record: TuneRecord, which: str) -> PairedRatio | None:
    """The record's winner / runner-up on ``which`` ("qps" or the latency percentile) over
    the confirmation's interleaved rounds (None: no rounds)."""
    confirmation = record.confirmation
    if confirmation is None:
        return None
    ratio = confirmation.qps if which == "qps" else confirmation.p99
    if ratio is None or ratio.rounds == 0 or ratio.ratio <= 0:
        return None
    return ratio if swapped(record) else inverse(ratio)  # stored: runner-up / winner


def chosen(record: TuneRecord) -> Evaluation | None:
    """The evaluation whose knob value apply.sql sets: the rebuild's when it needed a higher
    knob than the trial (the recall did not hold at the trial's value), else the trial's."""
    trial = winner_trial(record)
    if trial is None:
        return None
    again = confirmed(record, trial.evaluation)
    if again is not None and (again.knob_value or 0) > (trial.evaluation.knob_value or 0):
        return again
    return trial.evaluation


def runner_up(record: TuneRecord) -> Evaluation | None:
    """The runner-up as measured last: in the confirmation when it was re-measured there."""
    trial = runner_up_trial(record)
    if trial is None:
        return None
    return confirmed(record, trial.evaluation) or trial.evaluation


def knob_short(config: Config) -> str:
    """``ef_search`` / ``probes``: the knob's name without its extension prefix."""
    return config.knob.split(".", 1)[1]


def knob_top(space: Space, config: Config) -> int:
    """The largest knob value the search allowed for ``config``."""
    if config.kind == "hnsw":
        return space.max_ef_search
    lists = int(config.params.get("lists", 0))
    return probes_ladder(min(lists, space.max_probes or lists))[-1] if lists else 0


def iterative_scan(evaluation: Evaluation, spec: TuneSpec) -> str | None:
    """The iterative scan mode the evaluation's knob and latency were measured with (None:
    off, or plain top-k queries). Records before the field: a filtered target that
    searched one mode only ran with that one."""
    mode = evaluation.iterative_scan
    if mode is None and spec.filter is not None and len(spec.iterative_scan) == 1:
        mode = spec.iterative_scan[0]
    return mode if mode and mode != "off" else None


def build_settings(evaluation: Evaluation) -> dict[str, str]:
    """The session settings the build ran with."""
    return dict(evaluation.config.build_settings)


def query_settings(record: TuneRecord) -> dict[str, str]:
    """The settings apply.sql makes the database default: the knob, the iterative scan."""
    evaluation = chosen(record)
    if evaluation is None or evaluation.knob_value is None:
        return {}
    config = evaluation.config
    out = {config.knob: str(evaluation.knob_value)}
    mode = iterative_scan(evaluation, target_spec(record))
    if mode is not None:
        out[f"{config.kind}.iterative_scan"] = mode
    return out


def mb(num_bytes: float) -> float:
    return num_bytes / _MB


def feasible_trials(record: TuneRecord) -> list[Trial]:
    return [t for t in record.trials if t.evaluation.feasible]


def objective_value(evaluation: Evaluation, spec: TuneSpec) -> float | None:
    """The objective of a feasible evaluation in its own unit (QPS, ms, MB), computed from
    the evaluation rather than read from the optimiser's value (whose sign the search may
    flip): None when it is infeasible or was not timed."""
    if not evaluation.feasible:
        return None
    if spec.objective == "memory":
        return mb(evaluation.memory_bytes)
    if evaluation.latency is None:
        return None
    if spec.objective == "qps":
        return evaluation.latency.qps
    return evaluation.latency.percentile(spec.latency)


def better(a: float, b: float, spec: TuneSpec) -> bool:
    """Whether objective value ``a`` beats ``b`` (QPS up; latency and memory down)."""
    return a > b if spec.objective == "qps" else a < b


def best_so_far(record: TuneRecord) -> list[tuple[float, float]]:
    """(finished_s, best feasible objective up to then) at each trial that improved it."""
    spec = target_spec(record)
    best: float | None = None
    out: list[tuple[float, float]] = []
    for trial in sorted(record.trials, key=lambda t: t.finished_s):
        value = objective_value(trial.evaluation, spec)
        if value is not None and (best is None or better(value, best, spec)):
            best = value
            out.append((trial.finished_s, value))
    return out


def size_step(num_bytes: float) -> int:
    """The unit a size is rounded up to: 128MB below 1GB, 512MB below 8GB, 1GB above."""
    if num_bytes <= 1024 * _MB:
        return 128 * _MB
    return 512 * _MB if num_bytes <= 8192 * _MB else 1024 * _MB


def round_up(num_bytes: float) -> int:
    step = size_step(num_bytes)
    return max(step, -(-int(num_bytes) // step) * step)


def size_bytes(value: str | None) -> int | None:
    """A memory setting's value (``1GB``, ``65536kB``) in bytes; None: absent, unreadable."""
    if not value:
        return None
    try:
        return parse_size(value)
    except ValueError:
        return None


def shared_buffers_bytes(evaluation: Evaluation) -> int:
    """shared_buffers holding the evaluation's index and heap, with headroom, rounded up."""
    need = evaluation.memory_bytes * SHARED_BUFFERS_HEADROOM
    return max(DEFAULT_SHARED_BUFFERS, round_up(need))


def built_with(record: TuneRecord, evaluation: Evaluation, name: str) -> str | None:
    """A build setting the evaluation's build ran with: its own (searched), else the
    session's server setting."""
    return evaluation.config.build_settings.get(name) or record.server_settings.get(name)


def maintenance_work_mem_bytes(record: TuneRecord, evaluation: Evaluation) -> int:
    """maintenance_work_mem so the HNSW graph fits during a build: the measured index size
    with headroom, rounded up; never below what the measured build ran with (its build time
    was measured there). IVFFlat's build holds only the list centres and a sample: what
    the measured build ran with, at least PostgreSQL's default."""
    measured = size_bytes(built_with(record, evaluation, "maintenance_work_mem"))
    floor = max(DEFAULT_MAINTENANCE_WORK_MEM, measured or 0)
    if evaluation.config.kind != "hnsw":
        return floor
    return max(floor, round_up(evaluation.index_bytes * GRAPH_HEADROOM))
