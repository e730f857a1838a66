"""Secret parsing, TLS choices, retry policy and the connectors' parameters (no sockets)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from rotation_client import (
    Credentials,
    InsecureConnectionError,
    InvalidSecretError,
    RetryPolicy,
    TlsSettings,
)
from rotation_client.tls import choose, client_context

PASSWORD = "s3cr3t-Value-that-must-not-leak"


def parse(**fields: Any) -> Credentials:
    base: dict[str, Any] = {
        "engine": "postgres",
        "host": "db.internal",
        "username": "app",
        "password": PASSWORD,
    }
    base.update(fields)
    return Credentials.from_secret_string(
        json.dumps({k: v for k, v in base.items() if v is not None})
    )


# -- secrets -----------------------------------------------------------------------------------


def test_an_aws_template_secret_parses_with_defaults() -> None:
    creds = parse(dbname="orders")
    assert (creds.engine, creds.host, creds.port, creds.dbname, creds.ssl) == (
        "postgres",
        "db.internal",
        5432,
        "orders",
        True,
    )
    assert parse(engine="mariadb").port == 3306 and parse(engine="redis").port == 6379
    assert parse(engine="redis", dbname="x").dbname is None


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("false", False), ("True", True)])
def test_ssl_takes_booleans_and_the_strings_aws_templates_take(value: Any, expected: bool) -> None:
    assert parse(ssl=value).ssl is expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"password": None}, "password"),
        ({"username": 7}, "username"),
        ({"port": "54x"}, "port"),
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"ssl": "yes"}, "ssl"),
        ({"engine": "oracle"}, "engine"),
        ({"ca_bundle": "../etc/passwd"}, "ca_bundle"),
        ({"host": ""}, "host"),
    ],
)
def test_a_bad_field_is_named_and_no_value_is_shown(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSecretError) as raised:
        parse(**fields)
    assert f"'{field}'" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_value_that_is_not_a_json_object_is_refused() -> None:
    for text in ("not json", "[1, 2]", None):
        with pytest.raises(InvalidSecretError):
            Credentials.from_secret_string(text)


def test_the_password_never_shows_in_repr() -> None:
    assert PASSWORD not in repr(parse())


def test_credentials_compare_by_what_a_login_uses() -> None:
    a = Credentials.from_mapping(
        {"engine": "postgres", "host": "h", "username": "u", "password": "p"}, version_id="1"
    )
    b = Credentials.from_mapping(
        {"engine": "postgres", "host": "h", "username": "u", "password": "p"}, version_id="2"
    )
    c = Credentials.from_mapping(
        {"engine": "postgres", "host": "h", "username": "u", "password": "q"}
    )
    assert a == b and a != c


def test_iam_secrets_carry_keys() -> None:
    creds = Credentials.from_mapping(
        {
            "engine": "iam",
            "username": "svc",
            "access_key_id": "AKIA0000000000000000",
            "secret_access_key": PASSWORD,
        }
    )
    assert creds.family == "iam" and creds.access_key_id == "AKIA0000000000000000"
    assert PASSWORD not in repr(creds)


# -- TLS ---------------------------------------------------------------------------------------


def test_plaintext_needs_the_application_to_allow_it() -> None:
    with pytest.raises(InsecureConnectionError, match="'ssl'"):
        choose(parse(ssl=False), TlsSettings())
    assert choose(parse(ssl=False), TlsSettings(allow_plaintext=True)).verify is False


def test_a_named_bundle_is_looked_up_in_ca_dir(tmp_path: Path) -> None:
    (tmp_path / "rds.pem").write_text("x")
    chosen = choose(parse(ca_bundle="rds"), TlsSettings(ca_dir=tmp_path))
    assert chosen.verify and chosen.ca_file == str(tmp_path / "rds.pem")
    with pytest.raises(InsecureConnectionError, match="'ca_bundle'"):
        choose(parse(ca_bundle="other"), TlsSettings(ca_dir=tmp_path))


def test_without_a_ca_file_the_system_store_verifies() -> None:
    chosen = choose(parse(), TlsSettings())
    assert chosen.verify and chosen.ca_file is None


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InsecureConnectionError, match="ca_file"):
        choose(parse(), TlsSettings(ca_file=tmp_path / "nope.pem"))


def test_contexts_verify_the_host_and_are_built_once() -> None:
    context = client_context(None)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert client_context(None) is context


# -- retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget": -1}, "budget"),
        ({"first_delay": 0}, "first_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"budget": float("nan")}, "budget"),
    ],
)
def test_a_bad_policy_names_its_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**kwargs)


def test_the_ceiling_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, multiplier=2)
    assert [policy.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.ceiling(10_000) == 1.0


# -- connector parameters ----------------------------------------------------------------------


def test_postgres_parameters_verify_the_server(tmp_path: Path) -> None:
    from rotation_client.postgres import connection_params

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    params = connection_params(parse(dbname="orders"), TlsSettings(ca_file=ca))
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == str(ca)
    assert params["dbname"] == "orders" and params["user"] == "app"
    assert connection_params(parse(), TlsSettings())["sslrootcert"] == "system"
    assert connection_params(parse(), TlsSettings(), {"database": "other"})["dbname"] == "other"


@pytest.mark.parametrize("key", ["password", "sslmode", "user"])
def test_postgres_refuses_credentials_and_tls_from_the_caller(key: str) -> None:
    from rotation_client.postgres import connection_params

    with pytest.raises(InsecureConnectionError, match=key):
        connection_params(parse(), TlsSettings(), {key: "x"})


def test_a_connector_refuses_a_secret_for_another_engine() -> None:
    from rotation_client.mysql import connection_params

    with pytest.raises(InvalidSecretError, match="'engine'"):
        connection_params(parse(), TlsSettings())


def test_mysql_parameters_carry_a_verifying_context() -> None:
    from rotation_client.mysql import connection_params

    params = connection_params(parse(engine="mariadb", dbname="app"), TlsSettings())
    assert isinstance(params["ssl"], ssl.SSLContext) and params["ssl"].check_hostname
    assert params["database"] == "app"
    plain = connection_params(parse(engine="mysql", ssl=False), TlsSettings(allow_plaintext=True))
    assert plain["ssl_disabled"] is True and "ssl" not in plain


# -- dependencies ------------------------------------------------------------------------------


def test_importing_the_package_loads_no_driver_and_nothing_of_the_rotator() -> None:
    import subprocess
    import sys

    forbidden = ["psycopg2", "psycopg", "pymysql", "redis", "sqlalchemy", "moto", "rotator"]
    script = (
        "import sys, rotation_client\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r})))"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src, "PATH": ""},
    )
    assert result.stdout.strip() == "[]"
