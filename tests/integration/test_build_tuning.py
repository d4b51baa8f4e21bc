"""Build tuning: maintenance_work_mem x parallel workers on a real embedded server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import IndexSpec
from pgvbench.spec.table import Table as _Table
from pgvbench.studies.build import (
    BuildTuningSpec,
    BuildTuningStudy,
    format_size,
    measure_build_tuning,
    memory_worker_cap,
    notice_tuples,
    parse_build_tuning,
    parse_size,
    recommend_build,
)
from pgvbench.studies.build import study_notes as _study_notes

N, DIM = 10_000, 32
HNSW = IndexSpec(
    kind="hnsw",
    params={"m": 8, "ef_construction": 32},
    sweep_param="hnsw.ef_search",
    sweep_values=(40,),
)
IVF = IndexSpec(
    kind="ivfflat", params={"lists": 10}, sweep_param="ivfflat.probes", sweep_values=(1,)
)
SLOW = IndexSpec(
    kind="hnsw",
    params={"m": 48, "ef_construction": 400},
    sweep_param="hnsw.ef_search",
    sweep_values=(40,),
)
NONE = IndexSpec(kind="none", params={}, sweep_param=None, sweep_values=())


@pytest.fixture
def loaded(
    embedded_server: EmbeddedServer, unique_name: str
) -> Iterator[tuple[psycopg.Connection[Any], str, str]]:
    schema, table = f"s_{unique_name}", "items"
    vectors = np.random.default_rng(5).standard_normal((N, DIM), dtype=np.float32)
    with connect(embedded_server.dsn()) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, DIM)
        load_vectors(embedded_server.dsn(), schema, table, vectors)
        yield conn, schema, table
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.integration
def test_study_captures_graph_fit_per_combination(
    embedded_server: EmbeddedServer, loaded: tuple[psycopg.Connection[Any], str, str]
) -> None:
    conn, schema, table = loaded
    conn.execute("SET maintenance_work_mem = '3MB'")
    spec = parse_build_tuning(
        _Table("<spec>", "build_tuning", {
            "maintenance_work_mem": ["128MB", "1MB"], "max_parallel_maintenance_workers": [1, 0],
        }),
        [NONE, HNSW],
    )  # fmt: skip
    assert spec.index == HNSW.label
    seen: list[Any] = []
    study = measure_build_tuning(
        dsn=embedded_server.dsn(),
        conn=conn,
        schema=schema,
        table=table,
        index_spec=HNSW,
        metric=Metric.L2,
        spec=spec,
        on_point=seen.append,
    )
    assert study.rows == N
    assert len(study.points) == 4 == len(seen)
    combos = [(p.maintenance_work_mem, p.workers) for p in study.points]
    assert combos == [("1MB", 0), ("1MB", 1), ("128MB", 0), ("128MB", 1)]
    for p in study.points:
        assert p.error is None
        assert p.build_seconds is not None and p.build_seconds > 0
        assert p.index_bytes is not None and p.index_bytes > N * DIM * 4
        assert p.phases
        if p.maintenance_work_mem == "1MB":
            assert p.graph_fits is False
            assert p.fits_after_tuples is not None and 0 < p.fits_after_tuples < N
            assert any("no longer fits" in n for n in p.notices)
        else:
            assert p.graph_fits is True and p.fits_after_tuples is None
        assert p.maintenance_work_mem_bytes == parse_size(p.maintenance_work_mem)
    # limits that may cap workers are recorded; the session settings are restored
    assert study.limits["max_worker_processes"].isdigit()
    assert study.limits["max_parallel_workers"].isdigit()
    assert conn.execute("SHOW maintenance_work_mem").fetchone() == ("3MB",)
    # every index built was dropped
    assert conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchone() == (0,)

    advice = recommend_build(study, rows=N, cores=2)
    assert len(advice) == 2
    assert "maintenance_work_mem >= 128MB" in advice[0], advice
    assert "no longer fits after" in advice[0] and f"of {N:,} tuples" in advice[0]
    assert "max_parallel_maintenance_workers = " in advice[1], advice
    # ten times the rows: the graph estimate from the NOTICE scales the advice up
    bigger = recommend_build(study, rows=10 * N, cores=2)
    needed = parse_size(bigger[0].split(">= ")[1].split(" ")[0])
    assert needed >= parse_size("128MB")

    data = json.loads(json.dumps(study.to_dict()))
    again = BuildTuningStudy.from_dict(data)
    assert again == study


@pytest.mark.integration
def test_failed_build_is_recorded_and_study_goes_on(
    embedded_server: EmbeddedServer, loaded: tuple[psycopg.Connection[Any], str, str]
) -> None:
    conn, schema, table = loaded
    conn.execute("SET statement_timeout = '200ms'")  # ample for a count, not for this build
    try:
        study = measure_build_tuning(
            dsn=embedded_server.dsn(),
            conn=conn,
            schema=schema,
            table=table,
            index_spec=SLOW,
            metric=Metric.L2,
            spec=BuildTuningSpec(
                maintenance_work_mem=("1MB",), max_parallel_maintenance_workers=(0,)
            ),
        )
    finally:
        conn.execute("RESET statement_timeout")
    assert len(study.points) == 1
    assert study.points[0].error is not None and study.points[0].build_seconds is None
    assert study.notes and "failed" in study.notes[-1]
    assert "No hnsw" in recommend_build(study, rows=N, cores=2)[0]


# --------------------------------------------------------------------------- unit


def _parse(data: dict[str, Any], indexes: list[IndexSpec] | None = None) -> BuildTuningSpec:
    return parse_build_tuning(_Table("exp.toml", "build_tuning", data), indexes or [HNSW])


def test_parse_defaults_normalises_and_sorts() -> None:
    spec = _parse({"maintenance_work_mem": ["1gb", "64MB", "65536kB", "16 MB"]})
    assert spec.maintenance_work_mem == ("16MB", "64MB", "1GB")
    assert spec.memory_bytes == (16 << 20, 64 << 20, 1 << 30)
    assert spec.max_parallel_maintenance_workers == (0, 1)
    assert spec.index == HNSW.label
    assert _parse({"max_parallel_maintenance_workers": 3}).max_parallel_maintenance_workers == (3,)
    assert format_size(1536 << 20) == "1536MB" and format_size(3 << 10) == "3kB"
    assert notice_tuples(["NOTICE: hnsw graph no longer fits into maintenance_work_mem "
                          "after 1234 tuples"]) == 1234  # fmt: skip
    assert notice_tuples(["NOTICE: something else"]) is None


@pytest.mark.parametrize(
    ("data", "indexes", "match"),
    [
        ({"maintenance_work_mem": ["64"]}, None, r"maintenance_work_mem contains '64'.*kB, MB"),
        ({"maintenance_work_mem": [64]}, None, r"maintenance_work_mem contains 64.*unit"),
        ({"maintenance_work_mem": ["512kB"]}, None, r"maintenance_work_mem.*1MB to"),
        ({"maintenance_work_mem": []}, None, r"maintenance_work_mem = \[\] must be a non-empty"),
        ({"max_parallel_maintenance_workers": [-1]}, None, r"workers = -1 is below the minimum 0"),
        ({"max_parallel_maintenance_workers": ["2"]}, None, r"workers contains '2'"),
        ({"index": "hnsw(m=4)"}, None, r"index = 'hnsw\(m=4\)' is not one of.*hnsw\(m=8"),
        ({"index": "none"}, [NONE, HNSW], r"index = 'none' is not one of"),
        ({}, [NONE, IVF], r"index is required when no \[\[index\]\] is hnsw.*ivfflat"),
        (
            {"memory": ["1GB"]},
            None,
            r"memory is not a known key.*Allowed keys: maintenance_work_mem",
        ),
    ],
)
def test_parse_errors_name_key_and_allowed(
    data: dict[str, Any], indexes: list[IndexSpec] | None, match: str
) -> None:
    with pytest.raises(SpecError, match=match) as info:
        _parse(data, indexes)
    assert "exp.toml: [build_tuning]" in str(info.value)


def _point(mem: str, workers: int, secs: float | None, after: int | None) -> dict[str, Any]:
    return {
        "maintenance_work_mem": mem,
        "maintenance_work_mem_bytes": parse_size(mem),
        "workers": workers,
        "workers_launched": workers,
        "build_seconds": secs,
        "index_bytes": 41_598_976 if secs is not None else None,
        "graph_fits": after is None and secs is not None,
        "fits_after_tuples": after,
        "phases": [{"phase": "building index: loading tuples", "seconds": secs or 0.0}],
        "notices": [],
        "error": None if secs is not None else "building hnsw failed: canceled",
    }


def _study_dict() -> dict[str, Any]:
    return {
        "index": "hnsw(m=16,ef_construction=64)",
        "kind": "hnsw",
        "params": {"m": 16, "ef_construction": 64},
        "metric": "l2",
        "table": "bt.items",
        "rows": 50_000,
        "limits": {"max_worker_processes": "8", "max_parallel_workers": "8"},
        "restored": {},
        "points": [
            _point("16MB", 0, 40.0, 13_659),
            {**_point("16MB", 1, 30.0, 13_659), "workers_launched": 0},
            _point("512MB", 0, 12.0, None),
            _point("512MB", 1, 8.0, None),
            _point("1GB", 1, None, None),
        ],
        "notes": ["a note"],
    }


def test_recommendation_from_json_names_memory_and_workers() -> None:
    study = BuildTuningStudy.from_dict(_study_dict())
    memory, workers = recommend_build(study, rows=50_000, cores=2)
    assert memory.startswith(
        "Build hnsw(m=16,ef_construction=64) with maintenance_work_mem >= 512MB (the graph "
        "needs ~59 MB for 50,000 rows, so 128MB would likely do (not measured)"
    ), memory
    assert "no longer fits after 13,659 of 50,000 tuples" in memory
    assert "took 30 s vs 8.0 s at 512MB (1 parallel worker)" in memory, memory
    assert workers.startswith("Use max_parallel_maintenance_workers = 1 (8.0 s vs 12 s single")
    assert "--shm-size" in workers
    assert memory_worker_cap(parse_size("16MB")) == 0
    assert memory_worker_cap(parse_size("64MB")) == 1
    assert memory_worker_cap(parse_size("1GB")) == 31
    notes = _study_notes(study)
    assert any("16MB allows 0" in n for n in notes), notes
    assert any("1GB, 1 workers the build failed" in n for n in notes), notes
    # two million rows need ~2.4 GB of graph by the NOTICE's ratio
    assert "maintenance_work_mem >= 4GB" in recommend_build(study, rows=2_000_000, cores=2)[0]


def test_report_section_draws_chart_table_and_advice(tmp_path: Path) -> None:
    from pgvbench.report.document import Paragraph, Table
    from pgvbench.report.markdown import to_markdown
    from pgvbench.results import Environment, HostInfo, Results, TuningSection
    from pgvbench.studies.build import build_tuning_blocks, build_tuning_figures

    env = Environment(
        postgres_version="18", pgvector_version="0.8.1", server_kind="embedded",
        non_default_settings={}, host=HostInfo(cpu_model="x", cores=2, ram_bytes=1, os="linux"),
        pgvbench_version="0", git_commit=None, python_version="3.11",
    )  # fmt: skip
    results = Results(
        run_name="r", status="complete", started_at="", finished_at=None, environment=env,
        spec={}, tuning=TuningSection(build_tuning=_study_dict()),
    )  # fmt: skip
    images = build_tuning_figures(results, tmp_path)
    assert [i.src for i in images] == ["build_tuning.png"]
    assert (tmp_path / "build_tuning.png").stat().st_size > 5000
    blocks = build_tuning_blocks(results, images)
    table = next(b for b in blocks if isinstance(b, Table))
    assert len(table.rows) == 5 and table.flagged == [True, True, False, False, True]
    assert table.rows[0][5] == "no, after 13,659 tuples"
    advice = next(b for b in blocks if isinstance(b, Paragraph) and b.style == "recommendation")
    assert "maintenance_work_mem >= 512MB" in advice.text
    assert "build_tuning.png" in to_markdown(blocks)
    # nothing to show: no section, no figure
    results.tuning = TuningSection(build_tuning={"points": "garbage"})
    assert build_tuning_figures(results, tmp_path / "none") == []
    results.tuning = None
    assert build_tuning_blocks(results) == [] and build_tuning_figures(results, tmp_path) == []
