"""The capacity table of `pgvbench export` / Results.to_frame: one row per level and index
kind, with the columns the capacity fits read (rows, build_seconds, index_bytes,
heap_bytes, knob, qps_per_core)."""

from __future__ import annotations

from typing import Any

import pytest

from pgvbench._frames import frame, tables_in
from pgvbench.errors import ResultsError
from pgvbench.studies.capacity.fits import fit_index_bytes


def _index(kind: str, rows: int, *, failed: bool = False) -> dict[str, Any]:
    """An index of one level in the shape studies/capacity/records.py writes."""
    return {
        "config": {"kind": kind, "params": {"m": 16}, "storage": "vector", "build_settings": {}},
        "build_seconds": None if failed else rows * 1e-4,
        "index_bytes": 0 if failed else 8192 + 600 * rows,
        "phases": [{"phase": "loading tuples", "seconds": 1.0}],
        "notices": ["hnsw graph no longer fits into maintenance_work_mem"],
        "knob": None if failed else 40,
        "recall": None if failed else {"mean": 0.97, "p5": 0.9, "min": 0.8, "low": 0.96},
        "latency": None
        if failed
        else {"qps": 800.0, "p99_ms": 4.0, "server_cpu_cores": 2.0, "clients": 2},
        "probes": [{"value": 40, "recall_mean": 0.97, "recall_low": 0.96, "seconds": 1.0}],
        "reason": "build_failed" if failed else None,
    }


def _results(levels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "run_name": "cap",
        "dataset": {"name": "d", "n": 200_000, "dim": 128, "metric": "l2"},
        "runs": [],
        "load_points": [],
        "tuning": {"capacity": {"version": 1, "levels": levels}},
    }


def test_capacity_rows_are_levels_by_index_kind() -> None:
    data = _results(
        [
            {
                "rows": rows,
                "load_seconds": 1.0,
                "heap_bytes": 700 * rows,
                "truth_seconds": 0.1,
                "indexes": [_index("hnsw", rows), _index("ivfflat", rows, failed=rows == 50_000)],
                "backup": {"rows": rows, "jobs": 2, "basebackup_seconds": 3.0},
            }
            for rows in (25_000, 50_000, 100_000)
        ]
    )
    assert tables_in(data) == ["capacity"]
    df = frame(data)  # the default: the first table the file has
    assert len(df) == 6
    assert list(df["kind"]) == ["hnsw", "ivfflat"] * 3
    assert {"rows", "build_seconds", "index_bytes", "heap_bytes", "knob"} <= set(df.columns)
    assert df["qps_per_core"].tolist()[0] == 400.0
    assert df["backup.basebackup_seconds"].tolist()[0] == 3.0
    assert df["latency.p99_ms"].tolist()[0] == 4.0
    assert df["notices"].tolist()[0].startswith("hnsw graph")
    assert "phases" not in df.columns and "probes" not in df.columns
    failed = df[(df["kind"] == "ivfflat") & (df["rows"] == 50_000)]
    assert failed["reason"].tolist() == ["build_failed"]
    # the fits read the exported columns as they are
    fit = fit_index_bytes(df[df["kind"] == "hnsw"])
    assert fit.params["b"] == pytest.approx(600)


def test_a_file_without_rows_is_refused_by_name() -> None:
    with pytest.raises(ResultsError, match=r"^r\.json: nothing to export"):
        frame(_results([]), source="r.json")
    with pytest.raises(ResultsError, match=r"no 'points' rows .* it has rows for none"):
        frame(_results([]), "points", source="r.json")
