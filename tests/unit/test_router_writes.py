"""The router's own checks on what it writes (fakes for Secrets Manager and KMS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotation_core.exceptions import InvalidSecretError
from rotation_core.router import Router, RouterConfig

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
CURRENT = {
    "engine": "postgres",
    "host": "db.internal",
    "port": 5432,
    "username": "app",
    "password": "old-pw-xyz",
}


class FakeWriter:
    def __init__(self) -> None:
        self.puts: list[tuple[str, str, str, str | None]] = []

    def put_pending(self, arn: str, token: str, value: str, rotation_token: str | None) -> None:
        self.puts.append((arn, token, value, rotation_token))


class OpenSealer:
    """Returns whatever the 'worker' sealed, checking the context like KMS would."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def unseal(self, sealed: Any, context: dict[str, str]) -> dict[str, Any]:
        assert context == {"SecretArn": ARN, "ClientRequestToken": TOKEN}
        return self.payload


class Metadata:
    arn, name = ARN, "app/db"


def _store(credential: dict[str, Any], *, version: int = 1) -> FakeWriter:
    writer = FakeWriter()
    sealed = {"SchemaVersion": version, "Credential": credential}
    router = Router(writer, None, OpenSealer(sealed), RouterConfig(state_machine_arn="arn"))  # type: ignore[arg-type]
    router._store_pending(Metadata(), TOKEN, CURRENT, {"Sealed": {"Ciphertext": "x"}}, "rt")  # type: ignore[arg-type]
    return writer


def test_the_pending_version_is_current_with_the_sealed_credential_and_the_rotation_token() -> None:
    writer = _store({"password": "new-pw-abc"})
    assert len(writer.puts) == 1
    arn, token, value, rotation_token = writer.puts[0]
    assert (arn, token, rotation_token) == (ARN, TOKEN, "rt")
    assert json.loads(value) == {**CURRENT, "password": "new-pw-abc"}


@pytest.mark.parametrize(
    "change", [{"host": "evil.example"}, {"port": 6543}, {"engine": "mysql"}, {"masterarn": ARN}]
)
def test_a_sealed_credential_cannot_aim_the_pending_version_elsewhere(
    change: dict[str, Any],
) -> None:
    with pytest.raises(InvalidSecretError, match="Credential"):
        _store({"password": "new-pw-abc", **change})


def test_a_sealed_document_of_another_schema_version_is_refused() -> None:
    with pytest.raises(InvalidSecretError, match="SchemaVersion"):
        _store({"password": "new-pw-abc"}, version=2)


def test_a_malformed_pending_secret_is_refused_by_field() -> None:
    with pytest.raises(InvalidSecretError, match="'username'"):
        _store({"username": "", "password": "new-pw-abc"})


def test_a_secret_far_over_4_kib_still_rotates_because_only_the_credential_is_sealed() -> None:
    writer = _store({"password": "new-pw-abc"})
    big = {**CURRENT, "notes": "x" * 20000}
    router = Router(
        writer,
        None,  # type: ignore[arg-type]
        OpenSealer({"SchemaVersion": 1, "Credential": {"password": "pw-2"}}),  # type: ignore[arg-type]
        RouterConfig(state_machine_arn="arn"),
    )
    router._store_pending(Metadata(), TOKEN, big, {"Sealed": {"Ciphertext": "x"}}, None)  # type: ignore[arg-type]
    assert json.loads(writer.puts[-1][2])["notes"] == "x" * 20000
