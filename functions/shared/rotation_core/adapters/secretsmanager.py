"""Secrets Manager (the SecretStore and SecretWriter ports). Clients are injected.

Workers get a :class:`SecretsManagerReader` (no write methods at all); only the router builds a
:class:`SecretsManagerWriter`. That, and the IAM policies in ``template.yaml``, keep invariant 1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rotation_core.adapters.aws_errors import aws_errors, error_code
from rotation_core.exceptions import PrivilegeError
from rotation_core.models import PasswordPolicy, SecretMetadata
from rotation_core.observability import logger
from rotation_core.vocabulary import Stage

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT, PENDING = Stage.CURRENT, Stage.PENDING


class SecretsManagerReader:
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
            last_rotated=_aware(meta.get("LastRotatedDate")),
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


class SecretsManagerWriter(SecretsManagerReader):
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
        """Move AWSCURRENT to ``token`` (AWSPREVIOUS follows it to the old version).

        Only AWSCURRENT moves: AWS's guide for rotation functions warns that removing
        AWSPENDING separately can tell Secrets Manager the rotation did not complete; the
        service clears AWSPENDING itself once finishSecret succeeds. Reads the labels afresh:
        a concurrent retry of the same step may have moved them.
        """
        current = self.describe(secret_arn).version_with(CURRENT)
        if current == token:
            return
        kwargs: dict[str, Any] = {
            "SecretId": secret_arn,
            "VersionStage": CURRENT,
            "MoveToVersionId": token,
        }
        if current is not None:
            kwargs["RemoveFromVersionId"] = current
        with aws_errors("UpdateSecretVersionStage"):
            self._client.update_secret_version_stage(**kwargs)

    def clear_pending(self, secret_arn: str, token: str) -> None:
        """Remove AWSPENDING from a version this service will not take further (the version
        itself stays: versions cannot be deleted, only unlabelled)."""
        with aws_errors("UpdateSecretVersionStage"):
            self._client.update_secret_version_stage(
                SecretId=secret_arn, VersionStage=PENDING, RemoveFromVersionId=token
            )
        logger.warning("AWSPENDING removed from a version this service did not write")


def _aware(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
