"""Attack class 10: a secret over 4 KiB can never rotate.

KMS Encrypt takes at most 4,096 bytes of plaintext. The workers seal the whole pending secret,
so a secret carrying a certificate bundle or long notes (Secrets Manager allows 64 KiB) fails
at createSecret on every attempt: its password is never rotated. Anyone able to edit the value
can pin a credential this way. Seal only the new credential, or use envelope encryption.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.security.conftest import app_secret, iam_secret, put_value, value_of

#: what a deployer might keep beside the password: a CA bundle, well over KMS's 4 KiB
BIG = "-----BEGIN CERTIFICATE-----\n" + secrets.token_urlsafe(7000) + "\n-----END CERTIFICATE-----"


@pytest.mark.integration
def test_a_database_secret_over_4_kib_rotates_and_keeps_its_other_keys(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Attacker: edit rights on the secret's value (or none: the secret merely carries a
    certificate bundle). The value is over 4 KiB.

    Today: createSecret fails with SealingError ("KMS seals at most 4096") on every attempt.

    Must hold: the rotation succeeds; the new password logs in; every other key is carried
    over unchanged.
    """
    arn, user, _password = app_secret(runtime, postgres_server, ca_pem=BIG)

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    current = value_of(runtime, arn)
    assert current["ca_pem"] == BIG
    assert postgres_server.can_login(user, current["password"])


def test_an_iam_secret_over_4_kib_rotates_and_keeps_its_other_keys(runtime: Any) -> None:
    """Attacker: edit rights on the IAM secret's value; it adds a long ``notes`` key so the
    access key is never rotated.

    Today: createSecret makes the new access key, then fails with SealingError: no version is
    stored and the key is left behind (deleted as stale by the next attempt).

    Must hold: the rotation succeeds with a new access key; ``notes`` is carried over.
    """
    arn, value = iam_secret(runtime)
    put_value(runtime, arn, {**value, "notes": BIG})

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    current = value_of(runtime, arn)
    assert current["access_key_id"] != value["access_key_id"]
    assert current["notes"] == BIG
