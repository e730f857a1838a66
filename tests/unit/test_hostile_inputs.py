"""Domain rules that keep hostile secrets and callers from gaining anything (fakes, no sockets).

The attack tests in tests/security/ go through the public surfaces against real servers; these
pin each rule at the unit level so a regression names the rule that broke.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotation_core.adapters.credentials.iam_keys import IamAccessKeys
from rotation_core.exceptions import (
    InvalidConfigurationError,
    InvalidEventError,
    InvalidSecretError,
    RotationStateError,
)
from rotation_core.models import (
    DatabaseCredentials,
    PasswordPolicy,
    StepInput,
    open_sealed_credential,
    parse_secret_string,
)
from rotation_core.router import belongs_to_rotation, execution_name
from rotation_core.strategies import alternating_users, multi_credential
from rotation_core.strategies.common import WorkerContext
from rotation_core.tls import TlsSettings
from tests.fakes.engine import FakeDatabase, FakeEngine
from tests.fakes.secrets import FakeSecrets

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
MASTER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-XyZ123"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
BASE = {"engine": "postgres", "host": "db", "port": 5432, "dbname": "app"}
MASTER = {**BASE, "username": "admin", "password": "master-pw", "dbname": "postgres"}


def _step(name: str, strategy: str = "alternating-users", **extra: Any) -> StepInput:
    return StepInput(
        step=name,
        secret_arn=ARN,
        token=TOKEN,
        strategy=strategy,
        engine="postgres",
        policy=PasswordPolicy(length=24),
        **extra,
    )


class RecordingSealer:
    def __init__(self) -> None:
        self.sealed: list[dict[str, Any]] = []

    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, str]:
        self.sealed.append(payload)
        return {"Ciphertext": "x"}


# --- what leaves a worker -----------------------------------------------------------------------


def test_a_worker_seals_only_the_credential_however_large_the_secret() -> None:
    sealer = RecordingSealer()
    ctx = WorkerContext(secrets=FakeSecrets({}), sealer=sealer)  # type: ignore[arg-type]
    pending = {**BASE, "username": "app", "password": "new", "notes": "n" * 50_000}
    ctx.seal(pending, _step("createSecret"))
    document = sealer.sealed[0]
    assert open_sealed_credential(document) == {"username": "app", "password": "new"}
    assert len(json.dumps(document)) < 200


# --- secrets the parser and drivers must refuse by field -----------------------------------------


def test_a_deeply_nested_secret_is_refused_naming_the_field_not_crashing() -> None:
    text = '{"engine":"postgres","extra":' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(InvalidSecretError, match="'extra' is nested more than"):
        parse_secret_string(text, what="AWSCURRENT secret")


def test_a_nested_key_that_is_not_a_field_name_is_not_echoed() -> None:
    text = '{"p4$$ w0rd!":' + "{" * 100 + "}" * 100 + "}"
    with pytest.raises(InvalidSecretError) as raised:
        parse_secret_string(text, what="secret")
    assert "p4$$" not in str(raised.value)


@pytest.mark.parametrize("password", ["pässwort-ünïcode", "пароль-длинный", "tab\there"])
def test_a_mysql_password_its_driver_cannot_carry_is_refused_without_echoing_it(
    password: str,
) -> None:
    secret = {**BASE, "engine": "mariadb", "username": "app", "password": password}
    with pytest.raises(InvalidSecretError, match="'password'") as raised:
        DatabaseCredentials.from_secret(secret)
    assert password not in str(raised.value)


def test_a_postgres_password_may_be_any_unicode() -> None:
    secret = {**BASE, "username": "app", "password": "пароль-длинный-ü"}
    assert DatabaseCredentials.from_secret(secret).password == "пароль-длинный-ü"


# --- TLS choice ----------------------------------------------------------------------------------


def test_plaintext_is_refused_unless_the_deployment_allows_it() -> None:
    with pytest.raises(InvalidConfigurationError, match="'ssl'"):
        TlsSettings(allow_plaintext=False).choose(False, None)
    assert TlsSettings(allow_plaintext=True).choose(False, None).verify is False


def test_tls_is_verified_when_ssl_is_absent_or_true() -> None:
    assert TlsSettings().choose(None, None).verify
    assert TlsSettings().choose(True, None).verify


def test_a_named_bundle_must_exist_and_be_a_plain_name(tmp_path: Any) -> None:
    (tmp_path / "corp.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    settings = TlsSettings(bundle_dir=tmp_path)
    assert settings.choose(None, "corp").ca_file == str(tmp_path / "corp.pem")
    with pytest.raises(InvalidConfigurationError, match="'ca_bundle'"):
        settings.choose(None, "missing")
    with pytest.raises(InvalidSecretError, match="'ca_bundle'"):
        settings.choose(None, "../../etc/passwd")


# --- execution names -----------------------------------------------------------------------------


def test_a_token_equal_to_another_tokens_digest_gets_another_name() -> None:
    odd = "tok/with:odd*chars+=" * 3
    first = execution_name("createSecret", odd, ARN, 1)
    digest_like = re.split(r"-", first)[-1]
    padded = (digest_like * 3)[:40]
    names = {execution_name("createSecret", t, ARN, 1) for t in (odd, digest_like, padded)}
    assert len(names) == 3


def test_names_differ_for_tokens_that_share_their_first_36_characters() -> None:
    a, b = "a" * 36 + "-one", "a" * 36 + "-two"
    assert execution_name("setSecret", a, ARN, 1) != execution_name("setSecret", b, ARN, 1)


def test_an_execution_belongs_only_to_its_own_rotation() -> None:
    name = execution_name("testSecret", TOKEN, ARN, 3)
    assert belongs_to_rotation(name, ARN, TOKEN)
    assert not belongs_to_rotation(name, ARN, TOKEN.replace("5", "6"))
    assert not belongs_to_rotation(name, ARN + "x", TOKEN)


# --- masters serve only their own group ----------------------------------------------------------


def _alternating_world(
    *,
    user_group: str | None = "payments",
    master_group: str | None = "payments",
    database: FakeDatabase | None = None,
    previous: dict[str, Any] | None = None,
) -> tuple[WorkerContext, FakeDatabase]:
    versions: dict[str, tuple[list[str], dict[str, Any] | None]] = {
        "v-current": (
            ["AWSCURRENT"],
            {**BASE, "username": "app", "password": "app-pw", "masterarn": MASTER_ARN},
        )
    }
    if previous is not None:
        versions["v-previous"] = (["AWSPREVIOUS"], {**BASE, "masterarn": MASTER_ARN, **previous})
    db = database or FakeDatabase(passwords={"app": "app-pw", "admin": "master-pw"})
    master_tags = {"SecretRotationMaster": "stack"}
    if master_group is not None:
        master_tags["SecretRotationGroup"] = master_group
    secrets = FakeSecrets(
        versions,
        others={MASTER_ARN: (master_tags, MASTER)},
        tags={"SecretRotationGroup": user_group} if user_group else {},
    )
    ctx = WorkerContext(
        secrets=secrets,
        sealer=RecordingSealer(),  # type: ignore[arg-type]
        engines=lambda _e: FakeEngine(db),
    )
    return ctx, db


def test_a_master_of_another_group_is_refused_before_it_logs_in() -> None:
    ctx, db = _alternating_world(master_group="analytics")
    with pytest.raises(InvalidSecretError, match=r"'masterarn'.*another rotation group"):
        alternating_users.create_secret(ctx, _step("createSecret"))
    assert db.logins == 0


def test_a_secret_without_a_group_tag_may_use_no_master() -> None:
    ctx, db = _alternating_world(user_group=None)
    with pytest.raises(InvalidSecretError, match="SecretRotationGroup"):
        alternating_users.create_secret(ctx, _step("createSecret"))
    assert db.logins == 0


def test_a_master_without_a_group_tag_serves_nobody() -> None:
    ctx, _db = _alternating_world(master_group=None)
    with pytest.raises(InvalidSecretError, match="another rotation group"):
        alternating_users.create_secret(ctx, _step("createSecret"))


# --- an existing clone must be provably this secret's ------------------------------------------


def test_an_unrelated_existing_clone_is_not_taken_over() -> None:
    db = FakeDatabase(passwords={"app": "app-pw", "admin": "master-pw", "app_clone": "theirs"})
    ctx, _ = _alternating_world(database=db)
    with pytest.raises(RotationStateError, match="refusing to take it over"):
        alternating_users.create_secret(ctx, _step("createSecret"))
    assert db.passwords["app_clone"] == "theirs" and db.password_changes == 0


def test_a_clone_an_earlier_version_logs_in_as_is_this_secrets() -> None:
    db = FakeDatabase(passwords={"app": "app-pw", "admin": "master-pw", "app_clone": "old-pw"})
    ctx, _ = _alternating_world(
        database=db, previous={"username": "app_clone", "password": "old-pw"}
    )
    assert alternating_users.create_secret(ctx, _step("createSecret")).sealed is not None


def test_a_clone_that_is_the_originals_twin_may_be_adopted() -> None:
    db = FakeDatabase(
        passwords={"app": "app-pw", "admin": "master-pw", "app_clone": "lost"},
        twins={"app_clone"},
    )
    ctx, _ = _alternating_world(database=db)
    assert alternating_users.create_secret(ctx, _step("createSecret")).sealed is not None


# --- retirement trusts the secret, not its input -------------------------------------------------


def _iam_world(last_rotated: datetime | None) -> WorkerContext:
    value = {"engine": "iam", "username": "svc", "access_key_id": "AKIA" + "A" * 16}
    versions: dict[str, tuple[list[str], dict[str, Any] | None]] = {
        "v-old": (["AWSPREVIOUS"], {**value, "secret_access_key": "old"}),
        "v-new": (
            ["AWSCURRENT"],
            {**value, "access_key_id": "AKIA" + "B" * 16, "secret_access_key": "new"},
        ),
    }
    return WorkerContext(
        secrets=FakeSecrets(versions, last_rotated=last_rotated),
        # the gates below refuse before any IAM or STS call: no clients needed
        credentials=lambda _engine: IamAccessKeys(None, None),
        retire_after_seconds=3600,
    )


def _retire_step(version: str, action: str = "deactivate") -> StepInput:
    return _step("finishSecret", "multi-credential", retiring_version=version, action=action)


def test_retirement_refuses_the_current_version() -> None:
    ctx = _iam_world(datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(RotationStateError, match="AWSCURRENT or AWSPENDING"):
        multi_credential.retire(ctx, _retire_step("v-new"))


def test_retirement_refuses_before_the_grace_period_has_passed() -> None:
    ctx = _iam_world(datetime.now(UTC) - timedelta(minutes=5))
    with pytest.raises(RotationStateError, match="grace period has not passed"):
        multi_credential.retire(ctx, _retire_step("v-old"))


def test_retirement_of_a_secret_never_rotated_is_refused() -> None:
    ctx = _iam_world(None)
    with pytest.raises(RotationStateError, match="no completed rotation"):
        multi_credential.retire(ctx, _retire_step("v-old"))


# --- versioned execution input -------------------------------------------------------------------


def _worker_event(**extra: Any) -> dict[str, Any]:
    return {
        "Step": "setSecret",
        "SecretArn": ARN,
        "Token": TOKEN,
        "Strategy": "single-user",
        "Engine": "postgres",
        **extra,
    }


def test_a_worker_reads_the_input_of_the_previous_release() -> None:
    assert StepInput.parse(_worker_event()).token == TOKEN
    assert StepInput.parse(_worker_event(InputVersion=2, RouterDeadline="2026-11-24T12:00:00Z"))


def test_a_worker_refuses_an_input_from_a_newer_release_by_name() -> None:
    with pytest.raises(InvalidEventError, match="'InputVersion'"):
        StepInput.parse(_worker_event(InputVersion=3))
