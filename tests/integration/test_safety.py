"""pgvbench never writes into, drops or alters objects it did not create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from pgvbench.cli import main
from pgvbench.db import schema as db_schema
from pgvbench.errors import SafetyError
from pgvbench.progress import Reporter
from pgvbench.runner import ExperimentRunner
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import parse_spec
from support import write_toml

pytestmark = pytest.mark.integration


@pytest.fixture
def small_spec(tiny_spec: dict[str, Any]) -> dict[str, Any]:
    """The tiny spec cut to one exact-scan build: the safety checks come before any index."""
    tiny_spec["dataset"].update(n=500, queries=60)
    tiny_spec["query"].update(recall_queries=20, warmup_seconds=0.0, measure_seconds=0.1)
    tiny_spec["index"] = [{"kind": "none"}]
    return tiny_spec


@pytest.fixture
def cleanup_schema(embedded_server: EmbeddedServer, small_spec: dict[str, Any]) -> Iterator[str]:
    """The spec's schema name; whatever holds that name is dropped after the test."""
    schema = small_spec["experiment"]["schema"]
    yield schema
    with connect(embedded_server.dsn()) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _rows(server: EmbeddedServer, schema: str, table: str) -> list[tuple[Any, ...]]:
    with connect(server.dsn()) as conn:
        query = sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(schema, table))
        return conn.execute(query).fetchall()


def _comment(server: EmbeddedServer, schema: str, table: str) -> str | None:
    with connect(server.dsn()) as conn:
        row = conn.execute(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]


def test_foreign_schema_is_refused_through_the_cli(
    embedded_server: EmbeddedServer,
    small_spec: dict[str, Any],
    cleanup_schema: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = cleanup_schema
    with connect(embedded_server.dsn()) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(
                sql.Identifier(schema, "customers")
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (1, 'alice'), (2, 'bob')").format(
                sql.Identifier(schema, "customers")
            )
        )
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    spec_path = write_toml(tmp_path / "spec.toml", small_spec)
    out = tmp_path / "out"

    code = main(["run", str(spec_path), "--dsn", embedded_server.dsn(), "--out", str(out), "-q"])

    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error: "), err
    assert f"schema '{schema}' exists and was not created by pgvbench" in err
    assert '[experiment] schema = "<another name>"' in err  # says what to do
    # the foreign schema is untouched: same table, same rows, no table of ours inside
    assert _rows(embedded_server, schema, "customers") == [(1, "alice"), (2, "bob")]
    with connect(embedded_server.dsn()) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        comment = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (schema,),
        ).fetchone()
    assert tables == [("customers",)]
    assert comment == (None,)  # pgvbench did not claim the schema by marking it
    # refused before the run began: nothing written
    assert not out.exists()


@pytest.mark.parametrize("comment", [None, "customer vectors, do not drop"])
def test_unmarked_table_in_our_schema_is_refused(
    embedded_server: EmbeddedServer,
    small_spec: dict[str, Any],
    cleanup_schema: str,
    tmp_path: Path,
    comment: str | None,
) -> None:
    schema = cleanup_schema
    table = f"{small_spec['experiment']['name']}_items"
    with connect(embedded_server.dsn()) as conn:
        db_schema.ensure_schema(conn, schema)  # a schema pgvbench created and marked
        ident = sql.Identifier(schema, table)
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint, payload text)").format(ident))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'keep'), (2, 'me')").format(ident))
        if comment is not None:
            conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(comment)))
    runner = ExperimentRunner(
        parse_spec(small_spec),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )

    with pytest.raises(SafetyError) as info:
        runner.run(Target(embedded_server.dsn(), "external"))

    assert str(info.value) == (
        f"table {schema}.{table} exists without pgvbench's mark; pgvbench will not drop it."
    )
    assert _rows(embedded_server, schema, table) == [(1, "keep"), (2, "me")]
    assert _comment(embedded_server, schema, table) == comment
    assert not (tmp_path / "out").exists()


def test_marked_table_is_replaced_on_a_rerun(
    embedded_server: EmbeddedServer,
    small_spec: dict[str, Any],
    cleanup_schema: str,
    tmp_path: Path,
) -> None:
    """The counterpart of the refusals: pgvbench's own leftovers are recreated freely."""
    schema = cleanup_schema
    table = f"{small_spec['experiment']['name']}_items"
    with connect(embedded_server.dsn()) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, table, dim=3)  # marked, wrong dim
    runner = ExperimentRunner(
        parse_spec(small_spec),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        reporter=Reporter(enabled=False),
    )

    results = runner.run(Target(embedded_server.dsn(), "external"))

    assert results.status == "complete"
    assert results.load is not None and results.load.rows == 500
    assert _comment(embedded_server, schema, table) == db_schema.OWNER_MARK
    with connect(embedded_server.dsn()) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*), max(vector_dims(embedding)) FROM {}").format(
                sql.Identifier(schema, table)
            )
        ).fetchone()
    assert row == (500, 16)


def test_password_in_dsn_never_reaches_results_or_report(
    embedded_server: EmbeddedServer,
    small_spec: dict[str, Any],
    cleanup_schema: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The embedded server trusts local connections, so libpq never sends the password:
    # the run succeeds and everything it writes can be searched for it.
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    secret = "s3cretPa55"
    dsn = f"{embedded_server.dsn()} password={secret}"
    spec_path = write_toml(tmp_path / "spec.toml", small_spec)
    out = tmp_path / "out"

    code = main(["run", str(spec_path), "--dsn", dsn, "--out", str(out)])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert secret not in captured.out + captured.err
    results_file = out / "results.json"
    assert json.loads(results_file.read_text())["status"] == "complete"
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in written} >= {"results.json", "report.md", "report.html"}
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
