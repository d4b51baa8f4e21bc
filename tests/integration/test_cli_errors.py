"""Bad input through the CLI: exit 2, one "pgvbench: error:" paragraph, nothing written."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import sql

from pgvbench.cli import main
from pgvbench.results import SCHEMA_VERSION
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml

pytestmark = pytest.mark.integration

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nope"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the ground-truth cache and any embedded data dir inside the test's tmp dir."""
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PGVBENCH_DATA_DIR", str(tmp_path / "embedded-data"))


def _fails_cleanly(capsys: pytest.CaptureFixture[str], argv: list[str], out: Path | None) -> str:
    """Run the CLI, expect exit 2 with one error paragraph and no output dir; return stderr."""
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.startswith("pgvbench: error: "), err
    assert err.count("pgvbench: error:") == 1, err
    assert "Traceback" not in err
    assert "\n\n" not in err.strip(), err  # one paragraph
    if out is not None:
        assert not out.exists(), f"{out} was written: {sorted(out.rglob('*'))}"
    return err


def _tiny_spec_file(tmp_path: Path, spec: dict[str, Any], name: str = "spec.toml") -> Path:
    spec = {**spec, "index": [{"kind": "none"}]}
    return write_toml(tmp_path / name, spec)


def _npy_spec(tmp_path: Path, unique_name: str, base: Path, queries: Path) -> Path:
    return write_toml(
        tmp_path / "npy.toml",
        {
            "experiment": {"name": unique_name},
            "dataset": {
                "source": "npy",
                "metric": "l2",
                "base": base.name,  # relative: resolved against the spec's folder
                "queries_file": str(queries),
            },
            "query": {"k": 5, "measure_seconds": 0.1, "warmup_seconds": 0.0},
            "index": [{"kind": "none"}],
        },
    )


def _vectors(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


# --------------------------------------------------------------------------- spec errors


def test_run_with_mistyped_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    tiny_spec["query"]["measure_secs"] = 1.0
    spec_path = write_toml(tmp_path / "typo.toml", tiny_spec)
    out = tmp_path / "out"

    err = _fails_cleanly(capsys, ["run", str(spec_path), "--out", str(out), "-q"], out)

    assert str(spec_path) in err
    assert "[query] measure_secs is not a known key" in err
    assert "did you mean 'measure_seconds'" in err


def test_run_of_missing_spec_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "missing.toml"
    err = _fails_cleanly(capsys, ["run", str(missing), "--out", str(out), "-q"], out)
    assert err.strip() == f"pgvbench: error: {missing}: spec file not found"


def test_bad_command_line_is_an_argparse_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2
    assert "the following arguments are required: spec" in capsys.readouterr().err


# --------------------------------------------------------------------------- dataset errors
# --dsn points at a port where nothing listens: if the dataset were not checked before
# the server is contacted, the message would be about the connection instead.


def test_run_with_missing_npy_base(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str
) -> None:
    queries = tmp_path / "queries.npy"
    np.save(queries, _vectors(20, 8))
    spec_path = _npy_spec(tmp_path, unique_name, tmp_path / "base.npy", queries)
    out = tmp_path / "out"

    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", UNREACHABLE, "--out", str(out), "-q"], out
    )

    assert f"{tmp_path / 'base.npy'}: base vectors file not found" in err
    assert "connect" not in err


def test_run_with_one_dimensional_base(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str
) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    np.save(base, np.arange(100, dtype=np.float32))
    np.save(queries, _vectors(20, 8))
    spec_path = _npy_spec(tmp_path, unique_name, base, queries)
    out = tmp_path / "out"

    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", UNREACHABLE, "--out", str(out), "-q"], out
    )

    assert f"{base}: expected a 2-D array (rows x dim), got shape (100,)" in err
    assert "connect" not in err


def test_run_with_queries_of_another_dim(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str
) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    np.save(base, _vectors(200, 8))
    np.save(queries, _vectors(20, 12, seed=1))
    spec_path = _npy_spec(tmp_path, unique_name, base, queries)
    out = tmp_path / "out"

    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", UNREACHABLE, "--out", str(out), "-q"], out
    )

    assert f"{queries}: queries have dim 12 but {base} has dim 8" in err
    assert "connect" not in err


def test_run_with_k_larger_than_the_dataset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str
) -> None:
    base, queries = tmp_path / "base.npy", tmp_path / "queries.npy"
    np.save(base, _vectors(3, 8))
    np.save(queries, _vectors(4, 8, seed=1))
    spec_path = _npy_spec(tmp_path, unique_name, base, queries)
    out = tmp_path / "out"

    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", UNREACHABLE, "--out", str(out), "-q"], out
    )

    assert "[query] k = 5 exceeds the dataset's 3 rows" in err


# --------------------------------------------------------------------------- unreachable DSN


@pytest.mark.parametrize(
    "dsn",
    [
        UNREACHABLE,
        "host=127.0.0.1 port=1 user=postgres password=s3cret dbname=nope",
        "postgresql://postgres:s3cret@127.0.0.1:1/nope",
    ],
    ids=["url", "keyvalue-password", "url-password"],
)
def test_unreachable_dsn_fails_fast_without_leaking_the_password(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_spec: dict[str, Any],
    dsn: str,
) -> None:
    spec_path = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"

    started = time.perf_counter()
    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", dsn, "--out", str(out), "-q"], out
    )
    elapsed = time.perf_counter() - started

    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert "pgvbench: error: cannot connect to " in err
    assert "127.0.0.1" in err and "port=1" in err  # says where it tried
    assert "Check that the server is running and reachable" in err
    assert "s3cret" not in err


def test_malformed_dsn_is_bad_input_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    # libpq's own message for this quotes the whole URL, password included
    spec_path = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    dsn = "postgresql://postgres:s3cret@[::1:5432/db"

    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", dsn, "--out", str(out), "-q"], out
    )

    assert "the DSN is not a valid connection string" in err
    assert "s3cret" not in err


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_server_that_never_answers_times_out_within_10_s(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_spec: dict[str, Any],
    silent_listener: int,
) -> None:
    spec_path = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    dsn = f"postgresql://postgres:s3cret@127.0.0.1:{silent_listener}/db"

    started = time.perf_counter()
    err = _fails_cleanly(
        capsys, ["run", str(spec_path), "--dsn", dsn, "--out", str(out), "-q"], out
    )
    elapsed = time.perf_counter() - started

    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert "cannot connect to " in err
    assert "s3cret" not in err


# --------------------------------------------------------------------------- no pgvector


def test_database_without_pgvector_and_no_right_to_create_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_spec: dict[str, Any],
    embedded_server: EmbeddedServer,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    role, database = f"pgvb_noext_{suffix}", f"noext_{suffix}"
    spec_path = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    admin_dsn = embedded_server.dsn("postgres")
    try:
        with connect(admin_dsn) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        dsn = (
            f"host={embedded_server.socket_dir} port={embedded_server.port} "
            f"user={role} dbname={database}"
        )

        err = _fails_cleanly(
            capsys, ["run", str(spec_path), "--dsn", dsn, "--out", str(out), "-q"], out
        )

        assert "pgvector" in err
        assert "CREATE EXTENSION vector" in err
        assert "Ask the database owner" in err
        with connect(embedded_server.dsn(database)) as conn:
            row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            assert row.fetchone() == (0,)  # nothing was installed behind the user's back
            tables = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
            ).fetchone()
            assert tables == (0,)
    finally:
        with connect(admin_dsn) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# --------------------------------------------------------------------------- report


def test_report_of_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "results.json"
    out = tmp_path / "report"
    err = _fails_cleanly(capsys, ["report", str(missing), "--out", str(out)], out)
    assert f"{missing}: no such results file" in err


def test_report_of_corrupt_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"schema_version": 1, "run_name": "x", "runs": [')  # cut short
    out = tmp_path / "report"
    err = _fails_cleanly(capsys, ["report", str(path), "--out", str(out)], out)
    assert f"{path}: not valid JSON" in err
    assert "interrupted" in err


def test_report_of_json_that_is_not_an_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "results.json"
    path.write_text("[1, 2, 3]\n")
    out = tmp_path / "report"
    err = _fails_cleanly(capsys, ["report", str(path), "--out", str(out)], out)
    assert f"{path}: expected a JSON object" in err


def test_report_of_unknown_schema_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 999, "run_name": "future"}))
    out = tmp_path / "report"
    err = _fails_cleanly(capsys, ["report", str(path), "--out", str(out)], out)
    assert str(path) in err
    assert "schema_version 999" in err
    assert f"versions 1, 2, {SCHEMA_VERSION}" in err


def test_report_of_malformed_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "run_name": "x"}))
    out = tmp_path / "report"
    err = _fails_cleanly(capsys, ["report", str(path), "--out", str(out)], out)
    assert f"{path}: malformed results file" in err


# --------------------------------------------------------------------------- validate


def test_validate_good_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    spec_path = write_toml(tmp_path / "good.toml", tiny_spec)
    assert main(["validate", str(spec_path)]) == 0
    captured = capsys.readouterr()
    # tiny spec: none (1 point) + ivfflat (4 probes) + hnsw (5 ef_search values); the exact
    # scan builds nothing. Lines after the first count the work and estimate its time.
    first = captured.out.splitlines()[0]
    assert first == f"{spec_path}: ok (2 index builds, 10 sweep points, 0 load points)"
    assert captured.err == ""


def test_validate_bad_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    tiny_spec["index"][2]["ef_search"] = [10, 1001]
    spec_path = write_toml(tmp_path / "bad.toml", tiny_spec)
    err = _fails_cleanly(capsys, ["validate", str(spec_path)], None)
    assert str(spec_path) in err
    assert "[index.hnsw] ef_search = 1001 is above the maximum 1000" in err
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- server


def test_server_status_of_uninitialised_data_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "nothing"
    code = main(["server", "status", "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    assert code != 0
    assert "not initialised" in captured.out
    assert str(data_dir) in captured.out
    assert "Traceback" not in captured.err
    assert not data_dir.exists()


def test_server_url_of_uninitialised_data_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "nothing"
    code = main(["server", "url", "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""  # no URL a script could mistake for a server
    assert "not running" in captured.err
    assert "pgvbench server start" in captured.err
    assert not data_dir.exists()


def test_server_stop_of_uninitialised_data_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "nothing"
    assert main(["server", "stop", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == "not running"
    assert not data_dir.exists()


def test_empty_dsn_is_bad_input_not_the_embedded_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    spec = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    err = _fails_cleanly(capsys, ["run", str(spec), "--dsn", " ", "--out", str(out)], out)
    assert "--dsn is empty" in err
    assert not (tmp_path / "embedded-data").exists(), "no embedded server was started"


@pytest.mark.parametrize("value", ["2", "-1", "0", "high"])
def test_report_target_recall_outside_0_1_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["report", str(tmp_path / "results.json"), "--target-recall", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--target-recall" in err
    assert "Traceback" not in err


def test_dsn_whose_statement_timeout_cancels_the_checks(
    embedded_server: EmbeddedServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_spec: dict[str, Any],
) -> None:
    spec = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    dsn = f"{embedded_server.dsn()} options='-c statement_timeout=1'"
    err = _fails_cleanly(capsys, ["run", str(spec), "--dsn", dsn, "--out", str(out)], out)
    assert "the server cancelled pgvbench's first checks" in err
    assert "statement_timeout" in err


def test_dsn_setting_with_an_invalid_value_is_the_specs_mistake(
    embedded_server: EmbeddedServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_spec: dict[str, Any],
) -> None:
    tiny_spec["server"] = {"settings": {"work_mem": "lots"}}
    spec = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    argv = ["run", str(spec), "--dsn", embedded_server.dsn(), "--out", str(out)]
    err = _fails_cleanly(capsys, argv, out)
    assert "[server.settings] work_mem = 'lots' was refused by PostgreSQL" in err


@pytest.mark.parametrize("action", ["stop", "status", "url"])
def test_fresh_goes_with_server_start_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, action: str
) -> None:
    err = _fails_cleanly(capsys, ["server", action, "--fresh"], None)
    assert f"--fresh goes with `server start` only, not `server {action}`" in err
    assert not (tmp_path / "embedded-data").exists()


@pytest.mark.parametrize("option", ["--out", "--data-dir"])
def test_empty_path_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any], option: str
) -> None:
    spec = _tiny_spec_file(tmp_path, tiny_spec)
    with pytest.raises(SystemExit) as info:
        main(["run", str(spec), option, ""])
    assert info.value.code == 2
    assert f"argument {option}: is empty" in capsys.readouterr().err


def test_a_bad_sweep_entry_is_found_before_any_measurement(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    tiny_spec["server"] = {
        "settings": {"work_mem": "8MB"},
        "sweep": [{"label": "fine", "work_mem": "16MB"}, {"label": "bad", "work_mem": "lots"}],
    }
    spec = _tiny_spec_file(tmp_path, tiny_spec)
    out = tmp_path / "out"
    # progress lines (dataset, ground truth) come first: the check needs the server
    code = main(["run", str(spec), "--out", str(out)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("pgvbench: error:")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err
    assert "[[server.sweep]] #2 (bad) work_mem = 'lots' was refused by PostgreSQL" in errors[0]
    assert not out.exists(), "refused before the first configuration was measured"
