"""[server] settings: the ones pgvbench manages itself, pgvector's own, and the
[server.settings] / [[server.sweep]] tables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .machine import parse_limits
from .model import ServerSpec, SweepConfig
from .table import Table

MAX_REPLICAS = 8  # [server] replicas: hot standbys (server/replicas.py has the same limit)

# Settings pgvbench chooses for its embedded server: a spec value would move the server
# where pgvbench cannot find or reach it (port = 5999 left the data dir unusable).
_WHERE_IT_LISTENS = "it picks a free port and connects through it"
_ITS_FILES = "it keeps the server's files in its data directory"
_ITS_LOGS = "it reads the server log to diagnose failures"
MANAGED_SETTINGS: Mapping[str, str] = {
    "port": _WHERE_IT_LISTENS,
    "listen_addresses": _WHERE_IT_LISTENS,
    "unix_socket_directories": _WHERE_IT_LISTENS,
    "unix_socket_permissions": _WHERE_IT_LISTENS,
    "unix_socket_group": _WHERE_IT_LISTENS,
    "data_directory": _ITS_FILES,
    "hba_file": _ITS_FILES,
    "ident_file": _ITS_FILES,
    "config_file": _ITS_FILES,
    "external_pid_file": _ITS_FILES,
    "logging_collector": _ITS_LOGS,
    "log_directory": _ITS_LOGS,
    "log_filename": _ITS_LOGS,
}

# pgvector 0.8's query-time settings and the values it accepts. Outside them SET fails, or,
# when the value reaches the server before the library loads (postgresql.conf, a
# placeholder), pgvector warns and silently keeps its default while results would record
# the spec's value.
PGVECTOR_INT_SETTINGS: Mapping[str, tuple[int, int]] = {
    "hnsw.ef_search": (1, 1000),
    "hnsw.max_scan_tuples": (1, 2_147_483_647),
    "ivfflat.probes": (1, 32768),
    "ivfflat.max_probes": (1, 32768),
}
PGVECTOR_ENUM_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "hnsw.iterative_scan": ("off", "strict_order", "relaxed_order"),
    "ivfflat.iterative_scan": ("off", "relaxed_order"),
}


def pgvector_setting_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not valid for pgvector query setting ``name`` (None if it is, or if
    ``name`` is not one): the text follows "<key> = <value>" in a message."""
    if name in PGVECTOR_INT_SETTINGS:
        lo, hi = PGVECTOR_INT_SETTINGS[name]
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        if number is None or not lo <= number <= hi:
            return (
                f"is outside pgvector's range for {name}: it must be an integer {lo}..{hi} "
                "(pgvector would ignore it and use its default)"
            )
    elif name in PGVECTOR_ENUM_SETTINGS:
        allowed = PGVECTOR_ENUM_SETTINGS[name]
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            return f"is not a value pgvector accepts for {name}: use one of {', '.join(allowed)}"
    return None


def _settings_table(t: Table, key: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        t.fail(key, 'must be a table of name = value, e.g. shared_buffers = "512MB"')
    table = Table(t.where, f"{t.section}.{key}", raw)
    settings: dict[str, str] = {}
    for name, value in raw.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
            t.fail(f"{key}.{name}", "is not a PostgreSQL setting name")
        if name in MANAGED_SETTINGS:
            # with --dsn they are not applied at all, so refusing them always is safe
            table.fail(
                name,
                f"is managed by pgvbench for its embedded server ({MANAGED_SETTINGS[name]}); "
                "remove it",
            )
        if isinstance(value, bool):
            settings[name] = "on" if value else "off"
        elif isinstance(value, (int, float, str)):
            settings[name] = str(value)
        else:
            t.fail(f"{key}.{name}", "must be a string, number or boolean")
        problem = pgvector_setting_problem(name, settings[name])
        if problem:
            table.fail(name, f"= {value!r} {problem}")
    return settings


def parse_server(t: Table) -> ServerSpec:
    t.only(["settings", "sweep", "memory_limit", "cpus", "replicas"])
    settings = _settings_table(t, "settings", t.data.get("settings", {}))
    raw_sweep = t.data.get("sweep", [])
    if not isinstance(raw_sweep, list):
        t.fail("sweep", "must be one or more [[server.sweep]] tables of settings")
    sweep: list[SweepConfig] = []
    for i, entry in enumerate(raw_sweep):
        if not isinstance(entry, Mapping) or not entry:
            t.fail(f"sweep #{i + 1}", "must be a table of setting = value (and an optional label)")
        values = {k: v for k, v in entry.items() if k != "label"}
        config = _settings_table(t, f"sweep #{i + 1}", values)
        label = entry.get("label") or ", ".join(f"{k}={v}" for k, v in config.items())
        if not isinstance(label, str):
            t.fail(f"sweep #{i + 1}.label", "must be a string")
        sweep.append(SweepConfig(label=label, settings=config))
    labels = [c.label for c in sweep]
    if len(set(labels)) != len(labels):
        t.fail("sweep", f"has duplicate configurations: {', '.join(labels)}")
    limits = parse_limits(t, [settings, *({**settings, **c.settings} for c in sweep)])
    replicas = t.integer("replicas", default=0, minimum=0, maximum=MAX_REPLICAS)
    if replicas and sweep:
        t.fail(
            "replicas",
            f"= {replicas} cannot be combined with [[server.sweep]]: each standby copies the "
            "primary's settings once, when it starts, so later configurations would differ "
            "between them; measure one configuration per run",
        )
    return ServerSpec(settings=settings, sweep=tuple(sweep), limits=limits, replicas=replicas)
