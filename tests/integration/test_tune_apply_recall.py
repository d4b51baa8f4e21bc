"""The recommendation holds on the user's side: apply.sql from a real `pgvbench tune`,
applied with psql to a freshly loaded copy of the data, gives recall at the target when
recall is computed here, independently of pgvbench: the returned rows' vectors are
fetched, their distances recomputed in float64 and compared with a brute-force top-k
(a hit: within 1e-3 of the k-th true distance, the ann-benchmarks rule).

The copy lives in a database of its own (apply.sql sets database defaults, which must
not leak into the session's other tests), in a schema and table of this test's."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import sql

from pgvbench.cli import main
from pgvbench.datasets.prepared import build_dataset
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import load_spec
from pgvbench.studies.tune.apply import apply_sql
from pgvbench.studies.tune.records import TuneRecord
from support import write_toml
from tune_support import config, evaluation, record, trial

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET = 0.9
K = 10
EPSILON = 1e-3  # ann-benchmarks: a returned distance within this of the k-th true one
DIM = 32


@pytest.fixture
def user_database(embedded_server: EmbeddedServer) -> Iterator[str]:
    name = f"userapp_{uuid.uuid4().hex[:8]}"
    admin = embedded_server.dsn("postgres")
    with connect(admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with connect(admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _spec(name: str) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "seed": 11, "schema": f"s_{name}"},
        "dataset": {
            "source": "synthetic",
            "distribution": "clustered",
            "n": 3000,
            "dim": DIM,
            "clusters": 8,
            "spread": 1.0,
            "metric": "cosine",
            "queries": 300,
        },
        "query": {"k": K, "recall_queries": 100, "warmup_seconds": 0.05, "measure_seconds": 0.25},
        "tune": {
            "recall": TARGET,
            "clients": 1,
            "trials": 3,
            "kinds": ["hnsw", "ivfflat"],
            "m": [4, 8],
            "ef_construction": [16, 32],
            "lists": [10, 30],
            "max_ef_search": 200,
        },
    }


def _load_copy(dsn: str, base: np.ndarray) -> None:
    """The user's table: their own schema, their own column layout, loaded row by row."""
    with connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE SCHEMA userapp")
        conn.execute(
            f"CREATE TABLE userapp.items (id bigint PRIMARY KEY, title text, "
            f"embedding vector({DIM}) NOT NULL)"
        )
        with conn.cursor().copy("COPY userapp.items (id, title, embedding) FROM STDIN") as copy:
            for i, row in enumerate(base):
                copy.write_row((i, f"item {i}", "[" + ",".join(repr(float(x)) for x in row) + "]"))
        conn.execute("ANALYZE userapp.items")


def _cosine_distances(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    q = query.astype(np.float64)
    v = vectors.astype(np.float64)
    return 1.0 - (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))


def test_applied_recommendation_meets_the_recall_target_measured_independently(
    embedded_server: EmbeddedServer,
    user_database: str,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    spec_path = write_toml(tmp_path / "tune.toml", _spec(unique_name))
    out = tmp_path / "out"
    argv = ["tune", str(spec_path), "--out", str(out), "-q"]
    assert main([*argv, "--data-dir", str(embedded_server.data_dir)]) == 0
    record = TuneRecord.from_dict(json.loads((out / "results.json").read_text())["tuning"]["tune"])
    winner = record.trial(record.winner)
    assert winner is not None and winner.evaluation.knob_value is not None
    config = winner.evaluation.config

    # a fresh copy of the same data (same generator, same seed), loaded by the "user"
    dataset = build_dataset(load_spec(spec_path))
    dsn = embedded_server.dsn(user_database)
    _load_copy(dsn, dataset.base)

    script = (out / "apply.sql").read_text()
    # the knob apply.sql sets: the trial's, or the rebuild's when that needed more
    (knob,) = re.findall(rf'^ALTER DATABASE :"DBNAME" SET {config.knob} = (\d+);$', script, re.M)
    assert int(knob) >= winner.evaluation.knob_value
    assert "your_table" in script  # synthetic data: the user names their table
    applied = tmp_path / "apply_userapp.sql"
    # every your_table replaced by the table, as apply.sql's header tells the user to
    applied.write_text(script.replace("your_table", "userapp.items"))
    done = subprocess.run(
        [str(embedded_server.bin_dir / "psql"), "-X", "-q", "-d", dsn, "-f", str(applied)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    # the query shape apply.sql prints, asked for the rows' vectors as well
    lines = script.splitlines()
    shape = lines[lines.index("--    e.g. ($1 is the query vector):") + 1].strip("- ")
    assert shape.startswith("SELECT id FROM your_table ORDER BY"), shape
    stmt = shape.replace(
        "SELECT id FROM your_table", "SELECT id, embedding::real[] FROM userapp.items"
    ).replace("$1", "%s::vector")
    queries = dataset.queries  # every query: the tuner measured on the first 100 only
    with connect(dsn) as conn:  # a new session: the database default applies
        shown = conn.execute("SELECT current_setting(%s)", (config.knob,)).fetchone()
        assert shown == (knob,)
        literal = "[" + ",".join(repr(float(x)) for x in queries[0]) + "]"
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + stmt, (literal,)).fetchall())
        index = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'userapp.items'::regclass AND NOT indisprimary"
        ).fetchall()
        assert len(index) == 1 and f"USING {config.kind}" in _indexdef(conn, index[0][0])
        assert "Index Scan" in plan and index[0][0].split(".")[-1] in plan, plan
        recalls = []
        for q in queries:
            literal = "[" + ",".join(repr(float(x)) for x in q) + "]"
            rows = conn.execute(stmt, (literal,)).fetchall()
            assert len(rows) == K
            returned = _cosine_distances(q, np.array([r[1] for r in rows], dtype=np.float64))
            true = _cosine_distances(q, dataset.base)
            kth = np.partition(true, K - 1)[K - 1]
            recalls.append(float(np.sum(returned <= kth + EPSILON)) / K)
    mean = float(np.mean(recalls))
    assert mean >= TARGET, (mean, config.label, knob)


def _indexdef(conn: Any, name: str) -> str:
    row = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (name,)).fetchone()
    return str(row[0]) if row else ""


def test_replacing_every_placeholder_as_the_header_says_gives_a_working_script(
    embedded_server: EmbeddedServer, user_database: str, tmp_path: Path
) -> None:
    rec = record([trial(0, evaluation(config(m=8, efc=32), knob=40))], winner=0, dim=8)
    script = apply_sql(rec)
    assert "EDIT FIRST" in script and "replace every your_table" in script
    dsn = embedded_server.dsn(user_database)
    with connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE SCHEMA userapp")
        conn.execute("CREATE TABLE userapp.items (id bigint PRIMARY KEY, embedding vector(8))")
    path = tmp_path / "apply.sql"
    path.write_text(script.replace("your_table", "userapp.items"))
    done = subprocess.run(
        [str(embedded_server.bin_dir / "psql"), "-X", "-q", "-d", dsn, "-f", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
