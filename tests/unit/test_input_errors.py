"""User mistakes in spec and results files: one message naming the file, the key, the
limit and the actual value (issue 10, point 3). The CLI side is tests/integration/
test_validate.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pgvbench.errors import DatasetError, ResultsError, SpecError
from pgvbench.results import load_results
from pgvbench.spec.limits import check_dataset_shape
from pgvbench.spec.parse import load_spec, parse_spec
from support import write_toml

VECTOR: dict[str, Any] = {
    "experiment": {"name": "inputs", "seed": 1},
    "dataset": {"source": "synthetic", "n": 1000, "dim": 8, "metric": "l2", "queries": 300},
    "query": {"k": 10, "recall_queries": 100},
    "index": [{"kind": "none"}, {"kind": "hnsw", "m": 8, "ef_construction": 32}],
}

AGENTS: dict[str, Any] = {
    "experiment": {"name": "agents", "kind": "agents"},
    "agents": {"tenants": 2, "agents": 4, "memories": 100, "chunks": 10, "dim": 16},
    "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}],
    "workload": {"mix": {"memory_recall": 1}},
}


def _with(base: dict[str, Any], **tables: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for name, value in tables.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return data


def _spec_error(tmp_path: Path, data: dict[str, Any]) -> str:
    path = write_toml(tmp_path / "spec.toml", data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message, message  # one paragraph
    return message


# --------------------------------------------------------------------------- spec files


def test_latin1_spec_names_the_byte_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[experiment]\nname = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(
        f"{path}: not a UTF-8 text file (byte 0xe9 at offset 24); a spec file must be UTF-8"
    )


def test_binary_spec_is_not_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "vectors.toml"
    np.save(path.with_suffix(".npy"), np.ones((2, 2), np.float32))
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    with pytest.raises(SpecError, match=r"vectors\.toml: not a UTF-8 text file \(byte 0x93 at"):
        load_spec(path)
    nul = tmp_path / "nul.toml"
    nul.write_bytes(b"[experiment]\x00\x00")
    with pytest.raises(SpecError, match=r"nul\.toml: not a text file \(byte 0x00 at offset 12\)"):
        load_spec(nul)


def test_utf16_spec_says_utf16(tmp_path: Path) -> None:
    path = tmp_path / "win.toml"
    path.write_bytes('[experiment]\nname = "x"\n'.encode("utf-16"))
    with pytest.raises(SpecError, match="UTF-16 byte order mark"):
        load_spec(path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "spec.toml", VECTOR)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_spec(path).name == "inputs"


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("schema", ["pg_catalog", "pg_temp", "pg_toast_x", "information_schema"])
def test_reserved_schema_names_are_refused(tmp_path: Path, schema: str) -> None:
    message = _spec_error(tmp_path, _with(VECTOR, experiment={"schema": schema}))
    assert f"[experiment] schema = {schema!r} is reserved" in message
    assert 'schema = "pgvbench"' in message


def test_public_and_pg_like_names_are_allowed(tmp_path: Path) -> None:
    for schema in ("public", "pg", "pgvector_bench", "my_pg_schema"):
        path = write_toml(tmp_path / "ok.toml", _with(VECTOR, experiment={"schema": schema}))
        assert load_spec(path).schema == schema


def test_schema_length_limit_is_stated(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "ok.toml", _with(VECTOR, experiment={"schema": "s" * 63}))
    assert load_spec(path).schema == "s" * 63
    message = _spec_error(tmp_path, _with(VECTOR, experiment={"schema": "s" * 64}))
    assert "is 64 bytes long; PostgreSQL names hold at most 63 bytes (NAMEDATALEN - 1)" in message


def test_experiment_name_length_is_stated(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, _with(VECTOR, experiment={"name": "n" * 41}))
    assert "at most 40 characters" in message and "; it has 41" in message


def test_agent_name_must_leave_room_for_its_index_names(tmp_path: Path) -> None:
    ok = "a" * 36
    path = write_toml(tmp_path / "ok.toml", _with(AGENTS, experiment={"name": ok}))
    assert load_spec(path).name == ok
    name = "a" * 37
    message = _spec_error(tmp_path, _with(AGENTS, experiment={"name": name}))
    assert f"[experiment] name = {name!r} has 37 characters" in message
    assert f"'{name}_memories_agent_created_idx' would be 64 bytes" in message
    assert "at most 63 (NAMEDATALEN - 1); use a name of at most 36 characters" in message


# --------------------------------------------------------------------------- pgvector limits


def test_hnsw_on_2001_dims_fails_in_validation(tmp_path: Path) -> None:
    data = _with(VECTOR, dataset={"dim": 2001})
    message = _spec_error(tmp_path, data)
    assert "[index.hnsw] hnsw(m=8,ef_construction=32) cannot index 2001-dimensional vectors" in (
        message
    )
    assert "([dataset] dim = 2001)" in message
    assert "at most 2,000 dimensions (halfvec 4,000, bit 64,000)" in message


def test_2000_dims_and_exact_scan_above_are_fine(tmp_path: Path) -> None:
    assert load_spec(write_toml(tmp_path / "a.toml", _with(VECTOR, dataset={"dim": 2000})))
    exact = _with(VECTOR, dataset={"dim": 16000}, index=[{"kind": "none"}])
    assert load_spec(write_toml(tmp_path / "b.toml", exact)).dataset is not None


def test_ivfflat_limit(tmp_path: Path) -> None:
    data = _with(VECTOR, dataset={"dim": 3000}, index=[{"kind": "ivfflat", "lists": 10}])
    message = _spec_error(tmp_path, data)
    assert "[index.ivfflat] ivfflat(lists=10) cannot index 3000-dimensional" in message
    assert 'variants = ["halfvec", "binary"]' in message  # 3000 fits halfvec


def test_quantization_variants_have_their_own_limits(tmp_path: Path) -> None:
    exact = [{"kind": "none"}]
    full = _with(VECTOR, dataset={"dim": 3000}, index=exact, quantization={})
    message = _spec_error(tmp_path, full)
    assert "[quantization] variants includes 'full', an HNSW index on vector" in message
    assert "limits to 2,000 dimensions ([dataset] dim = 3000)" in message

    halfvec = _with(
        VECTOR, dataset={"dim": 3000}, index=exact, quantization={"variants": ["halfvec"]}
    )
    assert load_spec(write_toml(tmp_path / "h.toml", halfvec)).studies.quantization is not None
    too_wide = _with(halfvec, dataset={"dim": 4001})
    message = _spec_error(tmp_path, too_wide)
    assert "'halfvec', an HNSW index on halfvec, which pgvector limits to 4,000" in message
    binary = _with(too_wide, quantization={"variants": ["binary"]})
    assert load_spec(write_toml(tmp_path / "b.toml", binary)).dataset is not None


def test_agent_vector_indexes_have_the_limit(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, _with(AGENTS, agents={"dim": 2001}))
    assert "(on memories and chunks) cannot index 2001-dimensional vectors" in message
    assert "([agents] dim = 2001)" in message
    filtered = _with(
        AGENTS,
        agents={"dim": 2001},
        index=[{"kind": "none"}],
        filtered={"strategies": ["hnsw_plain", "btree_exact"]},
    )
    message = _spec_error(tmp_path, filtered)
    assert "[filtered] strategies hnsw_plain build HNSW or IVFFlat indexes" in message


def test_drift_needs_an_hnsw_index(tmp_path: Path) -> None:
    data = _with(AGENTS, index=[{"kind": "ivfflat", "lists": 4}], drift={})
    message = _spec_error(tmp_path, data)
    assert "[drift] measures recall through an HNSW index" in message
    assert "[[index]] is ivfflat(lists=4)" in message


# --------------------------------------------------------------------------- query counts


def test_fewer_synthetic_queries_than_recall_queries(tmp_path: Path) -> None:
    data = _with(VECTOR, dataset={"queries": 150}, query={"recall_queries": 200})
    message = _spec_error(tmp_path, data)
    assert "[query] recall_queries = 200 but the dataset has only 150 queries" in message
    assert "([dataset] queries = 150)" in message
    assert "lower recall_queries to at most 150" in message
    same = _with(VECTOR, dataset={"queries": 200}, query={"recall_queries": 200})
    assert load_spec(write_toml(tmp_path / "same.toml", same)).query.recall_queries == 200


def test_hdf5_query_cap_below_recall_queries(tmp_path: Path) -> None:
    data = _with(
        VECTOR,
        dataset={"source": "hdf5", "path": "x.hdf5", "queries": 50},
        query={"recall_queries": 100},
    )
    del data["dataset"]["n"], data["dataset"]["dim"], data["dataset"]["metric"]
    message = _spec_error(tmp_path, data)
    assert "recall_queries = 100 is more than [dataset] queries = 50" in message


def test_k_larger_than_synthetic_rows(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, _with(VECTOR, dataset={"n": 5}))
    assert "[query] k = 10 exceeds the dataset's 5 rows ([dataset] n = 5)" in message


def test_study_counts_checked_against_the_spec(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, _with(VECTOR, quantization={"k": 20}))
    assert "[quantization] k = 20 exceeds [query] k = 10" in message
    message = _spec_error(tmp_path, _with(VECTOR, result_cache={"distinct_queries": 400}))
    assert "[result_cache] distinct_queries = 400 exceeds the dataset's 300 queries" in message


def test_file_shape_is_checked_against_the_spec(tmp_path: Path) -> None:
    data = _with(
        VECTOR,
        dataset={"source": "npy", "base": "b.npy", "queries_file": "q.npy", "metric": "l2"},
    )
    del data["dataset"]["n"], data["dataset"]["dim"], data["dataset"]["queries"]
    spec = parse_spec(data, source=tmp_path / "spec.toml")
    base, queries = tmp_path / "b.npy", tmp_path / "q.npy"
    check_dataset_shape(spec, rows=1000, dim=8, queries=100, base=base, queries_path=queries)
    with pytest.raises(DatasetError) as info:
        check_dataset_shape(spec, rows=1000, dim=8, queries=40, base=base, queries_path=queries)
    assert str(info.value) == (
        f"{tmp_path / 'spec.toml'}: [query] recall_queries = 100 but the dataset has only 40 "
        f"queries ({queries}); lower recall_queries to at most 40, or give the dataset more "
        "queries"
    )
    with pytest.raises(DatasetError, match=r"b\.npy holds 2001-dimensional vectors\): pgvector"):
        check_dataset_shape(spec, rows=1000, dim=2001, queries=100, base=base, queries_path=queries)
    with pytest.raises(DatasetError, match="vector columns hold at most 16,000"):
        check_dataset_shape(spec, rows=10, dim=16001, queries=100, base=base, queries_path=queries)


# --------------------------------------------------------------------------- results files


def _results_error(path: Path) -> str:
    with pytest.raises(ResultsError) as info:
        load_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


def test_binary_results_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(b"\x1f\x8b\x08\x00gzip")
    assert _results_error(path).startswith(
        f"{path}: not a UTF-8 text file (byte 0x8b at offset 1); a results file must be UTF-8"
    )


def test_json_without_schema_version_is_not_a_results_file(tmp_path: Path) -> None:
    path = tmp_path / "package.json"
    path.write_text(json.dumps({"name": "x", "version": "1.0.0"}))
    assert "not a pgvbench results file (no schema_version)" in _results_error(path)


def _minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 3,
        "run_name": "x",
        "status": "complete",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": None,
        "environment": {
            "postgres_version": "18",
            "pgvector_version": "0.8",
            "server_kind": "embedded",
            "non_default_settings": {},
            "host": {"cpu_model": "x", "cores": 2, "ram_bytes": 1, "os": "linux"},
            "pgvbench_version": "0.1",
            "git_commit": None,
            "python_version": "3.11",
        },
        "spec": {},
        "runs": [],
    }
    data.update(changes)
    return data


def test_results_without_runs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_minimal()))
    assert load_results(path).runs == []  # empty is fine: an agent-only run
    data = _minimal()
    del data["runs"]
    path.write_text(json.dumps(data))
    assert "not a complete pgvbench results file: it has no 'runs'" in _results_error(path)
    path.write_text(json.dumps(_minimal(runs={"a": 1})))
    assert "'runs' must be a list of sweep-point records, not an object" in _results_error(path)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": "done"}, "Results.status = 'done' is not one of running, complete"),
        ({"run_name": 7}, "Results.run_name = 7 is not a string"),
        ({"environment": []}, "Environment must be an object, not a list"),
        ({"indexes": {"x": 1}}, "Results.indexes = an object where a list belongs"),
        (
            {"runs": [{"index": "none", "qps": "fast"}]},
            "missing field SweepPoint.index_kind",
        ),
    ],
)
def test_wrong_json_types_name_the_field(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_minimal(**changes)))
    message = _results_error(path)
    assert f"{path}: malformed results file: {expected}" in message


def test_wrong_scalar_type_inside_a_record(tmp_path: Path) -> None:
    point = {
        "index": "none",
        "index_kind": "none",
        "index_params": {},
        "query_params": {},
        "k": 10,
        "concurrency": 1,
        "recall": None,
        "qps": "fast",
        "latency_ms": None,
        "operations": 1,
        "errors": 0,
        "duration_s": 1.0,
        "warmup_s": 0.0,
        "valid": True,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_minimal(runs=[point])))
    assert "SweepPoint.qps = 'fast' is not a number" in _results_error(path)


def test_results_path_is_a_directory(tmp_path: Path) -> None:
    assert "it is a directory (pass" in _results_error(tmp_path)


@pytest.mark.parametrize("opener", ["[", '{"a": '])
def test_deeply_nested_json_is_not_a_results_file(tmp_path: Path, opener: str) -> None:
    # json.loads recursed once per level: report/compare died with "internal error
    # (RecursionError)"
    path = tmp_path / "deep.json"
    path.write_text(opener * 100_000)
    assert f"{path}: not a pgvbench results file (nested too deeply)" in _results_error(path)


def _point(**changes: Any) -> dict[str, Any]:
    point: dict[str, Any] = {
        "index": "none",
        "index_kind": "none",
        "index_params": {},
        "query_params": {},
        "k": 10,
        "concurrency": 1,
        "recall": {"mean": 0.9, "p5": 0.8, "min": 0.5},
        "qps": 100.0,
        "latency_ms": {"p50": 1, "p95": 2, "p99": 3, "p999": 4, "max": 5, "mean": 1.5},
        "operations": 1,
        "errors": 0,
        "duration_s": 1.0,
        "warmup_s": 0.0,
        "valid": True,
    }
    point.update(changes)
    return point


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"qps": float("nan")}, "SweepPoint.qps = nan is not a finite number"),
        ({"qps": float("inf")}, "SweepPoint.qps = inf is not a finite number"),
        ({"qps": -5.0}, "SweepPoint.qps = -5.0 is negative"),
        ({"operations": -1}, "SweepPoint.operations = -1 is negative"),
        (
            {"recall": {"mean": 1.5, "p5": 0.8, "min": 0.5}},
            "Recall.mean = 1.5 is outside [0, 1]",
        ),
        (
            {"recall": {"mean": 0.9, "p5": -0.1, "min": 0.5}},
            "Recall.p5 = -0.1 is outside [0, 1]",
        ),
        (
            {"latency_ms": {"p50": 1, "p95": 2, "p99": -3, "p999": 4, "max": 5, "mean": 1}},
            "Latency.p99 = -3 is negative",
        ),
        (
            {"latency_ms": {"p50": 1, "p95": 2, "p99": 3, "p999": 4, "max": 5, "mean": "NaN"}},
            "Latency.mean = 'NaN' is not a number",
        ),
    ],
)
def test_impossible_numbers_are_refused(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    # they were accepted and rendered as "nan" or a negative throughput in reports
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_minimal(runs=[_point()])))
    assert load_results(path).runs[0].qps == 100.0
    path.write_text(json.dumps(_minimal(runs=[_point(**changes)])))  # json writes NaN
    message = _results_error(path)
    assert f"{path}: malformed results file: {expected}" in message


@pytest.mark.parametrize(
    ("operation", "table"),
    [("rag_search", "chunks"), ("task_update", "tasks"), ("message_append", "tasks")],
)
def test_mix_operation_over_an_empty_table_is_refused(
    tmp_path: Path, operation: str, table: str
) -> None:
    # rag_search with chunks = 0 ran ~280 searches over an empty table, reported as valid
    data = _with(
        AGENTS,
        agents={table: 0},
        workload={"mix": {"memory_recall": 3, operation: 1}},
    )
    message = _spec_error(tmp_path, data)
    assert f"[workload] mix has {operation} = 1, which " in message
    assert f"but [agents] {table} = 0: it would run over an empty table" in message
    # weight 0 (not built) or a non-empty table is fine
    path = tmp_path / "ok.toml"
    zero = _with(AGENTS, agents={table: 0}, workload={"mix": {"memory_recall": 1, operation: 0}})
    load_spec(write_toml(path, zero))
    load_spec(write_toml(path, _with(AGENTS, workload={"mix": {operation: 1}})))
