"""Results records: JSON round-trip, version checks, corrupt files, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgvbench.errors import ResultsError
from pgvbench.results import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BuildPhase,
    DatasetInfo,
    Environment,
    GroundTruthInfo,
    HostInfo,
    IndexBuild,
    Latency,
    LoadInfo,
    Recall,
    Results,
    StatementStats,
    SweepPoint,
    load_results,
    write_results,
)


def _results() -> Results:
    """Every field populated, including the optional nested ones."""
    return Results(
        run_name="roundtrip",
        status="partial",
        started_at="2025-01-02T03:04:05+00:00",
        finished_at=None,
        environment=Environment(
            postgres_version="18.1",
            pgvector_version="0.8.1",
            server_kind="embedded",
            non_default_settings={"shared_buffers": "1GB", "jit": "off"},
            host=HostInfo(cpu_model="Test CPU", cores=8, ram_bytes=16 * 2**30, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit="abc1234",
            python_version="3.11.9",
            client_libraries={"psycopg": "3.2.1"},
        ),
        spec={"query": {"target_recall": 0.9, "k": 10}, "indexes": [{"kind": "hnsw"}]},
        dataset=DatasetInfo(
            name="clustered-10k",
            source="synthetic:clustered",
            n=10_000,
            dim=64,
            metric="cosine",
            seed=7,
            n_queries=500,
            n_recall_queries=200,
            ground_truth=GroundTruthInfo(k=10, method="faiss.knn", seconds=0.25, cached=True),
        ),
        load=LoadInfo(
            table="items", rows=10_000, seconds=1.5, rows_per_second=6666.7, table_bytes=3_000_000
        ),
        indexes=[
            IndexBuild(
                label="hnsw(m=16,ef_construction=64)",
                kind="hnsw",
                params={"m": 16, "ef_construction": 64},
                build_seconds=3.2,
                index_bytes=8_000_000,
                build_settings={"maintenance_work_mem": "1GB"},
                phases=[BuildPhase("loading tuples", 3.0)],
                notices=["hnsw graph no longer fits into maintenance_work_mem"],
            )
        ],
        runs=[
            SweepPoint(
                index="hnsw(m=16,ef_construction=64)",
                index_kind="hnsw",
                index_params={"m": 16, "ef_construction": 64},
                query_params={"hnsw.ef_search": 40},
                k=10,
                concurrency=4,
                recall=Recall(mean=0.95, p5=0.8, min=0.6),
                qps=1234.5,
                latency_ms=Latency(p50=1.1, p95=2.2, p99=3.3, p999=4.4, max=5.5, mean=1.3),
                operations=12_345,
                errors=1,
                duration_s=10.0,
                warmup_s=2.0,
                valid=True,
                notes=["a note"],
                plan="Limit -> Index Scan using items_hnsw",
                statements=StatementStats(
                    calls=12_345,
                    mean_exec_ms=0.9,
                    shared_blks_hit_per_call=120.5,
                    shared_blks_read_per_call=0.0,
                ),
                histogram="SGlzdG9ncmFt",
            ),
            SweepPoint(
                index="hnsw(m=16,ef_construction=64)",
                index_kind="hnsw",
                index_params={"m": 16, "ef_construction": 64},
                query_params={"hnsw.ef_search": 400},
                k=10,
                concurrency=4,
                recall=None,
                qps=0.0,
                latency_ms=None,
                operations=0,
                errors=50,
                duration_s=0.5,
                warmup_s=0.0,
                valid=False,
                notes=["every query failed"],
            ),
        ],
        failure="server terminated",
    )


def test_round_trip_through_json_equals_original(tmp_path: Path) -> None:
    original = _results()
    path = tmp_path / "results.json"
    write_results(original, path)
    assert load_results(path) == original


def test_schema_version_is_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(_results(), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(data)) == "schema_version"
    assert data["schema_version"] == SCHEMA_VERSION


def test_unknown_schema_version_names_file_and_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    data = _results().to_dict()
    data["schema_version"] = 99
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultsError) as info:
        load_results(path)
    message = str(info.value)
    assert str(path) in message
    assert "99" in message
    assert f"versions {', '.join(str(v) for v in READABLE_VERSIONS)}" in message


def test_version_1_files_still_load(tmp_path: Path) -> None:
    """Files written before load tests existed keep working (no load_points key)."""
    path = tmp_path / "v1.json"
    data = _results().to_dict()
    data["schema_version"] = 1
    del data["load_points"]
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_results(path)
    assert loaded.load_points == []
    assert loaded.runs == _results().runs


def test_missing_schema_version_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    data = _results().to_dict()
    del data["schema_version"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"not a pgvbench results file \(no schema_version\)"):
        load_results(path)


def test_corrupt_json_is_a_results_error(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(_results(), path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # as if the writer died
    with pytest.raises(ResultsError, match="not valid JSON") as info:
        load_results(path)
    assert str(path) in str(info.value)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ResultsError, match="JSON object"):
        load_results(path)


def test_missing_required_field_is_a_results_error(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    data = _results().to_dict()
    del data["runs"][0]["qps"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"SweepPoint\.qps"):
        load_results(path)


def test_missing_file_is_a_results_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such results file"):
        load_results(tmp_path / "absent.json")


def test_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    write_results(_results(), path)
    write_results(_results(), path)  # overwriting goes through the same rename
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


def test_failed_write_keeps_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.json"
    write_results(_results(), path)
    before = path.read_bytes()

    def explode(self: Results) -> dict[str, object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Results, "to_dict", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_results(_results(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
