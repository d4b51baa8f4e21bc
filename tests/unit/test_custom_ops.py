"""Custom [[operation]] tables: placeholder rewriting, write detection, spec errors."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest

from pgvbench.errors import SpecError
from pgvbench.workloads.custom import (
    GENERATORS,
    parse_operations,
    rewrite_placeholders,
    split_sql,
    write_keywords,
)

# --------------------------------------------------------------------------- rewriting


@pytest.mark.parametrize(
    ("sql", "expected", "order"),
    [
        ("SELECT :a, :b", "SELECT $1, $2", ("a", "b")),
        ("SELECT :a + :a * :b", "SELECT $1 + $1 * $2", ("a", "b")),  # one param per name
        ("SELECT x::text, :a::int", "SELECT x::text, $1::int", ("a",)),
        ("SELECT ':a', :b", "SELECT ':a', $1", ("b",)),
        ("SELECT 'it''s :a', :b", "SELECT 'it''s :a', $1", ("b",)),
        ("SELECT E'it\\'s :a', :b", "SELECT E'it\\'s :a', $1", ("b",)),
        ("SELECT $$ :a $$, :b", "SELECT $$ :a $$, $1", ("b",)),
        ("SELECT $fn$ :a $x$ $fn$, :b", "SELECT $fn$ :a $x$ $fn$, $1", ("b",)),
        ('SELECT "col:a" FROM t WHERE x = :b', 'SELECT "col:a" FROM t WHERE x = $1', ("b",)),
        ("SELECT 1 -- :a\n, :b", "SELECT 1 -- :a\n, $1", ("b",)),
        ("SELECT /* :a /* :c */ */ :b", "SELECT /* :a /* :c */ */ $1", ("b",)),
        ("SELECT arr[1:2], arr[lo:hi] FROM t", "SELECT arr[1:2], arr[lo:hi] FROM t", ()),
        ("SELECT f(x => 1, y := :v)", "SELECT f(x => 1, y := $1)", ("v",)),
        ("SELECT 'a'::text||:v::text", "SELECT 'a'::text||$1::text", ("v",)),
        ("SELECT :_under_score1", "SELECT $1", ("_under_score1",)),
        ("SELECT a$b FROM t WHERE c = :x", "SELECT a$b FROM t WHERE c = $1", ("x",)),
    ],
)
def test_placeholders_become_positional_outside_literals_and_casts(
    sql: str, expected: str, order: tuple[str, ...]
) -> None:
    assert rewrite_placeholders(sql) == (expected, order)


def test_split_sql_keeps_every_character() -> None:
    sql = "SELECT 'x' || \"Y\" /* c */ -- d\n, $t$ body $t$ FROM t"
    pieces = split_sql(sql)
    assert "".join(text for _, text in pieces) == sql
    assert [text for code, text in pieces if not code] == [
        "'x'",
        '"Y"',
        "/* c */",
        "-- d\n",
        "$t$ body $t$",
    ]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 'open", "unterminated string literal"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT $$ open", "unterminated dollar-quoted string"),
        ("SELECT /* open", "unterminated /\\* comment"),
        ("SELECT $1", "positional parameter \\$1"),
    ],
)
def test_bad_sql_text_is_refused(sql: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rewrite_placeholders(sql)


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT id FROM t", []),
        ("SELECT comment, updated_at, \"delete\" FROM t WHERE s = 'DROP'", []),
        ("insert into t values (1)", ["INSERT", "INTO"]),
        ("UPDATE t SET x = 1", ["UPDATE"]),
        ("WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d", ["DELETE"]),
        ("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", ["MERGE", "INTO", "DELETE"]),
        ("TRUNCATE t", ["TRUNCATE"]),
        ("SELECT * INTO newtable FROM t", ["INTO"]),
        ("SELECT * FROM t FOR UPDATE", ["UPDATE"]),
        ("DROP TABLE t", ["DROP"]),
        ("create index on t (x)", ["CREATE"]),
        ("ALTER TABLE t ADD c int", ["ALTER"]),
        ("-- a comment\nVACUUM t", ["VACUUM"]),
    ],
)
def test_obvious_writes_are_found(sql: str, found: list[str]) -> None:
    assert write_keywords(sql) == found


# --------------------------------------------------------------------------- parsing


def _op(**overrides: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "name": "recent",
        "sql": "SELECT id FROM app.memories WHERE agent_id = :agent LIMIT :n",
        "params": {
            "agent": {"generator": "agent_uuid", "zipf": 1.1},
            "n": {"generator": "int", "min": 1, "max": 100},
        },
    }
    op.update(overrides)
    return op


def _error(raw: Any) -> str:
    with pytest.raises(SpecError) as err:
        parse_operations(raw, "spec.toml")
    return str(err.value)


def test_the_documented_example_parses() -> None:
    text = """
[[operation]]
name = "recent_memories"
sql = "SELECT id FROM app.memories WHERE agent_id = :agent ORDER BY embedding <=> :qvec LIMIT 10"
weight = 5
writes = false
[operation.params]
agent = { generator = "agent_uuid", zipf = 1.1 }
qvec = { generator = "query_vector", dim = 128 }

[[operation]]
name = "everything"
sql = "SELECT :n, :kind, :doc, :tenant, :other, :near_v"
[operation.params]
n = { generator = "int", min = 1, max = 100 }
kind = { generator = "choice", values = ["episodic", "semantic"] }
doc = { generator = "json", value = { source = "web" } }
tenant = { generator = "tenant_uuid" }
other = { generator = "uuid_from", sql = "SELECT id FROM app.agents", zipf = 1.1 }
near_v = { generator = "query_vector", near = "tenant" }
"""
    first, second = parse_operations(tomllib.loads(text)["operation"], "spec.toml")
    assert first.name == "recent_memories" and first.weight == 5.0 and not first.writes
    assert first.statement == (
        "SELECT id FROM app.memories WHERE agent_id = $1 ORDER BY embedding <=> $2 LIMIT 10"
    )
    assert first.order == ("agent", "qvec")
    assert first.param("agent").zipf == 1.1 and first.param("qvec").dim == 128
    assert second.weight == 1.0
    used = {p.generator for op in (first, second) for p in op.params}
    assert used == set(GENERATORS)
    assert second.param("doc").documents == ('{"source":"web"}',)
    assert second.param("kind").values == ("episodic", "semantic")
    assert second.param("near_v").near == "tenant"
    assert second.param("n").minimum == 1 and second.param("n").maximum == 100


def test_unknown_generator_lists_the_allowed_ones() -> None:
    message = _error([_op(params={"agent": {"generator": "uuid"}, "n": {"generator": "int"}})])
    assert message.startswith("spec.toml: [operation.recent.params.agent] generator = 'uuid'")
    assert ", ".join(GENERATORS) in message


def test_placeholder_without_param_is_named() -> None:
    message = _error([_op(sql="SELECT :agent, :n, :missing")])
    assert "[operation.recent] sql uses :missing" in message
    assert "has no 'missing'" in message


def test_param_without_placeholder_is_named() -> None:
    message = _error([_op(sql="SELECT :agent")])
    assert "[operation.recent] params.n is not used: the SQL has no :n" in message


def test_placeholders_in_strings_do_not_count() -> None:
    message = _error([_op(sql="SELECT :agent, ':n'")])
    assert "params.n is not used" in message


def test_write_is_refused_unless_declared() -> None:
    message = _error([_op(sql="DELETE FROM app.memories WHERE agent_id = :agent AND x < :n")])
    assert "[operation.recent] sql writes (DELETE) but writes = false" in message
    (op,) = parse_operations(
        [_op(sql="DELETE FROM app.memories WHERE agent_id = :agent AND x < :n", writes=True)],
        "spec.toml",
    )
    assert op.writes


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"nmae": "x"}, "[operation #1] nmae is not a known key; did you mean 'name'?"),
        ({"name": "Bad-Name"}, "name = 'Bad-Name' must be lowercase"),
        ({"name": "memory_recall"}, "is the name of a built-in agent operation"),
        ({"sql": "  ;  "}, "sql is empty"),
        ({"sql": "SELECT :agent; SELECT :n"}, "more than one statement"),
        ({"sql": "SELECT ':agent"}, "unterminated string literal"),
        ({"sql": "SELECT $1, :agent, :n"}, "positional parameter $1"),
        ({"weight": 0}, "weight = 0 must be > 0"),
        ({"weight": "5"}, "weight = '5' must be a number"),
        ({"writes": "no"}, "writes = 'no' must be true or false"),
        ({"params": {"agent": "agent_uuid", "n": {}}}, "params.agent must be a table"),
        ({"params": []}, "params must be a table"),
    ],
)
def test_operation_table_errors(overrides: dict[str, Any], fragment: str) -> None:
    message = _error([_op(**overrides)])
    assert message.startswith("spec.toml: [operation")
    assert fragment in message


@pytest.mark.parametrize(
    ("param", "fragment"),
    [
        ({"generator": "int", "min": 5, "max": 1}, "max = 1 is below min = 5"),
        ({"generator": "int", "min": 1}, "max is required"),
        (
            {"generator": "int", "min": 1, "max": 2, "step": 1},
            "step is not a known key. Allowed keys: generator, min, max.",
        ),
        ({"generator": "choice"}, "values is required"),
        ({"generator": "choice", "values": ["a", 1]}, "must be all strings or all numbers"),
        ({"generator": "json"}, "value or values"),
        ({"generator": "json", "value": {"at": dt.date(2024, 1, 1)}}, "plain JSON data"),
        ({"generator": "query_vector"}, "dim is required"),
        ({"generator": "query_vector", "dim": 0}, "dim = 0 is below the minimum 1"),
        ({"generator": "query_vector", "near": "n"}, "near = 'n' must name an agent_uuid"),
        ({"generator": "uuid_from"}, "sql is required"),
        ({"generator": "uuid_from", "sql": "DELETE FROM t RETURNING id"}, "read-only query"),
        ({"generator": "agent_uuid", "zipf": -1}, "zipf = -1 is below the minimum 0"),
        ({}, "generator is required"),
    ],
)
def test_param_errors_name_the_param(param: dict[str, Any], fragment: str) -> None:
    message = _error(
        [
            _op(
                sql="SELECT :x, :n",
                params={"x": param, "n": {"generator": "int", "min": 0, "max": 1}},
            )
        ]
    )
    assert "[operation.recent.params.x]" in message
    assert fragment in message


def test_operations_must_be_a_list_of_tables_with_unique_names() -> None:
    assert "[[operation]] must be one or more tables" in _error({"name": "x"})
    assert "[[operation]] must be one or more tables" in _error([])
    assert "[operation #2] must be a table" in _error([_op(), 3])
    assert "names are used twice: recent" in _error([_op(), _op()])


def test_trailing_semicolon_is_dropped() -> None:
    (op,) = parse_operations([_op(sql="SELECT :agent, :n;")], "spec.toml")
    assert op.statement == "SELECT $1, $2"
