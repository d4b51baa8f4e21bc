"""What the user applies: ``apply.sql`` (the index, built CONCURRENTLY on their table, and
the query settings as database defaults) and a ``postgresql.conf`` snippet (the server
settings sized from what the session measured). Every statement and setting is preceded
by a comment giving the evidence it rests on. Text only: nothing here touches a database.
"""

from __future__ import annotations

import dataclasses
import re

from ...metrics import Metric
from ...report.fmt import format_qps
from .advice import unreachable_message
from .facts import (
    GRAPH_HEADROOM,
    SHARED_BUFFERS_HEADROOM,
    build_settings,
    built_with,
    chosen,
    maintenance_work_mem_bytes,
    query_settings,
    shared_buffers_bytes,
    size_step,
    target_spec,
    winner_trial,
)
from .records import Evaluation, TuneRecord
from .spec import TuneSpec
from .sql import ident, index_sql, query_sql
from .words import (
    ms_text,
    objective_text,
    plural,
    recall_low,
    secs_text,
    size_text,
    target_text,
    where_text,
)

PLACEHOLDER = "your_table"  # no table source: the user names their own table
NAME_PREFIX = "tuned"  # the index name's prefix when the table is the placeholder
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?")
_RAM_SHARE = 0.4  # shared_buffers beyond this share of RAM starves the OS page cache


def apply_sql(
    record: TuneRecord,
    *,
    schema_table: str | None = None,
    column: str = "embedding",
    column_type: str = "vector",
    alter_column: bool = False,
) -> str:
    """The commented psql script that applies the winner to the user's table.

    ``schema_table`` is the table as SQL text (``public.items``; a name that needs quoting
    is quoted); None writes a placeholder the user edits. ``column_type`` is the column's
    type today ("halfvec" columns need no conversion). ``alter_column`` makes the halfvec
    conversion an active statement instead of a commented one (it rewrites the table).
    """
    win = chosen(record)
    if win is None or win.knob_value is None:
        return _no_winner(record)
    spec = target_spec(record)
    relation = _relation(schema_table) if schema_table else PLACEHOLDER
    col = column if _PLAIN_NAME.fullmatch(column) else ident(column)
    config = win.config
    if column_type == "halfvec" and config.storage != "halfvec_column":
        config = dataclasses.replace(config, storage="halfvec_column")  # it is halfvec already
    metric = Metric(record.metric)
    lines = _header(record, win, spec, placeholder=schema_table is None)
    if config.storage == "halfvec_column":
        lines += _halfvec_column(record, win, relation, col, column_type, alter_column)
    # with the placeholder the name must not contain it: "replace every your_table" would
    # turn the index name into a schema-qualified one, which CREATE INDEX refuses
    name = _index_name(NAME_PREFIX if schema_table is None else relation, column, win)
    create = index_sql(
        config, relation=relation, column=col, dim=record.dim, metric=metric, name=name,
        concurrently=True,
    )  # fmt: skip
    condition = record.filter.get("condition") if record.filter else None
    query = query_sql(
        config.storage, relation=relation, column=col, dim=record.dim, metric=metric, k=record.k,
        where=condition if isinstance(condition, str) else None,
    )  # fmt: skip
    lines += _build(record, win, create)
    lines += _query_settings(record, win, spec)
    lines += [
        "-- #. Queries must order by the indexed expression for the planner to use the index,",
        "--    e.g. ($1 is the query vector" + ("; $2 the filter's value):" if condition else "):"),
        f"--      {query}",
        "--    Check with EXPLAIN that the plan shows an Index Scan on the new index.",
    ]
    return _numbered(lines)


def _numbered(lines: list[str]) -> str:
    """The script with its steps (``-- #.``) numbered in order."""
    count = 0
    out = []
    for line in lines:
        if line.startswith("-- #."):
            count += 1
            line = f"-- {count}." + line[len("-- #.") :]
        out.append(line)
    return "\n".join(out) + "\n"


def _relation(name: str) -> str:
    """The table as SQL text: as given when plain (or already quoted), else quoted."""
    if _PLAIN_NAME.fullmatch(name) or '"' in name:
        return name
    return ident(*name.split(".", 1))


def _index_name(relation: str, column: str, win: Evaluation) -> str:
    """``items_embedding_hnsw_m16_efc64``: lower case, at most 63 characters."""
    table = relation.rsplit(".", 1)[-1].strip('"')
    short = {"ef_construction": "efc"}
    params = "_".join(f"{short.get(k, k)}{v}" for k, v in win.config.params.items())
    storage = "_half" if win.config.storage != "vector" else ""
    name = re.sub(r"[^a-z0-9_]+", "_", f"{table}_{column}_{win.config.kind}_{params}{storage}"
                  .lower())  # fmt: skip
    return name[:63].rstrip("_")


def _header(record: TuneRecord, win: Evaluation, spec: TuneSpec, *, placeholder: bool) -> list[str]:
    trial = winner_trial(record)
    number = f" (trial {trial.number} of {len(record.trials)})" if trial is not None else ""
    confirmed = (
        "; rebuilt and measured again, interleaved with the runner-up"
        if record.confirmation is not None
        else ""
    )
    lines = [
        "-- apply.sql: the configuration `pgvbench tune` recommends, for your table.",
        *_wrap(
            f"Target: {target_text(spec, record.k)}; objective: {objective_text(spec)}.",
            first="-- ",
            rest="--   ",
        ),
        *_wrap(f"Winner: {win.config.label}{number}{confirmed}.", first="-- ", rest="--   "),
        f"-- Measured on {record.rows:,} rows x {record.dim} dimensions ({record.metric}).",
        "--",
        "-- Run it with psql, outside a transaction (CREATE INDEX CONCURRENTLY cannot run in",
        "-- one; no psql -1):  psql -d yourdb -f apply.sql",
        '-- It uses psql\'s own DBNAME variable; with another client, replace :"DBNAME" with',
        "-- the database's name and leave out the \\set line.",
    ]
    if placeholder:
        lines += [
            "--",
            f"-- EDIT FIRST: {PLACEHOLDER} is a placeholder (the data did not come from a table);",
            f"-- replace every {PLACEHOLDER} below with your table, e.g. public.items.",
        ]
    return [*lines, "", "\\set ON_ERROR_STOP on", ""]


def _halfvec_column(
    record: TuneRecord, win: Evaluation, relation: str, col: str, column_type: str, alter: bool
) -> list[str]:
    half = f"halfvec({record.dim})"
    if column_type == "halfvec":
        return [f"-- #. The column is {half} already: the index below is built on it as is.", ""]
    statement = f"ALTER TABLE {relation} ALTER COLUMN {col} TYPE {half} USING {col}::{half};"
    return [
        f"-- #. Store the column as {half}: the winner was measured with the column itself in",
        f"--    halfvec (its table heap measured {size_text(win.table_bytes)}).",
        "--    WARNING: this REWRITES THE WHOLE TABLE under an ACCESS EXCLUSIVE lock (no reads",
        "--    or writes until it ends), needs disk for a second copy and rebuilds every index",
        "--    on the table; drop vector indexes on the column first (their operator class",
        "--    does not accept halfvec). Queries then compare halfvec with halfvec.",
        "--    The index below needs this step: on a vector column it fails.",
        statement if alter else f"-- {statement}",
        "",
    ]


def _build(record: TuneRecord, win: Evaluation, create: str) -> list[str]:
    lines = ["-- #. Build settings, for this session only."]
    settings = build_settings(win)
    memory = maintenance_work_mem_bytes(record, win)
    ran_with = built_with(record, win, "maintenance_work_mem")
    why = (
        f"the measured index ({size_text(win.index_bytes)}) stands in for the graph held in "
        f"memory while building, + {GRAPH_HEADROOM - 1:.0%}, rounded up"
        if win.config.kind == "hnsw"
        else "IVFFlat's build holds only the list centres and a sample"
    )
    lines += [
        *_wrap(
            f"maintenance_work_mem: {why}; the measured build ran with "
            f"{ran_with or 'the server default'}."
        ),
        f"SET maintenance_work_mem = '{memory // 1024**2}MB';",
    ]
    workers = settings.get("max_parallel_maintenance_workers")
    if workers is not None:
        lines += [
            f"--    max_parallel_maintenance_workers: the measured build ran with {workers}.",
            f"SET max_parallel_maintenance_workers = {int(workers)};",
        ]
    else:
        server = record.server_settings.get("max_parallel_maintenance_workers", "its default")
        lines.append(f"--    (workers: the measured build used the server's setting, {server})")
    rows = f"{win.rows:,} rows" + (
        f" (a subsample of {record.rows:,})" if 0 < win.rows < record.rows else ""
    )
    built = secs_text(win.build_seconds) if win.build_seconds is not None else "an unknown time"
    lines += [
        "",
        *_wrap(
            f"#. The index. Measured: built in {built} over {rows} without CONCURRENTLY "
            "(which takes longer, with two passes over the table, but keeps it writable); "
            f"index {size_text(win.index_bytes)}, table heap {size_text(win.table_bytes)}. "
            "If it fails it leaves an INVALID index behind: DROP INDEX CONCURRENTLY it before "
            "retrying. Once it is valid, drop the column's previous vector index (DROP INDEX "
            "CONCURRENTLY) so that plans use this one.",
            first="-- ",
            rest="--    ",
        ),
        create + ";",
        "RESET maintenance_work_mem;",
    ]
    if workers is not None:
        lines.append("RESET max_parallel_maintenance_workers;")
    return [*lines, ""]


def _query_settings(record: TuneRecord, win: Evaluation, spec: TuneSpec) -> list[str]:
    settings = query_settings(record)
    knob, value = win.config.knob, settings[win.config.knob]
    lines = [
        "-- #. The query settings, as defaults for new sessions of this database (open",
        "--    connections, e.g. a pool's, keep the old value until they reconnect).",
        *_wrap(_measured(record, win, spec)),
        f'ALTER DATABASE :"DBNAME" SET {knob} = {value};',
    ]
    others = {k: v for k, v in settings.items() if k != knob}
    for name, mode in others.items():
        lines += [
            f"--    {name}: the target's filtered queries were measured with {mode}.",
            f'ALTER DATABASE :"DBNAME" SET {name} = {mode};',
        ]
    local = " ".join(f"SET LOCAL {k} = {v};" for k, v in settings.items())
    lines += [
        "--    Or for the application's role only (your_app_role: the role it logs in as):",
        *(f"--      ALTER ROLE your_app_role SET {k} = {v};" for k, v in settings.items()),
        "--    Or per transaction, in the application:",
        *_wrap(f"BEGIN; {local} <the query>; COMMIT;", first="--      ", rest="--        "),
        "",
    ]
    return lines


def _measured(record: TuneRecord, win: Evaluation, spec: TuneSpec) -> str:
    """``Measured at hnsw.ef_search = 40: recall@10 0.962 mean, ...``."""
    text = f"Measured at {win.config.knob} = {win.knob_value}:"
    if win.recall is not None:
        queries = (
            f" over {plural(win.recall.queries, 'query', 'queries')}" if win.recall.queries else ""
        )
        text += (
            f" recall@{record.k} {win.recall.mean:.3f} mean, {recall_low(win.recall):.3f} lower "
            f"bound ({spec.confidence:.0%}){queries}"
        )
    if win.latency is not None:
        lat = ms_text(win.latency.percentile(spec.latency))
        text += f"; {format_qps(win.latency.qps)} QPS, {spec.latency} {lat} {where_text(spec)}"
    return text + "."


def postgresql_conf(record: TuneRecord, *, ram_bytes: int | None = None) -> str:
    """The postgresql.conf snippet for the winner: shared_buffers holding its index and heap,
    maintenance_work_mem holding the graph while it builds, the build's parallel workers;
    each with the evidence in a comment. ``ram_bytes``: the server host's memory, when
    known (an embedded server's host), to warn when shared_buffers would take too much."""
    win = chosen(record)
    if win is None:
        head = "# postgresql.conf: nothing to recommend: no configuration met the target."
        return "\n".join([head, *_wrap(unreachable_message(record), first="# ")]) + "\n"
    lines = [
        "# postgresql.conf: server settings for the configuration `pgvbench tune` recommends",
        f"# ({win.config.label}, {win.config.knob} = {win.knob_value}; {record.rows:,} rows x "
        f"{record.dim} dimensions).",
    ]
    if record.external:
        lines += _wrap(
            "These are RECOMMENDATIONS ONLY: the session measured your server (--dsn) with its "
            "own settings (quoted below as 'the session ran with') and neither applied these "
            "nor tested the server with them.",
            first="# ",
        )
    else:
        lines += _wrap(
            "Sized from what the session measured; its embedded server ran with the settings "
            "quoted below as 'the session ran with', not with these.",
            first="# ",
        )
    lines += _wrap(
        "shared_buffers needs a restart; the others take effect on reload (SELECT "
        "pg_reload_conf()) and can be SET per session.",
        first="# ",
    )
    lines += ["", *_shared_buffers(record, win, ram_bytes), ""]
    memory = maintenance_work_mem_bytes(record, win)
    ran_with = built_with(record, win, "maintenance_work_mem") or "the server default"
    why = (
        f"The HNSW graph is built in memory: the measured index ({size_text(win.index_bytes)}) "
        f"stands in for it, + {GRAPH_HEADROOM - 1:.0%}, rounded up to a multiple of "
        f"{size_text(size_step(win.index_bytes * GRAPH_HEADROOM))}; a graph that does not fit "
        "builds far slower"
        if win.config.kind == "hnsw"
        else "IVFFlat's build holds only the list centres and a sample: kept at what the "
        "measured build ran with"
    )
    lines += _wrap(f"{why}. The measured build ran with {ran_with}.", first="# ")
    lines += [f"maintenance_work_mem = {memory // 1024**2}MB", ""]
    workers = built_with(record, win, "max_parallel_maintenance_workers")
    if workers is not None and workers.isdigit():
        built = secs_text(win.build_seconds) if win.build_seconds is not None else "?"
        lines += _wrap(
            f"The measured build ({built}) ran with max_parallel_maintenance_workers = "
            f"{workers}; parallel builds also need max_parallel_workers and "
            "max_worker_processes at least as large.",
            first="# ",
        )
        lines += [f"max_parallel_maintenance_workers = {int(workers)}", ""]
    settings = query_settings(record)
    lines += _wrap(
        "The query settings are set per database in apply.sql (ALTER DATABASE); to make them "
        "server-wide instead:",
        first="# ",
    )
    lines += [f"# {k} = {v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def _shared_buffers(record: TuneRecord, win: Evaluation, ram_bytes: int | None) -> list[str]:
    size = shared_buffers_bytes(win)
    need = win.memory_bytes * SHARED_BUFFERS_HEADROOM
    ran_with = record.server_settings.get("shared_buffers", "its default")
    lines = _wrap(
        f"The index ({size_text(win.index_bytes)}) and the table's heap "
        f"({size_text(win.table_bytes)}) measured {size_text(win.memory_bytes)}: + "
        f"{SHARED_BUFFERS_HEADROOM - 1:.0%} for the rest of the database, rounded up to a "
        f"multiple of {size_text(size_step(need))}, so that both stay in PostgreSQL's cache. "
        f"The session ran with {ran_with}.",
        first="# ",
    )
    if ram_bytes and not record.external and size > _RAM_SHARE * ram_bytes:
        lines += _wrap(
            f"WARNING: that is over {_RAM_SHARE:.0%} of this host's {size_text(ram_bytes)} of "
            "RAM: the OS page cache and the connections' own memory need the rest; a larger "
            "host, or halfvec storage (smaller index and heap), fits better.",
            first="# ",
        )
    return [*lines, f"shared_buffers = {size // 1024**2}MB"]


def _wrap(
    text: str, *, first: str = "--    ", rest: str | None = None, width: int = 88
) -> list[str]:
    """``text`` as comment lines of at most ``width`` characters (longer words stay whole):
    the first line starts with ``first``, the others with ``rest`` (default: the same)."""
    follow = first if rest is None else rest
    lines: list[str] = []
    line = first
    for word in text.split():
        if len(line) + len(word) > width and line.strip("-# "):
            lines.append(line.rstrip())
            line = follow
        line += word + " "
    return [*lines, line.rstrip()]


def _no_winner(record: TuneRecord) -> str:
    return "\n".join(
        ["-- apply.sql: nothing to apply: no configuration met the target.",
         *_wrap(unreachable_message(record), first="-- ")]
    ) + "\n"  # fmt: skip
