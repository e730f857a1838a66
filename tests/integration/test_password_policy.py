"""Databases with a password-validation plugin: rotations still work, and a policy the
generated password cannot meet fails permanently with a message that says what to change."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    GROUP_TAGS,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def strict_mariadb(mariadb_server: DatabaseServer) -> Iterator[DatabaseServer]:
    """MariaDB with simple_password_check: --strict-password-validation refuses hashes."""
    with contextlib.closing(mariadb_server.admin_connection()) as conn, conn.cursor() as cur:
        try:
            cur.execute("INSTALL SONAME 'simple_password_check'")
        except Exception as exc:  # the plugin ships with MariaDB; say so if it does not
            pytest.fail(f"simple_password_check could not be installed: {exc}")
    try:
        yield mariadb_server
    finally:
        with contextlib.closing(mariadb_server.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("UNINSTALL SONAME 'simple_password_check'")


def _policy_compliant() -> str:
    return "Aa1!" + new_password()


def test_single_user_rotates_under_a_validation_plugin(
    runtime: Any, strict_mariadb: DatabaseServer
) -> None:
    username, old = unique_name(), _policy_compliant()
    strict_mariadb.create_login(username, old)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(strict_mariadb, username, old)),
        Tags=GROUP_TAGS,
    )["ARN"]
    assert runtime.rotate(arn).succeeded
    assert strict_mariadb.can_login(username, secret_value(runtime, arn)["password"])


def test_alternating_users_rotate_under_a_validation_plugin(
    runtime: Any, strict_mariadb: DatabaseServer
) -> None:
    username, old = unique_name("alt"), _policy_compliant()
    strict_mariadb.create_login(username, old)
    master_user, master_password = unique_name("m"), _policy_compliant()
    strict_mariadb.create_login(master_user, master_password, superuser=True)
    master_arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(strict_mariadb, master_user, master_password)),
        Tags=[{"Key": "SecretRotationMaster", "Value": runtime.stack_name}, *GROUP_TAGS],
    )["ARN"]
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(
            database_secret(strict_mariadb, username, old, masterarn=master_arn)
        ),
        Tags=GROUP_TAGS,
    )["ARN"]
    for _ in range(2):
        assert runtime.rotate(arn).succeeded
        current = secret_value(runtime, arn)
        assert strict_mariadb.can_login(current["username"], current["password"])


def test_a_policy_the_generated_password_cannot_meet_fails_once_and_says_what_to_change(
    runtime: Any, strict_mariadb: DatabaseServer
) -> None:
    username, old = unique_name(), _policy_compliant()
    strict_mariadb.create_login(username, old)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(strict_mariadb, username, old)),
        Tags=[{"Key": "RotationPasswordLength", "Value": "16"}, *GROUP_TAGS],
    )["ARN"]
    with contextlib.closing(strict_mariadb.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL simple_password_check_minimal_length = 40")
    try:
        outcome = runtime.rotate(arn)
    finally:
        with contextlib.closing(strict_mariadb.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL simple_password_check_minimal_length = 8")
    assert outcome.failed_step == "setSecret"
    assert (
        "PasswordPolicyError" in outcome.error["errorMessage"]
        and "RotationPasswordLength" in outcome.error["errorMessage"]
    )
    assert strict_mariadb.can_login(username, old)
    alerts = runtime.alerts()
    assert len(alerts) == 1 and alerts[0].message["error"] == "PasswordPolicyError"
