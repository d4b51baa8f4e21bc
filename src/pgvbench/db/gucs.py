"""Setting query-time parameters (GUCs) on a session: the one way studies, engines and
recall checks do it.

``set_config`` with bound parameters rather than ``SET name = value`` text: names and
values never need quoting, and pgvector's dotted names (``hnsw.ef_search``) just work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg


def set_settings(
    conn: psycopg.Connection[Any], settings: Mapping[str, object], *, local: bool = False
) -> None:
    """Apply ``settings`` to the session (or, with ``local``, to the current transaction
    only: what a transaction-mode pooler needs)."""
    for name, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, %s)", (name, str(value), local))


def current_setting(conn: psycopg.Connection[Any], name: str) -> str:
    """The value of ``name`` in force on this session ("" if the server returns none)."""
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    return "" if row is None else str(row[0])
