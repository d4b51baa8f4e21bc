"""Cache study without a server: [cache] spec errors, steady-state rule, report section."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from pgvbench.errors import SpecError
from pgvbench.report.document import Heading, Image, Table
from pgvbench.report.markdown import to_markdown
from pgvbench.results import Environment, HostInfo, Results, TimeSlice, TuningSection
from pgvbench.spec.table import Table as _Table
from pgvbench.studies.cache import (
    CacheRow,
    CacheSpec,
    CacheStudy,
    parse_cache,
    recommendations,
    size_bytes,
    time_to_steady,
)
from pgvbench.studies.cache.report import (
    RESIDENCY_FIGURE,
    WARMUP_FIGURE,
    cache_blocks,
    cache_figures,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _parse(data: dict[str, Any]) -> CacheSpec:
    return parse_cache(_Table("spec.toml", "cache", data))


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        _parse(data)
    return str(info.value)


def test_defaults_and_values() -> None:
    assert _parse({}) == CacheSpec()
    spec = _parse(
        {
            "strategies": ["cold", "warm"],
            "shared_buffers": ["64MB", "1GB"],
            "measure_seconds": 3,
            "warmup_series_seconds": 20,
            "drop_os_cache": False,
        }
    )
    assert spec.strategies == ("cold", "warm") and spec.shared_buffers == ("64MB", "1GB")
    assert spec.measure_seconds == 3.0 and spec.warmup_series_seconds == 20.0
    assert not spec.drop_os_cache
    assert size_bytes("64MB") == 64 << 20


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"strategies": ["cold", "hot"]}, "[cache] strategies contains 'hot', which is not one of"),
        ({"strategies": ["cold", "cold"]}, "[cache] strategies"),
        ({"shared_buffers": ["64 megs"]}, "[cache] shared_buffers contains '64 megs'"),
        ({"shared_buffers": [64]}, "kB, MB, GB or TB"),
        ({"shared_buffers": ["64kB"]}, "below PostgreSQL's minimum 128kB"),
        ({"shared_buffers": 5}, "[cache] shared_buffers = 5 must be a list"),
        ({"drop_os_cache": "yes"}, "[cache] drop_os_cache = 'yes' must be true or false"),
        ({"measure_seconds": 0}, "[cache] measure_seconds = 0 is below the minimum"),
        ({"warmup_series_seconds": "10"}, "[cache] warmup_series_seconds = '10' must be a number"),
        ({"stratgies": ["cold"]}, "did you mean 'strategies'?"),
    ],
)
def test_errors_name_key_and_allowed_values(data: dict[str, Any], expected: str) -> None:
    message = _error(data)
    assert message.startswith("spec.toml: ")
    assert expected in message
    if "hot" in expected:
        assert "cold, warm, autoprewarm" in message


def _slices(values: list[float | None]) -> list[TimeSlice]:
    return [TimeSlice(t=i, ops=100, p99_ms=v) for i, v in enumerate(values)]


def test_steady_needs_three_seconds_within_twenty_percent() -> None:
    assert time_to_steady(_slices([50, 9, 1.1, 1.2, 1.19, 1.0]), 1.0) == 2.0
    assert time_to_steady(_slices([50, 1.0, 1.0, 9, 1.0, 1.0]), 1.0) is None
    assert time_to_steady(_slices([1.0, None, 1.0, 1.0, 1.0]), 1.0) == 2.0


def _row(strategy: str, first: float, p99: float, ttw: float | None) -> CacheRow:
    resident = {"idx": {"buffers": 10, "pages": 100, "percent": 10.0}}
    return CacheRow(
        strategy=strategy,
        shared_buffers="16MB",
        shared_buffers_mb=16.0,
        index_mb=26.8,
        heap_mb=17.4,
        p50_ms=p99 / 4,
        p95_ms=p99 / 2,
        p99_ms=p99,
        first_second_p99_ms=first,
        time_to_warm_s=ttw,
        series=_slices([first, p99 * 1.5, p99, p99]),
        residency_before=resident,
        residency_after={"idx": {"buffers": 54, "pages": 100, "percent": 54.0}},
        os_cache_dropped=strategy != "warm",
        os_cache_note="sync; echo 3 > /proc/sys/vm/drop_caches",
    )


def _study() -> CacheStudy:
    study = CacheStudy(
        schema="s",
        table="items",
        index_name="idx",
        k=10,
        target_kind="embedded",
        strategies=["cold", "warm", "autoprewarm"],
        measure_seconds=3.0,
        warmup_series_seconds=5.0,
        rows=[_row("warm", 5.0, 1.2, 0.0), _row("cold", 60.0, 9.0, None)],
    )
    study.rows.append(_row("autoprewarm", 28.0, 9.0, 2.0))
    study.recommendations = recommendations(study)
    return study


def test_recommendations_state_sizes_and_prewarm_evidence() -> None:
    recs = _study().recommendations
    assert recs[0].startswith("index + heap = 44.2 MB (26.8 MB index + 17.4 MB heap)")
    assert "shared_buffers = 16 MB" in recs[0] and "do not fit" in recs[0]
    assert any(r.startswith("Prewarm after restarts") and "(50.0x; " in r for r in recs)
    # 28 vs 60 ms in single seconds, while the warm run's seconds drift apart by 165%
    within = "autoprewarm and a plain cold start are within the noise"
    assert any(r.startswith(within) for r in recs)
    assert "at least 64 MB" in recs[-1]


def _results(cache: dict[str, Any] | None) -> Results:
    return Results(
        run_name="cache-demo",
        status="complete",
        started_at="2025-03-01T10:00:00+00:00",
        finished_at="2025-03-01T10:30:00+00:00",
        environment=Environment(
            postgres_version="18.6",
            pgvector_version="0.8.6",
            server_kind="embedded",
            non_default_settings={},
            host=HostInfo(cpu_model="x", cores=2, ram_bytes=8 * 2**30, os="Linux"),
            pgvbench_version="0.1.0",
            git_commit=None,
            python_version="3.11.9",
        ),
        spec={},
        tuning=TuningSection(cache=cache),
    )


def test_report_section_and_figures(tmp_path: Path) -> None:
    data = json.loads(json.dumps(_study().to_dict()))  # as read back from results.json
    results = _results(data)
    images = cache_figures(results, tmp_path)
    assert [i.src for i in images] == [RESIDENCY_FIGURE, WARMUP_FIGURE]
    for image in images:
        assert (tmp_path / image.src).read_bytes().startswith(PNG_MAGIC)
    blocks = cache_blocks(results, images)
    assert blocks[0] == Heading(2, "Cache state")
    assert sum(isinstance(b, Image) for b in blocks) == 2
    latency = next(b for b in blocks if isinstance(b, Table))
    assert [r[0] for r in latency.rows] == ["warm", "cold", "autoprewarm"]
    text = to_markdown(blocks)
    assert "44.2 MB" in text and "dropped" in text and "Prewarm after restarts" in text


def test_report_tolerates_missing_and_partial_records(tmp_path: Path) -> None:
    assert cache_blocks(_results(None)) == []
    assert cache_figures(_results(None), tmp_path) == []
    partial = {"rows": [{"strategy": "cold", "p99_ms": 3.0}, "junk"], "k": 10}
    assert cache_figures(_results(partial), tmp_path) == []
    text = to_markdown(cache_blocks(_results(partial)))
    assert "cold" in text and "—" in text
    row = dataclasses.asdict(_row("cold", 1.0, 1.0, None))
    assert "series" in row  # the JSON form keeps the curve for the figure
