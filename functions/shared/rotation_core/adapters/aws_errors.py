"""AWS answers in the error taxonomy: throttling and service faults are transient, any other
refusal permanent, carrying the AWS error code (never the request)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rotation_core.exceptions import (
    AwsRequestError,
    AwsThrottlingError,
    RotationError,
)

_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
        "ServiceFailure",
        "DependencyTimeoutException",
    }
)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (or of an AwsRequestError), else None."""
    if isinstance(exc, AwsRequestError):
        return exc.code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Throttling and service faults become :class:`AwsThrottlingError` (transient); any other
    refusal becomes :class:`AwsRequestError` (permanent) carrying the AWS error code."""
    try:
        yield
    except RotationError:
        raise
    except Exception as exc:
        code = error_code(exc)
        if code in _THROTTLING_CODES:
            raise AwsThrottlingError(f"{action}: AWS returned {code}") from None
        if type(exc).__name__ in (
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
        ):
            raise AwsThrottlingError(f"{action}: {type(exc).__name__}") from None
        if code is not None:
            raise AwsRequestError(action, code) from None
        raise
