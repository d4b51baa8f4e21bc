"""DSNs are printed and stored only with the password redacted; bad DSNs fail cleanly."""

from __future__ import annotations

import pytest
from psycopg import conninfo

from pgvbench.errors import ConnectError
from pgvbench.server.connection import Target, connect, redact_dsn

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
        connect("postgresql://db.example.com/vectors?bogus=1")
    assert 'invalid URI query parameter: "bogus"' in str(info.value)
