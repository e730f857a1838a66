"""A redis-py client that survives rotations.

Each new connection of the pool authenticates with the secret's credentials (a redis-py
``CredentialProvider``). A command whose connection fails to authenticate (``WRONGPASS``,
``NOAUTH``) is retried through :meth:`RotatingSecret.run`: the secret is read again and the
command runs on a connection made with the new credentials. Connections that are already
authenticated keep working (Redis does not log out a connection when a password is removed).

redis-py retries connection errors itself, and its ``AuthenticationError`` is a
``ConnectionError``: the client's ``Retry`` is changed to re-raise authentication failures at
once, so that they reach the refresh instead of being retried with the same password.

TLS: ``ssl_cert_reqs="required"``, ``ssl_check_hostname=True``, ``ssl_ca_certs`` = the
application's CA file (trust = the system store plus that file, redis-py's behaviour).

Not retried: pipelines, transactions and pub/sub (their connections still authenticate with the
current credentials). Wrap such work in :meth:`RotatingRedis.run`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

from rotation_client.classify import is_authentication_failure
from rotation_client.credentials import Credentials
from rotation_client.errors import InsecureConnectionError
from rotation_client.secret import RotatingSecret
from rotation_client.tls import TlsSettings, choose

T = TypeVar("T")
_OWNED = frozenset(
    {
        "username",
        "password",
        "credential_provider",
        "ssl",
        "ssl_ca_certs",
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "ssl_ca_path",
        "ssl_ca_data",
        "host",
        "port",
    }
)


class SecretCredentialProvider(CredentialProvider):
    """Credentials for each new connection: the ones a retry is trying on this thread, else the
    secret's current ones."""

    def __init__(self, secret: RotatingSecret) -> None:
        self.secret = secret
        self._trying = threading.local()

    def get_credentials(self) -> tuple[str, str]:
        creds: Credentials | None = getattr(self._trying, "creds", None)
        if creds is None:
            creds = self.secret.credentials()
        return creds.username, creds.password

    def trying(self, creds: Credentials | None) -> Credentials | None:
        """Use ``creds`` for connections made on this thread; returns what it replaced."""
        previous: Credentials | None = getattr(self._trying, "creds", None)
        self._trying.creds = creds
        return previous


class _AuthEscape(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class AuthFailFastRetry(Retry):
    """redis-py's Retry, except that an authentication failure is raised at once (after the
    failure callback, which closes the connection, as redis-py does before any retry)."""

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        with_count = bool(kwargs.get("with_failure_count", args[1] if len(args) > 1 else False))

        def attempt() -> T:
            try:
                return do()
            except redis.exceptions.RedisError as exc:
                if not is_authentication_failure(exc):
                    raise
                with contextlib.suppress(Exception):
                    fail(exc, 1) if with_count else fail(exc)
                raise _AuthEscape(exc) from exc

        try:
            result: T = super().call_with_retry(attempt, fail, *args, **kwargs)
        except _AuthEscape as escape:
            raise escape.error from None
        return result


def _fail_fast(retry: Retry | None) -> Retry:
    """``retry`` (default: the installed redis-py's own default) minus authentication failures."""
    if retry is None:
        parameter = inspect.signature(redis.Redis.__init__).parameters.get("retry")
        default = parameter.default if parameter is not None else None
        # redis-py 6+ declares its default Retry in the signature; 5.x retries nothing by default
        retry = copy.deepcopy(default) if isinstance(default, Retry) else Retry(NoBackoff(), 0)
    if isinstance(retry, AuthFailFastRetry):
        return retry
    return AuthFailFastRetry(retry._backoff, retry._retries, retry._supported_errors)


class RotatingRedis(redis.Redis):
    """``redis.Redis`` whose commands survive rotations of ``secret``."""

    def __init__(
        self,
        secret: RotatingSecret,
        *,
        ca_file: str | os.PathLike[str] | None = None,
        ca_dir: str | os.PathLike[str] | None = None,
        allow_plaintext: bool = False,
        retry: Retry | None = None,
        **kwargs: Any,
    ) -> None:
        owned = sorted(_OWNED.intersection(kwargs))
        if owned:
            raise InsecureConnectionError(
                f"keyword(s) {', '.join(owned)} come from the secret and the TLS settings; "
                "do not pass them"
            )
        creds = secret.credentials()
        creds.require("redis")
        choice = choose(creds, TlsSettings(ca_file, ca_dir, allow_plaintext))
        tls: dict[str, Any] = {}
        if choice.verify:
            tls = {
                "ssl": True,
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": True,
                "ssl_ca_certs": choice.ca_file,
            }
        self.rotating_secret = secret
        self.credential_provider = SecretCredentialProvider(secret)
        assert creds.host is not None and creds.port is not None  # required for redis secrets
        super().__init__(
            host=creds.host,
            port=creds.port,
            credential_provider=self.credential_provider,
            retry=_fail_fast(retry),
            **tls,
            **kwargs,
        )

    def execute_command(self, *args: Any, **options: Any) -> Any:
        parent: Callable[..., Any] = super().execute_command
        return self.run(lambda _client: parent(*args, **options))

    def run(self, work: Callable[[RotatingRedis], T]) -> T:
        """``work(self)`` retried on authentication failure; any connection it opens
        authenticates with the credentials being tried."""
        provider = self.credential_provider

        def attempt(creds: Credentials) -> T:
            previous = provider.trying(creds)
            try:
                return work(self)
            finally:
                provider.trying(previous)

        return self.rotating_secret.run(attempt)


def redis_client(
    secret: RotatingSecret,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
    **kwargs: Any,
) -> RotatingRedis:
    """A :class:`RotatingRedis` for the secret's host and port (``kwargs`` go to
    ``redis.Redis``: ``db``, ``decode_responses``, ``socket_timeout``...)."""
    return RotatingRedis(
        secret, ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext, **kwargs
    )
