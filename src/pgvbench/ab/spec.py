"""The optional ``[ab]`` table of a spec: how this file takes part in ``pgvbench ab``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..spec.settings import _settings_table
from ..spec.table import Table

KNN_PLACEHOLDER = "{knn}"
AB_KEYS = ["label", "settings", "sql", "clients", "rounds", "window_seconds"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbSpec:
    """One variant's own knobs; None leaves the default (or the command line's) in force."""

    label: str | None = None
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)  # session GUCs
    sql: str | None = None  # wrapper around the kNN SELECT, with {knn} where it goes
    clients: int | None = None
    rounds: int | None = None
    window_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "settings": dict(self.settings),
            "sql": self.sql,
            "clients": self.clients,
            "rounds": self.rounds,
            "window_seconds": self.window_seconds,
        }


def parse_ab(t: Table) -> AbSpec:
    t.only(AB_KEYS)
    label = t.string("label") if "label" in t.data else None
    if label is not None and not label.strip():
        t.fail("label", "is empty; give the name this variant has in the output")
    settings = _settings_table(t, "settings", t.data.get("settings", {}))
    sql = t.string("sql") if "sql" in t.data else None
    if sql is not None:
        count = sql.count(KNN_PLACEHOLDER)
        if count != 1:
            t.fail(
                "sql",
                f"must contain {KNN_PLACEHOLDER} exactly once (it has it {count} times): it "
                "marks where the kNN SELECT goes, e.g. "
                '"SELECT id, length(md5(id::text)) FROM ({knn}) AS q" (first column: the id)',
            )
        if ";" in sql.replace(KNN_PLACEHOLDER, ""):
            t.fail("sql", "must be one SELECT statement, without ';'")
    return AbSpec(
        label=label.strip() if label is not None else None,
        settings=settings,
        sql=sql,
        clients=t.integer("clients", minimum=1, maximum=256) if "clients" in t.data else None,
        rounds=t.integer("rounds", minimum=2, maximum=1000) if "rounds" in t.data else None,
        window_seconds=(
            t.number("window_seconds", minimum=0.1, maximum=600.0)
            if "window_seconds" in t.data
            else None
        ),
    )
