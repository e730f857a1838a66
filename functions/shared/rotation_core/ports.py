"""The ports: what the domain (router, strategies) needs from the world, as small Protocols.

The domain imports these and the domain types, never an adapter; :mod:`rotation_core.adapters`
implements them over boto3 and the database drivers, and :mod:`rotation_core.handlers` wires the
two together once per invocation. Tests hand in fakes (tests/fakes/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self

from rotation_core.models import (
    DatabaseCredentials,
    PasswordPolicy,
    SecretMetadata,
    StepInput,
)
from rotation_core.vocabulary import Outcome, RetireAction

# --- Secrets Manager ---------------------------------------------------------------------------


class SecretStore(Protocol):
    """Reads a secret's metadata and values: all a worker may do."""

    def describe(self, secret_id: str) -> SecretMetadata: ...

    def get_string(
        self, secret_id: str, *, stage: str | None = ..., version_id: str | None = None
    ) -> str | None:
        """The SecretString of a version, or None if that version/stage holds no value."""
        ...

    def unlabeled_versions(self, secret_id: str, limit: int = 2) -> list[str]:
        """The newest versions holding no staging label."""
        ...

    def random_password(self, policy: PasswordPolicy) -> str: ...


class SecretWriter(SecretStore, Protocol):
    """The router's store: the only writer of versions and labels (invariant 1)."""

    def put_pending(
        self, secret_arn: str, token: str, secret_string: str, rotation_token: str | None
    ) -> None: ...

    def finish(self, secret_arn: str, token: str) -> None:
        """Move AWSCURRENT to ``token`` (only AWSCURRENT moves)."""
        ...

    def clear_pending(self, secret_arn: str, token: str) -> None:
        """Remove AWSPENDING from a version this service will not take further."""
        ...


class Sealer(Protocol):
    """Hands a credential from a worker to the router, bound to (secret, token)."""

    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, str]: ...

    def unseal(self, sealed: Any, context: dict[str, str]) -> dict[str, Any]: ...


# --- Step Functions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """What the router needs to know about one execution."""

    arn: str
    status: str
    started: datetime
    input: str = ""
    output: str = ""
    error: str | None = None
    cause: str | None = None


class ExecutionRunner(Protocol):
    def execution_arn(self, machine: str, name: str) -> str: ...

    def start(self, machine: str, name: str, body: str) -> bool:
        """Start an execution; False when one of that name exists already."""
        ...

    def describe(self, arn: str) -> Execution | None:
        """The execution, or None when none has that ARN."""
        ...


# --- the backends whose credentials rotate -----------------------------------------------------


class DatabaseEngine(Protocol):
    """Log in, change a password, probe, keep a clone: the resource side of a database."""

    def can_login(self, creds: DatabaseCredentials) -> bool: ...

    def change_own_password(self, creds: DatabaseCredentials, new_password: str) -> None: ...

    def set_password_as(self, admin: DatabaseCredentials, account: Any, password: str) -> None: ...

    def probe(self, creds: DatabaseCredentials, *, write: bool = False) -> None: ...

    def account(self, creds: DatabaseCredentials) -> Any:
        """The account ``creds`` log in as, as the server names it (proves they work)."""
        ...

    def sync_clone(
        self,
        master: DatabaseCredentials,
        original: Any,
        clone: str,
        password: str | None,
        *,
        app_database: str | None = None,
    ) -> None: ...

    def account_exists(self, master: DatabaseCredentials, account: Any) -> bool: ...

    def is_twin(self, master: DatabaseCredentials, original: Any, clone: Any) -> bool: ...

    def describe(self, creds: DatabaseCredentials) -> str: ...

    # the operator's probe (read-only)
    def admin_privileges(self, admin: DatabaseCredentials) -> dict[str, bool]: ...

    def clone_differences(
        self, master: DatabaseCredentials, original: Any, clone: Any
    ) -> list[str]: ...

    def dry_run(self, placeholder: str) -> tuple[Self, list[str]]:
        """A copy whose sessions run reads and record writes (redacted), and the record."""
        ...


class CredentialBackend(Protocol):
    """An identity that holds two live credentials at once (IAM access keys, Redis ACL
    passwords). The multi-credential strategy is the shared flow; a backend fills in these
    operations on its own typed secrets. Adding a backend is adding one module to
    ``rotation_core/adapters/credentials/`` (and its secret's JSON schema)."""

    #: the secret ``engine`` it rotates, and the JSON schema its secrets follow
    engine: str

    def parse(self, data: dict[str, Any], *, what: str) -> Any:
        """The typed model of one version (validated against the backend's schema)."""
        ...

    def prove(self, current: Any, admin: Any | None) -> None:
        """createSecret's preflight: AWSCURRENT (and the admin, if any) really work."""
        ...

    def issue(self, current: Any, new_password: Callable[[], str]) -> dict[str, str]:
        """The new credential's fields (IAM: a new key, made now; Redis: a new password)."""
        ...

    def apply(self, current: Any, pending: Any, admin: Any | None) -> Outcome:
        """setSecret: make the backend accept ``pending`` beside ``current`` (idempotent)."""
        ...

    def verify(self, pending: Any) -> None:
        """testSecret: the new credential works as its identity."""
        ...

    def undo(self, current: Any, pending: Any, admin: Any | None) -> Outcome:
        """Rollback: take back what this rotation added; AWSCURRENT's is never touched."""
        ...

    def retire(
        self, current: Any, retiring: Any, action: RetireAction, admin: Any | None
    ) -> Outcome:
        """Deactivate, verify or delete a superseded credential."""
        ...

    def same(self, a: Any, b: Any) -> bool:
        """Whether two versions hold the same credential."""
        ...

    def same_identity(self, a: Any, b: Any) -> bool:
        """Whether two versions name the same identity (user, server)."""
        ...


class Admins(Protocol):
    """The master secret a rotation may use, after its group binding is proven."""

    def __call__(self, step: StepInput, current: Any, *, required: bool) -> Any | None: ...
