"""The quantization study through its Study interface: spec checks against [query] k
and the dataset's dimension, a small real run, the record's JSON round trip, advice
with evidence, and a report section that shows only its own figure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgvbench.errors import SpecError
from pgvbench.report.document import Heading, Image, Paragraph
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from pgvbench.spec.table import Table
from pgvbench.studies.base import DataShape
from pgvbench.studies.quantization import STUDY, QuantizationSpec, QuantizationStudy
from study_support import results_for, spec_context, study_context, tiny_spec_data

TABLE = {"m": 4, "ef_construction": 8, "ef_search": [10, 40], "overfetch": [1, 4]}


@pytest.fixture(scope="module")
def measured(embedded_server: EmbeddedServer) -> Iterator[QuantizationStudy]:
    spec = parse_spec(tiny_spec_data("studyquant"))
    ctx = study_context(embedded_server, spec)
    study_spec = STUDY.parse(Table("<spec>", "quantization", TABLE), spec_context(spec))
    try:
        yield STUDY.run(ctx, study_spec)
    finally:
        with connect(embedded_server.dsn()) as conn:
            conn.execute(f"DROP SCHEMA {spec.schema} CASCADE")


def test_spec_checks_k_and_dimensions() -> None:
    spec = parse_spec(tiny_spec_data("studyquant"))
    with pytest.raises(SpecError, match=r"^<spec>: \[quantization\] k = 20 exceeds \[query\] k"):
        STUDY.parse(Table("<spec>", "quantization", {"k": 20}), spec_context(spec))
    wide = DataShape(
        rows=10, dim=3000, queries=10, rows_from="n", dim_from="[dataset] dim = 3000",
        queries_from="q",
    )  # fmt: skip
    problem = STUDY.data_problem(QuantizationSpec(), wide)
    assert problem is not None and "variants includes 'full', an HNSW index on vector" in problem
    assert STUDY.data_problem(QuantizationSpec(variants=("halfvec", "binary")), wide) is None


@pytest.mark.integration
def test_record_round_trips_through_results(measured: QuantizationStudy, tmp_path: Path) -> None:
    variants = {p.variant for p in measured.points}
    assert variants == {"full", "halfvec", "binary", "binary_norerank"}
    assert measured.recommendations and measured.notes  # k x 4 > ef_search 10: capped
    again = QuantizationStudy.from_dict(json.loads(json.dumps(measured.to_dict())))
    assert again == measured
    results = results_for()
    STUDY.store(results, measured)
    assert STUDY.load(results) == measured

    advice = STUDY.advice(measured)
    assert [r.text for r in advice] == list(measured.recommendations)
    assert all(r.evidence for r in advice)

    images = STUDY.figures(measured, tmp_path)
    assert [i.src for i in images] == ["quantization.png"]
    blocks = STUDY.report(measured, [*images, Image("cache_states.png", "cache")], results)
    assert blocks[0] == Heading(2, "Quantized indexes")
    assert [b.src for b in blocks if isinstance(b, Image)] == ["quantization.png"]
    lead = next(b for b in blocks if isinstance(b, Paragraph) and b.style == "recommendation")
    assert lead.text == " ".join(measured.recommendations)
