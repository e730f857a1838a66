"""Adapters over Secrets Manager and KMS. Clients are injected; nothing here creates one.

Workers get a :class:`SecretReader` (no write methods at all); only the router builds a
:class:`SecretWriter`. That, and the IAM policies in ``template.yaml``, keep invariant 1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rotation_core.exceptions import (
    AwsRequestError,
    AwsThrottlingError,
    PrivilegeError,
    RotationError,
    RotationStateError,
    SealingError,
)
from rotation_core.models import PasswordPolicy

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

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


@dataclass(frozen=True)
class SecretMetadata:
    arn: str
    name: str
    rotation_enabled: bool
    rotation_lambda_arn: str | None
    versions: dict[str, list[str]]
    tags: dict[str, str] = field(default_factory=dict)

    def version_with(self, stage: str) -> str | None:
        return next((v for v, stages in self.versions.items() if stage in stages), None)


class SecretReader:
    """Reads secret metadata and values; what every worker is allowed to do."""

    def __init__(self, client: SecretsManagerClient) -> None:
        self._client = client

    def describe(self, secret_id: str) -> SecretMetadata:
        with aws_errors("DescribeSecret"):
            meta = self._client.describe_secret(SecretId=secret_id)
        return SecretMetadata(
            arn=meta["ARN"],
            name=meta["Name"],
            rotation_enabled=bool(meta.get("RotationEnabled")),
            rotation_lambda_arn=meta.get("RotationLambdaARN"),
            versions={k: list(v) for k, v in meta.get("VersionIdsToStages", {}).items()},
            tags={t["Key"]: t["Value"] for t in meta.get("Tags", [])},
        )

    def get_string(
        self, secret_id: str, *, stage: str | None = CURRENT, version_id: str | None = None
    ) -> str | None:
        """The SecretString of a version, or None if that version/stage holds no value."""
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if stage is not None:
            kwargs["VersionStage"] = stage
        if version_id is not None:
            kwargs["VersionId"] = version_id
        try:
            with aws_errors("GetSecretValue"):
                value = self._client.get_secret_value(**kwargs)
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return None
            if code in ("AccessDeniedException", "AccessDenied"):
                raise PrivilegeError(f"GetSecretValue: not allowed to read {secret_id}") from None
            raise
        return value.get("SecretString")

    def unlabeled_versions(self, secret_id: str, limit: int = 2) -> list[str]:
        """Newest versions holding no staging label (e.g. a rotation that stopped after
        setSecret and was superseded by a new token): their credential may be what the backend
        holds now."""
        with aws_errors("ListSecretVersionIds"):
            response = self._client.list_secret_version_ids(
                SecretId=secret_id, IncludeDeprecated=True, MaxResults=100
            )
        versions: list[Any] = list(response["Versions"])
        newest_first = sorted(
            reversed(versions), key=lambda v: v.get("CreatedDate", 0), reverse=True
        )
        return [v["VersionId"] for v in newest_first if not v.get("VersionStages")][:limit]

    def random_password(self, policy: PasswordPolicy) -> str:
        with aws_errors("GetRandomPassword"):
            response = self._client.get_random_password(
                PasswordLength=policy.length,
                ExcludeCharacters=policy.exclude_characters,
                RequireEachIncludedType=True,
            )
        return response["RandomPassword"]


class SecretWriter(SecretReader):
    """The router's store: the only code path that writes versions or moves labels."""

    def put_pending(
        self, secret_arn: str, token: str, secret_string: str, rotation_token: str | None
    ) -> None:
        kwargs: dict[str, Any] = {
            "SecretId": secret_arn,
            "ClientRequestToken": token,
            "SecretString": secret_string,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        with aws_errors("PutSecretValue"):
            self._client.put_secret_value(**kwargs)

    def finish(self, secret_arn: str, token: str) -> None:
        """Move AWSCURRENT to ``token`` (AWSPREVIOUS follows) and drop AWSPENDING from it.

        Reads the labels afresh: a concurrent retry of the same step may have moved them.
        """
        metadata = self.describe(secret_arn)
        current = metadata.version_with(CURRENT)
        if current != token:
            kwargs: dict[str, Any] = {
                "SecretId": secret_arn,
                "VersionStage": CURRENT,
                "MoveToVersionId": token,
            }
            if current is not None:
                kwargs["RemoveFromVersionId"] = current
            with aws_errors("UpdateSecretVersionStage"):
                self._client.update_secret_version_stage(**kwargs)
        if PENDING in metadata.versions.get(token, []):
            with aws_errors("UpdateSecretVersionStage"):
                self._client.update_secret_version_stage(
                    SecretId=secret_arn, VersionStage=PENDING, RemoveFromVersionId=token
                )


class Sealer:
    """KMS encryption of a credential handed from a worker to the router.

    The encryption context binds the ciphertext to (secret ARN, token): a blob lifted from one
    rotation cannot be replayed into another. Payloads are small JSON documents, well under
    KMS's 4 KiB plaintext limit, which :meth:`seal` enforces.
    """

    MAX_PLAINTEXT = 4096

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, str]:
        plaintext = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if len(plaintext) > self.MAX_PLAINTEXT:
            raise SealingError(f"credential is {len(plaintext)} bytes; KMS seals at most 4096")
        try:
            with aws_errors("Encrypt"):
                response = self._client.encrypt(
                    KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=context
                )
        except AwsThrottlingError:
            raise
        except Exception as exc:
            raise SealingError(
                f"KMS Encrypt failed: {error_code(exc) or type(exc).__name__}"
            ) from None
        return {
            "Ciphertext": base64.b64encode(response["CiphertextBlob"]).decode("ascii"),
            "KeyId": response["KeyId"],
        }

    def unseal(self, sealed: Any, context: dict[str, str]) -> dict[str, Any]:
        if not isinstance(sealed, dict) or not isinstance(sealed.get("Ciphertext"), str):
            raise SealingError("sealed credential is missing its 'Ciphertext'")
        try:
            blob = base64.b64decode(sealed["Ciphertext"], validate=True)
            with aws_errors("Decrypt"):
                response = self._client.decrypt(
                    CiphertextBlob=blob, EncryptionContext=context, KeyId=self._key_id
                )
        except AwsThrottlingError:
            raise
        except Exception as exc:
            raise SealingError(
                f"KMS Decrypt failed: {error_code(exc) or type(exc).__name__}"
            ) from None
        payload: dict[str, Any] = json.loads(response["Plaintext"])
        return payload


def require_stage(metadata: SecretMetadata, token: str, stage: str) -> None:
    if stage not in metadata.versions.get(token, []):
        raise RotationStateError(
            f"secret version {token} of {metadata.name!r} is not staged {stage} for rotation"
        )
