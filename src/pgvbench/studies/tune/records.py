"""The tuner's typed records: one configuration, one trial (a build and what was measured
on it), the winner's confirmation and the whole session, each with its JSON form
(results.tuning.tune). Reason codes, never sentences: advice.py and report.py word them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...analysis.paired import PairedRatio
from ...results import Recall
from .._fields import float_or, int_or, objects, opt_float, opt_int, opt_text, str_map, text

# why a trial is not a candidate (status != "ok"), or why a feasible one lost
REASONS = (
    "recall_unreachable",  # the recall bound missed at the largest allowed query knob
    "latency_over",  # the latency bound missed at the smallest knob meeting recall
    "index_over",  # index bytes over max_index_mb
    "build_over",  # build seconds over max_build_seconds
    "memory_over",  # index + heap over max_memory_mb
    "build_failed",  # CREATE INDEX failed (e.g. out of maintenance_work_mem)
    "duplicate",  # the optimiser proposed a configuration already measured
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """One point of the build space: index kind and parameters, how vectors are stored,
    the session settings of its build."""

    kind: str  # hnsw | ivfflat
    params: Mapping[str, int]  # hnsw: m, ef_construction; ivfflat: lists
    storage: str = "vector"  # vector | halfvec_index | halfvec_column
    build_settings: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def knob(self) -> str:
        """The query-time setting of this kind."""
        return "hnsw.ef_search" if self.kind == "hnsw" else "ivfflat.probes"

    @property
    def key(self) -> str:
        """Stable identity (for duplicates and resumes)."""
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        settings = ",".join(f"{k}={v}" for k, v in sorted(self.build_settings.items()))
        return f"{self.kind}({params})/{self.storage}/{settings}"

    @property
    def label(self) -> str:
        """Short human label, e.g. ``hnsw m=16 efc=64 halfvec_index``."""
        short = {"ef_construction": "efc"}
        parts = [self.kind, *(f"{short.get(k, k)}={v}" for k, v in self.params.items())]
        if self.storage != "vector":
            parts.append(self.storage)
        parts.extend(f"{k}={v}" for k, v in self.build_settings.items())
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "storage": self.storage,
            "build_settings": dict(self.build_settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        params = data.get("params")
        return cls(
            kind=text(data, "kind", "hnsw"),
            params={str(k): int(v) for k, v in params.items()}
            if isinstance(params, Mapping)
            else {},
            storage=text(data, "storage", "vector"),
            build_settings=str_map(data, "build_settings"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class KnobProbe:
    """One recall measurement on the way to the smallest knob value that meets the bound."""

    value: int
    recall_mean: float
    recall_low: float  # the one-sided lower bound the target is checked against
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KnobProbe:
        return cls(
            value=int_or(data, "value", 0),
            recall_mean=float_or(data, "recall_mean", 0.0),
            recall_low=float_or(data, "recall_low", 0.0),
            seconds=float_or(data, "seconds", 0.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Latency:
    """One timed window (or several merged) at the target's concurrency or rate."""

    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    operations: int
    errors: int = 0
    clients: int = 1
    rate: float | None = None  # open loop: the arrival rate; None: closed loop
    seconds: float = 0.0  # measured window length
    # CPU cores busy during the window: the load generator, the server's processes (None:
    # not known, e.g. --dsn) and the rest of the host (foreign load)
    client_cpu_cores: float | None = None
    server_cpu_cores: float | None = None
    foreign_cpu_cores: float | None = None

    def percentile(self, which: str) -> float:
        return self.p99_ms if which == "p99" else self.p95_ms

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latency:
        return cls(
            qps=float_or(data, "qps", 0.0),
            p50_ms=float_or(data, "p50_ms", 0.0),
            p95_ms=float_or(data, "p95_ms", 0.0),
            p99_ms=float_or(data, "p99_ms", 0.0),
            operations=int_or(data, "operations", 0),
            errors=int_or(data, "errors", 0),
            clients=int_or(data, "clients", 1),
            rate=opt_float(data, "rate"),
            seconds=float_or(data, "seconds", 0.0),
            client_cpu_cores=opt_float(data, "client_cpu_cores"),
            server_cpu_cores=opt_float(data, "server_cpu_cores"),
            foreign_cpu_cores=opt_float(data, "foreign_cpu_cores"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Relative:
    """A build timed interleaved with the session's reference build (relative.py): the
    search ranks builds on this, not on one window each (on a shared machine one window
    of one configuration varies up to 2x; a ratio of adjacent windows far less)."""

    reference: int  # the reference build's trial number
    measure: str  # qps | p99 | p95: what the ratio compares (the objective's measure)
    reference_value: float  # the reference's own value of it (its assessed window)
    ratio: PairedRatio  # this build / the reference, over interleaved rounds

    @property
    def value(self) -> float:
        """This build's value on the reference's scale: what the search compares."""
        return self.ratio.ratio * self.reference_value

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "measure": self.measure,
            "reference_value": self.reference_value,
            "ratio": self.ratio.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Relative:
        return cls(
            reference=int_or(data, "reference", 0),
            measure=text(data, "measure", "qps"),
            reference_value=float_or(data, "reference_value", 0.0),
            ratio=PairedRatio.from_dict(dict(data["ratio"])),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evaluation:
    """What measure.evaluate found for one build (before the search's bookkeeping)."""

    config: Config
    rows: int  # rows in the table the build indexed (a subsample or the whole table)
    build_seconds: float | None  # None: the build failed
    index_bytes: int
    table_bytes: int  # heap + TOAST of the candidate's table (halfvec_column shrinks it)
    probes: tuple[KnobProbe, ...]  # the bisection path, in the order measured
    knob_value: int | None  # the smallest value meeting the recall bound; None: none did
    recall: Recall | None  # at knob_value (or at the largest value tried when none did)
    latency: Latency | None  # at knob_value; None when recall was unreachable
    reason: str | None  # None: meets every bound; else one of REASONS
    seconds: float  # wall time of this evaluation (build + probes + latency)
    error: str | None = None  # the server's message when the build failed
    # filtered targets: the iterative-scan mode the knob and latency were measured with
    # (the best of the modes tried on this build); None: plain top-k queries
    iterative_scan: str | None = None
    # timed interleaved with the session's reference build (None: not, e.g. infeasible)
    relative: Relative | None = None

    @property
    def memory_bytes(self) -> int:
        return self.index_bytes + self.table_bytes

    @property
    def feasible(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "rows": self.rows,
            "build_seconds": self.build_seconds,
            "index_bytes": self.index_bytes,
            "table_bytes": self.table_bytes,
            "probes": [p.to_dict() for p in self.probes],
            "knob_value": self.knob_value,
            "recall": dataclasses.asdict(self.recall) if self.recall is not None else None,
            "latency": self.latency.to_dict() if self.latency is not None else None,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "iterative_scan": self.iterative_scan,
            "relative": self.relative.to_dict() if self.relative is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        recall = data.get("recall")
        latency = data.get("latency")
        relative = data.get("relative")
        return cls(
            config=Config.from_dict(data.get("config") or {}),
            rows=int_or(data, "rows", 0),
            build_seconds=opt_float(data, "build_seconds"),
            index_bytes=int_or(data, "index_bytes", 0),
            table_bytes=int_or(data, "table_bytes", 0),
            probes=tuple(KnobProbe.from_dict(p) for p in objects(data, "probes")),
            knob_value=opt_int(data, "knob_value"),
            recall=_recall(recall) if isinstance(recall, Mapping) else None,
            latency=Latency.from_dict(latency) if isinstance(latency, Mapping) else None,
            reason=opt_text(data, "reason"),
            seconds=float_or(data, "seconds", 0.0),
            error=opt_text(data, "error"),
            iterative_scan=opt_text(data, "iterative_scan"),
            relative=(
                Relative.from_dict(relative)
                if isinstance(relative, Mapping) and isinstance(relative.get("ratio"), Mapping)
                else None
            ),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Trial:
    """One optimiser trial: its evaluation, when it ran and what the search made of it."""

    number: int  # Optuna's trial number
    # explore (TPE; on the subsample when there is one) | refine (a neighbour of the best
    # so far, the last quarter of the trials) | confirm (the subsample's best, full size)
    phase: str
    evaluation: Evaluation
    started_s: float  # since the session began (resumed sessions keep counting)
    finished_s: float
    objective: float | None  # the value the optimiser saw (None: infeasible)
    resumed: bool = False  # measured by an earlier, interrupted invocation

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "phase": self.phase,
            "evaluation": self.evaluation.to_dict(),
            "started_s": round(self.started_s, 3),
            "finished_s": round(self.finished_s, 3),
            "objective": self.objective,
            "resumed": self.resumed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        return cls(
            number=int_or(data, "number", 0),
            phase=text(data, "phase", "explore"),
            evaluation=Evaluation.from_dict(data.get("evaluation") or {}),
            started_s=float_or(data, "started_s", 0.0),
            finished_s=float_or(data, "finished_s", 0.0),
            objective=opt_float(data, "objective"),
            resumed=bool(data.get("resumed", False)),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Confirmation:
    """The winner rebuilt and measured again, interleaved with the runner-up."""

    winner: Evaluation  # the rebuild's own recall (re-bisected) and latency
    runner_up: Evaluation | None
    qps: PairedRatio | None  # runner-up / winner over interleaved rounds (< 1: winner faster)
    p99: PairedRatio | None  # runner-up / winner, the target's percentile
    rounds: int
    window_s: float
    recall_holds: bool  # the rebuild still meets the recall bound at the chosen knob
    # the largest difference in mean recall between the search's build and the rebuild
    # near the chosen knob (None: not measured on both); the winner's knob carries it
    build_spread: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner.to_dict(),
            "runner_up": self.runner_up.to_dict() if self.runner_up is not None else None,
            "qps": self.qps.to_dict() if self.qps is not None else None,
            "p99": self.p99.to_dict() if self.p99 is not None else None,
            "rounds": self.rounds,
            "window_s": self.window_s,
            "recall_holds": self.recall_holds,
            "build_spread": self.build_spread,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Confirmation:
        runner = data.get("runner_up")
        qps, p99 = data.get("qps"), data.get("p99")
        return cls(
            winner=Evaluation.from_dict(data.get("winner") or {}),
            runner_up=Evaluation.from_dict(runner) if isinstance(runner, Mapping) else None,
            qps=PairedRatio.from_dict(dict(qps)) if isinstance(qps, Mapping) else None,
            p99=PairedRatio.from_dict(dict(p99)) if isinstance(p99, Mapping) else None,
            rounds=int_or(data, "rounds", 0),
            window_s=float_or(data, "window_s", 0.0),
            recall_holds=bool(data.get("recall_holds", False)),
            build_spread=opt_float(data, "build_spread"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuneRecord:
    """A whole tuning session (results.tuning.tune)."""

    target: Mapping[str, Any]  # the TuneSpec as run (CLI overrides applied), spec_to_dict
    space: Mapping[str, Any]  # the space searched, every key resolved (space.Space.to_dict)
    k: int
    rows: int  # the full table
    dim: int
    metric: str
    trials: tuple[Trial, ...]
    winner: int | None  # the trial number recommended; None: nothing met the target
    runner_up: int | None
    confirmation: Confirmation | None
    elapsed_s: float  # the session's wall time, resumed parts included
    grid_builds: int  # the full grid over the same space: builds ...
    grid_points: int  # ... and (build, knob value) points
    grid_estimate_s: float  # its estimated wall time, from this session's own measurements
    external: bool  # --dsn: server settings are recommendations only
    server_settings: Mapping[str, str]  # in effect during the session (for postgresql.conf)
    storage_path: str  # Optuna's SQLite storage (resume from it)
    sampler: str  # e.g. "TPESampler (optuna 4.5.0)"
    stop_reason: str  # trials | time_budget | space_exhausted
    resumed_trials: int = 0
    best_unmet: Evaluation | None = None  # no winner: the closest evaluation (for the message)
    notes: tuple[str, ...] = ()  # reason codes of measurement concerns
    # [tune] filter: the filtered target's condition and selectivity (FilterTarget.summary)
    filter: Mapping[str, Any] | None = None

    def trial(self, number: int | None) -> Trial | None:
        return next((t for t in self.trials if t.number == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "target": dict(self.target),
            "space": dict(self.space),
            "k": self.k,
            "rows": self.rows,
            "dim": self.dim,
            "metric": self.metric,
            "trials": [t.to_dict() for t in self.trials],
            "winner": self.winner,
            "runner_up": self.runner_up,
            "confirmation": self.confirmation.to_dict() if self.confirmation else None,
            "elapsed_s": round(self.elapsed_s, 3),
            "grid_builds": self.grid_builds,
            "grid_points": self.grid_points,
            "grid_estimate_s": round(self.grid_estimate_s, 1),
            "external": self.external,
            "server_settings": dict(self.server_settings),
            "storage_path": self.storage_path,
            "sampler": self.sampler,
            "stop_reason": self.stop_reason,
            "resumed_trials": self.resumed_trials,
            "best_unmet": self.best_unmet.to_dict() if self.best_unmet else None,
            "notes": list(self.notes),
            "filter": dict(self.filter) if self.filter is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneRecord:
        confirmation = data.get("confirmation")
        unmet = data.get("best_unmet")
        target, space = data.get("target"), data.get("space")
        return cls(
            target=dict(target) if isinstance(target, Mapping) else {},
            space=dict(space) if isinstance(space, Mapping) else {},
            k=int_or(data, "k", 10),
            rows=int_or(data, "rows", 0),
            dim=int_or(data, "dim", 0),
            metric=text(data, "metric", "l2"),
            trials=tuple(Trial.from_dict(t) for t in objects(data, "trials")),
            winner=opt_int(data, "winner"),
            runner_up=opt_int(data, "runner_up"),
            confirmation=(
                Confirmation.from_dict(confirmation) if isinstance(confirmation, Mapping) else None
            ),
            elapsed_s=float_or(data, "elapsed_s", 0.0),
            grid_builds=int_or(data, "grid_builds", 0),
            grid_points=int_or(data, "grid_points", 0),
            grid_estimate_s=float_or(data, "grid_estimate_s", 0.0),
            external=bool(data.get("external", False)),
            server_settings=str_map(data, "server_settings"),
            storage_path=text(data, "storage_path"),
            sampler=text(data, "sampler"),
            stop_reason=text(data, "stop_reason", "trials"),
            resumed_trials=int_or(data, "resumed_trials", 0),
            best_unmet=Evaluation.from_dict(unmet) if isinstance(unmet, Mapping) else None,
            notes=tuple(str(n) for n in data.get("notes") or () if isinstance(n, str)),
            filter=dict(data["filter"]) if isinstance(data.get("filter"), Mapping) else None,
        )


def _recall(data: Mapping[str, Any]) -> Recall:
    names = {f.name for f in dataclasses.fields(Recall)}
    return Recall(
        mean=float_or(data, "mean", 0.0),
        p5=float_or(data, "p5", 0.0),
        min=float_or(data, "min", 0.0),
        **{k: data[k] for k in ("low", "p1", "zero", "queries") if k in names and k in data},
    )
