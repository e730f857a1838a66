"""Every error a rotation can raise, split into transient and permanent.

The class name is the error name Step Functions sees (Lambda's ``errorType``), so the same
names appear in ``statemachine/rotation.asl.json``: transient classes in ``Retry``, every class
in the alerting ``Catch``. ``tests/unit/test_error_taxonomy.py`` keeps the two in step.

Messages never carry a secret value: they name fields, users, hosts and error codes only.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base of every error raised on purpose by the rotation code."""

    transient: bool = False


class TransientError(RotationError):
    """Worth retrying with backoff: the same call may succeed in a moment."""

    transient = True


class PermanentError(RotationError):
    """Retrying cannot help; a person has to look."""


# --- transient -------------------------------------------------------------------------------


class DatabaseUnavailableError(TransientError):
    """The database refused or dropped the connection, or did not answer in time."""


class TooManyConnectionsError(TransientError):
    """The database is at its connection limit."""


class AwsThrottlingError(TransientError):
    """An AWS API throttled the call or reported an internal error."""


class CredentialNotYetValidError(TransientError):
    """A new credential is refused; IAM and similar backends take seconds to propagate one."""


class RetiredCredentialStillWorksError(TransientError):
    """A credential retirement was asked for is still accepted (propagation, or it failed)."""


class RotationInProgressError(TransientError):
    """The step's execution is still running; the router timed out waiting for it."""


# --- permanent -------------------------------------------------------------------------------


class InvalidEventError(PermanentError):
    """The rotation event is malformed (names the field)."""


class InvalidSecretError(PermanentError):
    """A secret's value does not match its schema (names the field, never the value)."""


class InvalidConfigurationError(PermanentError):
    """A deployment setting or per-secret override (tag) is invalid."""


class RotationNotEnabledError(PermanentError):
    """Rotation is not enabled on the secret."""


class RotationStateError(PermanentError):
    """The secret's versions and staging labels do not allow this step."""


class UnsupportedEngineError(PermanentError):
    """The secret names an engine this service cannot rotate."""


class UnsupportedStrategyError(PermanentError):
    """The strategy cannot be used with this engine or secret."""


class AuthenticationFailedError(PermanentError):
    """The database rejected a user name and password."""


class NoWorkingCredentialError(PermanentError):
    """Neither the pending, current nor previous credentials log in."""


class PrivilegeError(PermanentError):
    """The credentials log in but lack the privilege the step needs."""


class ProbeFailedError(PermanentError):
    """The pending credentials log in but the read (or write) probe failed."""


class SealingError(PermanentError):
    """A credential could not be encrypted or decrypted for hand-over to the router."""


class AwsRequestError(PermanentError):
    """An AWS API refused a request; carries the AWS error code, never the request."""

    def __init__(self, action: str, code: str) -> None:
        super().__init__(f"{action}: AWS returned {code}")
        self.code = code


class ServerIdentityError(PermanentError):
    """The server did not prove who it is (TLS certificate chain or host name), offered no TLS
    where TLS is required, or asked for an authentication that would expose the password.
    Nothing secret was sent."""


class DatabaseError(PermanentError):
    """The database refused a statement for a reason retrying will not change."""


class PasswordPolicyError(PermanentError):
    """The database's password policy refused the generated password."""


class UnexpectedError(PermanentError):
    """Something the rotation code did not anticipate failed. The message names only the
    exception's class: a driver's own message may quote a statement or a value."""


class RouterStoppedWaitingError(PermanentError):
    """A single-user change succeeded after the router stopped waiting for its step; the state
    machine rolled it back (clients would otherwise stay locked out until Secrets Manager's
    retry). Raised by no worker: the rotation state machine's own error name."""


class StepFailedError(PermanentError):
    """A step's execution failed; carries the execution ARN and the error class."""


TRANSIENT_ERRORS: tuple[type[RotationError], ...] = (
    DatabaseUnavailableError,
    TooManyConnectionsError,
    AwsThrottlingError,
    CredentialNotYetValidError,
    RetiredCredentialStillWorksError,
    RotationInProgressError,
)

PERMANENT_ERRORS: tuple[type[RotationError], ...] = (
    InvalidEventError,
    InvalidSecretError,
    InvalidConfigurationError,
    RotationNotEnabledError,
    RotationStateError,
    UnsupportedEngineError,
    UnsupportedStrategyError,
    AuthenticationFailedError,
    NoWorkingCredentialError,
    PrivilegeError,
    ProbeFailedError,
    SealingError,
    AwsRequestError,
    DatabaseError,
    PasswordPolicyError,
    ServerIdentityError,
    UnexpectedError,
    RouterStoppedWaitingError,
    StepFailedError,
)
