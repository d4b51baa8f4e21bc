"""The capacity study without a server: [capacity] parsing, `pgvbench plan`'s row counts and
spec narrowing, the record's JSON and DataFrame forms, and the report saying a missed fit
and a far extrapolation out loud."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest

from pgvbench.errors import SpecError
from pgvbench.plan_cli import count, plan_data
from pgvbench.recall_records import Recall
from pgvbench.report.markdown import to_markdown
from pgvbench.results import BuildPhase
from pgvbench.spec.table import Table
from pgvbench.studies.capacity.advice import recommendations
from pgvbench.studies.capacity.records import (
    Backup,
    CapacityRecord,
    IndexLevel,
    Level,
    ServerFacts,
)
from pgvbench.studies.capacity.report import report_blocks, validity
from pgvbench.studies.capacity.spec import parse_capacity
from pgvbench.studies.tune.records import Config, Latency
from support import write_toml

LEVELS = (50_000, 100_000, 200_000, 400_000)


def _level(rows: int, *, build_factor: float = 1.0) -> Level:
    """A level that follows n log n build time, linear sizes and a slowly falling QPS."""
    build = 2e-5 * rows * math.log(rows) * build_factor
    qps = 4000.0 / (1 + 0.3 * math.log(rows / LEVELS[0]))
    latency = Latency(
        qps=qps,
        p50_ms=0.5,
        p95_ms=0.9,
        p99_ms=1.5,
        operations=int(qps * 4),
        clients=2,
        seconds=4.0,
        client_cpu_cores=0.1,
        server_cpu_cores=1.8,
        foreign_cpu_cores=0.0,
    )
    index = IndexLevel(
        config=Config(kind="hnsw", params={"m": 16, "ef_construction": 64}),
        build_seconds=build,
        index_bytes=800 * rows + 100_000,
        phases=(BuildPhase(phase="building index: loading tuples", seconds=build),),
        fixed_knob=40,
        fixed_recall=Recall(mean=0.97, p5=0.9, min=0.8, low=0.96, p1=0.8, zero=0, queries=300),
        fixed_latency=latency,
        knob=int(20 + 8 * math.log(rows / LEVELS[0])),
        recall=Recall(mean=0.96, p5=0.9, min=0.7, low=0.951, p1=0.8, zero=0, queries=300),
        latency=latency,
        window_qps=(qps, qps),
        fixed_window_qps=(qps, qps),
    )
    backup = Backup(
        rows=rows,
        jobs=2,
        cluster_bytes=300_000_000 + 1400 * rows,
        level_bytes=1400 * rows,
        basebackup_seconds=0.5 + 1400 * rows / 4e8,
        basebackup_bytes=1400 * rows,
        dump_seconds=rows / 1e4,
        dump_bytes=600 * rows,
        restore_schema_seconds=0.02,
        restore_data_seconds=rows / 1e5,
        restore_index_seconds=build,
        restored_rows=rows,
        restored_index_bytes=800 * rows,
        restore_settings={"maintenance_work_mem": "512MB"},
    )
    return Level(
        rows=rows,
        load_seconds=rows / 5e5,
        heap_bytes=560 * rows,
        truth_seconds=0.1,
        indexes=(index,),
        backup=backup,
    )


def _record(levels: tuple[Level, ...], **spec: Any) -> CapacityRecord:
    return CapacityRecord(
        spec={
            "levels": list(LEVELS),
            "recall": 0.95,
            "confidence": 0.95,
            "clients": 2,
            "jobs": 2,
            "target_rows": 10_000_000,
            "target_qps": 2000.0,
            **spec,
        },
        dim=128,
        metric="l2",
        k=10,
        recall_queries=300,
        levels=levels,
        server=ServerFacts(
            external=False,
            ram_bytes=24 * 2**30,
            cores=2,
            settings={"shared_buffers": "1GB"},
            setting_bytes={"shared_buffers": 2**30, "maintenance_work_mem": 512 * 2**20},
        ),
        prewarmed=True,
    )


class _Results:
    tuning = None


def _report(record: CapacityRecord) -> str:
    return to_markdown(report_blocks(record, [], _Results()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("10000000", 10_000_000),
        ("10_000_000", 10_000_000),
        ("1e7", 10_000_000),
        ("10M", 10_000_000),
        ("200k", 200_000),
        ("2.5m", 2_500_000),
    ],
)
def test_row_counts_read_as_typed(text: str, rows: int) -> None:
    assert count(text) == rows


@pytest.mark.parametrize("text", ["lots", "0", "-5", "1.5", "1e-3", ""])
def test_a_row_count_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        count(text)


def test_capacity_table_defaults_and_backup_forms() -> None:
    spec = parse_capacity(Table("x.toml", "capacity", {}))
    assert spec.levels == (25_000, 50_000, 100_000, 200_000) and spec.backup_levels == ()
    spec = parse_capacity(
        Table("x.toml", "capacity", {"levels": [3000, 1000, 2000], "backup": True})
    )
    assert spec.levels == (1000, 2000, 3000) and spec.backup_levels == (1000, 2000, 3000)
    spec = parse_capacity(
        Table("x.toml", "capacity", {"levels": [1000, 2000, 3000], "backup": [1000]})
    )
    assert spec.backup_levels == (1000,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"levels": [1000, 2000]}, "levels = [1000, 2000] must list 3 to 12"),
        ({"m": 16, "ef_construction": 16}, "ef_construction = 16 is below 2 x m = 32"),
        ({"p99_ms": 20}, "p99_ms needs target_qps"),
        ({"backup": "yes"}, "backup = 'yes' must be true"),
        ({"levels": [1000, 2000, 3000], "backup": [4000]}, "not among levels"),
        ({"levls": [1]}, "did you mean 'levels'"),
    ],
)
def test_bad_capacity_tables_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_capacity(Table("x.toml", "capacity", data))


def test_plan_narrows_the_spec_and_sizes_a_synthetic_dataset(tmp_path: Path) -> None:
    spec = write_toml(
        tmp_path / "s.toml",
        {
            "experiment": {"name": "p"},
            "dataset": {"source": "synthetic", "n": 1000, "dim": 8},
            "index": [{"kind": "hnsw"}],
            "cache": {"shared_buffers": ["128MB"]},
            "capacity": {"levels": [1000, 2000, 4000]},
        },
    )
    args = argparse.Namespace(
        spec=spec,
        target_rows=10**7,
        levels=None,
        target_dim=None,
        target_qps=None,
        p99_ms=None,
        clients=None,
        recall=None,
        jobs=None,
    )
    data = plan_data(args)
    assert "index" not in data and "cache" not in data
    assert data["dataset"]["n"] == 4000 and data["capacity"]["target_rows"] == 10**7
    args.levels = [10_000, 20_000, 40_000]
    assert plan_data(args)["dataset"]["n"] == 40_000
    args.target_rows = None
    with pytest.raises(SpecError, match="--target-rows"):
        plan_data(args)


def test_record_round_trips_and_frames_one_row_per_level() -> None:
    record = _record(tuple(_level(n) for n in LEVELS))
    assert CapacityRecord.from_dict(record.to_dict()) == record
    frame = record.frame("hnsw")
    assert list(frame["rows"]) == list(LEVELS)
    assert frame["qps_per_core"].notna().all() and frame["restore_seconds"].notna().all()
    assert CapacityRecord.from_dict({}).levels == ()  # an empty or older form still reads


def test_fits_that_hold_give_answers_with_their_held_out_errors() -> None:
    record = _record(tuple(_level(n) for n in LEVELS))
    text = _report(record)
    assert "Held-out check" in text and "A fit missed" not in text
    assert "At the target: 10,000,000 x 128" in text
    advice = " ".join(r.text for r in recommendations(record))
    assert "Restoring 10,000,000 x 128 with its HNSW index takes about" in advice
    assert "held-out error" in advice and "Far beyond" not in advice
    assert not [line for line in validity(record) if "missed" in line]


def test_a_missed_fit_is_said_in_the_report_advice_and_validity() -> None:
    # the largest level builds 60% slower than the smaller ones predict
    levels = tuple(_level(n, build_factor=1.6 if n == LEVELS[-1] else 1.0) for n in LEVELS)
    record = _record(levels)
    text = _report(record)
    assert "A fit missed" in text and "build time" in text
    assert "NO: missed" in text
    advice = " ".join(r.text for r in recommendations(record))
    assert "the fit missed" in advice
    assert any("build time fit missed" in line for line in validity(record))


def test_an_extrapolation_past_100x_says_how_uncertain_it_is() -> None:
    record = _record(tuple(_level(n) for n in LEVELS), target_rows=400_000 * 500)
    advice = recommendations(record)
    assert all(
        r.text.startswith("Far beyond the measurements") for r in advice if "200,000,000" in r.text
    )
    assert any("beyond the 100x" in line for line in validity(record))
