"""The words a rotation is told in: stages, steps, strategies, outcomes. No I/O, no adapters.

Each is a ``StrEnum``: its members are the strings AWS, the state machine and the alerts use,
so they serialise as themselves, and a misspelt one is a NameError rather than a silent miss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """Secrets Manager's staging labels (the rotation protocol's)."""

    CURRENT = "AWSCURRENT"
    PENDING = "AWSPENDING"
    PREVIOUS = "AWSPREVIOUS"


class Step(StrEnum):
    """The four steps Secrets Manager calls, in its order."""

    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


class Strategy(StrEnum):
    SINGLE_USER = "single-user"
    ALTERNATING_USERS = "alternating-users"
    MULTI_CREDENTIAL = "multi-credential"


class RetireAction(StrEnum):
    """What the retirement state machine asks a worker to do with a superseded credential."""

    DEACTIVATE = "deactivate"
    VERIFY = "verify"
    DELETE = "delete"


class Outcome(StrEnum):
    """What a step did. Workers return it in ``Outcome`` (the ASL reads ``$.Payload.Outcome``),
    the router in its own answer, the safety net in its."""

    # workers: setSecret
    ALREADY_SET = "already-set"
    CHANGED = "changed"
    CLONE_UPDATED = "clone-updated"
    ORIGINAL_UPDATED = "original-updated"
    PASSWORD_ADDED = "password-added"  # noqa: S105 - an outcome, not a password
    KEY_REACTIVATED = "key-reactivated"
    # workers: testSecret
    PENDING_WORKS = "pending-works"
    # workers: rollback
    CURRENT_STILL_WORKS = "current-still-works"
    PASSWORD_RESTORED = "password-restored"  # noqa: S105 - an outcome, not a password
    NOTHING_TO_UNDO = "nothing-to-undo"
    KEY_DEACTIVATED = "key-deactivated"
    KEY_ALREADY_GONE = "key-already-gone"
    PASSWORD_REMOVED = "password-removed"  # noqa: S105 - an outcome, not a password
    # workers: retirement
    VERSION_GONE = "version-gone"
    KEY_REFUSED = "key-refused"
    PASSWORD_REFUSED = "password-refused"  # noqa: S105 - an outcome, not a password
    KEY_DELETED = "key-deleted"
    NOTHING_TO_DELETE = "nothing-to-delete"
    # router
    DONE = "done"
    ALREADY_CURRENT = "already-current"
    ALREADY_CREATED = "already-created"
    ALREADY_ADOPTED = "already-adopted"
    # safety net
    ANNOUNCED = "announced"
    ALREADY_ANNOUNCED = "already-announced"
    STILL_RUNNING = "still-running"
    IGNORED = "ignored"


@dataclass(frozen=True)
class StepResult:
    """What a worker hands back to the state machine: an outcome, a few identifiers (never a
    value) and, from createSecret only, the sealed credential."""

    outcome: Outcome | None = None
    details: dict[str, str] = field(default_factory=dict)
    sealed: dict[str, str] | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.details)
        if self.outcome is not None:
            body["Outcome"] = str(self.outcome)
        if self.sealed is not None:
            body["Sealed"] = self.sealed
        return body
