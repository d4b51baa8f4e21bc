"""DSNs are printed and stored only with the password redacted; bad DSNs fail cleanly and
name what is wrong; the connect timeout bounds the whole DSN; sessions carry this
process's application_name."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from psycopg import conninfo
from psycopg import errors as pg_errors

from pgvbench.errors import ConnectError, PrivilegeError
from pgvbench.server.connection import (
    Target,
    _user_timeout,
    application_name,
    connect,
    is_own_session,
    libpq_options,
    parse_dsn,
    redact_dsn,
    session_tag,
    tag_dsn,
)
from pgvbench.server.preflight import refusal_error

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://bench:s3cret@db.example.com:5433/vectors",
            {
                "user": "bench",
                "password": "***",
                "host": "db.example.com",
                "port": "5433",
                "dbname": "vectors",
            },
        ),
        (
            "postgres://bench@db.example.com/vectors?password=s3cret&sslmode=require",
            {
                "user": "bench",
                "password": "***",
                "host": "db.example.com",
                "dbname": "vectors",
                "sslmode": "require",
            },
        ),
        (
            "postgresql://bench:s3%40cret@h1:5432,h2:5433/vectors",  # percent-encoded '@'
            {
                "user": "bench",
                "password": "***",
                "host": "h1,h2",
                "port": "5432,5433",
                "dbname": "vectors",
            },
        ),
        (
            "host=db.example.com port=5433 user=bench password=s3cret dbname=vectors",
            {
                "host": "db.example.com",
                "port": "5433",
                "user": "bench",
                "password": "***",
                "dbname": "vectors",
            },
        ),
        (
            "host=/tmp/sock user=bench password='my s3cret phrase' dbname=vectors",
            {"host": "/tmp/sock", "user": "bench", "password": "***", "dbname": "vectors"},
        ),
    ],
    ids=["url", "url-query", "url-encoded-multihost", "keyvalue", "keyvalue-quoted"],
)
def test_redact_dsn_hides_the_password(dsn: str, expected: dict[str, str]) -> None:
    redacted = redact_dsn(dsn)
    assert SECRET not in redacted
    assert "s3%40cret" not in redacted and "s3@cret" not in redacted
    # everything else survives, so the redacted form still says where the server is
    assert conninfo.conninfo_to_dict(redacted) == expected


def test_redact_dsn_without_password_keeps_everything() -> None:
    dsn = "host=db.example.com port=5432 user=bench dbname=vectors sslmode=disable"
    assert conninfo.conninfo_to_dict(redact_dsn(dsn)) == conninfo.conninfo_to_dict(dsn)
    assert "***" not in redact_dsn(dsn)


@pytest.mark.parametrize(
    "dsn",
    [
        "host=h password='s3cret",  # unterminated quote
        "host=h password=s3cret oops",
        "postgresql://u:s3cret@[::1:5432/db",  # unclosed IPv6 bracket
    ],
)
def test_redact_unparseable_dsn_reveals_nothing(dsn: str) -> None:
    assert redact_dsn(dsn) == "<unparseable DSN>"


def test_target_display_is_redacted() -> None:
    target = Target(dsn="postgresql://bench:s3cret@db/vectors", kind="external")
    assert SECRET not in target.display
    assert "db" in target.display
    assert target.can_restart is False
    assert Target(dsn="host=/tmp port=5432", kind="embedded").can_restart is True


def test_connect_failure_message_is_redacted() -> None:
    with pytest.raises(ConnectError) as info:
        connect("host=127.0.0.1 port=1 user=bench password=s3cret dbname=x")
    message = str(info.value)
    assert message.startswith("cannot connect to ")
    assert "port=1" in message and "password=***" in message
    assert SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:s3cret@[::1:5432/db",  # libpq quotes this whole URL in its error
        "host=h password=s3 cret",  # libpq would quote the second half of the password
        "host=h user=u:s3cret@x oops",
    ],
)
def test_malformed_dsn_with_a_secret_is_a_clean_connect_error(dsn: str) -> None:
    with pytest.raises(ConnectError) as info:
        connect(dsn)
    message = str(info.value)
    assert message.startswith("the DSN is not a valid connection string")
    assert "s3" not in message and "cret" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_malformed_dsn_without_a_secret_shows_the_parser_detail() -> None:
    with pytest.raises(ConnectError) as info:
        connect("host=h port='5432")  # unterminated quote
    assert "the DSN is not a valid connection string (unterminated quoted string" in str(info.value)


# --------------------------------------------------------------------------- unknown options


@pytest.mark.parametrize(
    ("dsn", "name"),
    [
        ("host=db.example.com usr=bench password=s3cret dbname=x", "usr"),
        ("postgresql://bench:s3cret@db.example.com/vectors?bogus=1", "bogus"),
        ("postgresql://bench@db.example.com/vectors?password=s3cret&sslmod=require", "sslmod"),
    ],
    ids=["keyvalue", "url-query", "url-query-after-password"],
)
def test_unknown_dsn_option_is_named_with_the_valid_ones(dsn: str, name: str) -> None:
    with pytest.raises(ConnectError) as info:
        connect(dsn)
    message = str(info.value)
    assert message.startswith(f"the DSN has an unknown option '{name}'")
    assert "valid options are libpq's: " in message
    for option in ("host", "port", "dbname", "user", "password", "sslmode", "connect_timeout"):
        assert f" {option}," in message or f" {option} " in message, option
    assert SECRET not in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_misspelt_dsn_option_gets_a_suggestion() -> None:
    with pytest.raises(ConnectError) as info:
        connect("host=h dbnmae=vectors password=s3cret")
    assert "unknown option 'dbnmae' (did you mean 'dbname'?)" in str(info.value)
    assert SECRET not in str(info.value)


def test_parse_dsn_names_the_option_before_any_connection() -> None:
    with pytest.raises(ConnectError, match="unknown option 'fo'"):
        parse_dsn("host=h fo=1")
    assert parse_dsn("host=h port=5", dbname="x") == {"host": "h", "port": "5", "dbname": "x"}


def test_connect_timeout_that_is_not_a_number() -> None:
    with pytest.raises(ConnectError) as info:
        connect("host=127.0.0.1 port=1 connect_timeout=soon")
    assert "connect_timeout 'soon' is not a number of seconds" in str(info.value)


def test_libpq_options_leave_out_debug_ones() -> None:
    options = libpq_options()
    assert {"host", "hostaddr", "port", "dbname", "user", "options"} <= set(options)
    assert "replication" not in options  # a debug option: not for users


# --------------------------------------------------------------------------- session names


def test_target_names_its_sessions_after_this_process() -> None:
    target = Target(dsn="postgresql://bench:s3cret@db/vectors", kind="external")
    params = conninfo.conninfo_to_dict(target.dsn)
    assert params["application_name"] == application_name() == session_tag()
    assert params["password"] == SECRET  # still usable to connect
    assert session_tag().startswith(f"pgvbench/{os.getpid()}.")
    assert is_own_session(params["application_name"])
    assert Target(dsn=target.dsn, kind="external").dsn == target.dsn  # tagged once only


def test_target_keeps_the_users_application_name() -> None:
    target = Target(dsn="host=db application_name=nightly-ci", kind="external")
    name = conninfo.conninfo_to_dict(target.dsn)["application_name"]
    assert name == f"{session_tag()}/nightly-ci"
    assert is_own_session(name)


def test_application_names_fit_the_server_limit() -> None:
    name = application_name("x" * 100)
    assert len(name.encode()) == 63 and name.startswith(session_tag() + "/x")
    assert tag_dsn("host='unterminated") == "host='unterminated"  # left for connect to report


@pytest.mark.parametrize(
    ("name", "own"),
    [
        (None, False),
        ("", False),
        ("pgvbench/other-run", False),
        ("pgvbench-wait-sampler", False),  # an older pgvbench's collector: not ours
        ("psql", False),
    ],
)
def test_other_names_are_not_this_process(name: str | None, own: bool) -> None:
    assert is_own_session(name) is own
    assert is_own_session(application_name("wait-sampler"))
    assert not is_own_session(session_tag() + "9")  # a longer pid/token is another process


# --------------------------------------------------------------------------- timeouts


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_silent_hosts_share_one_budget_for_the_whole_dsn(silent_port: int) -> None:
    """Four hosts that never answer: pgvbench's 5 s budget is for the DSN, not per host.

    Each attempt gets at least libpq's 2 s, so the third ends past the budget and the
    fourth is never started (per host, as libpq counts, it would be 4 x 5 s)."""
    hosts = ",".join(["127.0.0.1"] * 4)
    with pytest.raises(ConnectError) as info:
        connect(f"host={hosts} port={silent_port} user=bench password=s3cret dbname=x")
    message = str(info.value)
    assert "connection timeout expired" in message
    assert "3 of 4 addresses tried within pgvbench's 5 s budget for the whole DSN" in message
    assert "connect_timeout=<seconds>" in message  # how to allow longer
    assert SECRET not in message


def test_a_users_connect_timeout_counts_per_host_as_in_libpq(silent_port: int) -> None:
    """connect_timeout in the DSN is the user's: every host gets it, none is skipped."""
    hosts = ",".join(["127.0.0.1"] * 2)
    with pytest.raises(ConnectError) as info:
        connect(f"host={hosts} port={silent_port} connect_timeout=2 dbname=x")
    message = str(info.value)
    assert "connection timeout expired" in message
    assert "budget" not in message  # pgvbench's own budget did not apply


def test_pgconnect_timeout_in_the_environment_is_the_users_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not _user_timeout({})
    assert _user_timeout({"connect_timeout": "7"})
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "9")
    assert _user_timeout({})


# --------------------------------------------------------------------------- mid-run refusals


def test_privilege_refusal_mid_run_names_a_grant() -> None:
    exc = pg_errors.InsufficientPrivilege("permission denied for schema ext")
    error = refusal_error(RuntimeError("wrapped"), role="bench")
    assert error is None  # not a refusal
    try:
        raise RuntimeError("a step failed") from exc
    except RuntimeError as wrapped:
        error = refusal_error(wrapped, role="bench")
    assert isinstance(error, PrivilegeError)
    assert "permission denied for schema ext" in str(error)
    assert "GRANT USAGE, CREATE ON SCHEMA ext TO bench;" in str(error)
    owner = refusal_error(pg_errors.InsufficientPrivilege("must be owner of table s.t_items"))
    assert owner is not None and "ALTER TABLE s.t_items OWNER TO <role>;" in str(owner)


def test_read_only_refusal_mid_run_points_at_the_primary() -> None:
    exc = pg_errors.ReadOnlySqlTransaction("cannot execute CREATE TABLE in a read-only transaction")
    error = refusal_error(exc)
    assert isinstance(error, PrivilegeError)
    assert "read-only" in str(error) and "target_session_attrs=read-write" in str(error)
