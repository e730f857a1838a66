"""Which driver errors count as authentication failures: built from the drivers' own classes."""

from __future__ import annotations

import pytest

from rotation_client import AuthFailureClassifier, is_authentication_failure

PG_AUTH = (
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication '
    'failed for user "app"\n'
)
PG_AUTH_DE = (
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  Passwort-Authentifizierung '
    "für Benutzer »app« fehlgeschlagen\n"
)


def test_mysql_access_denied_1045_is_an_authentication_failure() -> None:
    pymysql = pytest.importorskip("pymysql")
    error = pymysql.err.OperationalError(1045, "Access denied for user 'app'@'10.0.0.1'")
    assert is_authentication_failure(error)


@pytest.mark.parametrize(
    ("code", "what"),
    [
        (1044, "access denied to a database: a permission"),
        (1142, "command denied on a table: a permission"),
        (1130, "host not allowed: configuration"),
        (3118, "account locked"),
        (2003, "cannot connect: the network"),
        (2013, "lost connection: the network"),
    ],
)
def test_other_mysql_errors_are_not(code: int, what: str) -> None:
    pymysql = pytest.importorskip("pymysql")
    assert not is_authentication_failure(pymysql.err.OperationalError(code, what))


def test_mysql_syntax_errors_are_not() -> None:
    pymysql = pytest.importorskip("pymysql")
    assert not is_authentication_failure(pymysql.err.ProgrammingError(1064, "syntax"))


@pytest.mark.parametrize(
    "message",
    [
        "WRONGPASS invalid username-password pair or user is disabled.",
        "invalid username-password pair",
        "Invalid Username or Password",
    ],
)
def test_redis_authentication_errors_are(message: str) -> None:
    redis = pytest.importorskip("redis")
    assert is_authentication_failure(redis.exceptions.AuthenticationError(message))


def test_redis_noauth_reply_is() -> None:
    redis = pytest.importorskip("redis")
    assert is_authentication_failure(
        redis.exceptions.ResponseError("NOAUTH Authentication required.")
    )


def test_redis_server_without_passwords_is_configuration_not_rotation() -> None:
    redis = pytest.importorskip("redis")
    error = redis.exceptions.AuthenticationError(
        "AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?"
    )
    assert not is_authentication_failure(error)


@pytest.mark.parametrize(
    "error_name",
    ["ConnectionError", "TimeoutError", "NoPermissionError", "ResponseError", "ReadOnlyError"],
)
def test_other_redis_errors_are_not(error_name: str) -> None:
    redis = pytest.importorskip("redis")
    error = getattr(redis.exceptions, error_name)("NOPERM this user has no permissions")
    assert not is_authentication_failure(error)


def test_psycopg2_password_authentication_failed_is() -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    assert is_authentication_failure(psycopg2.OperationalError(PG_AUTH))


@pytest.mark.parametrize(
    "message",
    [
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
        "SSL error: certificate verify failed",
        'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app", database "x"',
        'FATAL:  database "orders" does not exist',
        "server closed the connection unexpectedly",
    ],
)
def test_other_psycopg2_connection_errors_are_not(message: str) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    assert not is_authentication_failure(psycopg2.OperationalError(message))


def test_psycopg3_password_authentication_failed_is() -> None:
    psycopg = pytest.importorskip("psycopg")
    assert is_authentication_failure(psycopg.OperationalError(PG_AUTH))


def test_a_postgres_sqlstate_decides_over_the_message() -> None:
    psycopg = pytest.importorskip("psycopg")
    assert is_authentication_failure(psycopg.errors.InvalidPassword("whatever the text"))
    # 42501 is a permission even if the text happens to contain the phrase
    assert not is_authentication_failure(psycopg.errors.InsufficientPrivilege(PG_AUTH))
    # 28000: no pg_hba.conf entry, configuration
    assert not is_authentication_failure(
        psycopg.errors.InvalidAuthorizationSpecification("no pg_hba.conf entry")
    )


def test_a_localized_postgres_message_needs_its_phrase() -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    error = psycopg2.OperationalError(PG_AUTH_DE)
    assert not is_authentication_failure(error)
    german = AuthFailureClassifier(postgres_messages=["Passwort-Authentifizierung für Benutzer"])
    assert german(error)
    assert german(psycopg2.OperationalError(PG_AUTH))  # English still recognised


def test_sqlalchemy_wrapped_driver_errors_are_classified_by_the_driver_error() -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pymysql = pytest.importorskip("pymysql")
    auth = pymysql.err.OperationalError(1045, "Access denied")
    other = pymysql.err.OperationalError(2003, "Can't connect")
    assert is_authentication_failure(sqlalchemy.exc.OperationalError("connect", {}, auth))
    assert not is_authentication_failure(sqlalchemy.exc.OperationalError("connect", {}, other))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidClientTokenId", True),
        ("UnrecognizedClientException", True),
        ("SignatureDoesNotMatch", True),
        ("AccessDenied", False),
        ("AccessDeniedException", False),
        ("ThrottlingException", False),
    ],
)
def test_aws_errors_by_code(code: str, expected: bool) -> None:
    exceptions = pytest.importorskip("botocore.exceptions")
    error = exceptions.ClientError({"Error": {"Code": code, "Message": "x"}}, "GetCallerIdentity")
    assert is_authentication_failure(error) is expected


def test_the_phrase_outside_a_driver_error_is_not_an_authentication_failure() -> None:
    assert not is_authentication_failure(ValueError(PG_AUTH))
    assert not is_authentication_failure(RuntimeError("WRONGPASS"))
    assert not is_authentication_failure(OSError(1045, "Access denied"))
