"""The build_tuning study through its Study interface: a small real run, the record's
JSON round trip (also of an older record), advice with evidence, and a report section
that shows only its own figure."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgvbench.report.document import Heading, Image, Paragraph
from pgvbench.results import TuningSection
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from pgvbench.spec.table import Table
from pgvbench.studies.build import STUDY, BuildTuningSpec, BuildTuningStudy
from study_support import results_for, spec_context, study_context, tiny_spec_data


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[BuildTuningStudy]:
    spec = parse_spec(tiny_spec_data("studybuild"))
    ctx = study_context(embedded_server, spec)
    study_spec = STUDY.parse(
        Table("<spec>", "build_tuning", {"maintenance_work_mem": ["1MB", "64MB"]}),
        spec_context(spec),
    )
    assert isinstance(study_spec, BuildTuningSpec) and study_spec.index == spec.indexes[2].label
    try:
        yield STUDY.run(ctx, study_spec)
    finally:
        with connect(embedded_server.dsn()) as conn:
            conn.execute(f"DROP SCHEMA {spec.schema} CASCADE")


@pytest.mark.integration
def test_record_round_trips_throughresults_for(measured: BuildTuningStudy, tmp_path: Path) -> None:
    assert len(measured.points) == 4 and all(p.error is None for p in measured.points)
    assert measured.dataset_rows == 3000 and measured.cores is not None
    again = BuildTuningStudy.from_dict(json.loads(json.dumps(measured.to_dict())))
    assert again == measured
    results = results_for()
    STUDY.store(results, measured)
    assert STUDY.load(results) == measured

    advice = STUDY.advice(measured)
    assert len(advice) == 2 and all(r.text and r.evidence for r in advice)
    assert advice[0].config_change is not None and "maintenance_work_mem" in advice[0].config_change

    # the section shows its own figure only (issue 11: cache charts appeared here too)
    images = STUDY.figures(measured, tmp_path)
    assert [i.src for i in images] == ["build_tuning.png"]
    blocks = STUDY.report(measured, [*images, Image("cache_states.png", "cache")], results)
    assert blocks[0] == Heading(2, "Index build tuning")
    assert [b.src for b in blocks if isinstance(b, Image)] == ["build_tuning.png"]
    lead = next(b for b in blocks if isinstance(b, Paragraph) and b.style == "recommendation")
    assert lead.text == " ".join(r.text for r in advice)


@pytest.mark.integration
def test_older_record_without_rows_and_cores(measured: BuildTuningStudy) -> None:
    """Files written before the record kept its advice figures: the table's rows and the
    run's host cores, as the report used them then."""
    old = measured.to_dict()
    del old["dataset_rows"], old["cores"]
    results = results_for(cores=4)
    results.tuning = TuningSection(build_tuning=old)
    loaded = STUDY.load(results)
    assert loaded is not None and loaded.cores == 4 and loaded.dataset_rows is None
    assert loaded == dataclasses.replace(measured, dataset_rows=None, cores=4)
    assert "on 4 cores" in STUDY.advice(loaded)[1].text
