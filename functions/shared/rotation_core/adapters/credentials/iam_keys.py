"""IAM access keys: a user holds at most two, each a complete credential (a CredentialBackend).

Only the holder of a working key gets a new one (a key id is not a secret: STS must accept
AWSCURRENT's key as the user); the new key is made at createSecret, so setSecret only has to
make sure it is active (a rollback deactivates rather than deletes it: the pending version keeps
its secret and cannot be rewritten, so a retry of the rotation reactivates it, and the next
rotation deletes it as a stale key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rotation_core.adapters.aws_errors import aws_errors, error_code
from rotation_core.exceptions import (
    AwsRequestError,
    CredentialNotYetValidError,
    InvalidSecretError,
    NoWorkingCredentialError,
    PrivilegeError,
    RetiredCredentialStillWorksError,
    RotationError,
    RotationStateError,
)
from rotation_core.models import IamAccessKey
from rotation_core.observability import logger
from rotation_core.vocabulary import Outcome, RetireAction

ENGINE = "iam"

#: what STS answers for a key it does not (yet, or any more) accept
_REFUSED = frozenset(
    {"InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure", "UnrecognizedClientException"}
)


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    status: str


class IamAccessKeys:
    """IAM (injected client) and STS (a factory taking a key pair)."""

    engine = ENGINE

    def __init__(self, iam: Any, sts_for: Callable[[str, str], Any]) -> None:
        self._iam = iam
        self._sts_for = sts_for

    # --- the CredentialBackend operations -----------------------------------------------------

    def parse(self, data: dict[str, Any], *, what: str) -> IamAccessKey:
        return IamAccessKey.from_secret(data, what=what)

    def prove(self, current: IamAccessKey, admin: IamAccessKey | None) -> None:
        if current.access_key_id not in {k.key_id for k in self.keys(current.username)}:
            raise RotationStateError(
                f"AWSCURRENT's access key {current.access_key_id} is not a key of IAM user "
                f"{current.username!r}"
            )
        try:
            self._expect_identity(current)
        except CredentialNotYetValidError:
            raise NoWorkingCredentialError(
                f"STS refuses AWSCURRENT's access key {current.access_key_id}; "
                "only a secret holding a working key can be rotated"
            ) from None

    def issue(self, current: IamAccessKey, new_password: Callable[[], str]) -> dict[str, str]:
        existing = self.keys(current.username)
        for key in existing:
            if len(existing) >= 2 and key.key_id != current.access_key_id:
                # a stale key: AWSPREVIOUS past its use, or one an interrupted attempt created
                self.delete(current.username, key.key_id)
        key_id, secret = self.create(current.username)
        return {"access_key_id": key_id, "secret_access_key": secret}

    def apply(
        self, current: IamAccessKey, pending: IamAccessKey, admin: IamAccessKey | None
    ) -> Outcome:
        """CreateAccessKey made the key live; only a rolled-back (inactive) key needs setting."""
        status = {k.key_id: k.status for k in self.keys(pending.username)}.get(
            pending.access_key_id
        )
        if status is None:
            raise RotationStateError(
                f"AWSPENDING's access key {pending.access_key_id} no longer exists; "
                "start a new rotation"
            )
        if status == "Active":
            return Outcome.ALREADY_SET
        self.set_status(pending.username, pending.access_key_id, "Active")
        return Outcome.KEY_REACTIVATED

    def verify(self, pending: IamAccessKey) -> None:
        self._expect_identity(pending)

    def undo(
        self, current: IamAccessKey, pending: IamAccessKey, admin: IamAccessKey | None
    ) -> Outcome:
        if pending.access_key_id not in {k.key_id for k in self.keys(pending.username)}:
            return Outcome.KEY_ALREADY_GONE
        self.set_status(pending.username, pending.access_key_id, "Inactive")
        return Outcome.KEY_DEACTIVATED

    def retire(
        self,
        current: IamAccessKey,
        retiring: IamAccessKey,
        action: RetireAction,
        admin: IamAccessKey | None,
    ) -> Outcome:
        user, key_id = retiring.username, retiring.access_key_id
        if action == RetireAction.DEACTIVATE:
            if key_id not in {k.key_id for k in self.keys(user)}:
                return Outcome.KEY_ALREADY_GONE
            self.set_status(user, key_id, "Inactive")
            return Outcome.KEY_DEACTIVATED
        if action == RetireAction.VERIFY:
            try:
                self.identity(key_id, retiring.secret_access_key)
            except CredentialNotYetValidError:
                return Outcome.KEY_REFUSED
            raise RetiredCredentialStillWorksError(
                f"access key {key_id} is still accepted after deactivation"
            )
        status = {k.key_id: k.status for k in self.keys(user)}.get(key_id)
        if status is None:
            return Outcome.KEY_ALREADY_GONE
        if status == "Active":
            raise RotationStateError(
                f"access key {key_id} is still active: only a deactivated key is deleted"
            )
        self.delete(user, key_id)
        return Outcome.KEY_DELETED

    def same(self, a: IamAccessKey, b: IamAccessKey) -> bool:
        return a.access_key_id == b.access_key_id

    def same_identity(self, a: IamAccessKey, b: IamAccessKey) -> bool:
        return a.username == b.username

    def _expect_identity(self, creds: IamAccessKey) -> None:
        arn = self.identity(creds.access_key_id, creds.secret_access_key)
        if arn.rsplit("/", 1)[-1] != creds.username or ":user/" not in arn:
            raise RotationStateError(
                f"the new access key belongs to {arn}, not to IAM user {creds.username!r}"
            )

    # --- IAM and STS ----------------------------------------------------------------------------

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


def build(wiring: Any) -> IamAccessKeys:
    """This backend, wired by rotation_core.handlers (an IAM client, an STS per key pair)."""
    return IamAccessKeys(wiring.client("iam"), wiring.sts_for)
