"""The search over builds: Optuna proposes configurations, measure.evaluate measures each,
the session lives in an SQLite storage so an interrupted one resumes where it stopped.

- Query knobs are not searched here: each build's bisection (measure.py) finds its
  smallest ef_search / probes meeting the recall bound, where that build is fastest.
- Build knobs are: TPE (multivariate, with constraints) over integer indexes into the
  space's ordered value lists, so "more m" stays an ordered notion for the model.
- A configuration proposed twice is not rebuilt: the earlier evaluation answers.
- Feasible builds are ranked on their interleaved ratio to a kept reference build
  (relative.py), not on one latency window each.
- With ``subsample`` the exploration runs on a sample; the best few are measured again
  at full size (phase "confirm"), and only full-size evaluations can win.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from ..._deferred import signals_deferred
from ...errors import SpecError
from .measure import Bench, TuneTables
from .objective import better, objective
from .records import Config, Evaluation, Trial
from .relative import Reference, evaluate_ranked
from .space import Space, build_settings_choices, grid_configs, neighbours
from .spec import TuneSpec
from .storage import storage as _storage

STUDY_NAME = "tune"
CONFIRM_NAME = "tune-confirm"
CONFIRM_OFFSET = 1000  # full-size confirmations are numbered 1000, 1001, ...
MAX_REPEATS = 10
# the last trials // REFINE_SHARE builds go to the unmeasured neighbours of the two best so
# far: TPE finds the region, a local step finds its best point (single windows are noisy,
# so the second best's neighbourhood is searched too)
REFINE_SHARE = 4
REFINE_FROM_TOP = 2
REFERENCE_ATTR = "reference"  # the study's reference build (its trial number)
UNREADABLE = -1  # consecutive duplicate proposals before an unseen configuration is forced


@dataclasses.dataclass(frozen=True, kw_only=True)
class Session:
    """One tuning session's fixed inputs."""

    spec: TuneSpec
    space: Space
    full: Bench
    sample: Bench | None  # the subsample's bench, when exploring on one
    tables: TuneTables
    storage: Path
    resume: bool
    seed: int
    fingerprint: str  # data + target + space: a resume must match it
    on_step: Callable[[str], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Searched:
    """What the search found (before the winner's confirmation)."""

    trials: tuple[Trial, ...]
    elapsed_s: float
    stop_reason: str  # trials | time_budget | space_exhausted
    resumed_trials: int
    duplicates: int
    sampler: str


def fingerprint(parts: dict[str, Any]) -> str:
    """A stable digest of what a session's answers depend on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def storage_trials(path: Path) -> int:
    """How many trials the storage at ``path`` holds (0: none, or no storage;
    UNREADABLE: a file that is not a storage pgvbench can read)."""
    if not path.exists():
        return 0
    try:
        studies = optuna.get_all_study_summaries(_storage(path))
    except Exception:  # not an Optuna file (or another version's): never overwritten
        return UNREADABLE
    return sum(s.n_trials for s in studies)


def held_message(path: Path) -> str:
    """Why a new session may not start in ``path`` (an earlier one is kept there)."""
    return (
        f"{path} already holds a tuning session; pass --resume to continue it, or remove "
        "the file (or choose another --out) to start a new one."
    )


def search(session: Session) -> Searched:
    """Propose, evaluate and record builds until the trial or time budget is spent."""
    spec, space = session.spec, session.space
    _quiet_optuna()
    if not session.resume and storage_trials(session.storage):
        raise SpecError(held_message(session.storage))
    study = _open_study(session, STUDY_NAME)
    offset = float(study.user_attrs.get("elapsed_s", 0.0))
    started = time.perf_counter()

    def now() -> float:
        return offset + time.perf_counter() - started

    trials, seen = _recorded(study)
    resumed = len(trials)
    grid = {c.key: c for c in grid_configs(space)}
    explore = session.sample or session.full
    reference = _reference(session, explore, study, trials)
    duplicates = repeats = 0
    stop = "trials"
    refine_from = spec.trials - spec.trials // REFINE_SHARE  # the last quarter: local search
    while len(seen) < spec.trials:
        if spec.time_budget_s is not None and now() >= spec.time_budget_s:
            stop = "time_budget"
            break
        if len(seen) >= len(grid):
            stop = "space_exhausted"
            break
        if repeats >= MAX_REPEATS:  # TPE keeps proposing measured builds: force a new one
            unseen = [c for key, c in grid.items() if key not in seen]
            study.enqueue_trial(_params_of(random.Random(session.seed + len(seen)).choice(unseen),
                                           space))  # fmt: skip
            repeats = 0
        phase = "explore"
        if len(seen) >= refine_from:
            near = _unmeasured_neighbour(spec, space, trials, seen)
            if near is not None:  # the next build: one step from the best ones so far
                study.enqueue_trial(_params_of(near, space))
                phase = "refine"
        trial = study.ask()
        config = propose(trial, space)
        if config.key in seen:
            earlier = seen[config.key]
            trial.set_user_attr("duplicate_of", earlier.number)
            _constrain(trial, spec, earlier.evaluation)
            study.tell(trial, _value(spec, earlier.evaluation))
            duplicates, repeats = duplicates + 1, repeats + 1
            continue
        repeats = 0
        session.on_step(f"trial {len(seen) + 1}/{spec.trials}: {config.label}")
        done = _measured(session, reference, study, study, trial, config, phase=phase,
                         number=trial.number, now=now)  # fmt: skip
        trials.append(done)
        seen[config.key] = done
    reference.close()  # before a full-size reference (or the confirmation) needs copy 0
    study.set_user_attr("elapsed_s", now())
    if session.sample is not None:
        trials.extend(_confirm_at_full_size(session, study, trials, now))
    sampler = f"TPESampler (optuna {optuna.__version__})"
    return Searched(
        trials=tuple(trials),
        elapsed_s=now(),
        stop_reason=stop,
        resumed_trials=resumed,
        duplicates=duplicates,
        sampler=sampler,
    )


def propose(trial: optuna.Trial, space: Space) -> Config:
    """The configuration a trial's suggestions name (ordered indexes into the space)."""
    kind = str(trial.suggest_categorical("kind", list(space.kinds)))
    storage = str(trial.suggest_categorical("storage", list(space.storage)))
    choices = build_settings_choices(space)
    settings = (
        choices[trial.suggest_int("settings_i", 0, len(choices) - 1)] if len(choices) > 1 else {}
    )
    if kind == "hnsw":
        m_i = trial.suggest_int("m_i", 0, len(space.m) - 1)
        e_i = trial.suggest_int("efc_i", 0, len(space.ef_construction) - 1)
        m, efc = _nearest_pair(space, m_i, e_i)
        params = {"m": m, "ef_construction": efc}
    else:
        params = {"lists": space.lists[trial.suggest_int("lists_i", 0, len(space.lists) - 1)]}
    return Config(kind=kind, params=params, storage=storage, build_settings=settings)


def constraints(spec: TuneSpec, ev: Evaluation) -> dict[str, float]:
    """Optuna's constraint values (<= 0: satisfied), one per bound of the target."""
    low = ev.recall.low if ev.recall is not None and ev.recall.low is not None else 0.0
    out = {"recall": spec.recall - low if ev.knob_value is None else 0.0}
    if spec.latency_ms is not None:
        lat = ev.latency.percentile(spec.latency) if ev.latency else None
        out["latency"] = 0.0 if lat is None else lat / spec.latency_ms - 1.0
    for name, limit, used in (
        ("index", spec.max_index_mb, ev.index_bytes / 2**20),
        ("build", spec.max_build_seconds, ev.build_seconds or 0.0),
        ("memory", spec.max_memory_mb, ev.memory_bytes / 2**20),
    ):
        if limit is not None:
            out[name] = used / limit - 1.0
    out["build_failed"] = 1.0 if ev.reason == "build_failed" else 0.0
    return out


def violation(spec: TuneSpec, ev: Evaluation) -> float:
    """How far an evaluation is from meeting every bound (0: it meets them)."""
    return sum(max(0.0, c) for c in constraints(spec, ev).values())


def ranked(spec: TuneSpec, trials: Sequence[Trial], *, phase: str | None = None) -> list[Trial]:
    """Feasible trials (of ``phase``), best objective first; one per configuration."""
    chosen: dict[str, Trial] = {}
    for t in trials:
        if t.objective is None or (phase is not None and t.phase != phase):
            continue
        key = t.evaluation.config.key
        if key not in chosen or better(spec, t.objective, chosen[key].objective or 0.0):
            chosen[key] = t
    sign = -1.0 if spec.objective == "qps" else 1.0
    return sorted(chosen.values(), key=lambda t: (sign * (t.objective or 0.0), t.number))


def closest(spec: TuneSpec, trials: Sequence[Trial]) -> Evaluation | None:
    """The evaluation nearest to meeting the target (smallest total violation)."""
    if not trials:
        return None
    return min(
        (t.evaluation for t in trials),
        key=lambda ev: violation(spec, ev),
    )


# --------------------------------------------------------------------------- internals


def _confirm_at_full_size(
    session: Session, explorer: optuna.Study, explored: list[Trial], now: Callable[[], float]
) -> list[Trial]:
    """The best ``confirm_top`` configurations of the subsample, measured at full size
    (each once: a resumed session keeps those already measured)."""
    spec = session.spec
    study = _open_study(session, CONFIRM_NAME)
    done, seen = _recorded(study)
    reference = _reference(session, session.full, study, done)
    best = ranked(spec, explored)[: spec.confirm_top]
    if not best:  # nothing feasible on the sample: confirm the closest ones anyway
        best = sorted(
            explored,
            key=lambda t: violation(spec, t.evaluation),
        )[: spec.confirm_top]
    for t in best:
        config = t.evaluation.config
        if config.key in seen:
            continue
        trial = study.ask()  # no suggestions: the configuration is the explorer's
        session.on_step(f"confirm at full size: {config.label}")
        record = _measured(session, reference, study, explorer, trial, config,
                           phase="confirm", number=CONFIRM_OFFSET + trial.number,
                           now=now)  # fmt: skip
        done.append(record)
        seen[config.key] = record
    reference.close()
    return done


def _measured(
    session: Session,
    reference: Reference,
    study: optuna.Study,
    clock: optuna.Study,
    trial: optuna.Trial,
    config: Config,
    *,
    phase: str,
    number: int,
    now: Callable[[], float],
) -> Trial:
    """Evaluate ``config`` on the reference's bench (ranked against it); record it in the
    trial and tell ``study``; the session's clock (elapsed time, for --resume) lives on
    the exploring study ``clock``."""
    spec = session.spec
    begin = now()
    ev = evaluate_ranked(reference, config, session.space.knob_ladder(config), number,
                         best=_best_ratio(spec, reference, study))  # fmt: skip
    if reference.trial is not None:  # a resumed session rebuilds the same reference
        study.set_user_attr(REFERENCE_ATTR, reference.trial)
    done = Trial(
        number=number,
        phase=phase,
        evaluation=ev,
        started_s=begin,
        finished_s=now(),
        objective=objective(spec, ev) if ev.feasible else None,
    )
    with signals_deferred():  # the trial recorded and told as one: never half of it
        _record(trial, done, spec)
        study.tell(trial, _value(spec, ev))
        clock.set_user_attr("elapsed_s", now())
    return done


def _best_ratio(spec: TuneSpec, reference: Reference, study: optuna.Study) -> float | None:
    """The best ratio to ``reference`` among ``study``'s measured trials (1.0: the
    reference's own); None before there is a reference."""
    if reference.trial is None:
        return None
    ratios = [1.0]
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        data = frozen.user_attrs.get("trial")
        if not isinstance(data, dict) or frozen.user_attrs.get("duplicate_of") is not None:
            continue
        rel = Trial.from_dict(data).evaluation.relative
        if rel is not None and rel.reference == reference.trial:
            ratios.append(rel.ratio.ratio)
    return max(ratios) if spec.objective == "qps" else min(ratios)


def _reference(
    session: Session, bench: Bench, study: optuna.Study, recorded: Sequence[Trial]
) -> Reference:
    """The reference of ``bench``'s study: after --resume, the one it recorded."""
    reference = Reference(bench, session.tables, seed=session.seed, on_step=session.on_step)
    number = study.user_attrs.get(REFERENCE_ATTR)
    earlier = next((t for t in recorded if t.number == number), None)
    if earlier is not None:
        reference.restore(earlier)
    return reference


def _open_study(session: Session, name: str) -> optuna.Study:
    storage = _storage(session.storage)
    spec = session.spec
    direction = (
        optuna.study.StudyDirection.MAXIMIZE
        if spec.objective == "qps"
        else optuna.study.StudyDirection.MINIMIZE
    )
    sampler = optuna.samplers.TPESampler(
        seed=session.seed,
        n_startup_trials=spec.startup_trials,
        multivariate=True,
        group=True,
    )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        load_if_exists=True,
    )
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", session.fingerprint)
    elif stored != session.fingerprint:
        raise SpecError(
            f"{session.storage} holds a tuning session for other data, another target or "
            "another space than this spec's; --resume continues only the same session. "
            "Remove the file or choose another --out to start a new one."
        )
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)  # interrupted earlier
    return study


def _recorded(study: optuna.Study) -> tuple[list[Trial], dict[str, Trial]]:
    """Trials an earlier invocation completed (duplicates skipped), marked resumed."""
    trials: list[Trial] = []
    seen: dict[str, Trial] = {}
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        data = frozen.user_attrs.get("trial")
        if not isinstance(data, dict):
            continue
        trial = dataclasses.replace(Trial.from_dict(data), resumed=True)
        trials.append(trial)
        seen[trial.evaluation.config.key] = trial
    return trials, seen


def _unmeasured_neighbour(
    spec: TuneSpec, space: Space, trials: Sequence[Trial], seen: dict[str, Trial]
) -> Config | None:
    """The nearest unmeasured neighbour of the best feasible builds so far (None: none)."""
    for best in ranked(spec, trials)[:REFINE_FROM_TOP]:
        for near in neighbours(best.evaluation.config, space):
            if near.key not in seen:
                return near
    return None


def _record(trial: optuna.Trial, done: Trial, spec: TuneSpec) -> None:
    trial.set_user_attr("trial", done.to_dict())
    _constrain(trial, spec, done.evaluation)


def _constrain(trial: optuna.Trial, spec: TuneSpec, ev: Evaluation) -> None:
    """The target's bounds as Optuna constraints (TPE models feasibility from them)."""
    for name, value in constraints(spec, ev).items():
        trial.set_constraint(name, value)


def _value(spec: TuneSpec, ev: Evaluation) -> float:
    """The value Optuna records: the objective, or the worst value when unmeasured."""
    value = objective(spec, ev)
    if value is not None:
        return value
    return 0.0 if spec.objective == "qps" else 1e12


def _nearest_pair(space: Space, m_i: int, e_i: int) -> tuple[int, int]:
    """The valid (m, ef_construction) pair nearest to the suggested indexes."""
    pairs = [(space.m.index(m), space.ef_construction.index(e)) for m, e in space.hnsw_pairs()]
    mi, ei = min(pairs, key=lambda p: (abs(p[0] - m_i) + abs(p[1] - e_i), -p[1], p[0]))
    return space.m[mi], space.ef_construction[ei]


def _params_of(config: Config, space: Space) -> dict[str, Any]:
    """The suggestions that reproduce ``config`` (to enqueue it)."""
    params: dict[str, Any] = {"kind": config.kind, "storage": config.storage}
    choices = build_settings_choices(space)
    if len(choices) > 1:
        params["settings_i"] = choices.index(dict(config.build_settings))
    if config.kind == "hnsw":
        params["m_i"] = space.m.index(config.params["m"])
        params["efc_i"] = space.ef_construction.index(config.params["ef_construction"])
    else:
        params["lists_i"] = space.lists.index(config.params["lists"])
    return params


def _quiet_optuna() -> None:
    """pgvbench shows its own progress; Optuna's INFO lines and experimental warnings
    would interleave with it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
