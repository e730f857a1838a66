"""Bad input is rejected with an error that names the field and never echoes a value."""

from __future__ import annotations

import pytest

from rotation_core.exceptions import InvalidEventError, InvalidSecretError
from rotation_core.models import DatabaseCredentials
from rotation_core.schema import validate
from tests.conftest import load_event

SECRET = {
    "engine": "postgres",
    "host": "db.internal",
    "port": 5432,
    "username": "app",
    "password": "correct-horse-battery-staple",
    "dbname": "orders",
}


def _event_error(event: object) -> str:
    with pytest.raises(InvalidEventError) as caught:
        validate(event, "event", what="rotation event", error=InvalidEventError)
    return str(caught.value)


def _secret_error(secret: dict[str, object]) -> str:
    with pytest.raises(InvalidSecretError) as caught:
        DatabaseCredentials.from_secret(secret)
    return str(caught.value)


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_every_sample_event_is_valid(step: str) -> None:
    assert validate(load_event(step), "event", what="e", error=InvalidEventError)["Step"] == step


@pytest.mark.parametrize("field", ["Step", "SecretId", "ClientRequestToken"])
def test_a_missing_event_field_is_named(field: str) -> None:
    event = load_event("setSecret")
    del event[field]
    assert f"'{field}' is required" in _event_error(event)


def test_an_unknown_step_is_named_with_the_allowed_steps() -> None:
    message = _event_error(load_event("setSecret", Step="dropSecret"))
    assert "'Step'" in message and "createSecret" in message and "dropSecret" not in message


def test_a_token_too_short_is_rejected() -> None:
    assert "'ClientRequestToken'" in _event_error(
        load_event("setSecret", ClientRequestToken="short")
    )


def test_an_event_that_is_not_an_object_is_rejected() -> None:
    assert "must be a JSON object" in _event_error(["setSecret"])


def test_a_rotation_token_of_the_wrong_type_is_named() -> None:
    assert "'RotationToken'" in _event_error(load_event("setSecret", RotationToken=42))


def test_a_valid_secret_parses_and_keeps_unknown_keys() -> None:
    creds = DatabaseCredentials.from_secret({**SECRET, "dbClusterIdentifier": "orders"})
    assert (creds.engine, creds.port, creds.username) == ("postgres", 5432, "app")
    assert creds.raw["dbClusterIdentifier"] == "orders"


def test_the_port_defaults_per_engine_and_accepts_a_numeric_string() -> None:
    no_port = {k: v for k, v in SECRET.items() if k != "port"}
    assert DatabaseCredentials.from_secret(no_port).port == 5432
    assert DatabaseCredentials.from_secret({**no_port, "engine": "mariadb"}).port == 3306
    assert DatabaseCredentials.from_secret({**SECRET, "port": "6432"}).port == 6432


@pytest.mark.parametrize("field", ["engine", "host", "username", "password"])
def test_a_missing_secret_field_is_named(field: str) -> None:
    secret = {k: v for k, v in SECRET.items() if k != field}
    assert f"'{field}' is required" in _secret_error(secret)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("engine", "oracle"),
        ("port", 70000),
        ("port", "54x"),
        ("host", "db host;rm"),
        ("username", ""),
        ("password", 12345),
        ("ssl", "maybe"),
        ("masterarn", "not-an-arn"),
    ],
)
def test_a_bad_secret_field_is_named_without_its_value(field: str, value: object) -> None:
    message = _secret_error({**SECRET, field: value})
    assert f"'{field}'" in message
    if isinstance(value, str) and value:
        assert value not in message


def test_a_bad_password_is_never_echoed() -> None:
    secret = {**SECRET, "password": "hunter2\u0000"}
    message = _secret_error(secret)
    assert "'password'" in message and "hunter2" not in message


def test_credentials_never_show_the_password_in_repr() -> None:
    assert SECRET["password"] not in repr(DatabaseCredentials.from_secret(SECRET))


def test_every_schema_is_versioned_and_secret_schemas_keep_unknown_keys() -> None:
    import json
    from importlib import resources

    for path in resources.files("rotation_core.schemas").iterdir():
        if not path.name.endswith(".schema.json"):
            continue
        schema = json.loads(path.read_text("utf-8"))
        assert schema["$id"].endswith(f"/v{schema['version']}"), path.name
        if path.name.endswith("-secret.schema.json"):
            # other keys of a secret are carried to the next version untouched
            assert schema.get("additionalProperties", True) is not False, path.name


def test_the_step_input_schema_version_is_the_routers_input_version() -> None:
    from rotation_core.models import STEP_INPUT_VERSION
    from rotation_core.schema import load_schema

    schema = load_schema("step-input")
    assert schema["version"] == STEP_INPUT_VERSION
    assert STEP_INPUT_VERSION in schema["properties"]["InputVersion"]["enum"]
