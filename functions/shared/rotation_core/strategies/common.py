"""What every strategy's workers share: the ports they are handed, and sealing a credential."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rotation_core.exceptions import SealingError, UnsupportedEngineError
from rotation_core.models import CREDENTIAL_FIELDS, StepInput, sealed_credential
from rotation_core.ports import CredentialBackend, DatabaseEngine, Sealer, SecretStore
from rotation_core.versions import SecretVersions


def _none_configured(kind: str) -> Callable[[str], Any]:
    def refuse(engine: str) -> Any:
        raise UnsupportedEngineError(f"this worker has no {kind} for engine {engine!r}")

    return refuse


@dataclass
class WorkerContext:
    """The ports a worker talks to, wired by rotation_core.handlers (tests hand in fakes)."""

    secrets: SecretStore
    sealer: Sealer | None = None
    #: the DatabaseEngine for a secret's ``engine``
    engines: Callable[[str], DatabaseEngine] = field(
        default_factory=lambda: _none_configured("database engine")
    )
    #: the CredentialBackend (multi-credential) for a secret's ``engine``
    credentials: Callable[[str], CredentialBackend] = field(
        default_factory=lambda: _none_configured("credential backend")
    )
    #: the deployment's grace before a superseded credential is retired (RetireAfterSeconds)
    retire_after_seconds: int | None = None

    def versions(self, step: StepInput) -> SecretVersions:
        return SecretVersions(self.secrets, step)

    def seal(self, pending: dict[str, Any], step: StepInput) -> dict[str, str]:
        """The new credential of ``pending``, sealed for the router (the only way a value
        leaves a worker). Only the credential fields travel; the router takes every other key
        from AWSCURRENT."""
        if self.sealer is None:
            raise SealingError("no KMS key configured to seal the pending secret")
        credential = {k: v for k, v in pending.items() if k in CREDENTIAL_FIELDS}
        return self.sealer.seal(sealed_credential(credential), step.encryption_context)
