"""IAM access keys: a user holds at most two, each a complete credential."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rotation_core.aws import aws_errors, error_code
from rotation_core.exceptions import (
    AwsRequestError,
    CredentialNotYetValidError,
    InvalidSecretError,
    PrivilegeError,
    RotationError,
    RotationStateError,
)
from rotation_core.observability import logger

#: what STS answers for a key it does not (yet, or any more) accept
_REFUSED = frozenset(
    {"InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure", "UnrecognizedClientException"}
)


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    status: str


class IamKeys:
    """Adapter over IAM (injected client) and STS (a factory taking a key pair)."""

    def __init__(self, iam: Any, sts_for: Callable[[str, str], Any]) -> None:
        self._iam = iam
        self._sts_for = sts_for

    def keys(self, username: str) -> list[AccessKey]:
        response = self._call("ListAccessKeys", self._iam.list_access_keys, UserName=username)
        return [AccessKey(k["AccessKeyId"], k["Status"]) for k in response["AccessKeyMetadata"]]

    def create(self, username: str) -> tuple[str, str]:
        key = self._call("CreateAccessKey", self._iam.create_access_key, UserName=username)[
            "AccessKey"
        ]
        logger.info("access key created", extra={"access_key_id": key["AccessKeyId"]})
        return key["AccessKeyId"], key["SecretAccessKey"]

    def set_status(self, username: str, key_id: str, status: str) -> None:
        self._call(
            "UpdateAccessKey",
            self._iam.update_access_key,
            UserName=username,
            AccessKeyId=key_id,
            Status=status,
        )
        logger.info("access key status changed", extra={"access_key_id": key_id, "status": status})

    def delete(self, username: str, key_id: str) -> bool:
        """Delete a key; False when it was already gone."""
        try:
            self._call(
                "DeleteAccessKey",
                self._iam.delete_access_key,
                UserName=username,
                AccessKeyId=key_id,
            )
        except InvalidSecretError:
            return False
        logger.info("access key deleted", extra={"access_key_id": key_id})
        return True

    def identity(self, key_id: str, secret: str) -> str:
        """The ARN STS sees for this key pair; CredentialNotYetValidError if refused."""
        try:
            with aws_errors("GetCallerIdentity"):
                return str(self._sts_for(key_id, secret).get_caller_identity()["Arn"])
        except Exception as exc:
            if isinstance(exc, RotationError) and not isinstance(exc, AwsRequestError):
                raise
            if error_code(exc) in _REFUSED:
                raise CredentialNotYetValidError(
                    f"STS refuses access key {key_id} ({error_code(exc)})"
                ) from None
            raise

    def _call(self, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            with aws_errors(action):
                return fn(**kwargs)
        except Exception as exc:
            if isinstance(exc, RotationError) and not isinstance(exc, AwsRequestError):
                raise
            code = error_code(exc)
            user = kwargs.get("UserName")
            if code == "NoSuchEntity":
                raise InvalidSecretError(
                    f"{action}: IAM user {user!r} or its key does not exist"
                ) from None
            if code == "LimitExceeded":
                raise RotationStateError(
                    f"{action}: IAM user {user!r} already has two access keys"
                ) from None
            if code in ("AccessDenied", "AccessDeniedException"):
                raise PrivilegeError(f"{action}: not allowed for IAM user {user!r}") from None
            raise
