"""What an operator does about a failed or stuck rotation, written once.

The state machine's alerts (``tools/asl.py`` puts these texts into ``States.Format`` calls of
``statemachine/rotation.asl.json``) and ``rotator status``/``rotator doctor`` give the same
advice, in the same words: each ``{}`` is the secret's ARN or the unfinished version's token.
These are the recoveries that work on AWS, where ``RotateSecret`` refuses while AWSPENDING sits
on another version than AWSCURRENT ("any later invocation of RotateSecret assumes that a
previous rotation request is still in progress and returns an error",
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html).
"""

from __future__ import annotations

#: version of every JSON alert's shape (the state machines' and the safety net's): raised when a
#: field is renamed or removed or changes meaning, never for an added field
ALERT_SCHEMA_VERSION = 1

#: how to rotate now with a new token (clear the unfinished version first); arn, token, arn
CLEAR_AND_ROTATE = (
    "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING "
    "--remove-from-version-id {}, then aws secretsmanager rotate-secret --secret-id {}."
)
#: the usual advice after a failure; arn, token, arn, arn
RECOVERY = (
    "Secrets Manager retries this rotation by itself with the same token, and the retry resumes "
    "where this one stopped (this token alerts no more). To rotate now with a new token "
    "instead: " + CLEAR_AND_ROTATE + " To stop the retries until the cause is fixed: aws "
    "secretsmanager cancel-rotate-secret --secret-id {} (this also turns automatic rotation "
    "off; the rotate-secret above turns it back on)."
)
#: the backend already expects AWSPENDING's credential; arn, token, arn, token, arn
URGENT = (
    "URGENT: the backend now expects the credential of AWSPENDING; clients on AWSCURRENT may be "
    "locked out. Either make it current, which finishes the rotation: aws secretsmanager "
    "update-secret-version-stage --secret-id {} --version-stage AWSCURRENT --move-to-version-id "
    "{} --remove-from-version-id <the AWSCURRENT version>; or reset the backend to the value of "
    "AWSCURRENT, then: " + CLEAR_AND_ROTATE
)


def recovery(secret_arn: str, token: str) -> str:
    """:data:`RECOVERY` for one secret and its unfinished version."""
    return RECOVERY.format(secret_arn, token, secret_arn, secret_arn)


def urgent(secret_arn: str, token: str) -> str:
    """:data:`URGENT` for one secret and its unfinished version."""
    return URGENT.format(secret_arn, token, secret_arn, token, secret_arn)
