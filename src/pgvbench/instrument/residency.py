"""Buffer residency: the share of each relation sitting in shared_buffers (pg_buffercache)."""

from __future__ import annotations

from typing import Any

from .relations import RelationCollector


class ResidencyCollector(RelationCollector):
    """Share of each relation's main-fork pages sitting in shared_buffers, at start and stop.

    Not a delta: two snapshots, so a report can say "cold: 3% of the index cached at the
    start, 97% at the end". Needs the pg_buffercache extension in the database.
    """

    name = "residency"
    cumulative = False

    # the first reading, between start() and stop()
    _start: dict[str, dict[str, Any]] | None = None

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        oids = [r.oid for r in self._rels]
        rows = self.conn.execute(
            "WITH r AS (SELECT o AS oid, pg_relation_filenode(o) AS node, "
            "  pg_relation_size(o) / current_setting('block_size')::int8 AS pages "
            "  FROM unnest(%s::oid[]) AS o), "
            "b AS (SELECT relfilenode, count(*) AS n FROM pg_buffercache "
            "  WHERE relforknumber = 0 AND reldatabase = "
            "  (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "  AND relfilenode IN (SELECT node FROM r) GROUP BY relfilenode) "
            "SELECT r.oid::int8, r.pages, coalesce(b.n, 0) FROM r "
            "LEFT JOIN b ON b.relfilenode = r.node",
            (oids,),
        ).fetchall()
        by_oid = {int(oid): (int(pages), int(cached)) for oid, pages, cached in rows}
        out: dict[str, dict[str, Any]] = {}
        for rel in self._rels:
            pages, cached = by_oid.get(rel.oid, (0, 0))
            cached = min(cached, pages)
            out[rel.name] = {
                "kind": rel.kind,
                "pages": pages,
                "cached_pages": cached,
                "pct": round(100.0 * cached / pages, 3) if pages else 0.0,
            }
        return out

    def start(self) -> None:
        self._rels = self._resolve()
        self._start = self._snapshot()

    def stop(self) -> dict[str, Any]:
        if self._start is None:
            raise RuntimeError("residency: stop() without start()")
        start, self._start = self._start, None
        row = self.conn.execute(
            "SELECT setting::int8 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
        return {
            "start": start,
            "stop": self._snapshot(),
            "shared_buffers_pages": int(row[0]) if row else None,
        }
