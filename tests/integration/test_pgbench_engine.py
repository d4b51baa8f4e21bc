"""The pgbench reference engine against the embedded server (PG 18's own pgbench)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.engine.pgbench import PgbenchRun, find_pgbench, knn_script, run_pgbench
from pgvbench.errors import RunFailed
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer

pytestmark = pytest.mark.integration

N_ITEMS, N_QUERIES, DIM = 5_000, 100, 16
PASSWORD = "s3cr3t-pw"  # trust auth ignores it; it must still never reach argv


@pytest.fixture(scope="module")
def knn(embedded_server: EmbeddedServer) -> Iterator[str]:
    """A loaded items table with an HNSW index and a queries table; yields the script."""
    schema = f"s_pgb_{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(11)
    with connect(embedded_server.dsn()) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, "items", DIM)
        load_vectors(
            embedded_server.dsn(),
            schema,
            "items",
            rng.standard_normal((N_ITEMS, DIM), dtype=np.float32),
        )
        conn.execute(f"CREATE TABLE {schema}.queries (id int PRIMARY KEY, embedding vector({DIM}))")
        queries = rng.standard_normal((N_QUERIES, DIM), dtype=np.float32)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {schema}.queries VALUES (%s, %s::vector)",
                [(i, str(q.tolist())) for i, q in enumerate(queries)],
            )
        conn.execute(f"CREATE INDEX ON {schema}.items USING hnsw (embedding vector_l2_ops)")
        conn.execute(f"ANALYZE {schema}.items")
        yield knn_script(
            items_table=f'"{schema}"."items"',
            queries_table=f'"{schema}"."queries"',
            n_queries=N_QUERIES,
            operator="<->",
            k=10,
        )
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pgbench(embedded_server: EmbeddedServer) -> Path:
    found = find_pgbench(embedded_server.bin_dir)
    assert found is not None and found.parent == embedded_server.bin_dir
    return found


def _run(
    server: EmbeddedServer, pgbench: Path, workdir: Path, script: str, **overrides: object
) -> PgbenchRun:
    # a URL with a password: it must travel in PGPASSWORD, not on the command line
    url = server.url().replace("postgres@", f"postgres:{PASSWORD}@")
    kwargs: dict[str, object] = {
        "pgbench": pgbench,
        "conninfo": url,
        "script": script,
        "clients": 2,
        "threads": None,
        "warmup_s": 0.5,
        "duration_s": 2.0,
        "rate": None,
        "session_settings": {"hnsw.ef_search": "40"},
        "statement_timeout_ms": 0,
        "workdir": workdir,
        "random_seed": 5,
    }
    kwargs.update(overrides)
    return run_pgbench(**kwargs)  # type: ignore[arg-type]


def test_closed_loop_window_histogram_and_series(
    embedded_server: EmbeddedServer, pgbench: Path, knn: str, tmp_path: Path
) -> None:
    run = _run(embedded_server, pgbench, tmp_path, knn)
    out = run.outcome
    assert out.operations > 0
    assert out.errors == 0 and out.aborted is None and not out.error_messages
    assert out.qps == pytest.approx(out.operations / 2.0)
    assert out.latency.count == out.operations
    # the window is cut to whole seconds of the series, so nothing falls outside
    assert len(out.timeseries) == 2
    assert sum(s.ops for s in out.timeseries) == out.operations
    assert out.latency.percentile_ms(50) <= out.latency.percentile_ms(99)
    assert out.service is None and out.queue_wait is None and out.schedule_lag_ms is None
    assert out.client_cpu_cores is not None and out.client_cpu_cores > 0
    # pgbench's own tps covers warm-up too; on a quiet machine the two agree within a
    # few percent, here (shared CI cores) only roughly
    assert run.tps_reported is not None
    assert out.qps == pytest.approx(run.tps_reported, rel=0.3)
    assert not any(PASSWORD in part for part in run.command)
    assert "-M" in run.command and "prepared" in run.command


def test_session_settings_reach_the_server(
    embedded_server: EmbeddedServer, pgbench: Path, tmp_path: Path
) -> None:
    # division by zero (a client abort) unless the settings arrived via PGOPTIONS, the
    # space and backslash of search_path escaped for libpq
    script = (
        "SELECT 1 / (current_setting('hnsw.ef_search') = '40'"
        " AND current_setting('search_path') = 'public, x\\y'"
        " AND current_setting('statement_timeout') = '1234ms')::int;\n"
    )
    run = _run(
        embedded_server,
        pgbench,
        tmp_path,
        script,
        warmup_s=0.0,
        duration_s=0.5,
        statement_timeout_ms=1234,
        session_settings={"hnsw.ef_search": "40", "search_path": "public, x\\y"},
        prepared=False,
    )
    assert run.outcome.aborted is None
    assert run.outcome.operations > 0


def test_open_loop_rate_queue_wait_and_service(
    embedded_server: EmbeddedServer, pgbench: Path, knn: str, tmp_path: Path
) -> None:
    # -R schedules a Poisson process (count in 3 s: 300 +- 17); the fixed seed makes the
    # schedule repeatable, and 20% leaves room for pgbench falling behind on a loaded
    # 2-core machine (unthrottled, this query runs at thousands per second)
    run = _run(embedded_server, pgbench, tmp_path, knn, rate=100.0, duration_s=3.0)
    out = run.outcome
    assert out.qps == pytest.approx(100.0, rel=0.2)
    assert out.errors == 0 and out.dropped == 0
    assert out.service is not None and out.queue_wait is not None
    assert out.service.count == out.queue_wait.count == out.latency.count == out.operations
    assert out.schedule_lag_ms is not None and out.schedule_lag_ms >= 0
    # latency counts from the scheduled start: never below the service time
    assert out.latency.percentile_ms(99) >= out.service.percentile_ms(99)
    assert sum(s.ops for s in out.timeseries) == out.operations
    assert "-R" in run.command


def test_statement_timeout_aborts_clients(
    embedded_server: EmbeddedServer, pgbench: Path, tmp_path: Path
) -> None:
    # pgbench 18 counts only serialization/deadlock errors as "failed transactions"
    # (and retries them with --max-tries); any other SQL error, a statement timeout
    # included, aborts the client: stderr says "client N script 0 aborted in command 0
    # query 0: ERROR: canceling statement due to statement timeout" and pgbench exits 2
    # once every client is gone. The engine reports that as errors, not RunFailed.
    run = _run(
        embedded_server,
        pgbench,
        tmp_path,
        "SELECT pg_sleep(0.05);\n",
        warmup_s=0.0,
        duration_s=1.0,
        statement_timeout_ms=1,
        session_settings={},
    )
    out = run.outcome
    assert out.operations == 0
    assert out.errors == 2  # one lost transaction per aborted client
    assert out.aborted is not None and "statement timeout" in out.aborted
    assert sum(out.error_messages.values()) == 2


def test_serialization_failures_are_counted_errors(
    embedded_server: EmbeddedServer, pgbench: Path, knn: str, tmp_path: Path
) -> None:
    # concurrent REPEATABLE READ updates of one row: pgbench 18 logs "failed" for the
    # losers and carries on (no retries: --max-tries defaults to 1)
    schema = knn.split('"')[1]
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"CREATE TABLE {schema}.ctr (id int PRIMARY KEY, v int)")
        conn.execute(f"INSERT INTO {schema}.ctr VALUES (1, 0)")
    script = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
        f"UPDATE {schema}.ctr SET v = v + 1 WHERE id = 1;\n"
        "SELECT pg_sleep(0.001);\n"
        "END;\n"
    )
    run = _run(embedded_server, pgbench, tmp_path, script, clients=4, warmup_s=0.0, duration_s=0.5)
    out = run.outcome
    assert out.aborted is None
    assert out.operations > 0 and out.errors > 0
    assert out.latency.count == out.operations  # failed ones have no latency to record
    assert sum(out.error_messages.values()) == out.errors
    assert "number of failed transactions" in run.stdout_tail


def test_missing_binary_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "bin" / "pgbench"
    with pytest.raises(RunFailed, match=str(missing)):
        run_pgbench(
            pgbench=missing,
            conninfo="host=127.0.0.1 dbname=x",
            script="SELECT 1;\n",
            clients=1,
            threads=None,
            warmup_s=0.0,
            duration_s=1.0,
            rate=None,
            session_settings={},
            statement_timeout_ms=0,
            workdir=tmp_path,
        )
    assert find_pgbench(tmp_path / "bin") is None


def test_connection_refused_raises_without_password(pgbench: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RunFailed, match="status 1") as info:
        run_pgbench(
            pgbench=pgbench,
            conninfo=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/pgvbench",
            script="SELECT 1;\n",
            clients=1,
            threads=None,
            warmup_s=0.0,
            duration_s=1.0,
            rate=None,
            session_settings={},
            statement_timeout_ms=0,
            workdir=tmp_path,
        )
    assert "refused" in str(info.value).lower()
    assert PASSWORD not in str(info.value)


def test_knn_script_shape_and_operator_check() -> None:
    script = knn_script(
        items_table='"s"."items"', queries_table='"s"."q"', n_queries=7, operator="<=>", k=3
    )
    assert script.splitlines() == [
        "\\set qid random(0, 6)",
        'SELECT id FROM "s"."items" ORDER BY embedding <=> '
        '(SELECT embedding FROM "s"."q" WHERE id = :qid) LIMIT 3;',
    ]
    with pytest.raises(ValueError, match="operator"):
        knn_script(items_table="a", queries_table="b", n_queries=1, operator="; DROP", k=1)
