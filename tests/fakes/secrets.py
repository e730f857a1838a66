"""A Secrets Manager reader over a dict of versions (for unit tests of the domain)."""

from __future__ import annotations

import json
from typing import Any

from rotation_core.aws import SecretReader
from rotation_core.models import PasswordPolicy


class FakeSecrets(SecretReader):
    def __init__(self, versions: dict[str, tuple[list[str], dict[str, Any] | None]]) -> None:
        # version id -> (stages, value or None)
        self.versions = versions
        self.generated: list[str] = []

    def unlabeled_versions(self, secret_id: str, limit: int = 2) -> list[str]:
        return [vid for vid, (stages, _v) in reversed(self.versions.items()) if not stages][:limit]

    def get_string(
        self, secret_id: str, *, stage: str | None = "AWSCURRENT", version_id: str | None = None
    ) -> str | None:
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
