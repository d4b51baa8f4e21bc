"""ab.json: the versioned record of one ``pgvbench ab`` comparison (no prose, no I/O but
the atomic write and the read)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._atomic import write_bytes_atomic
from ..errors import ResultsError
from .trials import Window
from .verdict import MetricVerdict

FORMAT = "pgvbench-ab"
VERSION = 1
Overall = Literal["regression", "ok", "invalid"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbRecord:
    created_at: str
    variants: tuple[Mapping[str, Any], ...]  # Variant.to_dict() of A, then B
    seed: int
    rounds: int
    window_s: float
    clients: int
    alpha: float
    min_effects: Mapping[str, float]
    environment: Mapping[str, Any]
    dataset: Mapping[str, Any]
    server_settings: Mapping[str, Any]
    built: tuple[Mapping[str, Any], ...]
    plans: tuple[Mapping[str, Any], ...]  # arm, problem, plan_text
    recall: Mapping[str, tuple[float, ...]]  # per arm, per recall query
    recall_rule: str | None
    schedule: tuple[tuple[str, ...], ...]
    windows: tuple[Window, ...]
    blocks_available: bool
    cpu_available: bool
    measured_s: float
    wall_s: float
    verdicts: tuple[MetricVerdict, ...]
    errors: Mapping[str, int]  # failed operations per arm

    @property
    def invalid(self) -> bool:
        return any(p.get("problem") for p in self.plans)

    @property
    def verdict(self) -> Overall:
        if self.invalid:
            return "invalid"
        if any(v.fails for v in self.verdicts) or (
            self.errors.get("B", 0) > 0 and self.errors.get("A", 0) == 0
        ):
            return "regression"
        return "ok"

    def label(self, arm: str) -> str:
        return str(next(v["label"] for v in self.variants if v["arm"] == arm))

    def rounds_detail(self) -> list[dict[str, Any]]:
        """Per round: the order run and each arm's window."""
        out = []
        for i, order in enumerate(self.schedule):
            entry: dict[str, Any] = {"round": i, "order": list(order)}
            for w in self.windows:
                if w.round == i:
                    entry[w.arm] = w.to_dict()
            out.append(entry)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "verdict": self.verdict,
            "variants": [dict(v) for v in self.variants],
            "seed": self.seed,
            "rounds": self.rounds,
            "window_s": self.window_s,
            "clients": self.clients,
            "alpha": self.alpha,
            "min_effects": dict(self.min_effects),
            "environment": dict(self.environment),
            "dataset": dict(self.dataset),
            "server_settings": dict(self.server_settings),
            "built": [dict(b) for b in self.built],
            "plans": [dict(p) for p in self.plans],
            "recall": {arm: list(v) for arm, v in self.recall.items()},
            "recall_rule": self.recall_rule,
            "schedule": [list(o) for o in self.schedule],
            "rounds_detail": self.rounds_detail(),
            "blocks_available": self.blocks_available,
            "cpu_available": self.cpu_available,
            "measured_s": self.measured_s,
            "wall_s": self.wall_s,
            "metrics": [v.to_dict() for v in self.verdicts],
            "errors": dict(self.errors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> AbRecord:
        if data.get("format") != FORMAT:
            raise ResultsError(
                f"{source}: not a pgvbench ab record (format {data.get('format')!r})"
            )
        if data.get("version") != VERSION:
            raise ResultsError(
                f"{source}: pgvbench ab record version {data.get('version')!r}; this pgvbench "
                f"reads version {VERSION}"
            )
        windows = tuple(
            Window.from_dict(entry[arm])
            for entry in data["rounds_detail"]
            for arm in entry["order"]
            if arm in entry
        )
        return cls(
            created_at=data["created_at"],
            variants=tuple(data["variants"]),
            seed=int(data["seed"]),
            rounds=int(data["rounds"]),
            window_s=float(data["window_s"]),
            clients=int(data["clients"]),
            alpha=float(data["alpha"]),
            min_effects=dict(data["min_effects"]),
            environment=dict(data["environment"]),
            dataset=dict(data["dataset"]),
            server_settings=dict(data["server_settings"]),
            built=tuple(data["built"]),
            plans=tuple(data["plans"]),
            recall={arm: tuple(v) for arm, v in data["recall"].items()},
            recall_rule=data.get("recall_rule"),
            schedule=tuple(tuple(o) for o in data["schedule"]),
            windows=windows,
            blocks_available=bool(data["blocks_available"]),
            cpu_available=bool(data.get("cpu_available", False)),
            measured_s=float(data["measured_s"]),
            wall_s=float(data["wall_s"]),
            verdicts=tuple(MetricVerdict.from_dict(m) for m in data["metrics"]),
            errors=dict(data.get("errors", {})),
        )


def write_record(record: AbRecord, path: Path) -> None:
    write_bytes_atomic(path, (json.dumps(record.to_dict(), indent=2) + "\n").encode("utf-8"))


def read_record(path: Path) -> AbRecord:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read a pgvbench ab record: {exc}") from None
    return AbRecord.from_dict(data, source=str(path))
