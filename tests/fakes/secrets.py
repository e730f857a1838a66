"""A Secrets Manager reader over a dict of versions (for unit tests of the domain)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rotation_core.models import PasswordPolicy, SecretMetadata


class FakeSecrets:
    """The SecretStore port over a dict of versions."""

    def __init__(
        self,
        versions: dict[str, tuple[list[str], dict[str, Any] | None]],
        *,
        others: dict[str, tuple[dict[str, str], dict[str, Any]]] | None = None,
        tags: dict[str, str] | None = None,
        last_rotated: datetime | None = None,
    ) -> None:
        # version id -> (stages, value or None)
        self.versions = versions
        #: other secrets by ARN (a master, say): (tags, AWSCURRENT value)
        self.others = others or {}
        self.tags = tags or {}
        self.last_rotated = last_rotated
        self.generated: list[str] = []

    def describe(self, secret_id: str) -> SecretMetadata:
        if secret_id in self.others:
            tags, _value = self.others[secret_id]
            return SecretMetadata(secret_id, secret_id, True, None, {"m": ["AWSCURRENT"]}, tags)
        return SecretMetadata(
            arn=secret_id,
            name=secret_id,
            rotation_enabled=True,
            rotation_lambda_arn=None,
            versions={vid: list(stages) for vid, (stages, _v) in self.versions.items()},
            tags=dict(self.tags),
            last_rotated=self.last_rotated,
        )

    def unlabeled_versions(self, secret_id: str, limit: int = 2) -> list[str]:
        return [vid for vid, (stages, _v) in reversed(self.versions.items()) if not stages][:limit]

    def get_string(
        self, secret_id: str, *, stage: str | None = "AWSCURRENT", version_id: str | None = None
    ) -> str | None:
        if secret_id in self.others:
            return json.dumps(self.others[secret_id][1])
        for vid, (stages, value) in self.versions.items():
            if version_id is not None and vid != version_id:
                continue
            if stage is None or stage in stages:
                return None if value is None else json.dumps(value)
        return None

    def random_password(self, policy: PasswordPolicy) -> str:
        password = f"generated-{len(self.generated)}-" + "x" * (policy.length - 14)
        self.generated.append(password)
        return password
