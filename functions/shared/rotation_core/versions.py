"""The versions of the secret a step rotates, read through the SecretStore port and typed.

Strategies ask for ``current``, ``pending``, ``previous``, the newest unlabeled versions and the
master secret here, each parsed into its kind's model (``parse``); nothing else reads secrets.
The master is handed out only after its binding to this secret is proven (same
``SecretRotationGroup`` tag, same server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from rotation_core.config import setting
from rotation_core.exceptions import AwsRequestError, InvalidSecretError, RotationStateError
from rotation_core.models import SecretMetadata, StepInput, engine_family, parse_secret_string
from rotation_core.observability import logger
from rotation_core.ports import SecretStore
from rotation_core.vocabulary import Stage

GROUP_TAG = "SecretRotationGroup"
#: the tag a deployer puts on a master secret: its value is the stack's name
MASTER_TAG = "SecretRotationMaster"
_NOT_READABLE = frozenset({"ResourceNotFoundException", "AccessDeniedException", "AccessDenied"})

T = TypeVar("T")


class SecretVersions:
    def __init__(self, store: SecretStore, step: StepInput) -> None:
        self._store = store
        self._step = step

    @cached_property
    def metadata(self) -> SecretMetadata:
        """The rotated secret's metadata (read once per step)."""
        return self._store.describe(self._step.secret_arn)

    # --- one version ---------------------------------------------------------------------------

    def data(self, stage: Stage | None, *, version_id: str | None = None) -> dict[str, Any] | None:
        """The parsed JSON of one version (None when that version holds no value)."""
        raw = self._store.get_string(
            self._step.secret_arn,
            stage=str(stage) if stage is not None else None,
            version_id=version_id,
        )
        if raw is None:
            return None
        return parse_secret_string(raw, what=f"{stage or 'unlabeled'} version of the secret")

    def current(self, parse: Callable[..., T]) -> T:
        return self._required(Stage.CURRENT, parse)

    def pending(self, parse: Callable[..., T]) -> T:
        """AWSPENDING at this rotation's token (never another rotation's pending)."""
        return self._required(Stage.PENDING, parse)

    def previous(self, parse: Callable[..., T]) -> T | None:
        """AWSPREVIOUS, or None (an unusable one is skipped with a warning: a fallback)."""
        return self._optional(self.data(Stage.PREVIOUS), parse, what="AWSPREVIOUS secret")

    def unlabeled(self, parse: Callable[..., T]) -> Iterator[T]:
        """The newest versions with no staging label, read lazily, unusable ones skipped:
        where a superseded rotation's credential lives after it was set on the backend."""
        for version_id in self._store.unlabeled_versions(self._step.secret_arn):
            found = self._optional(
                self.data(None, version_id=version_id), parse, what="unlabeled version"
            )
            if found is not None:
                yield found

    def _required(self, stage: Stage, parse: Callable[..., T]) -> T:
        version_id = self._step.token if stage == Stage.PENDING else None
        data = self.data(stage, version_id=version_id)
        if data is None:
            which = f"version {self._step.token} staged {stage}" if version_id else str(stage)
            raise RotationStateError(f"the secret has no {which} value")
        return parse(data, what=f"{stage} secret")

    @staticmethod
    def _optional(data: dict[str, Any] | None, parse: Callable[..., T], *, what: str) -> T | None:
        if data is None:
            return None
        try:
            return parse(data, what=what)
        except InvalidSecretError as exc:
            logger.warning("ignoring an unusable fallback version", extra={"reason": str(exc)})
            return None

    def current_and_master(self, parse: Callable[..., T]) -> tuple[T, T]:
        """AWSCURRENT and the master it names (required), in one read of this secret."""
        current = self.current(parse)
        master = self.master(current, parse, required=True)
        assert master is not None
        return current, master

    # --- the master ----------------------------------------------------------------------------

    def master(self, current: Any, parse: Callable[..., T], *, required: bool) -> T | None:
        """The master secret named by ``masterarn`` (read here, never returned or logged).

        A master serves only the secrets of its own rotation group: the master secret and
        this secret must carry the same ``SecretRotationGroup`` tag, and the master must be
        tagged ``SecretRotationMaster=<stack name>`` (the workers may also read every secret this
        stack rotates: without the tag check, ``masterarn`` could name a sibling application's
        secret of the same group and act with its authority). Tags need
        secretsmanager:TagResource, which someone who can only edit a secret's value lacks, so
        editing ``masterarn`` cannot aim another group's master, or a non-master, at this
        secret's server.
        """
        arn = current.raw.get("masterarn")
        if not arn:
            if required:
                raise InvalidSecretError(
                    "secret field 'masterarn' is required: this strategy works through a master"
                )
            return None
        group = self.metadata.tags.get(GROUP_TAG)
        if not group:
            raise InvalidSecretError(
                f"secret field 'masterarn' is set, but the secret has no '{GROUP_TAG}' tag: a "
                f"master serves only secrets tagged with its own {GROUP_TAG}"
            )
        try:
            master_tags = self._store.describe(str(arn)).tags
        except AwsRequestError as exc:
            if exc.code in _NOT_READABLE:
                # AWS answers AccessDenied for a secret the worker's policy does not cover,
                # including one that does not exist (the policy's conditions cannot match it)
                raise InvalidSecretError(
                    "secret field 'masterarn' names a secret that does not exist or that this "
                    f"stack may not read (tag masters SecretRotationMaster=<stack name>; {exc.code})"
                ) from None
            raise
        stack = setting("STACK_NAME")
        tagged = master_tags.get(MASTER_TAG)
        if tagged is None or (stack is not None and tagged != stack):
            raise InvalidSecretError(
                f"secret field 'masterarn' names a secret that is not a master of this stack "
                f"(tag {MASTER_TAG}=<stack name>)"
            )
        if master_tags.get(GROUP_TAG) != group:
            raise InvalidSecretError(
                f"secret field 'masterarn' names a master of another rotation group "
                f"(tag {GROUP_TAG})"
            )
        raw = self._store.get_string(str(arn), stage=str(Stage.CURRENT))
        if raw is None:
            raise InvalidSecretError("secret field 'masterarn' names a secret that does not exist")
        master = parse(parse_secret_string(raw, what="master secret"), what="master secret")
        if server_of(master) != server_of(current):
            raise InvalidSecretError(
                "the master secret ('masterarn') is for another engine, host or port than the "
                "secret"
            )
        return master


def server_of(creds: Any) -> tuple[str, str, int]:
    """(protocol family, host, port): two credentials for the same server agree on it."""
    engine = str(creds.engine)
    family = engine if engine == "redis" else engine_family(engine)
    return family, str(creds.host), int(creds.port)
