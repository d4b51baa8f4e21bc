"""`pgvbench export` and Results.to_frame on a real results.json: the values read back
through pandas (CSV) and pyarrow (Parquet) are the file's; bad input exits 2 in one
paragraph naming the file and the tables it has."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pgvbench.cli import main
from pgvbench.results import load_results
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results_path(embedded_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real run: two sweep points on one HNSW build, and one load point."""
    from conftest import TINY_SPEC

    tmp = tmp_path_factory.mktemp("export")
    spec: dict[str, Any] = copy.deepcopy(TINY_SPEC)
    spec["experiment"].update(name="export_run", schema="s_export_run")
    spec["dataset"]["n"] = 1000
    spec["index"] = [{"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [5, 20]}]
    spec["load"] = {
        "index": "hnsw(m=4,ef_construction=8)",
        "query_params": {"hnsw.ef_search": 20},
        "clients": [1],
        "warmup_seconds": 0.1,
        "duration_seconds": 0.5,
    }
    path = write_toml(tmp / "spec.toml", spec)
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PGVBENCH_CACHE_DIR", str(tmp / "cache"))
        code = main(["run", str(path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])
    assert code == 0
    return out / "results.json"


def _export(*args: str) -> int:
    return main(["export", *args])


def test_points_round_trip_through_csv_and_parquet(results_path: Path, tmp_path: Path) -> None:
    data = json.loads(results_path.read_text())
    csv, parquet = tmp_path / "points.csv", tmp_path / "points.parquet"
    assert _export(str(results_path), "--csv", str(csv)) == 0  # default table: points
    assert _export(str(results_path), "--parquet", str(parquet), "--table", "points") == 0
    from_csv = pd.read_csv(csv)
    from_parquet = pq.read_table(parquet).to_pandas()
    build = data["indexes"][0]
    for frame in (from_csv, from_parquet):
        assert len(frame) == len(data["runs"]) == 2
        for row, point in zip(frame.to_dict("records"), data["runs"], strict=True):
            assert row["run_name"] == data["run_name"]
            assert row["dataset_rows"] == data["dataset"]["n"]
            assert row["index"] == point["index"]
            assert row["query_params.hnsw.ef_search"] == point["query_params"]["hnsw.ef_search"]
            assert row["qps"] == pytest.approx(point["qps"], rel=1e-12)
            assert row["recall.mean"] == pytest.approx(point["recall"]["mean"], rel=1e-12)
            assert row["latency_ms.p99"] == pytest.approx(point["latency_ms"]["p99"], rel=1e-12)
            assert row["operations"] == point["operations"]
            assert row["valid"] == point["valid"]
            assert row["build_seconds"] == pytest.approx(build["build_seconds"], rel=1e-12)
            assert row["index_bytes"] == build["index_bytes"]
        assert "histogram" not in frame.columns and "samples" not in frame.columns
    # the notebook API gives the same table
    in_memory = load_results(results_path).to_frame()
    assert list(in_memory.columns) == list(from_parquet.columns)
    assert in_memory["qps"].tolist() == from_parquet["qps"].tolist()


def test_load_points_round_trip(results_path: Path, tmp_path: Path) -> None:
    data = json.loads(results_path.read_text())
    out = tmp_path / "load.parquet"
    assert _export(str(results_path), "--parquet", str(out), "--table", "load") == 0
    frame = pd.read_parquet(out)
    (point,) = data["load_points"]
    (row,) = frame.to_dict("records")
    assert row["clients"] == point["clients"] == 1
    assert row["engine"] == point["engine"] and row["strategy"] == point["strategy"]
    assert row["qps"] == pytest.approx(point["qps"], rel=1e-12)
    assert row["latency_ms.p99"] == pytest.approx(point["latency_ms"]["p99"], rel=1e-12)
    assert "timeseries" not in frame.columns and "window_qps" not in frame.columns


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert _export(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("pgvbench: error: ") and "\n\n" not in err.strip()
    return err


def test_a_table_the_file_lacks_names_the_file_and_its_tables(
    results_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    err = _error(capsys, str(results_path), "--csv", str(out), "--table", "capacity")
    assert str(results_path) in err and "rows for points, load" in err
    err = _error(capsys, str(results_path), "--csv", str(out), "--table", "levels")
    assert "no table 'levels'" in err and "points, load, capacity" in err
    assert not out.exists()


def test_bad_inputs_exit_2(
    results_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_results = tmp_path / "spec.json"
    not_results.write_text('{"experiment": {}}')
    err = _error(capsys, str(not_results), "--csv", str(tmp_path / "a.csv"))
    assert str(not_results) in err and "not a pgvbench results file" in err
    err = _error(capsys, str(results_path), "--csv", str(results_path))
    assert "is the results file being exported" in err
    assert load_results(results_path).runs  # untouched
    err = _error(capsys, str(results_path), "--parquet", str(tmp_path))
    assert "it is a directory" in err
    for args in ([], ["--csv", "a.csv", "--parquet", "a.parquet"]):
        with pytest.raises(SystemExit) as exc:
            _export(str(results_path), *args)
        assert exc.value.code == 2
    capsys.readouterr()
