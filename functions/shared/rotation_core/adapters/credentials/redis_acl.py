"""Redis ACL users: one user may hold several passwords at once (a CredentialBackend).

setSecret adds the new password beside the current one (``ACL SETUSER user >new``, as the
master's ACL user when the secret names one, else as the user itself); rollback and retirement
remove one (``<old``). Logging in is the shared :class:`Connector` flow: verified TLS unless both
the deployment and the secret allow plaintext, driver errors classified without their text.
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from collections.abc import Callable
from typing import Any

from rotation_core.adapters.connector import Connector
from rotation_core.exceptions import (
    AuthenticationFailedError,
    DatabaseUnavailableError,
    InvalidSecretError,
    NoWorkingCredentialError,
    PrivilegeError,
    ProbeFailedError,
    RetiredCredentialStillWorksError,
    RotationError,
    ServerIdentityError,
)
from rotation_core.models import DatabaseCredentials, RedisCredentials
from rotation_core.vocabulary import Outcome, RetireAction

ENGINE = "redis"


class RedisAclPasswords(Connector):
    engine = ENGINE

    # --- the CredentialBackend operations -----------------------------------------------------

    def parse(self, data: dict[str, Any], *, what: str) -> RedisCredentials:
        return RedisCredentials.from_secret(data, what=what)

    def prove(self, current: RedisCredentials, admin: RedisCredentials | None) -> None:
        # a secret naming someone else's ACL user with a guessed password gets no master
        if not self.can_login(current):
            raise NoWorkingCredentialError(
                f"AWSCURRENT does not log in as {self.describe(current)}"
            )
        if admin is not None and not self.can_login(admin):
            raise NoWorkingCredentialError(
                f"the master secret ('masterarn') does not log in to {current.host}:{current.port}"
            )

    def issue(self, current: RedisCredentials, new_password: Callable[[], str]) -> dict[str, str]:
        return {"password": new_password()}  # added to the user at setSecret

    def apply(
        self, current: RedisCredentials, pending: RedisCredentials, admin: RedisCredentials | None
    ) -> Outcome:
        if self.can_login(pending):
            return Outcome.ALREADY_SET
        self.add_password(admin or current, pending.username, pending.password)
        return Outcome.PASSWORD_ADDED

    def verify(self, pending: RedisCredentials) -> None:
        self.probe(pending)

    def undo(
        self, current: RedisCredentials, pending: RedisCredentials, admin: RedisCredentials | None
    ) -> Outcome:
        if self.remove_password(admin or current, current.username, pending.password):
            return Outcome.PASSWORD_REMOVED
        return Outcome.NOTHING_TO_UNDO

    def retire(
        self,
        current: RedisCredentials,
        retiring: RedisCredentials,
        action: RetireAction,
        admin: RedisCredentials | None,
    ) -> Outcome:
        if action == RetireAction.DEACTIVATE:
            if self.remove_password(admin or current, retiring.username, retiring.password):
                return Outcome.PASSWORD_REMOVED
            return Outcome.NOTHING_TO_DELETE
        if action == RetireAction.VERIFY:
            if self.can_login(retiring):
                raise RetiredCredentialStillWorksError(
                    "the retired Redis password is still accepted"
                )
            return Outcome.PASSWORD_REFUSED
        return Outcome.NOTHING_TO_DELETE

    def same(self, a: RedisCredentials, b: RedisCredentials) -> bool:
        return a.username == b.username and a.password == b.password

    def same_identity(self, a: RedisCredentials, b: RedisCredentials) -> bool:
        return a.same_account_as(b)

    # --- ACL commands -------------------------------------------------------------------------

    def add_password(self, admin: DatabaseCredentials, username: str, password: str) -> None:
        self._setuser(admin, username, ">" + password, "add a password")

    def remove_password(self, admin: DatabaseCredentials, username: str, password: str) -> bool:
        """Remove one password; False when the user no longer has it (a rollback or retirement
        that ran already, or an operator's reset): Redis refuses to remove a password the user
        lacks, and a step that finds its work done must succeed when it runs again."""
        return self._setuser(admin, username, "<" + password, "remove a password")

    def probe(self, creds: DatabaseCredentials) -> None:
        with self.session(creds) as client:
            who = self._run(creds, "read probe", client.execute_command, "ACL", "WHOAMI")
        if who != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {who!r}, expected {creds.username!r}"
            )

    def _setuser(self, admin: DatabaseCredentials, username: str, rule: str, action: str) -> bool:
        """Apply one ACL rule to an existing user; False (nothing sent) for removing a password
        the user does not have (ACL GETUSER lists the SHA-256 of each password)."""
        with self.session(admin) as client:
            found = self._run(admin, action, client.execute_command, "ACL", "GETUSER", username)
            if found is None:
                # ACL SETUSER would create it: never invent a user
                raise InvalidSecretError(
                    f"secret field 'username': ACL user {username!r} does not exist"
                )
            if rule.startswith("<"):
                digest = hashlib.sha256(rule[1:].encode()).hexdigest()
                if digest not in (found.get("passwords") or []):
                    return False
            self._run(admin, action, client.execute_command, "ACL", "SETUSER", username, rule)
            return True

    # --- the connector ------------------------------------------------------------------------

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        import redis

        return (redis.RedisError, TlsHandshakeError)

    def _open(self, creds: DatabaseCredentials) -> Any:
        import ssl

        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Verified TLS unless both the deployment and the secret allow plaintext; decided
        # before the socket opens, so a refusal sends nothing (rotation_core.tls).
        tls = self.policy.tls.choose(creds.ssl, creds.ca_bundle)
        transport: dict[str, Any] = {"connection_class": redis.Connection}
        if tls.verify:
            # redis-py builds (and loads the trust store into) an SSLContext per connection;
            # ours is built once per process and bundle (rotation_core.tls) and handed to it
            transport = {
                "connection_class": _verified_tls_connection(tls.ssl_context()),
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": True,
                "ssl_ca_certs": tls.combined_ca_file(),
                "ssl_min_version": ssl.TLSVersion.TLSv1_2,
            }
        timeout = self.policy.connect_timeout()
        # No driver retries: a refused password must be reported, not hammered; the state
        # machine owns retrying.
        pool = redis.ConnectionPool(
            host=creds.host,
            port=creds.port,
            username=creds.username,
            password=creds.password,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            **transport,
        )
        client = redis.Redis(connection_pool=pool)
        try:
            client.ping()  # connects and authenticates now
        except BaseException:
            client.close()
            raise
        return client

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        import redis

        who = self.describe(creds)
        text = str(exc)
        if action == "log in" and creds.ssl is not False:
            identity = _identity_problem(exc, creds)
            if identity is not None:
                return ServerIdentityError(f"{action}: {creds.host}:{creds.port} {identity}")
        if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text:
            return AuthenticationFailedError(f"{action}: login refused for {who}")
        if "NOPERM" in text:
            return PrivilegeError(f"{action}: {who} lacks the ACL permission")
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return DatabaseUnavailableError(
                f"{action}: {creds.host}:{creds.port} unavailable ({type(exc).__name__})"
            )
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} failed ({type(exc).__name__})"
        )


def build(wiring: Any) -> RedisAclPasswords:
    """This backend, wired by rotation_core.handlers (the deployment's connection policy)."""
    return RedisAclPasswords(wiring.policy)


class TlsHandshakeError(Exception):
    """The server did not complete a verified TLS handshake (before any command was sent)."""


@functools.cache
def _verified_tls_connection(context: ssl.SSLContext) -> type:
    """redis-py's TLS connection, telling a failed handshake apart from a dropped connection:
    Redis has no TLS negotiation, so a plaintext server answers a handshake by closing.

    Every connection wraps its socket with ``context`` (the process's verifying context for
    the bundle, rotation_core.tls) instead of redis-py's own per-connection context; the
    ``ssl_*`` keywords the pool also passes say the same (chain and host name required)."""

    import ssl

    import redis
    from redis.connection import SSLConnection

    class VerifiedTlsConnection(SSLConnection):
        shared_context = context

        def _wrap_socket_with_ssl(self, sock: Any) -> Any:
            return self.shared_context.wrap_socket(sock, server_hostname=self.host)

        def _connect(self) -> Any:
            plain: Any = super(SSLConnection, self)._connect  # untyped in redis-py
            sock = plain()  # the plain TCP connection
            try:
                wrap: Any = self._wrap_socket_with_ssl
                return wrap(sock)
            except (TimeoutError, ConnectionError, ssl.SSLEOFError):
                # the connection dropped mid-handshake: a failover, or a load balancer without
                # a healthy target, looks exactly like this; nothing was sent, so retrying is
                # safe (a server that answers with something else than TLS is refused below)
                sock.close()
                raise
            except (OSError, redis.RedisError) as exc:
                sock.close()
                raise TlsHandshakeError("the TLS handshake failed") from exc

    return VerifiedTlsConnection


def _identity_problem(exc: BaseException, creds: DatabaseCredentials) -> str | None:
    """Redis has no TLS negotiation: any failure of the TLS handshake (a plaintext server
    closing on it, a certificate chain or host name that does not verify) means the server
    did not prove who it is. The driver's own text may quote the server; ours does not."""
    import ssl

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            bundle = f"CA bundle {creds.ca_bundle!r}" if creds.ca_bundle else "the trusted CAs"
            return (
                "did not prove its identity: its TLS certificate does not verify for that "
                f"host with {bundle}"
            )
        if isinstance(cause, ssl.SSLEOFError | ConnectionError):
            return None  # dropped mid-handshake: transient (see _verified_tls_connection)
        if isinstance(cause, ssl.SSLError | TlsHandshakeError):
            return "did not complete a TLS handshake (a plaintext server, or not the server named)"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    if "certificate verify failed" in text or ("ssl" in text and "handshake" in text):
        return "did not complete a TLS handshake (a plaintext server, or not the server named)"
    return None
