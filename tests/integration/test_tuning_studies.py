"""The tuning studies through the vector runner and CLI: results, report, recommendations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.results import load_results
from pgvbench.server.embedded import temporary_server
from support import write_toml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_all_studies_end_to_end(
    tiny_spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_spec["dataset"].update(n=6000, dim=32, metric="cosine", queries=300)
    tiny_spec["index"] = [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}]
    tiny_spec["build_tuning"] = {
        "maintenance_work_mem": ["1MB", "64MB"],
        "max_parallel_maintenance_workers": [0],
    }
    tiny_spec["quantization"] = {
        "m": 8,
        "ef_construction": 32,
        "ef_search": [40],
        "overfetch": [1, 4],
        "variants": ["full", "halfvec", "binary"],
    }
    tiny_spec["result_cache"] = {
        "zipf": 1.1,
        "distinct_queries": 50,
        "stream_length": 300,
        "lru_sizes": [10],
        "semantic_deltas": [0.0, 0.2],
        "jitter": 0.01,
    }
    tiny_spec["cache"] = {
        "strategies": ["cold", "warm"],
        "shared_buffers": ["16MB"],
        "measure_seconds": 1,
        "warmup_series_seconds": 2,
    }
    path = write_toml(tmp_path / "studies.toml", tiny_spec)
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with temporary_server("pgvbench-studies-") as server:
        code = main(["run", str(path), "--out", str(out), "-q", "--data-dir", str(server.data_dir)])
    assert code == 0
    results = load_results(out / "results.json")
    tuning = results.tuning
    assert tuning is not None
    build = tuning.build_tuning
    assert build is not None and len(build["points"]) == 2
    fits = {p["maintenance_work_mem"]: p["graph_fits"] for p in build["points"]}
    assert fits == {"1MB": False, "64MB": True}
    quant = tuning.quantization
    assert quant is not None and {i["variant"] for i in quant["indexes"]} == {
        "full",
        "halfvec",
        "binary",
    }
    assert all(p["plan_ok"] for p in quant["points"])
    assert tuning.result_cache is not None and tuning.result_cache["runs"]
    assert tuning.cache is not None and {r["strategy"] for r in tuning.cache["rows"]} == {
        "cold",
        "warm",
    }
    assert tuning.recommendations
    report = (out / "report.md").read_text()
    for heading in ("Tuning recommendations", "Quantization"):
        assert heading in report
