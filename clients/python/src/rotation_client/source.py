"""Where secret values come from: AWS's caching client for the steady state, a direct read when a
login has just failed.

Why not ``SecretCache.refresh_secret_now()`` alone: in aws-secretsmanager-caching 1.1.2 to 1.2.x
it sleeps 2.5 to 5 s (a random "jitter" against refresh loops) before it refreshes, and it may
wait out a pending error backoff of up to 10 s. Every application would stall that long on each
rotation. So a failed login reads the stage it needs straight from Secrets Manager
(``GetSecretValue`` with ``VersionStage``), and hands ``refresh_secret_now()`` to a background
thread so that the cache catches up without anyone waiting for it. Until it has, the value read
directly is used (see :class:`rotation_client.RotatingSecret`).

The caching client finds a stage's version with ``DescribeSecret`` and reads it with
``GetSecretValue(VersionId=...)``; the application therefore needs both permissions (README,
"IAM policy"). The direct reads name the stage (``VersionStage``), the request parameter that the
IAM condition key ``secretsmanager:VersionStage`` filters on
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
Both APIs share one quota, 10,000 requests per second per account and Region
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rotation_client.errors import SecretUnavailableError

if TYPE_CHECKING:
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

log = logging.getLogger("rotation_client")

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"


@dataclass(frozen=True)
class SecretVersion:
    """A secret value as read: the SecretString and, when known, its version id."""

    text: str | None
    version_id: str | None = None


class SecretSource(Protocol):
    """What :class:`~rotation_client.RotatingSecret` needs from a secret store."""

    def cached(self, secret_id: str) -> SecretVersion:
        """AWSCURRENT as the cache has it (may be stale; cheap)."""

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        """``stage`` read now from the store; None when no version carries that stage."""

    def catch_up(self, secret_id: str) -> None:
        """Ask the cache to refresh ``secret_id`` soon, without waiting for it."""


class AccessDeniedToStage(SecretUnavailableError):
    """The application may not read this stage (e.g. AWSPENDING without the IAM permission)."""


class CachedSecretSource:
    """AWS's ``SecretCache`` for reads, ``GetSecretValue`` for the reads that must be fresh.

    Parameters
    ----------
    client:
        a boto3 ``secretsmanager`` client (default: ``boto3.client("secretsmanager")``).
    cache:
        an existing ``SecretCache`` to share (default: a new one on ``client`` with ``config``).
    config:
        ``SecretCacheConfig`` for the new cache (its ``secret_refresh_interval`` is how long a
        value may be served stale when nothing fails; default one hour).
    catch_up:
        refresh the cache in the background after a direct read found a new version.
    """

    def __init__(
        self,
        client: Any = None,
        cache: SecretCache | None = None,
        *,
        config: SecretCacheConfig | None = None,
        catch_up: bool = True,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("secretsmanager")
        if cache is None:
            from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

            cache = SecretCache(config=config or SecretCacheConfig(), client=client)
        self.client = client
        self.cache = cache
        self._catch_up = catch_up
        self._refreshing: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False

    def cached(self, secret_id: str) -> SecretVersion:
        try:
            text = self.cache.get_secret_string(secret_id)
        except Exception as exc:
            raise SecretUnavailableError(
                f"could not read secret {secret_id!r} through the cache ({type(exc).__name__})"
            ) from exc
        return SecretVersion(text)

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        try:
            response = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except Exception as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException" and stage != AWSCURRENT:
                return None  # no version carries the stage (no rotation under way)
            if code in ("AccessDeniedException", "AccessDenied"):
                raise AccessDeniedToStage(
                    f"not allowed to read {stage} of secret {secret_id!r}"
                ) from exc
            raise SecretUnavailableError(
                f"could not read {stage} of secret {secret_id!r} ({code or type(exc).__name__})"
            ) from exc
        return SecretVersion(response.get("SecretString"), response.get("VersionId"))

    def catch_up(self, secret_id: str) -> None:
        if not self._catch_up:
            return
        with self._lock:
            if self._closed or secret_id in self._refreshing:
                return
            thread = threading.Thread(
                target=self._refresh_cache,
                args=(secret_id,),
                name="rotation-client-cache-refresh",
                daemon=True,
            )
            self._refreshing[secret_id] = thread
        thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Start no more background refreshes and wait (up to ``timeout`` seconds each) for
        those running, e.g. before the process or its AWS client goes away."""
        with self._lock:
            self._closed = True
            threads = list(self._refreshing.values())
        for thread in threads:
            thread.join(timeout)

    def _refresh_cache(self, secret_id: str) -> None:
        try:
            self.cache.refresh_secret_now(secret_id)  # sleeps 2.5-5 s first (see module doc)
        except Exception as exc:  # the next failed login reads directly again
            log.warning(
                "background cache refresh failed",
                extra={"secret_id": secret_id, "error": type(exc).__name__},
            )
        finally:
            with self._lock:
                self._refreshing.pop(secret_id, None)


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error")
        if isinstance(error, dict) and isinstance(error.get("Code"), str):
            return str(error["Code"])
    return None
