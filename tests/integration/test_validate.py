"""`pgvbench validate` and the results-file readers through the CLI: every user mistake is
exit 2 with one "pgvbench: error:" paragraph and no traceback; a good spec prints what it
will do and how long that takes (issue 10, point 3). No server is needed."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pgvbench.cli import main
from pgvbench.results import SCHEMA_VERSION
from support import write_toml

SPEC: dict[str, Any] = {
    "experiment": {"name": "validate_me"},
    "dataset": {"source": "synthetic", "n": 2000, "dim": 16, "metric": "l2", "queries": 300},
    "query": {"k": 10, "recall_queries": 100, "warmup_seconds": 0.5, "measure_seconds": 1.0},
    "index": [
        {"kind": "none"},
        {"kind": "ivfflat", "lists": 20, "probes": [1, 4]},
        {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [10, 40, 80]},
    ],
}


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PGVBENCH_DATA_DIR", str(tmp_path / "embedded-data"))
    monkeypatch.chdir(tmp_path)  # baselines and reports land in the test's folder


def _spec(**tables: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    for name, value in tables.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return data


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Exit 2, one error paragraph on stderr, no traceback, nothing on stdout."""
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.startswith("pgvbench: error: "), err
    assert err.count("pgvbench: error:") == 1, err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err  # one paragraph, one line
    assert captured.out == ""
    return err


def _validate_fails(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    return _fails(capsys, ["validate", str(path)])


def _npy_spec(tmp_path: Path, base: Path, queries: Path, **tables: Any) -> Path:
    data = _spec(
        dataset={"source": "npy", "metric": "l2", "base": str(base), "queries_file": str(queries)},
        **tables,
    )
    del data["dataset"]["n"], data["dataset"]["dim"], data["dataset"]["queries"]
    return write_toml(tmp_path / "files.toml", data)


def _vectors(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


# --------------------------------------------------------------------------- good specs


def test_validate_counts_the_work_and_estimates_the_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_toml(tmp_path / "good.toml", _spec())
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == f"{path}: ok (2 index builds, 6 sweep points, 0 load points)"
    assert lines[1] == "  dataset: synthetic clustered 2,000 x 16 (l2), 300 queries"
    body = "\n".join(lines)
    assert "sweep points x 1 repeat" in body
    assert lines[-1].startswith("  estimated time: about ")
    assert "(rough: " in lines[-1]


def test_validate_counts_server_configurations_repeats_and_load_points(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = _spec(
        experiment={"repeats": 3},
        server={"sweep": [{"work_mem": "4MB"}, {"work_mem": "64MB"}]},
        load={
            "index": "hnsw(m=8,ef_construction=32)",
            "clients": [1, 2, 4],
            "engines": ["python", "pgbench"],
            "pooling": [
                {"strategy": "direct"},
                {"strategy": "psycopg_pool", "max_size": [2, 4]},
            ],
        },
    )
    path = write_toml(tmp_path / "matrix.toml", data)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    # builds and sweep points x 2 configurations; load: python (direct + 2 pool sizes) and
    # pgbench (direct only) = 4 variants x 3 client counts, x 2 configurations
    assert out.splitlines()[0] == (f"{path}: ok (4 index builds, 12 sweep points, 24 load points)")
    assert "server configurations: 2 ([[server.sweep]])" in out
    assert "sweep points x 3 repeats" in out and "load points x 3 repeats" in out


def test_validate_warns_about_a_long_run_but_succeeds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    many = [{"kind": "hnsw", "m": m, "ef_construction": 64} for m in range(4, 32)]
    data = _spec(
        index=many,
        query={"measure_seconds": 60.0},
        server={"sweep": [{"work_mem": "4MB"}, {"work_mem": "8MB"}]},
    )
    path = write_toml(tmp_path / "long.toml", data)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{path}: ok (56 index builds,")
    warnings = captured.err.splitlines()
    assert len(warnings) == 2, captured.err
    assert warnings[0].startswith(f"pgvbench: warning: {path}: this spec will run for about ")
    assert "rough estimate" in warnings[0]
    assert warnings[1] == (
        f"pgvbench: warning: {path}: this spec builds 56 indexes (more than 50): every "
        "[[index]] is built once per server configuration (2), plus the studies' builds; "
        "check that this is intended"
    )


def test_validate_counts_studies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = _spec(
        build_tuning={"maintenance_work_mem": ["64MB", "256MB"]},
        quantization={"ef_search": [40, 80], "overfetch": [1, 4]},
        result_cache={"distinct_queries": 100, "lru_sizes": [10, 50]},
        cache={"strategies": ["warm", "cold"], "shared_buffers": ["16MB", "64MB"]},
    )
    path = write_toml(tmp_path / "studies.toml", data)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    # 2 [[index]] builds + 4 build-tuning (2 sizes x workers 0, 1) + 3 quantization
    # variants + 1 build for the cache studies
    assert out.splitlines()[0].startswith(f"{path}: ok (10 index builds,")
    assert "studies: build_tuning, quantization, result_cache, cache" in out
    # quantization: (full + halfvec + binary with 2 overfetch + no-rerank) x 2 ef_search
    assert any(line.split()[:3] == ["quantization", "points", "10"] for line in out.splitlines())
    assert any(line.split()[:3] == ["cache", "states", "4"] for line in out.splitlines())


def test_validate_agent_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = {
        "experiment": {"name": "agents_ok", "kind": "agents"},
        "agents": {"tenants": 2, "agents": 4, "memories": 1000, "chunks": 100, "dim": 16},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [40]}],
        "workload": {"mix": {"memory_recall": 1}},
        "load": {"clients": [1, 2, 4]},
        "filtered": {"strategies": ["hnsw_plain", "btree_exact"], "bucket_edges": [0.1]},
        "drift": {"duration_seconds": 10, "interval_seconds": 2},
    }
    path = write_toml(tmp_path / "agents.toml", data)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    # memories + chunks, one filtered HNSW, one drift rebuild
    assert out.splitlines()[0] == f"{path}: ok (4 index builds, 0 sweep points, 3 load points)"
    assert "studies: workload, filtered, drift" in out
    assert any(line.split()[:3] == ["filtered-search", "points", "4"] for line in out.splitlines())


def test_validate_reads_file_headers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    np.save(base, _vectors(500, 8))
    np.save(queries, _vectors(150, 8, seed=1))
    path = _npy_spec(tmp_path, base, queries)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  dataset: npy:{base} 500 x 8 (l2), 150 queries" in out


# --------------------------------------------------------------------------- spec errors


def test_reserved_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_toml(tmp_path / "s.toml", _spec(experiment={"schema": "pg_catalog"}))
    err = _validate_fails(capsys, path)
    assert f"{path}: [experiment] schema = 'pg_catalog' is reserved" in err


def test_schema_too_long(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_toml(tmp_path / "s.toml", _spec(experiment={"schema": "x" * 70}))
    err = _validate_fails(capsys, path)
    assert "is 70 bytes long; PostgreSQL names hold at most 63 bytes" in err


def test_non_utf8_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[experiment]\nname = "na\xefve"\n')
    err = _validate_fails(capsys, path)
    assert f"{path}: not a UTF-8 text file (byte 0xef at offset 23)" in err


def test_binary_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_bytes(bytes(range(256)))
    err = _validate_fails(capsys, path)
    assert f"{path}: not a text file (byte 0x00 at offset 0)" in err


def test_hnsw_over_2000_dims(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_toml(tmp_path / "wide.toml", _spec(dataset={"dim": 2001}))
    err = _validate_fails(capsys, path)
    assert "[index.ivfflat] ivfflat(lists=20) cannot index 2001-dimensional vectors" in err
    assert "at most 2,000 dimensions (halfvec 4,000, bit 64,000)" in err


def test_fewer_queries_than_recall_queries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_toml(tmp_path / "q.toml", _spec(query={"recall_queries": 500}))
    err = _validate_fails(capsys, path)
    assert "[query] recall_queries = 500 but the dataset has only 300 queries" in err


# --------------------------------------------------------------------------- dataset files


def test_missing_dataset_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    queries = tmp_path / "queries.npy"
    np.save(queries, _vectors(150, 8))
    path = _npy_spec(tmp_path, tmp_path / "nope.npy", queries)
    err = _validate_fails(capsys, path)
    assert f"{tmp_path / 'nope.npy'}: base vectors file not found" in err


def test_text_file_named_npy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    base.write_text("id,embedding\n1,[0.1,0.2]\n")
    np.save(queries, _vectors(150, 8))
    err = _validate_fails(capsys, _npy_spec(tmp_path, base, queries))
    assert f"{base}: not a NumPy .npy file (it looks like a text file" in err
    assert "pickle" not in err


def test_query_file_with_fewer_rows_than_recall_queries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    np.save(base, _vectors(500, 8))
    np.save(queries, _vectors(60, 8, seed=1))
    path = _npy_spec(tmp_path, base, queries)
    err = _validate_fails(capsys, path)
    assert f"{path}: [query] recall_queries = 100 but the dataset has only 60 queries" in err
    assert f"({queries})" in err


def test_file_with_2001_dims_and_an_hnsw_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base, queries = tmp_path / "base.fvecs", tmp_path / "queries.npy"
    rows = np.empty((20, 2002), dtype="<i4")
    rows[:, 0] = 2001
    rows[:, 1:] = _vectors(20, 2001).view("<i4")
    rows.tofile(base)
    np.save(queries, _vectors(150, 2001))
    path = _npy_spec(tmp_path, base, queries, index=[{"kind": "hnsw"}])
    err = _validate_fails(capsys, path)
    assert f"({base} holds 2001-dimensional vectors)" in err
    assert "[index.hnsw] hnsw(m=16,ef_construction=64) cannot index" in err


def test_malformed_hdf5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "data.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f.create_dataset("train", data=_vectors(100, 8))
    data = _spec(dataset={"source": "hdf5", "path": str(path)})
    for key in ("n", "dim", "queries", "metric"):
        del data["dataset"][key]
    err = _validate_fails(capsys, write_toml(tmp_path / "h.toml", data))
    assert f"{path}: HDF5 dataset 'test' is missing" in err


# --------------------------------------------------------------------------- results files


def _complete_results_without_runs() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_name": "x",
        "status": "complete",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:01:00Z",
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
        "indexes": [],
    }


def _results_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"schema_version": 3, "run_name": "caf\xe9"}')
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"name": "web", "version": "1.0.0"}))
    no_runs = tmp_path / "no_runs.json"
    no_runs.write_text(json.dumps(_complete_results_without_runs()))
    return {
        "non-utf8": (latin1, f"{latin1}: not a UTF-8 text file (byte 0xe9 at offset 38)"),
        "no-version": (package, f"{package}: not a pgvbench results file (no schema_version)"),
        "no-runs": (no_runs, f"{no_runs}: not a complete pgvbench results file"),
    }


@pytest.mark.parametrize("case", ["non-utf8", "no-version", "no-runs"])
def test_results_readers_refuse_bad_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    bad, expected = _results_files(tmp_path)[case]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"schema_version": SCHEMA_VERSION}))  # never reached
    commands = [
        ["report", str(bad), "--out", str(tmp_path / "report")],
        ["compare", str(bad), str(bad)],
        ["baseline", "save", "main", str(bad), "--dir", str(tmp_path / "baselines")],
        ["merge", str(tmp_path / "merged.json"), str(bad), str(bad)],
    ]
    for argv in commands:
        err = _fails(capsys, argv)
        assert expected in err, (argv, err)
    assert not (tmp_path / "report").exists()
    assert not (tmp_path / "baselines").exists()
    assert not (tmp_path / "merged.json").exists()


def _not_regular_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    return {
        "fifo": (fifo, "it is a named pipe (FIFO), not a regular file"),
        "device": (Path("/dev/null"), "it is a character device, not a regular file"),
    }


@pytest.mark.timeout(120)  # a hang guard: before the fix, reading the FIFO blocked forever
@pytest.mark.parametrize("case", ["fifo", "device"])
def test_spec_and_results_must_be_regular_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    bad, expected = _not_regular_files(tmp_path)[case]
    err = _validate_fails(capsys, bad)
    assert f"{bad}: cannot read spec file: {expected}" in err
    err = _fails(capsys, ["report", str(bad), "--out", str(tmp_path / "report")])
    assert f"{bad}: cannot read results file: {expected}" in err
    assert not (tmp_path / "report").exists()
    # these resolve their arguments first (a file, a run folder or a baseline name)
    commands = [
        ["compare", str(bad), str(bad)],
        ["baseline", "save", "main", str(bad), "--dir", str(tmp_path / "baselines")],
        ["merge", str(tmp_path / "merged.json"), str(bad), str(bad)],
    ]
    for argv in commands:
        assert str(bad) in _fails(capsys, argv)


def test_dataset_too_big_for_ram(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # validate only warned about run time, and run then tried to allocate ~2.4 TB
    import psutil

    from pgvbench.errors import SpecError
    from pgvbench.plan.shape import dataset_shape, memory_estimate
    from pgvbench.spec.parse import load_spec

    dataset = {"source": "synthetic", "n": 100_000_000, "dim": 2000, "queries": 1000}
    assert memory_estimate(rows=100_000_000, dim=2000, queries=1000) > (
        psutil.virtual_memory().total
    )
    path = write_toml(tmp_path / "huge.toml", _spec(dataset=dataset))
    err = _validate_fails(capsys, path)
    assert f"{path}: the dataset cannot fit in memory ([dataset] n = 100,000,000, dim = 2,000" in (
        err
    )
    assert "needs about 2.2 TB" in err and "of RAM; lower n or dim" in err
    with pytest.raises(SpecError):  # what `pgvbench run` calls before any work
        dataset_shape(load_spec(path))
