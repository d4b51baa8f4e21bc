"""The agent operations and custom SQL operations against a real server, effects checked."""

from __future__ import annotations

import json
import struct
import uuid
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import pq as libpq

from pgvbench.datasets.agents import (
    MEMORY_KINDS,
    AgentDataset,
    AgentDataSpec,
    generate_agent_dataset,
)
from pgvbench.db.agent_schema import (
    create_agent_schema,
    create_secondary_indexes,
    load_agent_dataset,
)
from pgvbench.engine.operations import (
    SESSION,
    TRANSACTION_POOLED,
    ConnStyle,
    MixOperation,
    Operation,
    ParamOperation,
)
from pgvbench.engine.providers import DirectProvider
from pgvbench.engine.threaded import LoadShape, run_load
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.workloads import agent_ops
from pgvbench.workloads.custom import compile_custom, parse_operations

pytestmark = pytest.mark.integration

PREFIX = "agt"
K = 5
SPEC = AgentDataSpec(
    tenants=4,
    agents=24,
    memories=3000,
    chunks=1200,
    tasks=300,
    messages_per_task=3,
    dim=16,
    doc_kb_min=0.3,
    doc_kb_max=1.2,
    seed=7,
)


@dataclass
class Platform:
    dsn: str
    schema: str
    dataset: AgentDataset
    vector_oid: int

    def table(self, kind: str) -> str:
        return f'"{self.schema}"."{PREFIX}_{kind}"'

    def builder_args(self) -> dict[str, Any]:
        return {"schema": self.schema, "prefix": PREFIX}


@pytest.fixture(scope="module")
def platform(embedded_server: EmbeddedServer) -> Iterator[Platform]:
    schema = f"s_agentops_{uuid.uuid4().hex[:8]}"
    dataset = generate_agent_dataset(SPEC)
    dsn = embedded_server.dsn()
    with connect(dsn) as conn:
        create_agent_schema(conn, schema=schema, prefix=PREFIX, dim=SPEC.dim)
        load_agent_dataset(conn, schema=schema, prefix=PREFIX, dataset=dataset)
        create_secondary_indexes(conn, schema=schema, prefix=PREFIX)
        row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert row is not None
        yield Platform(dsn, schema, dataset, int(row[0]))
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def conn(platform: Platform) -> Iterator[psycopg.Connection[Any]]:
    with connect(platform.dsn) as c:
        yield c


def _one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


_ready: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[int]] = weakref.WeakKeyDictionary()


def _run_once(
    conn: psycopg.Connection[Any], op: Operation, seq: int, style: ConnStyle = SESSION
) -> int:
    """Execute ``op`` for ``seq`` as the engine does (setting it up once per connection)."""
    ready = _ready.setdefault(conn, set())
    if id(op) not in ready:
        op.setup(conn.pgconn, style)
        ready.add(id(op))
    return op.execute(conn.pgconn, style, seq)


def _fetch(
    conn: psycopg.Connection[Any], op: ParamOperation, seq: int
) -> list[tuple[str | None, ...]]:
    """The rows ``op`` returns for ``seq``, as text."""
    result = conn.pgconn.exec_params(op.sql, list(op.params(seq)), op.types, op.formats, 0)
    assert result.status == libpq.ExecStatus.TUPLES_OK, result.error_message
    return [
        tuple(
            None if (v := result.get_value(r, c)) is None else bytes(v).decode()
            for c in range(result.nfields)
        )
        for r in range(result.ntuples)
    ]


def _uuid(raw: bytes | None) -> uuid.UUID:
    assert raw is not None
    return uuid.UUID(bytes=raw)


def _text(raw: bytes | None) -> str:
    assert raw is not None
    return raw.decode()


# --------------------------------------------------------------------------- agent ops


def test_memory_write_adds_a_memory_of_the_agent(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    op = agent_ops.memory_write_op(
        platform.dataset, **platform.builder_args(), vector_oid=platform.vector_oid,
        seed=101, access_zipf=1.1,
    )  # fmt: skip
    before = _one(conn, f"SELECT count(*) FROM {platform.table('memories')}")
    for seq in (0, 1, 777):
        _run_once(conn, op, seq)
    assert _one(conn, f"SELECT count(*) FROM {platform.table('memories')}") == before + 3
    params = op.params(777)
    memory_id, agent_id = _uuid(params[0]), _uuid(params[1])
    row = conn.execute(
        f"SELECT m.agent_id, m.tenant_id = a.tenant_id, m.kind, vector_dims(m.embedding), "
        f"m.expires_at IS NULL OR m.expires_at > now(), jsonb_typeof(m.metadata) "
        f"FROM {platform.table('memories')} m JOIN {platform.table('agents')} a "
        "ON a.id = m.agent_id WHERE m.id = %s",
        (memory_id,),
    ).fetchone()
    assert row is not None
    assert row == (agent_id, True, row[2], SPEC.dim, True, "object")
    assert row[2] in MEMORY_KINDS
    # Ids derive from (seed, seq): the same seq repeats its id, another seq does not.
    assert op.params(777)[0] == params[0] != op.params(778)[0]


def test_memory_write_expiry_mixes_never_and_future(platform: Platform) -> None:
    op = agent_ops.memory_write_op(
        platform.dataset, **platform.builder_args(), vector_oid=platform.vector_oid,
        seed=102, access_zipf=1.1,
    )  # fmt: skip
    expiries = [op.params(seq)[-1] for seq in range(2000)]
    never = sum(e is None for e in expiries)
    assert 0.3 < never / len(expiries) < 0.7
    assert all(e is None or e.endswith(b" seconds") for e in expiries)


@pytest.mark.parametrize(
    ("filter_kind", "recency_days"), [(False, None), (True, None), (True, 30.0)]
)
def test_memory_recall_returns_top_k_of_that_agent(
    platform: Platform,
    conn: psycopg.Connection[Any],
    filter_kind: bool,
    recency_days: float | None,
) -> None:
    op = agent_ops.memory_recall_op(
        platform.dataset, **platform.builder_args(), k=K, metric=SPEC.metric,
        vector_oid=platform.vector_oid, seed=3, access_zipf=1.1, filter_kind=filter_kind,
        recency_days=recency_days,
    )  # fmt: skip
    found = 0
    for seq in range(40):
        params = op.params(seq)
        ids = [r[0] for r in _fetch(conn, op, seq)]
        assert len(ids) <= K
        assert _run_once(conn, op, seq) == len(ids)
        found += len(ids)
        checks = ["agent_id <> %s"]
        args: list[Any] = [_uuid(params[0])]
        if filter_kind:
            checks.append("kind <> %s")
            args.append(_text(params[2]))
        if recency_days is not None:
            cutoff = platform.dataset.now_us - int(recency_days * 86_400e6)
            checks.append("created_at <= to_timestamp(%s / 1e6)")
            args.append(cutoff)
        wrong = _one(
            conn,
            f"SELECT count(*) FROM {platform.table('memories')} "
            f"WHERE id = ANY(%s::uuid[]) AND ({' OR '.join(checks)})",
            ids,
            *args,
        )
        assert wrong == 0
    assert found > 0


@pytest.mark.parametrize("rag_filter", ["jsonb", "tags", "alternate"])
def test_rag_search_stays_in_the_tenant_and_matches_the_filter(
    platform: Platform, conn: psycopg.Connection[Any], rag_filter: str
) -> None:
    op = agent_ops.rag_search_op(
        platform.dataset, **platform.builder_args(), k=K, metric=SPEC.metric,
        vector_oid=platform.vector_oid, seed=4, access_zipf=1.1, rag_filter=rag_filter,
    )  # fmt: skip
    parts: list[tuple[ParamOperation, int]] = []
    for seq in range(40):
        if isinstance(op, agent_ops.AlternatingOperation):
            parts.append((op.parts[seq & 1], seq // 2))
        else:
            assert isinstance(op, ParamOperation)
            parts.append((op, seq))
    found = 0
    for part, seq in parts:
        tenant, _, condition = part.params(seq)
        ids = [r[0] for r in _fetch(conn, part, seq)]
        assert len(ids) <= K
        found += len(ids)
        match = (
            "metadata @> %s::jsonb"
            if part.types[2] == agent_ops.JSONB_OID
            else "tags && %s::text[]"
        )
        wrong = _one(
            conn,
            f"SELECT count(*) FROM {platform.table('chunks')} WHERE id = ANY(%s::uuid[]) "
            f"AND NOT (tenant_id = %s AND {match})",
            ids,
            _uuid(tenant),
            _text(condition),
        )
        assert wrong == 0
    assert found > 0
    assert _run_once(conn, op, 0) <= K


def test_task_update_sets_status_and_appends_history(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    op = agent_ops.task_update_op(
        platform.dataset, **platform.builder_args(), seed=5, access_zipf=1.1
    )
    for seq in (0, 1, 2):
        task_id, status = _uuid(op.params(seq)[0]), _text(op.params(seq)[1])
        query = (
            f"SELECT jsonb_array_length(state->'history'), updated_at "
            f"FROM {platform.table('tasks')} WHERE id = %s"
        )
        row = conn.execute(query, (task_id,)).fetchone()
        assert row is not None
        history_before, updated_before = row
        assert _run_once(conn, op, seq) == 0
        after = conn.execute(
            f"SELECT status, jsonb_array_length(state->'history'), state->'history'->-1->>'state', "
            f"updated_at > %s FROM {platform.table('tasks')} WHERE id = %s",
            (updated_before, task_id),
        ).fetchone()
        assert after == (status, history_before + 1, status, True)


def test_message_append_adds_a_message_to_the_task(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    op = agent_ops.message_append_op(
        platform.dataset, **platform.builder_args(), seed=6, access_zipf=1.1
    )
    params = op.params(42)
    message_id, task_id = _uuid(params[0]), _uuid(params[1])
    messages = platform.table("messages")
    before = _one(conn, f"SELECT count(*) FROM {messages} WHERE task_id = %s", task_id)
    _run_once(conn, op, 42)
    assert _one(conn, f"SELECT count(*) FROM {messages} WHERE task_id = %s", task_id) == before + 1
    row = conn.execute(
        f"SELECT task_id, role, jsonb_typeof(parts) FROM {messages} WHERE id = %s", (message_id,)
    ).fetchone()
    assert row == (task_id, _text(params[2]), "array")


def test_memory_expire_deletes_expired_rows_only(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    memories = platform.table("memories")
    batch = 50
    op = agent_ops.memory_expire_op(**platform.builder_args(), batch=batch)
    # Rows that cannot expire during the test (written ones may live only seconds).
    lasting = (
        f"SELECT count(*) FROM {memories} "
        "WHERE expires_at IS NULL OR expires_at > now() + interval '1 hour'"
    )
    kept = _one(conn, lasting)
    expired = _one(conn, f"SELECT count(*) FROM {memories} WHERE expires_at < now()")
    total = _one(conn, f"SELECT count(*) FROM {memories}")
    assert expired > batch
    _run_once(conn, op, 0)
    assert _one(conn, f"SELECT count(*) FROM {memories}") == total - batch
    assert _one(conn, lasting) == kept
    for seq in range(1, 1000):
        if _one(conn, f"SELECT count(*) FROM {memories} WHERE expires_at < now()") == 0:
            break
        _run_once(conn, op, seq)
    assert _one(conn, f"SELECT count(*) FROM {memories} WHERE expires_at < now()") == 0
    assert _one(conn, lasting) == kept


def test_agent_lookup_finds_the_agent_by_id_and_by_model(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    op = agent_ops.agent_lookup_op(
        platform.dataset, **platform.builder_args(), seed=8, access_zipf=1.1
    )
    by_id, by_model = op.parts
    for seq in range(10):
        agent = _uuid(by_id.params(seq)[0])
        rows = _fetch(conn, by_id, seq)
        assert [r[0] for r in rows] == [str(agent)]
        model = _text(by_model.params(seq)[0])
        ids = [r[0] for r in _fetch(conn, by_model, seq)]
        assert ids
        models = conn.execute(
            f"SELECT DISTINCT config->>'model' FROM {platform.table('agents')} "
            "WHERE id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
        assert models == [(model,)]
    assert _run_once(conn, op, 0) == 1  # even seq: by id


def test_agent_access_is_zipf(platform: Platform) -> None:
    dataset = platform.dataset
    for exponent in (0.0, 1.2):
        op = agent_ops.memory_recall_op(
            dataset, **platform.builder_args(), k=K, metric=SPEC.metric,
            vector_oid=platform.vector_oid, seed=9, access_zipf=exponent,
        )  # fmt: skip
        counts = Counter(op.params(seq)[0] for seq in range(agent_ops.TABLE_SIZE))
        top, hits = counts.most_common(1)[0]
        expected = dataset.agent_access_weights(exponent).max()
        assert hits / agent_ops.TABLE_SIZE == pytest.approx(expected, abs=0.02)
        if exponent > 0:  # the busiest agent (most memories) is the most accessed
            busiest = int(np.argmax(dataset.memory_count_of_agent))
            assert top == dataset.id_of("agents", busiest).bytes


@pytest.mark.parametrize("style", [SESSION, TRANSACTION_POOLED], ids=["session", "pooled"])
def test_the_mix_runs_and_counts_each_operation(platform: Platform, style: ConnStyle) -> None:
    weights = {
        "memory_write": 2.0,
        "memory_recall": 4.0,
        "rag_search": 3.0,
        "task_update": 1.0,
        "message_append": 2.0,
        "memory_expire": 0.5,
        "agent_lookup": 1.0,
    }
    mix = agent_ops.build_agent_mix(
        platform.dataset, **platform.builder_args(), weights=weights, k=K, metric=SPEC.metric,
        vector_oid=platform.vector_oid, seed=1000 + style.prepared, access_zipf=1.1,
        settings={"statement_timeout": "10000"}, recall_filter_kind=True,
        recall_recency_days=30.0, rag_filter="alternate", expire_batch=20,
    )  # fmt: skip
    assert mix.names == tuple(weights)
    shape = LoadShape(clients=2, warmup_s=0.2, duration_s=1.0)
    outcome = run_load(mix, DirectProvider(platform.dsn, mix, style), shape, probe_dsn=platform.dsn)
    assert outcome.aborted is None
    assert outcome.errors == 0, outcome.error_messages
    assert outcome.operations > 50
    assert sum(s.operations for s in outcome.per_kind.values()) == outcome.operations
    assert set(outcome.per_kind) == set(weights)
    assert all(s.operations > 0 for s in outcome.per_kind.values())


def test_mix_rejects_unknown_operations(platform: Platform) -> None:
    with pytest.raises(ValueError, match="memory_wirte"):
        agent_ops.build_agent_mix(
            platform.dataset, **platform.builder_args(), weights={"memory_wirte": 1.0}, k=K,
            metric=Metric.COSINE, vector_oid=platform.vector_oid, seed=1, access_zipf=1.0,
            settings=None, recall_filter_kind=False, recall_recency_days=None, rag_filter="tags",
        )  # fmt: skip


# --------------------------------------------------------------------------- custom ops


def _custom(platform: Platform, **tables: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, **body} for name, body in tables.items()]


def test_custom_operations_follow_their_generators(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    memories, chunks, agents = (platform.table(t) for t in ("memories", "chunks", "agents"))
    raw = _custom(
        platform,
        recall={
            "sql": f"SELECT id FROM {memories} WHERE agent_id = :agent AND kind = :kind "
            f"AND metadata @> :doc ORDER BY embedding <=> :qvec LIMIT :n",
            "weight": 3,
            "params": {
                "agent": {"generator": "agent_uuid", "zipf": 1.1},
                "kind": {"generator": "choice", "values": ["episodic", "semantic"]},
                "doc": {"generator": "json", "value": {"lang": "en"}},
                "qvec": {"generator": "query_vector", "near": "agent"},
                "n": {"generator": "int", "min": 1, "max": 20},
            },
        },
        docs={
            "sql": f"SELECT id, 'it''s :not_a_param', chunk_index::text FROM {chunks} "
            f"WHERE tenant_id = :tenant AND document_id <> :doc_id "
            f"ORDER BY embedding <-> :rvec LIMIT 3",
            "params": {
                "tenant": {"generator": "tenant_uuid"},
                "doc_id": {
                    "generator": "uuid_from",
                    "sql": f"SELECT id FROM {agents}",
                    "zipf": 1.0,
                },
                "rvec": {"generator": "query_vector", "dim": SPEC.dim},
            },
        },
    )
    specs = parse_operations(raw, "test.toml")
    ops = [compile_custom(s, conn=conn, seed=11, dataset=platform.dataset) for s in specs]
    recall, docs = ops
    agent_ids = {platform.dataset.id_of("agents", a).bytes for a in range(platform.dataset.agents)}
    tenant_ids = {
        platform.dataset.id_of("tenants", t).bytes for t in range(platform.dataset.tenants)
    }
    ints, kinds = set(), set()
    for seq in range(3000):
        agent, kind, doc, qvec, n = recall.params(seq)
        assert agent in agent_ids
        kinds.add(_text(kind))
        assert json.loads(_text(doc)) == {"lang": "en"}
        assert qvec is not None and struct.unpack(">H", qvec[:2])[0] == SPEC.dim
        assert n is not None
        ints.add(struct.unpack(">q", n)[0])
        tenant, doc_id, rvec = docs.params(seq)
        assert tenant in tenant_ids and doc_id in agent_ids
        assert rvec is not None and len(rvec) == 4 + 4 * SPEC.dim
    assert kinds == {"episodic", "semantic"}
    assert ints == set(range(1, 21))
    assert recall.settings["default_transaction_read_only"] == "on"
    # Same seed, same parameters.
    again = compile_custom(specs[0], conn=conn, seed=11, dataset=platform.dataset)
    assert [again.params(s) for s in range(50)] == [recall.params(s) for s in range(50)]

    weights = [(op, spec.weight) for op, spec in zip(ops, specs, strict=True)]
    mix = MixOperation(weights, seed=2)
    outcome = run_load(
        mix,
        DirectProvider(platform.dsn, mix, SESSION),
        LoadShape(clients=2, warmup_s=0.1, duration_s=0.5),
        probe_dsn=platform.dsn,
    )
    assert outcome.errors == 0, outcome.error_messages
    assert all(s.operations > 0 for s in outcome.per_kind.values())


def test_custom_unknown_generator_is_a_clear_spec_error() -> None:
    raw = [{"name": "x", "sql": "SELECT :a", "params": {"a": {"generator": "uuid4"}}}]
    with pytest.raises(SpecError) as err:
        parse_operations(raw, "spec.toml")
    message = str(err.value)
    assert "spec.toml" in message and "params.a" in message and "'uuid4'" in message
    assert "agent_uuid, tenant_uuid, uuid_from, query_vector, int, choice, json" in message


def test_custom_missing_table_is_a_clear_spec_error(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    raw = [
        {
            "name": "lost",
            "sql": f"SELECT id FROM {platform.schema}.no_such_table WHERE id = :n",
            "params": {"n": {"generator": "int", "min": 1, "max": 5}},
        }
    ]
    (spec,) = parse_operations(raw, "spec.toml")
    with pytest.raises(SpecError) as err:
        compile_custom(spec, conn=conn, seed=1, dataset=None)
    message = str(err.value)
    assert message.startswith("spec.toml: operation 'lost': relation ")
    assert f"{platform.schema}.no_such_table" in message and "does not exist" in message


def test_custom_agent_generator_needs_the_agent_data(conn: psycopg.Connection[Any]) -> None:
    raw = [{"name": "a", "sql": "SELECT :a::text", "params": {"a": {"generator": "agent_uuid"}}}]
    (spec,) = parse_operations(raw, "spec.toml")
    with pytest.raises(SpecError, match="needs pgvbench's agent data"):
        compile_custom(spec, conn=conn, seed=1, dataset=None)


def test_custom_write_in_a_read_only_operation_is_refused(
    platform: Platform, conn: psycopg.Connection[Any]
) -> None:
    s = platform.schema
    raw = [
        {
            "name": "sneaky_insert",
            "sql": f"INSERT INTO {s}.victim VALUES (:n)",
            "params": {"n": {"generator": "int", "min": 1, "max": 2}},
        }
    ]
    with pytest.raises(SpecError, match=r"writes \(INSERT, INTO\) but writes = false"):
        parse_operations(raw, "spec.toml")

    # A write hidden in a function passes the parse but not the server.
    conn.execute(f"CREATE TABLE {s}.victim (x bigint)")
    conn.execute(f"CREATE TABLE {s}.trap (armed bool)")
    conn.execute(
        f"CREATE FUNCTION {s}.sneaky(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN "
        f"IF EXISTS (SELECT 1 FROM {s}.trap WHERE armed) THEN INSERT INTO {s}.victim VALUES (n); "
        "END IF; RETURN n; END $$"
    )
    params = {"n": {"generator": "int", "min": 1, "max": 9}}
    (spec,) = parse_operations(
        [{"name": "hidden", "sql": f"SELECT {s}.sneaky(:n)", "params": params}], "spec.toml"
    )
    conn.execute(f"INSERT INTO {s}.trap VALUES (true)")
    with pytest.raises(SpecError, match="writes = false"):  # the trial run catches it
        compile_custom(spec, conn=conn, seed=1, dataset=None)
    conn.execute(f"TRUNCATE {s}.trap")
    op = compile_custom(spec, conn=conn, seed=1, dataset=None)  # disarmed: the trial passes
    conn.execute(f"INSERT INTO {s}.trap VALUES (true)")
    for style in (SESSION, TRANSACTION_POOLED):
        outcome = run_load(
            op,
            DirectProvider(platform.dsn, op, style),
            LoadShape(clients=1, warmup_s=0.0, duration_s=0.3),
            probe_dsn=platform.dsn,
        )
        assert outcome.operations == 0 and outcome.errors > 0
        assert any("read-only transaction" in m for m in outcome.error_messages)
    assert _one(conn, f"SELECT count(*) FROM {s}.victim") == 0

    (writer,) = parse_operations(
        [{"name": "w", "sql": f"SELECT {s}.sneaky(:n)", "writes": True, "params": params}],
        "spec.toml",
    )
    op = compile_custom(writer, conn=conn, seed=1, dataset=None)
    assert "default_transaction_read_only" not in op.settings
    _run_once(conn, op, 0)
    assert _one(conn, f"SELECT count(*) FROM {s}.victim") == 1
