"""Attack class 7: execution names that two rotations share, or that someone else took first.

The router names one execution per (secret, step, token, attempt) and trusts whatever
execution holds that name: it reuses a succeeded createSecret's output, awaits a running one,
and ignores an existing retirement. The name must identify one rotation only (the digest used
for unusual tokens is itself a valid token; the secret ARN is cut to 32 bits), and an
execution the router did not start with this exact input must never be taken as its own.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import pytest

from rotator.checks import eventually
from rotator.dbservers import DatabaseServer
from tests.security.conftest import (
    REFUSAL_ERRORS,
    STEPS,
    access_keys,
    app_secret,
    assert_refused,
    executions_named,
    iam_secret,
    router,
    value_of,
    versions_snapshot,
)


def test_a_token_and_the_digest_that_names_its_executions_do_not_share_executions(
    runtime: Any,
) -> None:
    """Attacker: may call RotateSecret on one secret with a ClientRequestToken of its choice.
    It rotates with an unusual 64-character token, then with the digest the router used in
    place of that token in execution names (the first 32 hex characters of its SHA-256,
    visible in ListExecutions), which is itself a valid token.

    Today: the second rotation's createSecret finds the first one's succeeded execution under
    the same name, reuses its sealed output, and fails with SealingError on every attempt: the
    secret is wedged until someone clears AWSPENDING by hand.

    Must hold: both rotations succeed, each with its own new access key.
    """
    arn, _old = iam_secret(runtime)
    unusual = "token." + "x" * 58
    # what the router put in the execution names for an unusual token: 32 hex characters,
    # itself a valid token (shown by ListExecutions; the scheme is in the source)
    digest = hashlib.sha256(unusual.encode()).hexdigest()[:32]
    first = runtime.rotate(arn, ClientRequestToken=unusual)
    assert first.succeeded, first.error
    first_key = value_of(runtime, arn)["access_key_id"]

    second = runtime.rotate(arn, ClientRequestToken=digest)

    assert second.succeeded, second.error
    assert value_of(runtime, arn)["access_key_id"] != first_key


@pytest.mark.integration
def test_a_squatted_create_secret_execution_cannot_weaken_the_new_password(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Attacker: states:StartExecution on the rotation state machine and DescribeSecret on a
    victim secret (it sees the AWSPENDING version id while a rotation is pending, e.g. between
    Secrets Manager's retries). It starts an execution under the name the router will use for
    createSecret, with the victim's ARN and token but a password policy of 8 characters from
    ``aA0!`` (65,536 candidates).

    Today: the router takes the succeeded execution as its own, unseals its output (the
    encryption context matches) and the rotation sets and stores the weak password.

    Must hold: an execution whose input is not what the router would start is never reused:
    either the rotation completes with a password of the deployment's policy (32 characters),
    or createSecret fails with RotationStateError (or InvalidSecretError) and writes nothing.
    """
    arn, _user, _password = app_secret(runtime, postgres_server)
    assert runtime.rotate(arn).succeeded  # the ARN digest is now visible in execution names
    arn_part = executions_named(runtime, "createSecret-")[0]["name"].rsplit("-", 1)[1]
    token = runtime.stage_rotation(arn)
    weak_policy = {
        "PasswordLength": 8,
        "ExcludeCharacters": "".join(c for c in string.printable if c not in "aA0!"),
    }
    sfn = runtime.client("stepfunctions")
    squat = sfn.start_execution(
        stateMachineArn=runtime.state_machine_arn,
        name=f"createSecret-{token}-{arn_part}",
        input=json.dumps(
            {
                "Step": "createSecret",
                "SecretArn": arn,
                "SecretName": "victim",
                "Token": token,
                "Strategy": "single-user",
                "Engine": "postgres",
                "PasswordPolicy": weak_policy,
                "WriteProbe": False,
            }
        ),
    )["executionArn"]
    assert eventually(
        lambda: sfn.describe_execution(executionArn=squat)["status"] != "RUNNING", timeout=20
    )
    before = versions_snapshot(runtime, arn)

    results = [router(runtime, "createSecret", arn, token)]
    if not results[0].failed:
        results += [router(runtime, step, arn, token) for step in STEPS[1:]]

    _labels, stored = versions_snapshot(runtime, arn)[token]
    if stored is not None:
        password = json.loads(stored)["password"]
        assert len(password) == 32, "the squatted execution's weak password was stored"
    if results[0].failed:
        assert_refused(results[0], "createSecret", REFUSAL_ERRORS)
        assert versions_snapshot(runtime, arn) == before
    else:
        assert all(not r.failed for r in results), [r.error for r in results]


def test_a_squatted_retirement_does_not_keep_the_superseded_key_alive(runtime: Any) -> None:
    """Attacker: states:StartExecution on the retirement state machine and DescribeSecret on a
    victim IAM secret. Once the victim's rotation is pending it starts an execution under the
    name the router will give the retirement, retiring a version that does not exist.

    Today: the router's StartExecution answers ExecutionAlreadyExists, which it takes as "already
    scheduled": the superseded access key is never deactivated or deleted.

    Must hold: the superseded key is deactivated after the grace period (RetireAfterSeconds, 3 s
    locally), whatever execution holds the name.
    """
    arn, _old = iam_secret(runtime)
    assert runtime.rotate(arn).succeeded  # the ARN digest is now visible in execution names
    arn_part = executions_named(runtime, "createSecret-")[0]["name"].rsplit("-", 1)[1]
    superseded = value_of(runtime, arn)
    token = runtime.stage_rotation(arn)
    runtime.client("stepfunctions").start_execution(
        stateMachineArn=runtime.retirement_state_machine_arn,
        name=f"retire-{token}-{arn_part}",
        input=json.dumps(
            {
                "Step": "finishSecret",
                "SecretArn": arn,
                "SecretName": "victim",
                "DisplayName": "victim",
                "Token": token,
                "Strategy": "multi-credential",
                "Engine": "iam",
                "RetiringVersionId": "no-such-version",
            }
        ),
    )

    for step in STEPS:
        result = router(runtime, step, arn, token)
        assert not result.failed, (step, result.error)

    assert eventually(
        lambda: (
            access_keys(runtime, superseded["username"]).get(superseded["access_key_id"])
            != "Active"
        ),
        timeout=12,
    ), "the superseded access key is still active"
