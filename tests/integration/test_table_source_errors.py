"""source = "table": a table the spec cannot use is bad input (exit 2, one paragraph naming
the table, column or grant) found before anything is written; and the variants that do
run (halfvec, a queries_table, COPY between sessions, spec and index metrics disagreeing).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgvector.psycopg import register_vector

from pgvbench.cli import main
from pgvbench.datasets.table_source import TableSourceInfo
from pgvbench.results import load_results
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml

pytestmark = pytest.mark.integration

DIM = 8


@pytest.fixture
def app(embedded_server: EmbeddedServer, unique_name: str) -> Iterator[str]:
    """A schema of user tables: t (id PK, vector(8), int label, point, halfvec(8), cosine
    and halfvec l2 HNSW), dup (no unique id), q4 (4-d queries), q8 (8-d queries in a
    column "half"), nodim (vector without a dimension, mixed)."""
    schema = f"app_{unique_name}"
    rng = np.random.default_rng(1)
    with connect(embedded_server.dsn()) as conn:
        register_vector(conn)
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.t (id int PRIMARY KEY, embedding vector({DIM}), "
            "label int, spot point, half halfvec(8))"
        )
        conn.execute(f"CREATE TABLE {schema}.dup (id int, embedding vector({DIM}))")
        conn.execute(f"CREATE TABLE {schema}.q4 (embedding vector(4))")
        conn.execute(f"CREATE TABLE {schema}.q8 (half vector({DIM}))")
        conn.execute(f"CREATE TABLE {schema}.nodim (id int PRIMARY KEY, embedding vector)")
        with conn.cursor() as cur:
            for i in range(300):
                vec = rng.normal(size=DIM).astype(np.float32)
                cur.execute(
                    f"INSERT INTO {schema}.t VALUES (%s, %s, %s, point(0, 0), %s::halfvec)",
                    (i, vec, i % 3, vec),
                )
                cur.execute(f"INSERT INTO {schema}.dup VALUES (%s, %s)", (i % 200, vec))
                cur.execute(f"INSERT INTO {schema}.q8 VALUES (%s)", (vec + 0.01,))
            cur.execute(f"INSERT INTO {schema}.q4 VALUES ('[1,2,3,4]')")
            cur.execute(f"INSERT INTO {schema}.nodim VALUES (1, '[1,2,3]'), (2, '[1,2]')")
        conn.execute(f"CREATE INDEX t_hnsw ON {schema}.t USING hnsw (embedding vector_cosine_ops)")
        conn.execute(f"CREATE INDEX t_half ON {schema}.t USING hnsw (half halfvec_l2_ops)")
    yield schema
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _spec(name: str, dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "seed": 3, "schema": f"s_{name}"},
        "dataset": {"source": "table", "queries": 20, **dataset},
        "query": {"k": 5, "recall_queries": 10, "warmup_seconds": 0.02, "measure_seconds": 0.1},
        "index": [{"kind": "none"}],
    }


def _run(dsn_url: str, spec: dict[str, Any], tmp_path: Path) -> int:
    path = write_toml(tmp_path / "spec.toml", spec)
    return main(["run", str(path), "--dsn", dsn_url, "--out", str(tmp_path / "out"), "-q"])


CASES = [
    ({"table": "{s}.missing"}, "no such table or view"),
    ({"table": "{s}.t", "column": "vec"}, "has no such column; its columns are id, embedding"),
    ({"table": "{s}.t", "column": "label"}, "is of type integer, not a pgvector vector"),
    ({"table": "{s}.t", "id": "key"}, "[dataset] id = 'key'"),
    ({"table": "{s}.dup", "metric": "l2"}, "must be unique and not NULL"),
    ({"table": "{s}.t", "attributes": ["lang"]}, "[dataset] attributes = 'lang'"),
    ({"table": "{s}.t", "attributes": ["spot"]}, "is of type point, which pgvbench cannot load"),
    ({"table": "{s}.t", "sample": 290}, "lower sample to at most 280"),
    ({"table": "{s}.dup"}, 'set metric = "l2", "cosine" or "ip"'),
    ({"table": "{s}.t", "queries_table": "{s}.q4"}, "has dimension 4, the table's has 8"),
    ({"table": "{s}.nodim", "metric": "l2"}, "vectors have 2 to 3 dimensions"),
]


IN_THE_SNAPSHOT = ("must be unique", "lower sample", "vectors have 2 to 3")


@pytest.mark.parametrize(("dataset", "needle"), CASES, ids=[c[1][:30] for c in CASES])
def test_unusable_table_is_bad_input(
    embedded_server: EmbeddedServer,
    app: str,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dataset: dict[str, Any],
    needle: str,
) -> None:
    filled = {
        k: [x.format(s=app) for x in v] if isinstance(v, list) else str(v).format(s=app)
        for k, v in dataset.items()
    }
    filled = {k: int(v) if k == "sample" else v for k, v in filled.items()}
    code = _run(embedded_server.url(), _spec(unique_name, filled), tmp_path)
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err, err
    with connect(embedded_server.dsn()) as conn:  # nothing of pgvbench's was left behind
        row = conn.execute(
            "SELECT count(*), to_regnamespace(%s) IS NULL FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            (f"s_{unique_name}", f"s_{unique_name}"),
        ).fetchone()
        assert row is not None and row[0] == 0
        # the catalog checks come before pgvbench creates its schema; the counts need the
        # snapshot, taken after it
        assert row[1] or any(late in needle for late in IN_THE_SNAPSHOT), needle


def test_no_select_privilege_names_the_grant(
    embedded_server: EmbeddedServer,
    app: str,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    role = f"r_{unique_name}"
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE ON DATABASE {conn.info.dbname} TO {role}")
    try:
        dsn = embedded_server.url().replace("://postgres@", f"://{role}@")
        assert role in dsn
        code = _run(dsn, _spec(unique_name, {"table": f"{app}.t"}), tmp_path)
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"GRANT USAGE ON SCHEMA {app} TO {role};" in err, err
        assert f"GRANT SELECT ON {app}.t TO {role};" in err, err
        with connect(embedded_server.dsn()) as conn:  # the advice, applied, is enough
            conn.execute(f"GRANT USAGE ON SCHEMA {app} TO {role}")
            conn.execute(f"GRANT SELECT ON {app}.t TO {role}")
        assert _run(dsn, _spec(unique_name, {"table": f"{app}.t"}), tmp_path) == 0
    finally:
        with connect(embedded_server.dsn()) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS s_{unique_name} CASCADE")
            conn.execute(f"REVOKE CREATE ON DATABASE {conn.info.dbname} FROM {role}")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_halfvec_queries_table_copy_and_a_metric_note(
    embedded_server: EmbeddedServer, app: str, unique_name: str, tmp_path: Path
) -> None:
    dataset = {
        "table": f"{app}.t",
        "column": "half",
        "attributes": ["label"],
        "metric": "cosine",  # the index on `half` says l2: a note, not an error
        "queries_table": f"{app}.q8",
        "copy_method": "copy",
    }
    spec = _spec(unique_name, dataset)
    spec["dataset"]["queries"] = 50
    assert _run(embedded_server.url(), copy.deepcopy(spec), tmp_path) == 0
    results = load_results(tmp_path / "out" / "results.json")
    assert results.status == "complete" and results.dataset is not None
    assert results.dataset.metric == "cosine" and results.dataset.n_queries == 50
    assert results.dataset.table_source is not None
    record = TableSourceInfo.from_dict(results.dataset.table_source)
    assert (record.vector_type, record.dim, record.metric_from) == ("halfvec", DIM, "spec")
    assert any("t_half uses halfvec_l2_ops" in note for note in record.notes), record.notes
    assert record.queries_from == f"queries_table {app}.q8" and record.held_out == 0
    assert (record.rows_in_source, record.rows_copied) == (300, 300)
    assert (record.copy_method, record.copy_method_from) == ("copy", "spec")
    exact = [p for p in results.runs if p.index_kind == "none"]
    assert exact and exact[0].recall is not None and exact[0].recall.mean == 1.0
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "### Source table" in report
    assert "half (halfvec(8), copied as vector)" in report
    assert "binary COPY from the snapshot's session into a second session" in report
    assert "t_half uses halfvec_l2_ops" in report


def test_validate_with_a_dsn_checks_the_table(
    embedded_server: EmbeddedServer,
    app: str,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_toml(tmp_path / "v.toml", _spec(unique_name, {"table": f"{app}.t"}))
    assert main(["validate", str(path)]) == 0
    assert "read from the server at run time" in capsys.readouterr().out
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"ANALYZE {app}.t")
    assert main(["validate", str(path), "--dsn", embedded_server.url()]) == 0
    out = capsys.readouterr().out
    assert f"table {app}.t (embedding vector({DIM})): about 300 rows" in out, out
    assert "metric cosine from index t_hnsw (vector_cosine_ops)" in out, out
    missing = write_toml(tmp_path / "m.toml", _spec(unique_name, {"table": f"{app}.nope"}))
    assert main(["validate", str(missing), "--dsn", embedded_server.url()]) == 2
    assert "no such table or view" in capsys.readouterr().err


def test_queries_file(
    embedded_server: EmbeddedServer,
    app: str,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    np.save(tmp_path / "q4.npy", np.ones((5, 4), dtype=np.float32))
    spec = _spec(unique_name, {"table": f"{app}.t", "queries_file": "q4.npy"})
    assert _run(embedded_server.url(), spec, tmp_path) == 2
    assert "its vectors have dimension 4, the table's have 8" in capsys.readouterr().err
    np.save(tmp_path / "q8.npy", np.random.default_rng(2).normal(size=(40, DIM)).astype("f4"))
    spec = _spec(unique_name, {"table": f"{app}.t", "queries_file": "q8.npy", "queries": 30})
    assert _run(embedded_server.url(), spec, tmp_path) == 0, capsys.readouterr().err
    results = load_results(tmp_path / "out" / "results.json")
    assert results.dataset is not None and results.dataset.table_source is not None
    record = TableSourceInfo.from_dict(results.dataset.table_source)
    assert record.queries_from == f"queries_file {tmp_path / 'q8.npy'}" and record.held_out == 0
    assert (results.dataset.n, results.dataset.n_queries) == (300, 30)
