"""GetSecretValue without a version returns the version that holds AWSCURRENT.

AWS: "If you don't specify either a VersionStage or VersionId, Secrets Manager returns the
AWSCURRENT version." Moving AWSCURRENT with ``UpdateSecretVersionStage`` therefore changes what
every client reads next.
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html

moto 5.2 moves the label but keeps serving the old version to a GetSecretValue that names
neither. The patch makes the version that received AWSCURRENT the default one.
"""

from __future__ import annotations

from typing import Any

from rotator.aws_local.patches import MotoPatch


class CurrentLabelPicksTheValue(MotoPatch):
    aws_doc = (
        "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html"
    )

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.secretsmanager.models import SecretsManagerBackend

        original = SecretsManagerBackend.update_secret_version_stage

        def update_secret_version_stage(
            backend: Any,
            secret_id: str,
            version_stage: str,
            remove_from_version_id: str,
            move_to_version_id: str,
        ) -> tuple[str, str]:
            result = original(
                backend, secret_id, version_stage, remove_from_version_id, move_to_version_id
            )
            if version_stage == "AWSCURRENT" and move_to_version_id:
                backend.secrets[secret_id].set_default_version_id(move_to_version_id)
            return result

        return [(SecretsManagerBackend, "update_secret_version_stage", update_secret_version_stage)]
