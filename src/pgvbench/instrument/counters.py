"""Cumulative-statistics collectors: pg_stat_io, pg_statio_*, pg_stat_*_tables, as deltas.

Backends publish these statistics lazily, so each collector here is ``cumulative``: a
CollectorSet gives the backends of a phase a moment before the final reading.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .relations import RelationCollector, counter_delta, fresh

_IO_COUNTERS = (
    "reads",
    "writes",
    "writebacks",
    "extends",
    "hits",
    "evictions",
    "reuses",
    "fsyncs",
)
_IO_TIMES = ("read_time", "write_time")


class StatIoCollector:
    """pg_stat_io deltas by (backend_type, object, context); only rows that moved."""

    name = "stat_io"
    cumulative = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._before: dict[tuple[str, str, str], dict[str, float]] | None = None

    def _read(self) -> dict[tuple[str, str, str], dict[str, float]]:
        fresh(self.conn)
        cols = ", ".join(f"coalesce({c}, 0)::float8" for c in _IO_COUNTERS + _IO_TIMES)
        out: dict[tuple[str, str, str], dict[str, float]] = {}
        for row in self.conn.execute(
            f"SELECT backend_type, object, context, {cols} FROM pg_stat_io"
        ):
            key = (str(row[0]), str(row[1]), str(row[2]))
            out[key] = dict(zip(_IO_COUNTERS + _IO_TIMES, (float(v) for v in row[3:]), strict=True))
        return out

    def start(self) -> None:
        self._before = self._read()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("stat_io: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        rows: list[dict[str, Any]] = []
        totals = dict.fromkeys(_IO_COUNTERS, 0)
        for key, values in sorted(after.items()):
            delta = counter_delta(values, before.get(key))
            if not any(delta[c] for c in _IO_COUNTERS):
                continue
            row: dict[str, Any] = {"backend_type": key[0], "object": key[1], "context": key[2]}
            for c in _IO_COUNTERS:
                row[c] = int(delta[c])
                totals[c] += int(delta[c])
            for c in _IO_TIMES:
                row[f"{c}_ms"] = round(delta[c], 3)
            rows.append(row)
        return {"rows": rows, "totals": totals}


# -- pg_statio_user_tables / _indexes -----------------------------------------------


def _hit_ratio(hit: float, read: float) -> float | None:
    return round(hit / (hit + read), 6) if hit + read > 0 else None


class StatioCollector(RelationCollector):
    """Block reads/hits per table (heap, its indexes) and per index, as deltas."""

    name = "statio"
    cumulative = True

    # the first reading, between start() and stop()
    _before: dict[int, dict[str, float]] | None = None

    def _read(self) -> dict[int, dict[str, float]]:
        fresh(self.conn)
        tables = [r.oid for r in self._rels if r.kind == "table"]
        indexes = [r.oid for r in self._rels if r.kind == "index"]
        out: dict[int, dict[str, float]] = {}
        for oid, hr, hh, ir, ih in self.conn.execute(
            "SELECT relid::int8, coalesce(heap_blks_read, 0), coalesce(heap_blks_hit, 0), "
            "coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0) "
            "FROM pg_statio_all_tables WHERE relid = ANY(%s::oid[])",
            (tables,),
        ):
            out[int(oid)] = {
                "heap_blks_read": hr,
                "heap_blks_hit": hh,
                "idx_blks_read": ir,
                "idx_blks_hit": ih,
            }
        for oid, ir, ih in self.conn.execute(
            "SELECT indexrelid::int8, coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0) "
            "FROM pg_statio_all_indexes WHERE indexrelid = ANY(%s::oid[])",
            (indexes,),
        ):
            out[int(oid)] = {"idx_blks_read": ir, "idx_blks_hit": ih}
        return out

    def start(self) -> None:
        self._rels = self._resolve()
        self._before = self._read()

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("statio: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        tables: dict[str, dict[str, Any]] = {}
        indexes: dict[str, dict[str, Any]] = {}
        for rel in self._rels:
            if rel.oid not in after:
                continue
            d = {k: int(v) for k, v in counter_delta(after[rel.oid], before.get(rel.oid)).items()}
            if rel.kind == "table":
                tables[rel.name] = {
                    **d,
                    "heap_hit_ratio": _hit_ratio(d["heap_blks_hit"], d["heap_blks_read"]),
                    "idx_hit_ratio": _hit_ratio(d["idx_blks_hit"], d["idx_blks_read"]),
                }
            else:
                indexes[rel.name] = {
                    "table": rel.table,
                    **d,
                    "hit_ratio": _hit_ratio(d["idx_blks_hit"], d["idx_blks_read"]),
                }
        return {"tables": tables, "indexes": indexes}


_TABLE_COUNTERS = (
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_del",
    "n_tup_hot_upd",
    "seq_scan",
    "idx_scan",
    "vacuum_count",
    "autovacuum_count",
    "analyze_count",
    "autoanalyze_count",
)
_TABLE_GAUGES = ("n_live_tup", "n_dead_tup")


class UserTablesCollector(RelationCollector):
    """Tuples inserted/updated/deleted (and HOT updates) per table, live/dead tuples."""

    name = "user_tables"
    cumulative = True

    # the first reading, between start() and stop()
    _before: dict[int, dict[str, float]] | None = None

    def _read(self) -> dict[int, dict[str, float]]:
        fresh(self.conn)
        cols = ", ".join(f"coalesce({c}, 0)::float8" for c in _TABLE_COUNTERS + _TABLE_GAUGES)
        out: dict[int, dict[str, float]] = {}
        for row in self.conn.execute(
            f"SELECT relid::int8, {cols} FROM pg_stat_all_tables WHERE relid = ANY(%s::oid[])",
            ([r.oid for r in self._rels],),
        ):
            names = _TABLE_COUNTERS + _TABLE_GAUGES
            out[int(row[0])] = dict(zip(names, (float(v) for v in row[1:]), strict=True))
        return out

    def start(self) -> None:
        self._rels = [r for r in self._resolve() if r.kind == "table"]
        self._before = self._read()

    def stop(self) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("user_tables: stop() without start()")
        after, before = self._read(), self._before
        self._before = None
        out: dict[str, dict[str, Any]] = {}
        for rel in self._rels:
            if rel.oid not in after:
                continue
            now, then = after[rel.oid], before.get(rel.oid, {})
            d = {k: int(v) for k, v in counter_delta(now, then).items()}
            entry: dict[str, Any] = {c: d[c] for c in _TABLE_COUNTERS}
            for g in _TABLE_GAUGES:
                entry[g] = int(now[g])
                entry[f"{g}_delta"] = d[g]
            upd = d["n_tup_upd"]
            entry["hot_ratio"] = round(d["n_tup_hot_upd"] / upd, 6) if upd > 0 else None
            out[rel.name] = entry
        return {"tables": out}
