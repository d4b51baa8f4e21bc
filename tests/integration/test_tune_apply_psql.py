"""apply.sql, run for real: psql applies it to a fresh table in a database of its own, and
the index it builds is valid, has the winner's operator class and WITH options, the
database default holds the knob, and the query shape it prints uses the index."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from psycopg import sql

from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.tune.apply import apply_sql
from pgvbench.studies.tune.records import Config
from tune_support import config, evaluation, record, trial

pytestmark = pytest.mark.integration

DIM, ROWS = 8, 300


@pytest.fixture
def database(embedded_server: EmbeddedServer) -> Iterator[str]:
    """A database of its own (apply.sql sets database defaults), with a loaded table."""
    name = f"tune_apply_{uuid.uuid4().hex[:8]}"
    admin = embedded_server.dsn("postgres")
    with connect(admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        rng = np.random.default_rng(5)
        with connect(embedded_server.dsn(name)) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE SCHEMA app")
            conn.execute(f"CREATE TABLE app.items (id int PRIMARY KEY, embedding vector({DIM}))")
            with conn.cursor().copy("COPY app.items (id, embedding) FROM STDIN") as copy:
                for i, row in enumerate(rng.standard_normal((ROWS, DIM))):
                    copy.write_row((i, "[" + ",".join(f"{x:.5f}" for x in row) + "]"))
        yield name
    finally:
        with connect(admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _psql(server: EmbeddedServer, database: str, script: str, tmp_path: Path) -> str:
    path = tmp_path / "apply.sql"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [str(server.bin_dir / "psql"), "-X", "-q", "-d", server.dsn(database), "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def _applied(server: EmbeddedServer, database: str, cfg: Config, script: str) -> None:
    """The index is valid with the winner's opclass and options; the defaults are set; the
    query shape printed in the script uses the index."""
    with connect(server.dsn(database)) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'app.items'::regclass "
            "AND NOT i.indisprimary"
        ).fetchall()
        assert len(rows) == 1
        name, definition, valid = rows[0]
        assert valid
        assert f"USING {cfg.kind}" in definition
        opclass = "halfvec_cosine_ops" if cfg.storage != "vector" else "vector_cosine_ops"
        assert opclass in definition
        for key, value in cfg.params.items():
            assert f"{key}='{value}'" in definition
        if cfg.storage == "halfvec_index":
            assert f"::halfvec({DIM})" in definition
        setting = conn.execute(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0"
        ).fetchone()
        assert setting is not None and f"{cfg.knob}=40" in setting[0]
        lines = script.splitlines()
        query = lines[lines.index("--    e.g. ($1 is the query vector):") + 1].strip("- ")
        literal = "'[" + ",".join(["0.1"] * DIM) + f"]'::vector({DIM})"
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute("EXPLAIN " + query.replace("$1", literal)).fetchall()
        assert any(name in line[0] for line in plan), plan


@pytest.mark.parametrize(
    "cfg",
    [
        config(m=8, efc=32),
        config(m=8, efc=32, storage="halfvec_index"),
        config("ivfflat", lists=4, settings={"max_parallel_maintenance_workers": "0"}),
    ],
    ids=lambda c: c.label.replace(" ", "-"),
)
def test_apply_sql_builds_the_winner_on_a_fresh_table(
    embedded_server: EmbeddedServer, database: str, cfg: Config, tmp_path: Path
) -> None:
    rec = record([trial(0, evaluation(cfg, knob=40))], winner=0, dim=DIM)
    script = apply_sql(rec, schema_table="app.items")
    _psql(embedded_server, database, script, tmp_path)
    _applied(embedded_server, database, cfg, script)


def test_halfvec_column_rewrites_the_column_when_asked(
    embedded_server: EmbeddedServer, database: str, tmp_path: Path
) -> None:
    cfg = config(m=8, efc=32, storage="halfvec_column")
    rec = record([trial(0, evaluation(cfg, knob=40))], winner=0, dim=DIM)
    assert "-- ALTER TABLE app.items ALTER COLUMN" in apply_sql(rec, schema_table="app.items")
    script = apply_sql(rec, schema_table="app.items", alter_column=True)
    _psql(embedded_server, database, script, tmp_path)
    with connect(embedded_server.dsn(database)) as conn:
        kind = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'app.items'::regclass AND attname = 'embedding'"
        ).fetchone()
        assert kind == (f"halfvec({DIM})",)
    _applied(embedded_server, database, cfg, script)


def test_the_placeholder_stops_before_touching_anything(
    embedded_server: EmbeddedServer, database: str, tmp_path: Path
) -> None:
    rec = record([trial(0, evaluation(knob=40))], winner=0, dim=DIM)
    path = tmp_path / "apply.sql"
    path.write_text(apply_sql(rec), encoding="utf-8")
    done = subprocess.run(
        [str(embedded_server.bin_dir / "psql"), "-X", "-q", "-d",
         embedded_server.dsn(database), "-f", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert 'relation "your_table" does not exist' in done.stderr
    with connect(embedded_server.dsn(database)) as conn:
        setting = conn.execute(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = current_database()"
        ).fetchone()
        assert setting == (0,)  # ON_ERROR_STOP: the defaults were not set either
