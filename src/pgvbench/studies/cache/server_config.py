"""Applying one cache configuration to the embedded server: the run's base settings plus
a shared_buffers size and, for autoprewarm, pg_prewarm preloaded; verified after the
restart with SHOW."""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import sql

from ...errors import ServerError
from ...server.connection import connect
from ...server.embedded import EmbeddedServer
from . import notes

BASE_PRELOAD = "pg_stat_statements"  # the embedded server's base config preloads this


def apply_cache_config(
    server: EmbeddedServer, base: Mapping[str, str], size: str | None, autoprewarm: bool
) -> tuple[bool, list[str]]:
    """Apply base + this configuration; verify the restart-requiring values via SHOW.
    Returns (restarted, notes on settings that were not applied)."""
    settings = dict(base)
    if size is not None:
        settings["shared_buffers"] = size
    preload: list[str] = []
    if autoprewarm:
        # Replacing shared_preload_libraries must keep the base config's library.
        given = settings.pop("shared_preload_libraries", BASE_PRELOAD).split(",")
        names = [p.strip() for p in given if p.strip()]
        preload = list(dict.fromkeys([*names, BASE_PRELOAD, "pg_prewarm"]))
        settings["pg_prewarm.autoprewarm"] = "on"
    applied = server.apply_settings(settings, source="cache study")
    restarted = applied.restarted
    if preload:
        # A list setting needs one literal per library: apply_settings would quote the
        # combined value as a single (nonexistent) library and the restart would fail.
        with connect(server.dsn()) as conn:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(
                    sql.SQL(", ").join(sql.Literal(p) for p in preload)
                )
            )
        server.restart()
        restarted = True
    skipped = [notes.not_applied(name, why) for name, why in applied.not_applied.items()]
    with connect(server.dsn()) as conn:
        if size is not None:
            row = conn.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)",
                (size,),
            ).fetchone()
            if not (row and row[0]):
                raise ServerError(f"cache study: shared_buffers = {size} is not in effect")
        if autoprewarm:
            row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
            if not row or "pg_prewarm" not in str(row[0]):
                raise ServerError("cache study: pg_prewarm is not preloaded after restart")
    return restarted, skipped
