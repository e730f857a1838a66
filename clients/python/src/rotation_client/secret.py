"""One secret, and the retry loop that makes its rotations invisible to the operations that use it.

``RotatingSecret.run(operation)`` calls ``operation(credentials)``. When that fails because the
credentials are no longer valid (see :mod:`rotation_client.classify`), it reads the secret again
and retries: at once with credentials it has not tried yet, otherwise after a capped exponential
backoff with full jitter, until the budget is spent. Any other error is re-raised at once,
unchanged. Credentials that worked after a refresh are kept and used by later calls until the
cache agrees with them, so one failure per rotation and process is the most an application pays.

What it tries after a failure, in order:

1. AWSCURRENT read from Secrets Manager now (the cache may be an hour old). This is all that
   alternating-users and multi-credential rotations need: their new AWSCURRENT works as soon as
   it is AWSCURRENT.
2. With ``try_pending=True``: AWSPENDING. During a single-user rotation the database already has
   the new password (setSecret) while AWSCURRENT still holds the old one until finishSecret; the
   pending value is the one that works in that window. Opt-in: the application needs
   permission to read AWSPENDING (README, "IAM policy").
3. Nothing new: wait (backoff), read again, retry, until ``RetryPolicy.budget`` is spent, then
   re-raise the last authentication error as the driver raised it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from rotation_client.classify import Classifier, is_authentication_failure
from rotation_client.credentials import Credentials
from rotation_client.errors import SecretUnavailableError
from rotation_client.retry import Backoff, RetryPolicy, Timing
from rotation_client.source import (
    AWSCURRENT,
    AWSPENDING,
    AccessDeniedToStage,
    CachedSecretSource,
    SecretSource,
    SecretVersion,
)

T = TypeVar("T")
log = logging.getLogger("rotation_client")

#: how long credentials that worked after a refresh are preferred over a cache that disagrees
DEFAULT_OVERRIDE_SECONDS = 900.0
#: while those are in use, how often the cache is asked again to catch up
CATCH_UP_SECONDS = 30.0


@dataclass
class Stats:
    """Counters of one RotatingSecret (all calls, all threads)."""

    calls: int = 0
    attempts: int = 0
    auth_failures: int = 0
    refreshes: int = 0
    pending_used: int = 0
    waits: int = 0
    exhausted: int = 0


@dataclass(frozen=True)
class _Candidate:
    stage: str
    credentials: Credentials


@dataclass(frozen=True)
class _Fetched:
    started: float
    candidates: tuple[_Candidate, ...]


@dataclass(frozen=True)
class _Override:
    credentials: Credentials
    since: float


class RotatingSecret:
    """A secret whose operations survive its rotations.

    Parameters
    ----------
    secret_id:
        the secret's name or ARN.
    source:
        where values come from (default: :class:`~rotation_client.CachedSecretSource`, i.e.
        AWS's ``SecretCache`` on ``boto3.client("secretsmanager")``). Share one source between
        the secrets of an application.
    policy:
        the retry budget and backoff (:class:`~rotation_client.RetryPolicy`).
    try_pending:
        after an authentication failure also try AWSPENDING (single-user rotations; needs
        ``GetSecretValue`` on that stage).
    classifier:
        which errors are authentication failures (default
        :data:`~rotation_client.is_authentication_failure`; use
        ``AuthFailureClassifier(postgres_messages=[...])`` for a localized PostgreSQL).
    timing:
        clock, sleep and randomness (tests inject fakes).
    """

    def __init__(
        self,
        secret_id: str,
        source: SecretSource | None = None,
        *,
        policy: RetryPolicy | None = None,
        try_pending: bool = False,
        classifier: Classifier = is_authentication_failure,
        timing: Timing | None = None,
        override_seconds: float = DEFAULT_OVERRIDE_SECONDS,
    ) -> None:
        if not isinstance(secret_id, str) or not secret_id:
            raise ValueError("secret_id must be a secret's name or ARN")
        self.secret_id = secret_id
        self.source: SecretSource = source if source is not None else CachedSecretSource()
        self.policy = policy or RetryPolicy()
        self.try_pending = try_pending
        self.classifier = classifier
        self.timing = timing or Timing()
        self.override_seconds = override_seconds
        self.stats = Stats()
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._override: _Override | None = None
        self._last_fetch: _Fetched | None = None
        self._parsed: tuple[str | None, Credentials] | None = None
        self._pending_denied = False
        self._last_catch_up = float("-inf")

    def __repr__(self) -> str:
        return f"RotatingSecret({self.secret_id!r}, try_pending={self.try_pending})"

    # -- reading -------------------------------------------------------------------------------

    def credentials(self) -> Credentials:
        """The credentials to use now: those that last worked after a refresh while the cache
        still disagrees, else AWSCURRENT from the cache."""
        cached = self._parse(self.source.cached(self.secret_id))
        with self._lock:
            override = self._override
            if override is None:
                return cached
            now = self.timing.clock()
            if override.credentials == cached or now - override.since > self.override_seconds:
                self._override = None
                return cached
            nudge = now - self._last_catch_up > CATCH_UP_SECONDS
            if nudge:
                self._last_catch_up = now
        if nudge:  # the cache is behind what works: ask it again to catch up
            self.source.catch_up(self.secret_id)
        return override.credentials

    def refresh(self) -> Credentials:
        """Read AWSCURRENT from Secrets Manager now and use it from now on."""
        current = [
            c.credentials
            for c in self._fetch(not_before=self.timing.clock())
            if c.stage == AWSCURRENT
        ]
        if not current:
            raise SecretUnavailableError(f"could not read AWSCURRENT of secret {self.secret_id!r}")
        self._prefer(current[0])
        return current[0]

    # -- the retry loop ------------------------------------------------------------------------

    def run(self, operation: Callable[[Credentials], T], *, policy: RetryPolicy | None = None) -> T:
        """``operation(credentials)``, retried with fresh credentials on authentication failure.

        The operation should be one that is safe to repeat after an authentication failure
        (opening a connection, a single command). Errors that are not authentication failures
        propagate at once and unchanged; after the budget the last authentication error is
        re-raised unchanged (with a note on Python 3.11+).
        """
        policy = policy or self.policy
        self._count(calls=1)
        creds = self.credentials()
        outcome = self._attempt(operation, creds)
        if not isinstance(outcome, _AuthFailed):
            return outcome
        last = outcome.error
        backoff = Backoff(policy, self.timing)
        attempts, tried, failed_at = 1, {creds}, self.timing.clock()
        candidates: tuple[_Candidate, ...] = ()
        fresh = False  # whether candidates were read after the latest failure
        while True:
            if policy.max_attempts is not None and attempts >= policy.max_attempts:
                self._give_up(last, attempts, backoff)
            untried = [c for c in candidates if c.credentials not in tried]
            if not untried and not fresh:
                candidates, fresh = self._fetch(not_before=failed_at), True
                untried = [c for c in candidates if c.credentials not in tried]
            if not untried:
                wait = backoff.next_wait()
                if wait is None:
                    self._give_up(last, attempts, backoff)
                self._count(waits=1)
                self.timing.sleep(wait)
                tried.clear()
                candidates, fresh = (), False
                continue
            candidate = untried[0]
            creds = candidate.credentials
            attempts += 1
            outcome = self._attempt(operation, creds)
            if not isinstance(outcome, _AuthFailed):
                self._prefer(creds)
                if candidate.stage == AWSPENDING:
                    self._count(pending_used=1)
                return outcome
            last = outcome.error
            tried.add(creds)
            failed_at, fresh = self.timing.clock(), False

    def connector(self, connect: Callable[[Credentials], T]) -> Callable[[], T]:
        """A zero-argument ``connect()`` that runs ``connect(credentials)`` through :meth:`run`
        (for pools that take a factory)."""

        def factory() -> T:
            return self.run(connect)

        return factory

    # -- internals -----------------------------------------------------------------------------

    def _attempt(
        self, operation: Callable[[Credentials], T], creds: Credentials
    ) -> T | _AuthFailed:
        self._count(attempts=1)
        try:
            return operation(creds)
        except Exception as exc:
            if not self.classifier(exc):
                raise
            self._count(auth_failures=1)
            log.info(
                "authentication failed; reading the secret again",
                extra={"secret_id": self.secret_id, "error": type(exc).__name__},
            )
            return _AuthFailed(exc)

    def _fetch(self, *, not_before: float) -> tuple[_Candidate, ...]:
        """AWSCURRENT (and AWSPENDING) read now, unless another thread read them after
        ``not_before`` (then its answer is as fresh as ours would be)."""
        with self._fetch_lock:
            last = self._last_fetch
            if last is not None and last.started > not_before:
                return last.candidates
            started = self.timing.clock()
            candidates = self._read_candidates()
            self._last_fetch = _Fetched(started, candidates)
            return candidates

    def _read_candidates(self) -> tuple[_Candidate, ...]:
        self._count(refreshes=1)
        found: list[_Candidate] = []
        try:
            current = self.source.fetch(self.secret_id, AWSCURRENT)
        except SecretUnavailableError as exc:
            log.warning(
                "could not read the secret after an authentication failure",
                extra={"secret_id": self.secret_id, "error": type(exc.__cause__ or exc).__name__},
            )
            current = None
        if current is not None:
            found.append(_Candidate(AWSCURRENT, self._parse(current)))
            self.source.catch_up(self.secret_id)
        if self.try_pending and not self._pending_denied:
            try:
                pending = self.source.fetch(self.secret_id, AWSPENDING)
            except AccessDeniedToStage:
                self._pending_denied = True
                log.warning(
                    "try_pending is on but reading AWSPENDING is denied: grant "
                    "secretsmanager:GetSecretValue with secretsmanager:VersionStage AWSPENDING",
                    extra={"secret_id": self.secret_id},
                )
                pending = None
            except SecretUnavailableError:
                pending = None
            if pending is not None:
                creds = self._parse(pending)
                if all(c.credentials != creds for c in found):
                    found.append(_Candidate(AWSPENDING, creds))
        return tuple(found)

    def _parse(self, version: SecretVersion) -> Credentials:
        # the same text parses to the same credentials: skip json on the hot path
        parsed = self._parsed
        if parsed is not None and parsed[0] == version.text and version.version_id is None:
            return parsed[1]
        creds = Credentials.from_secret_string(version.text, version_id=version.version_id)
        if version.version_id is None:
            self._parsed = (version.text, creds)
        return creds

    def _prefer(self, creds: Credentials) -> None:
        with self._lock:
            current = self._override.credentials if self._override else None
            if current != creds:
                self._override = _Override(creds, self.timing.clock())

    def _give_up(self, last: Exception, attempts: int, backoff: Backoff) -> NoReturn:
        self._count(exhausted=1)
        spent = backoff.policy.budget - backoff.remaining()
        note = (
            f"rotation_client: authentication failed {attempts} times over {spent:.1f} s for "
            f"secret {self.secret_id!r}; the secret was read again each round"
        )
        if hasattr(last, "add_note"):
            last.add_note(note)
        raise last

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)


class _AuthFailed:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error
